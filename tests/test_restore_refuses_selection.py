"""restore refuses --include/--exclude rather than ignoring them and writing everything."""

from __future__ import annotations

from pathlib import Path

from inprocess import run_cli


def test_restore_refuses_path_selection_it_cannot_honour(
    tmp_path: Path, env: dict[str, str]
) -> None:
    run_cli("backup", "1", env=env, check=True)
    target = tmp_path / "target"
    for flag in ("--include", "--exclude"):
        proc = run_cli("restore", "1", flag, "jobs/x", env={**env, "JENKINS_HOME": str(target)})
        assert proc.returncode == 2, proc.stderr
        assert "--include and --exclude are refused" in proc.stderr.splitlines()[-1]
        assert not target.exists()
    # The shared environment's patterns shape the backup and do not block the operator's restore.
    ok = run_cli(
        "restore", "1", env={**env, "JENKINS_HOME": str(target), "BACKUP_EXCLUDE": "*.log"}
    )
    assert ok.returncode == 0, ok.stderr
