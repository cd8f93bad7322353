"""Scope roots that are links to directories elsewhere (``JENKINS_HOME/jobs`` on another volume,
or the home itself): followed by the backup, restored as a directory into an empty home or
through the same link; other links stay links."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jenkins_backup import settings as settings_mod
from jenkins_backup.errors import ShrinkRefused
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.restore import restore
from jenkins_backup.operations.shrink import FLOOR_FILES


def _jobs(root: Path, builds: int = 3) -> None:
    for i in range(builds):
        d = root / "a" / "builds" / str(i)
        d.mkdir(parents=True)
        (d / "build.xml").write_text(f"<build>{i}</build>\n")
    (root / "a" / "lastStable").symlink_to("builds/2")


def _settings(home: Path, repo: Path) -> settings_mod.Settings:
    return settings_mod.load(environ={"JENKINS_HOME": str(home), "BACKUP_REPOSITORY": str(repo)})


def test_linked_jobs_is_backed_up_and_restored_as_a_directory(tmp_path: Path) -> None:
    volume = tmp_path / "volume" / "jobs"
    _jobs(volume)
    other = tmp_path / "other-job"
    other.mkdir()
    (other / "config.xml").write_text("<project/>\n")
    (volume / "linked-job").symlink_to(other)  # a link below the root: stays a link
    real_home = tmp_path / "real-home"  # the home itself is a link too
    real_home.mkdir()
    (real_home / "jobs").symlink_to(volume)
    home = tmp_path / "home"
    home.symlink_to(real_home)
    repo = tmp_path / "repo"
    result = backup(_settings(home, repo), 1)
    assert result.snapshot.stats.files == 3
    target = tmp_path / "restored"
    restore(_settings(target, repo), 1)
    assert (target / "jobs").is_dir() and not (target / "jobs").is_symlink()
    assert (
        target / "jobs" / "a" / "builds" / "2" / "build.xml"
    ).read_text() == "<build>2</build>\n"
    assert os.readlink(target / "jobs" / "a" / "lastStable") == "builds/2"
    assert os.readlink(target / "jobs" / "linked-job") == str(other)


def test_restore_writes_through_the_same_link(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _jobs(home / "jobs")
    repo = tmp_path / "repo"
    backup(_settings(home, repo), 1)
    real_target, volume = tmp_path / "new-home", tmp_path / "new-volume"
    real_target.mkdir()
    volume.mkdir()
    (real_target / "jobs").symlink_to(volume)
    target = tmp_path / "home-link"  # the home itself is a link too
    target.symlink_to(real_target)
    restore(_settings(target, repo), 1)
    assert (real_target / "jobs").is_symlink(), "the link is kept"
    assert (volume / "a" / "builds" / "0" / "build.xml").read_text() == "<build>0</build>\n"


def test_a_dangling_jobs_link_is_caught_by_the_shrink_guard(tmp_path: Path) -> None:
    """The volume did not mount: the link points nowhere and the scope is empty."""
    home = tmp_path / "home"
    volume = tmp_path / "volume"
    _jobs(volume, builds=FLOOR_FILES)
    home.mkdir()
    (home / "jobs").symlink_to(volume)
    repo = tmp_path / "repo"
    backup(_settings(home, repo), 1)
    volume.rename(tmp_path / "unmounted")
    with pytest.raises(ShrinkRefused):
        backup(_settings(home, repo), 2)
