"""A backup reuses leftover packs only when they are young by the store's clock.

Prune may delete a pack that no index lists once it is older than the grace G; a backup adopts
such a leftover only when it is younger than G/2. If that age came from the writer's clock
alone, a pod whose clock runs hours behind would adopt a pack that prune is about to delete,
and commit a backup whose data is gone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from faketime import needs_faketime, run_skewed
from helpers import backup_of_a_home_at_rest, describe
from inprocess import run_cli
from jenkins_backup.repository.repo import Repository
from jenkins_backup.storage.local import LocalStorage

pytestmark = needs_faketime
GRACE = 6 * 3600


def _packs(repo_dir: Path) -> set[str]:
    return {p.name for p in (repo_dir / "data").rglob("*") if p.is_file()}


def _indexed(repo_dir: Path) -> set[str]:
    repo = Repository.open(LocalStorage(str(repo_dir)))
    return {p.hex() for p in repo.index().packs()}


def _orphan_everything(repo_dir: Path, age: float) -> set[str]:
    """Drop the index files and snapshots, leaving the packs unlisted and ``age`` seconds old."""
    for folder in ("index", "snapshots"):
        for f in (repo_dir / folder).iterdir():
            f.unlink()
    then = time.time() - age
    packs = set()
    for f in (repo_dir / "data").rglob("*"):
        if f.is_file():
            os.utime(f, (then, then))
            packs.add(f.name)
    return packs


def test_a_slow_clock_does_not_adopt_packs_prune_may_delete(
    env: dict[str, str], home: Path, tmp_path: Path
) -> None:
    env = {**env, "BACKUP_PRUNE_GRACE": str(GRACE)}
    repo_dir = Path(env["BACKUP_REPOSITORY"])
    run_cli("backup", "1", env=env, check=True)
    # Older than G/2 by the store's clock (0.7 G), younger than G/2 by a clock 2 h behind.
    old = _orphan_everything(repo_dir, 0.7 * GRACE)
    slow = run_skewed("-2h", ["backup", "2"], env)
    assert slow.returncode == 0, slow.stderr
    assert not old & _indexed(repo_dir), "the backup reused packs prune may delete"
    assert _packs(repo_dir) - old, "the backup stored its data anew"
    target = tmp_path / "restored"
    run_cli("restore", "2", env={**env, "JENKINS_HOME": str(target)}, check=True)
    # Restore of what the backup holds: deleting the old packs cannot touch it.
    for pack in old:
        (repo_dir / "data" / pack[:2] / pack).unlink()
    again = tmp_path / "again"
    run_cli("restore", "2", env={**env, "JENKINS_HOME": str(again)}, check=True)
    assert describe(again) == describe(target)


def test_young_leftovers_are_still_adopted(env: dict[str, str], home: Path) -> None:
    env = {**env, "BACKUP_PRUNE_GRACE": str(GRACE)}
    repo_dir = Path(env["BACKUP_REPOSITORY"])
    backup_of_a_home_at_rest(env)
    young = _orphan_everything(repo_dir, 0.1 * GRACE)
    run_cli("backup", "2", env=env, check=True)
    assert young <= _indexed(repo_dir)
    assert _packs(repo_dir) - young == set()
