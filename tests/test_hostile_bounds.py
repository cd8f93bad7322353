"""Hostile repositories cannot hang or exhaust a reader: every bound applies before the work.

More cases for the corpus of tests/test_hostile.py (forged with its Forge): a tree shared a
thousand times at each of three levels (a DAG naming a billion paths from four trees), and an
index file that inflates far beyond its sealed size.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from helpers import clean_env
from jenkins_backup.errors import CorruptObject
from jenkins_backup.operations.latest import latest_result
from jenkins_backup.operations.restore import restore
from jenkins_backup.operations.verify import verify
from jenkins_backup.repository.integrity import check_snapshot
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.snapshot import Snapshot
from jenkins_backup.settings import load
from jenkins_backup.storage.local import LocalStorage
from test_hostile import Forge, d, in_jobs


def _dag_bomb(forge: Forge) -> bytes:
    """4 trees, 3,003 entries stored; a walk that expands them visits a billion entries."""
    tree = forge.tree(forge.file("f"))
    for level in range(3):
        tree = forge.tree(*(d(f"d{level}-{i}", tree) for i in range(1000)))
    return forge.tree(d("jobs", tree))


def _commit(forge: Forge, root: bytes, number: int) -> None:
    forge.writer.flush()
    forge.repo.commit(Snapshot(number, time.time_ns(), root, "jobs", "forge"))


def test_dag_bomb_is_refused_before_it_is_walked(tmp_path: Path) -> None:
    forge = Forge(tmp_path / "repo")
    _commit(forge, in_jobs(forge, forge.file("config.xml", b"<intact/>\n")), 1)
    bomb = _dag_bomb(forge)
    _commit(forge, bomb, 2)
    forge.writer.close()

    repo = Repository.open(LocalStorage(str(tmp_path / "repo")))
    with pytest.raises(CorruptObject, match="more than 500000000 entries"):
        check_snapshot(repo, bomb)

    env = clean_env(BACKUP_REPOSITORY=str(tmp_path / "repo"), JENKINS_HOME=str(tmp_path / "h"))
    settings = load(environ=env)
    found = latest_result(settings)
    assert (found.number, found.skipped) == (1, 1)  # the hostile backup is skipped
    with pytest.raises(CorruptObject, match="more than 500000000 entries"):
        restore(settings, 2)
    assert not (tmp_path / "h" / "jobs").exists()
    result = verify(settings, quick=True)
    assert result.damaged == [2]
    assert any("more than 500000000 entries" in p for p in result.problems)


def test_index_bomb_is_refused_before_it_is_inflated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    forge = Forge(tmp_path / "repo")
    forge.commit(in_jobs(forge, forge.file("config.xml", b"<intact/>\n")))
    bomb = b"\0" * (64 << 20)  # 64 MiB of plaintext sealed in about 2 KiB
    forge.repo.write_index(bomb)
    env = clean_env(BACKUP_REPOSITORY=str(tmp_path / "repo"), JENKINS_HOME=str(tmp_path / "h"))
    with caplog.at_level(logging.WARNING):
        assert restore(load(environ=env), 1).number == 1
    skipped = [r.getMessage() for r in caplog.records if "skipping damaged index" in r.getMessage()]
    assert len(skipped) == 1 and "larger than announced" in skipped[0]
    assert (tmp_path / "h" / "jobs" / "config.xml").read_bytes() == b"<intact/>\n"
