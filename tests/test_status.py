"""status: the newest intact backup and its age, counts, size and policy, as documented JSON."""

from __future__ import annotations

import json
from pathlib import Path

from inprocess import run_cli
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.status import status
from jenkins_backup.settings import load
from repo_backends import RawStore


def test_status_reports_the_newest_intact_backup(repo_env: dict[str, str]) -> None:
    settings = load(environ={**repo_env, "BACKUP_KEEP_LAST": "5"})
    backup(settings, 1)
    backup(settings, 2)
    newest = max(RawStore(repo_env).sizes("snapshots/"))
    RawStore(repo_env).flip(newest, 3)  # backup 2 damaged: 1 is the newest intact
    ns = int(newest.split("/")[1].split("-")[0])
    s = status(settings, now=ns / 1e9 + 60)
    assert (s.backups, s.newest_intact) == (2, 1)
    assert s.newest_age_seconds is not None and s.newest_age_seconds > 60
    assert s.size_bytes == RawStore(repo_env).total() - RawStore(repo_env).total("config")
    assert s.retention["last"] == 5 and s.running == ()


def test_status_json_fields(env: dict[str, str]) -> None:
    assert run_cli("status", env=env).returncode == 10
    run_cli("backup", "1", env=env, check=True)
    doc = json.loads(run_cli("status", "--json", env=env, check=True).stdout)
    assert doc["newest_intact"] == 1 and doc["backups"] == 1
    for name in (
        "location",
        "size_bytes",
        "encrypted",
        "newest_committed_at",
        "newest_age_seconds",
        "last_failure_number",
        "last_failure_at",
        "running",
        "retention",
    ):
        assert name in doc
    assert Path(env["BACKUP_REPOSITORY"]).is_dir()
