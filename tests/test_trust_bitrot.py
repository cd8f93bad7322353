"""Bit rot: a damaged pack costs only the files whose data it holds.

Restore writes every readable file, never wrong bytes, names the damaged paths and exits 1;
repeated, it writes nothing new and fails with the same line. Verify names the damaged paths,
and its quick mode says what it did not check.
"""

from __future__ import annotations

import filecmp
import logging
from pathlib import Path

import pytest

from jenkins_backup.errors import CorruptObject
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.restore import restore
from jenkins_backup.operations.verify import verify
from jenkins_backup.settings import load
from repo_backends import RawStore


def _rot_one_data_pack(env: dict[str, str]) -> None:
    """Flip a byte inside the first blob of the biggest pack (a data pack)."""
    raw = RawStore(env)
    sizes = raw.sizes("data/")
    biggest = max(sizes, key=lambda k: sizes[k])
    raw.flip(biggest, 20)


def _state(root: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_restore_writes_every_readable_file_and_names_the_damaged(
    repo_env: dict[str, str], home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backup(load(environ=repo_env), 1)
    _rot_one_data_pack(repo_env)
    target = tmp_path / "restored"
    settings = load(environ={**repo_env, "JENKINS_HOME": str(target)})
    with caplog.at_level(logging.WARNING), pytest.raises(CorruptObject) as first:
        restore(settings, 1)
    line = str(first.value)
    assert line.startswith("backup 1 is damaged: ")
    count = int(line.split(": ", 1)[1].split(" ", 1)[0])
    assert count >= 1 and len(line) < 300

    in_scope = [p for p in home.rglob("*") if p.is_file() and not p.is_symlink()]
    written = {p.relative_to(target) for p in target.rglob("*") if p.is_file()}
    missing = [p for p in in_scope if p.relative_to(home) not in written]
    for rel in written:  # never a wrong byte
        assert filecmp.cmp(target / rel, home / rel, shallow=False), rel
    named = [r.getMessage() for r in caplog.records if "not restored" in r.getMessage()]
    assert len(named) == count
    for message in named:
        path = message.rsplit(": ", 1)[1]
        assert not (target / path).exists(), path
        assert (home / path).is_file(), path
    assert written, "every readable file is written"
    assert len(missing) >= count

    before = _state(target)
    with pytest.raises(CorruptObject) as second:
        restore(settings, 1)
    assert str(second.value) == line
    assert _state(target) == before  # nothing new written, nothing rewritten


def test_verify_names_damaged_paths_and_quick_says_what_it_skipped(
    repo_env: dict[str, str], home: Path
) -> None:
    settings = load(environ=repo_env)
    backup(settings, 1)
    quick = verify(settings, quick=True)
    assert quick.problems == []
    assert "not read back" in quick.not_checked and "without --quick" in quick.not_checked
    _rot_one_data_pack(repo_env)
    full = verify(settings)
    assert full.damaged == [1]
    assert full.damaged_paths
    for entry in full.damaged_paths:
        number, path = entry.split(": ", 1)
        assert number == "1" and (home / path).is_file()
    assert any(p.endswith("is damaged") and "backup 1: " in p for p in full.problems)
    assert full.not_checked == ""
