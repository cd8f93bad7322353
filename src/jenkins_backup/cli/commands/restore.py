"""`jenkins-backup restore N|latest`: the operator's restore action, and the init container."""

from __future__ import annotations

import argparse
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.cli.output import print_json, progress
from jenkins_backup.errors import RestoreDamaged, UsageError
from jenkins_backup.settings import Settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "restore", help="restore backup N (or 'latest') into JENKINS_HOME"
    )
    p.add_argument("number", help="the backup number, or 'latest'")
    commands.json_option(p, "what was written as a JSON object")
    commands.common_options(p, home=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations import activity
    from jenkins_backup.operations.restore import RestoreResult, restore  # lazy: start-up time

    number = None if args.number == "latest" else commands.backup_number(args.number)
    if args.include or args.exclude:
        # Accepted by every command with a home, but restore writes the whole backup: an
        # option that would be silently ignored is refused (BACKUP_INCLUDE/EXCLUDE shape the
        # backup's scope and stay allowed in the shared environment).
        raise UsageError("restore does not select paths yet: --include and --exclude are refused")
    result: RestoreResult | None = None
    bar = progress("restore", commands.verbosity(args))
    try:
        with activity.tracking(settings.runtime_dir, "restore", number or 0) as run:  # metrics
            try:
                result = restore(settings, number, bar)
            except RestoreDamaged as exc:  # written as far as it could be: still reported
                result = exc.result if isinstance(exc.result, RestoreResult) else None
                raise
            run.warnings = activity.warnings_from(result)
    finally:
        bar.close()
        if args.json and result is not None:
            from jenkins_backup.cli.reports import restore_report

            print_json(restore_report(result))
    return 0
