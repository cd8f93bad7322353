"""'Latest' is the most recently committed intact backup, whatever its number."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import a_job, describe, in_jobs_scope, run_cli


def _numbers(env: dict[str, str]) -> list[int]:
    return [r["number"] for r in json.loads(run_cli("list", "--json", env=env, check=True).stdout)]


def test_latest_after_several_backups(env: dict[str, str]) -> None:
    for n in (1, 2, 3):
        run_cli("backup", str(n), env=env, check=True)
    assert run_cli("latest", env=env).stdout == "3\n"
    assert _numbers(env) == [1, 2, 3]


def test_backup_over_existing_number_replaces_it(
    tmp_path: Path, home: Path, env: dict[str, str]
) -> None:
    for n in (1, 2, 3):
        run_cli("backup", str(n), env=env, check=True)
    marker = a_job(home) / "builds" / "marker.txt"
    marker.write_text("written after backup 3\n")
    # The operator retries the same number, or reuses numbers after a restore of an old one.
    run_cli("backup", "2", env=env, check=True)
    assert run_cli("latest", env=env).stdout == "2\n", "latest is by commit time, not number"
    assert _numbers(env) == [1, 3, 2]
    target = tmp_path / "restored"
    run_cli("restore", "2", env={**env, "JENKINS_HOME": str(target)}, check=True)
    assert (target / marker.relative_to(home)).read_text() == "written after backup 3\n"
    snapshots = list((Path(env["BACKUP_REPOSITORY"]) / "snapshots").iterdir())
    assert len(snapshots) == 3, "the replaced snapshot object is removed"


def test_same_number_twice_is_valid(tmp_path: Path, home: Path, env: dict[str, str]) -> None:
    run_cli("backup", "7", env=env, check=True)
    run_cli("backup", "7", env=env, check=True)
    assert run_cli("latest", env=env).stdout == "7\n"
    target = tmp_path / "restored"
    run_cli("restore", "7", env={**env, "JENKINS_HOME": str(target)}, check=True)
    assert describe(target).keys() >= {
        k for k, v in describe(home, in_jobs_scope).items() if v[0] == "file"
    }


def test_number_reuse_after_restoring_an_old_backup(
    tmp_path: Path, home: Path, env: dict[str, str]
) -> None:
    """recoveryOnce to 2, then the operator numbers new backups 3, 4 over the old ones."""
    for n in (1, 2, 3, 4, 5):
        (a_job(home) / "builds" / f"state-{n}").write_text(f"{n}\n")
        run_cli("backup", str(n), env=env, check=True)
    restored = tmp_path / "restored"
    run_cli("restore", "2", env={**env, "JENKINS_HOME": str(restored)}, check=True)
    job = restored / a_job(home).relative_to(home)
    assert not (job / "builds" / "state-3").exists()
    renv = {**env, "JENKINS_HOME": str(restored)}
    run_cli("backup", "3", env=renv, check=True)
    assert run_cli("latest", env=env).stdout == "3\n"
    (job / "builds" / "after").write_text("new\n")
    run_cli("backup", "4", env=renv, check=True)
    assert run_cli("latest", env=env).stdout == "4\n"
    # Backup 5 (older commit, larger number) is still there but is not "latest".
    assert _numbers(env) == [1, 2, 5, 3, 4]
    final = tmp_path / "final"
    run_cli("restore", "latest", env={**env, "JENKINS_HOME": str(final)}, check=True)
    fjob = final / a_job(home).relative_to(home)
    assert (fjob / "builds" / "after").exists() and not (fjob / "builds" / "state-5").exists()
