"""`jenkins-backup daemon [--interval SECONDS]`: the container's main process."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.settings import Settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "daemon",
        help="sidecar main process: metrics, retention, and backups on a schedule if asked",
    )
    p.add_argument(
        "--interval",
        metavar="SECONDS",
        help="standalone mode: back up every SECONDS, numbering backups itself "
        "(env BACKUP_INTERVAL); without it the operator runs the backups",
    )
    p.add_argument(
        "--metrics-port", metavar="PORT", help="Prometheus metrics port (env BACKUP_METRICS_PORT)"
    )
    commands.common_options(p, home=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations import daemon  # lazy: start-up time of the other commands

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():  # a second signal: the user insists
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    daemon.run(settings, stop)
    return 0
