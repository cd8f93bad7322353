"""Opening the repository named by the settings, and finding snapshots in it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from jenkins_backup.errors import (
    CorruptObject,
    NoRepository,
    NoRestorableBackup,
    ObjectNotFound,
    RepositoryError,
)
from jenkins_backup.repository import layout
from jenkins_backup.repository.crypto import codec_factory, config_factory
from jenkins_backup.repository.integrity import check_snapshot
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.snapshot import Snapshot, SnapshotRef
from jenkins_backup.settings import Settings
from jenkins_backup.storage.base import Storage
from jenkins_backup.storage.factory import open_storage

log = logging.getLogger(__name__)


def storage_for(settings: Settings) -> Storage:
    return open_storage(settings.require_repository(), settings.storage_env)


def open_repository(settings: Settings, *, create: bool = False) -> Repository | None:
    """The repository, or None when none exists yet (and ``create`` is False)."""
    storage = storage_for(settings)
    # A key makes a new repository encrypted, and must open an existing one (never ignored).
    codecs = codec_factory(settings.encryption_key)
    if create and not settings.create and not Repository.exists(storage):
        raise NoRepository(
            f"no repository at {settings.require_repository()} (BACKUP_CREATE=false: "
            "create it with init)"
        )
    if create:
        return Repository.open_or_create(storage, codecs, config_factory(settings.encryption_key))
    if not Repository.exists(storage):
        # "No repository" means empty only: backups without their config are not an empty home.
        count = sum(
            1 for info in storage.list(layout.SNAPSHOTS) if layout.parse_snapshot_key(info.key)
        )
        if count:
            raise RepositoryError(f"the repository has no config but {count} backup(s) exist")
        return None
    return Repository.open(storage, codecs)


def existing_repository(settings: Settings) -> Repository:
    """The repository, or NoRepository (exit 10): for every command that only reads or changes
    an existing repository (a mistyped location must not look like an empty one)."""
    repo = open_repository(settings)
    if repo is None:
        raise NoRepository(f"no repository at {settings.require_repository()}")
    return repo


def intact(repo: Repository, ref: SnapshotRef) -> Snapshot | None:
    """Load a snapshot and check its root tree reads back; None (with a warning) if damaged."""
    try:
        snap = repo.load_snapshot(ref)
        repo.read_tree(snap.tree)
        return snap
    except (CorruptObject, ObjectNotFound, RepositoryError) as exc:
        log.warning("skipping damaged backup %d: %s", ref.number, exc)
        return None


def latest_intact(
    repo: Repository, *, complete: bool = False
) -> tuple[SnapshotRef, Snapshot] | None:
    """The most recently committed backup whose snapshot and root tree read back (by commit
    time, not by number): the backup's parent. Damaged ones are skipped with a warning.

    With ``complete``, the backup must be whole (``check_snapshot``), as for a restore.
    """
    for ref in reversed(repo.snapshot_refs()):
        snap = intact(repo, ref)
        if snap is None:
            continue
        if complete:
            try:
                check_snapshot(repo, snap.tree)
            except (CorruptObject, ObjectNotFound, RepositoryError) as exc:
                log.warning("skipping damaged backup %d: %s", ref.number, exc)
                continue
        return ref, snap
    return None


@dataclass(frozen=True)
class Restorable:
    ref: SnapshotRef
    snap: Snapshot
    skipped: int  # newer backups skipped because they are damaged
    files: int
    bytes: int


def latest_restorable(repo: Repository) -> Restorable | None:
    """The newest backup that can be restored whole; None only when no backup exists at all.

    Damaged newer backups are skipped with a warning (and counted). When backups exist and none
    can be restored, that is an error, never "empty": the operator would start Jenkins empty,
    and its next backups would age the real history out.
    """
    refs = repo.snapshot_refs()
    reason = ""
    for skipped, ref in enumerate(reversed(refs)):
        try:
            snap = repo.load_snapshot(ref)
            files, total = check_snapshot(repo, snap.tree)
        except (CorruptObject, ObjectNotFound, RepositoryError) as exc:
            log.warning("skipping damaged backup %d: %s", ref.number, exc)
            reason = reason or f"backup {ref.number}: {exc}"
            continue
        return Restorable(ref, snap, skipped, files, total)
    if not refs:
        return None
    exist = "1 backup exists" if len(refs) == 1 else f"{len(refs)} backups exist"
    raise NoRestorableBackup(f"{exist} but none can be restored: {reason}")


def find_number(repo: Repository, number: int) -> SnapshotRef | None:
    for ref in reversed(repo.snapshot_refs()):
        if ref.number == number:
            return ref
    return None


def reader_threads(settings: Settings) -> int:
    """Threads that read, hash and compress files: one per core. More only hand the GIL back
    and forth (measured: 8 threads made a backup slower than 2 on two cores); network
    concurrency is set separately (``upload_threads``)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 2
    return max(1, min(settings.threads, cores))


def upload_threads(settings: Settings) -> int:
    """Uploads in flight: network latency, not CPU, bounds them."""
    return max(4, settings.threads // 2)
