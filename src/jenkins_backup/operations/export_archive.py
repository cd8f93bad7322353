"""The export operation: backup N as a plain ``.tar.zst``, to leave without needing this tool.

The backup is checked whole first (as restore does), so a damaged backup fails before a byte is
written. A file target is written under a temporary name beside it and renamed when complete:
a partial archive never carries the final name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from jenkins_backup.engine.progress import Progress
from jenkins_backup.engine.tar_export import ExportStats, write_tar_zst
from jenkins_backup.errors import CorruptObject, RepositoryError, SnapshotNotFound
from jenkins_backup.operations import leftovers
from jenkins_backup.operations.common import existing_repository, find_number
from jenkins_backup.repository.integrity import check_snapshot
from jenkins_backup.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    number: int
    stats: ExportStats
    seconds: float


def export_archive(
    settings: Settings,
    number: int,
    target: str | BinaryIO,
    progress: Progress | None = None,
) -> ExportResult:
    """Write backup ``number`` to ``target``: a path, or an open binary stream (left open)."""
    started = time.monotonic()
    repo = existing_repository(settings)
    ref = find_number(repo, number)
    if ref is None:
        raise SnapshotNotFound(f"backup {number} does not exist")
    try:
        snap = repo.load_snapshot(ref)
        files, nbytes = check_snapshot(repo, snap.tree)
    except (CorruptObject, RepositoryError) as exc:
        raise CorruptObject(f"backup {number} is damaged: {exc}") from exc
    if progress is not None:
        progress.total(files, nbytes)
    if isinstance(target, str):
        stats = _to_file(
            target,
            lambda out: write_tar_zst(
                repo, snap.tree, out, threads=settings.threads, progress=progress
            ),
        )
    else:
        stats = write_tar_zst(repo, snap.tree, target, threads=settings.threads, progress=progress)
        target.flush()
    elapsed = time.monotonic() - started
    log.info(
        "exported backup %d: %d files, %d directories, %d links, %d bytes, %.1fs",
        number,
        stats.files,
        stats.dirs,
        stats.links,
        stats.bytes,
        elapsed,
    )
    return ExportResult(number, stats, elapsed)


def _to_file(path: str, write: Callable[[BinaryIO], ExportStats]) -> ExportStats:
    """Write beside ``path`` and rename: readable by its owner only (a backup holds secrets)."""
    folder = os.path.dirname(os.path.abspath(path))
    leftovers.sweep(folder, leftovers.EXPORT_PREFIX, directory=False)
    fd, tmp = tempfile.mkstemp(prefix=leftovers.prefix(leftovers.EXPORT_PREFIX), dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            stats = write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return stats
