"""Nothing left behind: temp names of killed restores, imports and exports are removed by the
next run, and a backup never includes a restore's temp names.

The first tests plant leftovers of a dead process deterministically and run the operations in
process; the last kills the real console script with SIGKILL at seeded random instants.
"""

from __future__ import annotations

import random
import re
import signal
import socket
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import describe, in_jobs_scope, spawn_cli
from inprocess import run_cli
from jenkins_backup.errors import CorruptObject
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.export_archive import export_archive
from jenkins_backup.operations.import_archive import import_archive
from jenkins_backup.operations.restore import restore
from jenkins_backup.settings import load

# The host as temporary names spell it (letters, digits and _ only).
HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def live_pid() -> object:
    proc = subprocess.Popen(["sleep", "60"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _tar_gz(path: Path, home: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(home / "jobs", arcname="jobs")
    return path


def test_a_restore_removes_the_temp_files_of_a_dead_restore(
    tmp_path: Path, env: dict[str, str], home: Path, live_pid: int
) -> None:
    backup(load(environ=env), 1)
    target = tmp_path / "target"
    settings = load(environ={**env, "JENKINS_HOME": str(target)})
    restore(settings, 1)
    job = next(p for p in (target / "jobs").iterdir() if p.is_dir())
    dead = [target / f".jbtmp-{_dead_pid()}-0", job / f".jbtmp-{_dead_pid()}-17"]
    kept = [job / f".jbtmp-{live_pid}-3", job / ".jbtmp-notes", job / f".jbtmp-{_dead_pid()}-x"]
    for path in [*dead, *kept]:
        path.write_text("partial")
    restore(settings, 1)
    assert not any(p.exists() for p in dead), "a dead restore's temp files are removed"
    assert all(p.exists() for p in kept), "a live restore's files and other names stay"


def test_a_backup_never_includes_a_restore_temp_name(
    tmp_path: Path, env: dict[str, str], home: Path
) -> None:
    job = next(p for p in (home / "jobs").iterdir() if (p / "builds").is_dir())
    build = next(p for p in (job / "builds").iterdir() if p.is_dir())
    planted = [home / "jobs" / ".jbtmp-12-0", job / ".jbtmp-3-9", build / ".jbtmp-4000-1"]
    for path in planted:
        path.write_text("half a file")
    (build / ".jbtmp-notes").write_text("an ordinary name")
    backup(load(environ=env), 1)
    target = tmp_path / "target"
    restore(load(environ={**env, "JENKINS_HOME": str(target)}), 1)
    for path in planted:
        assert not (target / path.relative_to(home)).exists(), path
    assert (target / (build / ".jbtmp-notes").relative_to(home)).exists()


def test_an_import_removes_work_directories_of_dead_imports(
    tmp_path: Path, env: dict[str, str], home: Path, live_pid: int
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    dead = work / f"jenkins-backup-import-{HOST}-{_dead_pid()}-abcd_123"
    (dead / "home" / "secrets").mkdir(parents=True)
    (dead / "home" / "secrets" / "master.key").write_text("plaintext credential")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("not ours")
    kept = [
        work / f"jenkins-backup-import-{HOST}-{live_pid}-abcd_123",
        work / f"jenkins-backup-import-otherhost-{_dead_pid()}-abcd_123",
        work / "jenkins-backup-import-notes",
    ]
    for path in kept:
        path.mkdir()
    link = work / f"jenkins-backup-import-{HOST}-{_dead_pid()}-linklink"
    link.symlink_to(outside)
    settings = load(environ=env)
    import_archive(settings, 1, str(_tar_gz(tmp_path / "1.tar.gz", home)), work_dir=str(work))
    assert not dead.exists()
    assert all(p.is_dir() for p in kept) and link.is_symlink()
    assert (outside / "keep").read_text() == "not ours"
    assert sorted(work.iterdir()) == sorted([*kept, link]), "its own work directory is gone"

    broken = tmp_path / "2.tar.gz"
    broken.write_bytes(_tar_gz(tmp_path / "x.tar.gz", home).read_bytes()[:2000])
    with pytest.raises(CorruptObject):
        import_archive(settings, 2, str(broken), work_dir=str(work))
    assert sorted(work.iterdir()) == sorted([*kept, link]), "removed on failure too"


def test_an_export_removes_temp_files_of_dead_exports(
    tmp_path: Path, env: dict[str, str], live_pid: int
) -> None:
    settings = load(environ=env)
    backup(settings, 1)
    out = tmp_path / "out"
    out.mkdir()
    dead = out / f".jenkins-backup-export-{HOST}-{_dead_pid()}-abcd_123"
    kept = [
        out / f".jenkins-backup-export-{HOST}-{live_pid}-abcd_123",
        out / f".jenkins-backup-export-otherhost-{_dead_pid()}-abcd_123",
        out / ".jenkins-backup-export-notes",
    ]
    for path in [dead, *kept]:
        path.write_text("part of an archive")
    export_archive(settings, 1, str(out / "1.tar.zst"))
    assert not dead.exists()
    assert sorted(out.iterdir()) == sorted([*kept, out / "1.tar.zst"])


# -- SIGKILL at random instants of the real commands ----------------------------------------

KILLS = 6
SEED = 20261201


def _kill_at_random_instants(
    args: list[str],
    env: dict[str, str],
    rng: random.Random,
    duration: float,
    before: Callable[[int], dict[str, str]] | None = None,
) -> int:
    """Run ``args`` KILLS times, each SIGKILLed at a random instant; return the kills landed.

    ``before(i)`` readies run ``i`` (so that each run has work to do) and gives its environment.
    """
    landed = 0
    for i in range(KILLS):
        proc = spawn_cli(args, before(i) if before else env, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.0) * duration)
        if proc.poll() is None:
            landed += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    return landed


def _timed(args: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    run_cli(*args, env=env, check=True)
    return time.monotonic() - started


def test_sigkill_at_random_instants_of_restore_import_and_export_leaves_nothing(
    tmp_path: Path, env: dict[str, str], home: Path
) -> None:
    # A large file makes the writing phase long enough for kills to land inside it.
    job = next(p for p in (home / "jobs").iterdir() if p.is_dir())
    (job / "big.bin").write_bytes(random.Random(1).randbytes(12 << 20))
    run_cli("backup", "1", env=env, check=True)
    rng = random.Random(SEED)
    report = []

    target = tmp_path / "target"
    renv = {**env, "JENKINS_HOME": str(target)}
    big = target / (job / "big.bin").relative_to(home)

    def rewrite(i: int) -> dict[str, str]:
        big.unlink(missing_ok=True)  # an unchanged file is not written again
        return renv

    duration = _timed(["restore", "1"], renv)
    landed = _kill_at_random_instants(["restore", "1"], renv, rng, duration, rewrite)
    left = len(list(target.rglob(".jbtmp-*")))
    run_cli("restore", "1", env=renv, check=True)
    assert not list(target.rglob(".jbtmp-*")), "the next restore removes every temp file"
    assert describe(target) == describe(home, in_jobs_scope)
    report.append(f"restore: {KILLS} kills, {landed} mid-run, {left} temp files left then swept")

    work = tmp_path / "work"
    work.mkdir()
    archive = _tar_gz(tmp_path / "7.tar.gz", home)
    args = ["import", "7", str(archive), "--work-dir", str(work)]
    ienv = {**env, "BACKUP_REPOSITORY": str(tmp_path / "imported")}
    duration = _timed(args, {**ienv, "BACKUP_REPOSITORY": str(tmp_path / "scratch")})

    def fresh(i: int) -> dict[str, str]:  # an imported archive is skipped when run again
        return {**env, "BACKUP_REPOSITORY": str(tmp_path / f"imported-{i}")}

    landed = _kill_at_random_instants(args, ienv, rng, duration, fresh)
    left = len(list(work.iterdir()))
    run_cli(*args, env=ienv, check=True)
    assert list(work.iterdir()) == [], "the next import removes dead work directories"
    report.append(f"import: {KILLS} kills, {landed} mid-run, {left} work dirs left then swept")

    out = tmp_path / "out"
    out.mkdir()
    args = ["export", "1", str(out / "1.tar.zst")]
    landed = _kill_at_random_instants(args, env, rng, _timed(args, env))
    left = len([p for p in out.iterdir() if p.name != "1.tar.zst"])
    (out / "1.tar.zst").unlink(missing_ok=True)
    run_cli(*args, env=env, check=True)
    assert [p.name for p in out.iterdir()] == ["1.tar.zst"], "dead exports' temp files removed"
    report.append(f"export: {KILLS} kills, {landed} mid-run, {left} temp files left then swept")
    print("; ".join(report))
