"""See inside backups without restoring them: ls, dump, find, diff and the jobs catalogue.

Every operation reads the snapshot, the index and only the trees and chunks it needs.
"""

from __future__ import annotations

import difflib
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from jenkins_backup.engine import browse, jenkins_items
from jenkins_backup.engine.scope import compile_glob
from jenkins_backup.engine.tar_export import subtree_members, write_tar
from jenkins_backup.errors import (
    CorruptObject,
    ObjectNotFound,
    PathNotFound,
    RepositoryError,
    SnapshotNotFound,
)
from jenkins_backup.operations.common import existing_repository, find_number
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.snapshot import Snapshot, iso_time
from jenkins_backup.repository.tree import DIR, FILE, SYMLINK, Entry
from jenkins_backup.settings import Settings

MAX_TEXT_DIFF = 16 << 20
_KIND = {FILE: "file", DIR: "dir", SYMLINK: "symlink"}
_TYPE_BITS = {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "symlink": stat.S_IFLNK}


def snapshot(repo: Repository, number: int) -> Snapshot:
    ref = find_number(repo, number)
    if ref is None:
        raise SnapshotNotFound(f"backup {number} does not exist")
    try:
        return repo.load_snapshot(ref)
    except (CorruptObject, ObjectNotFound, RepositoryError) as exc:
        raise CorruptObject(f"backup {number} is damaged: {exc}") from exc


@dataclass(frozen=True)
class PathInfo:
    """One entry of a backup, as ``ls --json`` prints it."""

    path: str
    type: str  # "file", "dir" or "symlink"
    mode: int
    size: int
    mtime: str  # ISO 8601, UTC
    mtime_ns: int
    target: str | None = None  # symlinks

    @property
    def filemode(self) -> str:
        return stat.filemode(_TYPE_BITS[self.type] | self.mode)


def path_info(parts: tuple[bytes, ...], e: Entry) -> PathInfo:
    return PathInfo(
        path=browse.show(parts),
        type=_KIND[e.kind],
        mode=e.mode & 0o7777,
        size=e.size if e.kind == FILE else 0,
        mtime=iso_time(e.mtime_ns),
        mtime_ns=e.mtime_ns,
        target=e.target.decode("utf-8", "surrogateescape") if e.kind == SYMLINK else None,
    )


def ls(
    settings: Settings, number: int, path: str = "", *, recursive: bool = False
) -> Iterator[PathInfo]:
    repo = existing_repository(settings)
    snap = snapshot(repo, number)
    for parts, e in browse.listing(repo, snap.tree, browse.split_path(path), recursive=recursive):
        yield path_info(parts, e)


@dataclass(frozen=True)
class DumpResult:
    path: str
    type: str  # "file" (its bytes) or "dir" (a tar stream)
    bytes: int
    files: int


def dump(settings: Settings, number: int, path: str, out: BinaryIO) -> DumpResult:
    """A file's bytes, or a directory as an uncompressed tar stream named from the home."""
    repo = existing_repository(settings)
    snap = snapshot(repo, number)
    parts = browse.split_path(path)
    entry = browse.resolve(repo, snap.tree, parts)
    shown = browse.show(parts)
    if entry is None or entry.kind == DIR:
        if entry is None:
            entry = Entry(b"", DIR, 0o755, snap.time_ns, subtree=snap.tree)
            items: Iterator[tuple[tuple[bytes, ...], Entry]] = (
                (p, e) for p, e in subtree_members(repo, (), entry) if p
            )
        else:
            items = subtree_members(repo, parts, entry)
        stats = write_tar(repo, items, out, threads=settings.threads)
        out.flush()
        return DumpResult(shown, "dir", stats.bytes, stats.files)
    if entry.kind == SYMLINK:
        out.write(entry.target)
        out.flush()
        return DumpResult(shown, "symlink", len(entry.target), 0)
    written = 0
    for chunk in browse.iter_content(repo, entry):
        out.write(chunk)
        written += len(chunk)
    if written != entry.size:
        raise CorruptObject(f"{shown} does not have its recorded size in backup {number}")
    out.flush()
    return DumpResult(shown, "file", written, 1)


@dataclass(frozen=True)
class FindHit:
    """The backups holding paths that match, newest first."""

    number: int
    committed_at: str
    paths: tuple[str, ...]


def find(settings: Settings, patterns: list[str]) -> list[FindHit]:
    repo = existing_repository(settings)
    matcher = browse.PathMatcher([compile_glob(p) for p in patterns])
    hits: list[FindHit] = []
    for ref in reversed(repo.snapshot_refs()):
        snap = snapshot(repo, ref.number)
        found = matcher.search(repo, snap.tree)
        if found:
            hits.append(FindHit(snap.number, snap.committed_at, tuple(map(browse.show, found))))
    return hits


@dataclass(frozen=True)
class PathChange:
    """A path that differs between two backups: ``+`` added, ``-`` removed, ``M`` changed."""

    op: str
    path: str
    type: str
    old_size: int | None
    new_size: int | None


@dataclass(frozen=True)
class DiffResult:
    old: int
    new: int
    changes: tuple[PathChange, ...]
    added: int
    removed: int
    changed: int


def diff(settings: Settings, old: int, new: int) -> DiffResult:
    repo = existing_repository(settings)
    a, b = snapshot(repo, old), snapshot(repo, new)
    changes = tuple(
        PathChange(
            c.op,
            browse.show(c.parts),
            _KIND[(c.new or c.old).kind],  # type: ignore[union-attr]
            c.old.size if c.old is not None and c.old.kind == FILE else None,
            c.new.size if c.new is not None and c.new.kind == FILE else None,
        )
        for c in browse.diff_trees(repo, a.tree, b.tree)
    )
    count = {op: sum(1 for c in changes if c.op == op) for op in "+-M"}
    return DiffResult(old, new, changes, count["+"], count["-"], count["M"])


def diff_file(settings: Settings, old: int, new: int, path: str) -> str:
    """A unified diff of one file between two backups (absent on one side: all added)."""
    repo = existing_repository(settings)
    a, b = snapshot(repo, old), snapshot(repo, new)
    parts = browse.split_path(path)
    texts: list[list[str]] = []
    present = 0
    for snap in (a, b):
        try:
            e = browse.resolve(repo, snap.tree, parts)
        except PathNotFound:
            texts.append([])
            continue
        if e is None or e.kind != FILE:
            raise PathNotFound(f"{browse.show(parts)} is not a file in backup {snap.number}")
        present += 1
        data = browse.read_file(repo, e, MAX_TEXT_DIFF)
        if b"\0" in data:
            return (
                f"Binary files {old}/{browse.show(parts)} and {new}/{browse.show(parts)} differ\n"
            )
        texts.append(data.decode("utf-8", "surrogateescape").splitlines(keepends=True))
    if not present:
        raise PathNotFound(f"{browse.show(parts)} is in neither backup")
    shown = browse.show(parts)
    lines = difflib.unified_diff(texts[0], texts[1], f"{old}/{shown}", f"{new}/{shown}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


# -- Jenkins terms -----------------------------------------------------------------------


@dataclass(frozen=True)
class JobInfo:
    """One item of the catalogue, as ``jobs --json`` prints it."""

    name: str
    kind: str
    path: str
    builds: str  # ranges, e.g. "1-5,7"
    build_count: int
    last_build: str | None  # ISO 8601, UTC


def _job_info(item: jenkins_items.Item) -> JobInfo:
    last = iso_time(item.last_build_ns) if item.last_build_ns is not None else None
    return JobInfo(
        item.full_name,
        item.kind,
        browse.show(item.parts),
        jenkins_items.ranges(item.builds),
        len(item.builds),
        last,
    )


def jobs(settings: Settings, number: int) -> list[JobInfo]:
    repo = existing_repository(settings)
    snap = snapshot(repo, number)
    return [_job_info(i) for i in jenkins_items.catalogue(repo, snap.tree)]


@dataclass(frozen=True)
class JobChange:
    name: str
    op: str  # "+" added, "-" removed, "M" builds or configuration changed
    builds_added: str = ""  # ranges
    builds_removed: str = ""
    config_changed: bool = False


@dataclass(frozen=True)
class JobsDiff:
    old: int
    new: int
    jobs_added: int
    jobs_removed: int
    builds_added: int
    builds_removed: int
    configs_changed: int
    changes: tuple[JobChange, ...] = field(default=())

    @property
    def summary(self) -> str:
        def n(count: int, word: str, sign: str) -> str:
            return f"{sign}{count} {word}{'' if count == 1 else 's'}"

        configs = "configuration" if self.configs_changed == 1 else "configurations"
        return (
            f"{n(self.jobs_added, 'job', '+')}, {n(self.jobs_removed, 'job', '-')}, "
            f"{n(self.builds_added, 'build', '+')}, {n(self.builds_removed, 'build', '-')}, "
            f"{self.configs_changed} {configs} changed"
        )


def diff_jobs(settings: Settings, old: int, new: int) -> JobsDiff:
    repo = existing_repository(settings)
    a = {i.full_name: i for i in jenkins_items.catalogue(repo, snapshot(repo, old).tree)}
    b = {i.full_name: i for i in jenkins_items.catalogue(repo, snapshot(repo, new).tree)}
    changes: list[JobChange] = []
    added = removed = b_added = b_removed = configs = 0
    for name in sorted(a.keys() | b.keys()):
        ia, ib = a.get(name), b.get(name)
        if ia is None:
            assert ib is not None
            added += 1
            b_added += len(ib.builds)
            changes.append(JobChange(name, "+", builds_added=jenkins_items.ranges(ib.builds)))
            continue
        if ib is None:
            removed += 1
            b_removed += len(ia.builds)
            changes.append(JobChange(name, "-", builds_removed=jenkins_items.ranges(ia.builds)))
            continue
        new_builds = set(ib.builds) - set(ia.builds)
        gone = set(ia.builds) - set(ib.builds)
        config = ia.config != ib.config
        b_added += len(new_builds)
        b_removed += len(gone)
        configs += config
        if new_builds or gone or config:
            changes.append(
                JobChange(
                    name,
                    "M",
                    jenkins_items.ranges(new_builds),
                    jenkins_items.ranges(gone),
                    config,
                )
            )
    return JobsDiff(old, new, added, removed, b_added, b_removed, configs, tuple(changes))
