"""Test helpers: drive the CLI as the operator does, and describe trees for comparison."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

# Everything the tool reads from the environment; tests start from a clean slate.
_TOOL_ENV = ("JENKINS_HOME", "BACKUP_", "AWS_", "AZURE_", "GOOGLE_", "STORAGE_EMULATOR_HOST")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_TOOL_ENV)}
    env.update(extra)
    return env


def run_cli(
    *args: str, env: Mapping[str, str], timeout: float = 300, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``jenkins-backup ARGS`` in a subprocess with no stdin, as the operator's exec does."""
    proc = subprocess.run(
        [sys.executable, "-m", "jenkins_backup", *args],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"jenkins-backup {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
        )
    return proc


def spawn_cli(
    args: list[str], env: Mapping[str, str], *, stderr: int = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    """Start ``jenkins-backup ARGS`` without waiting, with no stdin: for the kill tests."""
    return subprocess.Popen(
        [sys.executable, "-m", "jenkins_backup", *args],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )


Entry = tuple[str, int, int, str]  # kind, mode, mtime_ns, sha256 of content or link target


def describe(root: Path, keep: Callable[[str], bool] = lambda rel: True) -> dict[bytes, Entry]:
    """Every file, link and directory below ``root`` with what a restore must reproduce."""
    out: dict[bytes, Entry] = {}
    base = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(base):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, base)
            if not keep(os.fsdecode(rel)):
                continue
            st = os.lstat(path)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", 0, st.st_mtime_ns, os.fsdecode(os.readlink(path)))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", mode, st.st_mtime_ns, "")
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    digest = hashlib.file_digest(f, "sha256").hexdigest()
                out[rel] = ("file", mode, st.st_mtime_ns, digest)
    return out


def in_jobs_scope(rel: str) -> bool:
    """The expected `jobs` scope, written independently of the tool: jobs/ minus workspaces."""
    parts = rel.split("/")
    return parts[0] == "jobs" and not any(p.startswith("workspace") for p in parts[2:])


def in_history_scope(rel: str) -> bool:
    parts = rel.split("/")
    return in_jobs_scope(rel) and not (len(parts) == 3 and parts[2] == "config.xml")


def in_full_scope(rel: str, is_dir: bool = False) -> bool:
    """Whole home minus workspaces, caches, war, controller logs, exploded plugins, *.tmp."""
    parts = rel.split("/")
    if parts[0] in ("workspace", "caches", "war", "logs"):
        return False
    if parts[0] == "plugins" and len(parts) >= 2 and (len(parts) > 2 or is_dir):
        return False
    if parts[0] == "jobs":
        return in_jobs_scope(rel)
    return not parts[-1].endswith(".tmp")


def a_job(home: Path) -> Path:
    """The first top-level job (not a folder) that has builds."""
    for job in sorted((home / "jobs").iterdir()):
        if (job / "builds").is_dir():
            return job
    raise AssertionError("the generated home has no job with builds")


def backup_of_a_home_at_rest(env: Mapping[str, str], number: int = 1) -> None:
    """A backup, in process, as if it started once the home's files had aged past the racy
    window (time injected): a file changed within a tick of a backup's start is read again by
    the next one, and a test that counts reads wants a home at rest."""
    from jenkins_backup.operations.backup import backup
    from jenkins_backup.repository.tree import RACY_COARSE_NS
    from jenkins_backup.settings import load

    backup(load(environ=env), number, now_ns=time.time_ns() + RACY_COARSE_NS)


def wait_until_at_rest(root: Path) -> None:
    """Wait (usually not at all) until every file below ``root`` is older than the racy window
    of a backup started now, for a test that counts reads through the real command, where time
    cannot be injected: on a fast file system a home written a moment ago is all racy."""
    from jenkins_backup.repository.tree import RACY_COARSE_NS, RACY_FINE_NS

    newest = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            tick = RACY_COARSE_NS if st.st_ctime_ns % 1_000_000_000 == 0 else RACY_FINE_NS
            newest = max(newest, st.st_ctime_ns + tick)  # ctime: never in the future
    time.sleep(max(0, newest - time.time_ns() + 1) / 1e9)
