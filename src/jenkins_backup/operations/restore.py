"""The restore operation: check backup N (or the part asked for), then write it.

By default the whole backup goes into JENKINS_HOME as an overlay: files the backup lacks stay.
A part can be chosen (``--job``, ``--builds``, ``--include``, ``--exclude``), written elsewhere
(``--target``), previewed (``--dry-run``) or made equal to the backup (``--delete``, within the
part and the scope only).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from jenkins_backup.engine import browse, jenkins_items
from jenkins_backup.engine.build_numbers import raise_next_build_number
from jenkins_backup.engine.progress import Progress
from jenkins_backup.engine.restore_delete import extras, remove
from jenkins_backup.engine.restore_preview import Planned, preview
from jenkins_backup.engine.restorer import Restorer, RestoreStats
from jenkins_backup.engine.safe_dirs import open_existing
from jenkins_backup.engine.scope import PROFILES, Scope
from jenkins_backup.engine.selection import Selection
from jenkins_backup.errors import (
    CorruptObject,
    NoRepository,
    PathNotFound,
    RepositoryError,
    RestoreDamaged,
    SnapshotNotFound,
    UsageError,
)
from jenkins_backup.operations.common import find_number, latest_restorable, open_repository
from jenkins_backup.repository.integrity import check_snapshot
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.snapshot import Snapshot
from jenkins_backup.repository.tree import DIR, Entry
from jenkins_backup.repository.walk import MAX_DEPTH, Parts
from jenkins_backup.settings import Settings

log = logging.getLogger(__name__)
_SHOWN = 10  # damaged paths named on stderr


@dataclass(frozen=True)
class RestoreOptions:
    """What to restore and how; the defaults are the operator's full overlay restore."""

    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()  # full names: folder/sub/job, multibranch/branch
    builds: str | None = None  # "120-140,150": only these builds of the one job
    target: str | None = None  # instead of JENKINS_HOME
    dry_run: bool = False
    delete: bool = False

    def check(self) -> list[tuple[int, int]]:
        """Refuse combinations that cannot be honoured; the build ranges asked for."""
        if self.builds is None:
            return []
        if len(self.jobs) != 1:
            raise UsageError("--builds needs exactly one --job")
        try:
            return jenkins_items.parse_ranges(self.builds)
        except ValueError:
            raise UsageError(
                f"--builds takes numbers and ranges (120-140,150), not {self.builds!r}"
            ) from None


@dataclass(frozen=True)
class RestoreResult:
    number: int | None  # None: "latest" asked and there is no backup, nothing written
    stats: RestoreStats | None
    seconds: float
    skipped: int = 0  # newer backups skipped because they are damaged ("latest" only)
    planned: tuple[Planned, ...] = ()  # --dry-run: what would be written and removed
    removed: int = 0  # --delete: paths removed
    next_step: str = ""  # partial restores: what the admin does next


def restore(
    settings: Settings,
    number: int | None,
    progress: Progress | None = None,
    options: RestoreOptions | None = None,
) -> RestoreResult:
    """Restore backup ``number``, or the latest intact one when ``number`` is None."""
    opts = options or RestoreOptions()
    ranges = opts.check()
    started = time.monotonic()
    home = os.fsencode(os.path.abspath(opts.target or settings.require_home()))
    repo = open_repository(settings)
    if repo is None:
        if number is None:
            log.info("no backup to restore yet; nothing written")
            return RestoreResult(None, None, 0.0)
        raise NoRepository(f"no repository at {settings.require_repository()}")
    select = Selection(includes=opts.includes, excludes=opts.excludes)
    if number is None:
        found = latest_restorable(repo)
        if found is None:
            log.info("no backup to restore yet; nothing written")
            return RestoreResult(None, None, time.monotonic() - started)
        snap, skipped, files, total = found.snap, found.skipped, found.files, found.bytes
        select = _with_jobs(repo, snap, select, opts, ranges)
    else:
        skipped = 0
        ref = find_number(repo, number)
        if ref is None:
            raise SnapshotNotFound(f"backup {number} does not exist")
        try:
            snap = repo.load_snapshot(ref)
        except (CorruptObject, RepositoryError) as exc:
            raise CorruptObject(f"backup {number} is damaged: {exc}") from exc
        select = _with_jobs(repo, snap, select, opts, ranges)
        try:
            # A named backup is restored as far as it can be: damaged directories and data are
            # named after every readable file is written (bit rot costs only what it hit).
            # A partial restore checks only the part it reads.
            files, total = _check(repo, snap, select)
        except CorruptObject as exc:
            raise CorruptObject(f"backup {snap.number} is damaged: {exc}") from exc
    roots = frozenset(tuple(r.split(b"/")) for r in settings.scope.roots)
    what = "" if select.everything else "part of "
    if opts.dry_run:
        planned = list(preview(repo, home, snap.tree, select, roots))
        if opts.delete:
            planned += _extras(repo, settings, snap, home, select, roots)
        log.info("dry run of backup %d: nothing written", snap.number)
        return RestoreResult(snap.number, None, time.monotonic() - started, skipped, tuple(planned))
    log.info("restoring %sbackup %d (%d files, %d bytes)", what, snap.number, files, total)
    if progress is not None:
        progress.total(files, total)
    known = _known_jobs(home, select, roots)
    restorer = Restorer(repo, home, threads=settings.threads, progress=progress, follow=roots)
    stats = restorer.run(snap.tree, select)
    removed = 0
    if opts.delete:
        removed = _delete(repo, settings, snap, home, select, roots)
    step = ""
    if not select.everything:
        _fix_build_numbers(repo, snap, home, select, opts, roots)
        step = _next_step(settings, home, opts, known)
    if stats.damaged:
        # Bit rot: every readable file is written, the others are named, and the restore fails
        # (the same line on every run: the paths are sorted, and nothing new is written).
        for path in stats.damaged[:_SHOWN]:
            log.warning("not restored (its data is damaged): %s", path)
        raise RestoreDamaged(
            f"backup {snap.number} is damaged: {len(stats.damaged)} file(s) not restored, "
            f"their data fails its checks (first: {stats.damaged[0][:100]}: {stats.damage[:80]})",
            RestoreResult(
                snap.number, stats, time.monotonic() - started, skipped, (), removed, step
            ),
        )
    # No sync: like tar -x, durability of the written files is left to the page cache; every
    # file is complete under its name (rename after write), which is what readers rely on.
    elapsed = time.monotonic() - started
    log.info(
        "restored %sbackup %d: %d files written, %d already up to date, %.1fs",
        what,
        snap.number,
        stats.files_written,
        stats.files_unchanged,
        elapsed,
    )
    if step:
        log.info("%s", step)
    return RestoreResult(snap.number, stats, elapsed, skipped, (), removed, step)


def _with_jobs(
    repo: Repository,
    snap: Snapshot,
    select: Selection,
    opts: RestoreOptions,
    ranges: list[tuple[int, int]],
) -> Selection:
    """The selection with the directories of the jobs (or builds) asked for as its roots."""
    if not opts.jobs:
        return select
    roots: list[Parts] = []
    for name in opts.jobs:
        try:
            parts, entry = jenkins_items.resolve_job(repo, snap.tree, name)
        except PathNotFound:
            raise PathNotFound(f"no job {name!r} in backup {snap.number}") from None
        if opts.builds is None:
            roots.append(parts)
            continue
        builds = jenkins_items.builds_in(repo, entry, ranges)
        if not builds:
            raise PathNotFound(f"no build {opts.builds} of {name!r} in backup {snap.number}")
        roots.extend((*parts, jenkins_items.BUILDS, b) for b in builds)
    return Selection(tuple(roots), select.includes, select.excludes)


def _check(repo: Repository, snap: Snapshot, select: Selection) -> tuple[int, int]:
    """Check the directories that hold the selected part (the whole backup for a full one)."""
    files = total = 0
    for base in select.bases():
        try:
            entry = browse.resolve(repo, snap.tree, base)
        except PathNotFound:
            continue  # nothing there to restore
        if entry is not None and entry.kind != DIR:
            base = base[:-1]  # a file: its directory is checked
            entry = browse.resolve(repo, snap.tree, base)
        tree = browse.tree_of(snap.tree, entry)
        assert tree is not None
        f, b = check_snapshot(repo, tree, max_depth=MAX_DEPTH - len(base), damaged=[])
        files += f
        total += b
    return files, total


def _extras(
    repo: Repository,
    settings: Settings,
    snap: Snapshot,
    home: bytes,
    select: Selection,
    roots: frozenset[Parts],
    touched: dict[Parts, Entry] | None = None,
) -> Iterator[Planned]:
    """What --delete removes: selected, in the scope of the backup and of the settings."""
    scopes = [settings.scope]
    if snap.scope in PROFILES and snap.scope != settings.scope.profile:
        scope = settings.scope
        scopes.append(Scope(snap.scope, excludes=scope.excludes, includes=scope.includes))

    def in_scope(rel: bytes, is_dir: bool) -> bool:
        return all(s.wants(rel, is_dir) for s in scopes)

    def may_hold(rel: bytes) -> bool:
        return all(s.descend(rel) for s in scopes)

    try:
        root = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        yield from extras(repo, root, snap.tree, select, in_scope, may_hold, roots, touched)
    finally:
        os.close(root)


def _delete(
    repo: Repository,
    settings: Settings,
    snap: Snapshot,
    home: bytes,
    select: Selection,
    roots: frozenset[Parts],
) -> int:
    """Remove what the restored part lacks; the directories it was removed from get the
    backup's mtime back (removing an entry changes it)."""
    touched: dict[Parts, Entry] = {}
    removed = 0
    root = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for item in _extras(repo, settings, snap, home, select, roots, touched):
            remove(root, item, roots)
            removed += 1
        for parts, entry in touched.items():
            fd = open_existing(root, parts, roots)
            if fd is not None:
                try:
                    os.utime(fd, ns=(entry.mtime_ns, entry.mtime_ns))
                finally:
                    os.close(fd)
    finally:
        os.close(root)
    log.info("removed %d path(s) the backup lacks", removed)
    return removed


def _job_dirs(select: Selection) -> list[Parts]:
    """The jobs a --job restore names (for --builds, the job that holds them)."""
    out: list[Parts] = []
    for r in select.roots:
        job = r[:-2] if len(r) > 2 and r[-2] == jenkins_items.BUILDS else r
        if job not in out:
            out.append(job)
    return out


def _known_jobs(home: bytes, select: Selection, roots: frozenset[Parts]) -> bool:
    """Whether every job directory asked for is already in the target (Jenkins may know it)."""
    try:
        fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        for job in _job_dirs(select):
            found = open_existing(fd, job, roots)
            if found is None:
                return False
            os.close(found)
    finally:
        os.close(fd)
    return bool(select.roots)


def _fix_build_numbers(
    repo: Repository,
    snap: Snapshot,
    home: bytes,
    select: Selection,
    opts: RestoreOptions,
    roots: frozenset[Parts],
) -> None:
    """Raise nextBuildNumber above the highest build directory of every job restored into."""
    candidates: list[Parts] = []
    if select.roots:
        for job in _job_dirs(select):
            if opts.builds is not None:
                candidates.append(job)
                continue
            entry = browse.resolve(repo, snap.tree, job)
            tree = browse.tree_of(snap.tree, entry)
            if tree is not None:
                candidates.extend(jenkins_items.items_below(repo, job, tree))
    else:
        candidates.extend(jenkins_items.items_below(repo, (), snap.tree, select.descend))
    fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for job in candidates:
            touched = select.wants((*job, jenkins_items.NEXT_BUILD)) or select.descend(
                (*job, jenkins_items.BUILDS)
            )
            if not job or not touched:
                continue
            raised = raise_next_build_number(fd, job, roots)
            if raised is not None:
                log.info(
                    "nextBuildNumber of %s set to %d: above its highest build directory",
                    jenkins_items.name_of(job),
                    raised,
                )
    finally:
        os.close(fd)


def _next_step(settings: Settings, home: bytes, opts: RestoreOptions, known: bool) -> str:
    """One line: what the admin does so that Jenkins sees what was restored."""
    where = ""
    if opts.target is not None:
        real = os.path.realpath(home)
        if not settings.jenkins_home or real != os.path.realpath(
            os.fsencode(settings.jenkins_home)
        ):
            where = f"restored into {os.fsdecode(home)}, not JENKINS_HOME: copy what you need; "
    full = "Manage Jenkins > Reload Configuration from Disk (CLI: reload-configuration)"
    if opts.jobs and known:
        urls = ", ".join(_job_url(n) + "/reload" for n in opts.jobs)
        names = " ".join(n.strip("/") for n in opts.jobs)
        return f"next: {where}reload from disk: POST {urls} (CLI: reload-job {names}), or {full}"
    return f"next: {where}reload from disk: {full}"


def _job_url(full_name: str) -> str:
    """The path of a job in Jenkins's web interface: ``a/b`` -> ``/job/a/job/b``."""
    from urllib.parse import quote

    return "".join("/job/" + quote(n, safe="") for n in full_name.strip("/").split("/") if n)
