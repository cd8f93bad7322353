"""verify finds missing and damaged objects; latest skips a backup that fails the quick check."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import a_job, run_cli
from jenkins_backup.repository.pack import pack_key
from jenkins_backup.repository.repo import Repository
from jenkins_backup.storage.local import LocalStorage


def _two_backups(home: Path, env: dict[str, str]) -> tuple[Path, bytes, bytes]:
    """Backups 1 and 2; returns the repository and the data and tree packs only 2 uses."""
    run_cli("backup", "1", env=env, check=True)
    repo_path = Path(env["BACKUP_REPOSITORY"])
    before = {p.name for p in (repo_path / "data").rglob("*") if p.is_file()}
    (a_job(home) / "builds" / "new.bin").write_bytes(os.urandom(300_000))
    run_cli("backup", "2", env=env, check=True)
    repo = Repository.open(LocalStorage(str(repo_path)))
    new = [bytes.fromhex(p.name) for p in (repo_path / "data").rglob("*") if p.is_file()]
    new = [p for p in new if p.hex() not in before]
    index = repo.index()
    data = next(p for p in new if any(loc.pack == p and loc.type == 0 for _, loc in index.items()))
    tree = next(p for p in new if p != data)
    return repo_path, data, tree


def _path(repo_path: Path, pack: bytes) -> Path:
    return repo_path / pack_key(pack)


def test_verify_passes_on_a_sound_repository(home: Path, env: dict[str, str]) -> None:
    _two_backups(home, env)
    out = run_cli("verify", env=env, check=True).stdout
    assert "verified 2 backup(s) (full)" in out
    run_cli("verify", "2", "--quick", env=env, check=True)
    assert run_cli("verify", "7", env=env).returncode == 1


def test_missing_pack_is_reported_and_skipped_by_latest(home: Path, env: dict[str, str]) -> None:
    repo_path, data, _ = _two_backups(home, env)
    _path(repo_path, data).unlink()
    proc = run_cli("verify", "--quick", env=env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert f"backup 2: pack {data.hex()[:16]} is missing" in lines
    assert "damaged backups: 2" in lines[-1]
    assert run_cli("verify", "1", env=env).returncode == 0
    latest = run_cli("latest", env=env, check=True)
    assert latest.stdout == "1\n"
    assert "skipping damaged backup 2" in latest.stderr


def test_damaged_data_is_found_by_full_verify(home: Path, env: dict[str, str]) -> None:
    repo_path, data, _ = _two_backups(home, env)
    path = _path(repo_path, data)
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert run_cli("verify", "--quick", env=env).returncode == 0, "quick checks existence only"
    proc = run_cli("verify", env=env)
    assert proc.returncode == 1
    assert f"pack {data.hex()[:16]} is damaged: 1 needed blob(s) fail" in proc.stderr
    assert "damaged backups: 2" in proc.stderr.splitlines()[-1]


def test_damaged_tree_is_skipped_by_latest(home: Path, env: dict[str, str]) -> None:
    repo_path, _, tree = _two_backups(home, env)
    path = _path(repo_path, tree)
    raw = bytearray(path.read_bytes())
    raw[10] ^= 0xFF
    path.write_bytes(bytes(raw))
    latest = run_cli("latest", env=env, check=True)
    assert latest.stdout == "1\n" and "skipping damaged backup 2" in latest.stderr
    proc = run_cli("verify", "--quick", env=env)
    assert proc.returncode == 1 and "backup 2: directory" in proc.stderr
