"""`jenkins-backup restore N|latest`: the operator's restore action, and the init container."""

from __future__ import annotations

import argparse
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.cli.output import progress
from jenkins_backup.errors import UsageError
from jenkins_backup.settings import Settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "restore", help="restore backup N (or 'latest') into JENKINS_HOME"
    )
    p.add_argument("number", help="the backup number, or 'latest'")
    commands.common_options(p, home=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations import activity
    from jenkins_backup.operations.restore import restore  # lazy: start-up time

    number = None if args.number == "latest" else commands.backup_number(args.number)
    if args.include or args.exclude:
        # Accepted by every command with a home, but restore writes the whole backup: an
        # option that would be silently ignored is refused (BACKUP_INCLUDE/EXCLUDE shape the
        # backup's scope and stay allowed in the shared environment).
        raise UsageError("restore does not select paths yet: --include and --exclude are refused")
    bar = progress("restore")
    try:
        with activity.tracking(settings.runtime_dir, "restore", number or 0) as run:  # metrics
            result = restore(settings, number, bar)
            run.warnings = activity.warnings_from(result)
    finally:
        bar.close()
    return 0
