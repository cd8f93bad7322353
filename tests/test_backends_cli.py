"""One behavioural suite over every backend, through the CLI's main in process.

Local directory, S3 (SeaweedFS), Google Cloud Storage (fake-gcs-server) and Azure Blob
(azurite), all real servers on 127.0.0.1; plus network faults between the CLI and S3.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import helpers
from faultproxy import FaultProxy
from helpers import a_job, describe, in_jobs_scope, spawn_cli
from inprocess import run_cli
from servers import Server

BACKENDS = ["local", "s3", "gcs", "azure"]


@pytest.fixture(params=BACKENDS)
def backend_env(
    request: pytest.FixtureRequest, tmp_path: Path, env: dict[str, str]
) -> dict[str, str]:
    if request.param == "local":
        return env
    server: Server = request.getfixturevalue(f"{request.param}_server")
    return {**env, **server.env, "BACKUP_REPOSITORY": server.repo_url("cli")}


def _files(root: Path) -> dict[bytes, tuple[str, int, int, str]]:
    return {k: v for k, v in describe(root).items() if v[0] != "dir"}


def _expected(home: Path) -> dict[bytes, tuple[str, int, int, str]]:
    return {k: v for k, v in describe(home, in_jobs_scope).items() if v[0] != "dir"}


def test_round_trip_latest_and_replacement(
    tmp_path: Path, home: Path, backend_env: dict[str, str]
) -> None:
    env = backend_env
    assert run_cli("latest", env=env, check=True).stdout == "-1\n"
    run_cli("backup", "1", env=env, check=True)
    run_cli("backup", "2", env=env, check=True)
    state2 = _expected(home)
    (a_job(home) / "builds" / "new.txt").write_text("after 2\n")
    run_cli("backup", "1", env=env, check=True)  # replaces 1: newest commit
    assert run_cli("latest", env=env, check=True).stdout == "1\n"
    rows = json.loads(run_cli("list", "--json", env=env, check=True).stdout)
    assert [r["number"] for r in rows] == [2, 1]

    target = tmp_path / "r1"
    run_cli("restore", "latest", env={**env, "JENKINS_HOME": str(target)}, check=True)
    assert _files(target) == _expected(home)
    target2 = tmp_path / "r2"
    run_cli("restore", "2", env={**env, "JENKINS_HOME": str(target2)}, check=True)
    assert _files(target2) == state2
    again = run_cli("restore", "2", env={**env, "JENKINS_HOME": str(target2)}, check=True)
    assert "0 files written" in again.stderr


def test_concurrent_backups(tmp_path: Path, home: Path, backend_env: dict[str, str]) -> None:
    env = backend_env
    procs = [spawn_cli(["backup", n], env) for n in ("1", "2")]
    errors = [p.communicate(timeout=180)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    for n in ("1", "2"):
        target = tmp_path / f"r{n}"
        run_cli("restore", n, env={**env, "JENKINS_HOME": str(target)}, check=True)
        assert _files(target) == _expected(home)


def test_damaged_object_is_detected(
    tmp_path: Path, home: Path, backend_env: dict[str, str]
) -> None:
    """Overwrite the biggest pack with garbage through the storage API itself."""
    from jenkins_backup.storage.factory import open_storage

    env = backend_env
    run_cli("backup", "1", env=env, check=True)
    storage = open_storage(env["BACKUP_REPOSITORY"], env)
    try:
        packs = sorted(storage.list("data/"), key=lambda i: i.size)
        victim = packs[-1]
        data = bytearray(storage.get(victim.key))
        data[len(data) // 2] ^= 0x55
        storage.put(victim.key, bytes(data))
    finally:
        storage.close()
    target = tmp_path / "t"
    proc = run_cli("restore", "1", env={**env, "JENKINS_HOME": str(target)})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("jenkins-backup: error:")


# --- network faults between the CLI and S3 ------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "kwargs"),
    [
        ("reset", {"faults": 3, "after": 64 * 1024}),
        ("http503", {"faults": 4}),
        ("delay", {"delay": 0.02}),
        ("stall", {}),
    ],
)
def test_backup_through_network_faults(
    tmp_path: Path,
    home: Path,
    env: dict[str, str],
    s3_server: Server,
    mode: str,
    kwargs: dict[str, object],
) -> None:
    """Each backup either commits a valid snapshot or exits 1 with the previous latest intact,
    within its time bound."""
    repo = s3_server.repo_url("faults")
    base = {**env, **s3_server.env, "BACKUP_REPOSITORY": repo}
    run_cli("backup", "1", env=base, check=True)
    before = _expected(home)
    (a_job(home) / "builds" / "blob.bin").write_bytes(b"x" * (3 << 20))
    # Room for the retries of transient faults; a stall only waits for the bound to pass.
    bound = 6 if mode == "stall" else 20
    with FaultProxy(("127.0.0.1", s3_server.port), mode, **kwargs) as proxy:  # type: ignore[arg-type]
        faulty = {**base, "AWS_ENDPOINT_URL": proxy.endpoint, "BACKUP_TIMEOUT": str(bound)}
        start = time.monotonic()
        # A child process: the time bound under test is its watchdog's.
        proc = helpers.run_cli("backup", "2", env=faulty, timeout=120)
        elapsed = time.monotonic() - start
    assert elapsed < 2 * bound, "the command bounds its own time"
    latest = run_cli("latest", env=base, check=True).stdout.strip()
    if proc.returncode == 0:
        assert latest == "2"
        target = tmp_path / "ok"
        run_cli("restore", "2", env={**base, "JENKINS_HOME": str(target)}, check=True)
        assert _files(target) == _expected(home)
    else:
        assert proc.returncode == 1
        assert len(proc.stderr.strip().splitlines()[-1]) < 300
        assert latest == "1"
        target = tmp_path / "old"
        run_cli("restore", "1", env={**base, "JENKINS_HOME": str(target)}, check=True)
        assert _files(target) == before
    if mode in ("reset", "http503"):
        assert proxy.faulted > 0, "the faults were injected"
    if mode in ("reset", "http503", "delay"):
        assert proc.returncode == 0, f"transient {mode} faults are retried: {proc.stderr}"
    else:
        assert proc.returncode == 1, "a dead endpoint fails the command instead of hanging"
