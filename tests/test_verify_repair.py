"""`verify --repair` rebuilds a deleted index file from the packs, then verifies (CLI contract)."""

from __future__ import annotations

from pathlib import Path

from inprocess import run_cli


def test_verify_repair_rebuilds_a_deleted_index(env: dict[str, str]) -> None:
    run_cli("backup", "1", env=env, check=True)
    for f in (Path(env["BACKUP_REPOSITORY"]) / "index").iterdir():
        f.unlink()
    proc = run_cli("verify", "--repair", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "pack(s) indexed again" in proc.stderr and "no problems" in proc.stderr
    assert list((Path(env["BACKUP_REPOSITORY"]) / "index").iterdir())
