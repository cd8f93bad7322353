"""Run the real console script under a skewed clock (libfaketime), as a pod with a bad clock."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence

import pytest

FAKETIME = shutil.which("faketime")
needs_faketime = pytest.mark.skipif(FAKETIME is None, reason="faketime is not installed")


def command(offset: str, *args: str) -> list[str]:
    """``jenkins-backup ARGS`` with the process's clock moved by ``offset`` (``+1d``, ``-2h``).

    Only the process's view of time moves: the file system and the S3 server keep stamping
    objects with the real time, as a store does for a pod whose clock is wrong."""
    assert FAKETIME is not None
    return [FAKETIME, "-f", offset, sys.executable, "-m", "jenkins_backup", *args]


def run_skewed(
    offset: str, args: Sequence[str], env: Mapping[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(offset, *args),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
