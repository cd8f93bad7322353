"""Keep a job's ``nextBuildNumber`` above every build directory it has after a restore.

Jenkins refuses to start a build whose directory already exists, so a restore that brings back
an older ``nextBuildNumber`` beside newer builds (or builds beside an older number) would stop
the job from building. The file is only ever raised, to the highest build + 1, and written as
Jenkins writes it (the number and a newline), under a temporary name renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import stat

from jenkins_backup.engine.jenkins_items import BUILDS, NEXT_BUILD
from jenkins_backup.engine.safe_dirs import open_existing, open_subdir
from jenkins_backup.engine.scope import RESTORE_TMP_PREFIX
from jenkins_backup.repository.walk import Parts


def highest_build(job_fd: int) -> int | None:
    """The highest numbered directory in the job's ``builds/`` (links are permalinks)."""
    try:
        fd = open_subdir(job_fd, BUILDS, create=False, shown="builds")
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        with os.scandir(fd) as it:
            numbers = [
                int(de.name)
                for de in it
                if de.name.isdigit() and len(de.name) < 19 and de.is_dir(follow_symlinks=False)
            ]
    finally:
        os.close(fd)
    return max(numbers, default=None)


def _read_number(job_fd: int) -> int | None:
    try:
        fd = os.open(NEXT_BUILD, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=job_fd)
    except OSError:
        return None
    try:
        text = os.read(fd, 64).strip()
    finally:
        os.close(fd)
    return int(text) if text.isdigit() and len(text) < 19 else None


def raise_next_build_number(root_fd: int, job: Parts, follow: frozenset[Parts]) -> int | None:
    """Make ``job``'s ``nextBuildNumber`` greater than its highest build directory; returns the
    number written, or None when it already was (or the job has no builds there)."""
    job_fd = open_existing(root_fd, job, follow)
    if job_fd is None:
        return None
    try:
        top = highest_build(job_fd)
        if top is None:
            return None
        current = _read_number(job_fd)
        if current is not None and current > top:
            return None
        mode = 0o644
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(os.stat(NEXT_BUILD, dir_fd=job_fd, follow_symlinks=False).st_mode)
        tmp = RESTORE_TMP_PREFIX + f"{os.getpid()}-0".encode()
        fd = os.open(
            tmp,
            os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
            mode,
            dir_fd=job_fd,
        )
        try:
            os.write(fd, f"{top + 1}\n".encode())
        finally:
            os.close(fd)
        try:
            os.rename(tmp, NEXT_BUILD, src_dir_fd=job_fd, dst_dir_fd=job_fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=job_fd)
            raise
        return top + 1
    finally:
        os.close(job_fd)
