"""Backup then restore into an empty home gives back exactly the tree in scope.

In process, through the operations layer.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import (
    a_job,
    describe,
    in_full_scope,
    in_history_scope,
    in_jobs_scope,
)
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.listing import list_backups
from jenkins_backup.operations.restore import restore
from jenkins_backup.settings import load


def _backup(env: dict[str, str], number: int) -> None:
    backup(load(environ=env), number)


def _restore(env: dict[str, str], number: int, target: Path) -> None:
    restore(load(environ={**env, "JENKINS_HOME": str(target)}), number)


SCOPES: dict[str, Callable[[str], bool]] = {
    "jobs": in_jobs_scope,
    "history": in_history_scope,
    "full": lambda rel: in_full_scope(rel, os.path.isdir(rel)),
}


def _expected(home: Path, scope: str) -> dict[bytes, tuple[str, int, int, str]]:
    keep = SCOPES[scope]
    if scope == "full":

        def keep(rel: str) -> bool:
            return in_full_scope(rel, (home / rel).is_dir() and not (home / rel).is_symlink())

    tree = describe(home, keep)
    # Directories that hold nothing in scope are still restored when the walk passes them;
    # compare files and links exactly, and directories by presence of their contents.
    return {k: v for k, v in tree.items() if v[0] != "dir"}


@pytest.mark.parametrize("scope", ["jobs", "history", "full"])
def test_round_trip_each_scope(tmp_path: Path, home: Path, env: dict[str, str], scope: str) -> None:
    env["BACKUP_SCOPE"] = scope
    _backup(env, 1)
    target = tmp_path / "restored"
    target.mkdir()
    _restore(env, 1, target)

    expected = _expected(home, scope)
    got = {k: v for k, v in describe(target).items() if v[0] != "dir"}
    assert got == expected
    assert len(expected) > 100


def test_directories_keep_modes_and_mtimes(tmp_path: Path, home: Path, env: dict[str, str]) -> None:
    job = a_job(home)
    os.chmod(job / "builds", 0o750)
    os.utime(job / "builds", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    _backup(env, 1)
    target = tmp_path / "restored"
    _restore(env, 1, target)
    src = describe(home, in_jobs_scope)
    dst = describe(target)
    dirs = {k: v for k, v in src.items() if v[0] == "dir"}
    assert dirs
    for rel, entry in dirs.items():
        assert dst[rel] == entry, rel


def test_workspaces_excluded_at_every_depth(
    tmp_path: Path, home: Path, env: dict[str, str]
) -> None:
    # Workspaces of a folder's job and of a multibranch branch, besides the generated ones.
    extra = [
        home / "jobs" / "fold" / "jobs" / "inner" / "workspace@2" / "src.c",
        home / "jobs" / "mb" / "branches" / "main" / "workspace" / "x" / "y.txt",
        home / "jobs" / "fold" / "jobs" / "mb" / "branches" / "pr-1" / "workspace@tmp" / "z",
    ]
    for path in extra:
        path.parent.mkdir(parents=True)
        path.write_text("workspace content\n")
    (home / "jobs" / "fold" / "jobs" / "inner" / "config.xml").write_text("<project/>\n")
    # A directory named like a workspace inside a build's archive is data, not a workspace.
    job = a_job(home)
    keep = job / "builds" / "archive-test" / "workspace"
    keep.mkdir(parents=True)
    (keep / "kept.txt").write_text("artifact\n")

    _backup(env, 1)
    target = tmp_path / "restored"
    _restore(env, 1, target)
    restored = describe(target)
    rel_job = os.fsencode(job.relative_to(home))
    assert rel_job + b"/builds/archive-test/workspace/kept.txt" in restored
    assert b"jobs/fold/jobs/inner/config.xml" in restored
    generated = [r for r in describe(home, in_jobs_scope)]
    assert len(generated) > 100
    for rel in restored:
        parts = rel.split(b"/")
        for i in range(1, len(parts) - 1):
            if parts[i - 1] in (b"jobs", b"branches") and parts[i + 1].startswith(b"workspace"):
                pytest.fail(f"workspace restored: {rel!r}")
    all_workspaces = [
        r for r in describe(home) if any(p.startswith(b"workspace") for p in r.split(b"/")[:-1])
    ]
    assert len(all_workspaces) > len(extra)


def test_odd_names_symlinks_and_special_files(
    tmp_path: Path, home: Path, env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    odd = home / "jobs" / "Legacy Build (old)" / "builds" / "23" / "archive-odd"
    names = set(os.listdir(os.fsencode(odd)))
    assert b"new\nline.txt" in names and b"latin1-\xe9t\xe9.txt" in names
    assert any(len(n) >= 250 for n in names)
    with caplog.at_level(logging.INFO, logger="jenkins_backup"):
        _backup(env, 1)
    assert "special file" in caplog.text or "fifo" in caplog.text.lower()
    target = tmp_path / "restored"
    _restore(env, 1, target)
    rodd = target / "jobs" / "Legacy Build (old)" / "builds" / "23" / "archive-odd"
    restored = set(os.listdir(os.fsencode(rodd)))
    assert restored == names - {b"fifo"}
    assert os.readlink(rodd / "broken-link") == os.readlink(odd / "broken-link")
    assert os.readlink(rodd / "absolute-link") == os.readlink(odd / "absolute-link")
    assert (rodd / "empty-dir").is_dir()
    assert os.stat(rodd / "run.sh").st_mode & 0o111


def test_setuid_and_setgid_bits_are_not_restored(
    tmp_path: Path, home: Path, env: dict[str, str]
) -> None:
    f = a_job(home) / "suid-tool"
    f.write_bytes(b"#!/bin/sh\n")
    os.chmod(f, 0o6755)
    _backup(env, 1)
    target = tmp_path / "restored"
    _restore(env, 1, target)
    restored = target / f.relative_to(home)
    assert stat.S_IMODE(os.stat(restored).st_mode) == 0o755
    assert os.stat(restored).st_uid == os.getuid()


def test_big_file_with_edits_round_trips(tmp_path: Path, home: Path, env: dict[str, str]) -> None:
    big = a_job(home) / "builds" / "big.bin"
    rnd = os.urandom(20 << 20)
    big.write_bytes(rnd)
    _backup(env, 1)
    # Insert bytes in the middle: content-defined chunks re-store only the neighbourhood.
    big.write_bytes(rnd[: 10 << 20] + b"inserted" + rnd[10 << 20 :])
    _backup(env, 2)
    info = list_backups(load(environ=env))
    assert info[1].bytes_added < 8 << 20, "an insertion re-stores a few chunks, not the file"
    target = tmp_path / "restored"
    _restore(env, 2, target)
    assert (target / big.relative_to(home)).read_bytes() == big.read_bytes()
