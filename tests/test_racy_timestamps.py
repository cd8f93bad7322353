"""Racily clean files: a file whose time stamps are within a tick of the backup's start may be
rewritten, same size, in the tick the backup read it, leaving its stat unchanged; the next
backup must read it again rather than take it as unchanged (git's rule)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jenkins_backup import settings as settings_mod
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.restore import restore

HOUR_NS = 3600 * 10**9


def _home(root: Path) -> Path:
    build = root / "jobs" / "a" / "builds" / "1"
    build.mkdir(parents=True)
    return build


def test_a_file_stamped_in_the_start_tick_is_read_again(tmp_path: Path) -> None:
    """Times injected: the backup "starts" an hour after the files were written, so only the
    mtime set by hand into its start tick makes a file racy."""
    build = _home(tmp_path / "home")
    (build / "old.log").write_text("written long ago\n")
    (build / "fresh.log").write_text("written just now\n")
    start = time.time_ns() + HOUR_NS
    os.utime(build / "old.log", ns=(start - HOUR_NS, start - HOUR_NS))
    os.utime(build / "fresh.log", ns=(start - 10**7, start - 10**7))  # 10 ms before the start
    settings = settings_mod.load(
        environ={"JENKINS_HOME": str(tmp_path / "home"), "BACKUP_REPOSITORY": str(tmp_path / "r")}
    )
    first = backup(settings, 1, now_ns=start)
    assert first.snapshot.stats.files_read == 2
    second = backup(settings, 2, now_ns=start + HOUR_NS)
    assert second.snapshot.stats.files_read == 1, "the racy file is read again, only it"
    third = backup(settings, 3, now_ns=start + 2 * HOUR_NS)
    assert third.snapshot.stats.files_read == 0, "read once after its tick, it is clean"


@pytest.fixture
def coarse_fs(tmp_path: Path) -> Iterator[Path]:
    """An ext4 file system with 128-byte inodes (time stamps in whole seconds), loop-mounted."""
    if os.geteuid() != 0:
        pytest.skip("mounting a loop device needs root")
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("mkfs.ext4 (e2fsprogs) is not installed")
    image, mnt = tmp_path / "fs.img", tmp_path / "mnt"
    mnt.mkdir()
    with open(image, "wb") as f:
        f.truncate(32 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-I", "128", str(image)], check=True)
    proc = subprocess.run(
        ["mount", "-o", "loop", str(image), str(mnt)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"this machine does not allow a loop mount: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_same_second_rewrite_on_coarse_ext4_is_backed_up(coarse_fs: Path, tmp_path: Path) -> None:
    home = coarse_fs / "home"
    build = _home(home)
    log = build / "log"
    log.write_text("warm-up\n")
    env = {"JENKINS_HOME": str(home), "BACKUP_REPOSITORY": str(tmp_path / "repo")}
    settings = settings_mod.load(environ=env)
    backup(settings, 1)  # creates the repository: the timed part below is short
    assert log.stat().st_mtime_ns % 10**9 == 0, "whole-second time stamps"
    for attempt in range(20):  # bounded: each try fits in one second unless the tick turns
        number = 2 + 2 * attempt
        log.write_text("aaaa\n")
        before = log.stat()
        backup(settings, number)
        log.write_text("bbbb\n")  # same size, and in the same second when the try counts
        after = log.stat()
        if (after.st_mtime_ns, after.st_ctime_ns) == (before.st_mtime_ns, before.st_ctime_ns):
            break
    else:
        pytest.fail("20 tries never wrote twice within one second")
    backup(settings, number + 1)
    target = tmp_path / "restored"
    restore(settings_mod.load(environ={**env, "JENKINS_HOME": str(target)}), number + 1)
    assert (target / "jobs" / "a" / "builds" / "1" / "log").read_text() == "bbbb\n"
