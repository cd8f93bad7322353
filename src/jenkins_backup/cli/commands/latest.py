"""`jenkins-backup latest`: the operator's getLatestAction; stdout is the number alone."""

from __future__ import annotations

import argparse
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.settings import Settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "latest", help="print the newest intact backup number, or -1"
    )
    commands.common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations.latest import latest  # lazy: start-up time

    print(latest(settings), flush=True)
    return 0
