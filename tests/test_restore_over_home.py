"""Restore over the home it was backed up from (the operator restores at every pod start): the
files the backup read and that are unchanged since are not read again, and nothing is written;
any file that is not provably that very file is read and hashed, and rewritten if it differs."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from homegen import generate

from jenkins_backup import settings as settings_mod
from jenkins_backup.engine import restorer
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.restore import restore

HOUR_NS = 3600 * 10**9


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the files a restore reads back to hash (the real reader still runs)."""
    calls: list[int] = []
    real = restorer.iter_file_chunks

    def counting(fd: int, params: object) -> Iterator[bytes]:
        calls.append(fd)
        return real(fd, params)  # type: ignore[arg-type]

    monkeypatch.setattr(restorer, "iter_file_chunks", counting)
    yield calls


def _settings(tmp_path: Path, home: Path) -> settings_mod.Settings:
    return settings_mod.load(
        environ={
            "JENKINS_HOME": str(home),
            "BACKUP_REPOSITORY": str(tmp_path / "repo"),
            "BACKUP_RUNTIME_DIR": str(tmp_path / "runtime"),
        }
    )


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    generate(home, size="tiny", seed=3)
    return home


def _ctimes(root: Path) -> dict[str, int]:
    """ctime of every entry: any write, chmod or utime changes it."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root / "jobs"):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            out[path] = os.lstat(path).st_ctime_ns
    return out


def _logs(home: Path) -> list[Path]:
    return sorted((home / "jobs").glob("*/builds/*/log"))


def test_restore_over_the_backed_up_home_reads_and_writes_nothing(
    tmp_path: Path, hashed: list[int]
) -> None:
    home = _home(tmp_path)
    settings = _settings(tmp_path, home)
    backup(settings, 1, now_ns=time.time_ns() + HOUR_NS)  # no file is racily clean
    before = _ctimes(home)
    result = restore(settings, 1)
    assert result.stats is not None
    assert result.stats.files_written == 0
    assert result.stats.files_unchanged == result.stats.files > 0
    assert hashed == [], "the backup's own files are known by their stat"
    assert _ctimes(home) == before, "nothing was written, no mode or time set again"


def test_same_size_and_mtime_but_other_content_is_rewritten(
    tmp_path: Path, hashed: list[int]
) -> None:
    home = _home(tmp_path)
    settings = _settings(tmp_path, home)
    backup(settings, 1, now_ns=time.time_ns() + HOUR_NS)
    log, other = _logs(home)[:2]
    original, original_other = log.read_bytes(), other.read_bytes()
    st, st_other = log.stat(), other.stat()
    # Rewritten in place, same size, mtime put back: only the ctime tells.
    log.write_bytes(bytes(b ^ 1 for b in original))
    os.utime(log, ns=(st.st_atime_ns, st.st_mtime_ns))
    # Replaced by another file (another inode) of the same size and mtime.
    fake = other.with_name("fake")
    fake.write_bytes(b"Y" * len(original_other))
    os.utime(fake, ns=(st_other.st_atime_ns, st_other.st_mtime_ns))
    os.rename(fake, other)
    result = restore(settings, 1)
    assert result.stats is not None
    assert result.stats.files_written == 2
    assert log.read_bytes() == original
    assert other.read_bytes() == original_other
    assert len(hashed) == 2, "only the two files whose stat changed are read"


def test_a_copy_of_the_home_is_hashed_not_trusted(tmp_path: Path, hashed: list[int]) -> None:
    """Same names, sizes and mtimes, other inodes and ctimes: every file is read; the one whose
    content differs is rewritten."""
    home = _home(tmp_path)
    settings = _settings(tmp_path, home)
    backup(settings, 1, now_ns=time.time_ns() + HOUR_NS)
    copy = tmp_path / "copy"
    shutil.copytree(home, copy, symlinks=True, copy_function=shutil.copy2)
    log = copy / _logs(home)[0].relative_to(home)
    original = log.read_bytes()
    mtime = log.stat().st_mtime_ns
    log.write_bytes(b"Z" * len(original))
    os.utime(log, ns=(mtime, mtime))
    result = restore(_settings(tmp_path, copy), 1)
    assert result.stats is not None
    assert result.stats.files_written == 1
    assert log.read_bytes() == original
    assert len(hashed) == result.stats.files


def test_racily_clean_files_are_hashed(tmp_path: Path, hashed: list[int]) -> None:
    """Files stamped within a tick of the backup's start are stored with ctime 0: their stat
    proves nothing, so a restore over them reads them."""
    home = _home(tmp_path)
    settings = _settings(tmp_path, home)
    oldest = min(_ctimes(home).values())
    first = backup(settings, 1, now_ns=oldest)  # every file is racily clean
    result = restore(settings, 1)
    assert result.stats is not None
    assert result.stats.files_written == 0
    assert len(hashed) == first.snapshot.stats.files
