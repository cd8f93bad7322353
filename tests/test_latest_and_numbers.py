"""'Latest' is the most recently committed intact backup, whatever its number.

In process, through the operations layer (the CLI's own contract is in test_cli_contract.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from helpers import a_job, describe, in_jobs_scope
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.latest import latest
from jenkins_backup.operations.listing import list_backups
from jenkins_backup.operations.restore import restore
from jenkins_backup.settings import Settings, load


def _numbers(settings: Settings) -> list[int]:
    return [b.number for b in list_backups(settings)]


def _at(settings: Settings, home: Path) -> Settings:
    return replace(settings, jenkins_home=str(home))


def test_latest_after_several_backups(env: dict[str, str]) -> None:
    settings = load(environ=env)
    for n in (1, 2, 3):
        backup(settings, n)
    assert latest(settings) == 3
    assert _numbers(settings) == [1, 2, 3]


def test_backup_over_existing_number_replaces_it(
    tmp_path: Path, home: Path, env: dict[str, str]
) -> None:
    settings = load(environ=env)
    for n in (1, 2, 3):
        backup(settings, n)
    marker = a_job(home) / "builds" / "marker.txt"
    marker.write_text("written after backup 3\n")
    # The operator retries the same number, or reuses numbers after a restore of an old one.
    backup(settings, 2)
    assert latest(settings) == 2, "latest is by commit time, not number"
    assert _numbers(settings) == [1, 3, 2]
    target = tmp_path / "restored"
    restore(_at(settings, target), 2)
    assert (target / marker.relative_to(home)).read_text() == "written after backup 3\n"
    snapshots = list((Path(env["BACKUP_REPOSITORY"]) / "snapshots").iterdir())
    assert len(snapshots) == 3, "the replaced snapshot object is removed"


def test_same_number_twice_is_valid(tmp_path: Path, home: Path, env: dict[str, str]) -> None:
    settings = load(environ=env)
    backup(settings, 7)
    backup(settings, 7)
    assert latest(settings) == 7
    target = tmp_path / "restored"
    restore(_at(settings, target), 7)
    assert describe(target).keys() >= {
        k for k, v in describe(home, in_jobs_scope).items() if v[0] == "file"
    }


def test_number_reuse_after_restoring_an_old_backup(
    tmp_path: Path, home: Path, env: dict[str, str]
) -> None:
    """recoveryOnce to 2, then the operator numbers new backups 3, 4 over the old ones."""
    settings = load(environ=env)
    for n in (1, 2, 3, 4, 5):
        (a_job(home) / "builds" / f"state-{n}").write_text(f"{n}\n")
        backup(settings, n)
    restored = tmp_path / "restored"
    restore(_at(settings, restored), 2)
    job = restored / a_job(home).relative_to(home)
    assert not (job / "builds" / "state-3").exists()
    backup(_at(settings, restored), 3)
    assert latest(settings) == 3
    (job / "builds" / "after").write_text("new\n")
    backup(_at(settings, restored), 4)
    assert latest(settings) == 4
    # Backup 5 (older commit, larger number) is still there but is not "latest".
    assert _numbers(settings) == [1, 2, 5, 3, 4]
    final = tmp_path / "final"
    restore(_at(settings, final), None)
    fjob = final / a_job(home).relative_to(home)
    assert (fjob / "builds" / "after").exists() and not (fjob / "builds" / "state-5").exists()
