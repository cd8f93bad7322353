"""Looking inside a backup without restoring it: resolve a path, list, compare, search.

Each reads only the trees on its way. Resolving ``jobs/a/config.xml`` reads the root tree,
``jobs``, ``jobs/a``; comparing two backups skips every subtree whose id both share (an
unchanged directory encodes to the same bytes, hence the same id); a search over many backups
visits a directory that several backups share at the same path once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from jenkins_backup.errors import CorruptObject, PathNotFound, UsageError
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.tree import DIR, FILE, Entry
from jenkins_backup.repository.walk import MAX_DEPTH, MAX_ENTRIES, Parts, entries

ADDED = "+"
REMOVED = "-"
CHANGED = "M"


def split_path(text: str) -> Parts:
    """A path relative to JENKINS_HOME, as the user types it (``/`` and ``.`` ignored)."""
    parts = tuple(p for p in text.strip().split("/") if p and p != ".")
    if b".." in (p.encode() for p in parts):
        raise UsageError(f"a path inside the backup may not contain '..': {text!r}")
    return tuple(p.encode("utf-8", "surrogateescape") for p in parts)


def show(parts: Parts) -> str:
    """A path for humans and JSON: names that are not UTF-8 keep their bytes as escapes."""
    return b"/".join(parts).decode("utf-8", "surrogateescape")


def _child(repo: Repository, tree_id: bytes, name: bytes) -> Entry | None:
    for e in repo.read_tree(tree_id):
        if e.name == name:
            return e
    return None


def resolve(repo: Repository, root: bytes, parts: Parts) -> Entry | None:
    """The entry at ``parts`` (None for the home itself); symlinks inside are not followed."""
    if len(parts) > MAX_DEPTH:
        raise UsageError(f"a path deeper than {MAX_DEPTH} levels cannot be in a backup")
    tree = root
    found: Entry | None = None
    for i, name in enumerate(parts):
        found = _child(repo, tree, name)
        if found is None or (found.kind != DIR and i < len(parts) - 1):
            raise PathNotFound(f"{show(parts)} is not in this backup")
        tree = found.subtree
    return found


def tree_of(root: bytes, entry: Entry | None) -> bytes | None:
    """The tree id a resolved path lists: the root, a directory's subtree, None otherwise."""
    if entry is None:
        return root
    return entry.subtree if entry.kind == DIR else None


def listing(
    repo: Repository, root: bytes, parts: Parts, *, recursive: bool = False
) -> Iterator[tuple[Parts, Entry]]:
    """The entries of a directory (with everything below when ``recursive``), or one entry."""
    entry = resolve(repo, root, parts)
    tree = tree_of(root, entry)
    if tree is None:
        assert entry is not None
        yield parts, entry
        return
    if recursive:
        for sub, e in entries(repo.read_tree, tree, max_depth=MAX_DEPTH - len(parts)):
            yield (*parts, *sub), e
    else:
        for e in repo.read_tree(tree):
            yield (*parts, e.name), e


# -- comparing two backups ---------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One path that differs: ``+`` only in the newer, ``-`` only in the older, ``M`` both."""

    op: str
    parts: Parts
    old: Entry | None
    new: Entry | None


def differs(a: Entry, b: Entry) -> bool:
    """Content, type, mode or link target differ (a new mtime alone is not a change)."""
    if a.kind != b.kind or a.mode != b.mode:
        return True
    if a.kind == FILE:
        return a.content != b.content or a.size != b.size
    return a.kind != DIR and a.target != b.target


def _whole(repo: Repository, op: str, parts: Parts, e: Entry) -> Iterator[Change]:
    """A path present on one side only, with everything below it."""
    old, new = (e, None) if op == REMOVED else (None, e)
    yield Change(op, parts, old, new)
    if e.kind == DIR:
        for sub, child in entries(repo.read_tree, e.subtree, max_depth=MAX_DEPTH - len(parts)):
            old, new = (child, None) if op == REMOVED else (None, child)
            yield Change(op, (*parts, *sub), old, new)


def diff_trees(
    repo: Repository, old: bytes, new: bytes, parts: Parts = (), budget: list[int] | None = None
) -> Iterator[Change]:
    """Every path that differs between two trees, in path order; shared subtrees are skipped.

    Recursion is bounded by the walk's depth limit, entries visited by its entry limit.
    """
    budget = [0] if budget is None else budget
    if len(parts) > MAX_DEPTH:
        raise CorruptObject(f"directories nest deeper than {MAX_DEPTH} levels")
    a = {e.name: e for e in repo.read_tree(old)}
    b = {e.name: e for e in repo.read_tree(new)}
    budget[0] += len(a) + len(b)
    if budget[0] > MAX_ENTRIES:
        raise CorruptObject(f"the backups list more than {MAX_ENTRIES} entries")
    for name in sorted(a.keys() | b.keys()):
        path = (*parts, name)
        ea, eb = a.get(name), b.get(name)
        if eb is None:
            assert ea is not None
            yield from _whole(repo, REMOVED, path, ea)
        elif ea is None:
            yield from _whole(repo, ADDED, path, eb)
        elif ea.kind == DIR and eb.kind == DIR:
            if ea.mode != eb.mode:
                yield Change(CHANGED, path, ea, eb)
            if ea.subtree != eb.subtree:
                yield from diff_trees(repo, ea.subtree, eb.subtree, path, budget)
        elif ea.kind != eb.kind:
            yield from _whole(repo, REMOVED, path, ea)
            yield from _whole(repo, ADDED, path, eb)
        elif differs(ea, eb):
            yield Change(CHANGED, path, ea, eb)


def read_file(repo: Repository, e: Entry, limit: int) -> bytes:
    """A file's whole content, refused above ``limit`` bytes (for text comparison)."""
    if e.size > limit:
        raise UsageError(f"the file is larger than {limit} bytes: compare it with dump")
    return b"".join(repo.read_blob(c) for c in e.content)


def iter_content(repo: Repository, e: Entry) -> Iterator[bytes]:
    """A file's content chunk by chunk (verified as each is read)."""
    for c in e.content:
        yield repo.read_blob(c)


# -- searching ---------------------------------------------------------------------------


class PathMatcher:
    """Paths matching any of some compiled patterns, and which directories may hold one."""

    def __init__(self, patterns: list[re.Pattern[bytes]]) -> None:
        self._patterns = patterns
        # (path, tree id) -> matches below: the same directory at the same path in another
        # backup holds the same matches (its id is the hash of its content).
        self._memo: dict[tuple[Parts, bytes], tuple[Parts, ...]] = {}
        self._visited = 0  # entries read, bounded as every walk is (a DAG fans out)

    def matches(self, parts: Parts) -> bool:
        rel = b"/".join(parts)
        return any(p.match(rel) for p in self._patterns)

    def search(self, repo: Repository, root: bytes) -> tuple[Parts, ...]:
        """Every path below ``root`` that matches, in path order."""
        return self._search(repo, (), root)

    def _search(self, repo: Repository, parts: Parts, tree: bytes) -> tuple[Parts, ...]:
        key = (parts, tree)
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        if len(parts) > MAX_DEPTH:
            raise CorruptObject(f"directories nest deeper than {MAX_DEPTH} levels")
        found: list[Parts] = []
        listed = repo.read_tree(tree)
        self._visited += len(listed)
        if self._visited > MAX_ENTRIES:
            raise CorruptObject(f"the backups list more than {MAX_ENTRIES} entries")
        for e in listed:
            path = (*parts, e.name)
            if self.matches(path):
                found.append(path)
            if e.kind == DIR:
                found.extend(self._search(repo, path, e.subtree))
        result = tuple(found)
        self._memo[key] = result
        return result
