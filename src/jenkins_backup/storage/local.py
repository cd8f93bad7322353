"""A repository in a local or PVC directory: the embedded default.

Writes go to ``tmp/`` first, are fsynced, then linked (create-only) or renamed into place, so a
crash leaves either nothing or a whole object plus a temp file that a later sweep removes.

The repository never reaches outside itself: below its root (which may itself be a link, the
user's choice of volume) every directory is opened one component at a time with O_NOFOLLOW,
relative to its parent's descriptor, and objects are opened with O_NOFOLLOW too. A symlink
planted anywhere inside (``tmp``, ``data``, ``snapshots/``, an object) is refused with a clear
error, never followed: nothing outside the repository is read, written or deleted through it.
The sweep removes only regular files named by its own exact temporary pattern.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import stat
import time
import uuid
from collections.abc import Iterator

from jenkins_backup.errors import ObjectNotFound, StorageError
from jenkins_backup.processes import pid_alive
from jenkins_backup.storage.base import ObjectInfo, Storage

_TMP = "tmp"
# Group-writable, so that any UID of the creator's group shares the repository: OpenShift runs
# pods under an arbitrary UID whose group is 0, the image's user 1000 has group 0 too. The
# set-group-ID bit keeps new objects in the directory's group (a volume's fsGroup).
FILE_MODE = 0o664
DIR_MODE = 0o2775
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted where an object belongs must not hang the reader at open.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# A temp file's name: host, pid, 32 hex digits (see ``put``); nothing else is ever swept.
_TMP_NAME = re.compile(r"([^./]+)\.([0-9]{1,7})\.[0-9a-f]{32}")


def _make_group_dirs(path: str) -> None:
    """``os.makedirs`` that gives the directories it creates DIR_MODE, whatever the umask."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parent != path:
        _make_group_dirs(parent)
    try:
        os.mkdir(path)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
        return
    os.chmod(path, DIR_MODE)


class LocalStorage(Storage):
    def __init__(self, root: str, *, fsync: bool = True) -> None:
        self.root = os.path.abspath(root)
        self._fsync = fsync
        self._host = socket.gethostname().replace(".", "_").replace("/", "_") or "host"

    def describe(self) -> str:
        return self.root

    # -- paths, one component at a time ------------------------------------------------------

    @staticmethod
    def _split(key: str) -> tuple[list[str], str]:
        """The folders and the name of ``key``; StorageError for a key that could climb out."""
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts):
            raise StorageError(f"invalid object key {key!r}")
        return parts[:-1], parts[-1]

    def _refused(self, rel: str) -> StorageError:
        return StorageError(
            f"refusing to follow the symlink {rel} inside the repository {self.root}"
        )

    def _open_dir(self, folders: list[str], *, create: bool) -> int:
        """A descriptor of ``folders`` below the root, never reached through a link.

        Missing folders are made with ``create``, else FileNotFoundError is raised.
        """
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            if not create:
                raise
            try:
                _make_group_dirs(self.root)
                fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError as exc:
                raise StorageError(f"cannot create {self.root}: {exc.strerror}") from exc
        for i, name in enumerate(folders):
            try:
                fd = self._open_child(fd, name, "/".join(folders[: i + 1]), create)
            except BaseException:
                os.close(fd)
                raise
        return fd

    def _open_child(self, parent: int, name: str, rel: str, create: bool) -> int:
        """Open folder ``name`` in ``parent`` and close ``parent``."""
        try:
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=parent)
            except FileNotFoundError:
                if not create:
                    raise
                made = True
                try:
                    os.mkdir(name, DIR_MODE, dir_fd=parent)
                except FileExistsError:  # a concurrent writer made it
                    made = False
                child = os.open(name, _DIR_FLAGS, dir_fd=parent)
                if made:
                    os.fchmod(child, DIR_MODE)  # whatever the umask
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                if self._is_link(parent, name):
                    raise self._refused(rel) from exc
                raise StorageError(f"{rel} in the repository {self.root} is not a folder") from exc
            if isinstance(exc, FileNotFoundError):
                raise
            raise StorageError(f"cannot open {rel} in {self.root}: {exc.strerror}") from exc
        os.close(parent)
        return child

    @staticmethod
    def _is_link(parent: int, name: str) -> bool:
        try:
            return stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
        except OSError:
            return False

    def _open_object(self, key: str) -> int:
        """A read descriptor of the regular file ``key``; ObjectNotFound when it is missing."""
        folders, name = self._split(key)
        try:
            dfd = self._open_dir(folders, create=False)
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=dfd)
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise self._refused(key) from exc
            raise StorageError(f"cannot read {key}: {exc.strerror}") from exc
        finally:
            os.close(dfd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StorageError(f"{key} in the repository {self.root} is not a regular file")
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd

    # -- the interface -----------------------------------------------------------------------

    def put(self, key: str, data: bytes, *, create_only: bool = False) -> bool:
        folders, name = self._split(key)
        tmp = f"{self._host}.{os.getpid()}.{uuid.uuid4().hex}"
        tmpdir = self._open_dir([_TMP], create=True)
        try:
            final = self._open_dir(folders, create=True)
            try:
                return self._put(key, data, create_only, tmpdir, tmp, final, name)
            finally:
                os.close(final)
        finally:
            os.close(tmpdir)

    def _put(
        self,
        key: str,
        data: bytes,
        create_only: bool,
        tmpdir: int,
        tmp: str,
        final: int,
        name: str,
    ) -> bool:
        try:
            fd = os.open(tmp, _WRITE_FLAGS, FILE_MODE, dir_fd=tmpdir)
            try:
                os.fchmod(fd, FILE_MODE)  # whatever the umask
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self._fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if create_only:
                try:
                    # linkat without AT_SYMLINK_FOLLOW: an existing name (a link too) is kept.
                    os.link(tmp, name, src_dir_fd=tmpdir, dst_dir_fd=final, follow_symlinks=False)
                except FileExistsError:
                    return False
                finally:
                    os.unlink(tmp, dir_fd=tmpdir)
            else:
                # rename replaces a link at the final name; it never writes through it.
                os.replace(tmp, name, src_dir_fd=tmpdir, dst_dir_fd=final)
            if self._fsync:
                os.fsync(final)
            return True
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=tmpdir)
            raise StorageError(f"cannot write {key}: {exc.strerror}") from exc

    def get(self, key: str) -> bytes:
        fd = self._open_object(key)
        try:
            with os.fdopen(fd, "rb", closefd=False) as f:
                return f.read()
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc.strerror}") from exc
        finally:
            os.close(fd)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        fd = self._open_object(key)
        try:
            with os.fdopen(fd, "rb", closefd=False) as f:
                f.seek(start, os.SEEK_END if start < 0 else os.SEEK_SET)
                return f.read(length)
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc.strerror}") from exc
        finally:
            os.close(fd)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        start = prefix.strip("/")
        if start:
            folders, last = self._split(start)
            start_parts = [*folders, last]
        else:
            start_parts = []
        stack = [start_parts]
        while stack:
            current = stack.pop()
            found: list[ObjectInfo] = []
            try:
                fd = self._open_dir(current, create=False)
            except FileNotFoundError:
                continue
            try:
                with os.scandir(fd) as it:
                    entries = list(it)
                for entry in entries:
                    if not current and entry.name == _TMP:
                        continue
                    rel = "/".join([*current, entry.name])
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    if stat.S_ISDIR(st.st_mode):
                        stack.append([*current, entry.name])
                    elif stat.S_ISREG(st.st_mode):
                        found.append(ObjectInfo(rel, st.st_size, st.st_mtime))
                    elif stat.S_ISLNK(st.st_mode):
                        raise self._refused(rel)
            except OSError as exc:
                shown = "/".join(current) or self.root
                raise StorageError(f"cannot list {shown}: {exc.strerror}") from exc
            finally:
                os.close(fd)
            yield from found

    def stat(self, key: str) -> ObjectInfo | None:
        folders, name = self._split(key)
        try:
            dfd = self._open_dir(folders, create=False)
        except FileNotFoundError:
            return None
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot stat {key}: {exc.strerror}") from exc
        finally:
            os.close(dfd)
        if stat.S_ISLNK(st.st_mode):
            raise self._refused(key)
        return ObjectInfo(key, st.st_size, st.st_mtime)

    def delete(self, key: str) -> None:
        folders, name = self._split(key)
        try:
            dfd = self._open_dir(folders, create=False)
        except FileNotFoundError:
            return
        try:
            os.unlink(name, dir_fd=dfd)  # a link is removed itself, never what it points to
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot delete {key}: {exc.strerror}") from exc
        finally:
            os.close(dfd)

    def sweep(self, max_age: float) -> int:
        """Remove temp files of dead writers on this host at once, of anyone after ``max_age``.

        Only regular files named exactly as ``put`` names them are candidates.
        """
        try:
            tmpdir = self._open_dir([_TMP], create=False)
        except (FileNotFoundError, StorageError):
            return 0
        removed = 0
        now = time.time()
        try:
            with os.scandir(tmpdir) as it:
                entries = list(it)
            for entry in entries:
                match = _TMP_NAME.fullmatch(entry.name)
                if match is None:
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    host, pid = match.group(1), int(match.group(2))
                    dead = host == self._host and not pid_alive(pid)
                    if dead or now - st.st_mtime > max_age:
                        os.unlink(entry.name, dir_fd=tmpdir)
                        removed += 1
                except OSError:
                    continue
        except OSError:
            return removed
        finally:
            os.close(tmpdir)
        return removed
