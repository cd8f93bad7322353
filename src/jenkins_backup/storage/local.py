"""A repository in a local or PVC directory: the embedded default.

Writes go to ``tmp/`` first, are fsynced, then linked (create-only) or renamed into place, so a
crash leaves either nothing or a whole object plus a temp file that a later sweep removes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterator

from jenkins_backup.errors import ObjectNotFound, StorageError
from jenkins_backup.processes import pid_alive
from jenkins_backup.storage.base import ObjectInfo, Storage

_TMP = "tmp"


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStorage(Storage):
    def __init__(self, root: str, *, fsync: bool = True) -> None:
        self.root = os.path.abspath(root)
        self._fsync = fsync
        self._host = socket.gethostname().replace(".", "_")
        self._made: set[str] = set()

    def describe(self) -> str:
        return self.root

    def _path(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"invalid object key {key!r}")
        return os.path.join(self.root, *key.split("/"))

    def _makedirs(self, path: str) -> None:
        if path not in self._made:
            try:
                os.makedirs(path, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create {path}: {exc.strerror}") from exc
            self._made.add(path)

    def put(self, key: str, data: bytes, *, create_only: bool = False) -> bool:
        final = self._path(key)
        tmpdir = os.path.join(self.root, _TMP)
        self._makedirs(tmpdir)
        self._makedirs(os.path.dirname(final))
        tmp = os.path.join(tmpdir, f"{self._host}.{os.getpid()}.{uuid.uuid4().hex}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self._fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if create_only:
                try:
                    os.link(tmp, final)
                except FileExistsError:
                    return False
                finally:
                    os.unlink(tmp)
            else:
                os.replace(tmp, final)
            if self._fsync:
                _fsync_dir(os.path.dirname(final))
            return True
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise StorageError(f"cannot write {key}: {exc.strerror}") from exc

    def get(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc.strerror}") from exc

    def get_range(self, key: str, start: int, length: int) -> bytes:
        try:
            with open(self._path(key), "rb") as f:
                f.seek(start, os.SEEK_END if start < 0 else os.SEEK_SET)
                return f.read(length)
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc.strerror}") from exc

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        stack = [base]
        while stack:
            current = stack.pop()
            try:
                entries = list(os.scandir(current))
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StorageError(f"cannot list {current}: {exc.strerror}") from exc
            for entry in entries:
                rel = os.path.relpath(entry.path, self.root).replace(os.sep, "/")
                if rel == _TMP or rel.startswith(_TMP + "/"):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    yield ObjectInfo(rel, st.st_size, st.st_mtime)

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            st = os.stat(self._path(key))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot stat {key}: {exc.strerror}") from exc
        return ObjectInfo(key, st.st_size, st.st_mtime)

    def delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot delete {key}: {exc.strerror}") from exc

    def sweep(self, max_age: float) -> int:
        """Remove temp files of dead writers on this host at once, of anyone after ``max_age``."""
        tmpdir = os.path.join(self.root, _TMP)
        removed = 0
        now = time.time()
        try:
            entries = list(os.scandir(tmpdir))
        except OSError:
            return 0
        for entry in entries:
            try:
                host, pid, _ = entry.name.split(".", 2)
                dead = host == self._host and not pid_alive(int(pid))
                if dead or now - entry.stat().st_mtime > max_age:
                    os.unlink(entry.path)
                    removed += 1
            except (ValueError, OSError):
                continue
        return removed
