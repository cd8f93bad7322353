"""Honest partial backups: an unreadable file keeps exit 0, but the snapshot records how many
entries are missing and which (``list --json`` field ``warnings``); BACKUP_STRICT makes the
backup exit 3 once committed."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from inprocess import run_main
from jenkins_backup import settings as settings_mod
from jenkins_backup.errors import PartialBackup
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.listing import list_backups

NOBODY = 65534


@contextmanager
def _unprivileged() -> Iterator[None]:
    """Root reads every file whatever its mode: the backup runs as another user meanwhile."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture
def place() -> Iterator[Path]:
    """A directory every user may use (pytest's own are private to root)."""
    root = Path(tempfile.mkdtemp(prefix="partial-"))
    root.chmod(0o777)
    yield root
    shutil.rmtree(root)


def _home(place: Path) -> tuple[Path, dict[str, str]]:
    home = place / "home"
    build = home / "jobs" / "a" / "builds" / "1"
    build.mkdir(parents=True)
    (build / "log").write_text("readable\n")
    for name in ("secret-1", "secret-2"):
        (build / name).write_text("nobody may read this\n")
        (build / name).chmod(0)
    for d in (home, home / "jobs", home / "jobs" / "a", home / "jobs" / "a" / "builds", build):
        d.chmod(0o755)
    return home, {"JENKINS_HOME": str(home), "BACKUP_REPOSITORY": str(place / "repo")}


def test_unreadable_files_are_recorded_and_listed(place: Path) -> None:
    _, env = _home(place)
    settings = settings_mod.load(environ=env)
    with _unprivileged():
        result = backup(settings, 1)
        code, out = _cli(env, "list", "--json")
    assert result.unreadable.count == 2
    assert sorted(result.unreadable.paths) == [
        "jobs/a/builds/1/secret-1",
        "jobs/a/builds/1/secret-2",
    ]
    assert code == 0
    (row,) = json.loads(out)
    assert row["warnings"] == {"count": 2, "paths": list(result.unreadable.paths)}


def test_strict_backup_is_committed_then_fails_with_exit_3(place: Path) -> None:
    _, env = _home(place)
    settings = settings_mod.load(environ={**env, "BACKUP_STRICT": "true"})
    with _unprivileged():
        with pytest.raises(PartialBackup) as caught:
            backup(settings, 1)
        assert [r.number for r in list_backups(settings)] == [1], "committed all the same"
        code, out = _cli(env, "backup", "2", "--strict", "-q", "--json")
        code_plain, _, printed = run_main(env, "backup", "3")
    assert "2 unreadable" in str(caught.value)
    assert code == 3
    report = json.loads(out)  # committed: its report is printed before the exit 3
    assert report["number"] == 2 and report["warnings"]["count"] == 2
    assert code_plain == 0, "without strictness a partial backup still succeeds"
    assert "lacks 2 unreadable entries" in printed and "jobs/a/builds/1/secret-1" in printed


def test_complete_snapshot_has_no_warnings(place: Path) -> None:
    home, env = _home(place)
    for name in ("secret-1", "secret-2"):
        (home / "jobs" / "a" / "builds" / "1" / name).unlink()
    settings = settings_mod.load(environ=env)
    with _unprivileged():
        result = backup(settings, 1)
        _, out = _cli(env, "list", "--json")
    assert result.unreadable.count == 0
    assert json.loads(out)[0]["warnings"] == {"count": 0, "paths": []}


def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    code, out, _ = run_main(env, *args)
    return code, out
