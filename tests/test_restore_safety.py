"""Restore is verified, idempotent, leaves foreign files alone, and never escapes the home."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import a_job, describe, in_jobs_scope
from inprocess import run_cli
from jenkins_backup.repository.layout import pack_key
from jenkins_backup.repository.repo import Repository
from jenkins_backup.storage.local import LocalStorage


def _restore(env: dict[str, str], target: Path, number: str = "1") -> None:
    run_cli("restore", number, env={**env, "JENKINS_HOME": str(target)}, check=True)


def test_repeated_restore_rewrites_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    run_cli("backup", "1", env=env, check=True)
    target = tmp_path / "target"
    _restore(env, target)
    inodes = {p: p.stat().st_ino for p in target.rglob("*") if p.is_file()}
    proc = run_cli("restore", "1", env={**env, "JENKINS_HOME": str(target)}, check=True)
    assert "0 files written" in proc.stderr
    assert {p: p.stat().st_ino for p in target.rglob("*") if p.is_file()} == inodes


def test_restore_repairs_changed_files_and_keeps_foreign_ones(
    tmp_path: Path, home: Path, env: dict[str, str]
) -> None:
    run_cli("backup", "1", env=env, check=True)
    target = tmp_path / "target"
    _restore(env, target)
    job = target / a_job(home).relative_to(home)
    log = next((job / "builds").glob("*/log"))
    original = log.read_bytes()
    log.write_bytes(b"X" * len(original))  # same size, different content
    os.chmod(log, 0o600)
    foreign = job / "builds" / "not-in-backup.txt"
    foreign.write_text("mine\n")
    _restore(env, target)
    assert log.read_bytes() == original
    assert foreign.read_text() == "mine\n", "like tar -x, files outside the backup stay"
    expected = {k: v for k, v in describe(home, in_jobs_scope).items() if v[0] != "dir"}
    got = {k: v for k, v in describe(target).items() if v[0] != "dir"}
    del got[os.fsencode(foreign.relative_to(target))]
    assert got == expected


def test_no_temporary_files_are_left(tmp_path: Path, env: dict[str, str]) -> None:
    run_cli("backup", "1", env=env, check=True)
    target = tmp_path / "target"
    _restore(env, target)
    assert not [p for p in target.rglob(".jbtmp-*")]


def test_symlink_in_target_is_never_followed(
    tmp_path: Path, home: Path, env: dict[str, str]
) -> None:
    run_cli("backup", "1", env=env, check=True)
    target = tmp_path / "target"
    outside = tmp_path / "outside"
    outside.mkdir()
    (target / "jobs").mkdir(parents=True)
    job_rel = a_job(home).relative_to(home)
    # An attacker (or a stale mount) put a symlink where the backup has a directory.
    os.symlink(outside, target / job_rel)
    proc = run_cli("restore", "1", env={**env, "JENKINS_HOME": str(target)})
    assert proc.returncode == 1
    assert "symlink" in proc.stderr.strip().splitlines()[-1]
    assert list(outside.iterdir()) == [], "nothing written outside JENKINS_HOME"


def test_jenkins_home_itself_may_be_a_symlink(tmp_path: Path, env: dict[str, str]) -> None:
    """Images often mount the volume elsewhere and link it; the root is the user's choice."""
    run_cli("backup", "1", env=env, check=True)
    real = tmp_path / "volume"
    real.mkdir()
    link = tmp_path / "home-link"
    os.symlink(real, link)
    _restore(env, link)
    assert (real / "jobs").is_dir()


def test_missing_pack_costs_only_the_files_it_held(
    tmp_path: Path, env: dict[str, str], home: Path
) -> None:
    # More data than one pack holds, so that losing one pack leaves files to restore.
    big = a_job(home) / "big.bin"
    big.write_bytes(os.urandom(12 << 20))
    run_cli("backup", "1", env=env, check=True)
    repo = Path(env["BACKUP_REPOSITORY"])
    (repo / _pack_of_last_chunk(repo, big.relative_to(home))).unlink()
    target = tmp_path / "target"
    proc = run_cli("restore", "1", env={**env, "JENKINS_HOME": str(target)})
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert "damaged" in last
    written = [p for p in target.rglob("*") if p.is_file() and not p.is_symlink()]
    assert written, "the files of the other packs are restored"
    assert not (target / big.relative_to(home)).exists()
    for f in written:  # never wrong bytes
        assert f.read_bytes() == (home / f.relative_to(target)).read_bytes()
    again = run_cli("restore", "1", env={**env, "JENKINS_HOME": str(target)})
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1] == last


def test_bit_flip_in_data_is_detected(tmp_path: Path, env: dict[str, str]) -> None:
    run_cli("backup", "1", env=env, check=True)
    repo = Path(env["BACKUP_REPOSITORY"])
    packs = [p for p in (repo / "data").rglob("*") if p.is_file()]
    victim = max(packs, key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 3] ^= 0xFF
    os.chmod(victim, 0o644)
    victim.write_bytes(bytes(data))
    target = tmp_path / "target"
    proc = run_cli("restore", "1", env={**env, "JENKINS_HOME": str(target)})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("jenkins-backup: error:")
    assert not list(target.rglob(".jbtmp-*"))


def test_corrupt_snapshot_is_skipped_by_latest(tmp_path: Path, env: dict[str, str]) -> None:
    run_cli("backup", "1", env=env, check=True)
    run_cli("backup", "2", env=env, check=True)
    repo = Path(env["BACKUP_REPOSITORY"])
    newest = max((repo / "snapshots").iterdir())
    newest.write_bytes(b"\x00garbage")
    proc = run_cli("latest", env=env)
    assert proc.returncode == 0
    assert proc.stdout == "1\n"
    assert "damaged backup 2" in proc.stderr
    bad = run_cli("restore", "2", env={**env, "JENKINS_HOME": str(tmp_path / "t")})
    assert bad.returncode == 1 and "damaged" in bad.stderr
    assert not (tmp_path / "t").exists()


def test_damaged_metadata_fails_with_one_line(env: dict[str, str]) -> None:
    run_cli("backup", "1", env=env, check=True)
    repo = Path(env["BACKUP_REPOSITORY"])
    (repo / "config").write_bytes(b"{not json")
    proc = run_cli("restore", "1", env={**env, "JENKINS_HOME": str(repo.parent / "t")})
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()[-1]) < 200


def test_damaged_index_file_is_skipped(env: dict[str, str]) -> None:
    """Index files are caches (docs/FORMAT.md): the packs' headers locate the blobs."""
    run_cli("backup", "1", env=env, check=True)
    repo = Path(env["BACKUP_REPOSITORY"])
    next((repo / "index").iterdir()).write_bytes(b"{not json")
    proc = run_cli("restore", "1", env={**env, "JENKINS_HOME": str(repo.parent / "t")})
    assert proc.returncode == 0, proc.stderr
    assert "skipping damaged index file" in proc.stderr


def _pack_of_last_chunk(repo_dir: Path, rel: Path) -> str:
    """The key of the pack that holds the last chunk of the file at ``rel`` in backup 1."""
    repo = Repository.open(LocalStorage(str(repo_dir)))
    tree = repo.load_snapshot(repo.snapshot_refs()[-1]).tree
    *dirs, name = (os.fsencode(p) for p in rel.parts)
    for d in dirs:
        tree = next(e for e in repo.read_tree(tree) if e.name == d).subtree
    entry = next(e for e in repo.read_tree(tree) if e.name == name)
    loc = repo.find(entry.content[-1])
    assert loc is not None
    return pack_key(loc.pack)
