"""Finding numbered tar archives (a directory or a storage prefix) and opening them as streams.

Archives are named ``<N>.tar.gz``, ``<N>.tgz`` (the documented S3 example) or ``<N>.tar.zstd``,
``<N>.tar.zst`` (the operator's PVC image). The compression is taken from the first bytes, not
the name. Storage objects are read with sequential ranged reads, so an archive of any size is
streamed with bounded memory; the storage interface has no streaming ``get``.
"""

from __future__ import annotations

import gzip
import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, cast

import zstandard

from jenkins_backup.errors import CorruptObject, StorageError, UsageError
from jenkins_backup.storage.base import Storage

_NAME = re.compile(r"^(\d{1,18})\.(?:tar\.gz|tgz|tar\.zstd|tar\.zst)$")
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_RANGE_BLOCK = 8 << 20


@dataclass(frozen=True)
class ArchiveRef:
    """One archive to import: its number, its time (the new backup's commit time), a way in."""

    name: str  # for messages
    number: int
    time_ns: int
    size: int
    open: Callable[[], io.BufferedReader]


def archive_number(filename: str) -> int | None:
    m = _NAME.match(filename)
    return int(m.group(1)) if m and int(m.group(1)) > 0 else None


def local_archive(path: str, number: int) -> ArchiveRef:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UsageError(f"cannot read archive {path}: {exc.strerror}") from exc
    return ArchiveRef(path, number, st.st_mtime_ns, st.st_size, lambda: open(path, "rb"))


def stored_archive(storage: Storage, key: str, number: int) -> ArchiveRef:
    info = storage.stat(key)
    if info is None:
        raise UsageError(f"no archive {key} in {storage.describe()}")
    return _stored(storage, key, number, info.size, info.mtime)


def _stored(storage: Storage, key: str, number: int, size: int, mtime: float) -> ArchiveRef:
    def opener() -> io.BufferedReader:
        return io.BufferedReader(_RangeReader(storage, key, size), _RANGE_BLOCK)

    name = f"{storage.describe().rstrip('/')}/{key}"
    return ArchiveRef(name, number, round(mtime * 1e9), size, opener)


def directory_archives(path: str) -> list[ArchiveRef]:
    """Every numbered archive directly in ``path``, oldest first (by mtime, then number)."""
    try:
        entries = list(os.scandir(path))
    except OSError as exc:
        raise UsageError(f"cannot list {path}: {exc.strerror}") from exc
    found = []
    for de in entries:
        number = archive_number(de.name)
        if number is not None and de.is_file():
            found.append(local_archive(de.path, number))
    return sorted(found, key=lambda a: (a.time_ns, a.number))


def storage_archives(storage: Storage) -> list[ArchiveRef]:
    """Every numbered archive directly under the storage's root (an S3 prefix), oldest first."""
    found = []
    for info in storage.list(""):
        if "/" in info.key:
            continue
        number = archive_number(info.key)
        if number is not None:
            found.append(_stored(storage, info.key, number, info.size, info.mtime))
    return sorted(found, key=lambda a: (a.time_ns, a.number))


class _RangeReader(io.RawIOBase):
    """A storage object read front to back with ranged gets."""

    def __init__(self, storage: Storage, key: str, size: int) -> None:
        self._storage = storage
        self._key = key
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        want = min(len(buf), self._size - self._pos)
        if want <= 0:
            return 0
        data = self._storage.get_range(self._key, self._pos, want)
        if not data:
            raise StorageError(f"{self._key} ended early while being read")
        buf[: len(data)] = data
        self._pos += len(data)
        return len(data)


class _ZstdReader(io.RawIOBase):
    """Decompresses every zstd frame of a stream, and fails on a truncated last frame.

    (zstandard's stream_reader reports a frame cut short as a clean end of data; a partial
    archive must never be imported as a backup.)
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._pending = b""
        self._in_frame = False

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            data = self._raw.read(1 << 20)
            if not data:
                if self._in_frame:
                    raise CorruptObject("the zstd stream is truncated")
                return 0
            self._feed(data)
        n = min(len(buf), len(self._pending))
        buf[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _feed(self, data: bytes) -> None:
        out = []
        while data:
            self._in_frame = True
            try:
                out.append(self._obj.decompress(data))
            except zstandard.ZstdError as exc:
                raise CorruptObject(f"the zstd stream is damaged: {exc}") from exc
            if not self._obj.eof:
                break
            self._in_frame = False
            data = self._obj.unused_data
            self._obj = self._dctx.decompressobj()
        self._pending += b"".join(out)


def decompressed(raw: io.BufferedReader) -> BinaryIO:
    """The tar stream inside a gzip or zstd archive, detected from its first bytes."""
    head = raw.peek(4)[:4]
    if not head:
        raise CorruptObject("the archive is empty")
    if head.startswith(_GZIP_MAGIC):
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    if head.startswith(_ZSTD_MAGIC):
        return io.BufferedReader(_ZstdReader(raw), 1 << 20)
    raise CorruptObject("not a gzip or zstd compressed archive")
