"""Prune removes what no kept backup needs, and nothing else: concurrently, and when killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from helpers import a_job, describe, in_jobs_scope, run_cli
from jenkins_backup.errors import BackupError
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.common import latest_intact
from jenkins_backup.operations.prune import prune
from jenkins_backup.operations.restore import restore
from jenkins_backup.operations.verify import verify
from jenkins_backup.repository.gc import collect
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.snapshot import Snapshot
from jenkins_backup.settings import load
from jenkins_backup.storage.local import LocalStorage

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
    return Repository.open(LocalStorage(env["BACKUP_REPOSITORY"]))


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _artifact(home: Path, name: str, size: int = 1 << 20) -> Path:
    path = a_job(home) / "builds" / name
    path.write_bytes(os.urandom(size))
    return path


def test_backup_count_keeps_the_newest(tmp_path: Path, home: Path, env: dict[str, str]) -> None:
    count = {**env, "BACKUP_COUNT": "2", "BACKUP_PRUNE_GRACE": "0.01"}
    for n in (1, 2, 3, 4):
        _artifact(home, f"a{n}.bin")
        run_cli("backup", str(n), env=count, check=True)
    assert _numbers(env) == [3, 4]
    assert run_cli("restore", "1", env={**env, "JENKINS_HOME": str(tmp_path / "x")}).returncode
    assert _restored(tmp_path, env, "4", "r4") == _files(home)


def test_prune_removes_data_of_forgotten_backups(home: Path, env: dict[str, str]) -> None:
    fast = {**env, "BACKUP_PRUNE_GRACE": "0.01"}
    for n in (1, 2, 3):
        _artifact(home, f"a{n}.bin", 2 << 20)
        run_cli("backup", str(n), env=fast, check=True)
    for n in (1, 2):
        (a_job(home) / "builds" / f"a{n}.bin").unlink()
    run_cli("backup", "4", env=fast, check=True)
    before = _size(Path(env["BACKUP_REPOSITORY"]))
    dry = run_cli("prune", "--keep-last", "1", "--dry-run", env=fast, check=True)
    assert "would forget backups: 3 2 1" in dry.stdout
    assert _numbers(env) == [1, 2, 3, 4], "a dry run changes nothing"
    out = run_cli("prune", "--keep-last", "1", env=fast, check=True).stdout
    assert "forget backups: 3 2 1" in out and "freeing" in out
    assert _numbers(env) == [4]
    after = _size(Path(env["BACKUP_REPOSITORY"]))
    assert after < before - (3 << 19), (before, after)  # a2 at least; a1 shares a pack
    run_cli("verify", env=env, check=True)


def test_forget_then_number_reuse_after_restoring_an_old_number(
    tmp_path: Path, home: Path, env: dict[str, str]
) -> None:
    keep3 = {**env, "BACKUP_KEEP_LAST": "3", "BACKUP_PRUNE_GRACE": "0.01"}
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
    run_cli("prune", "--keep-last", "3", env={**env, "BACKUP_PRUNE_GRACE": "0.01"}, check=True)
    assert _numbers(env) == [3, 4]
    restored = _restored(tmp_path, env, "3", "r3")
    assert (tmp_path / "r3" / state.relative_to(home)).read_text() == "new 3\n"
    assert restored
    assert run_cli("forget", "9", env=env).returncode == 1


def test_a_backup_deduplicating_against_condemned_data_stays_restorable(
    tmp_path: Path, home: Path, env: dict[str, str]
) -> None:
    """The race prune must survive: a backup in flight references data prune just condemned."""
    settings = load(environ=env)
    backup(settings, 1)
    _artifact(home, "old.bin", 2 << 20)
    backup(settings, 2)
    (a_job(home) / "builds" / "old.bin").unlink()
    backup(settings, 3)
    repo = _repo(env)
    snap2 = repo.load_snapshot(next(r for r in repo.snapshot_refs() if r.number == 2))
    repo.remove_snapshots([r for r in repo.snapshot_refs() if r.number == 2])
    result = collect(repo, 0.0)
    assert result.packs_condemned >= 1 and result.packs_deleted == 0
    # A backup that loaded the index before the condemnation commits a tree using that data.
    late = Snapshot(4, time.time_ns(), snap2.tree, "jobs", "pod", source="backup")
    _repo(env).commit(late)
    assert run_cli("latest", env=env, check=True).stdout == "4\n"
    run_cli("verify", env=env, check=True)
    first = _restored(tmp_path, env, "4", "r3a")
    # The next collection sees the reference: the pack is indexed again, not deleted.
    again = collect(_repo(env), 0.0)
    assert again.packs_rescued >= 1
    collect(_repo(env), 0.0)
    run_cli("verify", env=env, check=True)
    assert _restored(tmp_path, env, "4", "r3b") == first
    assert any(k.endswith(b"old.bin") for k in first)


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "jenkins_backup", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_prune_during_a_concurrent_backup(tmp_path: Path, home: Path, env: dict[str, str]) -> None:
    grace = {**env, "BACKUP_PRUNE_GRACE": "3"}
    for n in (1, 2, 3):
        _artifact(home, f"a{n}.bin", 2 << 20)
        run_cli("backup", str(n), env=env, check=True)
        (a_job(home) / "builds" / f"a{n}.bin").unlink()
    run_cli("forget", "1", env=env, check=True)
    run_cli("forget", "2", env=env, check=True)
    time.sleep(3.1)  # tombstones expire: the packs of 1 and 2 get condemned
    run_cli("prune", env=grace, check=True)
    time.sleep(3.1)  # the condemnation expires: the next prune deletes
    d = a_job(home) / "builds" / "grown"
    d.mkdir()
    for i in range(40):
        (d / f"p{i}.bin").write_bytes(os.urandom(128 << 10))
    expected = _files(home)
    proc = _spawn(["backup", "4"], grace)
    pruned = run_cli("prune", "--keep-last", "2", env=grace, check=True)
    assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    assert "freeing 0 B" not in pruned.stdout
    run_cli("verify", env=env, check=True)
    assert _restored(tmp_path, env, "4", "r4") == expected
    assert 3 in _numbers(env)


def test_sigkill_during_prune_at_many_instants(
    tmp_path: Path, home: Path, env: dict[str, str]
) -> None:
    fast = {**env, "BACKUP_PRUNE_GRACE": "0.01"}
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
    t0 = time.monotonic()
    run_cli("prune", "--keep-last", "2", env=fast, check=True)
    duration = time.monotonic() - t0
    fractions = [0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9, 1.0, 1.2]
    failures = []
    for i, fraction in enumerate(fractions):
        new_backup(4 + i)
        proc = _spawn(["prune", "--keep-last", "2"], fast)
        time.sleep(duration * fraction)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        kept = [r.number for r in _repo(env).snapshot_refs()]
        assert 4 + i in kept, "the newest backup is never removed"
        if verify(settings, quick=True).problems:
            failures.append(f"verify after kill {i}")
        for n in kept[-1:]:  # the newest; verify covered the rest, all are restored at the end
            try:
                if restored(n, f"r{i}-{n}") != states[n]:
                    failures.append(f"backup {n} restored wrong after kill {i}")
            except BackupError as exc:
                failures.append(f"backup {n} failed to restore after kill {i}: {exc}")
    print(f"prune killed at {len(fractions)} instants; restore failures: {len(failures)}")
    assert len(fractions) >= 12
    assert failures == []
    # A rerun finishes the job: only the kept backups' data remains, and it verifies in full.
    run_cli("prune", "--keep-last", "2", env=fast, check=True)
    run_cli("prune", "--keep-last", "2", env=fast, check=True)
    run_cli("verify", env=env, check=True)
    for n in _numbers(env):
        assert restored(n, f"final-{n}") == states[n]
    repo = _repo(env)
    assert not list(repo.storage.list("condemned/")) and not list(repo.storage.list("forgotten/"))
    # 17 backups each added 1 MiB; kept: the base, two artifacts, garbage under half a pack.
    assert _size(Path(env["BACKUP_REPOSITORY"]) / "data") < 8 << 20


def test_size_after_50_incremental_backups_with_keep_last_5(
    home: Path, env: dict[str, str]
) -> None:
    settings = load(environ={**env, "BACKUP_KEEP_LAST": "5", "BACKUP_PRUNE_GRACE": "0.01"})
    job = a_job(home) / "builds"
    for n in range(1, 51):
        (job / f"log-{n}").write_bytes(os.urandom(64 << 10))  # a new build log each time
        old = job / f"log-{n - 5}"
        if old.exists():
            old.unlink()  # Jenkins' own build discarder
        (job / "nextBuildNumber").write_text(f"{n}\n")
        backup(settings, n)
        time.sleep(0.02)
    prune(settings)
    repo_path = Path(env["BACKUP_REPOSITORY"])
    size = _size(repo_path)
    home_size = sum(f.stat().st_size for f in home.rglob("*") if f.is_file())
    print(f"repository after 50 backups, keep-last 5: {size} bytes (home {home_size} bytes)")
    assert _numbers(env) == [46, 47, 48, 49, 50]
    repo = _repo(env)
    found = latest_intact(repo, complete=True)
    assert found is not None and found[0].number == 50
    # Five kept backups share all but a few 64 KiB logs: far less than 50 times the new data.
    assert size < home_size + 20 * (64 << 10), size
