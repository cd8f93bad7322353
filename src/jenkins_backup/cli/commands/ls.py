"""`jenkins-backup ls N [PATH]`: the entries of a backup, without restoring it."""

from __future__ import annotations

import argparse
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.cli.output import print_json, print_table
from jenkins_backup.settings import Settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "ls", help="list the files of backup N (a directory, or the home)"
    )
    p.add_argument("number", help="the backup number")
    p.add_argument("path", nargs="?", default="", help="a path relative to JENKINS_HOME")
    p.add_argument("--recursive", "-R", action="store_true", help="everything below PATH too")
    p.add_argument("--json", action="store_true", help="print a JSON array on stdout")
    commands.common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations.browse import ls  # lazy: start-up time

    found = list(
        ls(settings, commands.backup_number(args.number), args.path, recursive=args.recursive)
    )
    if args.json:
        print_json(found)
        return 0
    print_table(
        [
            (
                f.filemode,
                str(f.size),
                f.mtime,
                f.path + (f" -> {f.target}" if f.target is not None else ""),
            )
            for f in found
        ],
        right=(1,),
    )
    return 0
