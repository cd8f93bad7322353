"""A corpus of malicious repositories, forged with the repository API: restore must fail cleanly.

Each case builds a repository that a hostile writer (anyone with write access to an unencrypted
bucket) could produce, then runs the CLI's restore (main, in process). The restore must exit 1
with one short error line and write nothing outside JENKINS_HOME; most cases are caught before
anything is written at all.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import clean_env
from inprocess import run_cli
from jenkins_backup.errors import CorruptObject
from jenkins_backup.repository import config as cfg
from jenkins_backup.repository.index import MAGIC as INDEX_MAGIC
from jenkins_backup.repository.index import encode_index
from jenkins_backup.repository.integrity import check_snapshot
from jenkins_backup.repository.layout import pack_key, snapshot_key
from jenkins_backup.repository.pack import DATA, TREE, PackBuilder
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.snapshot import Snapshot
from jenkins_backup.repository.walk import MAX_DEPTH
from jenkins_backup.repository.writer import BlobWriter
from jenkins_backup.storage.local import LocalStorage

Obj = dict[str, object]
MTIME = 1_600_000_000_000_000_000


class Forge:
    """Writes arbitrary (even invalid) trees and blobs into a real repository."""

    def __init__(self, path: Path) -> None:
        self.storage = LocalStorage(str(path), fsync=False)
        self.repo = Repository.open_or_create(self.storage)
        self.writer = BlobWriter(self.repo)

    def blob(self, data: bytes) -> bytes:
        blob_id = self.repo.codec.blob_id(data)
        self.writer.add(DATA, blob_id, data)
        return blob_id

    def tree(self, *entries: Obj, raw: bytes | None = None, lie_id: bytes | None = None) -> bytes:
        data = raw if raw is not None else json.dumps({"v": 1, "entries": list(entries)}).encode()
        tree_id = lie_id or self.repo.codec.blob_id(data)
        self.writer.add(TREE, tree_id, data)
        return tree_id

    def file(self, name: str | bytes, data: bytes = b"pwned\n", **over: object) -> Obj:
        obj: Obj = {"t": "f", "mode": 0o644, "mtime": MTIME, "size": len(data)}
        obj["content"] = [self.blob(data).hex()]
        obj.update(_name(name), **over)
        return obj

    def commit(self, root: bytes, number: int = 1) -> None:
        self.writer.flush()
        self.writer.close()
        self.repo.commit(Snapshot(number, time.time_ns(), root, "jobs", "forge"))


def _name(name: str | bytes) -> Obj:
    if isinstance(name, bytes):
        return {"name_b": base64.b64encode(name).decode()}
    return {"name": name}


def d(name: str | bytes, tree: bytes, **over: object) -> Obj:
    return {"t": "d", "mode": 0o755, "mtime": MTIME, "tree": tree.hex(), **_name(name), **over}


def link(name: str, target: str) -> Obj:
    return {"t": "l", "mode": 0o777, "mtime": MTIME, "name": name, "target": target}


def in_jobs(f: Forge, *entries: Obj) -> bytes:
    return f.tree(d("jobs", f.tree(*entries)))


def _deep(f: Forge) -> bytes:
    tree = f.tree(f.file("pwned"))
    for _ in range(MAX_DEPTH + 5):
        tree = f.tree(d("x", tree))
    return tree


def _cycle(f: Forge) -> bytes:
    """A tree naming itself as its child: only possible by lying about its id (hash check)."""
    me = bytes(range(32))
    return f.tree(d("loop", me), f.file("pwned"), lie_id=me)


def _decompression_bomb(f: Forge) -> bytes:
    """A chunk announced as 10 bytes that inflates to 64 MiB."""
    codec = f.repo.codec
    builder = PackBuilder()
    fake = bytes(32)
    builder.add(DATA, fake, codec.seal(b"\0" * (64 << 20)), 10)
    pack_id, data, entries = builder.finish(codec)
    f.storage.put(pack_key(pack_id), data, create_only=True)
    f.repo.write_index(encode_index([(pack_id, entries)]))
    obj: Obj = {"t": "f", "name": "bomb", "mode": 0o644, "mtime": MTIME, "size": 10}
    obj["content"] = [fake.hex()]
    return in_jobs(f, obj)


# name -> builder of the root tree. Each must be refused with nothing written.
CASES: dict[str, Callable[[Forge], bytes]] = {
    "dotdot-dir": lambda f: f.tree(d("..", f.tree(f.file("pwned")))),
    "dotdot-file": lambda f: in_jobs(f, f.file("..")),
    "absolute-name": lambda f: f.tree(f.file("/tmp/pwned")),
    "separator-in-name": lambda f: in_jobs(f, f.file("../../pwned")),
    "nul-in-name": lambda f: in_jobs(f, f.file("a\0b")),
    "empty-name": lambda f: in_jobs(f, f.file("")),
    "base64-dotdot": lambda f: f.tree(d(b"..", f.tree(f.file("pwned")))),
    "base64-separator": lambda f: in_jobs(f, f.file(b"../pwned")),
    "name-too-long": lambda f: in_jobs(f, f.file("n" * 256)),
    "dir-and-file-collide": lambda f: in_jobs(f, d("a", f.tree(f.file("pwned"))), f.file("a")),
    "name-and-base64-collide": lambda f: in_jobs(f, f.file("a"), f.file(b"a")),
    "link-and-dir-collide": lambda f: in_jobs(
        f, link("a", "/tmp"), d("a", f.tree(f.file("pwned")))
    ),
    "negative-size": lambda f: in_jobs(f, f.file("x", size=-1)),
    "size-lies": lambda f: in_jobs(f, f.file("x", size=1 << 40)),
    "mtime-overflow": lambda f: in_jobs(f, f.file("x", mtime=2**64 - 1)),
    "mode-not-int": lambda f: in_jobs(f, f.file("x", mode="4755")),
    "bad-content-id": lambda f: in_jobs(f, f.file("x", content=["zz" * 32])),
    "missing-chunk": lambda f: in_jobs(f, f.file("x", content=["ab" * 32])),
    "empty-link-target": lambda f: in_jobs(f, link("l", "")),
    "unknown-kind": lambda f: in_jobs(f, {"t": "p", "name": "fifo", "mode": 0, "mtime": 0}),
    "not-json": lambda f: f.tree(raw=b"\xff{"),
    "nesting-bomb": lambda f: f.tree(raw=b"[" * 100_000 + b"]" * 100_000),
    "tree-cycle": _cycle,
    "too-deep": _deep,
    "oversized-chunk": lambda f: in_jobs(f, f.file("big", b"\0" * (5 << 20))),
    "decompression-bomb": _decompression_bomb,
}


def _restore(tmp_path: Path, number: str = "1") -> tuple[int, str, Path]:
    sandbox = tmp_path / "sandbox"
    target = sandbox / "home"
    sandbox.mkdir(exist_ok=True)
    env = clean_env(JENKINS_HOME=str(target), BACKUP_REPOSITORY=str(tmp_path / "repo"))
    proc = run_cli("restore", number, env=env)
    return proc.returncode, proc.stderr, sandbox


def _assert_clean_failure(code: int, stderr: str) -> None:
    assert code == 1, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("jenkins-backup: error:") and len(last) < 300, last


@pytest.mark.parametrize("case", sorted(CASES))
def test_malicious_tree_is_refused_and_nothing_is_written(tmp_path: Path, case: str) -> None:
    forge = Forge(tmp_path / "repo")
    forge.commit(CASES[case](forge))
    code, stderr, sandbox = _restore(tmp_path)
    _assert_clean_failure(code, stderr)
    written = [p for p in sandbox.rglob("*") if p.is_file() or p.is_symlink()]
    assert written == [], f"{case}: restore wrote {written}"
    assert not (Path("/tmp") / "pwned").exists()


def test_symlink_then_write_through_two_backups(tmp_path: Path) -> None:
    """Backup 1 plants jobs/evil -> outside; backup 2 writes into jobs/evil/. Refused."""
    outside = tmp_path / "outside"
    outside.mkdir()
    forge = Forge(tmp_path / "repo")
    forge.commit(in_jobs(forge, link("evil", str(outside))), number=1)
    forge = Forge(tmp_path / "repo")
    forge.commit(in_jobs(forge, d("evil", forge.tree(forge.file("pwned")))), number=2)
    code, stderr, sandbox = _restore(tmp_path, "1")
    assert code == 0, stderr
    assert os.readlink(sandbox / "home" / "jobs" / "evil") == str(outside)
    code, stderr, _ = _restore(tmp_path, "2")
    _assert_clean_failure(code, stderr)
    assert "symlink" in stderr.strip().splitlines()[-1]
    assert list(outside.iterdir()) == []


def test_file_over_a_planted_symlink_replaces_the_link(tmp_path: Path) -> None:
    """A file entry where the target holds a symlink: the link is replaced, never followed."""
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    forge = Forge(tmp_path / "repo")
    forge.commit(in_jobs(forge, forge.file("config.xml", b"restored\n")))
    target = tmp_path / "sandbox" / "home"
    (target / "jobs").mkdir(parents=True)
    os.symlink(outside, target / "jobs" / "config.xml")
    code, stderr, _ = _restore(tmp_path)
    assert code == 0, stderr
    assert outside.read_text() == "precious\n"
    assert not (target / "jobs" / "config.xml").is_symlink()
    assert (target / "jobs" / "config.xml").read_text() == "restored\n"


def test_restored_files_have_no_setuid_bits_and_belong_to_us(tmp_path: Path) -> None:
    forge = Forge(tmp_path / "repo")
    sub = forge.tree(forge.file("tool", b"#!/bin/sh\n", mode=0o6755))
    forge.commit(in_jobs(forge, d("bin", sub, mode=0o7775), forge.file("x", mode=0o4777)))
    code, stderr, sandbox = _restore(tmp_path)
    assert code == 0, stderr
    for p in [*(sandbox / "home" / "jobs").rglob("*")]:
        st = p.lstat()
        assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID), p
        assert st.st_uid == os.getuid()
    assert stat.S_IMODE((sandbox / "home/jobs/bin/tool").stat().st_mode) == 0o755


def test_fan_out_bomb_is_bounded(tmp_path: Path) -> None:
    """Twenty directories sharing one subtree, three levels deep: 8,000 paths from 4 trees."""
    forge = Forge(tmp_path / "repo")
    tree = forge.tree(forge.file("f"))
    for _ in range(3):
        tree = forge.tree(*(d(f"d{i}", tree) for i in range(20)))
    forge.commit(tree)
    repo = Repository.open(LocalStorage(str(tmp_path / "repo")))
    assert check_snapshot(repo, tree) == (8000, 8000 * len(b"pwned\n"))
    with pytest.raises(CorruptObject, match="more than 1000 entries"):
        check_snapshot(repo, tree, max_entries=1000)


def test_index_with_huge_count_is_refused(tmp_path: Path) -> None:
    """The hostile index file is refused before anything is merged, and skipped: index files
    are caches, the packs' headers locate the blobs (docs/FORMAT.md)."""
    forge = Forge(tmp_path / "repo")
    forge.commit(in_jobs(forge, forge.file("x")))
    plain = INDEX_MAGIC + bytes(32) + (2**32 - 1).to_bytes(4, "little") + b"\0" * 100
    forge.repo.write_index(plain)
    code, stderr, sandbox = _restore(tmp_path)
    assert code == 0, stderr
    assert "skipping damaged index file" in stderr and "index is truncated" in stderr
    assert (sandbox / "home" / "jobs" / "x").read_bytes() == b"pwned\n"


@pytest.mark.parametrize(
    "change",
    [
        {"stats": {"files": "many"}},
        {"hostname": ["x"]},
        {"tree": "zz"},
        {"number": "1"},
        {"stats": {"bytes": -5}},
    ],
)
def test_malformed_snapshot_is_damaged_not_a_crash(tmp_path: Path, change: Obj) -> None:
    forge = Forge(tmp_path / "repo")
    root = in_jobs(forge, forge.file("x"))
    forge.writer.flush()
    forge.writer.close()
    now = time.time_ns()
    doc: dict[str, object] = {"v": 1, "number": 1, "time_ns": now, "tree": root.hex()}
    doc.update(scope="jobs", hostname="h", parent="", program="", source="backup", stats={})
    doc.update(change)
    plain = json.dumps(doc).encode()
    key = snapshot_key(now, 1, forge.repo.codec.blob_id(plain))
    forge.storage.put(key, forge.repo.codec.seal(plain), create_only=True)
    env = clean_env(BACKUP_REPOSITORY=str(tmp_path / "repo"))
    listing = run_cli("list", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    assert json.loads(listing.stdout)[0]["intact"] is False
    code, stderr, sandbox = _restore(tmp_path)
    _assert_clean_failure(code, stderr)
    assert "damaged" in stderr
    assert not (sandbox / "home").exists()


def test_snapshot_keys_beyond_64_bits_are_ignored(tmp_path: Path) -> None:
    forge = Forge(tmp_path / "repo")
    forge.commit(in_jobs(forge, forge.file("x")))
    forge.storage.put(f"snapshots/{'9' * 20}-1-{'ab' * 32}", b"x")
    forge.storage.put(f"snapshots/{1:020d}-{'9' * 19}-{'ab' * 32}", b"x")
    env = clean_env(BACKUP_REPOSITORY=str(tmp_path / "repo"))
    listing = run_cli("list", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    assert [r["number"] for r in json.loads(listing.stdout)] == [1]


@pytest.mark.parametrize(
    "change",
    [
        {"chunker": {"min_size": 0, "avg_size": 1, "max_size": 2**40, "seed": 0}},
        {"id": 5},
        {"encryption": "yes"},
        {"compression": "lz4"},
    ],
)
def test_malformed_config_is_refused(tmp_path: Path, change: Obj) -> None:
    forge = Forge(tmp_path / "repo")
    forge.commit(in_jobs(forge, forge.file("x")))
    doc = json.loads(cfg.encode_config(forge.repo.config))
    doc.update(change)
    forge.storage.put(cfg.KEY, json.dumps(doc).encode())
    code, stderr, sandbox = _restore(tmp_path)
    _assert_clean_failure(code, stderr)
    assert "malformed" in stderr
    assert not (sandbox / "home").exists()
