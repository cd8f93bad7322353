"""The prune operation: apply the retention policy, then collect unreferenced data."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from jenkins_backup.errors import BackupError, ClockSkew, UsageError
from jenkins_backup.operations.common import open_repository
from jenkins_backup.operations.retention import apply_retention
from jenkins_backup.repository import gc
from jenkins_backup.repository.gc import GcResult
from jenkins_backup.repository.layout import GC_MARKER
from jenkins_backup.repository.repo import Repository, stamp
from jenkins_backup.repository.snapshot import SnapshotRef
from jenkins_backup.settings import Retention, Settings

log = logging.getLogger(__name__)

#: Prune refuses to act when the local clock and the store's differ by more than this (s). Ages
#: are measured on the store's clock alone; the bound catches a clock (or a store) so wrong that
#: times written by this machine (tombstone names, commit times) cannot be trusted either.
MAX_CLOCK_SKEW = 60.0


@dataclass(frozen=True)
class PruneResult:
    kept: list[int]  # backup numbers, newest commit first
    forgotten: list[int]
    gc: GcResult
    dry_run: bool


def check_grace(settings: Settings) -> None:
    """The protocol needs T < G/2 (docs/FORMAT.md), T bounded by the backup timeout."""
    if settings.prune_grace < 2 * settings.timeout:
        raise UsageError(
            f"BACKUP_PRUNE_GRACE ({settings.prune_grace:g} s) must be at least twice"
            f" BACKUP_TIMEOUT ({settings.timeout:g} s): a shorter grace could delete data"
            " of a backup in flight"
        )


def store_now(repo: Repository) -> int:
    """Now, by the store's clock: the time stamp it puts on the marker prune writes (ns).

    Refuses (ClockSkew) when the local clock disagrees with it by more than MAX_CLOCK_SKEW.
    A stamp in whole seconds is taken as is (the true time is up to a second later, so ages come
    out shorter: the safe side).
    """
    before = time.time()
    info = stamp(repo, GC_MARKER)
    after = time.time()
    latest = info.mtime + (1.0 if float(info.mtime).is_integer() else 0.0)
    skew = max(info.mtime - after, before - latest, 0.0)
    if skew > MAX_CLOCK_SKEW:
        raise ClockSkew(
            f"the local clock and the store's differ by {skew:.0f} s (more than"
            f" {MAX_CLOCK_SKEW:g} s): prune does nothing until the clocks agree"
        )
    return int(info.mtime * 1e9)


def plan_forget(
    repo: Repository, policy: Retention, committed: SnapshotRef | None = None
) -> tuple[list[SnapshotRef], list[SnapshotRef]]:
    """(kept, to forget): the policy over the visible backups, plus replaced snapshots.

    ``committed``, the backup just committed, is kept whatever the policy and the commit times
    say: retention must never undo the backup that ran it.
    """
    visible = repo.snapshot_refs()
    replaced = sorted(set(repo.all_snapshot_refs()) - set(visible))
    kept, gone = apply_retention(visible, policy)
    if committed is not None and committed in gone:
        gone.remove(committed)
        kept = sorted([*kept, committed], key=lambda r: (r.time_ns, r.number), reverse=True)
    return kept, gone + replaced


def prune(settings: Settings, *, dry_run: bool = False, now_ns: int | None = None) -> PruneResult:
    """Forget what the policy does not keep, then collect garbage (see repository/gc.py).

    ``now_ns`` replaces the store's clock (tests); a dry run, which changes nothing, uses the
    local clock and writes no marker.
    """
    check_grace(settings)
    repo = open_repository(settings)
    if repo is None:
        return PruneResult([], [], GcResult(), dry_run)
    if now_ns is None:
        now_ns = time.time_ns() if dry_run else store_now(repo)
    kept, gone = plan_forget(repo, settings.retention)
    if not dry_run:
        repo.remove_snapshots(gone)
    planned = gc.plan(repo, now_ns, settings.prune_grace)
    if dry_run:
        log.info("%s", planned)
    result = planned.result() if dry_run else gc.execute(planned)
    return PruneResult([r.number for r in kept], [r.number for r in gone], result, dry_run)


def after_backup(settings: Settings, repo: Repository, committed: SnapshotRef) -> None:
    """Retention after a committed backup (only then): forget at once, never ``committed``;
    collect at most once per interval.

    The backup is committed already, so a failure here is a warning, never the backup's error.
    """
    if not settings.retention.active:
        return
    try:
        _, gone = plan_forget(repo, settings.retention, committed)
        repo.remove_snapshots(gone)
        if gone:
            log.info("retention forgot backup(s) %s", ", ".join(str(r.number) for r in gone))
        check_grace(settings)
        interval = min(settings.prune_interval, settings.prune_grace / 4)
        last = repo.storage.stat(GC_MARKER)
        if last is not None and time.time() - last.mtime < interval:
            return
        fresh = repo.fresh()  # the backup's caches predate its own commit
        result = gc.collect(fresh, store_now(fresh), settings.prune_grace)
        if result.blocked:
            log.warning("prune collected nothing: %s", result.blocked)
        elif result.bytes_freed:
            log.info("prune freed %d bytes", result.bytes_freed)
    except BackupError as exc:
        log.warning("retention after the backup failed (the backup is safe): %s", exc)
