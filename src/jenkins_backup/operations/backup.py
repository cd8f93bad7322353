"""The backup operation: archive JENKINS_HOME as backup number N and commit it."""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass

from jenkins_backup import __version__
from jenkins_backup.engine.progress import Progress
from jenkins_backup.errors import BackupError, PartialBackup
from jenkins_backup.operations.common import latest_intact, open_repository
from jenkins_backup.operations.pipeline import archive, commit_replacing
from jenkins_backup.operations.prune import after_backup
from jenkins_backup.operations.shrink import check_shrink
from jenkins_backup.repository import inflight
from jenkins_backup.repository.integrity import check_still_stored, rebuild_index
from jenkins_backup.repository.layout import NOW_MARKER, written_ns
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.snapshot import Snapshot, Unreadable
from jenkins_backup.settings import Settings
from jenkins_backup.units import human_size

log = logging.getLogger(__name__)
# Temp files of writers that died are swept after this long (live writers finish far sooner).
STALE_TMP_AGE = 3600.0
_SHOWN = 5  # unreadable paths named in the log (the snapshot records more)


@dataclass(frozen=True)
class BackupResult:
    number: int
    snapshot: Snapshot
    replaced: int  # older backups with the same number that this one superseded
    seconds: float

    @property
    def unreadable(self) -> Unreadable:
        """Entries in scope this backup could not read, so does not hold."""
        return self.snapshot.unreadable


def backup(
    settings: Settings,
    number: int,
    progress: Progress | None = None,
    *,
    now_ns: int | None = None,
) -> BackupResult:
    """Back up JENKINS_HOME as backup ``number``. ``now_ns``: the wall-clock start (tests).

    While it runs, the repository shows it in flight (an advisory marker: a backup never fails
    for want of it)."""
    started = time.monotonic()
    started_ns = time.time_ns() if now_ns is None else now_ns
    home = os.fsencode(os.path.abspath(settings.require_home()))
    repo = open_repository(settings, create=True)
    assert repo is not None
    marker = _announce(repo, settings, number, started_ns)
    try:
        return _backup(repo, settings, number, progress, home, started, started_ns)
    finally:
        if marker is not None:
            _withdraw(repo, marker)


def _announce(repo: Repository, settings: Settings, number: int, started_ns: int) -> str | None:
    try:
        return inflight.announce(
            repo, number, socket.gethostname(), os.getpid(), started_ns, settings.timeout
        )
    except (BackupError, OSError) as exc:
        log.warning(
            "could not mark backup %d in flight (prune --now will not see it): %s", number, exc
        )
        return None


def _withdraw(repo: Repository, marker: str) -> None:
    try:
        inflight.withdraw(repo, marker)
    except (BackupError, OSError) as exc:
        log.warning(
            "could not remove the in-flight marker %s (it expires by itself): %s", marker, exc
        )


def _pruned_now_since(repo: Repository, started_ns: int, timeout: float) -> bool:
    """Whether a prune --now may have deleted data while this backup ran: one started at most
    a timeout (its watchdog's bound, and the clocks' tolerance) before this backup started.
    Such a prune ignores the grace, so the backup checks its data before committing."""
    info = repo.storage.stat(NOW_MARKER)
    return info is not None and written_ns(info) > started_ns - int((timeout + 60) * 1e9)


def _backup(
    repo: Repository,
    settings: Settings,
    number: int,
    progress: Progress | None,
    home: bytes,
    started: float,
    started_ns: int,
) -> BackupResult:
    swept = repo.storage.sweep(STALE_TMP_AGE)
    if swept:
        log.info("removed %d leftover temporary file(s) of interrupted runs", swept)
    parent = latest_intact(repo)
    parent_tree = parent[1].tree if parent else None
    if parent and progress is not None:  # the parent's size is the best guess of this one's
        progress.total(parent[1].stats.files, parent[1].stats.bytes, estimate=True)
    tree, stats, unreadable = archive(
        repo,
        settings,
        home,
        settings.scope,
        parent_tree,
        progress,
        started,
        started_ns=started_ns,
        parent_entries=parent[1].stats.files + parent[1].stats.dirs if parent else 0,
    )
    check_shrink(parent[1] if parent else None, stats, allowed=settings.allow_shrink)
    if (ran := time.monotonic() - started) > settings.prune_grace / 2:
        check_still_stored(repo, tree, ran)
    elif _pruned_now_since(repo, started_ns, settings.timeout):
        check_still_stored(repo, tree, ran, "a prune --now ran while this backup ran")
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
        unreadable=unreadable,
        tags=settings.tags,
    )
    ref, replaced = commit_replacing(repo, snap)
    if repo.damaged_index_files:  # index files are a cache: rebuilt from the packs' headers
        repaired = rebuild_index(repo)
        log.warning(
            "replaced %d damaged index file(s): %d pack(s) indexed again from their headers",
            repaired.damaged_files,
            repaired.packs_indexed,
        )
    after_backup(settings, repo, ref)  # retention, when a policy is set
    elapsed = time.monotonic() - started
    log.info(
        "backup %d committed: %d files (%d read), %s added, %.1fs",
        number,
        stats.files,
        stats.files_read,
        human_size(stats.bytes_added),
        elapsed,
    )
    result = BackupResult(number, snap, replaced, elapsed)
    if unreadable.count:
        shown = ", ".join(unreadable.paths[:_SHOWN])
        more = ", ..." if unreadable.count > _SHOWN else ""
        log.warning(
            "backup %d lacks %d unreadable entr%s: %s%s",
            number,
            unreadable.count,
            "y" if unreadable.count == 1 else "ies",
            shown,
            more,
        )
        if settings.strict:
            raise PartialBackup(
                f"backup {number} was committed without {unreadable.count} unreadable "
                f"entr{'y' if unreadable.count == 1 else 'ies'} (BACKUP_STRICT)",
                result,
            )
    return result
