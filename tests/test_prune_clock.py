"""Prune's ages come from the store's clock, and it refuses to act on clocks it cannot trust."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from faketime import needs_faketime, run_skewed
from helpers import a_job, spawn_cli
from inprocess import run_cli
from jenkins_backup.errors import UsageError
from jenkins_backup.operations.prune import prune
from jenkins_backup.settings import load
from repo_backends import RawStore


@needs_faketime
@pytest.mark.parametrize("offset", ["-5m", "+5m"])
def test_prune_refuses_when_its_clock_and_the_store_disagree(
    repo_env: dict[str, str], offset: str
) -> None:
    run_cli("backup", "1", env=repo_env, check=True)
    run_cli("backup", "2", env=repo_env, check=True)
    store = RawStore(repo_env)
    before = store.sizes("snapshots/")
    proc = run_skewed(offset, ["prune", "--keep-last", "1"], repo_env)
    assert proc.returncode == 1, proc.stderr
    assert "clock" in proc.stderr.strip().splitlines()[-1]
    assert store.sizes("snapshots/") == before, "a refused prune forgets nothing"


@needs_faketime
def test_a_slow_forgetting_clock_does_not_age_tombstones_early(repo_env: dict[str, str]) -> None:
    """A tombstone named by a clock ten minutes slow is still young by the store's clock."""
    env = {**repo_env, "BACKUP_PRUNE_GRACE": "300", "BACKUP_TIMEOUT": "60"}
    run_cli("backup", "1", env=env, check=True)
    run_cli("backup", "2", env=env, check=True)
    slow = run_skewed("-10m", ["forget", "1"], env)
    assert slow.returncode == 0, slow.stderr
    store = RawStore(env)
    tombstones = store.sizes("forgotten/")
    assert len(tombstones) == 1
    run_cli("prune", env=env, check=True)
    assert store.sizes("forgotten/") == tombstones, "the grace period of backup 1 is not over"


def test_a_grace_shorter_than_twice_the_timeout_is_refused(env: dict[str, str]) -> None:
    settings = load(environ={**env, "BACKUP_PRUNE_GRACE": "600", "BACKUP_TIMEOUT": "3600"})
    with pytest.raises(UsageError, match="BACKUP_PRUNE_GRACE"):
        prune(settings)
    proc = run_cli("prune", env={**env, "BACKUP_PRUNE_GRACE": "600", "BACKUP_TIMEOUT": "3600"})
    assert proc.returncode == 2
    assert "twice BACKUP_TIMEOUT" in proc.stderr.strip().splitlines()[-1]


def test_a_paused_backup_never_commits_with_missing_data(
    home: Path, repo_env: dict[str, str]
) -> None:
    """A backup SIGSTOPped past the grace (a frozen pod) while a prune deletes its packs as old
    leftovers: resumed, it must fail cleanly, never commit a backup with missing data."""
    grace = {**repo_env, "BACKUP_PRUNE_GRACE": "1"}  # the backup's own timeout stays 1 h
    big = a_job(home) / "builds" / "big"
    big.mkdir()
    for i in range(24):
        (big / f"artifact-{i}.bin").write_bytes(os.urandom(2 << 20))
    store = RawStore(repo_env)
    proc = spawn_cli(["backup", "1"], grace)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and not store.sizes("data/"):
        time.sleep(0.01)
    assert proc.poll() is None, "the backup finished before its first pack showed"
    proc.send_signal(signal.SIGSTOP)
    showed = time.monotonic()  # the backup's own clock started before this
    try:
        stopped_with = set(store.sizes("data/"))
        # The paused pod: by the prune's clock (injected, not slept through) its packs are older
        # than the grace; by its own clock it has run past half the grace when it resumes.
        paused = load(environ={**grace, "BACKUP_TIMEOUT": "0.5"})
        pruned = prune(paused, now_ns=time.time_ns() + 3 * 10**9)
        assert not stopped_with & set(store.sizes("data/")), pruned
        time.sleep(max(0.0, showed + 0.6 - time.monotonic()))
    finally:
        proc.send_signal(signal.SIGCONT)
    stderr = proc.communicate(timeout=300)[1].decode()
    assert proc.returncode != 0, "committed although prune deleted some of its packs"
    assert "nothing was committed" in stderr.strip().splitlines()[-1]
    assert store.sizes("snapshots/") == {}
    assert run_cli("latest", env=repo_env, check=True).stdout.strip() == "-1"
