"""`jenkins-backup jobs N`: the catalogue of a backup in Jenkins terms."""

from __future__ import annotations

import argparse
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.cli.output import print_json, print_table
from jenkins_backup.settings import Settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "jobs", help="the jobs, folders and multibranch projects of backup N, with their builds"
    )
    p.add_argument("number", help="the backup number")
    p.add_argument("--json", action="store_true", help="print a JSON array on stdout")
    commands.common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations.browse import jobs  # lazy: start-up time

    found = jobs(settings, commands.backup_number(args.number))
    if args.json:
        print_json(found)
        return 0
    rows = [("JOB", "KIND", "BUILDS", "LAST BUILD (UTC)")]
    rows += [(j.name, j.kind, j.builds or "-", j.last_build or "-") for j in found]
    print_table(rows)
    return 0
