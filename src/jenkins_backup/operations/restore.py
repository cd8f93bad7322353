"""The restore operation: check backup N whole, then write it into JENKINS_HOME."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from jenkins_backup.engine.progress import Progress
from jenkins_backup.engine.restorer import Restorer, RestoreStats
from jenkins_backup.errors import (
    CorruptObject,
    NoRepository,
    RepositoryError,
    RestoreDamaged,
    SnapshotNotFound,
)
from jenkins_backup.operations.common import find_number, latest_restorable, open_repository
from jenkins_backup.repository.integrity import check_snapshot
from jenkins_backup.settings import Settings

log = logging.getLogger(__name__)
_SHOWN = 10  # damaged paths named on stderr


@dataclass(frozen=True)
class RestoreResult:
    number: int | None  # None: "latest" asked and there is no backup, nothing written
    stats: RestoreStats | None
    seconds: float
    skipped: int = 0  # newer backups skipped because they are damaged ("latest" only)


def restore(
    settings: Settings, number: int | None, progress: Progress | None = None
) -> RestoreResult:
    """Restore backup ``number``, or the latest intact one when ``number`` is None."""
    started = time.monotonic()
    home = os.fsencode(os.path.abspath(settings.require_home()))
    repo = open_repository(settings)
    if repo is None:
        if number is None:
            log.info("no backup to restore yet; nothing written")
            return RestoreResult(None, None, 0.0)
        raise NoRepository(f"no repository at {settings.require_repository()}")
    if number is None:
        found = latest_restorable(repo)
        if found is None:
            log.info("no backup to restore yet; nothing written")
            return RestoreResult(None, None, time.monotonic() - started)
        snap, skipped, files, total = found.snap, found.skipped, found.files, found.bytes
    else:
        skipped = 0
        ref = find_number(repo, number)
        if ref is None:
            raise SnapshotNotFound(f"backup {number} does not exist")
        try:
            snap = repo.load_snapshot(ref)
        except (CorruptObject, RepositoryError) as exc:
            raise CorruptObject(f"backup {number} is damaged: {exc}") from exc
        try:
            # A named backup is restored as far as it can be: damaged directories and data are
            # named after every readable file is written (bit rot costs only what it hit).
            files, total = check_snapshot(repo, snap.tree, damaged=[])
        except CorruptObject as exc:
            raise CorruptObject(f"backup {snap.number} is damaged: {exc}") from exc
    log.info("restoring backup %d (%d files, %d bytes)", snap.number, files, total)
    if progress is not None:
        progress.total(files, total)
    roots = [tuple(r.split(b"/")) for r in settings.scope.roots]
    restorer = Restorer(repo, home, threads=settings.threads, progress=progress, follow=roots)
    stats = restorer.run(snap.tree)
    if stats.damaged:
        # Bit rot: every readable file is written, the others are named, and the restore fails
        # (the same line on every run: the paths are sorted, and nothing new is written).
        for path in stats.damaged[:_SHOWN]:
            log.warning("not restored (its data is damaged): %s", path)
        raise RestoreDamaged(
            f"backup {snap.number} is damaged: {len(stats.damaged)} file(s) not restored, "
            f"their data fails its checks (first: {stats.damaged[0][:100]}: {stats.damage[:80]})",
            RestoreResult(snap.number, stats, time.monotonic() - started, skipped),
        )
    # No sync: like tar -x, durability of the written files is left to the page cache; every
    # file is complete under its name (rename after write), which is what readers rely on.
    elapsed = time.monotonic() - started
    log.info(
        "restored backup %d: %d files written, %d already up to date, %.1fs",
        snap.number,
        stats.files_written,
        stats.files_unchanged,
        elapsed,
    )
    return RestoreResult(snap.number, stats, elapsed, skipped)
