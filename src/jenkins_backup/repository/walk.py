"""The one walk over a snapshot's trees, with the bounds every reader and the backup share.

Tree ids are content hashes, so a cycle cannot verify; but a hostile writer can nest trees
without end, or share one subtree many times (a DAG) so that a few small trees name billions of
paths. Both are refused *before* the work: the depth is checked before a tree is read, and the
total number of entries visited (a shared subtree counts every time it is reached, as restore
would write it every time) before they are yielded. The backup's walk of JENKINS_HOME imports
the same limits, so that it never commits a backup that restore refuses.

The walk is iterative (no recursion limit at any depth) and depth first, each directory's
entries in their stored order: ``walk`` yields a directory with its entries before any of its
subdirectories, ``entries`` yields each entry with its path, every directory directly followed
by its contents (the order of a tar stream).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from jenkins_backup.errors import CorruptObject, ObjectNotFound
from jenkins_backup.repository.tree import DIR, FILE, Entry

#: Directories deeper than this are refused (real homes stay far below: PATH_MAX is 4096).
MAX_DEPTH = 512
#: Entries one walk may visit, counting a shared subtree each time it is reached.
MAX_ENTRIES = 500_000_000

Parts = tuple[bytes, ...]


class Seen(Protocol):
    """A set of tree ids: a ``set``, or prune's compact ``IdSet``."""

    def __contains__(self, tree_id: bytes, /) -> bool: ...

    def add(self, tree_id: bytes, /) -> object: ...


ReadTree = Callable[[bytes], list[Entry]]
#: Called with (directory parts, error) for a tree that cannot be read; the subtree is skipped.
OnError = Callable[[Parts, CorruptObject | ObjectNotFound], None]


@dataclass
class _Budget:
    max_depth: int
    max_entries: int
    seen: int = 0

    def enter(self, parts: Parts) -> None:
        if len(parts) > self.max_depth:
            raise CorruptObject(f"directories nest deeper than {self.max_depth} levels")

    def count(self, n: int) -> None:
        self.seen += n
        if self.seen > self.max_entries:
            raise CorruptObject(f"the backup lists more than {self.max_entries} entries")


def _read(
    read_tree: ReadTree, tree_id: bytes, parts: Parts, on_error: OnError | None
) -> list[Entry] | None:
    if on_error is None:
        return read_tree(tree_id)
    try:
        return read_tree(tree_id)
    except (CorruptObject, ObjectNotFound) as exc:
        on_error(parts, exc)
        return None


def walk(
    read_tree: ReadTree,
    tree_id: bytes,
    parts: Parts = (),
    *,
    max_depth: int = MAX_DEPTH,
    max_entries: int = MAX_ENTRIES,
    on_error: OnError | None = None,
    seen: Seen | None = None,
    descend: Callable[[Parts], bool] | None = None,
) -> Iterator[tuple[Parts, list[Entry]]]:
    """Pre-order walk: (directory path parts, its entries), depth first.

    ``on_error``: an unreadable tree is reported and its subtree skipped, instead of raised.
    ``descend``: subdirectories for which it is false are not read (a partial restore reads
    the trees on the way to what it selects, and those below).
    ``seen``: trees whose id is in it are skipped, and visited ids are added (a walk over
    several snapshots that needs each tree once, as prune's mark does); the bounds still count
    every entry visited.
    """
    budget = _Budget(max_depth, max_entries)
    stack: list[tuple[Parts, bytes]] = [(parts, tree_id)]
    while stack:
        dparts, tid = stack.pop()
        if seen is not None:
            if tid in seen:
                continue
            seen.add(tid)
        budget.enter(dparts)
        entries = _read(read_tree, tid, dparts, on_error)
        if entries is None:
            continue
        budget.count(len(entries))
        yield dparts, entries
        for e in reversed(entries):
            if e.kind == DIR:
                sub = (*dparts, e.name)
                if descend is None or descend(sub):
                    stack.append((sub, e.subtree))


def entries(
    read_tree: ReadTree,
    tree_id: bytes,
    *,
    max_depth: int = MAX_DEPTH,
    max_entries: int = MAX_ENTRIES,
    on_error: OnError | None = None,
) -> Iterator[tuple[Parts, Entry]]:
    """Every entry with its path, each directory followed directly by its contents."""
    budget = _Budget(max_depth, max_entries)
    root = _read(read_tree, tree_id, (), on_error)
    if root is None:
        return
    budget.count(len(root))
    stack: list[tuple[Parts, Iterator[Entry]]] = [((), iter(root))]
    while stack:
        parts, it = stack[-1]
        e = next(it, None)
        if e is None:
            stack.pop()
            continue
        path = (*parts, e.name)
        yield path, e
        if e.kind == DIR:
            budget.enter(path)
            children = _read(read_tree, e.subtree, path, on_error)
            if children is not None:
                budget.count(len(children))
                stack.append((path, iter(children)))


@dataclass(frozen=True)
class Measure:
    entries: int  # entries a full walk visits, a shared subtree counted each time
    files: int
    bytes: int


def measure(
    read_tree: ReadTree,
    tree_id: bytes,
    *,
    max_depth: int = MAX_DEPTH,
    max_entries: int = MAX_ENTRIES,
    on_error: OnError | None = None,
    visit: Callable[[list[Entry]], None] | None = None,
) -> Measure:
    """What a full walk would visit, found by reading each distinct tree once.

    This is how the bounds apply before the work: a DAG that names billions of paths from a
    few trees is refused after reading those few trees, not after visiting the paths.
    ``on_error``: an unreadable tree is reported (with the first path it was reached by) and
    counts as empty, instead of raised. ``visit``: called with each distinct tree's entries as
    it is read, so that a check of every tree needs no second walk.
    """
    done: dict[bytes, tuple[int, int, int, int]] = {}  # id -> entries, files, bytes, height
    stack: list[tuple[bytes, Parts, list[Entry] | None]] = [(tree_id, (), None)]
    on_stack: set[bytes] = set()
    while stack:
        tid, parts, children = stack.pop()
        depth = len(parts)
        if children is None:
            if tid in done:
                continue
            if depth > max_depth:
                raise CorruptObject(f"directories nest deeper than {max_depth} levels")
            if tid in on_stack:  # only a lie about an id can make a cycle
                raise CorruptObject("the backup's trees form a cycle")
            read = _read(read_tree, tid, parts, on_error)
            if read is None:
                done[tid] = (0, 0, 0, 0)
                continue
            entries = read
            if visit is not None:
                visit(entries)
            on_stack.add(tid)
            stack.append((tid, parts, entries))
            for e in entries:
                if e.kind == DIR and e.subtree not in done:
                    stack.append((e.subtree, (*parts, e.name), None))
            continue
        n, files, size, height = len(children), 0, 0, 0
        for e in children:
            if e.kind == DIR:
                sub = done[e.subtree]
                n += sub[0]
                files += sub[1]
                size += sub[2]
                height = max(height, sub[3] + 1)
            elif e.kind == FILE:
                files += 1
                size += e.size
        if n > max_entries:
            raise CorruptObject(f"the backup lists more than {max_entries} entries")
        if depth + height > max_depth:
            raise CorruptObject(f"directories nest deeper than {max_depth} levels")
        on_stack.discard(tid)
        done[tid] = (n, files, size, height)
    n, files, size, height = done[tree_id]
    if height > max_depth:  # a shared subtree may sit deeper on another path than on the first
        raise CorruptObject(f"directories nest deeper than {max_depth} levels")
    return Measure(n, files, size)
