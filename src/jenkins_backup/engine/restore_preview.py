"""What a restore would write, found without writing: ``restore --dry-run``.

The same walk and selection as the restore; each entry is compared with what the target holds
as the restore compares it (a file of the same size and chunk hashes is already right, a link
with the same target too). Directories are opened read-only, never through a link; nothing is
created, renamed, swept or touched (no mode, no mtime).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from jenkins_backup.engine.reader import iter_file_chunks
from jenkins_backup.engine.safe_dirs import open_existing
from jenkins_backup.engine.selection import Selection
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.tree import DIR, FILE, SYMLINK, Entry
from jenkins_backup.repository.walk import Parts, walk

ADD = "+"  # written where nothing was
REPLACE = "M"  # written over something different
REMOVE = "-"  # removed (--delete)


@dataclass(frozen=True)
class Planned:
    op: str
    parts: Parts  # relative to the target
    is_dir: bool = False

    @property
    def path(self) -> str:
        """For humans, one line: escapes for control characters, backslashes and bytes that
        are not UTF-8; directories end with '/'."""
        text = repr(os.fsdecode(b"/".join(self.parts)))[1:-1]
        return text + "/" if self.is_dir else text


def _same_file(repo: Repository, dfd: int, e: Entry) -> bool:
    try:
        fd = os.open(e.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    except OSError:
        return False
    try:
        params = repo.config.chunker
        return tuple(repo.codec.blob_id(c) for c in iter_file_chunks(fd, params)) == e.content
    finally:
        os.close(fd)


def _compare(repo: Repository, dfd: int, e: Entry, root: bool) -> str | None:
    """ADD, REPLACE, or None when the target already has it. ``root``: a scope root, which
    the restore writes through when it is a link to a directory."""
    try:
        st = os.stat(e.name, dir_fd=dfd, follow_symlinks=root and e.kind == DIR)
    except FileNotFoundError:
        return ADD
    if e.kind == DIR:
        return None if stat.S_ISDIR(st.st_mode) else REPLACE
    if e.kind == SYMLINK:
        same = stat.S_ISLNK(st.st_mode) and os.readlink(e.name, dir_fd=dfd) == e.target
        return None if same else REPLACE
    if stat.S_ISREG(st.st_mode) and st.st_size == e.size and _same_file(repo, dfd, e):
        return None
    return REPLACE


def preview(
    repo: Repository,
    target: bytes,
    tree_id: bytes,
    select: Selection,
    follow: frozenset[Parts],
) -> Iterator[Planned]:
    """Every file, link and directory the restore would write, in the walk's order."""
    try:
        root = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        root = -1  # the target does not exist yet: everything is new
    try:
        descend = None if select.everything else select.descend
        for dparts, entries in walk(repo.read_tree, tree_id, descend=descend):
            chosen = [e for e in entries if select.wants((*dparts, e.name))]
            if not chosen:
                continue
            dfd = open_existing(root, dparts, follow) if root >= 0 else None
            try:
                for e in chosen:
                    if e.kind not in (FILE, SYMLINK, DIR):
                        continue
                    path = (*dparts, e.name)
                    op = ADD if dfd is None else _compare(repo, dfd, e, path in follow)
                    if op is not None:
                        yield Planned(op, path, e.kind == DIR)
            finally:
                if dfd is not None:
                    os.close(dfd)
    finally:
        if root >= 0:
            os.close(root)
