"""The backup pipeline: walk JENKINS_HOME, reuse unchanged files, store the rest, build trees.

Directories are visited depth first. Changed files are read, chunked, hashed and compressed by a
thread pool while the walk goes on; a directory's tree is finished once its files are, in the
order the walk produced them (children before parents). The number of files in flight is
bounded, so memory does not grow with the size of the home.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from jenkins_backup.engine.helper_walk import Dirty, Helper, Proof, Task
from jenkins_backup.engine.progress import NoProgress, Progress
from jenkins_backup.engine.reader import SkipFile, read_file
from jenkins_backup.engine.scope import RESTORE_TMP_PREFIX, Scope, restore_temporary
from jenkins_backup.errors import BackupError, CorruptObject
from jenkins_backup.repository.pack import DATA, TREE
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.snapshot import MAX_UNREADABLE_PATHS, SnapshotStats, Unreadable
from jenkins_backup.repository.tree import (
    DIR,
    SYMLINK,
    Entry,
    encode_objs,
    entry_to_obj,
    file_entry,
    raw_entries,
    stored_as,
    stored_subtree,
    unchanged_file,
)
from jenkins_backup.repository.walk import MAX_DEPTH, MAX_ENTRIES
from jenkins_backup.repository.writer import BlobWriter

log = logging.getLogger(__name__)
_MAX_IN_FLIGHT = 512
# Small changed files are read in batches: one task per file costs more than reading it.
_BATCH_FILES = 32
_BATCH_BYTES = 4 << 20
# A directory with this many subdirectories is shared with the helper process
# (engine/helper_walk.py); below that, starting it costs more than it saves.
SPLIT_MIN = 64
_BEAT_EVERY = 256  # directories between the probe's heartbeats


Obj = dict[str, object]


@dataclass(slots=True)
class _Dir:
    name: bytes
    st: os.stat_result
    parent_tree: bytes | None
    parent_count: int = 0  # entries in the parent snapshot's tree of this directory
    parent_obj: Obj | None = None  # this directory's own entry in the parent snapshot
    # (name, item): the parent's stored object when unchanged, else a new Entry or a child
    # directory. Changed files are in ``reads`` until they are stored.
    items: list[tuple[bytes, Obj | Entry | _Dir]] = field(default_factory=list)
    reads: list[Future[list[tuple[bytes, Obj | None]]]] = field(default_factory=list)
    # Found by the listing, handled when the directory is closed (after its subdirectories):
    changed: list[_Changed] = field(default_factory=list)  # files to read
    subdirs: list[_Sub] = field(default_factory=list)  # directories still to visit
    files: int = 0  # regular files in scope, and their bytes
    bytes: int = 0
    entry: Entry | None = None
    clean: bool = False  # identical to the parent snapshot's tree
    wanted: bool = True  # False: walked only because an include pattern lies below
    nonempty: bool = False
    depth: int = 0  # path components below JENKINS_HOME
    check: bool = True  # its entries need scope checks (Scope.needs_check)


Stat = os.stat_result
_DirEntry = os.DirEntry[bytes]
# A changed file: (path, name, path relative to the home, size).
_Changed = tuple[bytes, bytes, bytes, int]


@dataclass(frozen=True, slots=True)
class _Sub:
    """A subdirectory found by a listing, to be visited."""

    path: bytes
    name: bytes
    rel: bytes
    st: os.stat_result
    stored: Obj | None  # its entry in the parent snapshot
    wanted: bool


@dataclass(slots=True)
class _Split:
    """A directory whose subdirectories are shared with the helper."""

    node: _Dir
    subs: list[_Sub]


@dataclass
class _Counters:
    files: int = 0
    dirs: int = 0
    bytes: int = 0
    files_read: int = 0
    bytes_read: int = 0
    warnings: int = 0
    entries: int = 0  # stored, over all trees: restore refuses more than MAX_ENTRIES
    unreadable: int = 0
    unreadable_paths: list[str] = field(default_factory=list)


class Archiver:
    def __init__(
        self,
        repo: Repository,
        writer: BlobWriter | None,
        scope: Scope,
        *,
        threads: int = 8,
        progress: Progress | None = None,
        started_ns: int | None = None,
        helper: Helper | None = None,
        probe: bool = False,
        beat: Callable[[], None] | None = None,
    ) -> None:
        """``started_ns``: the backup's start (wall clock), for the racily clean rule.
        ``helper``: a second process to share wide directories with. ``probe``: the helper's
        own walk, which stores nothing and raises Dirty where a backup would store or report
        (``writer`` is None then; ``beat`` is called every few hundred directories)."""
        self.repo = repo
        self.writer = writer
        self._helper = helper
        self._split: _Split | None = None
        self._probe = probe
        self._beat = beat
        self._opened = 0
        self.proved = 0  # subtrees the helper proved unchanged
        self.scope = scope
        self.threads = threads
        self.progress = progress or NoProgress()
        self._params = repo.config.chunker
        self._roots = frozenset(scope.roots)  # links to directories there are followed
        self._started_ns = time.time_ns() if started_ns is None else started_ns
        self._pending: deque[_Dir] = deque()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._c = _Counters()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="read")

    def run(
        self, home: bytes, parent_tree: bytes | None
    ) -> tuple[bytes, SnapshotStats, Unreadable]:
        """Store the home: (root tree id, stats, what could not be read and is missing)."""
        try:
            st = os.stat(home)
        except OSError as exc:
            raise BackupError(
                f"cannot read JENKINS_HOME {os.fsdecode(home)}: {exc.strerror}"
            ) from exc
        if not stat.S_ISDIR(st.st_mode):
            raise BackupError(f"JENKINS_HOME {os.fsdecode(home)} is not a directory")
        try:
            root = self._open(home, b"", b"", st, parent_tree, 0)
            if root is None:
                raise BackupError(f"cannot list JENKINS_HOME {os.fsdecode(home)}")
            self._walk(root)
            while self._pending:
                self._finish(self._pending.popleft())
        finally:
            self.close()
        assert root.entry is not None
        c = self._c
        stats = SnapshotStats(
            files=c.files,
            dirs=c.dirs,
            bytes=c.bytes,
            files_read=c.files_read,
            bytes_read=c.bytes_read,
            warnings=c.warnings,
        )
        unreadable = Unreadable(c.unreadable, tuple(c.unreadable_paths))
        return root.entry.subtree, stats, unreadable

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._helper is not None:
            self._helper.close()

    def prove(self, task: Task) -> Proof:
        """Probe mode: the counts of a subtree that is exactly its parent snapshot's tree;
        Dirty when anything in it would be stored or reported."""
        assert self._probe
        node = self._open(task.path, task.rel, task.name, task.st, task.parent_tree, task.depth)
        if node is None:
            raise Dirty
        self._walk(node)
        while self._pending:
            self._finish(self._pending.popleft())
        if node.entry is None or node.entry.subtree != task.parent_tree:
            raise Dirty
        c = self._c
        return Proof(node.entry.subtree, node.nonempty, c.files, c.dirs, c.bytes, c.entries)

    def warn(self, msg: str, *args: object) -> None:
        if self._probe:
            raise Dirty
        with self._lock:
            self._c.warnings += 1
        log.warning(msg, *args)

    def skip(self, rel: bytes, msg: str, *args: object) -> None:
        """Warn about an entry in scope that this backup will not hold (recorded in it)."""
        if self._probe:
            raise Dirty
        with self._lock:
            c = self._c
            c.warnings += 1
            c.unreadable += 1
            if len(c.unreadable_paths) < MAX_UNREADABLE_PATHS:
                c.unreadable_paths.append(os.fsdecode(rel))
        log.warning(msg, *args)

    def _parent_entries(self, tree_id: bytes | None) -> dict[bytes, Obj]:
        if tree_id is None:
            return {}
        return raw_entries(self.repo.read_tree_bytes(tree_id, verify=False))

    def _walk(self, root: _Dir) -> None:
        """Depth first with an explicit stack (no recursion limit): a directory is closed once
        all its subdirectories are, so the queue of directories to finish is children first."""
        stack = [root]
        while stack:
            node = stack[-1]
            sub = self._next_subdir(node)
            if sub is None:
                self._close(stack.pop())
                continue
            child = self._open(
                sub.path, sub.rel, sub.name, sub.st, stored_subtree(sub.stored), node.depth + 1
            )
            if child is not None:
                child.parent_obj = sub.stored
                child.wanted = sub.wanted
                node.items.append((sub.name, child))
                stack.append(child)

    def _next_subdir(self, node: _Dir) -> _Sub | None:
        split, helper = self._split, self._helper
        if split is not None and split.node is node and helper is not None:
            for idx, proof in helper.take():
                self._answer(node, split.subs[idx], proof)
            mine = helper.claim()
            if mine is not None:
                return split.subs[mine]
            for idx, proof in helper.rest():
                self._answer(node, split.subs[idx], proof)
            self._split = None
        return node.subdirs.pop() if node.subdirs else None

    def _share(self, node: _Dir) -> None:
        """Share the subdirectories the parent snapshot has trees for with the helper."""
        subs: list[_Sub] = []
        keep: list[_Sub] = []
        tasks: list[Task] = []
        for sub in reversed(node.subdirs):  # listing order
            tree = stored_subtree(sub.stored)
            if tree is None:
                keep.append(sub)
            else:
                subs.append(sub)
                tasks.append(Task(sub.path, sub.rel, sub.name, sub.st, tree, node.depth + 1))
        helper = self._helper
        if len(tasks) >= 2 and helper is not None and helper.start() and helper.share(tasks):
            node.subdirs = keep
            self._split = _Split(node, subs)

    def _answer(self, node: _Dir, sub: _Sub, proof: Proof | None) -> None:
        """A helper's answer: an unchanged subtree is taken whole; any other is walked here."""
        if proof is None:
            node.subdirs.append(sub)
            return
        child = _Dir(sub.name, sub.st, proof.tree, depth=node.depth + 1)
        child.parent_obj = sub.stored
        child.wanted = sub.wanted
        child.nonempty = proof.nonempty
        child.clean = True
        child.entry = Entry(
            sub.name, DIR, stat.S_IMODE(sub.st.st_mode), sub.st.st_mtime_ns, subtree=proof.tree
        )
        node.items.append((sub.name, child))
        self.proved += 1
        c = self._c
        with self._lock:
            c.files += proof.files
            c.bytes += proof.bytes
            c.dirs += proof.dirs
            c.entries += proof.entries
        self.progress.advance(proof.files, proof.bytes)

    def _open(
        self,
        path: bytes,
        rel: bytes,
        name: bytes,
        st: os.stat_result,
        parent_tree: bytes | None,
        depth: int,
    ) -> _Dir | None:
        """List a directory and sort its entries by type; None if it cannot be listed."""
        try:
            with os.scandir(path) as it:
                # Order is irrelevant (trees are sorted when encoded); a killed restore's
                # temporary files are not part of the home.
                listing = [
                    de
                    for de in it
                    if not de.name.startswith(RESTORE_TMP_PREFIX)
                    or restore_temporary(de.name) is None
                ]
        except FileNotFoundError:
            self.warn("directory vanished during backup: %s", _show(rel))
            return None
        except OSError as exc:
            self.skip(rel, "cannot list %s: %s (skipped)", _show(rel), exc.strerror)
            return None
        try:
            parent = self._parent_entries(parent_tree)
        except CorruptObject as exc:
            if self._probe:
                raise Dirty from exc
            # Bit rot in the parent backup must not stop the next one: without its tree this
            # directory is simply read anew, as if it were new.
            log.warning(
                "the previous backup of %s is damaged (%s): reading it anew", _show(rel), exc
            )
            parent_tree, parent = None, {}
        node = _Dir(name, st, parent_tree, len(parent), depth=depth)
        node.check = check = self.scope.needs_check(rel)
        # The loop below runs once per entry of the home: regular files, most of them, are
        # handled inline (a method call each costs a tenth of an unchanged backup).
        get, items, changed = parent.get, node.items, node.changed
        files = nbytes = 0
        for de in listing:
            cname = de.name
            crel = rel + b"/" + cname if rel else cname
            try:
                cst = de.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # vanished between listing and stat: not in this backup
            except OSError as exc:
                self.skip(crel, "cannot stat %s: %s (skipped)", _show(crel), exc.strerror)
                continue
            mode = cst.st_mode
            if stat.S_ISREG(mode):
                if check and not self.scope.wants(crel, False):
                    continue
                files += 1
                nbytes += cst.st_size
                stored = get(cname)
                if unchanged_file(stored, cst):
                    items.append((cname, stored))
                else:
                    changed.append((de.path, cname, crel, cst.st_size))
            elif stat.S_ISDIR(mode):
                self._subdir(node, de, crel, cst, parent.get(cname))
            elif stat.S_ISLNK(mode):
                self._link(node, de, crel, cst, parent.get(cname))
            else:  # in the helper, silent: a FIFO must not cost its job a walk every backup
                log.info("skipping special file %s", _show(crel))
        node.files, node.bytes = files, nbytes
        node.subdirs.reverse()  # visited in listing order
        if self._probe and self._beat is not None:
            self._opened += 1
            if self._opened % _BEAT_EVERY == 0:
                self._beat()
        elif (
            self._helper is not None
            and self._split is None
            and parent_tree is not None
            and len(node.subdirs) >= SPLIT_MIN
        ):
            self._share(node)
        return node

    def _subdir(self, node: _Dir, de: _DirEntry, rel: bytes, st: Stat, stored: Obj | None) -> None:
        path, name, check = de.path, de.name, node.check
        if check and not self.scope.descend(rel):
            return
        if node.depth >= MAX_DEPTH:
            self.skip(
                rel,
                "%s lies deeper than %d directories, more than a restore accepts: skipped",
                _show(rel),
                MAX_DEPTH,
            )
            return
        wanted = not check or self.scope.wants(rel, True)
        node.subdirs.append(_Sub(path, name, rel, st, stored, wanted))

    def _link(self, node: _Dir, de: _DirEntry, rel: bytes, st: Stat, stored: Obj | None) -> None:
        path, name, check = de.path, de.name, node.check
        if rel in self._roots:
            try:
                followed = os.stat(path)
            except OSError:
                followed = None  # a dangling link: kept as a link
            if followed is not None and stat.S_ISDIR(followed.st_mode):
                self._subdir(node, de, rel, followed, stored)
                return
        if check and not self.scope.wants(rel, False):
            return
        try:
            target = os.readlink(path)
        except OSError as exc:
            self.skip(rel, "cannot read link %s: %s (skipped)", _show(rel), exc.strerror)
            return
        link = Entry(name, SYMLINK, stat.S_IMODE(st.st_mode), st.st_mtime_ns, target=target)
        node.items.append((name, stored if stored_as(stored, link) else link))

    def _close(self, node: _Dir) -> None:
        """All subdirectories are visited: count, start reading changed files, queue the
        directory to be finished."""
        with self._lock:
            self._c.files += node.files
            self._c.bytes += node.bytes
        unchanged = node.bytes - sum(c[3] for c in node.changed)
        self.progress.advance(node.files - len(node.changed), unchanged)
        self._submit_reads(node, node.changed)
        node.changed = []
        self._pending.append(node)
        # Finish directories as soon as their files are stored (children always come first in
        # the queue), so memory holds the directories in flight, not the whole home.
        pending = self._pending
        while pending and (
            self._in_flight > _MAX_IN_FLIGHT or all(f.done() for f in pending[0].reads)
        ):
            self._finish(pending.popleft())

    def _store_chunk(self, data: bytes | memoryview) -> bytes:
        assert self.writer is not None
        blob_id = self.repo.codec.blob_id(data)
        self.writer.add(DATA, blob_id, data)
        return blob_id

    def _submit_reads(self, node: _Dir, changed: list[_Changed]) -> None:
        if self._probe and changed:
            raise Dirty
        batch: list[tuple[bytes, bytes, bytes]] = []
        size = 0
        for path, name, rel, nbytes in changed:
            batch.append((path, name, rel))
            size += nbytes
            if len(batch) >= _BATCH_FILES or size >= _BATCH_BYTES:
                node.reads.append(self._pool.submit(self._store_batch, batch))
                batch, size = [], 0
        if batch:
            node.reads.append(self._pool.submit(self._store_batch, batch))
        self._in_flight += len(changed)

    def _store_batch(
        self, batch: list[tuple[bytes, bytes, bytes]]
    ) -> list[tuple[bytes, Obj | None]]:
        out: list[tuple[bytes, Obj | None]] = []
        for path, name, rel in batch:
            entry = self._store_file(path, name, rel)
            out.append((name, entry_to_obj(entry) if entry is not None else None))
        return out

    def _store_file(self, path: bytes, name: bytes, rel: bytes) -> Entry | None:
        try:
            r = read_file(path, self._params, self._store_chunk)
        except SkipFile as exc:
            if not os.path.lexists(path):
                self.warn("file vanished during backup: %s", _show(rel))
            else:
                self.skip(rel, "cannot read %s: %s (skipped)", _show(rel), exc)
            return None
        if r.changed:
            self.warn("file changed while being read: %s (stored as read)", _show(rel))
        with self._lock:
            self._c.files_read += 1
            self._c.bytes_read += r.size
        self.progress.advance(1, r.size, rel)
        return file_entry(name, r.st, r.size, r.chunks, self._started_ns)

    def _finish(self, node: _Dir) -> None:
        named: list[tuple[bytes, Obj]] = []
        clean = node.parent_tree is not None
        for name, item in node.items:
            if isinstance(item, dict):
                named.append((name, item))
            elif isinstance(item, _Dir):
                assert item.entry is not None, "children finish before their parent"
                if item.wanted or item.nonempty:
                    obj = entry_to_obj(item.entry)
                    named.append((name, obj))
                    clean = clean and item.clean and obj == item.parent_obj
                else:
                    clean = False
            else:
                named.append((name, entry_to_obj(item)))
                clean = False
        for fut in node.reads:
            clean = False
            for name, stored in fut.result():
                self._in_flight -= 1
                if stored is None:
                    with self._lock:
                        self._c.files -= 1
                else:
                    named.append((name, stored))
        node.reads = []
        self._c.entries += len(named)
        if self._c.entries > MAX_ENTRIES:
            raise BackupError(
                f"JENKINS_HOME holds more than {MAX_ENTRIES} entries in scope, "
                "more than a restore accepts"
            )
        clean = clean and len(named) == node.parent_count
        node.items = []
        node.nonempty = bool(named)
        if clean and node.parent_tree is not None:
            tree_id = node.parent_tree  # unchanged directory: nothing to encode or store
        else:
            data = encode_objs(named)
            tree_id = self.repo.codec.blob_id(data)
            if tree_id != node.parent_tree:
                if self.writer is None:  # the probe: a new tree is a change
                    raise Dirty
                self.writer.add(TREE, tree_id, data)
        node.clean = tree_id == node.parent_tree
        with self._lock:
            self._c.dirs += 1
        node.entry = Entry(
            node.name, DIR, stat.S_IMODE(node.st.st_mode), node.st.st_mtime_ns, subtree=tree_id
        )


def _show(rel: bytes) -> str:
    return repr(os.fsdecode(rel))[1:-1]
