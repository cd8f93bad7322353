"""The prune operation: apply the retention policy, then collect unreferenced data.

``prune(now=True)`` deletes what no backup references at once, without the grace period: safe
only while no backup writes to the repository, so it is refused while the repository shows one
in flight (repository/inflight.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass

from jenkins_backup.errors import BackupError, BackupInFlight, ClockSkew, CorruptObject, UsageError
from jenkins_backup.operations.common import open_repository
from jenkins_backup.operations.retention import apply_retention
from jenkins_backup.repository import gc
from jenkins_backup.repository.gc import GcResult
from jenkins_backup.repository.inflight import in_flight
from jenkins_backup.repository.layout import GC_MARKER, NOW_MARKER
from jenkins_backup.repository.pins import pinned_ids
from jenkins_backup.repository.repo import Repository, stamp
from jenkins_backup.repository.snapshot import SnapshotRef, iso_time
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
    now: bool = False  # without the grace period


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
    say: retention must never undo the backup that ran it. Pinned backups are kept; when the
    pins cannot be read, this raises (PinStateUnknown, StorageError) and nothing is forgotten.
    """
    visible = repo.snapshot_refs()
    replaced = sorted(set(repo.all_snapshot_refs()) - set(visible))
    held: set[bytes] = set(pinned_ids(repo)) if policy.active else set()
    tags = _tags(repo, visible, held) if policy.tags else {}

    def tags_of(ref: SnapshotRef) -> Collection[str]:
        return tags.get(ref.id, ())

    kept, gone = apply_retention(visible, policy, tags=tags_of, pinned=lambda ref: ref.id in held)
    if committed is not None and committed in gone:
        gone.remove(committed)
        kept = sorted([*kept, committed], key=lambda r: (r.time_ns, r.number), reverse=True)
    return kept, gone + replaced


def _tags(
    repo: Repository, refs: list[SnapshotRef], held: set[bytes]
) -> dict[bytes, tuple[str, ...]]:
    """Each backup's tags, for --keep-tag. A backup whose snapshot cannot be read has unknown
    tags: it joins ``held`` (kept), with a warning."""
    tags: dict[bytes, tuple[str, ...]] = {}
    for ref in refs:
        try:
            tags[ref.id] = repo.load_snapshot(ref).tags
        except CorruptObject as exc:
            log.warning("keeping backup %d: its tags cannot be read (%s)", ref.number, exc)
            held.add(ref.id)
    return tags


def refuse_in_flight(repo: Repository, settings: Settings, now_ns: int) -> None:
    """BackupInFlight when a marker of a backup in flight has not expired at ``now_ns``."""
    running = in_flight(repo, now_ns, settings.timeout, settings.prune_grace)
    if not running:
        return
    first = running[0]
    who = (
        f"backup {first.number} (host {first.hostname}, pid {first.pid})"
        if first.number is not None
        else f"a backup with an unreadable marker ({first.key})"
    )
    more = f" and {len(running) - 1} more" if len(running) > 1 else ""
    raise BackupInFlight(
        f"prune --now refused: {who}{more} is writing to the repository (its marker expires at"
        f" {iso_time(max(r.expires_ns for r in running))}); run prune without --now, or again"
        " once no backup runs"
    )


def prune(
    settings: Settings,
    *,
    dry_run: bool = False,
    now_ns: int | None = None,
    now: bool = False,
) -> PruneResult:
    """Forget what the policy does not keep, then collect garbage (see repository/gc.py).

    ``now_ns`` replaces the store's clock (tests); a dry run, which changes nothing, uses the
    local clock and writes no marker. ``now``: delete unreferenced data at once (no grace),
    refused while a backup is in flight.
    """
    check_grace(settings)
    repo = open_repository(settings)
    if repo is None:
        return PruneResult([], [], GcResult(), dry_run, now)
    if now_ns is None:
        now_ns = time.time_ns() if dry_run else store_now(repo)
    if now:
        refuse_in_flight(repo, settings, now_ns)
    kept, gone = plan_forget(repo, settings.retention)
    if not dry_run:
        repo.remove_snapshots(gone)
    numbers = [r.number for r in kept], [r.number for r in gone]
    if now:
        return PruneResult(*numbers, _collect_now(repo, now_ns, dry_run), dry_run, now)
    planned = gc.plan(repo, now_ns, settings.prune_grace)
    if dry_run:
        log.info("%s", planned)
    result = planned.result() if dry_run else gc.execute(planned)
    return PruneResult(*numbers, result, dry_run)


def _collect_now(repo: Repository, now_ns: int, dry_run: bool) -> GcResult:
    """Two collections with no grace: the first condemns every unreferenced pack (and removes
    every tombstone), the second deletes them, each step in the usual crash-safe order."""
    first = gc.plan(repo, now_ns, 0.0)
    if dry_run:
        log.info("%s", first)
        planned = first.result()
        if not planned.blocked:  # what is condemned now would be deleted by the second pass
            planned.packs_deleted += planned.packs_condemned
            planned.bytes_freed += planned.bytes_condemned
            planned.packs_condemned = planned.bytes_condemned = 0
            planned.packs_waiting = planned.bytes_waiting = planned.waiting_until_ns = 0
        return planned
    # Backups that run meanwhile (none should) see this stamp and check their data before
    # committing; stamped again at the end, for those that started during this prune.
    stamp(repo, NOW_MARKER)
    done = gc.execute(first)
    if done.blocked:
        return done
    second = gc.execute(gc.plan(repo.fresh(), now_ns, 0.0))
    stamp(repo, NOW_MARKER)
    second.packs_repacked += done.packs_repacked
    second.bytes_repacked += done.bytes_repacked
    second.packs_deleted += done.packs_deleted
    second.bytes_freed += done.bytes_freed
    second.packs_rescued += done.packs_rescued
    second.tombstones_removed += done.tombstones_removed
    second.problems = [*done.problems, *second.problems]
    return second


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
