"""The walk helper (a second process proving subtrees unchanged) never changes a backup.

Each test makes the backup's result with the helper the same as without it, whatever the helper
does: answers, finds changes, stops answering (SIGSTOP) or dies (SIGKILL). The helper really
runs (a spawned process opening the repository). The tests hold the backup's walk at its first
directory until the helper has claimed its share, so that who walks what is known: the backup
takes jobs/ from the front of its listing, the helper from the end, and the last job listed is
made big so that the helper is surely inside it when it is stopped or killed.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from helpers import in_jobs_scope, spawn_cli
from jenkins_backup.engine.archiver import Archiver
from jenkins_backup.engine.helper_walk import Helper, Task
from jenkins_backup.engine.scope import Scope
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.common import existing_repository
from jenkins_backup.repository.layout import pack_key
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.tree import DIR, RACY_COARSE_NS
from jenkins_backup.repository.writer import BlobWriter
from jenkins_backup.settings import Settings, load

JOBS = 70  # more than SPLIT_MIN subdirectories in jobs/: the backup shares them


def at_rest() -> int:
    """A start time after which every file of the home is at rest (not racily clean)."""
    return time.time_ns() + RACY_COARSE_NS


BOUND_S = 60.0  # no wait in these tests lasts longer


@pytest.fixture
def wide_home(home: Path) -> Path:
    """The tiny home with 70 more small jobs, so that jobs/ is a wide directory; the job
    listed last (the helper's first) holds 1,000 more build directories."""
    model = home / "jobs" / "frontend-profile"
    for i in range(JOBS):
        shutil.copytree(model, home / "jobs" / f"job-{i:02d}", symlinks=True)
    big = home / "jobs" / _listing(home)[-1] / "builds"
    for n in range(1000):
        (big / f"extra-{n}").mkdir(parents=True)
    return home


def _listing(home: Path) -> list[str]:
    """jobs/ in the order the walk lists it."""
    with os.scandir(home / "jobs") as it:
        return [de.name for de in it]


@pytest.fixture
def settings(env: dict[str, str], wide_home: Path) -> Settings:
    s = load(environ=env)
    backup(s, 1, now_ns=at_rest())
    return s


def _change(home: Path) -> None:
    """Changes in the backup's part (the first job listed) and in the helper's (the others)."""
    jobs = home / "jobs"
    names = _listing(home)
    (jobs / names[0] / "config.xml").write_text("<project>changed at the front</project>")
    with open(jobs / names[-2] / "config.xml", "a") as f:
        f.write("<!-- changed near the end -->")
    (jobs / names[-4] / "new-file.txt").write_text("new")
    shutil.rmtree(jobs / names[len(names) // 2])
    shutil.copytree(jobs / "job-01", jobs / "job-new", symlinks=True)


class _Gate:
    """Progress that holds the backup's walk at its first directory until ``ready()``."""

    def __init__(self, ready: Callable[[], bool], then: Callable[[], None] = lambda: None):
        self._ready = ready
        self._then = then
        self.held = False

    def total(self, files: int, nbytes: int, *, estimate: bool = False) -> None:
        pass

    def advance(self, files: int, nbytes: int, path: bytes = b"") -> None:
        if self.held:
            return
        self.held = True
        deadline = time.monotonic() + BOUND_S
        while not self._ready():
            assert time.monotonic() < deadline, "the helper never claimed a subtree"
            time.sleep(0.01)
        self._then()

    def close(self) -> None:
        pass


def _helper_claimed(helper: Helper) -> Callable[[], bool]:
    return lambda: helper.claimed_by_helper() > 0


def _helper_claimed_the_rest(helper: Helper) -> Callable[[], bool]:
    return lambda: helper.claimed_by_helper() == helper.shared - 1


def _archive(
    repo: Repository,
    home: Path,
    helper: Helper | None = None,
    progress: _Gate | None = None,
) -> tuple[bytes, tuple[int, int, int], int]:
    """(root tree, (files, dirs, bytes), subtrees the helper proved) of a backup of ``home``."""
    parent = repo.load_snapshot(repo.snapshot_refs()[-1]).tree
    writer = BlobWriter(repo, uploads=2)
    try:
        archiver = Archiver(
            repo,
            writer,
            Scope(),
            threads=2,
            progress=progress,
            started_ns=at_rest(),
            helper=helper,
        )
        tree, stats, _ = archiver.run(os.fsencode(home), parent)
        writer.flush()
    finally:
        writer.close()
    return tree, (stats.files, stats.dirs, stats.bytes), archiver.proved


@pytest.fixture
def helper(settings: Settings) -> Iterator[Helper]:
    h = Helper(partial(existing_repository, settings), Scope(), stall_seconds=1.0)
    assert h.start()
    assert h.wait_ready(BOUND_S), "the helper did not open the repository"
    yield h
    if h.pid is not None:
        os.kill(h.pid, signal.SIGCONT)
    h.close()


def _alone(settings: Settings, home: Path) -> tuple[bytes, tuple[int, int, int], int]:
    return _archive(existing_repository(settings), home)


def test_an_unchanged_home_is_shared_and_stored_as_without_the_helper(
    settings: Settings, wide_home: Path, helper: Helper
) -> None:
    want = _alone(settings, wide_home)
    got = _archive(
        existing_repository(settings), wide_home, helper, _Gate(_helper_claimed_the_rest(helper))
    )
    assert got[:2] == want[:2]
    assert got[2] == helper.shared - 1, "the helper proved every job but the backup's first"


@pytest.mark.parametrize("where", ["s3", "encrypted"])
def test_the_helper_opens_the_repository_the_backup_uses(
    request: pytest.FixtureRequest, env: dict[str, str], wide_home: Path, where: str
) -> None:
    """On S3 and with an encryption key: the helper opens the same repository with the same
    settings, and proves the same trees."""
    if where == "s3":
        server = request.getfixturevalue("s3_server")
        env = {**env, **server.env, "BACKUP_REPOSITORY": server.repo_url("helper")}
    else:
        env = {**env, "BACKUP_ENCRYPTION_KEY": "a passphrase for the helper's test"}
    settings = load(environ=env)
    backup(settings, 1, now_ns=at_rest())
    helper = Helper(partial(existing_repository, settings), Scope(), stall_seconds=1.0)
    try:
        assert helper.start() and helper.wait_ready(BOUND_S)
        want = _alone(settings, wide_home)
        gate = _Gate(_helper_claimed_the_rest(helper))
        got = _archive(existing_repository(settings), wide_home, helper, gate)
    finally:
        helper.close()
    assert got[:2] == want[:2]
    assert got[2] == JOBS + 5 - 1, "the helper proved every job but the backup's first"


def test_changes_the_helper_finds_are_walked_by_the_backup(
    settings: Settings, wide_home: Path, helper: Helper
) -> None:
    _change(wide_home)
    want = _alone(settings, wide_home)
    repo = existing_repository(settings)
    got = _archive(repo, wide_home, helper, _Gate(_helper_claimed_the_rest(helper)))
    assert got[:2] == want[:2]
    # It proved the unchanged jobs of its part and handed back the two it found changed (the
    # deleted job is not listed).
    assert got[2] == helper.shared - 1 - 2


def test_a_damaged_tree_in_the_helpers_part_is_read_anew_by_the_backup(
    settings: Settings, wide_home: Path, helper: Helper
) -> None:
    """Bit rot in the parent's tree of a job the helper takes: it answers dirty, and the backup
    reads that job anew (with its warning), as it does without the helper."""
    repo = existing_repository(settings)
    root = repo.read_tree(repo.load_snapshot(repo.snapshot_refs()[-1]).tree)
    jobs = repo.read_tree(next(e.subtree for e in root if e.name == b"jobs"))
    victim = os.fsencode(_listing(wide_home)[-2])
    loc = repo.locate(next(e.subtree for e in jobs if e.name == victim))
    pack = Path(settings.repository) / pack_key(loc.pack)
    with open(pack, "r+b") as f:  # one byte inside that tree's stored bytes
        f.seek(loc.offset + loc.length // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    want = _alone(settings, wide_home)
    gate = _Gate(_helper_claimed_the_rest(helper))
    got = _archive(existing_repository(settings), wide_home, helper, gate)
    assert got[:2] == want[:2]
    assert got[2] == helper.shared - 1 - 1, "every job of the helper's part but the damaged one"
    assert not helper.broken


@pytest.mark.parametrize("sig", [signal.SIGSTOP, signal.SIGKILL], ids=["stopped", "killed"])
def test_a_helper_that_stops_answering_costs_time_not_data(
    settings: Settings, wide_home: Path, helper: Helper, sig: signal.Signals
) -> None:
    _change(wide_home)
    want = _alone(settings, wide_home)
    pid = helper.pid
    assert pid is not None
    gate = _Gate(_helper_claimed(helper), then=lambda: os.kill(pid, sig))
    got = _archive(existing_repository(settings), wide_home, helper, gate)
    assert got[:2] == want[:2]
    assert helper.broken, "the backup noticed and walked the helper's part itself"


def test_a_claims_lock_left_taken_hands_the_helpers_part_back(
    settings: Settings, wide_home: Path, helper: Helper
) -> None:
    """A helper killed inside its claim leaves the shared lock taken (POSIX semaphores are not
    released by a dying owner): the backup gives the helper up after the stall bound and walks
    every subtree it did not answer, instead of waiting for ever."""
    _change(wide_home)
    want = _alone(settings, wide_home)
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:  # another thread: the lock is reentrant for the backup's own
        lock = helper._claims.get_lock()  # what the dead helper would hold
        with lock:
            taken.set()
            done.wait(BOUND_S)

    holder = threading.Thread(target=hold)

    def take_the_lock() -> None:
        holder.start()
        assert taken.wait(BOUND_S)

    try:
        gate = _Gate(_helper_claimed(helper), then=take_the_lock)
        got = _archive(existing_repository(settings), wide_home, helper, gate)
    finally:
        done.set()
        holder.join(BOUND_S)
    assert got[:2] == want[:2]
    assert helper.broken


def test_the_helpers_answers_match_the_files(
    settings: Settings, wide_home: Path, helper: Helper
) -> None:
    """Asked directly: counts from the parent snapshot for unchanged jobs, dirty for changed."""
    with open(wide_home / "jobs" / "job-05" / "config.xml", "a") as f:
        f.write("<!-- changed -->")
    repo = existing_repository(settings)
    root = repo.read_tree(repo.load_snapshot(repo.snapshot_refs()[-1]).tree)
    jobs = repo.read_tree(next(e.subtree for e in root if e.name == b"jobs"))
    tasks = [
        Task(
            os.fsencode(wide_home / "jobs" / os.fsdecode(e.name)),
            b"jobs/" + e.name,
            e.name,
            os.lstat(wide_home / "jobs" / os.fsdecode(e.name)),
            e.subtree,
            1,
        )
        for e in jobs
        if e.kind == DIR and e.name.startswith(b"job-")
    ]
    assert helper.share(tasks)
    assert helper.claim() is not None  # the backup's side takes one, the helper the rest
    answers = dict(helper.rest())
    assert len(answers) == len(tasks) - 1
    for idx, proof in answers.items():
        task = tasks[idx]
        if task.name == b"job-05":
            assert proof is None
            continue
        assert proof is not None and proof.tree == task.parent_tree
        job = Path(os.fsdecode(task.path))
        files = [
            p
            for p in job.rglob("*")
            if p.is_file()
            and not p.is_symlink()
            and in_jobs_scope(f"jobs/{job.name}/{p.relative_to(job)}")
        ]
        assert proof.files == len(files)
        assert proof.bytes == sum(p.stat().st_size for p in files)


def test_a_killed_backup_takes_its_helper_with_it(
    settings: Settings, env: dict[str, str], wide_home: Path
) -> None:
    """The console script as the operator runs it: SIGKILL while the helper walks."""
    for i in range(JOBS):  # enough work that the helper is still busy when the kill comes
        job = wide_home / "jobs" / f"job-{i:02d}"
        for n in range(300):  # and more entries than HELPER_MIN_ENTRIES
            (job / "builds" / f"more-{n}").mkdir(parents=True)
    backup(settings, 2, now_ns=at_rest())
    proc = spawn_cli(["backup", "3"], env=env)
    deadline = time.monotonic() + BOUND_S
    children: list[int] = []
    while not children and proc.poll() is None and time.monotonic() < deadline:
        children = [c for c in _children(proc.pid) if b"spawn_main" in _cmdline(c)]
        time.sleep(0.01)
    if not children:
        pytest.fail("the backup finished or failed before it started its helper")
    children = _children(proc.pid)  # the helper and multiprocessing's resource tracker
    proc.kill()
    proc.wait(BOUND_S)
    deadline = time.monotonic() + BOUND_S
    while any(_alive(c) for c in children):
        assert time.monotonic() < deadline, "a helper outlived its killed backup"
        time.sleep(0.01)


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
