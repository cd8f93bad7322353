"""Encryption at rest, driven through the CLI: round trips, wrong and missing keys, tampering,
key rotation without re-upload, and refusing to mix plain and encrypted use."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import describe, in_jobs_scope
from inprocess import run_cli

KEY = "correct horse battery staple 42"
NEW = "a second, independent key of the same repository"


def _files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _last(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


def test_round_trip_with_key_and_key_file(tmp_path: Path, home: Path, env: dict[str, str]) -> None:
    run_cli("backup", "1", env={**env, "BACKUP_ENCRYPTION_KEY": KEY}, check=True)
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")  # a mounted Secret often ends with a newline
    target = tmp_path / "restored"
    file_env = {**env, "BACKUP_ENCRYPTION_KEY_FILE": str(key_file), "JENKINS_HOME": str(target)}
    run_cli("restore", "1", env=file_env, check=True)
    want = {k: v for k, v in describe(home, in_jobs_scope).items() if v[0] != "dir"}
    assert {k: v for k, v in describe(target).items() if v[0] != "dir"} == want

    listing = run_cli("list", "--json", env=file_env, check=True)
    assert [r["encrypted"] for r in json.loads(listing.stdout)] == [True]
    assert "is encrypted" in listing.stderr
    # Nothing readable at rest: no file's content, and no plain JSON metadata.
    stored = b"".join(_files(Path(env["BACKUP_REPOSITORY"])).values())
    some_file = max((p for p in (home / "jobs").rglob("*.xml")), key=lambda p: p.stat().st_size)
    assert some_file.read_bytes()[:64] not in stored
    assert b'"entries"' not in stored and b'"hostname"' not in stored


def test_wrong_key_fails_and_writes_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    run_cli("backup", "1", env={**env, "BACKUP_ENCRYPTION_KEY": KEY}, check=True)
    repo = Path(env["BACKUP_REPOSITORY"])
    before = _files(repo)
    wrong = {**env, "BACKUP_ENCRYPTION_KEY": "not the key at all, sorry"}
    for args in (("backup", "2"), ("latest",), ("list",)):
        proc = run_cli(*args, env=wrong)
        assert proc.returncode == 12, args
        assert "encryption key is wrong" in _last(proc.stderr)
    target = tmp_path / "t"
    proc = run_cli("restore", "1", env={**wrong, "JENKINS_HOME": str(target)})
    assert proc.returncode == 12 and "encryption key is wrong" in _last(proc.stderr)
    assert not target.exists()
    assert _files(repo) == before


def test_missing_key_is_named(tmp_path: Path, env: dict[str, str]) -> None:
    run_cli("backup", "1", env={**env, "BACKUP_ENCRYPTION_KEY": KEY}, check=True)
    before = _files(Path(env["BACKUP_REPOSITORY"]))
    for args in (("backup", "2"), ("restore", "1"), ("latest",)):
        proc = run_cli(*args, env={**env, "JENKINS_HOME": str(tmp_path / "t")})
        assert proc.returncode == 12, args
        assert _last(proc.stderr) == (
            "jenkins-backup: error: repository is encrypted: "
            "set BACKUP_ENCRYPTION_KEY or BACKUP_ENCRYPTION_KEY_FILE"
        )
    assert _files(Path(env["BACKUP_REPOSITORY"])) == before
    assert not (tmp_path / "t").exists()


def test_key_for_a_plain_repository_is_refused(env: dict[str, str]) -> None:
    run_cli("backup", "1", env=env, check=True)
    proc = run_cli("backup", "2", env={**env, "BACKUP_ENCRYPTION_KEY": KEY})
    assert proc.returncode == 12
    assert "not encrypted" in _last(proc.stderr)
    listing = run_cli("list", "--json", env=env, check=True)
    assert [(r["number"], r["encrypted"]) for r in json.loads(listing.stdout)] == [(1, False)]
    assert "is not encrypted" in listing.stderr


def test_short_key_creates_nothing(env: dict[str, str]) -> None:
    proc = run_cli("backup", "1", env={**env, "BACKUP_ENCRYPTION_KEY": "secret"})
    assert proc.returncode == 1 and "too short" in _last(proc.stderr)
    assert not (Path(env["BACKUP_REPOSITORY"]) / "config").exists()


def test_tampered_objects_are_named_as_such(tmp_path: Path, env: dict[str, str]) -> None:
    enc = {**env, "BACKUP_ENCRYPTION_KEY": KEY}
    run_cli("backup", "1", env=enc, check=True)
    run_cli("backup", "2", env=enc, check=True)
    repo = Path(env["BACKUP_REPOSITORY"])
    pack = max(
        (p for p in (repo / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size
    )
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0x01
    pack.write_bytes(bytes(data))
    proc = run_cli("restore", "1", env={**enc, "JENKINS_HOME": str(tmp_path / "t")})
    assert proc.returncode == 1
    assert "tampered" in _last(proc.stderr) and "key" not in _last(proc.stderr)

    newest = max((repo / "snapshots").iterdir())
    data = bytearray(newest.read_bytes())
    data[-1] ^= 0x01
    newest.write_bytes(bytes(data))
    proc = run_cli("restore", "2", env={**enc, "JENKINS_HOME": str(tmp_path / "t2")})
    assert proc.returncode == 1
    assert "damaged" in _last(proc.stderr) and "tampered" in _last(proc.stderr)
    latest = run_cli("latest", env=enc)
    assert latest.stdout == "1\n", "a tampered backup is skipped like a corrupt one"


def test_key_rotation_then_restore_with_the_new_key_only(
    tmp_path: Path, home: Path, env: dict[str, str]
) -> None:
    old = {**env, "BACKUP_ENCRYPTION_KEY": KEY}
    new = {**env, "BACKUP_ENCRYPTION_KEY": NEW}
    run_cli("backup", "1", env=old, check=True)
    repo = Path(env["BACKUP_REPOSITORY"])
    data_before = {p: b for p, b in _files(repo).items() if p.name != "config"}

    refused = run_cli(
        "key",
        "add",
        env={**env, "BACKUP_ENCRYPTION_KEY": NEW + "x", "BACKUP_NEW_ENCRYPTION_KEY": NEW},
    )
    assert refused.returncode == 12 and "wrong" in _last(refused.stderr)
    new_file = tmp_path / "new.key"
    new_file.write_text(NEW)
    added = run_cli("key", "add", "--new-key-file", str(new_file), env=old, check=True)
    new_id = added.stdout.strip()
    listed = run_cli("key", "list", env=new, check=True).stdout.splitlines()
    assert len(listed) == 2 and f"* {new_id}" in listed[1 if listed[1].startswith("*") else 0]
    old_id = next(line.split()[-2] for line in listed if not line.startswith("*"))

    in_use = run_cli("key", "remove", new_id, env=new)
    assert in_use.returncode == 1 and "in use" in _last(in_use.stderr)
    run_cli("key", "remove", old_id, env=new, check=True)
    last = run_cli("key", "remove", new_id, env=new)
    assert last.returncode == 1 and "last key" in _last(last.stderr)

    assert {p: b for p, b in _files(repo).items() if p.name != "config"} == data_before
    gone = run_cli("restore", "1", env={**old, "JENKINS_HOME": str(tmp_path / "t")})
    assert gone.returncode == 12 and "wrong" in _last(gone.stderr)
    target = tmp_path / "restored"
    run_cli("restore", "1", env={**new, "JENKINS_HOME": str(target)}, check=True)
    want = {k: v for k, v in describe(home, in_jobs_scope).items() if v[0] != "dir"}
    assert {k: v for k, v in describe(target).items() if v[0] != "dir"} == want
    run_cli("backup", "2", env=new, check=True)


def test_key_commands_need_an_encrypted_repository(env: dict[str, str]) -> None:
    run_cli("backup", "1", env=env, check=True)
    proc = run_cli("key", "list", env={**env, "BACKUP_ENCRYPTION_KEY": KEY})
    assert proc.returncode == 1 and "not encrypted" in _last(proc.stderr)
    proc = run_cli("key", "add", env={**env, "BACKUP_ENCRYPTION_KEY": KEY})
    assert proc.returncode == 2 and "no new key" in _last(proc.stderr)
