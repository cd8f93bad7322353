"""The restore pipeline: check the whole backup, then write it into JENKINS_HOME.

Every file is written under a temporary name in its own directory, from blobs whose hashes were
verified, then renamed into place: a reader of JENKINS_HOME never sees a half-written file.
Directories are opened one component at a time with O_NOFOLLOW from the target's root, so no
write ever goes through a symlink, and names were validated when the trees were decoded.
Files already present with identical content are left alone, which makes a repeated restore
cheap. Packs are read once per batch of small files; big files are streamed chunk by chunk.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import stat
import threading
from collections import defaultdict, deque
from collections.abc import Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from jenkins_backup.engine.progress import NoProgress, Progress
from jenkins_backup.engine.reader import iter_file_chunks
from jenkins_backup.engine.safe_dirs import open_step
from jenkins_backup.engine.scope import RESTORE_TMP_PREFIX, restore_temporary
from jenkins_backup.engine.selection import Selection
from jenkins_backup.errors import BackupError, CorruptObject, ObjectNotFound
from jenkins_backup.processes import pid_alive
from jenkins_backup.repository.layout import pack_key
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.tree import FILE, SYMLINK, Entry
from jenkins_backup.repository.walk import OnError, Parts, walk

log = logging.getLogger(__name__)

BIG_FILE = 16 << 20
_BATCH_FILES = 2048
_BATCH_BYTES = 64 << 20
# Descriptors stay bounded whatever the home (restore works under ``ulimit -n 64``): batches
# name directories by path and each thread opens them through a small cache of its own.
_WALK_FDS = 8
_THREAD_FDS = 6
_BIG_IN_FLIGHT = 4
_SAFE_MODE = 0o1777  # no setuid or setgid bits, ever


@dataclass(frozen=True)
class RestoreStats:
    files: int
    files_written: int
    files_unchanged: int
    bytes_written: int
    warnings: int
    damaged: tuple[str, ...] = ()  # files not restored: their data fails its checks (sorted)
    damage: str = ""  # why the first of them could not be restored


class Restorer:
    def __init__(
        self,
        repo: Repository,
        target: bytes,
        *,
        threads: int = 8,
        progress: Progress | None = None,
        follow: Collection[Parts] = (),
    ) -> None:
        """``follow``: directories (the scope's roots) that may be links in the target, written
        through as the home itself may be; no other link is ever followed."""
        self.repo = repo
        self.target = target
        self._follow = frozenset(follow)
        self.progress = progress or NoProgress()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="restore")
        self._io_threads = 2
        self._batches = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch")
        self._in_progress: deque[Future[None]] = deque()
        self._pid = os.getpid()
        self._counter = itertools.count()
        self._umask = os.umask(0)
        os.umask(self._umask)
        self._fds = _DirCache(-1, _WALK_FDS, self._follow)
        self._root_fd = -1
        self._lock = threading.Lock()
        self._big_slots = threading.BoundedSemaphore(_BIG_IN_FLIGHT)
        self._damaged: list[tuple[str, str]] = []  # (path, why)
        self._bad: dict[bytes, str] = {}  # blob -> why it could not be read
        self._files = self._written = self._unchanged = self._bytes = self._warnings = 0
        self._select: Selection | None = None

    def warn(self, msg: str, *args: object) -> None:
        with self._lock:
            self._warnings += 1
        log.warning(msg, *args)

    def run(self, tree_id: bytes, select: Selection | None = None) -> RestoreStats:
        """Write the backup whose root tree is ``tree_id``, or only the part ``select`` names
        (only the trees it may need are read; directories outside it are created only on the
        way to what it selects, and keep their own mode and mtime)."""
        self._select = select if select is not None and not select.everything else None
        os.makedirs(self.target, exist_ok=True)
        # The home itself may be a link to the volume (the user's choice); nothing below it may.
        self._root_fd = os.open(self.target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._fds = _DirCache(self._root_fd, _WALK_FDS, self._follow)
        big: list[Future[None]] = []
        dirs: list[tuple[Parts, Entry]] = []  # every directory, parents first
        try:
            batch: list[tuple[Parts, Entry]] = []
            batch_bytes = 0
            for dparts, entries in self._walk(tree_id, self._lost_dir):
                if self._select is not None:
                    entries = [e for e in entries if self._select.wants((*dparts, e.name))]
                    if not entries:
                        continue
                dfd = self._fds.get(dparts)  # valid until the next get
                present = _sweep(dfd)
                for e in entries:
                    if e.kind == FILE:
                        self._files += 1
                        if e.name in present and self._known(dfd, e):
                            continue  # the file the backup read: stat, not read, no hand-off
                        if e.size >= BIG_FILE:
                            self._big_slots.acquire()
                            big.append(self._pool.submit(self._big_file, dparts, e))
                            continue
                        batch.append((dparts, e))
                        batch_bytes += e.size
                        if len(batch) >= _BATCH_FILES or batch_bytes >= _BATCH_BYTES:
                            self._flush(batch)
                            batch, batch_bytes = [], 0
                    elif e.kind == SYMLINK:
                        self._symlink(dfd, dparts, e)
                    else:
                        os.close(_open_dir(dfd, (*dparts, e.name), self._follow))
                        dirs.append(((*dparts, e.name), e))
            self._flush(batch)
            self._drain()
            for fut in big:
                fut.result()
            self._apply_dir_metadata(dirs)
        finally:
            for fut in big:
                fut.cancel()
            self._batches.shutdown(wait=True, cancel_futures=True)
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._close_fds()
            os.close(self._root_fd)
        return RestoreStats(
            self._files,
            self._written,
            self._unchanged,
            self._bytes,
            self._warnings,
            tuple(path for path, _ in sorted(self._damaged)),
            min(self._damaged)[1] if self._damaged else "",
        )

    # -- directories ----------------------------------------------------------------------

    def _walk(self, tree_id: bytes, on_error: OnError) -> Iterator[tuple[Parts, list[Entry]]]:
        descend = self._select.descend if self._select is not None else None
        return walk(self.repo.read_tree, tree_id, on_error=on_error, descend=descend)

    def _close_fds(self) -> None:
        self._fds.close()

    def _apply_dir_metadata(self, dirs: list[tuple[Parts, Entry]]) -> None:
        """Set directory modes and mtimes last (writing into a directory changes its mtime),
        children first; a directory already right is left alone (nothing written)."""
        for parts, e in reversed(dirs):
            mode = (e.mode & _SAFE_MODE) | 0o700
            try:  # looked at from its parent, which stays open for its siblings
                st = os.stat(parts[-1], dir_fd=self._fds.get(parts[:-1]), follow_symlinks=False)
            except OSError:
                pass
            else:
                if (
                    stat.S_ISDIR(st.st_mode)
                    and stat.S_IMODE(st.st_mode) == mode
                    and st.st_mtime_ns == e.mtime_ns
                ):
                    continue
            fd = self._fds.get(parts)  # opened with O_NOFOLLOW: never via a link
            st = os.fstat(fd)
            if stat.S_IMODE(st.st_mode) != mode:
                os.fchmod(fd, mode)
            if st.st_mtime_ns != e.mtime_ns:
                os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))

    # -- files ----------------------------------------------------------------------------

    def _same(self, dfd: int, e: Entry) -> bool:
        """True when the file present has the backup's content; fixes its mode and mtime.

        The file the backup itself read (``backed_up_as``) is not read again; any other file
        of the right size is read and its chunks hashed."""
        try:
            st = os.stat(e.name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if not stat.S_ISREG(st.st_mode) or st.st_size != e.size:
            return False
        known = backed_up_as(st, e)
        if known and stat.S_IMODE(st.st_mode) == e.mode & _SAFE_MODE:
            return True
        fd = os.open(e.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        try:
            if not known:
                params = self.repo.config.chunker
                ids = tuple(self.repo.codec.blob_id(c) for c in iter_file_chunks(fd, params))
                if ids != e.content:
                    return False
            if stat.S_IMODE(st.st_mode) != e.mode & _SAFE_MODE:
                os.fchmod(fd, e.mode & _SAFE_MODE)
            if st.st_mtime_ns != e.mtime_ns:
                os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))
        finally:
            os.close(fd)
        return True

    def _known(self, dfd: int, e: Entry) -> bool:
        """True when the file present is the very file the backup read (``backed_up_as``) with
        the right mode: counted as up to date here, in the walk, without batching it."""
        try:
            st = os.stat(e.name, dir_fd=dfd, follow_symlinks=False)
        except OSError:
            return False
        if not (
            stat.S_ISREG(st.st_mode)
            and backed_up_as(st, e)
            and stat.S_IMODE(st.st_mode) == e.mode & _SAFE_MODE
        ):
            return False
        self._unchanged += 1
        self.progress.advance(1, 0)
        return True

    def _flush(self, batch: list[tuple[Parts, Entry]]) -> None:
        """Hand a batch to the batch thread, so that walking the next directories overlaps with
        writing these files."""
        if not batch:
            return
        self._in_progress.append(self._batches.submit(self._process, batch))
        while len(self._in_progress) > 2:  # bounds memory: at most two batches in flight
            self._in_progress.popleft().result()

    def _drain(self) -> None:
        while self._in_progress:
            self._in_progress.popleft().result()

    def _process(self, batch: list[tuple[Parts, Entry]]) -> None:
        # A few coarse tasks, not one per file: thousands of tiny tasks spend more time
        # handing the GIL between threads than doing system calls.
        def check(part: list[tuple[Parts, Entry]]) -> list[tuple[Parts, Entry]]:
            with _DirCache(self._root_fd, _THREAD_FDS, self._follow) as dirs:
                return [(p, e) for p, e in part if not self._same(dirs.get(p), e)]

        parts = _slices(batch, self._io_threads)
        todo = [item for part in self._pool.map(check, parts) for item in part]
        with self._lock:
            self._unchanged += len(batch) - len(todo)
        skipped = sum(e.size for _, e in batch) - sum(e.size for _, e in todo)
        self.progress.advance(len(batch) - len(todo), skipped)
        if not todo:
            return
        blobs = self._fetch({cid for _, e in todo for cid in e.content})

        def write(part: list[tuple[Parts, Entry]]) -> None:
            with _DirCache(self._root_fd, _THREAD_FDS, self._follow) as dirs:
                for p, e in part:
                    if all(c in blobs for c in e.content):
                        self._write_chunks(dirs.get(p), p, e, (blobs[c] for c in e.content))
                    else:
                        why = next((self._bad[c] for c in e.content if c in self._bad), "")
                        self._damage(p, e, why or "its data is not in the repository")

        list(self._pool.map(write, _slices(todo, self._io_threads)))

    def _lost_dir(self, dparts: Parts, exc: CorruptObject | ObjectNotFound) -> None:
        """A directory whose tree fails its checks: nothing below it is known, so nothing
        below it is written (what is there stays); it is named, and the rest is restored."""
        log.warning("damaged directory %s: %s", _show(dparts), exc)
        with self._lock:
            self._damaged.append((os.fsdecode(b"/".join(dparts)) + "/", str(exc)))

    def _damage(self, dparts: Parts, e: Entry, why: str) -> None:
        """A file whose data fails its checks: not written (what is there stays), named."""
        with self._lock:
            self._damaged.append((os.fsdecode(b"/".join((*dparts, e.name))), why))

    def _fetch(self, ids: set[bytes]) -> dict[bytes, bytes]:
        """Read the needed blobs, one ranged read per pack, verifying each blob's hash.

        A blob that cannot be read or fails its hash is left out (bit rot): the files that
        need it are not written and are named, every other file is.
        """
        by_pack: dict[bytes, list[tuple[bytes, int, int, int]]] = defaultdict(list)
        for cid in ids:
            loc = self.repo.find(cid)
            if loc is not None:
                by_pack[loc.pack].append((cid, loc.offset, loc.length, loc.raw_length))

        def read(pack: bytes) -> list[tuple[bytes, bytes]]:
            items = by_pack[pack]
            start = min(i[1] for i in items)
            end = max(i[1] + i[2] for i in items)
            try:
                data = memoryview(self.repo.storage.get_range(pack_key(pack), start, end - start))
            except ObjectNotFound:
                log.warning("pack %s is missing", pack.hex()[:16])
                with self._lock:
                    self._bad.update((i[0], f"pack {pack.hex()[:16]} is missing") for i in items)
                return []
            out: list[tuple[bytes, bytes]] = []
            codec = self.repo.codec
            for cid, off, ln, raw in items:
                sealed = data[off - start : off - start + ln]
                try:
                    if len(sealed) != ln:
                        raise CorruptObject(f"pack {pack.hex()[:16]} is truncated")
                    out.append((cid, codec.unseal_verified(sealed, cid, raw)))
                except CorruptObject as exc:
                    log.warning("damaged data in pack %s: %s", pack.hex()[:16], exc)
                    with self._lock:
                        self._bad[cid] = str(exc)
            return out

        out: dict[bytes, bytes] = {}
        for pairs in self._pool.map(read, list(by_pack)):
            out.update(pairs)
        return out

    def _big_file(self, dparts: Parts, e: Entry) -> None:
        try:
            with _DirCache(self._root_fd, 1, self._follow) as dirs:
                dfd = dirs.get(dparts)
                if self._same(dfd, e):
                    with self._lock:
                        self._unchanged += 1
                    self.progress.advance(1, e.size, b"/".join((*dparts, e.name)))
                    return
                try:
                    chunks = (self.repo.read_blob(c) for c in e.content)
                    self._write_chunks(dfd, dparts, e, chunks)
                except CorruptObject as exc:  # the temporary file is gone; what was there stays
                    log.warning("damaged data of %s: %s", _show((*dparts, e.name)), exc)
                    self._damage(dparts, e, str(exc))
        finally:
            self._big_slots.release()

    def _tmp_name(self) -> bytes:
        """Unique per process and file; a killed restore's leftovers never collide."""
        return RESTORE_TMP_PREFIX + f"{self._pid}-{next(self._counter)}".encode()

    def _write_chunks(self, dfd: int, dparts: Parts, e: Entry, chunks: Iterator[bytes]) -> None:
        tmp = self._tmp_name()
        mode = e.mode & _SAFE_MODE
        # Created with its final mode (a writable descriptor regardless), so the usual file
        # needs no chmod; only bits the umask removes, or the sticky bit, need one.
        fd = os.open(
            tmp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            mode & 0o777,
            dir_fd=dfd,
        )
        try:
            size = 0
            try:
                for data in chunks:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    size += len(data)
                if size != e.size:
                    raise CorruptObject(f"restored size of {e.name!r} does not match the backup")
                if mode & self._umask or mode & 0o1000:
                    os.fchmod(fd, mode)
                os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))
            finally:
                os.close(fd)
            os.rename(tmp, e.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            if isinstance(exc, OSError) and exc.errno in (errno.EISDIR, errno.ENOTEMPTY):
                self.warn("a directory is in the way of file %r: not restored", e.name)
                return
            raise
        with self._lock:
            self._written += 1
            self._bytes += size
        self.progress.advance(1, size, b"/".join((*dparts, e.name)))

    def _symlink(self, dfd: int, dparts: Parts, e: Entry) -> None:
        try:
            if os.readlink(e.name, dir_fd=dfd) == e.target:
                st = os.stat(e.name, dir_fd=dfd, follow_symlinks=False)
                if st.st_mtime_ns != e.mtime_ns:  # already right: nothing written
                    os.utime(e.name, ns=(e.mtime_ns, e.mtime_ns), dir_fd=dfd, follow_symlinks=False)
                return
        except OSError:
            pass
        tmp = self._tmp_name()
        os.symlink(e.target, tmp, dir_fd=dfd)
        try:
            os.utime(tmp, ns=(e.mtime_ns, e.mtime_ns), dir_fd=dfd, follow_symlinks=False)
            os.rename(tmp, e.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except OSError as exc:
            os.unlink(tmp, dir_fd=dfd)
            if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                self.warn("a directory is in the way of link %s: not restored", _show(dparts))
                return
            raise


def backed_up_as(st: os.stat_result, e: Entry) -> bool:
    """Whether ``st`` is the very file the backup read for ``e``, unchanged since: same inode,
    size, mtime and ctime, the rule by which a backup reuses a file without reading it.

    The ctime is the file system's own stamp, set on every change of content or metadata and
    never by a user; an entry stored with ctime 0 (read within a tick of its last change, the
    racily clean rule) never matches. So a match proves the content is what the backup stored,
    exactly as far as the next backup's reuse of it does; a file restored by us, copied, or
    rewritten has another ctime (or inode) and is read and hashed instead.
    """
    return (
        e.ctime_ns != 0
        and st.st_ctime_ns == e.ctime_ns
        and st.st_ino == e.inode
        and st.st_size == e.size
        and st.st_mtime_ns == e.mtime_ns
    )


def _sweep(dfd: int) -> set[bytes]:
    """Remove what killed restores left in this directory: their temp names, nothing else.
    Returns the names present (a file not among them needs no look before it is written)."""
    with os.scandir(dfd) as it:
        present = {os.fsencode(de.name) for de in it}
    names = [n for n in present if n.startswith(RESTORE_TMP_PREFIX)]
    for name in names:
        pid = restore_temporary(name)
        if pid is not None and not pid_alive(pid):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.unlink(name, dir_fd=dfd)
    return present


class _DirCache:
    """Directories below the target by path, opened (and created) one component at a time
    with O_NOFOLLOW; at most ``size`` stay open. Used by one thread; a descriptor it returns is
    valid until its next ``get``."""

    def __init__(self, root: int, size: int, follow: frozenset[Parts]) -> None:
        self.root = root
        self.size = size
        self.follow = follow
        self._fds: dict[Parts, int] = {}

    def get(self, parts: Parts) -> int:
        if not parts:
            return self.root
        fd = self._fds.get(parts)
        if fd is not None:
            return fd
        known = len(parts) - 1
        while known and parts[:known] not in self._fds:
            known -= 1
        base = self._fds[parts[:known]] if known else self.root
        cur = base
        try:
            for i in range(known, len(parts)):
                nxt = _open_dir(cur, parts[: i + 1], self.follow)
                if cur != base:
                    os.close(cur)
                cur = nxt
        except BaseException:
            if cur != base:
                os.close(cur)
            raise
        if len(self._fds) >= self.size:
            self.close()
        self._fds[parts] = cur
        return cur

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> _DirCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_dir(parent: int, parts: Parts, follow: frozenset[Parts]) -> int:
    """Open (creating as needed) directory ``parts`` in ``parent``, never via a link unless
    ``parts`` is one of the scope's roots (``follow``)."""
    return open_step(parent, parts, follow, create=True, shown=f"{_show(parts)} in the target")


def _slices(items: list[tuple[Parts, Entry]], n: int) -> list[list[tuple[Parts, Entry]]]:
    """``items`` cut into at most ``n`` contiguous slices of similar length."""
    size = -(-len(items) // n)
    return [items[i : i + size] for i in range(0, len(items), size)]


def _show(parts: Parts) -> str:
    return repr(os.fsdecode(b"/".join(parts)))[1:-1]


__all__ = ["BackupError", "RestoreStats", "Restorer"]
