"""The backup operation: archive JENKINS_HOME as backup number N and commit it."""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass

from jenkins_backup import __version__
from jenkins_backup.engine.archiver import Archiver
from jenkins_backup.engine.progress import Progress
from jenkins_backup.operations.common import (
    latest_intact,
    open_repository,
    reader_threads,
    upload_threads,
)
from jenkins_backup.operations.prune import after_backup
from jenkins_backup.repository.snapshot import Snapshot, SnapshotStats
from jenkins_backup.repository.writer import BlobWriter
from jenkins_backup.settings import Settings

log = logging.getLogger(__name__)
# Temp files of writers that died are swept after this long (live writers finish far sooner).
STALE_TMP_AGE = 3600.0


@dataclass(frozen=True)
class BackupResult:
    number: int
    snapshot: Snapshot
    replaced: int  # older backups with the same number that this one superseded
    seconds: float


def backup(settings: Settings, number: int, progress: Progress | None = None) -> BackupResult:
    started = time.monotonic()
    home = os.fsencode(os.path.abspath(settings.require_home()))
    repo = open_repository(settings, create=True)
    assert repo is not None
    swept = repo.storage.sweep(STALE_TMP_AGE)
    if swept:
        log.info("removed %d leftover temporary file(s) of interrupted runs", swept)
    parent = latest_intact(repo)
    parent_tree = parent[1].tree if parent else None
    writer = BlobWriter(
        repo, uploads=upload_threads(settings), adopt_max_age=settings.prune_grace / 2
    )
    try:
        archiver = Archiver(
            repo, writer, settings.scope, threads=reader_threads(settings), progress=progress
        )
        tree, stats = archiver.run(home, parent_tree)
        writer.flush()
    finally:
        writer.close()
    stats = SnapshotStats(
        **{
            **stats.__dict__,
            "blobs_added": writer.blobs_added,
            "bytes_added": writer.bytes_added,
            "seconds": round(time.monotonic() - started, 3),
        }
    )
    snap = Snapshot(
        number=number,
        time_ns=time.time_ns(),
        tree=tree,
        scope=settings.scope.profile,
        hostname=socket.gethostname(),
        parent=parent[0].key if parent else "",
        stats=stats,
        program=f"jenkins-backup {__version__}",
        source="backup",
    )
    ref = repo.commit(snap)
    # The number now names this backup; older snapshots under it are superseded.
    older = [r for r in repo.all_snapshot_refs() if r.number == number and r.time_ns < ref.time_ns]
    repo.remove_snapshots(older)
    after_backup(settings, repo)  # retention, when a policy is set
    elapsed = time.monotonic() - started
    log.info(
        "backup %d committed: %d files (%d read), %s added, %.1fs",
        number,
        stats.files,
        stats.files_read,
        _human(stats.bytes_added),
        elapsed,
    )
    return BackupResult(number, snap, len(older), elapsed)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
