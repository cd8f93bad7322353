"""Commands need no temporary directory outside JENKINS_HOME and a local repository.

A container with a read-only root file system and no /tmp volume has no usable temporary
directory at all; every command must still work there. The test builds that situation in a
private mount namespace (root only): /tmp and /var/tmp read-only (/tmp keeps its contents: the
checkout and its interpreter may live there, as CI's clone may), the working directory too, the
home and the repository bind-mounted writable below the read-only /var/tmp.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import clean_env

SCRIPT = r"""
set -eu
mount -t tmpfs tmpfs /var/tmp
mkdir /var/tmp/t
mount --bind "$1" /var/tmp/t
mount -o remount,ro /var/tmp
mount --bind /tmp /tmp
mount -o remount,bind,ro /tmp
cd /var/tmp
shift
exec "$@"
"""


def in_namespace(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(JENKINS_HOME="/var/tmp/t/home", BACKUP_REPOSITORY="/var/tmp/t/repo")
    env.pop("TMPDIR", None)
    env.pop("BACKUP_RUNTIME_DIR", None)
    return subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            SCRIPT,
            "sh",
            str(tmp_path),
            sys.executable,
            "-m",
            "jenkins_backup",
            *args,
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def namespace_ok(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) to build a mount namespace without /tmp")
    probe = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            SCRIPT,
            "sh",
            str(tmp_path),
            "sh",
            "-c",
            "! touch /tmp/probe 2>/dev/null && touch t/probe",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot build the mount namespace here: {probe.stderr.strip()}")


def test_commands_work_with_no_writable_temporary_directory(
    tmp_path: Path, namespace_ok: None
) -> None:
    job = tmp_path / "home" / "jobs" / "a"
    (job / "builds" / "1").mkdir(parents=True)
    (job / "builds" / "1" / "log").write_text("built\n")
    (job / "nextBuildNumber").write_text("2\n")
    for args in (("backup", "1"), ("backup", "2"), ("verify",), ("list",)):
        proc = in_namespace(tmp_path, *args)
        assert proc.returncode == 0, proc.stderr
        assert "runtime directory" not in proc.stderr, proc.stderr
    latest = in_namespace(tmp_path, "latest")
    assert (latest.returncode, latest.stdout) == (0, "2\n"), latest.stderr
    shutil.rmtree(tmp_path / "home" / "jobs")
    restored = in_namespace(tmp_path, "restore", "2")
    assert restored.returncode == 0, restored.stderr
    assert (job / "builds" / "1" / "log").read_text() == "built\n"
    # The runtime directory lives in the repository: the daemon sees these runs.
    assert (tmp_path / "repo" / ".runtime" / "status.json").is_file()
