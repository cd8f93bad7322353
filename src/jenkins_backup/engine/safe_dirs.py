"""Opening directories below a root without ever following a symlink.

Restore and archive import write into trees that someone else may have prepared; each path is
opened one component at a time with O_NOFOLLOW, relative to its parent's descriptor, so no write
can be redirected outside the root by a link planted in the target.
"""

from __future__ import annotations

import errno
import os
import stat

from jenkins_backup.errors import UnsafePath

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_subdir(parent: int, name: bytes, *, create: bool, shown: str) -> int:
    """Open directory ``name`` in ``parent``.

    With ``create``, a missing directory is made (mode 0700 until its real mode is applied) and
    a non-directory in the way is replaced. Without it, a missing name raises FileNotFoundError
    and a non-directory NotADirectoryError. A symlink is always refused with UnsafePath.
    """
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            raise
        os.mkdir(name, 0o700, dir_fd=parent)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePath(f"refusing to write through the symlink {shown}") from exc
        if not create:
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", shown) from exc
        os.unlink(name, dir_fd=parent)  # a file where a directory belongs
        os.mkdir(name, 0o700, dir_fd=parent)
    return os.open(name, DIR_FLAGS, dir_fd=parent)


def open_step(
    parent: int,
    parts: tuple[bytes, ...],
    follow: frozenset[tuple[bytes, ...]],
    *,
    create: bool,
    shown: str,
) -> int:
    """Open directory ``parts`` (its last component, in ``parent``), never via a link unless
    ``parts`` is one of ``follow`` (the scope's roots); ``create`` makes a missing one."""
    if parts in follow:
        try:
            return os.open(parts[-1], os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=parent)
        except (FileNotFoundError, NotADirectoryError):
            if not create:
                raise
    return open_subdir(parent, parts[-1], create=create, shown=shown)


def open_existing(
    root: int, parts: tuple[bytes, ...], follow: frozenset[tuple[bytes, ...]] = frozenset()
) -> int | None:
    """Open directory ``parts`` below ``root`` without creating anything: None when a component
    is missing or not a directory. A symlink on the way raises UnsafePath, unless that
    component is one of ``follow`` (the scope's roots, which restore writes through)."""
    cur = root
    try:
        for i in range(len(parts)):
            here = parts[: i + 1]
            try:
                shown = os.fsdecode(b"/".join(here))
                nxt = open_step(cur, here, follow, create=False, shown=shown)
            except (FileNotFoundError, NotADirectoryError):
                return None
            if cur != root:
                os.close(cur)
            cur = nxt
    except BaseException:
        if cur != root:
            os.close(cur)
        raise
    return os.dup(cur) if cur == root else cur
