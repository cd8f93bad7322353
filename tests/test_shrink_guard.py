"""The shrink guard: a backup whose scope lost more than half of the newest backup's files or
bytes is refused (exit 1, one line naming BACKUP_ALLOW_SHRINK) unless allowed; small homes,
below the floor, are never blocked."""

from __future__ import annotations

from pathlib import Path

import pytest

from inprocess import run_main
from jenkins_backup import settings as settings_mod
from jenkins_backup.errors import ShrinkRefused
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.listing import list_backups
from jenkins_backup.operations.shrink import FLOOR_BYTES, FLOOR_FILES


def _builds(home: Path, n: int) -> list[Path]:
    out = []
    for i in range(n):
        d = home / "jobs" / "a" / "builds" / str(i)
        d.mkdir(parents=True, exist_ok=True)
        (d / "build.xml").write_text(f"<build>{i}</build>\n")
        out.append(d / "build.xml")
    return out


def _env(tmp_path: Path, home: Path, **extra: str) -> dict[str, str]:
    return {"JENKINS_HOME": str(home), "BACKUP_REPOSITORY": str(tmp_path / "repo"), **extra}


def test_losing_most_files_is_refused_unless_allowed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    files = _builds(home, 2 * FLOOR_FILES)
    env = _env(tmp_path, home)
    backup(settings_mod.load(environ=env), 1)
    for f in files[: FLOOR_FILES + 1]:  # just over half gone
        f.unlink()
    with pytest.raises(ShrinkRefused):
        backup(settings_mod.load(environ=env), 2)
    code, out, err = run_main(env, "backup", "2", "-q")
    assert code == 1 and out == ""
    assert "BACKUP_ALLOW_SHRINK" in err.strip().splitlines()[-1]
    assert [b.number for b in list_backups(settings_mod.load(environ=env))] == [1]
    assert run_main(env, "backup", "2", "-q", "--allow-shrink")[0] == 0
    backup(settings_mod.load(environ={**env, "BACKUP_ALLOW_SHRINK": "true"}), 3)
    assert [b.number for b in list_backups(settings_mod.load(environ=env))] == [1, 2, 3]


def test_an_empty_scope_after_a_full_one_is_refused(tmp_path: Path) -> None:
    """What a failed restore followed by an empty Jenkins looks like."""
    home = tmp_path / "home"
    _builds(home, FLOOR_FILES)
    env = _env(tmp_path, home)
    backup(settings_mod.load(environ=env), 1)
    (home / "jobs").rename(tmp_path / "elsewhere")
    (home / "jobs").mkdir()
    with pytest.raises(ShrinkRefused):
        backup(settings_mod.load(environ=env), 2)


def test_losing_most_bytes_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _builds(home, 10)
    big = home / "jobs" / "a" / "builds" / "0" / "archive.bin"
    big.write_bytes(b"x" * FLOOR_BYTES)
    env = _env(tmp_path, home)
    backup(settings_mod.load(environ=env), 1)
    big.write_bytes(b"x" * (FLOOR_BYTES // 2 - 1000))
    with pytest.raises(ShrinkRefused):
        backup(settings_mod.load(environ=env), 2)


def test_small_homes_are_not_blocked(tmp_path: Path) -> None:
    home = tmp_path / "home"
    files = _builds(home, FLOOR_FILES - 1)
    env = _env(tmp_path, home)
    backup(settings_mod.load(environ=env), 1)
    for f in files:
        f.unlink()
    backup(settings_mod.load(environ=env), 2)  # below the floor: no guard
    assert [b.files for b in list_backups(settings_mod.load(environ=env))] == [FLOOR_FILES - 1, 0]
