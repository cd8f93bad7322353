"""prune --now frees forgotten backups' space at once, and is refused while the repository shows
a backup in flight (an advisory marker that expires: time injected, never slept through); the
plain prune says when its condemned data becomes free. Local directory and S3."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from helpers import a_job
from inprocess import run_main
from jenkins_backup.engine.progress import NoProgress
from jenkins_backup.errors import BackupInFlight, RepositoryError, ShrinkRefused
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.forget import forget
from jenkins_backup.operations.prune import prune
from jenkins_backup.operations.status import status
from jenkins_backup.operations.verify import verify
from jenkins_backup.repository.inflight import announce
from jenkins_backup.repository.repo import Repository
from jenkins_backup.settings import load
from jenkins_backup.storage.factory import open_storage
from repo_backends import RawStore

MIB = 1 << 20
SECOND = 10**9


def _repo(env: dict[str, str]) -> Repository:
    return Repository.open(open_storage(env["BACKUP_REPOSITORY"], env))


def _with_forgotten_artifact(home: Path, env: dict[str, str]) -> int:
    """Backup 1 holds a 4 MiB artifact, backup 2 does not; 1 is forgotten. Returns its size."""
    settings = load(environ=env)
    artifact = a_job(home) / "builds" / "artifact.bin"
    artifact.write_bytes(os.urandom(4 * MIB))
    backup(settings, 1)
    artifact.unlink()
    backup(settings, 2)
    forget(settings, 1)
    return 4 * MIB


def test_prune_now_frees_the_space_at_once(home: Path, repo_env: dict[str, str]) -> None:
    size = _with_forgotten_artifact(home, repo_env)
    raw = RawStore(repo_env)
    before = raw.total()
    # The plain prune deletes nothing and says when, and how to free it now.
    code, _, err = run_main(repo_env, "prune")  # a prune reports as logs, on stderr
    assert code == 0, err
    assert "delete 0 pack(s)" in err and "1 forgotten backup(s) keep their data until" in err
    assert "prune --now frees it at once" in err
    assert raw.total() >= before
    # Two seconds on: the store's whole-second stamps put the packs in the past.
    settings = load(environ=repo_env)
    result = prune(settings, now=True, now_ns=time.time_ns() + 2 * SECOND)
    assert result.gc.packs_deleted >= 1 and result.gc.bytes_freed >= size
    assert raw.total() <= before - size
    assert raw.sizes("forgotten/") == {} and raw.sizes("condemned/") == {}
    assert verify(settings).problems == []


def test_plain_prune_says_when_condemned_packs_become_free(
    home: Path, repo_env: dict[str, str]
) -> None:
    _with_forgotten_artifact(home, repo_env)
    settings = load(environ=repo_env)
    later = time.time_ns() + int(settings.prune_grace * SECOND) + 2 * SECOND
    condemned = prune(settings, now_ns=later)  # the tombstone expired: its packs are condemned
    assert condemned.gc.packs_condemned >= 1 and condemned.gc.packs_deleted == 0
    assert condemned.gc.waiting_until_ns == later + int(settings.prune_grace * SECOND)
    code, _, err = run_main(repo_env, "prune")
    assert code == 0, err
    assert "condemned pack(s)" in err and "become free after" in err and "--now" in err


def test_prune_now_is_refused_while_a_backup_is_in_flight(
    home: Path, repo_env: dict[str, str]
) -> None:
    env = {**repo_env, "BACKUP_TIMEOUT": "600"}
    size = _with_forgotten_artifact(home, env)
    raw = RawStore(env)
    before = raw.total()
    started = time.time_ns()
    announce(_repo(env), 3, "jenkins-0", 4242, started, 600.0)
    settings = load(environ=env)
    with pytest.raises(BackupInFlight, match=r"backup 3 \(host jenkins-0, pid 4242\)"):
        prune(settings, now=True, now_ns=started + 2 * SECOND)
    assert raw.total() >= before and raw.sizes("forgotten/")  # nothing done, nothing forgotten
    code, out, err = run_main(env, "prune", "--now")
    assert code == 1 and out == ""
    assert err.strip().splitlines()[-1].startswith("jenkins-backup: error: prune --now refused")
    assert status(settings, now=started / 1e9 + 1).running == (3,)
    # The marker expires with the backup's timeout (600 s): then prune --now goes ahead.
    assert status(settings, now=started / 1e9 + 605).running == ()
    result = prune(settings, now=True, now_ns=started + 605 * SECOND)
    assert result.gc.bytes_freed >= size and raw.total() <= before - size


@pytest.mark.parametrize("garbage", [b"", b"\x00\xffnot a marker", b'{"v":1,"timeout":1e300}'])
def test_an_unreadable_marker_counts_until_the_readers_timeout(
    home: Path, repo_env: dict[str, str], garbage: bytes
) -> None:
    env = {**repo_env, "BACKUP_TIMEOUT": "600"}
    _with_forgotten_artifact(home, env)
    raw = RawStore(env)
    if raw.local is not None:
        (raw.local / "running").mkdir(exist_ok=True)
    key = "running/" + "ab" * 16
    raw.put(key, garbage)
    written = time.time_ns()
    settings = load(environ=env)
    with pytest.raises(BackupInFlight, match="unreadable marker"):
        prune(settings, now=True, now_ns=written + 2 * SECOND)
    prune(settings, now=True, now_ns=written + 610 * SECOND)  # expired by our own timeout


def test_a_hostile_marker_expires_within_the_prune_grace(
    home: Path, repo_env: dict[str, str]
) -> None:
    _with_forgotten_artifact(home, repo_env)
    written = time.time_ns()
    announce(_repo(repo_env), 3, "pod", 1, written, 10.0**8)  # "runs for three years"
    settings = load(environ=repo_env)
    with pytest.raises(BackupInFlight):
        prune(settings, now=True, now_ns=written + 3600 * SECOND)
    grace = int(settings.prune_grace * SECOND)
    prune(settings, now=True, now_ns=written + grace + 2 * SECOND)


def test_backups_remove_their_marker_committed_or_failed(
    home: Path, repo_env: dict[str, str]
) -> None:
    settings = load(environ=repo_env)
    backup(settings, 1)
    assert RawStore(repo_env).sizes("running/") == {}
    for child in (home / "jobs").iterdir():  # the home lost its jobs: the shrink guard fails it
        os.rename(child, home / f"moved-{child.name}")
    with pytest.raises(ShrinkRefused):
        backup(settings, 2)
    assert RawStore(repo_env).sizes("running/") == {}


def test_a_backup_commits_when_its_marker_cannot_be_written(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """The marker is advisory: a store refusing it costs a warning, never the backup."""
    settings = load(environ=env)
    backup(settings, 1)
    (Path(env["BACKUP_REPOSITORY"]) / "running").rmdir()
    (Path(env["BACKUP_REPOSITORY"]) / "running").write_bytes(b"not a folder")
    code, _, err = run_main(env, "backup", "2")
    assert code == 0, err
    assert "could not mark backup 2 in flight (prune --now will not see it)" in err
    assert run_main(env, "latest")[1] == "2\n"


class _PruneNowMidway(NoProgress):
    """A progress sink that runs one prune --now as the backup's first file is done: the
    mistake the documentation warns of, made on purpose (its marker is taken as expired)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.settings = load(environ=env)
        self.freed = -1

    def advance(self, files: int, nbytes: int, path: bytes = b"") -> None:
        if self.freed < 0 and files:
            self.freed = 0
            later = time.time_ns() + int(2 * self.settings.timeout * SECOND)
            self.freed = prune(self.settings, now=True, now_ns=later).gc.bytes_freed


def test_a_backup_that_a_prune_now_overlapped_checks_its_data_before_committing(
    home: Path, repo_env: dict[str, str]
) -> None:
    """Backup 2 deduplicates against the data of forgotten backup 1, which a prune --now
    deletes meanwhile: backup 2 must fail with nothing committed, not commit a broken backup."""
    settings = load(environ=repo_env)
    backup(settings, 1)
    forget(settings, 1)
    midway = _PruneNowMidway(repo_env)
    with pytest.raises(RepositoryError, match="a prune --now ran while this backup ran"):
        backup(settings, 2, midway)
    assert midway.freed > 0
    assert RawStore(repo_env).sizes("snapshots/") == {}
    backup(settings, 3)  # the next backup uploads the data again
    assert verify(settings).problems == []
