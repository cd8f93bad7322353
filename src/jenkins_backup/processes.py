"""Process liveness, for leftovers (temp files, activity records) of runs that died."""

from __future__ import annotations

import errno
import os


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` names a live process on this host (EPERM: alive, not ours)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True
