"""`jenkins-backup pin N` / `unpin N`: keep a backup whatever retention says, or stop keeping it."""

from __future__ import annotations

import argparse
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.settings import Settings


def register(sub: Any) -> None:
    for name, help_text in (
        ("pin", "pin backup N: retention never forgets it (only forget N --force does)"),
        ("unpin", "unpin backup N: retention applies to it again"),
    ):
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        p.add_argument("number", help="the backup number")
        commands.common_options(p)
        p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations import pins  # lazy: start-up time

    number = commands.backup_number(args.number)
    if args.command == "pin":
        changed = pins.pin(settings, number)
        print(f"backup {number} {'pinned' if changed else 'was already pinned'}")
    else:
        changed = pins.unpin(settings, number)
        print(f"backup {number} {'unpinned' if changed else 'was not pinned'}")
    return 0
