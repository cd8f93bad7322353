"""``restore --delete``: remove what the restored part holds in the target and the backup lacks.

Only paths that are both selected and in the scope are candidates: workspaces, anything the
scope excludes and anything outside the selection are never touched, even inside a directory
that is otherwise removed (that directory then stays, holding them). Directories are read from
the backup's trees; below a tree that cannot be read nothing is removed (what it held is not
known). Directories of the target are opened one component at a time without following links,
and a link is removed as a link. A restore's own temporary names are left to its sweep, and
what a backup never holds (FIFOs, sockets, devices) is never removed.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator

from jenkins_backup.engine.restore_preview import REMOVE, Planned
from jenkins_backup.engine.safe_dirs import open_existing
from jenkins_backup.engine.scope import restore_temporary
from jenkins_backup.engine.selection import Selection
from jenkins_backup.errors import CorruptObject, ObjectNotFound
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.tree import DIR, Entry
from jenkins_backup.repository.walk import MAX_DEPTH, Parts

#: (path relative to the target, is a directory) -> whether the scope holds it.
InScope = Callable[[bytes, bool], bool]


def _listing(root: int, parts: Parts, follow: frozenset[Parts]) -> list[tuple[bytes, bool | None]]:
    """(name, is a directory) in the target; a scope root that links to one counts as one.
    None for what a backup never holds (FIFOs, sockets, devices): never removed."""
    fd = open_existing(root, parts, follow)
    if fd is None:
        return []
    out: list[tuple[bytes, bool | None]] = []
    try:
        with os.scandir(fd) as it:
            for de in it:
                name = os.fsencode(de.name)
                if de.is_dir(follow_symlinks=(*parts, name) in follow):
                    out.append((name, True))
                elif de.is_symlink() or de.is_file(follow_symlinks=False):
                    out.append((name, False))
                else:
                    out.append((name, None))
    finally:
        os.close(fd)
    return out


def extras(
    repo: Repository,
    root: int,
    tree_id: bytes,
    select: Selection,
    in_scope: InScope,
    wanted_scope: Callable[[bytes], bool],
    follow: frozenset[Parts],
    touched: dict[Parts, Entry] | None = None,
) -> Iterator[Planned]:
    """What the target holds in the selected, in-scope part and the backup lacks, children
    before their directory (the order of removal). ``wanted_scope``: whether the scope may
    hold something below a directory (its ``descend``). ``touched`` receives the directories
    of the backup that lose an entry (their mtime is the backup's again once it is removed)."""
    # (parts, its tree or None when the backup lacks it, its entry, post-visit)
    stack: list[tuple[Parts, bytes | None, Entry | None, bool]] = [((), tree_id, None, False)]
    kept: dict[Parts, bool] = {}  # directories absent from the backup: does something stay?
    dirs: dict[Parts, Entry] = {}  # directories of the backup seen, by path
    parents: list[Parts] = []  # where a directory absent from the backup was removed
    while stack:
        parts, tree, own, post = stack.pop()
        if post:
            stays = kept.pop(parts, False)
            if not stays and select.wants(parts) and in_scope(b"/".join(parts), True):
                yield Planned(REMOVE, parts, True)
                parents.append(parts[:-1])
            elif parts[:-1] in kept:
                kept[parts[:-1]] = True
            continue
        if touched is not None and own is not None:
            dirs[parts] = own
        if len(parts) > MAX_DEPTH:
            raise CorruptObject(f"directories nest deeper than {MAX_DEPTH} levels")
        backup: dict[bytes, Entry] = {}
        if tree is not None:
            try:
                backup = {e.name: e for e in repo.read_tree(tree)}
            except (CorruptObject, ObjectNotFound):
                continue  # what this directory held is not known: nothing is removed
        for name, is_dir in sorted(_listing(root, parts, follow), key=_name, reverse=True):
            child = (*parts, name)
            rel = b"/".join(child)
            e = backup.get(name)
            if e is not None:
                if e.kind == DIR and is_dir and select.descend(child):
                    stack.append((child, e.subtree, e, False))
                continue
            if is_dir is None or restore_temporary(name) is not None:
                if parts in kept:
                    kept[parts] = True
                continue
            if is_dir:
                if select.descend(child) and wanted_scope(rel):
                    kept[child] = False
                    stack.append((child, None, None, True))
                    stack.append((child, None, None, False))
                elif parts in kept:
                    kept[parts] = True
            elif select.wants(child) and in_scope(rel, False):
                yield Planned(REMOVE, child)
                if touched is not None and own is not None:
                    touched[parts] = own
            elif parts in kept:
                kept[parts] = True

    if touched is not None:
        touched.update((p, dirs[p]) for p in parents if p in dirs)


def _name(item: tuple[bytes, bool | None]) -> bytes:
    return item[0]


def remove(root: int, item: Planned, follow: frozenset[Parts]) -> None:
    """Remove one path ``extras`` named (a directory is empty by then)."""
    name = item.parts[-1]
    fd = open_existing(root, item.parts[:-1], follow)
    if fd is None:
        return
    try:
        if item.is_dir:
            os.rmdir(name, dir_fd=fd)
        else:
            os.unlink(name, dir_fd=fd)  # a link is removed as a link
    except OSError as exc:
        # Gone meanwhile, or no longer what was found (a directory in place of a file, a
        # directory not empty): left as it is.
        if exc.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR):
            raise
    finally:
        os.close(fd)
