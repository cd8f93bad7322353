"""The steps every way of making a backup shares: archive a directory, commit its snapshot.

``backup`` archives JENKINS_HOME against its parent snapshot; ``import`` archives an extracted
archive from nothing. Both then commit and let the new snapshot replace the older ones of its
number.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from functools import partial

from jenkins_backup.engine.archiver import Archiver
from jenkins_backup.engine.helper_walk import Helper
from jenkins_backup.engine.progress import Progress
from jenkins_backup.engine.scope import Scope
from jenkins_backup.operations.common import existing_repository, reader_threads, upload_threads
from jenkins_backup.repository.pins import remove_pin
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.snapshot import Snapshot, SnapshotRef, SnapshotStats, Unreadable
from jenkins_backup.repository.writer import BlobWriter
from jenkins_backup.settings import Settings

log = logging.getLogger(__name__)
# Below this many entries the walk takes about a second: starting a helper costs more.
HELPER_MIN_ENTRIES = 20_000


def archive(
    repo: Repository,
    settings: Settings,
    home: bytes,
    scope: Scope,
    parent_tree: bytes | None,
    progress: Progress | None,
    started: float,
    *,
    started_ns: int | None = None,
    parent_entries: int = 0,
) -> tuple[bytes, SnapshotStats, Unreadable]:
    """Store what ``scope`` selects of ``home``: (root tree id, stats including the new data and
    the seconds since ``started``, a ``time.monotonic()`` value, what could not be read).
    Nothing refers to the stored data until a snapshot is committed. ``started_ns``: the wall
    clock at the start (now when None), against which racily clean files are judged.
    ``parent_entries``: files and directories of the parent snapshot, which tell whether a
    helper process would pay for its start."""
    writer = BlobWriter(
        repo, uploads=upload_threads(settings), adopt_max_age=settings.prune_grace / 2
    )
    try:
        threads = reader_threads(settings)
        # A second process shares the walk against the parent snapshot (engine/helper_walk.py);
        # it opens the repository itself, from the same settings.
        helper = None
        if parent_tree is not None and threads > 1 and parent_entries >= HELPER_MIN_ENTRIES:
            helper = Helper(partial(existing_repository, settings), scope)
        archiver = Archiver(
            repo,
            writer,
            scope,
            threads=threads,
            progress=progress,
            started_ns=started_ns,
            helper=helper,
        )
        tree, stats, unreadable = archiver.run(home, parent_tree)
        writer.flush()
    finally:
        writer.close()
    return (
        tree,
        replace(
            stats,
            blobs_added=writer.blobs_added,
            bytes_added=writer.bytes_added,
            seconds=round(time.monotonic() - started, 3),
        ),
        unreadable,
    )


def commit_replacing(repo: Repository, snap: Snapshot) -> tuple[SnapshotRef, int]:
    """Commit ``snap``; the number now names it, so older snapshots of that number go (a pin
    on one goes with it, with a warning: the operator's contract is that a number names one
    backup).

    Returns the new snapshot's ref and how many older ones it replaced.
    """
    ref = repo.commit(snap)
    older = [
        r for r in repo.all_snapshot_refs() if r.number == snap.number and r.time_ns < ref.time_ns
    ]
    repo.remove_snapshots(older)
    for r in older:
        if remove_pin(repo, r.id):
            log.warning("backup %d was pinned: the new backup %d replaces it", r.number, r.number)
    return ref, len(older)
