"""A local repository never reaches outside itself through a symlink planted inside it.

Each test plants a link (``data``, ``tmp``, ``snapshots``, an object) to a directory outside
the repository that holds files, runs the operations in process, and checks that they fail
with a clear error naming the link, and that nothing outside was read, written or deleted.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from helpers import describe
from jenkins_backup.errors import StorageError
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.latest import latest
from jenkins_backup.operations.prune import prune
from jenkins_backup.operations.restore import restore
from jenkins_backup.operations.verify import verify
from jenkins_backup.settings import load
from jenkins_backup.storage.local import LocalStorage

HEX = "0123456789abcdef" * 2


def _move_out(repo: Path, folder: str, outside: Path) -> Path:
    """Move ``repo/folder`` to ``outside`` and leave a symlink to it in its place."""
    target = outside / folder
    shutil.move(repo / folder, target)
    (repo / folder).symlink_to(target)
    return target


def _refused(excinfo: pytest.ExceptionInfo[StorageError], name: str) -> None:
    message = str(excinfo.value)
    assert "refusing to follow the symlink" in message and name in message, message


def test_a_symlinked_data_folder_is_never_followed(
    tmp_path: Path, env: dict[str, str], home: Path
) -> None:
    settings = load(environ=env)
    backup(settings, 1)
    repo, outside = Path(env["BACKUP_REPOSITORY"]), tmp_path / "outside"
    outside.mkdir()
    _move_out(repo, "data", outside)
    before = describe(outside)
    assert before, "the outside folder holds the packs"

    target = tmp_path / "restored"
    with pytest.raises(StorageError) as excinfo:
        restore(load(environ={**env, "JENKINS_HOME": str(target)}), 1)
    _refused(excinfo, "data")
    assert not target.exists() or not any(target.iterdir()), "nothing restored from outside"

    with pytest.raises(StorageError) as excinfo:
        verify(settings, 1)
    _refused(excinfo, "data")

    (home / "jobs" / "new-job").mkdir()
    (home / "jobs" / "new-job" / "config.xml").write_text("<project/>")
    with pytest.raises(StorageError) as excinfo:
        backup(settings, 2)
    _refused(excinfo, "data")

    with pytest.raises(StorageError) as excinfo:
        later = time.time_ns() + 10**15  # every grace period is over by then
        prune(load(environ={**env, "BACKUP_KEEP_LAST": "1"}), now_ns=later)
    _refused(excinfo, "data")
    assert describe(outside) == before, "nothing outside was written or deleted"


def test_a_symlinked_tmp_folder_is_never_written_through(
    tmp_path: Path, env: dict[str, str]
) -> None:
    repo, outside = Path(env["BACKUP_REPOSITORY"]), tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    (outside / "keep.txt").write_text("not the repository's")
    (repo / "tmp").symlink_to(outside)
    with pytest.raises(StorageError) as excinfo:
        backup(load(environ=env), 1)
    _refused(excinfo, "tmp")
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]
    assert (outside / "keep.txt").read_text() == "not the repository's"


def test_symlinked_snapshots_are_neither_read_nor_written(
    tmp_path: Path, env: dict[str, str], home: Path
) -> None:
    settings = load(environ=env)
    backup(settings, 1)
    repo, outside = Path(env["BACKUP_REPOSITORY"]), tmp_path / "outside"
    outside.mkdir()
    _move_out(repo, "snapshots", outside)
    before = describe(outside)
    # Followed, the outside snapshot would name a latest the repository does not hold.
    with pytest.raises(StorageError) as excinfo:
        latest(settings)
    _refused(excinfo, "snapshots")
    (home / "jobs" / "another").mkdir()
    with pytest.raises(StorageError):
        backup(settings, 2)
    assert describe(outside) == before


def test_a_symlinked_object_is_not_read(tmp_path: Path, env: dict[str, str]) -> None:
    settings = load(environ=env)
    backup(settings, 1)
    repo, outside = Path(env["BACKUP_REPOSITORY"]), tmp_path / "outside"
    outside.mkdir()
    _move_out(repo, "config", outside)
    with pytest.raises(StorageError) as excinfo:
        latest(settings)
    _refused(excinfo, "config")
    store = LocalStorage(str(repo))
    with pytest.raises(StorageError):
        store.stat("config")
    store.delete("config")  # removes the link itself, never what it points to
    assert (outside / "config").is_file() and not (repo / "config").is_symlink()


def _old(path: Path) -> None:
    os.utime(path, (1_000_000, 1_000_000), follow_symlinks=False)


def test_the_sweep_removes_only_its_own_temporary_names(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    tmp = repo / "tmp"
    tmp.mkdir(parents=True)
    ours = tmp / f"otherhost.5.{HEX}"
    fresh = tmp / f"otherhost.6.{HEX}"
    foreign = [tmp / "notes.1.txt", tmp / "a.2.b.c", tmp / f"otherhost.7.{HEX}x"]
    for path in [ours, fresh, *foreign]:
        path.write_text("x")
    folder = tmp / f"otherhost.8.{HEX}"
    folder.mkdir()
    outside_file = tmp_path / "outside.txt"
    outside_file.write_text("outside")
    link = tmp / f"otherhost.9.{HEX}"
    link.symlink_to(outside_file)
    for path in [ours, *foreign, folder, link, outside_file]:
        _old(path)

    assert LocalStorage(str(repo)).sweep(3600) == 1
    assert not ours.exists()
    assert all(p.exists() for p in [fresh, *foreign, folder, outside_file])
    assert link.is_symlink()


def test_the_sweep_never_follows_a_symlinked_tmp(tmp_path: Path) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    victim = outside / f"otherhost.5.{HEX}"
    victim.write_text("someone else's")
    _old(victim)
    (repo / "tmp").symlink_to(outside)
    assert LocalStorage(str(repo)).sweep(3600) == 0
    assert victim.read_text() == "someone else's"
