"""`jenkins-backup restore N|latest`: the operator's restore action, the init container, and
the admin's partial restore (one job, some builds, some paths; elsewhere; previewed)."""

from __future__ import annotations

import argparse
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.cli.output import print_json, progress
from jenkins_backup.errors import RestoreDamaged
from jenkins_backup.settings import Settings

_DESCRIPTION = """\
Restore backup N (or 'latest', the newest whole backup) into JENKINS_HOME.

Restore is an overlay: files the backup lacks are left where they are, unless --delete is
given. Paths outside the scope (workspaces, whatever BACKUP_SCOPE and BACKUP_EXCLUDE leave out)
are never touched. --job, --builds, --include and --exclude restore a part only; together a
path must satisfy all of them.
"""


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "restore",
        help="restore backup N (or 'latest') into JENKINS_HOME, or a part of it",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("number", help="the backup number, or 'latest'")
    p.add_argument(
        "--job",
        action="append",
        default=[],
        metavar="FULL/NAME",
        help="restore only this job, folder or multibranch project (Jenkins full name, e.g."
        " folder/sub/job or project/branch; repeatable)",
    )
    p.add_argument(
        "--builds",
        metavar="RANGES",
        help="with one --job: restore only these builds (e.g. 120-140,150), not the job's"
        " configuration; nextBuildNumber is raised above the highest build if needed",
    )
    p.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="PATTERN",
        help="restore only paths matching PATTERN (the backup's pattern syntax; repeatable)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="do not restore paths matching PATTERN (repeatable)",
    )
    p.add_argument(
        "--target", metavar="DIR", help="restore into DIR instead of JENKINS_HOME (created)"
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be written (+), replaced (M) and removed (-), write nothing",
    )
    p.add_argument(
        "--delete",
        action="store_true",
        help="make the restored part equal to the backup: remove files in it that the backup"
        " lacks (within the scope only; without it restore is an overlay)",
    )
    commands.json_option(p, "what was written (with --dry-run: what would be) as JSON")
    commands.common_options(p, home=True, patterns=False)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations import activity
    from jenkins_backup.operations.restore import (  # lazy: start-up time
        RestoreOptions,
        RestoreResult,
        restore,
    )

    number = None if args.number == "latest" else commands.backup_number(args.number)
    options = RestoreOptions(
        includes=tuple(args.include),
        excludes=tuple(args.exclude),
        jobs=tuple(args.job),
        builds=args.builds,
        target=args.target,
        dry_run=args.dry_run,
        delete=args.delete,
    )
    options.check()  # a refused combination fails before the repository is opened
    if options.dry_run:
        planned = restore(settings, number, None, options).planned
        if args.json:
            print_json([{"op": p.op, "path": p.path} for p in planned])
        for item in planned if not args.json else ():
            print(f"{item.op} {item.path}")
        return 0
    result: RestoreResult | None = None
    bar = progress("restore", commands.verbosity(args))
    try:
        with activity.tracking(settings.runtime_dir, "restore", number or 0) as run:  # metrics
            try:
                result = restore(settings, number, bar, options)
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
