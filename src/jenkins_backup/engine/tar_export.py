"""Writing a snapshot as a zstd-compressed POSIX (PAX) tar stream that GNU tar extracts.

The tar is written in stream mode into a zstd stream writer: memory is bounded by the read-ahead
window, not by the size of the backup. Members come depth first, each directory immediately
followed by its contents (GNU tar applies a directory's mode and mtime once it leaves it).
What extraction gives equals what ``restore`` writes: contents, mtimes to the nanosecond (PAX
``mtime``), modes without setuid/setgid, directories at least rwx for the owner, symlinks
verbatim, and names as raw bytes (PAX ``hdrcharset=BINARY`` when they are not UTF-8).

Chunks are read ahead by a thread pool, in order, within a byte budget: object stores answer
one ranged read per chunk with latency, which a sequential reader would pay file by file.
"""

from __future__ import annotations

import tarfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO

import zstandard

from jenkins_backup.engine.progress import NoProgress, Progress
from jenkins_backup.errors import CorruptObject
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.tree import DIR, FILE, SYMLINK, Entry
from jenkins_backup.repository.walk import Parts, entries

_SAFE_MODE = 0o1777  # as the restorer: no setuid or setgid bits
_READ_AHEAD_BYTES = 64 << 20
_READ_AHEAD_MEMBERS = 4096
OWNER_ID = 1000  # the uid and gid of the Jenkins images; tar as root applies them


@dataclass(frozen=True)
class ExportStats:
    files: int
    dirs: int
    links: int
    bytes: int


def members(repo: Repository, tree_id: bytes) -> Iterator[tuple[Parts, Entry]]:
    """Every entry of the snapshot with its path, each directory followed by its contents."""
    return entries(repo.read_tree, tree_id)


class _ReadAhead:
    """Members in order, with their chunks fetched ahead by a pool within a budget."""

    def __init__(self, repo: Repository, items: Iterator[tuple[Parts, Entry]], threads: int):
        self._repo = repo
        self._items = items
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="export")
        self._queue: deque[tuple[Parts, Entry]] = deque()
        self._chunks: deque[tuple[Future[bytes], int]] = deque()
        self._ids: Iterator[bytes] = iter(())
        self._bytes = 0
        self._done = False

    def _fill(self) -> None:
        index = self._repo.index()
        while self._bytes < _READ_AHEAD_BYTES:
            cid = next(self._ids, None)
            if cid is not None:
                loc = index.get(cid)
                if loc is None:
                    raise CorruptObject(f"chunk {cid.hex()[:16]} is not in the index")
                self._chunks.append((self._pool.submit(self._repo.read_blob, cid), loc.raw_length))
                self._bytes += loc.raw_length
                continue
            if self._done or len(self._queue) >= _READ_AHEAD_MEMBERS:
                return
            item = next(self._items, None)
            if item is None:
                self._done = True
                return
            self._queue.append(item)
            if item[1].kind == FILE:
                self._ids = iter(item[1].content)

    def next_member(self) -> tuple[Parts, Entry] | None:
        if not self._queue:
            self._fill()
        return self._queue.popleft() if self._queue else None

    def next_chunk(self) -> bytes:
        if not self._chunks:
            self._fill()
        fut, size = self._chunks.popleft()
        data = fut.result()
        self._bytes -= size
        self._fill()
        return data

    def close(self) -> None:
        for fut, _ in self._chunks:
            fut.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)


class _Content:
    """A file's content as ``tarfile.addfile`` reads it: from the read-ahead chunks."""

    def __init__(self, ahead: _ReadAhead, e: Entry) -> None:
        self._ahead = ahead
        self._left = len(e.content)
        self._buf = memoryview(b"")

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes across chunk boundaries: tarfile takes a short read for EOF."""
        out: list[bytes] = []
        want = size
        while want:
            while not self._buf and self._left:
                self._buf = memoryview(self._ahead.next_chunk())
                self._left -= 1
            if not self._buf:
                break
            n = len(self._buf) if want < 0 else min(want, len(self._buf))
            out.append(bytes(self._buf[:n]))
            self._buf = self._buf[n:]
            want = want - n if want > 0 else want
        return b"".join(out)

    def finish(self) -> None:
        """Consume what tarfile did not ask for (the empty chunk of an empty file)."""
        if self.read() or self._left:
            raise CorruptObject("a file's data is longer than its recorded size")


class _TarInfo(tarfile.TarInfo):
    """PAX records always hold the raw bytes, without ``hdrcharset=BINARY``.

    tarfile adds that keyword when a name is not UTF-8; GNU tar 1.34 warns that it does not know
    it (on every such member) and uses the raw bytes anyway, which is what we want it to do.
    """

    @classmethod
    def _create_pax_generic_header(
        cls, pax_headers: dict[str, str], type: bytes, encoding: str
    ) -> bytes:
        records = b""
        for keyword, value in pax_headers.items():
            kv = keyword.encode("utf-8") + b"=" + value.encode("utf-8", "surrogateescape")
            size = len(kv) + 3  # ' ', '\n' and at least one digit
            while len(str(size)) + len(kv) + 2 != size:
                size = len(str(size)) + len(kv) + 2
            records += str(size).encode("ascii") + b" " + kv + b"\n"
        info = {
            "name": "././@PaxHeader",
            "type": type,
            "size": len(records),
            "magic": tarfile.POSIX_MAGIC,
        }
        header: bytes = cls._create_header(  # type: ignore[attr-defined]
            info, tarfile.USTAR_FORMAT, "ascii", "replace"
        )
        payload: bytes = cls._create_payload(records)  # type: ignore[attr-defined]
        return header + payload


def _info(parts: Parts, e: Entry) -> tarfile.TarInfo:
    info = _TarInfo(b"/".join(parts).decode("utf-8", "surrogateescape"))
    seconds, frac = divmod(e.mtime_ns, 1_000_000_000)
    info.mtime = seconds
    if frac:
        info.pax_headers = {"mtime": f"{seconds}.{frac:09d}"}
    info.uid = info.gid = OWNER_ID
    info.uname = info.gname = ""
    if e.kind == FILE:
        info.type = tarfile.REGTYPE
        info.mode = e.mode & _SAFE_MODE
        info.size = e.size
    elif e.kind == DIR:
        info.type = tarfile.DIRTYPE
        info.mode = (e.mode & _SAFE_MODE) | 0o700
    else:
        info.type = tarfile.SYMTYPE
        info.mode = 0o777
        info.linkname = e.target.decode("utf-8", "surrogateescape")
    return info


def write_tar_zst(
    repo: Repository,
    tree_id: bytes,
    out: BinaryIO,
    *,
    threads: int = 8,
    level: int = 3,
    progress: Progress | None = None,
) -> ExportStats:
    """Write the snapshot with root ``tree_id`` to ``out``; ``out`` is left open."""
    cctx = zstandard.ZstdCompressor(level=level, threads=-1 if threads > 1 else 0)
    with cctx.stream_writer(out, closefd=False) as zout:
        return write_tar(repo, members(repo, tree_id), zout, threads=threads, progress=progress)


def subtree_members(repo: Repository, parts: Parts, entry: Entry) -> Iterator[tuple[Parts, Entry]]:
    """One directory of a backup (found at ``parts``) and everything below it, named from the
    home's root: what ``dump`` of a directory streams."""
    yield parts, entry
    for sub, e in entries(repo.read_tree, entry.subtree):
        yield (*parts, *sub), e


def write_tar(
    repo: Repository,
    items: Iterator[tuple[Parts, Entry]],
    out: BinaryIO | Any,
    *,
    threads: int = 8,
    progress: Progress | None = None,
) -> ExportStats:
    """Write ``items`` as an uncompressed PAX tar stream to ``out`` (left open)."""
    progress = progress or NoProgress()
    files = dirs = links = total = 0
    ahead = _ReadAhead(repo, items, threads)
    try:
        with tarfile.open(
            fileobj=out,
            mode="w|",
            format=tarfile.PAX_FORMAT,
            encoding="utf-8",
            errors="surrogateescape",
        ) as tf:
            while (item := ahead.next_member()) is not None:
                parts, e = item
                info = _info(parts, e)
                if e.kind == FILE:
                    content = _Content(ahead, e)
                    tf.addfile(info, content)
                    content.finish()
                    files += 1
                    total += e.size
                    progress.advance(1, e.size, b"/".join(parts))
                elif e.kind == SYMLINK:
                    tf.addfile(info)
                    links += 1
                else:
                    tf.addfile(info)
                    dirs += 1
    finally:
        ahead.close()
    return ExportStats(files, dirs, links, total)
