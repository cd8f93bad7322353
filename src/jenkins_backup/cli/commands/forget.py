"""`jenkins-backup forget N`: remove one backup; its data goes at the next prune."""

from __future__ import annotations

import argparse
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.settings import Settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "forget", help="remove backup N (its data is removed by the next prune)"
    )
    p.add_argument("number", help="the backup number")
    p.add_argument("--force", action="store_true", help="forget it even if it is pinned")
    commands.common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations.forget import forget  # lazy: start-up time

    forget(settings, commands.backup_number(args.number), force=args.force)
    return 0
