"""`jenkins-backup find PATTERN...`: which backups hold matching paths, newest first."""

from __future__ import annotations

import argparse
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.cli.output import print_json
from jenkins_backup.settings import Settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "find", help="the backups holding paths that match a pattern, newest first"
    )
    p.add_argument(
        "patterns",
        nargs="+",
        metavar="PATTERN",
        help="the backup's pattern syntax: * within a name, ** across directories; "
        "a pattern without / matches a name at any depth",
    )
    p.add_argument("--json", action="store_true", help="print a JSON array on stdout")
    commands.common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations.browse import find  # lazy: start-up time

    hits = find(settings, args.patterns)
    if args.json:
        print_json(hits)
        return 0
    for hit in hits:
        print(f"backup {hit.number} ({hit.committed_at}): {len(hit.paths)} match(es)")
        for path in hit.paths:
            print(f"  {path}")
    return 0
