"""`jenkins-backup backup N`: the operator's backup action."""

from __future__ import annotations

import argparse
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.cli.output import print_json, progress
from jenkins_backup.errors import PartialBackup
from jenkins_backup.settings import Settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("backup", help="back up JENKINS_HOME as number N")
    p.add_argument("number", help="the backup number (a positive integer)")
    p.add_argument(
        "--allow-shrink",
        action="store_true",
        help="accept a scope that lost over half of the newest backup (env BACKUP_ALLOW_SHRINK)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 3 when files could not be read (env BACKUP_STRICT)",
    )
    p.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="TEXT",
        help="a tag stored in the backup (repeatable; added to env BACKUP_TAGS)",
    )
    p.add_argument(
        "--no-create",
        action="store_true",
        help="fail when there is no repository at that location (env BACKUP_CREATE=false)",
    )
    commands.json_option(p, "the committed backup as a JSON object")
    commands.common_options(p, home=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations import activity
    from jenkins_backup.operations.backup import BackupResult, backup  # lazy: start-up time

    number = commands.backup_number(args.number)
    committed: BackupResult | None = None
    bar = progress("backup", commands.verbosity(args))
    try:
        # Seen by the daemon: the pid file while it runs, then the outcome (metrics).
        with activity.tracking(settings.runtime_dir, "backup", number, announce=True) as run:
            try:
                committed = backup(settings, number, bar)
            except PartialBackup as exc:  # committed, but BACKUP_STRICT: still reported (exit 3)
                committed = exc.result if isinstance(exc.result, BackupResult) else None
                raise
            run.warnings = activity.warnings_from(committed)
    finally:
        bar.close()
        if args.json and committed is not None:
            from jenkins_backup.cli.reports import backup_report

            print_json(backup_report(committed))
    return 0
