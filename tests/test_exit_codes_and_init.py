"""Exit codes scripts act on (10 no repository, 12 wrong key) and an explicit init.

In process: the status main() returns is the one the console script exits with (the CLI
contract, tests/test_cli_contract.py, checks 10 and 12 through the real console script).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inprocess import run_cli

KEY = "a-long-enough-random-key-0123456789"
OTHER = "another-long-enough-key-9876543210"


@pytest.mark.parametrize(
    "args",
    [
        ("list",),
        ("verify",),
        ("restore", "1"),
        ("export", "1", "-"),
        ("forget", "1"),
        ("prune",),
        ("ls", "1"),
        ("jobs", "1"),
        ("find", "config.xml"),
    ],
)
def test_no_repository_is_exit_10(env: dict[str, str], args: tuple[str, ...]) -> None:
    proc = run_cli(*args, env=env)
    assert proc.returncode == 10, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("jenkins-backup: error: no repository")
    assert not Path(env["BACKUP_REPOSITORY"]).exists()


def test_latest_and_restore_latest_still_mean_empty(env: dict[str, str]) -> None:
    latest = run_cli("latest", env=env)
    assert (latest.returncode, latest.stdout) == (0, "-1\n")
    assert run_cli("restore", "latest", env=env).returncode == 0


def test_wrong_or_missing_key_is_exit_12(env: dict[str, str]) -> None:
    keyed = {**env, "BACKUP_ENCRYPTION_KEY": KEY}
    run_cli("init", env=keyed, check=True)
    wrong = run_cli("list", env={**env, "BACKUP_ENCRYPTION_KEY": OTHER})
    assert wrong.returncode == 12, wrong.stderr
    assert "key is wrong" in wrong.stderr.splitlines()[-1]
    assert run_cli("list", env=env).returncode == 12  # no key for an encrypted repository
    assert run_cli("list", env=keyed).returncode == 0


def test_init_creates_and_no_create_refuses(env: dict[str, str]) -> None:
    for refusing in (["backup", "1", "--no-create"], ["backup", "1"]):
        e = env if "--no-create" in refusing else {**env, "BACKUP_CREATE": "false"}
        proc = run_cli(*refusing, env=e)
        assert proc.returncode == 10, proc.stderr
        assert "BACKUP_CREATE=false" in proc.stderr.splitlines()[-1]
        assert not Path(env["BACKUP_REPOSITORY"], "config").exists()
    created = run_cli("init", "--json", env=env, check=True)
    assert json.loads(created.stdout)["encrypted"] is False
    assert run_cli("init", env=env).returncode == 1  # never over an existing one
    run_cli("backup", "1", "--no-create", env=env, check=True)
    assert run_cli("latest", env=env, check=True).stdout == "1\n"
