"""verify finds missing and damaged objects; latest skips a backup that fails the quick check.

Each test runs on a local directory and on S3; the damage is done with a client of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

from helpers import a_job, run_cli
from jenkins_backup.repository.layout import pack_id_from_key, pack_key
from jenkins_backup.repository.pack import DATA
from jenkins_backup.repository.repo import Repository, read_pack_header
from jenkins_backup.storage.factory import open_storage
from repo_backends import RawStore


def _two_backups(home: Path, env: dict[str, str]) -> tuple[RawStore, bytes, bytes]:
    """Backups 1 and 2; returns the store and the data and tree packs only 2 uses."""
    run_cli("backup", "1", env=env, check=True)
    store = RawStore(env)
    before = set(store.sizes("data/"))
    (a_job(home) / "builds" / "new.bin").write_bytes(os.urandom(300_000))
    run_cli("backup", "2", env=env, check=True)
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
    out = run_cli("verify", env=env, check=True).stdout
    assert "verified 2 backup(s) (full)" in out
    run_cli("verify", "2", "--quick", env=env, check=True)
    assert run_cli("verify", "7", env=env).returncode == 1


def test_missing_pack_is_reported_and_skipped_by_latest(
    home: Path, repo_env: dict[str, str]
) -> None:
    env = repo_env
    store, data, _ = _two_backups(home, env)
    store.delete(pack_key(data))
    proc = run_cli("verify", "--quick", env=env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert f"backup 2: pack {data.hex()[:16]} is missing" in lines
    assert "damaged backups: 2" in lines[-1]
    assert run_cli("verify", "1", env=env).returncode == 0
    latest = run_cli("latest", env=env, check=True)
    assert latest.stdout == "1\n"
    assert "skipping damaged backup 2" in latest.stderr


def test_damaged_data_is_found_by_full_verify(home: Path, repo_env: dict[str, str]) -> None:
    env = repo_env
    store, data, _ = _two_backups(home, env)
    store.flip(pack_key(data), 100)
    assert run_cli("verify", "--quick", env=env).returncode == 0, "quick checks existence only"
    proc = run_cli("verify", env=env)
    assert proc.returncode == 1
    assert f"pack {data.hex()[:16]} is damaged: 1 needed blob(s) fail" in proc.stderr
    assert "damaged backups: 2" in proc.stderr.splitlines()[-1]


def test_damaged_tree_is_skipped_by_latest(home: Path, repo_env: dict[str, str]) -> None:
    env = repo_env
    store, _, tree = _two_backups(home, env)
    store.flip(pack_key(tree), 10)
    latest = run_cli("latest", env=env, check=True)
    assert latest.stdout == "1\n" and "skipping damaged backup 2" in latest.stderr
    proc = run_cli("verify", "--quick", env=env)
    assert proc.returncode == 1 and "backup 2: directory" in proc.stderr
