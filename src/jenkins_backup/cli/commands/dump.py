"""`jenkins-backup dump N PATH`: one file's bytes (a directory as a tar stream) on stdout."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.errors import UsageError
from jenkins_backup.settings import Settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "dump",
        help="write one file of backup N to stdout (a directory: an uncompressed tar stream)",
    )
    p.add_argument("number", help="the backup number")
    p.add_argument("path", help="a path relative to JENKINS_HOME ('' or '/': the whole home)")
    commands.common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations.browse import dump  # lazy: start-up time

    number = commands.backup_number(args.number)
    if sys.stdout.isatty():
        raise UsageError("dump writes bytes to stdout: redirect it to a file or a pipe")
    dump(settings, number, args.path, sys.stdout.buffer)
    return 0
