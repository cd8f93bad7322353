"""A home nested deeper than restore accepts: the backup skips the deep part, counted, and what
it commits restores (the walk is iterative: no RecursionError however deep)."""

from __future__ import annotations

import os
from pathlib import Path

from jenkins_backup import settings as settings_mod
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.restore import restore
from jenkins_backup.repository.walk import MAX_DEPTH

DEPTH = 1100  # deeper than the limit, and than Python's default recursion limit


def _chain(top: Path, depth: int) -> Path:
    """Directories top/d/d/.../d (``depth`` of them below ``top``), made one at a time."""
    p = top
    for _ in range(depth):
        p = p / "d"
        p.mkdir()
    return p


def _remove_chain(top: Path, depth: int) -> None:
    """Bottom up, iteratively (shutil.rmtree recurses per level)."""
    paths = [top]
    for _ in range(depth):
        paths.append(paths[-1] / "d")
    for p in reversed(paths[1:]):
        if p.is_dir():
            for child in p.iterdir():
                if not child.is_dir():
                    child.unlink()
            p.rmdir()


def test_deeper_than_restore_accepts_is_skipped_and_the_rest_restores(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "jobs" / "a" / "builds" / "1").mkdir(parents=True)
    (home / "jobs" / "a" / "builds" / "1" / "log").write_text("ok\n")
    deep_top = home / "jobs" / "deep"
    deep_top.mkdir()
    bottom = _chain(deep_top, DEPTH)
    (bottom / "file").write_text("far down\n")
    target = tmp_path / "restored"
    settings = settings_mod.load(
        environ={"JENKINS_HOME": str(home), "BACKUP_REPOSITORY": str(tmp_path / "repo")}
    )
    try:
        result = backup(settings, 1)
        assert result.unreadable.count == 1
        (skipped,) = result.unreadable.paths
        # jobs/deep/d/... : the first directory below the limit is skipped, nothing above it.
        assert skipped == "jobs/deep" + "/d" * (MAX_DEPTH - 1)
        restored = restore(
            settings_mod.load(
                environ={"JENKINS_HOME": str(target), "BACKUP_REPOSITORY": str(tmp_path / "repo")}
            ),
            None,
        )
        assert restored.number == 1
        assert (target / "jobs" / "a" / "builds" / "1" / "log").read_text() == "ok\n"
        deepest = target / "jobs" / "deep" / os.path.join(*["d"] * (MAX_DEPTH - 2))
        assert deepest.is_dir(), "everything down to the limit is restored"
        assert not (deepest / "d").exists(), "the part deeper than the limit is not"
    finally:
        _remove_chain(deep_top, DEPTH)
        if (target / "jobs" / "deep").exists():
            _remove_chain(target / "jobs" / "deep", MAX_DEPTH)
