"""Index files are caches: a damaged, truncated or deleted one costs no backup.

Readers skip it with a warning and find the blobs from the packs' own headers; the next backup
and prune go on and write a repaired index; `repair` rebuilds it on demand.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.common import open_repository
from jenkins_backup.operations.latest import latest
from jenkins_backup.operations.prune import prune
from jenkins_backup.operations.repair import repair
from jenkins_backup.operations.restore import restore
from jenkins_backup.settings import load
from repo_backends import RawStore

DAMAGE = ["flip", "truncate", "delete"]


def _damage_every_index_file(raw: RawStore, how: str) -> None:
    keys = list(raw.sizes("index/"))
    assert keys
    for key in keys:
        if how == "flip":
            raw.flip(key, len(raw.get(key)) // 2)
        elif how == "truncate":
            raw.put(key, raw.get(key)[:-40])
        else:
            raw.delete(key)


def _assert_restores(env: dict[str, str], home: Path, target: Path) -> None:
    result = restore(load(environ={**env, "JENKINS_HOME": str(target)}), None)
    assert result.stats is not None and result.stats.files_written > 0
    restored = [p for p in target.rglob("*") if p.is_file() and not p.is_symlink()]
    assert len(restored) == result.stats.files
    for p in restored:
        assert filecmp.cmp(p, home / p.relative_to(target), shallow=False), p


def _index_is_whole(env: dict[str, str]) -> bool:
    repo = open_repository(load(environ=env))
    assert repo is not None
    repo.index()
    return not repo.damaged_index_files and len(repo.unindexed()) == 0


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_index_costs_no_backup(
    repo_env: dict[str, str], home: Path, tmp_path: Path, how: str
) -> None:
    settings = load(environ=repo_env)
    backup(settings, 1)
    raw = RawStore(repo_env)
    _damage_every_index_file(raw, how)

    assert latest(settings) == 1
    _assert_restores(repo_env, home, tmp_path / "first")

    (home / "jobs" / "new-job").mkdir(parents=True)
    (home / "jobs" / "new-job" / "config.xml").write_text("<project/>\n")
    backup(settings, 2)
    assert latest(settings) == 2
    assert _index_is_whole(repo_env)
    _assert_restores(repo_env, home, tmp_path / "second")


@pytest.mark.parametrize("how", DAMAGE)
def test_prune_goes_on_and_repairs(
    repo_env: dict[str, str], home: Path, tmp_path: Path, how: str
) -> None:
    settings = load(environ=repo_env)
    backup(settings, 1)
    _damage_every_index_file(RawStore(repo_env), how)
    result = prune(settings)
    assert result.gc.blocked == ""
    assert result.gc.packs_deleted == 0
    assert _index_is_whole(repo_env)
    _assert_restores(repo_env, home, tmp_path / "restored")


@pytest.mark.parametrize("how", DAMAGE)
def test_repair_rebuilds_the_index(
    repo_env: dict[str, str], home: Path, tmp_path: Path, how: str
) -> None:
    settings = load(environ=repo_env)
    backup(settings, 1)
    _damage_every_index_file(RawStore(repo_env), how)
    assert not _index_is_whole(repo_env)
    stats = repair(settings)
    assert stats.packs_indexed > 0
    assert stats.damaged_files == (0 if how == "delete" else 1)
    assert _index_is_whole(repo_env)
    assert repair(settings).packs_indexed == 0  # a second run finds nothing to do
    _assert_restores(repo_env, home, tmp_path / "restored")
