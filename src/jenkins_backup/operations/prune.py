"""The prune operation: apply the retention policy, then collect unreferenced data."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from jenkins_backup.errors import BackupError
from jenkins_backup.operations.common import open_repository
from jenkins_backup.operations.retention import apply_retention
from jenkins_backup.repository.gc import GcResult, collect
from jenkins_backup.repository.layout import GC_MARKER
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.snapshot import SnapshotRef
from jenkins_backup.settings import Retention, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PruneResult:
    kept: list[int]  # backup numbers, newest commit first
    forgotten: list[int]
    gc: GcResult
    dry_run: bool


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


def _merge(a: GcResult, b: GcResult) -> GcResult:
    out = GcResult(blocked=b.blocked, problems=b.problems, tombstones_pending=b.tombstones_pending)
    for name in (
        "packs_deleted",
        "bytes_freed",
        "packs_condemned",
        "bytes_condemned",
        "packs_rescued",
        "packs_repacked",
        "bytes_repacked",
        "index_files_replaced",
        "tombstones_removed",
    ):
        setattr(out, name, getattr(a, name) + getattr(b, name))
    return out


def prune(settings: Settings, *, dry_run: bool = False) -> PruneResult:
    """Forget what the policy does not keep, then collect garbage (see repository/gc.py)."""
    repo = open_repository(settings)
    if repo is None:
        return PruneResult([], [], GcResult(), dry_run)
    started = time.monotonic()
    kept, gone = plan_forget(repo, settings.retention)
    if not dry_run:
        repo.remove_snapshots(gone)
    result = collect(repo, settings.prune_grace, dry_run=dry_run)
    for _ in range(2):
        # A grace shorter than this run (tests, emptied repositories): finish the job now.
        if dry_run or time.monotonic() - started <= settings.prune_grace or result.blocked:
            break
        if not (result.packs_condemned or result.tombstones_pending):
            break
        time.sleep(settings.prune_grace)
        result = _merge(result, collect(repo, settings.prune_grace))
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
        interval = min(settings.prune_interval, settings.prune_grace / 4)
        last = repo.storage.stat(GC_MARKER)
        if last is not None and time.time() - last.mtime < interval:
            return
        repo.storage.put(GC_MARKER, b"")
        result = collect(repo, settings.prune_grace)
        if result.blocked:
            log.warning("prune collected nothing: %s", result.blocked)
        elif result.bytes_freed:
            log.info("prune freed %d bytes", result.bytes_freed)
    except BackupError as exc:
        log.warning("retention after the backup failed (the backup is safe): %s", exc)
