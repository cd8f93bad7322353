"""Bit rot in a tree pack costs only the directories it hit.

Trees of many directories share a pack. A flipped byte in one tree must not make its
neighbours unreadable (the pack fails its name, but each tree still checks against its own id),
and a restore of the backup writes every directory it can read, names the damaged one, and
exits 1 with the same line when repeated.
"""

from __future__ import annotations

from pathlib import Path

from helpers import describe, in_jobs_scope
from inprocess import run_cli
from jenkins_backup.repository.layout import pack_key
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.tree import DIR
from jenkins_backup.storage.local import LocalStorage


def _rot_one_job_tree(repo_dir: Path) -> str:
    """Flip a byte inside the tree of one job directory; returns that job's name."""
    repo = Repository.open(LocalStorage(str(repo_dir)))
    snap = repo.load_snapshot(repo.snapshot_refs()[-1])
    jobs = next(e for e in repo.read_tree(snap.tree) if e.name == b"jobs")
    job = next(e for e in repo.read_tree(jobs.subtree) if e.kind == DIR)
    loc = repo.find(job.subtree)
    assert loc is not None
    siblings = [e for e in repo.read_tree(jobs.subtree) if e.kind == DIR and e != job]
    assert any(
        (s_loc := repo.find(s.subtree)) is not None and s_loc.pack == loc.pack for s in siblings
    ), "the test needs a job whose tree shares its pack with another"
    path = repo_dir / pack_key(loc.pack)
    data = bytearray(path.read_bytes())
    data[loc.offset + loc.length // 2] ^= 0x55
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    return job.name.decode()


def test_a_rotten_tree_costs_only_its_directory(
    env: dict[str, str], home: Path, tmp_path: Path
) -> None:
    run_cli("backup", "1", env=env, check=True)
    target = tmp_path / "restored"
    run_cli("restore", "1", env={**env, "JENKINS_HOME": str(target)}, check=True)
    whole = describe(target)
    lost = _rot_one_job_tree(Path(env["BACKUP_REPOSITORY"]))

    partial = tmp_path / "partial"
    proc = run_cli("restore", "1", env={**env, "JENKINS_HOME": str(partial)})
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert f"jobs/{lost}/" in last
    prefix = f"jobs/{lost}/".encode()
    expected = {k: v for k, v in whole.items() if not k.startswith(prefix)}
    got = {k: v for k, v in describe(partial).items() if not k.startswith(prefix)}
    # Every other path is restored exactly; the damaged directory's parent's time may differ.
    assert {k: v[:2] + v[3:] for k, v in got.items()} == {
        k: v[:2] + v[3:] for k, v in expected.items()
    }
    assert not [p for p in (partial / "jobs" / lost).rglob("*")], "nothing below it is guessed"

    again = run_cli("restore", "1", env={**env, "JENKINS_HOME": str(partial)})
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1] == last
    # latest never names it: the only backup is damaged, which is an error, not "-1".
    latest = run_cli("latest", env=env)
    assert latest.returncode == 1
    assert latest.stdout.strip() != "-1"


def test_the_next_backup_goes_on_over_a_rotten_parent(
    env: dict[str, str], home: Path, tmp_path: Path
) -> None:
    run_cli("backup", "1", env=env, check=True)
    lost = _rot_one_job_tree(Path(env["BACKUP_REPOSITORY"]))
    # The parent's damaged directory is read anew instead of failing the backup.
    run_cli("backup", "2", env=env, check=True)
    target = tmp_path / "restored"
    run_cli("restore", "2", env={**env, "JENKINS_HOME": str(target)})
    prefix = f"jobs/{lost}/".encode()
    want = {k: v for k, v in describe(home, keep=in_jobs_scope).items() if not k.startswith(prefix)}
    got = {k: v for k, v in describe(target).items() if not k.startswith(prefix)}
    assert {k: v[:2] + v[3:] for k, v in got.items()} == {k: v[:2] + v[3:] for k, v in want.items()}
