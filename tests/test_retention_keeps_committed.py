"""Retention after a backup never forgets the backup just committed, whatever the clocks."""

from __future__ import annotations

import json
from pathlib import Path

from faketime import needs_faketime, run_skewed
from helpers import a_job
from inprocess import run_cli


@needs_faketime
def test_keep_last_one_keeps_the_backup_just_committed(
    repo_env: dict[str, str], home: Path
) -> None:
    # A backup committed under a clock ten minutes fast (S3 refuses a larger skew), then one
    # under the right clock with a policy keeping one backup: by the writers' clocks the older
    # commit is the newest.
    fast = run_skewed("+10m", ["backup", "1"], repo_env)
    assert fast.returncode == 0, fast.stderr
    (a_job(home) / "new.txt").write_text("new\n")
    run_cli("backup", "2", env={**repo_env, "BACKUP_KEEP_LAST": "1"}, check=True)
    listed = json.loads(run_cli("list", "--json", env=repo_env, check=True).stdout)
    assert [b["number"] for b in listed] == [2]
    assert run_cli("latest", env=repo_env, check=True).stdout.strip() == "2"
