"""The sidecar's main process: shutdown on SIGTERM, metrics, standalone numbering; and the
init container's `restore latest`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from helpers import a_job, describe, in_jobs_scope, spawn_cli
from inprocess import run_cli

Files = dict[bytes, tuple[str, int, int, str]]
BOUND = 60.0  # upper bound of every wait in this file


class Daemon:
    """`jenkins-backup daemon` in a subprocess, its stderr in a file, metrics on loopback."""

    def __init__(self, tmp_path: Path, env: dict[str, str], *args: str) -> None:
        self.stderr_path = tmp_path / f"daemon-{time.monotonic_ns()}.log"
        env = {**env, "BACKUP_METRICS_PORT": "0", "BACKUP_METRICS_ADDRESS": "127.0.0.1"}
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jenkins_backup", "daemon", *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        found = wait_for(lambda: re.search(r"metrics on http://127\.0\.0\.1:(\d+)/", self.log))
        self.port = int(found.group(1))

    @property
    def log(self) -> str:
        return self.stderr_path.read_text()

    def metrics(self) -> dict[str, float]:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def wait(self) -> int:
        return self.proc.wait(timeout=BOUND)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=BOUND)


T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], what: str = "condition") -> T:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def rundir(tmp_path: Path, env: dict[str, str]) -> Path:
    path = tmp_path / "run"
    env["BACKUP_RUNTIME_DIR"] = str(path)
    return path


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        d.kill()


def _grow(home: Path, files: int = 120, size: int = 256 << 10) -> None:
    """Incompressible artifacts: a backup of them stays in flight long enough to signal it."""
    d = a_job(home) / "builds" / "artifacts"
    d.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (d / f"part-{i}.bin").write_bytes(os.urandom(size))


def _files(root: Path) -> Files:
    return {k: v for k, v in describe(root, in_jobs_scope).items() if v[0] != "dir"}


def _restored(tmp_path: Path, env: dict[str, str], number: str) -> Files:
    target = tmp_path / f"restored-{number}-{time.monotonic_ns()}"
    run_cli("restore", number, env={**env, "JENKINS_HOME": str(target)}, check=True)
    return {k: v for k, v in describe(target).items() if v[0] != "dir"}


def _numbers(env: dict[str, str]) -> list[int]:
    """Backup numbers, oldest commit first."""
    return [r["number"] for r in json.loads(run_cli("list", "--json", env=env, check=True).stdout)]


def _status(rundir: Path) -> dict[str, float]:
    """The backups' counts and the last failed number, from the runtime directory."""
    try:
        doc = json.loads((rundir / "status.json").read_text())
    except (OSError, ValueError):
        return {}
    backups = doc["counts"].get("backup", {})
    return {
        "successes": backups.get("success", 0),
        "failures": backups.get("failure", 0),
        "last_failure_number": doc["last_failure_number"],
    }


def _running(rundir: Path) -> list[str]:
    try:
        return os.listdir(rundir / "running")
    except OSError:
        return []


def test_sigterm_during_a_standalone_backup(
    tmp_path: Path, home: Path, env: dict[str, str], rundir: Path, daemons: list[Daemon]
) -> None:
    _grow(home)
    daemon = Daemon(tmp_path, env, "--interval", "0.5")
    daemons.append(daemon)
    mine = f"{daemon.proc.pid}.json"
    wait_for(lambda: mine in _running(rundir), "the first backup to be in flight")
    daemon.terminate()
    assert daemon.wait() == 0
    log = daemon.log
    # The backup in flight was finished, not cut short; then one more on the way out.
    assert "backup 1 committed" in log
    assert log.index("backup 1 committed") < log.index("one last backup")
    assert "backup 2 committed" in log
    assert _numbers(env) == [1, 2]
    assert run_cli("latest", env=env, check=True).stdout == "2\n"
    assert _restored(tmp_path, env, "1") == _files(home) == _restored(tmp_path, env, "2")
    assert _running(rundir) == [], "the daemon's own pid file is gone"


def test_standalone_numbering_is_latest_plus_one(
    tmp_path: Path, home: Path, env: dict[str, str], rundir: Path, daemons: list[Daemon]
) -> None:
    # Latest is the most recent commit (3), not the largest number (5).
    for n in ("4", "5", "3"):
        run_cli("backup", n, env=env, check=True)
    for expected in (4, 5):  # one daemon per number: a long interval, the backup on SIGTERM
        daemon = Daemon(tmp_path, env, "--interval", "3600")
        daemons.append(daemon)
        daemon.terminate()
        assert daemon.wait() == 0
        assert _numbers(env)[-1] == expected
    assert _numbers(env) == [3, 4, 5], "4 and 5 were replaced"


def test_standalone_failure_is_retried_with_the_same_number(
    tmp_path: Path, home: Path, env: dict[str, str], rundir: Path, daemons: list[Daemon]
) -> None:
    run_cli("backup", "1", env=env, check=True)
    repo = Path(env["BACKUP_REPOSITORY"])
    daemon = Daemon(tmp_path, env, "--interval", "0.3")
    daemons.append(daemon)
    wait_for(lambda: _status(rundir).get("successes", 0) >= 2, "two daemon backups")
    away = repo.with_name("repo.away")
    os.rename(repo, away)
    repo.write_text("the store is unavailable\n")
    try:
        wait_for(lambda: _status(rundir).get("failures", 0) >= 2, "two failed ticks")
        assert daemon.proc.poll() is None, "a failed backup never ends the daemon"
        failed = int(_status(rundir)["last_failure_number"])
    finally:
        repo.unlink()
        os.rename(away, repo)
    successes = _status(rundir)["successes"]
    wait_for(lambda: _status(rundir)["successes"] > successes, "a backup after the outage")
    daemon.terminate()
    assert daemon.wait() == 0
    numbers = _numbers(env)
    assert failed in numbers, "the failed number was retried"
    assert numbers == list(range(1, len(numbers) + 1)), "no number skipped or repeated"
    assert f"backup {failed} failed" in daemon.log


def test_metrics(
    tmp_path: Path, home: Path, env: dict[str, str], rundir: Path, daemons: list[Daemon]
) -> None:
    before = time.time()
    run_cli("backup", "1", env=env, check=True)
    run_cli("backup", "2", env=env, check=True)
    after = time.time()
    # A failure before the daemon started is not this container's (not counted).
    no_home = {**env, "JENKINS_HOME": str(tmp_path / "no-such-home")}
    assert run_cli("backup", "3", env=no_home).returncode != 0

    daemon = Daemon(tmp_path, {**env, "BACKUP_SHUTDOWN_GRACE": "0"})
    daemons.append(daemon)
    wait_for(lambda: daemon.metrics()["jenkins_backup_repository_up"] == 1, "a refresh")
    m = daemon.metrics()
    info = json.loads(run_cli("list", "--json", env=env, check=True).stdout)[-1]
    repo = Path(env["BACKUP_REPOSITORY"])
    size = sum(
        p.stat().st_size
        for p in repo.rglob("*")
        if p.is_file() and p.relative_to(repo).parts[0] != "tmp"
    )
    assert m["jenkins_backup_latest_backup_number"] == 2
    assert before <= m["jenkins_backup_latest_backup_timestamp_seconds"] <= after
    assert 0 < m["jenkins_backup_latest_backup_duration_seconds"] < after - before
    assert m["jenkins_backup_latest_backup_added_bytes"] == info["bytes_added"]
    assert m["jenkins_backup_latest_backup_files"] == info["files"] > 100
    assert m["jenkins_backup_repository_backups"] == 2
    assert m["jenkins_backup_repository_size_bytes"] == size
    assert m['jenkins_backup_backups_total{result="failure"}'] == 0
    assert m['jenkins_backup_backups_total{result="success"}'] == 0
    # The last failure is a fact about the repository's backups, whoever ran it.
    assert after <= m["jenkins_backup_last_backup_failure_timestamp_seconds"] <= time.time()
    assert m["jenkins_backup_backups_running"] == 0

    # Backups exec'd in the container later show at the next scrape, with their durations.
    started = time.time()
    run_cli("backup", "3", env=env, check=True)
    assert run_cli("backup", "4", env=no_home).returncode != 0
    ended = time.time()
    m = daemon.metrics()
    assert m['jenkins_backup_backups_total{result="success"}'] == 1
    assert m['jenkins_backup_backups_total{result="failure"}'] == 1
    assert m["jenkins_backup_backup_duration_seconds_count"] == 2
    assert 0 < m["jenkins_backup_backup_duration_seconds_sum"] < ended - started
    assert m['jenkins_backup_backup_duration_seconds_bucket{le="+Inf"}'] == 2
    assert started <= m["jenkins_backup_last_backup_failure_timestamp_seconds"] <= ended
    daemon.terminate()
    assert daemon.wait() == 0


def test_operator_mode_stays_up_for_a_running_backup(
    tmp_path: Path, home: Path, env: dict[str, str], rundir: Path, daemons: list[Daemon]
) -> None:
    env["BACKUP_SHUTDOWN_GRACE"] = "0"  # only the running backup keeps it up
    _grow(home)
    daemon = Daemon(tmp_path, env)
    daemons.append(daemon)
    backup = spawn_cli(["backup", "1"], env, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: f"{backup.pid}.json" in _running(rundir), "the backup to be in flight")
        daemon.terminate()
        order = []
        deadline = time.monotonic() + BOUND
        while len(order) < 2 and time.monotonic() < deadline:
            for name, proc in (("backup", backup), ("daemon", daemon.proc)):
                if name not in order and proc.poll() is not None:
                    order.append(name)
            time.sleep(0.01)
    finally:
        backup.wait(timeout=BOUND)
    assert order == ["backup", "daemon"], "the daemon outlives the backup in flight"
    assert backup.returncode == 0 and daemon.wait() == 0
    assert "waiting for backup 1" in daemon.log
    assert run_cli("latest", env=env, check=True).stdout == "1\n"


def test_operator_mode_settle_window(
    tmp_path: Path, home: Path, env: dict[str, str], rundir: Path, daemons: list[Daemon]
) -> None:
    # No backup comes: the daemon exits 0 once the settle window has passed.
    env["BACKUP_SHUTDOWN_GRACE"] = "0.5"
    daemon = Daemon(tmp_path, env)
    daemons.append(daemon)
    daemon.terminate()
    assert daemon.wait() == 0

    # The operator's backup before pod deletion arrives after SIGTERM: the daemon is still
    # there to run it, and leaves once it is done instead of waiting out the long window.
    env["BACKUP_SHUTDOWN_GRACE"] = str(BOUND * 10)
    daemon = Daemon(tmp_path, env)
    daemons.append(daemon)
    daemon.terminate()
    wait_for(lambda: "stopping" in daemon.log, "the daemon to notice SIGTERM")
    assert daemon.proc.poll() is None
    run_cli("backup", "1", env=env, check=True)
    assert daemon.wait() == 0
    assert "the backup before shutdown is done" in daemon.log


def test_init_container_restore_latest(tmp_path: Path, home: Path, env: dict[str, str]) -> None:
    # No repository yet: exit 0, nothing written anywhere.
    fresh = tmp_path / "fresh-home"
    repo = tmp_path / "no-repo"
    first = {**env, "JENKINS_HOME": str(fresh), "BACKUP_REPOSITORY": str(repo)}
    proc = run_cli("restore", "latest", env=first)
    assert proc.returncode == 0 and proc.stdout == ""
    assert not fresh.exists() and not repo.exists()
    fresh.mkdir()
    assert run_cli("restore", "latest", env=first).returncode == 0
    assert list(fresh.iterdir()) == []

    # Backups exist: the most recently committed one comes back, whatever its number.
    run_cli("backup", "7", env=env, check=True)
    expected = _files(home)
    (a_job(home) / "builds" / "later.txt").write_text("after backup 7\n")
    run_cli("backup", "9", env=env, check=True)
    (a_job(home) / "builds" / "later.txt").unlink()
    run_cli("backup", "2", env=env, check=True)  # after a recoveryOnce: 2 is the latest
    target = tmp_path / "pod-home"
    target.mkdir()
    proc = run_cli("restore", "latest", env={**env, "JENKINS_HOME": str(target)})
    assert proc.returncode == 0 and proc.stdout == ""
    assert {k: v for k, v in describe(target).items() if v[0] != "dir"} == expected


def test_retention_on_the_daemons_schedule(
    tmp_path: Path, home: Path, env: dict[str, str], rundir: Path, daemons: list[Daemon]
) -> None:
    for n in ("1", "2", "3", "4"):  # made with no policy: nothing was forgotten yet
        run_cli("backup", n, env=env, check=True)
    policy = {**env, "BACKUP_KEEP_LAST": "2", "BACKUP_PRUNE_INTERVAL": "0.2"}
    daemon = Daemon(tmp_path, {**policy, "BACKUP_SHUTDOWN_GRACE": "0"})
    daemons.append(daemon)
    wait_for(lambda: _numbers(env) == [3, 4], "retention to keep the last two backups")
    daemon.terminate()
    assert daemon.wait() == 0
    assert _restored(tmp_path, env, "4") == _files(home)


def test_leftovers_of_a_killed_backup_are_swept(
    tmp_path: Path, home: Path, env: dict[str, str], rundir: Path, daemons: list[Daemon]
) -> None:
    _grow(home)
    tmp = Path(env["BACKUP_REPOSITORY"]) / "tmp"
    left = []
    for attempt in range(1, 6):  # kill a backup while it writes an object
        proc = subprocess.Popen(
            [sys.executable, "-m", "jenkins_backup", "backup", str(attempt)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while proc.poll() is None:
            left = os.listdir(tmp) if tmp.is_dir() else []
            if left:
                proc.kill()
                break
            time.sleep(0.002)
        proc.wait(timeout=BOUND)
        left = os.listdir(tmp) if tmp.is_dir() else []
        if left:
            break
    assert left, "no backup was caught writing"
    daemon = Daemon(tmp_path, {**env, "BACKUP_SHUTDOWN_GRACE": "0"})
    daemons.append(daemon)
    wait_for(lambda: "leftover temporary file" in daemon.log, "the sweep")
    assert os.listdir(tmp) == []
    daemon.terminate()
    assert daemon.wait() == 0
