"""Prune removes what no kept backup needs, and nothing else: concurrently, and when killed.

The behavioural tests run on a local directory and on S3 (``repo_env``); sizes and damage are
seen through a client of their own (``RawStore``).
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import replace
from pathlib import Path

from helpers import a_job, describe, in_jobs_scope, spawn_cli
from inprocess import run_cli
from jenkins_backup.errors import BackupError
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.common import latest_intact
from jenkins_backup.operations.prune import prune
from jenkins_backup.operations.restore import restore
from jenkins_backup.operations.verify import verify
from jenkins_backup.repository.gc import collect
from jenkins_backup.repository.layout import pack_key, written_ns
from jenkins_backup.repository.pack import DATA, PackBuilder
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.snapshot import Snapshot
from jenkins_backup.settings import DEFAULT_PRUNE_GRACE, Settings, load
from jenkins_backup.storage.factory import open_storage
from repo_backends import RawStore

Files = dict[bytes, tuple[str, int, int, str]]


def _files(root: Path, keep: object = in_jobs_scope) -> Files:
    return {k: v for k, v in describe(root, keep).items() if v[0] != "dir"}  # type: ignore[arg-type]


def _restored(tmp_path: Path, env: dict[str, str], number: str, name: str) -> Files:
    target = tmp_path / name
    run_cli("restore", number, env={**env, "JENKINS_HOME": str(target)}, check=True)
    return _files(target, lambda rel: True)


def _numbers(env: dict[str, str]) -> list[int]:
    return [r["number"] for r in json.loads(run_cli("list", "--json", env=env, check=True).stdout)]


def _repo(env: dict[str, str]) -> Repository:
    return Repository.open(open_storage(env["BACKUP_REPOSITORY"], env))


def _on_s3(env: dict[str, str]) -> bool:
    return env["BACKUP_REPOSITORY"].startswith("s3://")


GRACE_NS = int(DEFAULT_PRUNE_GRACE * 1e9)


def _prune_later(settings: Settings, passes: int = 3) -> int:
    """Prune ``passes`` times, each one grace period later than the last (time injected, not
    slept through): forget, then condemn, then delete. Returns the bytes freed."""
    now = time.time_ns()
    freed = 0
    for i in range(1, passes + 1):
        freed += prune(settings, now_ns=now + i * (GRACE_NS + 10**9)).gc.bytes_freed
    return freed


def _artifact(home: Path, name: str, size: int = 1 << 20) -> Path:
    path = a_job(home) / "builds" / name
    path.write_bytes(os.urandom(size))
    return path


def test_backup_count_keeps_the_newest(
    tmp_path: Path, home: Path, repo_env: dict[str, str]
) -> None:
    """The PVC image's BACKUP_COUNT: retention runs after each `backup N`, by itself."""
    env = repo_env
    count = {**env, "BACKUP_COUNT": "2", "BACKUP_PRUNE_GRACE": "0.01"}
    states: dict[int, Files] = {}
    for n, kept in ((1, [1]), (2, [1, 2]), (3, [2, 3]), (4, [3, 4])):
        _artifact(home, f"a{n}.bin")
        run_cli("backup", str(n), env=count, check=True)
        states[n] = _files(home)
        assert _numbers(env) == kept
    assert run_cli("restore", "1", env={**env, "JENKINS_HOME": str(tmp_path / "x")}).returncode
    assert _restored(tmp_path, env, "3", "r3") == states[3]
    assert _restored(tmp_path, env, "4", "r4") == states[4]


def test_prune_removes_data_of_forgotten_backups(
    tmp_path: Path, home: Path, repo_env: dict[str, str]
) -> None:
    env = repo_env
    fast = env
    for n in (1, 2, 3):
        _artifact(home, f"a{n}.bin", 2 << 20)
        run_cli("backup", str(n), env=fast, check=True)
    for n in (1, 2):
        (a_job(home) / "builds" / f"a{n}.bin").unlink()
    run_cli("backup", "4", env=fast, check=True)
    state4 = _files(home)
    store = RawStore(env)
    objects = store.sizes()
    before = sum(objects.values())
    dry = run_cli("prune", "--keep-last", "1", "--dry-run", env=fast, check=True)
    assert "would forget backups: 3 2 1" in dry.stdout
    assert _numbers(env) == [1, 2, 3, 4], "a dry run changes nothing"
    assert store.sizes() == objects, "a dry run writes and deletes nothing"
    keep1 = load(environ={**env, "BACKUP_KEEP_LAST": "1"})
    assert prune(keep1).forgotten == [3, 2, 1]
    assert _numbers(env) == [4]
    freed = _prune_later(keep1)
    after = store.total()
    assert after < before - (3 << 19), (before, after)  # a2 at least; a1 shares a pack
    # The bytes prune says it freed left the store (small index objects aside).
    assert abs(before - after - freed) < (52 << 10) + (16 << 10), (before, after, freed)
    run_cli("verify", env=env, check=True)
    assert _restored(tmp_path, env, "4", "r4") == state4


def test_forget_then_number_reuse_after_restoring_an_old_number(
    tmp_path: Path, home: Path, repo_env: dict[str, str]
) -> None:
    env = repo_env
    keep3 = {**env, "BACKUP_KEEP_LAST": "3"}
    state = a_job(home) / "builds" / "state"
    for n in (1, 2, 3, 4):
        state.write_text(f"{n}\n")
        run_cli("backup", str(n), env=keep3, check=True)
    assert _numbers(env) == [2, 3, 4]
    run_cli("restore", "2", env=env, check=True)
    assert state.read_text() == "2\n"
    # The operator numbers the next backups 3 and 4 again: the newest commits must survive.
    for n in (3, 4):
        state.write_text(f"new {n}\n")
        run_cli("backup", str(n), env=keep3, check=True)
    assert _numbers(env) == [2, 3, 4]
    run_cli("forget", "2", env=env, check=True)
    assert _numbers(env) == [3, 4]
    _prune_later(load(environ=keep3), passes=1)
    assert _numbers(env) == [3, 4]
    assert RawStore(env).sizes("forgotten/") == {}, "the forgotten backups' tombstones are gone"
    run_cli("verify", env=env, check=True)
    restored = _restored(tmp_path, env, "3", "r3")
    assert (tmp_path / "r3" / state.relative_to(home)).read_text() == "new 3\n"
    assert restored
    assert run_cli("forget", "9", env=env).returncode == 1


def test_a_backup_deduplicating_against_condemned_data_stays_restorable(
    tmp_path: Path, home: Path, repo_env: dict[str, str]
) -> None:
    """The race prune must survive: a backup in flight references data prune just condemned."""
    env = repo_env
    settings = load(environ=env)
    backup(settings, 1)
    _artifact(home, "old.bin", 2 << 20)
    backup(settings, 2)
    (a_job(home) / "builds" / "old.bin").unlink()
    backup(settings, 3)
    repo = _repo(env)
    snap2 = repo.load_snapshot(next(r for r in repo.snapshot_refs() if r.number == 2))
    repo.remove_snapshots([r for r in repo.snapshot_refs() if r.number == 2])
    later = time.time_ns() + 2 * 10**9  # every pack is old by then, at a grace of 0
    result = collect(repo, later, 0.0)
    assert result.packs_condemned >= 1 and result.packs_deleted == 0
    # A backup that loaded the index before the condemnation commits a tree using that data.
    late = Snapshot(4, time.time_ns(), snap2.tree, "jobs", "pod", source="backup")
    _repo(env).commit(late)
    assert run_cli("latest", env=env, check=True).stdout == "4\n"
    run_cli("verify", env=env, check=True)
    first = _restored(tmp_path, env, "4", "r3a")
    # The next collection sees the reference: the pack is indexed again, not deleted.
    again = collect(_repo(env), later + 1, 0.0)
    assert again.packs_rescued >= 1
    collect(_repo(env), later + 2, 0.0)
    run_cli("verify", env=env, check=True)
    assert _restored(tmp_path, env, "4", "r3b") == first
    assert any(k.endswith(b"old.bin") for k in first)


def test_a_pack_in_flight_is_kept_for_the_grace_period(
    home: Path, repo_env: dict[str, str]
) -> None:
    """A backup in flight has stored a pack but not yet the index that lists it: prune keeps
    such a pack until it is older than the grace period by the store's time. S3 reports whole
    seconds; a pack stamped 12:00:00 may have been written at 12:00:00.99 and is not 0.9 s old."""
    env = repo_env
    run_cli("backup", "1", env=env, check=True)
    repo = _repo(env)
    blob = os.urandom(4096)
    builder = PackBuilder()
    builder.add(DATA, repo.codec.blob_id(blob), repo.codec.seal(blob), len(blob))
    pack_id, data, _ = builder.finish(repo.codec)
    repo.storage.put(pack_key(pack_id), data, create_only=True)
    info = repo.storage.stat(pack_key(pack_id))
    assert info is not None
    # Collected 10 ms after the write (time injected): by a whole-second stamp (S3) the write
    # may have been at .99 of that second, so that is when the collection runs.
    stamp_ns = int(info.mtime * 1e9)
    if float(info.mtime).is_integer():
        stamp_ns += 980_000_000
    result = collect(repo, stamp_ns + 10_000_000, 0.7)
    assert result.packs_deleted == 0, "a young unindexed pack is a backup in flight"
    assert repo.storage.stat(pack_key(pack_id)) is not None


def test_prune_during_a_concurrent_backup(
    tmp_path: Path, home: Path, repo_env: dict[str, str]
) -> None:
    env = repo_env
    # A grace of a second, of the prune's clock (injected) and the backup's (real, its own
    # timeout stays 1 h: past half the grace it checks its packs before committing).
    grace = {**env, "BACKUP_PRUNE_GRACE": "1"}
    for n in (1, 2, 3):
        _artifact(home, f"a{n}.bin", 2 << 20)
        run_cli("backup", str(n), env=env, check=True)
        (a_job(home) / "builds" / f"a{n}.bin").unlink()
    run_cli("forget", "1", env=env, check=True)
    run_cli("forget", "2", env=env, check=True)
    # The tombstones' grace is over and the data condemned at the latest instant anything so
    # far may have been written by the store's stamps (a whole-second stamp counts as the end of
    # its second); the prune during the backup runs one grace later (time injected).
    repo = _repo(env)
    condemned_at = max(
        time.time_ns(),
        *(s.since_ns for s in repo.tombstones()),
        *(written_ns(i) for i in repo.packs().values()),
    )
    assert collect(repo, condemned_at, 0.0).packs_condemned >= 1
    d = a_job(home) / "builds" / "grown"
    d.mkdir()
    for i in range(40):
        (d / f"p{i}.bin").write_bytes(os.urandom(128 << 10))
    expected = _files(home)
    # By the store's clock the backup's packs are younger than the condemnation, and the
    # condemned packs older than half the grace (a backup adopts younger unindexed packs): on a
    # store with whole-second stamps that clock must have moved on. Usually no wait at all.
    time.sleep(max(0.0, (condemned_at + 5 * 10**8 - time.time_ns()) / 1e9))
    store = RawStore(env)
    packs_before = set(store.sizes("data/"))
    proc = spawn_cli(["backup", "4"], grace)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if set(store.sizes("data/")) - packs_before:
            break  # the backup has stored a pack that no index lists yet
        time.sleep(0.005)
    keep2 = load(environ={**grace, "BACKUP_KEEP_LAST": "2", "BACKUP_TIMEOUT": "0.5"})
    pruned = prune(keep2, now_ns=condemned_at + 10**9)
    assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    assert pruned.gc.bytes_freed > 0
    run_cli("verify", env=env, check=True)
    assert _restored(tmp_path, env, "4", "r4") == expected
    assert 3 in _numbers(env)


def _prune_killed_after(env: dict[str, str], delay: float | None) -> tuple[int, float]:
    """Run ``prune --keep-last 2``; SIGKILL it ``delay`` seconds after its work shows (it has
    forgotten a backup: start-up and imports come before). Returns its exit status and the
    seconds from that moment to its end."""
    store = RawStore(env)
    before = store.sizes("snapshots/")
    proc = spawn_cli(["prune", "--keep-last", "2"], env)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if store.sizes("snapshots/") != before:
            break
        time.sleep(0.005)
    started = time.monotonic()
    if delay is not None:
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    status = proc.wait(timeout=60)
    return status, time.monotonic() - started


def test_sigkill_during_prune_at_many_instants(
    tmp_path: Path, home: Path, repo_env: dict[str, str]
) -> None:
    env = repo_env
    # A grace of seconds (twice the run's bound) so that prunes during the loop delete.
    fast = {**env, "BACKUP_PRUNE_GRACE": "10", "BACKUP_TIMEOUT": "5"}
    settings = load(environ=env)
    states: dict[int, Files] = {}

    def new_backup(n: int) -> None:
        old = a_job(home) / "builds" / f"a{n - 1}.bin"
        if old.exists():
            old.unlink()
        _artifact(home, f"a{n}.bin", 1 << 20)
        (a_job(home) / "builds" / f"small-{n % 3}").write_text(f"{n}\n")
        backup(settings, n)
        states[n] = _files(home)

    def restored(n: int, name: str) -> Files:
        target = tmp_path / name
        restore(replace(settings, jenkins_home=str(target)), n)
        return _files(target, lambda rel: True)

    for n in (1, 2, 3):
        new_backup(n)
    run_cli("prune", "--keep-last", "2", env=fast, check=True)
    new_backup(4)
    status, work = _prune_killed_after(fast, None)  # how long the work of such a prune lasts
    assert status == 0
    fractions = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    if _on_s3(env):  # fewer instants over the same span, to keep the suite fast
        fractions = [0.0, 0.15, 0.3, 0.45, 0.6, 0.8]
    failures = []
    landed = 0
    for i, fraction in enumerate(fractions):
        newest = 5 + i
        new_backup(newest)
        status, _ = _prune_killed_after(fast, work * fraction)
        landed += status == -signal.SIGKILL
        kept = [r.number for r in _repo(env).snapshot_refs()]
        assert newest in kept, "the newest backup is never removed"
        if verify(settings, quick=True).problems:
            failures.append(f"verify after kill {i}")
        for n in kept:
            try:
                if restored(n, f"r{i}-{n}") != states[n]:
                    failures.append(f"backup {n} restored wrong after kill {i}")
            except BackupError as exc:
                failures.append(f"backup {n} failed to restore after kill {i}: {exc}")
    print(
        f"prune ({work:.2f} s of work) killed at {len(fractions)} instants, {landed} before it"
        f" finished; restore failures: {len(failures)}"
    )
    assert landed, "some kills interrupted a prune"
    assert failures == []
    # A rerun finishes the job: only the kept backups' data remains, and it verifies in full.
    _prune_later(load(environ={**env, "BACKUP_KEEP_LAST": "2"}))
    run_cli("verify", env=env, check=True)
    for n in _numbers(env):
        assert restored(n, f"final-{n}") == states[n]
    store = RawStore(env)
    assert store.sizes("condemned/") == {} and store.sizes("forgotten/") == {}
    # Each backup added 1 MiB; kept: the base, two artifacts, garbage under half a pack.
    assert store.total("data/") < 8 << 20


def test_size_after_50_incremental_backups_with_keep_last_5(
    home: Path, repo_env: dict[str, str]
) -> None:
    env = repo_env
    settings = load(environ={**env, "BACKUP_KEEP_LAST": "5"})
    job = a_job(home) / "builds"
    for n in range(1, 51):
        (job / f"log-{n}").write_bytes(os.urandom(64 << 10))  # a new build log each time
        old = job / f"log-{n - 5}"
        if old.exists():
            old.unlink()  # Jenkins' own build discarder
        (job / "nextBuildNumber").write_text(f"{n}\n")
        backup(settings, n)
    _prune_later(settings)
    size = RawStore(env).total()
    home_size = sum(f.stat().st_size for f in home.rglob("*") if f.is_file())
    where = "S3" if _on_s3(env) else "local"
    print(f"{where} repository after 50 backups, keep-last 5: {size} bytes (home {home_size})")
    assert _numbers(env) == [46, 47, 48, 49, 50]
    repo = _repo(env)
    found = latest_intact(repo)
    assert found is not None and found[0].number == 50
    # Five kept backups share all but a few 64 KiB logs: far less than 50 times the new data.
    assert size < home_size + 20 * (64 << 10), size
