"""The import operation: turn numbered tar archives of the old providers into backups.

Each archive becomes backup N, committed at the archive's mtime, so that ``latest`` and
``list`` continue the old sequence. An archive is extracted safely into a private temporary
directory (engine/tar_extract.py) and archived from there with the normal archiver: the
snapshot is then exactly what a backup of that tree would be, and the temporary disk use is one
archive's content at a time (``work_dir`` chooses where). Everything the archive holds is kept
(minus devices and FIFOs): the old provider already chose what to back up.

Reruns are idempotent: an archive already imported (same number and time) is skipped without
being read, and one whose content equals backup N is not committed again. An archive newer than
backup N replaces it, as ``backup N`` would; an older one with other content is refused.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import socket
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass

from jenkins_backup import __version__
from jenkins_backup.engine.progress import Progress
from jenkins_backup.engine.tar_extract import ARCHIVE_SCOPE, WHOLE_ARCHIVE, Extractor
from jenkins_backup.engine.tar_source import (
    ArchiveRef,
    decompressed,
    directory_archives,
    local_archive,
    storage_archives,
    stored_archive,
)
from jenkins_backup.errors import (
    BackupError,
    CorruptObject,
    RepositoryError,
    StorageError,
    UsageError,
)
from jenkins_backup.operations import leftovers
from jenkins_backup.operations.common import find_number, open_repository
from jenkins_backup.operations.pipeline import archive, commit_replacing
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.snapshot import Snapshot, SnapshotStats, Unreadable
from jenkins_backup.settings import Settings
from jenkins_backup.storage.factory import local_path, open_storage

log = logging.getLogger(__name__)

IMPORTED = "imported"
SKIPPED = "skipped"
FAILED = "failed"


@dataclass(frozen=True)
class ImportOutcome:
    number: int
    archive: str
    status: str  # IMPORTED, SKIPPED or FAILED
    detail: str = ""
    files: int = 0


@dataclass(frozen=True)
class ImportResult:
    outcomes: tuple[ImportOutcome, ...]
    seconds: float


def import_archive(
    settings: Settings,
    number: int,
    location: str,
    *,
    work_dir: str | None = None,
    progress: Progress | None = None,
) -> ImportOutcome:
    """Import one archive (a local path, or a storage URL such as ``s3://bucket/path/N.tar.gz``)
    as backup ``number``; raises on failure."""
    repo = open_repository(settings, create=True)
    assert repo is not None
    if "://" in location:
        folder, _, key = location.rpartition("/")
        storage = open_storage(folder, settings.storage_env)
        try:
            return _import(repo, settings, stored_archive(storage, key, number), work_dir, progress)
        finally:
            storage.close()
    return _import(repo, settings, local_archive(location, number), work_dir, progress)


def import_all(
    settings: Settings,
    source: str,
    *,
    work_dir: str | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import every numbered archive of a directory or storage prefix, oldest first.

    A failed archive does not stop the others; the result lists it.
    """
    started = time.monotonic()
    storage = open_storage(source, settings.storage_env) if "://" in source else None
    try:
        refs = storage_archives(storage) if storage else directory_archives(source)
        if not refs:
            raise UsageError(
                f"no archives named N.tar.gz, N.tgz, N.tar.zstd or N.tar.zst in {source}"
            )
        repo = open_repository(settings, create=True)
        assert repo is not None
        log.info("importing %d archive(s) from %s, oldest first", len(refs), source)
        outcomes = []
        for ref in refs:
            try:
                outcomes.append(_import(repo, settings, ref, work_dir, progress))
            except BackupError as exc:
                log.error("%s not imported: %s", ref.name, exc)
                outcomes.append(ImportOutcome(ref.number, ref.name, FAILED, str(exc)))
    finally:
        if storage is not None:
            storage.close()
    return ImportResult(tuple(outcomes), time.monotonic() - started)


def _import(
    repo: Repository,
    settings: Settings,
    ref: ArchiveRef,
    work_dir: str | None,
    progress: Progress | None,
) -> ImportOutcome:
    existing_ref = find_number(repo, ref.number)
    existing: Snapshot | None = None
    if existing_ref is not None:
        try:
            existing = repo.load_snapshot(existing_ref)
        except (CorruptObject, RepositoryError) as exc:
            log.warning(
                "backup %d in the repository is damaged (%s): replacing it", ref.number, exc
            )
        if existing is not None and existing.source == "import" and existing.time_ns == ref.time_ns:
            log.info("%s: already imported as backup %d", ref.name, ref.number)
            return ImportOutcome(ref.number, ref.name, SKIPPED, "already imported")
    started = time.monotonic()
    tree, stats, unreadable = _archive(repo, settings, ref, work_dir, progress)
    if existing is not None and existing.tree == tree:
        log.info("%s: backup %d already holds the same content", ref.name, ref.number)
        return ImportOutcome(ref.number, ref.name, SKIPPED, "same content", stats.files)
    if existing is not None and existing.time_ns >= ref.time_ns:
        raise RepositoryError(
            f"backup {ref.number} already exists with other content and is newer than the archive"
        )
    snap = Snapshot(
        number=ref.number,
        time_ns=ref.time_ns,
        tree=tree,
        scope=ARCHIVE_SCOPE,
        hostname=socket.gethostname(),
        stats=stats,
        program=f"jenkins-backup {__version__}",
        source="import",
        unreadable=unreadable,
    )
    commit_replacing(repo, snap)
    log.info(
        "%s imported as backup %d (committed at %s): %d files, %.1fs",
        ref.name,
        ref.number,
        snap.committed_at,
        stats.files,
        time.monotonic() - started,
    )
    return ImportOutcome(ref.number, ref.name, IMPORTED, "", stats.files)


def _beside(settings: Settings) -> str | None:
    """A local repository's own tmp/ (no temporary directory needed; every listing skips it);
    None (TMPDIR) for object storage."""
    path = local_path(settings.require_repository())
    if path is None:
        return None
    work = os.path.join(path, "tmp")
    if os.path.islink(work):  # the repository never reaches outside itself
        raise StorageError(f"refusing to follow the symlink tmp inside the repository {path}")
    os.makedirs(work, exist_ok=True)
    return work


def _archive(
    repo: Repository,
    settings: Settings,
    ref: ArchiveRef,
    work_dir: str | None,
    progress: Progress | None,
) -> tuple[bytes, SnapshotStats, Unreadable]:
    """Extract the archive into a private directory and archive that."""
    started = time.monotonic()
    where = work_dir or _beside(settings)
    leftovers.sweep(where, leftovers.IMPORT_PREFIX, directory=True)
    tmp = os.fsencode(tempfile.mkdtemp(prefix=leftovers.prefix(leftovers.IMPORT_PREFIX), dir=where))
    try:
        home = os.path.join(tmp, b"home")
        os.mkdir(home, 0o700)
        try:
            with ref.open() as raw:
                extracted = Extractor(home, WHOLE_ARCHIVE).run(decompressed(raw))
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise CorruptObject(f"archive {ref.name} is damaged: {exc}") from exc
        if extracted.skipped:
            log.info(
                "%s: %d member(s) skipped (special or out of scope)", ref.name, extracted.skipped
            )
        return archive(repo, settings, home, WHOLE_ARCHIVE, None, progress, started)
    finally:
        _remove(tmp)


def _remove(path: bytes) -> None:
    """Delete the extraction directory (its directories are all owner-writable by design)."""
    try:
        shutil.rmtree(path)
    except OSError as exc:
        log.warning("could not remove the temporary directory %s: %s", os.fsdecode(path), exc)
