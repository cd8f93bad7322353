"""A local repository's runtime directory outlives pods: another pod's pid files mean nothing.

A pod killed during a backup leaves its pid file on the repository volume; in the next pod the
same pid may belong to an unrelated process, which must not hold the daemon's shutdown.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from jenkins_backup.operations import activity


def test_pid_files_of_another_pod_are_not_backups_in_flight(tmp_path: Path) -> None:
    running = tmp_path / "running"
    running.mkdir(parents=True)
    live = os.getppid()  # alive, and not this process
    (running / f"{live}.json").write_text(
        json.dumps({"pid": live, "number": 7, "started": 1.0, "host": "jenkins-old-pod-x1"})
    )
    assert activity.running(str(tmp_path)) == []
    assert not (running / f"{live}.json").exists(), "removed as stale"

    with activity.tracking(str(tmp_path), "backup", 8, announce=True):
        (mine,) = activity.running(str(tmp_path))
        assert (mine.pid, mine.number) == (os.getpid(), 8)
