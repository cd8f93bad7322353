"""The operator's contract: arguments, exit codes, stdout discipline, configuration."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import clean_env, run_cli


def test_latest_without_any_backup_prints_minus_one(env: dict[str, str]) -> None:
    proc = run_cli("latest", env=env)
    assert proc.returncode == 0
    assert proc.stdout == "-1\n"


def test_latest_stdout_is_the_number_alone(env: dict[str, str]) -> None:
    backup = run_cli("backup", "1", env=env)
    assert backup.returncode == 0
    assert backup.stdout == "", "logs go to stderr, never stdout"
    assert "backup 1 committed" in backup.stderr
    proc = run_cli("latest", env=env)
    assert proc.returncode == 0
    assert proc.stdout == "1\n"


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "1.5", "+3", "", "٣", "99999999999999999999"])
def test_bad_backup_numbers_are_usage_errors(env: dict[str, str], bad: str) -> None:
    proc = run_cli("backup", bad, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("jenkins-backup: usage error:")
    assert not Path(env["BACKUP_REPOSITORY"]).exists(), "nothing is written on a usage error"


@pytest.mark.parametrize(
    "args", [("backup",), ("restore",), ("frobnicate", "1"), ("backup", "1", "--bogus"), ()]
)
def test_malformed_command_lines_exit_2(env: dict[str, str], args: tuple[str, ...]) -> None:
    proc = run_cli(*args, env=env)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_repository_configuration_names_the_variables(home: Path) -> None:
    env = clean_env(JENKINS_HOME=str(home))
    for args in (("backup", "1"), ("restore", "1"), ("latest",), ("list",)):
        proc = run_cli(*args, env=env)
        assert proc.returncode == 2, args
        last = proc.stderr.strip().splitlines()[-1]
        assert "BACKUP_REPOSITORY" in last and "BACKUP_DIR" in last


def test_missing_jenkins_home_is_a_usage_error(tmp_path: Path) -> None:
    env = clean_env(BACKUP_REPOSITORY=str(tmp_path / "repo"))
    proc = run_cli("backup", "1", env=env)
    assert proc.returncode == 2
    assert "JENKINS_HOME" in proc.stderr


def test_nonexistent_jenkins_home_fails_cleanly(tmp_path: Path) -> None:
    env = clean_env(BACKUP_REPOSITORY=str(tmp_path / "repo"), JENKINS_HOME=str(tmp_path / "no"))
    proc = run_cli("backup", "1", env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("jenkins-backup: error:")
    assert run_cli("latest", env=env).stdout == "-1\n"


def test_backup_dir_is_the_pvc_image_drop_in(tmp_path: Path, home: Path) -> None:
    env = clean_env(JENKINS_HOME=str(home), BACKUP_DIR=str(tmp_path / "pvc"))
    run_cli("backup", "3", env=env, check=True)
    assert (tmp_path / "pvc" / "config").is_file()
    assert run_cli("latest", env=env).stdout == "3\n"


def test_file_url_repository(tmp_path: Path, home: Path) -> None:
    env = clean_env(JENKINS_HOME=str(home), BACKUP_REPOSITORY=f"file://{tmp_path}/by-url")
    run_cli("backup", "1", env=env, check=True)
    assert (tmp_path / "by-url" / "config").is_file()


def test_unknown_scope_is_a_usage_error(env: dict[str, str]) -> None:
    proc = run_cli("backup", "1", env={**env, "BACKUP_SCOPE": "everything"})
    assert proc.returncode == 2
    assert "BACKUP_SCOPE" in proc.stderr


def test_list_json_fields(env: dict[str, str]) -> None:
    run_cli("backup", "1", env=env, check=True)
    run_cli("backup", "2", env=env, check=True)
    proc = run_cli("list", "--json", env=env, check=True)
    rows = json.loads(proc.stdout)
    assert [r["number"] for r in rows] == [1, 2]
    for r in rows:
        assert r["committed_at"].endswith("Z") and "T" in r["committed_at"]
        assert r["files"] > 100 and r["bytes"] > 0
    assert rows[1]["bytes_added"] == 0, "an unchanged home adds no data"
    table = run_cli("list", env=env, check=True).stdout
    assert "NUMBER" in table and "NEW DATA" in table


def test_list_and_latest_on_empty_repository(env: dict[str, str]) -> None:
    assert run_cli("list", "--json", env=env).returncode == 10  # no repository there
    run_cli("init", env=env, check=True)
    assert json.loads(run_cli("list", "--json", env=env, check=True).stdout) == []


def test_restore_of_missing_number_writes_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    run_cli("backup", "1", env=env, check=True)
    target = tmp_path / "target"
    proc = run_cli("restore", "5", env={**env, "JENKINS_HOME": str(target)})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == "jenkins-backup: error: backup 5 does not exist"
    assert not target.exists()


def test_restore_latest_on_empty_repository_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "target"
    env = clean_env(JENKINS_HOME=str(target), BACKUP_REPOSITORY=str(tmp_path / "repo"))
    proc = run_cli("restore", "latest", env=env)
    assert proc.returncode == 0
    assert not target.exists()


def test_console_script_is_installed(env: dict[str, str]) -> None:
    exe = shutil.which("jenkins-backup", path=str(Path(sys.executable).parent))
    assert exe is not None, "the package installs a jenkins-backup console script"
    proc = subprocess.run([exe, "latest"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "-1\n"


def test_timeout_bounds_the_command(env: dict[str, str]) -> None:
    proc = run_cli("backup", "1", env={**env, "BACKUP_TIMEOUT": "0.001"})
    assert proc.returncode == 1
    assert "timed out" in proc.stderr.strip().splitlines()[-1]
    assert run_cli("latest", env=env).stdout == "-1\n"


def test_bad_timeout_is_a_usage_error(env: dict[str, str]) -> None:
    proc = run_cli("latest", env={**env, "BACKUP_TIMEOUT": "soon"})
    assert proc.returncode == 2


def test_verify_failure_ends_with_one_error_line(env: dict[str, str]) -> None:
    run_cli("backup", "1", env=env, check=True)
    packs = sorted((Path(env["BACKUP_REPOSITORY"]) / "data").rglob("*"))
    next(p for p in packs if p.is_file()).unlink()
    proc = run_cli("verify", "--quick", env=env)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("jenkins-backup: error: verify (quick) found "), last
    assert last.endswith("in 1 backup(s); damaged backups: 1"), last
    assert proc.stdout == ""


def test_no_repository_and_wrong_key_exit_10_and_12(env: dict[str, str]) -> None:
    assert run_cli("list", env=env).returncode == 10
    run_cli("init", env={**env, "BACKUP_ENCRYPTION_KEY": "a-long-enough-random-key-0123456789"})
    other = "another-long-enough-key-9876543210"
    wrong = run_cli("list", env={**env, "BACKUP_ENCRYPTION_KEY": other})
    assert wrong.returncode == 12
    assert len(wrong.stderr.strip().splitlines()) == 1
