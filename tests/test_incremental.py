"""Unchanged files are not read again; unchanged homes cost almost nothing; content dedups."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from helpers import a_job, backup_of_a_home_at_rest
from inprocess import run_cli


def _objects(repo: Path) -> set[str]:
    rels = (p.relative_to(repo) for p in repo.rglob("*") if p.is_file())
    return {str(r) for r in rels if r.parts[0] != "tmp"}


def test_unchanged_home_writes_one_object(home: Path, env: dict[str, str]) -> None:
    repo = Path(env["BACKUP_REPOSITORY"])
    backup_of_a_home_at_rest(env)
    before = _objects(repo)
    proc = run_cli("backup", "2", env={**env, "BACKUP_THREADS": "2"}, check=True)
    added = _objects(repo) - before
    assert len(added) == 1 and next(iter(added)).startswith("snapshots/"), added
    assert "(0 read)" in proc.stderr, "no file is read again"


def test_changed_file_is_the_only_one_read(home: Path, env: dict[str, str]) -> None:
    backup_of_a_home_at_rest(env)
    log = next((a_job(home) / "builds").glob("*/log"))
    with open(log, "a") as f:
        f.write("one more line\n")
    proc = run_cli("backup", "2", env=env, check=True)
    assert "(1 read)" in proc.stderr


def test_identical_content_is_stored_once(tmp_path: Path, home: Path, env: dict[str, str]) -> None:
    blob = os.urandom(3 << 20)
    job = a_job(home)
    for i in range(5):
        (job / "builds" / f"copy-{i}.bin").write_bytes(blob)
    run_cli("backup", "1", env=env, check=True)
    repo = Path(env["BACKUP_REPOSITORY"])
    stored = sum(p.stat().st_size for p in (repo / "data").rglob("*") if p.is_file())
    assert stored < 2 * len(blob), "five copies of 3 MiB of random data cost one copy"


def test_moved_tree_is_not_stored_again(tmp_path: Path, home: Path, env: dict[str, str]) -> None:
    run_cli("backup", "1", env=env, check=True)
    job = a_job(home)
    shutil.move(job, job.parent / (job.name + "-renamed"))
    run_cli("backup", "2", env=env, check=True)
    rows = json.loads(run_cli("list", "--json", env=env, check=True).stdout)
    assert rows[1]["bytes_added"] < rows[0]["bytes_added"] / 10
