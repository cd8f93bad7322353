"""Checks run inside the built container image (.ci/image-check.sh builds it and runs these).

JENKINS_BACKUP_IMAGE names the image; without it every test here skips with that reason. The
checks are the ones a pod depends on: the CLI and the backup-pvc wrappers against bind-mounted
volumes as UID 1000, the same with a read-only root file system and no writable /tmp, an
arbitrary UID of group 0 (OpenShift) on a repository UID 1000 created, the daemon's exit 0 on
SIGTERM within its grace, and metrics and liveness on their port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

IMAGE = os.environ.get("JENKINS_BACKUP_IMAGE", "")
BOUND = 120.0
OTHER_UID = 1000630000  # an OpenShift-style arbitrary UID
# Podman's --read-only mounts writable tmpfs on /tmp, /var/tmp and /run unless told not to.
READ_ONLY = ("--read-only", "--read-only-tmpfs=false")

pytestmark = pytest.mark.skipif(
    not IMAGE, reason="no image to check: .ci/image-check.sh builds one and runs these tests"
)


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["podman", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


class Volumes:
    """A JENKINS_HOME and a backup directory on the host, bind-mounted as a pod mounts them."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.backup = root / "backup"
        build = self.home / "jobs" / "app" / "builds" / "1"
        build.mkdir(parents=True)
        (build / "log").write_text("Finished: SUCCESS\n")
        (build / "build.xml").write_text("<build/>\n")
        (self.home / "jobs" / "app" / "nextBuildNumber").write_text("2\n")
        self.backup.mkdir()
        # Owned by the pod's user and group 0, as a volume with fsGroup 0 would be.
        for path in (root, self.home, self.backup):
            os.chown(path, 1000, 0)
        subprocess.run(["chown", "-R", "1000:0", str(self.home)], check=True)
        subprocess.run(["chmod", "-R", "g+w", str(self.home)], check=True)

    def args(self) -> list[str]:
        return [
            "-v",
            f"{self.home}:/jenkins-home",
            "-v",
            f"{self.backup}:/backup",
            "-e",
            "JENKINS_HOME=/jenkins-home",
            "-e",
            "BACKUP_DIR=/backup",
        ]

    def run(self, *cmd: str, user: str = "1000:0", extra: tuple[str, ...] = ()) -> str:
        proc = podman(
            "run", "--rm", "--network=none", "--user", user, *extra, *self.args(), IMAGE, *cmd
        )
        return proc.stdout


@pytest.fixture
def volumes() -> Iterator[Volumes]:
    root = Path(os.environ.get("TMPDIR", "/tmp")) / f"jb-image-{os.getpid()}-{time.time_ns()}"
    root.mkdir(mode=0o755)
    try:
        yield Volumes(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_help() -> None:
    out = podman("run", "--rm", "--network=none", IMAGE, "jenkins-backup", "--help").stdout
    for command in ("backup", "restore", "latest", "daemon"):
        assert command in out


def test_runtime_has_no_installers_and_no_apt_caches() -> None:
    script = (
        "test ! -e /opt/jenkins-backup/bin/pip"
        " && ! /opt/jenkins-backup/bin/python -c 'import pip' 2>/dev/null"
        " && ! /opt/jenkins-backup/bin/python -c 'import setuptools' 2>/dev/null"
        ' && test -z "$(find /var/lib/apt/lists /var/cache/apt -type f 2>/dev/null)"'
        ' && test "$(id -u):$(id -g)" = 1000:0'
    )
    podman("run", "--rm", "--network=none", IMAGE, "sh", "-c", script)


@pytest.mark.parametrize("read_only", [False, True], ids=["writable-root", "read-only-no-tmp"])
def test_wrappers_as_uid_1000(volumes: Volumes, read_only: bool) -> None:
    extra = READ_ONLY if read_only else ()
    if read_only:
        probe = "touch /tmp/x 2>/dev/null || touch /var/tmp/x 2>/dev/null || touch ~/x"
        assert podman("run", "--rm", *READ_ONLY, IMAGE, "sh", "-c", probe, check=False).returncode
    assert volumes.run("/home/user/bin/get-latest.sh", extra=extra) == "-1\n"
    volumes.run("/home/user/bin/backup.sh", "1", extra=extra)
    (volumes.home / "jobs" / "app" / "builds" / "1" / "log").write_text("changed\n")
    volumes.run("/home/user/bin/backup.sh", "2", extra=extra)
    assert volumes.run("/home/user/bin/get-latest.sh", extra=extra) == "2\n"
    volumes.run("/home/user/bin/restore.sh", "1", extra=extra)
    log = volumes.home / "jobs" / "app" / "builds" / "1" / "log"
    assert log.read_text() == "Finished: SUCCESS\n"
    assert log.stat().st_uid == 1000


def test_arbitrary_uid_of_group_0_on_a_repository_uid_1000_created(volumes: Volumes) -> None:
    volumes.run("/home/user/bin/backup.sh", "1", extra=READ_ONLY)
    other = f"{OTHER_UID}:0"
    volumes.run("/home/user/bin/backup.sh", "2", user=other, extra=READ_ONLY)
    volumes.run("jenkins-backup", "verify", user=other, extra=READ_ONLY)
    assert volumes.run("/home/user/bin/get-latest.sh", user=other, extra=READ_ONLY) == "2\n"
    assert volumes.run("/home/user/bin/get-latest.sh", extra=READ_ONLY) == "2\n"
    volumes.run("/home/user/bin/backup.sh", "3", extra=READ_ONLY)  # and back: UID 1000 again


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait_for_metrics(url: str, needle: str) -> str:
    deadline = time.monotonic() + BOUND
    last = ""
    while time.monotonic() < deadline:
        try:
            status, body = _get(url)
        except OSError as exc:
            last = str(exc)
        else:
            if status == 200 and needle in body:
                return body
            last = body[-500:]
        time.sleep(0.5)
    raise AssertionError(f"no {needle!r} at {url}: {last}")


def test_daemon_serves_metrics_and_exits_0_on_sigterm(volumes: Volumes) -> None:
    volumes.run("/home/user/bin/backup.sh", "1", extra=READ_ONLY)
    port = _free_port()
    name = f"jb-daemon-{os.getpid()}-{time.time_ns()}"
    podman(
        "run", "-d", "--name", name, "--network=host", "--user", "1000:0", *READ_ONLY,
        *volumes.args(),
        "-e", f"BACKUP_METRICS_PORT={port}",
        "-e", "BACKUP_METRICS_ADDRESS=127.0.0.1",
        "-e", "BACKUP_SHUTDOWN_GRACE=3",
        IMAGE,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        body = _wait_for_metrics(f"{base}/metrics", "jenkins_backup_latest_backup_number 1.0")
        assert "jenkins_backup_build_info{" in body and "process_resident_memory_bytes" in body
        assert _get(f"{base}/healthz") == (200, "ok\n")
        # The operator execs the backup in the running container; the next scrape counts it.
        podman("exec", name, "/home/user/bin/backup.sh", "2")
        _wait_for_metrics(f"{base}/metrics", 'jenkins_backup_backups_total{result="success"} 1.0')
        # SIGTERM, then SIGKILL only after 60 s: the daemon must leave on its own, with 0.
        podman("stop", "--time", "60", name)
        state = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        logs = podman("logs", name).stderr
        assert state == "0", logs
        assert "stopped" in logs, logs
    finally:
        podman("rm", "--force", name, check=False)
