"""Commit times are monotonic per repository: a writer's fast clock cannot hide later backups."""

from __future__ import annotations

import json
from pathlib import Path

from faketime import needs_faketime, run_skewed
from helpers import a_job
from inprocess import run_cli

pytestmark = needs_faketime


def _listed(env: dict[str, str]) -> dict[int, int]:
    """Backup number -> files, as ``list --json`` shows them."""
    out = run_cli("list", "--json", env=env, check=True).stdout
    return {b["number"]: b["files"] for b in json.loads(out)}


def test_backup_committed_last_is_latest_after_a_fast_clock(
    repo_env: dict[str, str], home: Path
) -> None:
    fast = run_skewed("+10m", ["backup", "1"], repo_env)
    assert fast.returncode == 0, fast.stderr
    (a_job(home) / "after-the-fast-one.txt").write_text("new\n")
    run_cli("backup", "2", env=repo_env, check=True)
    assert run_cli("latest", env=repo_env, check=True).stdout.strip() == "2"


def test_reused_number_resolves_to_the_new_backup_after_a_fast_clock(
    repo_env: dict[str, str], home: Path
) -> None:
    fast = run_skewed("+10m", ["backup", "5"], repo_env)
    assert fast.returncode == 0, fast.stderr
    before = _listed(repo_env)[5]
    (a_job(home) / "a.txt").write_text("a\n")
    (a_job(home) / "b.txt").write_text("b\n")
    run_cli("backup", "5", env=repo_env, check=True)
    assert _listed(repo_env) == {5: before + 2}
    assert run_cli("latest", env=repo_env, check=True).stdout.strip() == "5"
