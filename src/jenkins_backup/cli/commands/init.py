"""`jenkins-backup init`: create an empty repository (encrypted when a key is set)."""

from __future__ import annotations

import argparse
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.cli.output import print_json
from jenkins_backup.settings import Settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "init",
        help="create the repository (encrypted with BACKUP_ENCRYPTION_KEY(_FILE) when set)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON object on stdout")
    commands.common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations.init import init  # lazy: start-up time

    result = init(settings)
    if args.json:
        print_json(result)
    return 0
