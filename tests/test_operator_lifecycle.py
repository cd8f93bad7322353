"""A whole operator lifecycle, through the CLI's main with the Jenkins Operator's commands.

Steps (each checked where it happens):
 1. fresh start: getLatestAction answers -1, the restore is skipped, numbering starts at 1;
 2. interval backups 1-3 while Jenkins adds builds;
 3. backup before pod deletion (4);
 4. restart with JENKINS_HOME emptied: restore of the latest (4), the home equals backup 4;
 5. backups continue at 5, 6 (6 of an unchanged home);
 6. a failed backup (store unavailable) leaves the status unchanged; the same number (7) is
    retried and succeeds;
 7. the same number twice (8): the status update of a successful backup is lost, the operator
    sends 8 again, and backup 8 is the second one;
 8. status wiped with the pod running: the restore is skipped (lastBackup is 0), numbering
    restarts at 1 and reuses numbers; latest is then 1, not the largest number 8;
 9. restart (with backup before deletion, 2): restore of the latest (2);
10. recoveryOnce to the older backup 5: the pod is recreated (backup before deletion reuses 3),
    the home equals backup 5, new backups are 6 and 7 and replace the old 6 and 7;
11. crash restart (no backup before deletion): the latest is 7 (the new one), the home equals
    it, and the changes made after it are gone;
12. every number in the repository restores to what was backed up last under that number.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from homegen import add_builds, generate

from helpers import clean_env
from inprocess import run_cli
from operator_sim import Operator, files_in_scope


@contextlib.contextmanager
def store_unavailable(repo: Path) -> Iterator[None]:
    """The repository location stops working (a file where its directory was), then returns."""
    away = repo.with_name(repo.name + ".away")
    os.rename(repo, away)
    repo.write_text("not a repository\n")
    try:
        yield
    finally:
        repo.unlink()
        os.rename(away, repo)


def _numbers(env: dict[str, str]) -> list[int]:
    rows = json.loads(run_cli("list", "--json", env=env, check=True).stdout)
    return [row["number"] for row in rows]  # oldest commit first


def test_operator_lifecycle(tmp_path: Path) -> None:
    home = tmp_path / "jenkins-home"
    repo = tmp_path / "repo"
    env = clean_env(
        JENKINS_HOME=str(home),
        BACKUP_REPOSITORY=str(repo),
        BACKUP_RUNTIME_DIR=str(tmp_path / "run"),
    )
    op = Operator(env, home)
    seed = iter(range(100, 200))

    def jenkins_works() -> None:
        add_builds(home, fraction=0.3, seed=next(seed))

    def home_is(number: int) -> None:
        assert op.restored == number
        assert files_in_scope(home) == op.backed_up[number], f"home differs from backup {number}"

    # 1. Fresh start.
    op.start_pod()
    assert op.log[-2:] == ["latest -> -1", "restore skipped"]
    assert op.status.pending_backup == 1
    assert not any(home.iterdir()), "nothing is written when there is no backup"
    home.rmdir()
    generate(home, size="tiny", seed=7, odd=True)  # Jenkins creates its home

    # 2. Interval backups while the home changes.
    for expected in (1, 2, 3):
        jenkins_works()
        assert op.tick() == expected
    assert op.status.last_backup == 3

    # 3. Backup before pod deletion.
    jenkins_works()
    op.delete_pod()
    assert op.status.last_backup == 4 and op.status.backup_done_before_pod_deletion

    # 4. Restart with the home emptied: restore of the latest.
    op.start_pod()
    home_is(4)
    assert op.status.pending_backup == 5

    # 5. Backups continue.
    jenkins_works()
    assert op.tick() == 5
    assert op.tick() == 6

    # 6. A failure changes nothing; the same number is retried.
    jenkins_works()
    with store_unavailable(repo):
        assert op.tick() is None
    assert (op.status.last_backup, op.status.pending_backup) == (6, 7)
    assert op.tick() == 7

    # 7. The same number twice.
    jenkins_works()
    assert op.tick(lose_status_update=True) == 8
    assert (op.status.last_backup, op.status.pending_backup) == (7, 8)
    jenkins_works()
    assert op.tick() == 8
    assert _numbers(env).count(8) == 1
    assert op.latest() == 8

    # 8. Status wiped with the pod running: numbering restarts at 1, reusing numbers.
    op.wipe_status()
    op.restore()
    assert op.log[-2:] == ["latest -> 8", "restore skipped"]
    jenkins_works()
    assert op.tick() == 1
    assert op.latest() == 1, "latest is the most recent commit, not the largest number"
    assert _numbers(env)[-1] == 1 and _numbers(env).count(1) == 1

    # 9. Restart: restore of the latest.
    jenkins_works()
    op.delete_pod()
    assert op.status.last_backup == 2
    op.start_pod()
    home_is(2)

    # 10. recoveryOnce to an older backup, then new backups reuse numbers.
    op.recovery_once = 5
    jenkins_works()
    op.delete_pod()  # the operator recreates the pod; the backup before deletion is 3
    assert op.status.last_backup == 3
    op.start_pod()
    home_is(5)
    assert op.recovery_once == 0 and op.status.pending_backup == 6
    jenkins_works()
    assert op.tick() == 6
    jenkins_works()
    assert op.tick() == 7
    assert op.latest() == 7
    assert _numbers(env)[-2:] == [6, 7]

    # 11. Crash restart after that.
    jenkins_works()
    unsaved = files_in_scope(home)
    op.delete_pod(crash=True)
    op.start_pod()
    home_is(7)
    assert files_in_scope(home) != unsaved

    # 12. Every number restores to what was backed up last under it.
    numbers = _numbers(env)
    assert sorted(numbers) == list(range(1, 9))
    for number in numbers:
        target = tmp_path / f"check-{number}"
        run_cli("restore", str(number), env={**env, "JENKINS_HOME": str(target)}, check=True)
        assert files_in_scope(target) == op.backed_up[number], f"backup {number}"
