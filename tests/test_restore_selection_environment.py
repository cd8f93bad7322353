"""restore's --include/--exclude select what is restored; BACKUP_INCLUDE/EXCLUDE, shared with
the backup in the operator's environment, keep shaping the scope (what --delete may remove)."""

from __future__ import annotations

from pathlib import Path

from helpers import describe, in_jobs_scope
from inprocess import run_main


def _logs(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*.log") if p.is_file()}


def test_flags_select_and_the_environment_shapes_the_scope(
    tmp_path: Path, env: dict[str, str], home: Path
) -> None:
    code, _, err = run_main(env, "backup", "1")
    assert code == 0, err
    assert _logs(home), "the generated home has .log files"

    # The flag selects: the restore leaves the logs out (before this, it was refused).
    flagged = tmp_path / "flagged"
    code, _, err = run_main(env, "restore", "1", "--exclude", "*.log", "--target", str(flagged))
    assert code == 0, err
    assert flagged.is_dir() and not _logs(flagged)

    # The shared environment's patterns do not select: the operator's restore writes it all.
    whole = tmp_path / "whole"
    shared = {**env, "JENKINS_HOME": str(whole), "BACKUP_EXCLUDE": "*.log"}
    code, _, err = run_main(shared, "restore", "1")
    assert code == 0, err
    assert _logs(whole) == {p for p in _logs(home) if in_jobs_scope(p.as_posix())}

    # ... but they bound --delete: a log the backup lacks is outside the scope, never removed.
    stray = whole / "jobs" / "stray.log"
    stray.write_text("kept\n")
    extra = whole / "jobs" / "stray.txt"
    extra.write_text("removed\n")
    before = describe(whole)
    code, _, err = run_main(shared, "restore", "1", "--delete")
    assert code == 0, err
    assert stray.read_text() == "kept\n" and not extra.exists()
    after = describe(whole)
    assert set(before) - set(after) == {b"jobs/stray.txt"}
