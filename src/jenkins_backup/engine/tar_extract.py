"""Extracting an untrusted tar stream into a private directory, without ever writing outside it.

Why not ``tarfile``'s 'data' filter: it refuses symlinks whose target is absolute or outside the
archive, which real homes contain (and which our own backups keep, since a link is stored, not
followed); it drops directory modes and group write bits; and it guards writes with a
``realpath`` check. Here the rule is the restorer's instead, safe by construction: every
directory is opened one component at a time from the private root with ``O_NOFOLLOW``, files
are created with ``O_EXCL | O_NOFOLLOW``, and an existing non-directory at a member's name is
unlinked first. So no write ever goes through a symlink, whatever the links point to.

Names: a leading '/' is stripped (as GNU tar and the 'data' filter do); a '..' component makes
the whole archive refused. Devices, FIFOs and sockets are skipped (a backup skips them too).
Members outside the given scope are not written at all; an import keeps everything
(``WHOLE_ARCHIVE``): the old provider already chose what to back up.

Modes: kept, minus setuid/setgid; files get owner read and directories owner rwx, so the
archiver can read them back. Ownership is ignored (the repository does not store it).
"""

from __future__ import annotations

import logging
import os
import stat
import tarfile
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import BinaryIO

from jenkins_backup.engine.safe_dirs import open_subdir
from jenkins_backup.engine.scope import Scope
from jenkins_backup.errors import CorruptObject, UnsafePath

log = logging.getLogger(__name__)

_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_SAFE_MODE = 0o1777
_MAX_FDS = 128
_BLOCK = 1 << 20

Parts = tuple[bytes, ...]


class _Everything(Scope):
    """The scope of an imported archive: all it holds, nested workspaces included."""

    def wants(self, rel: bytes, is_dir: bool) -> bool:
        return True

    def descend(self, rel: bytes) -> bool:
        return True


WHOLE_ARCHIVE: Scope = _Everything()
ARCHIVE_SCOPE = "archive"  # the scope recorded in an imported backup


@dataclass
class ExtractStats:
    files: int = 0
    dirs: int = 0
    links: int = 0
    bytes: int = 0
    skipped: int = 0  # special files, out-of-scope members, hard links to nothing
    _dirs: list[tuple[Parts, int, int]] = field(default_factory=list, repr=False)


def member_parts(name: str) -> Parts:
    """The path of a member as components; UnsafePath when it climbs out with '..'."""
    raw = os.fsencode(name)
    parts = tuple(p for p in raw.lstrip(b"/").split(b"/") if p not in (b"", b"."))
    if b".." in parts:
        raise UnsafePath(f"archive member {_show_name(raw)} climbs out with '..'")
    return parts


def mtime_ns(member: tarfile.TarInfo) -> int:
    """The member's mtime in ns, exact when a PAX header gives a fraction (floats would not)."""
    text = member.pax_headers.get("mtime")
    if text:
        try:
            return int(Decimal(text) * 1_000_000_000)
        except InvalidOperation:
            pass
    return int(member.mtime) * 1_000_000_000


class Extractor:
    def __init__(self, dest: bytes, scope: Scope) -> None:
        self.dest = dest
        self.scope = scope
        self.stats = ExtractStats()
        self._root = -1
        self._fds: dict[Parts, int] = {}

    def run(self, stream: BinaryIO) -> ExtractStats:
        self._root = os.open(self.dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            with tarfile.open(
                fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape"
            ) as tf:
                for member in tf:
                    tf.members = []  # type: ignore[attr-defined]  # stream mode keeps them all
                    self._member(tf, member)
            while stream.read(_BLOCK):  # the compressed trailer: checksums, frame end
                pass
            self._apply_dir_metadata()
        finally:
            self._close_fds()
            os.close(self._root)
        return self.stats

    # -- members --------------------------------------------------------------------------

    def _member(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        if len(self._fds) >= _MAX_FDS:  # only here: every fd stays valid within one member
            self._close_fds()
        parts = member_parts(m.name)
        if not parts:
            return
        rel = b"/".join(parts)
        if m.isdir():
            if not self.scope.descend(rel):
                self.stats.skipped += 1
                return
        elif not (m.isreg() or m.issym() or m.islnk()):
            log.info("skipping special file %s in the archive", _show(parts))
            self.stats.skipped += 1
            return
        elif not self.scope.wants(rel, False):
            self.stats.skipped += 1
            return
        parent = self._dir_fd(parts[:-1])
        name = parts[-1]
        if m.isdir():
            self._dir_fd(parts)
            self.stats._dirs.append((parts, m.mode, mtime_ns(m)))
            self.stats.dirs += 1
            return
        self._clear(parent, parts)
        if m.isreg():
            self._file(tf, m, parent, name)
        elif m.issym():
            target = os.fsencode(m.linkname)
            if not target or b"\0" in target:
                self.stats.skipped += 1
                return
            os.symlink(target, name, dir_fd=parent)
            os.utime(name, ns=(mtime_ns(m),) * 2, dir_fd=parent, follow_symlinks=False)
            self.stats.links += 1
        else:
            self._hardlink(m, parent, parts)

    def _file(self, tf: tarfile.TarFile, m: tarfile.TarInfo, parent: int, name: bytes) -> None:
        src = tf.extractfile(m)
        assert src is not None
        fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent)
        try:
            size = 0
            while block := src.read(_BLOCK):
                view = memoryview(block)
                while view:
                    view = view[os.write(fd, view) :]
                size += len(block)
            if size != m.size:
                raise CorruptObject(f"member {m.name!r} is truncated")
            os.fchmod(fd, (m.mode & _SAFE_MODE) | 0o400)
            os.utime(fd, ns=(mtime_ns(m),) * 2)
        finally:
            os.close(fd)
        self.stats.files += 1
        self.stats.bytes += size

    def _hardlink(self, m: tarfile.TarInfo, parent: int, parts: Parts) -> None:
        src_parts = member_parts(m.linkname)
        if not src_parts:
            raise UnsafePath(f"hard link {_show(parts)} has no target")
        src_dir = self._dir_fd(src_parts[:-1], create=False)
        try:
            st = os.stat(src_parts[-1], dir_fd=src_dir, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            log.info("skipping hard link %s to a file not extracted", _show(parts))
            self.stats.skipped += 1
            return
        os.link(
            src_parts[-1],
            parts[-1],
            src_dir_fd=src_dir,
            dst_dir_fd=parent,
            follow_symlinks=False,
        )
        self.stats.files += 1
        self.stats.bytes += st.st_size

    def _clear(self, parent: int, parts: Parts) -> None:
        """Make room for a non-directory member: a later member replaces an earlier one."""
        try:
            st = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            raise CorruptObject(f"archive member {_show(parts)} would replace a directory")
        os.unlink(parts[-1], dir_fd=parent)

    # -- directories ----------------------------------------------------------------------

    def _dir_fd(self, parts: Parts, *, create: bool = True) -> int:
        """Open directory ``parts`` below the root one component at a time, never via a link."""
        if not parts:
            return self._root
        fd = self._fds.get(parts)
        if fd is not None:
            return fd
        parent = self._dir_fd(parts[:-1], create=create)
        try:
            fd = open_subdir(parent, parts[-1], create=create, shown=_show(parts))
        except FileNotFoundError:
            raise UnsafePath(f"archive refers to {_show(parts)}, which it does not hold") from None
        except NotADirectoryError:
            raise UnsafePath(
                f"archive refers to {_show(parts)}, which is not a directory"
            ) from None
        self._fds[parts] = fd
        return fd

    def _close_fds(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def _apply_dir_metadata(self) -> None:
        """Directory modes and mtimes last, deepest first: writing into one changes its mtime."""
        for parts, mode, mtime in sorted(self.stats._dirs, key=lambda d: -len(d[0])):
            if len(self._fds) >= _MAX_FDS:
                self._close_fds()
            parent = self._dir_fd(parts[:-1], create=False)
            os.chmod(parts[-1], (mode & _SAFE_MODE) | 0o700, dir_fd=parent, follow_symlinks=False)
            os.utime(parts[-1], ns=(mtime, mtime), dir_fd=parent, follow_symlinks=False)
        self.stats._dirs.clear()


def _show(parts: Parts) -> str:
    return _show_name(b"/".join(parts))


def _show_name(raw: bytes) -> str:
    return repr(os.fsdecode(raw))[1:-1]
