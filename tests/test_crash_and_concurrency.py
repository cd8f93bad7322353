"""SIGKILL at any instant leaves the repository valid; concurrent backups both succeed."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from helpers import a_job, describe, in_jobs_scope, spawn_cli
from inprocess import run_cli
from jenkins_backup.repository.layout import pack_id_from_key
from jenkins_backup.repository.repo import Repository
from jenkins_backup.storage.local import LocalStorage


def _grow(home: Path, tag: str, files: int = 120, size: int = 256 << 10) -> None:
    """Add incompressible artifacts so that a backup takes long enough to be interrupted."""
    d = a_job(home) / "builds" / f"artifacts-{tag}"
    d.mkdir(parents=True)
    for i in range(files):
        (d / f"part-{i}.bin").write_bytes(os.urandom(size))


def _files(root: Path) -> dict[bytes, tuple[str, int, int, str]]:
    return {k: v for k, v in describe(root, in_jobs_scope).items() if v[0] != "dir"}


def _restored(
    tmp_path: Path, env: dict[str, str], number: str, name: str
) -> dict[bytes, tuple[str, int, int, str]]:
    target = tmp_path / name
    run_cli("restore", number, env={**env, "JENKINS_HOME": str(target)}, check=True)
    return {k: v for k, v in describe(target).items() if v[0] != "dir"}


def test_sigkill_during_backup_at_many_instants(
    tmp_path: Path, home: Path, env: dict[str, str]
) -> None:
    run_cli("backup", "1", env=env, check=True)
    state1 = _files(home)
    _grow(home, "b")
    state2 = _files(home)

    # Time the same run (backup 2 over a copy of the repository holding backup 1) to spread the
    # kill instants over it: a first backup into an empty repository takes far longer, and kills
    # timed from it land after the incremental run has finished.
    scratch_repo = tmp_path / "scratch"
    shutil.copytree(env["BACKUP_REPOSITORY"], scratch_repo, symlinks=True)
    scratch = {**env, "BACKUP_REPOSITORY": str(scratch_repo)}
    t0 = time.monotonic()
    run_cli("backup", "2", env=scratch, check=True)
    duration = time.monotonic() - t0

    instants = [
        duration * f
        for f in (0.02, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0, 1.1, 1.3)
    ]
    committed = False
    landed = 0
    for delay in instants:
        proc = spawn_cli(["backup", "2"], env)
        time.sleep(delay)
        landed += proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        latest = run_cli("latest", env=env, check=True).stdout.strip()
        assert latest in ("1", "2")
        committed = committed or latest == "2"
        if latest == "1":
            assert not committed, "a committed backup never disappears"
    assert landed >= len(instants) // 2, f"only {landed} kills interrupted a backup"

    repo_path = Path(env["BACKUP_REPOSITORY"])
    assert _restored(tmp_path, env, "1", "r1") == state1
    if committed:
        assert _restored(tmp_path, env, "2", "r2") == state2

    # A later run succeeds, reuses what killed runs uploaded, and cleans their leftovers.
    proc = run_cli("backup", "3", env=env, check=True)
    assert run_cli("latest", env=env, check=True).stdout == "3\n"
    assert _restored(tmp_path, env, "3", "r3") == state2
    assert [p for p in (repo_path / "tmp").iterdir()] == [], "temp files of dead runs are swept"
    repo = Repository.open(LocalStorage(str(repo_path)))
    indexed = repo.index().packs()
    stored = {pack_id_from_key(i.key) for i in repo.storage.list("data/")}
    assert stored <= indexed, "packs of killed runs are adopted, not left unreferenced"
    assert "added" in proc.stderr


def test_two_concurrent_backups_of_different_numbers(
    tmp_path: Path, home: Path, env: dict[str, str]
) -> None:
    _grow(home, "c", files=40)
    procs = [spawn_cli(["backup", n], env) for n in ("1", "2")]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    latest = run_cli("latest", env=env, check=True).stdout.strip()
    assert latest in ("1", "2")
    expected = _files(home)
    assert _restored(tmp_path, env, "1", "r1") == expected
    assert _restored(tmp_path, env, "2", "r2") == expected


def test_two_concurrent_backups_of_the_same_number(
    tmp_path: Path, home: Path, env: dict[str, str]
) -> None:
    run_cli("backup", "1", env=env, check=True)
    _grow(home, "d", files=40)
    procs = [spawn_cli(["backup", "2"], env) for _ in range(2)]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert run_cli("latest", env=env, check=True).stdout == "2\n"
    assert _restored(tmp_path, env, "2", "r2") == _files(home)
    listing = run_cli("list", env=env, check=True).stdout
    numbers = [line.split()[0] for line in listing.splitlines()[1:]]
    assert numbers == ["1", "2"], "one number names one backup"
