"""-1 means "the repository holds no backup at all", and nothing else.

Backups that exist but cannot be restored are an error (exit 1, one stable line), never -1 and
never an empty restore: the operator would start Jenkins empty and back the empty home up.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jenkins_backup.cli.main import main
from jenkins_backup.errors import NoRestorableBackup, RepositoryError
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.latest import latest, latest_result
from jenkins_backup.operations.restore import restore
from jenkins_backup.settings import load
from repo_backends import RawStore


def _two_backups(env: dict[str, str]) -> RawStore:
    settings = load(environ=env)
    backup(settings, 1)
    backup(settings, 2)
    return RawStore(env)


def _run(argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> int:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return main(argv)


def test_damaged_backups_are_an_error_not_minus_one(
    repo_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw = _two_backups(repo_env)
    packs = [k for k in raw.sizes("data/")]
    assert packs
    for key in packs:
        raw.delete(key)
    settings = load(environ=repo_env)
    with pytest.raises(NoRestorableBackup, match=r"^2 backups exist but none can be restored: "):
        latest(settings)
    target = tmp_path / "restored"
    env = {**repo_env, "JENKINS_HOME": str(target)}
    with pytest.raises(NoRestorableBackup):
        restore(load(environ=env), None)
    assert not target.exists() or list(target.rglob("*")) == []

    capsys.readouterr()
    assert _run(["latest"], repo_env, monkeypatch) == 1
    out, err = capsys.readouterr()
    assert out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("jenkins-backup: error: 2 backups exist but none can be restored: ")
    assert _run(["restore", "latest"], env, monkeypatch) == 1
    again = capsys.readouterr().err.strip().splitlines()[-1]
    assert again == last  # stable: the same line every time


def test_a_damaged_newest_backup_is_skipped_and_counted(
    repo_env: dict[str, str], tmp_path: Path
) -> None:
    raw = _two_backups(repo_env)
    newest = max(k for k in raw.sizes("snapshots/") if "-2-" in k)
    raw.flip(newest, 5)
    found = latest_result(load(environ=repo_env))
    assert (found.number, found.skipped) == (1, 1)
    env = {**repo_env, "JENKINS_HOME": str(tmp_path / "restored")}
    result = restore(load(environ=env), None)
    assert (result.number, result.skipped) == (1, 1)


def test_minus_one_only_when_there_is_no_backup(repo_env: dict[str, str], tmp_path: Path) -> None:
    settings = load(environ=repo_env)
    assert latest_result(settings).number == -1  # no repository yet
    env = {**repo_env, "JENKINS_HOME": str(tmp_path / "restored")}
    assert restore(load(environ=env), None).number is None
    raw = _two_backups(repo_env)
    raw.delete("config")
    with pytest.raises(RepositoryError, match="no config but 2 backup"):
        latest(settings)
    with pytest.raises(RepositoryError, match="no config but 2 backup"):
        restore(load(environ=env), None)
