"""A second process for the unchanged part of a backup.

An unchanged backup of a big home is Python work per directory and per file (list, stat,
compare with the parent snapshot's tree), and threads cannot share it: the GIL. When the walk
opens a wide directory (``jobs/`` with its jobs), it shares that directory's subdirectories with
a helper process: the backup takes them from the front of the list, the helper from the end.
For each, the helper runs the same walk with nothing allowed to be stored or reported, and
answers with the subtree's counts when its tree is exactly the parent snapshot's, or "dirty".

The helper can only save time, never change a backup: a subtree it proves unchanged is one the
backup would have kept as it was, and a dirty subtree, an error, a crash or a stall of the helper
all hand the subtree back to the backup, which walks it itself. The helper stores nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jenkins_backup.engine.scope import Scope
    from jenkins_backup.repository.repo import Repository

log = logging.getLogger(__name__)
# The backup waits this long for an answer without hearing from the helper (it sends a beat
# every few hundred directories) before it walks the subtree itself: a paused helper costs
# this much, once.
STALL_SECONDS = 10.0
_BEAT = -1  # index of a heartbeat message
_READY = -2  # the helper has opened the repository (split 0)


@dataclass(frozen=True, slots=True)
class Task:
    """A subdirectory to prove unchanged: where it is, and its tree in the parent snapshot."""

    path: bytes
    rel: bytes
    name: bytes
    st: os.stat_result
    parent_tree: bytes
    depth: int


@dataclass(frozen=True, slots=True)
class Proof:
    """An unchanged subtree: its tree id (the parent's) and what the backup counts for it."""

    tree: bytes
    nonempty: bool
    files: int
    dirs: int
    bytes: int
    entries: int


class Dirty(Exception):
    """The probe found something to store or to report: the backup walks the subtree."""


Opener = Callable[[], "Repository"]


class Helper:
    """The backup's side of the helper process; started on the first shared directory."""

    def __init__(
        self, opener: Opener, scope: Scope, *, stall_seconds: float = STALL_SECONDS
    ) -> None:
        self._opener = opener
        self._scope = scope
        self._stall = stall_seconds
        self._proc: Any = None
        self._tasks: Any = None
        self._results: Any = None
        self._claims: Any = None
        self._split = 0
        self._count = 0
        self._front = 0
        self._got: set[int] = set()  # tasks of this share the helper has answered
        self.broken = False

    def start(self) -> bool:
        """Start the process if it is not running; False when it cannot help (never fatal)."""
        if self.broken:
            return False
        if self._proc is not None:
            return True
        try:
            ctx = multiprocessing.get_context("spawn")
            self._tasks = ctx.Queue()
            self._results = ctx.Queue()
            self._claims = ctx.Array("q", 3)
            proc = ctx.Process(
                target=_serve,
                args=(
                    self._tasks,
                    self._results,
                    self._claims,
                    self._opener,
                    self._scope,
                    os.getpid(),
                ),
                name="jenkins-backup-helper",
                daemon=True,
            )
            proc.start()
        except Exception as exc:  # never fatal: pickling, semaphores, a missing executable
            log.info("walking with one process: the helper cannot start (%s)", exc)
            self.broken = True
            return False
        self._proc = proc
        return True

    def wait_ready(self, timeout: float) -> bool:
        """Whether the helper opened the repository within ``timeout`` (for tests: a backup
        never waits, it walks on while the helper starts)."""
        try:
            split, idx, _ = self._results.get(timeout=timeout)
        except queue.Empty:
            return False
        return (split, idx) == (0, _READY)

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else int(self._proc.pid)

    def share(self, tasks: list[Task]) -> bool:
        """Begin sharing ``tasks`` (the backup claims from the front, the helper from the end);
        False when the helper is given up: the backup walks them all."""
        self._split += 1
        self._count = len(tasks)
        self._front = 0
        self._got = set()
        with self._locked() as claims:
            if claims is None:
                return False
            claims[0] = self._split
            claims[1] = 0
            claims[2] = len(tasks) - 1
        self._tasks.put((self._split, tasks))
        return True

    def claim(self) -> int | None:
        """The backup's next task, or None when the two sides have met."""
        with self._locked() as claims:
            if claims is None:
                return None  # ``rest`` hands every task the helper did not answer back
            front, back = int(claims[1]), int(claims[2])
            if front > back:
                return None
            claims[1] = front + 1
        self._front = front + 1
        return front

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Any]:
        """The claims under their lock, or None (and the helper given up) when the lock stays
        taken: a helper killed or stopped while holding it (it holds it for microseconds)."""
        lock = self._claims.get_lock()
        if self.broken or not lock.acquire(timeout=self._stall):
            self.broken = True
            yield None
            return
        try:
            yield self._claims
        finally:
            lock.release()

    @property
    def shared(self) -> int:
        """Tasks in the current share."""
        return self._count

    def claimed_by_helper(self) -> int:
        """How many of the shared tasks the helper has claimed so far."""
        with self._locked() as claims:
            return 0 if claims is None else self._count - 1 - int(claims[2])

    def take(self) -> Iterator[tuple[int, Proof | None]]:
        """Answers already in, without waiting."""
        while True:
            try:
                split, idx, proof = self._results.get_nowait()
            except queue.Empty:
                return
            if split == self._split and idx != _BEAT:
                self._got.add(idx)
                yield idx, proof

    def rest(self) -> Iterator[tuple[int, Proof | None]]:
        """After the sides met: the answers for every task the helper claimed (None: walk it
        yourself), waiting while the helper is alive and heard from within the stall bound."""
        missing = set(range(self._front, self._count)) - self._got
        heard = time.monotonic()
        while missing and not self.broken:
            try:
                split, idx, proof = self._results.get(timeout=0.5)
            except queue.Empty:
                if not self._proc.is_alive() or time.monotonic() - heard > self._stall:
                    log.info("the walk helper stopped answering: walking its part here")
                    self.broken = True
                continue
            heard = time.monotonic()
            if split == self._split and idx in missing:
                missing.discard(idx)
                yield idx, proof
        for idx in sorted(missing):
            yield idx, None

    def close(self) -> None:
        proc = self._proc
        self._proc = None
        if proc is None:
            return
        # It holds nothing worth waiting for: stopped at once, even while it still starts.
        proc.kill()
        proc.join(5.0)
        for q in (self._tasks, self._results):
            q.cancel_join_thread()
            q.close()


def _die_with_parent() -> None:
    """Linux: the kernel kills the helper when the backup dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _claim_back(claims: Any, split: int) -> int | None:
    with claims.get_lock():
        if claims[0] != split or claims[2] < claims[1]:
            return None
        idx = int(claims[2])
        claims[2] = idx - 1
        return idx


def _serve(
    tasks: Any, results: Any, claims: Any, opener: Opener, scope: Scope, parent: int
) -> None:
    """The helper process: prove shared subtrees until the backup kills it, or it is orphaned."""
    _die_with_parent()
    if os.getppid() != parent:
        return  # the backup died before the kernel could be told to follow it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.disable(logging.CRITICAL)  # the backup reports; the helper only answers
    from jenkins_backup.engine.archiver import Archiver

    repo = opener()
    results.put((0, _READY, None))
    while True:
        try:
            msg = tasks.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:
                return  # where prctl is not available
            continue
        split, shared = msg

        def beat(split: int = split) -> None:
            results.put((split, _BEAT, None))

        while (idx := _claim_back(claims, split)) is not None:
            archiver = Archiver(repo, None, scope, threads=1, probe=True, beat=beat)
            try:
                proof: Proof | None = archiver.prove(shared[idx])
            except Exception:  # anything unexpected: the backup walks the subtree itself
                proof = None
            finally:
                archiver.close()
            results.put((split, idx, proof))
