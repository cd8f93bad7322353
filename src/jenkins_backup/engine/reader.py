"""Reading one file into content-defined chunks, safely while Jenkins writes to it."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pyfastcdc import FastCDC

from jenkins_backup.repository.config import SMALL_FILE, ChunkerParams

# Files up to SMALL_FILE are one blob: most of a Jenkins home (build.xml, logs, changelogs).
_RETRIES = 3


class SkipFile(Exception):
    """The entry is not a regular file any more, or cannot be read; carries the reason."""


@dataclass(frozen=True)
class ReadResult:
    chunks: tuple[bytes, ...]
    size: int
    st: os.stat_result  # the stat taken before the consistent read
    changed: bool  # still changing after retries: stored as read, with a warning


def chunker(params: ChunkerParams) -> FastCDC:
    return FastCDC(
        params.avg_size, min_size=params.min_size, max_size=params.max_size, seed=params.seed
    )


def read_file(
    path: bytes,
    params: ChunkerParams,
    store: Callable[[bytes | memoryview], bytes],
) -> ReadResult:
    """Read the file at ``path`` and pass each chunk to ``store``, which returns the chunk's id.

    The file is opened without following symlinks and without blocking (a FIFO swapped in
    after the scan must not hang the backup). If its size or mtime moves during the read, it is
    read again, up to a few times, so the stored version is one consistent version.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise SkipFile(exc.strerror or str(exc)) from exc
    try:
        for attempt in range(_RETRIES):
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                raise SkipFile("not a regular file any more")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks, size = _read_chunks(fd, before.st_size, params, store)
            after = os.fstat(fd)
            stable = (
                after.st_size == before.st_size == size and after.st_mtime_ns == before.st_mtime_ns
            )
            if stable or attempt == _RETRIES - 1:
                return ReadResult(tuple(chunks), size, before, not stable)
        raise AssertionError("unreachable")
    except OSError as exc:
        raise SkipFile(exc.strerror or str(exc)) from exc
    finally:
        os.close(fd)


def _read_chunks(
    fd: int, expected: int, params: ChunkerParams, store: Callable[[bytes | memoryview], bytes]
) -> tuple[list[bytes], int]:
    if expected <= SMALL_FILE:
        data = _read_all(fd, expected)
        if len(data) <= SMALL_FILE:
            return [store(data)], len(data)
        # Grew past the small-file limit while we looked: chunk what we have and the rest.
        return _chunk_stream(fd, params, store, prefix=data)
    return _chunk_stream(fd, params, store)


def _read_all(fd: int, expected: int) -> bytes:
    parts = []
    want = max(expected, 1) + 1  # one more byte reveals growth
    while True:
        block = os.read(fd, max(want, 65536))
        if not block:
            break
        parts.append(block)
        if sum(map(len, parts)) > SMALL_FILE:
            break
    return b"".join(parts)


class _FdStream:
    """Adapts a raw fd (with an optional already-read prefix) to readinto()."""

    def __init__(self, fd: int, prefix: bytes = b"") -> None:
        self.fd = fd
        self.prefix = memoryview(prefix)

    def readinto(self, buf: memoryview) -> int:
        if self.prefix:
            n = min(len(buf), len(self.prefix))
            buf[:n] = self.prefix[:n]
            self.prefix = self.prefix[n:]
            return n
        return os.readv(self.fd, [buf])


def _chunk_stream(
    fd: int,
    params: ChunkerParams,
    store: Callable[[bytes | memoryview], bytes],
    prefix: bytes = b"",
) -> tuple[list[bytes], int]:
    ids = []
    size = 0
    for chunk in chunker(params).cut_stream(_FdStream(fd, prefix)):
        ids.append(store(chunk.data))
        size += chunk.length
    return ids, size


def iter_file_chunks(path_fd: int, params: ChunkerParams) -> Iterator[bytes]:
    """Yield the chunk bytes of an open file as the archiver would cut them (restore's check)."""
    os.lseek(path_fd, 0, os.SEEK_SET)
    st = os.fstat(path_fd)
    if st.st_size <= SMALL_FILE:
        yield _read_all(path_fd, st.st_size)
        return
    for chunk in chunker(params).cut_stream(_FdStream(path_fd)):
        yield bytes(chunk.data)
