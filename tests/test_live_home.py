"""Jenkins keeps running during a backup: changing, vanishing and unreadable files."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import a_job
from inprocess import run_cli


def test_file_changing_during_backup_is_a_warning(
    tmp_path: Path, home: Path, env: dict[str, str]
) -> None:
    log = a_job(home) / "builds" / "growing.log"
    log.write_bytes(b"start\n" * 200_000)
    stop = threading.Event()

    line = b"Jenkins is still building\n" * 100
    appends = 4_000  # bounded in time and bytes (about 10 MiB at most): a real build log's pace

    def writer() -> None:
        with open(log, "ab") as f:
            for _ in range(appends):
                if stop.is_set():
                    return
                f.write(line)
                f.flush()
                time.sleep(0.002)

    t = threading.Thread(target=writer)
    t.start()
    try:
        proc = run_cli("backup", "1", env=env)
        still_writing = t.is_alive()  # then it wrote all along the backup's reads of the log
    finally:
        stop.set()
        t.join()
    assert proc.returncode == 0, proc.stderr
    target = tmp_path / "target"
    run_cli("restore", "1", env={**env, "JENKINS_HOME": str(target)}, check=True)
    restored = (target / log.relative_to(home)).read_bytes()
    # An append-only log is stored as a prefix of what the writer produced; when it never held
    # still across the re-reads, the backup says so.
    assert log.read_bytes().startswith(restored)
    assert len(restored) >= len(b"start\n" * 200_000)
    if still_writing:
        assert len(restored) < log.stat().st_size
        warned = [line for line in proc.stderr.splitlines() if "changed while being read" in line]
        assert any("growing.log" in line for line in warned), proc.stderr


def test_vanishing_build_directories_do_not_fail_the_backup(
    tmp_path: Path, home: Path, env: dict[str, str]
) -> None:
    builds = a_job(home) / "builds"
    victims = [builds / f"gone-{i}" for i in range(300)]
    for v in victims:
        v.mkdir()
        (v / "log").write_bytes(os.urandom(20_000))
    stop = threading.Event()

    def remover() -> None:
        for v in victims:
            if stop.is_set():
                return
            shutil.rmtree(v, ignore_errors=True)
            time.sleep(0.001)

    t = threading.Thread(target=remover)
    t.start()
    try:
        proc = run_cli("backup", "1", env=env)
    finally:
        stop.set()
        t.join()
    assert proc.returncode == 0, proc.stderr
    run_cli("restore", "1", env={**env, "JENKINS_HOME": str(tmp_path / "t")}, check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the tool as another user")
def test_unreadable_files_are_reported_and_skipped(tmp_path: Path, home: Path) -> None:
    """Run as an unprivileged user, as the sidecar does, with one file it may not read."""
    nobody = pwd.getpwnam("nobody")
    secret = a_job(home) / "builds" / "secret.txt"
    secret.write_text("top secret\n")
    os.chmod(tmp_path, 0o755)
    for root, dirs, files in os.walk(home):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644)
    os.chmod(secret, 0o600)
    repo = tmp_path / "repo"
    repo.mkdir()
    os.chown(repo, nobody.pw_uid, nobody.pw_gid)
    env = {
        "PATH": os.environ["PATH"],
        "JENKINS_HOME": str(home),
        "BACKUP_REPOSITORY": str(repo),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "jenkins_backup", "backup", "1"],
            env=env,
            user=nobody.pw_uid,
            group=nobody.pw_gid,
            capture_output=True,
            text=True,
            timeout=120,
            cwd="/",
        )
    except PermissionError:
        pytest.skip("this interpreter lives where user nobody may not run it")
    if proc.returncode != 0 and "Permission denied" in proc.stderr and "python" in proc.stderr:
        pytest.skip("this interpreter's libraries are not readable by user nobody")
    assert proc.returncode == 0, proc.stderr
    assert "secret.txt" in proc.stderr and "skipped" in proc.stderr
    target = tmp_path / "t"
    run_cli("restore", "1", env={**env, "JENKINS_HOME": str(target)}, check=True)
    assert not (target / secret.relative_to(home)).exists()
    assert (target / "jobs").is_dir()
