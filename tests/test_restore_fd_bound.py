"""Restore keeps its open file descriptors bounded, whatever the number of directories and
files: it works under ``ulimit -n 64`` (many containers set low limits)."""

from __future__ import annotations

import filecmp
import os
import resource
import subprocess
import sys
from pathlib import Path

from helpers import clean_env
from jenkins_backup.operations.backup import backup
from jenkins_backup.settings import load

_LIMIT = 64


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (_LIMIT, _LIMIT))


def test_restore_under_ulimit_n_64(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for job in range(12):
        for build in range(40):  # 480 build directories, 1,440 files
            d = home / "jobs" / f"job-{job}" / "builds" / str(build)
            d.mkdir(parents=True)
            for name in ("build.xml", "log", "changelog.xml"):
                (d / name).write_bytes(f"{job} {build} {name}\n".encode() * 20)
    big = home / "jobs" / "job-0" / "archive"
    big.mkdir()
    for i in range(6):  # more big files than are streamed at once
        (big / f"artifact-{i}.bin").write_bytes(os.urandom(1 << 20) * 17)
    env = clean_env(JENKINS_HOME=str(home), BACKUP_REPOSITORY=str(tmp_path / "repo"))
    backup(load(environ=env), 1)

    target = tmp_path / "restored"
    proc = subprocess.run(
        [sys.executable, "-m", "jenkins_backup", "restore", "1"],
        env={**env, "JENKINS_HOME": str(target)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_low_fd_limit,
    )
    assert proc.returncode == 0, proc.stderr
    files = [p for p in home.rglob("*") if p.is_file()]
    assert len(files) == 1446
    for p in files:
        assert filecmp.cmp(p, target / p.relative_to(home), shallow=False), p
