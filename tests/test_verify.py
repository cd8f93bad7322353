"""verify finds missing and damaged objects; latest skips a backup that fails the quick check.

Each test runs on a local directory and on S3; the damage is done with a client of its own.
In process, through the operations layer.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from helpers import a_job
from jenkins_backup.errors import SnapshotNotFound
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.latest import latest
from jenkins_backup.operations.verify import verify
from jenkins_backup.repository.layout import pack_id_from_key, pack_key
from jenkins_backup.repository.pack import DATA
from jenkins_backup.repository.repo import Repository, read_pack_header
from jenkins_backup.settings import load
from jenkins_backup.storage.factory import open_storage
from repo_backends import RawStore


def _two_backups(home: Path, env: dict[str, str]) -> tuple[RawStore, bytes, bytes]:
    """Backups 1 and 2; returns the store and the data and tree packs only 2 uses."""
    settings = load(environ=env)
    backup(settings, 1)
    store = RawStore(env)
    before = set(store.sizes("data/"))
    (a_job(home) / "builds" / "new.bin").write_bytes(os.urandom(300_000))
    backup(settings, 2)
    new = {k: n for k, n in store.sizes("data/").items() if k not in before}
    repo = Repository.open(open_storage(env["BACKUP_REPOSITORY"], env))
    types: dict[bytes, set[int]] = {}
    for key, size in new.items():
        pack = pack_id_from_key(key)
        assert pack is not None, key
        types[pack] = {e.type for e in read_pack_header(repo, pack, size)}
    data = next(p for p, t in types.items() if DATA in t)
    tree = next(p for p, t in types.items() if DATA not in t)
    return store, data, tree


def test_verify_passes_on_a_sound_repository(home: Path, repo_env: dict[str, str]) -> None:
    env = repo_env
    _two_backups(home, env)
    settings = load(environ=env)
    result = verify(settings)
    assert result.checked == [1, 2] and result.problems == []
    assert verify(settings, 2, quick=True).problems == []
    with pytest.raises(SnapshotNotFound):
        verify(settings, 7)


def test_missing_pack_is_reported_and_skipped_by_latest(
    home: Path, repo_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    env = repo_env
    store, data, _ = _two_backups(home, env)
    settings = load(environ=env)
    store.delete(pack_key(data))
    result = verify(settings, quick=True)
    assert f"backup 2: pack {data.hex()[:16]} is missing" in result.problems
    assert result.damaged == [2]
    assert verify(settings, 1).problems == []
    with caplog.at_level(logging.WARNING):
        assert latest(settings) == 1
    assert "skipping damaged backup 2" in caplog.text


def test_damaged_data_is_found_by_full_verify(home: Path, repo_env: dict[str, str]) -> None:
    env = repo_env
    store, data, _ = _two_backups(home, env)
    settings = load(environ=env)
    store.flip(pack_key(data), 100)
    assert verify(settings, quick=True).problems == [], "quick checks existence only"
    result = verify(settings)
    problems = "\n".join(result.problems)
    assert f"pack {data.hex()[:16]} is damaged: 1 needed blob(s) fail" in problems
    assert result.damaged == [2]


def test_damaged_tree_is_skipped_by_latest(
    home: Path, repo_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    env = repo_env
    store, _, tree = _two_backups(home, env)
    settings = load(environ=env)
    store.flip(pack_key(tree), 10)
    with caplog.at_level(logging.WARNING):
        assert latest(settings) == 1
    assert "skipping damaged backup 2" in caplog.text
    result = verify(settings, quick=True)
    assert result.damaged == [2] and any("backup 2: directory" in p for p in result.problems)
