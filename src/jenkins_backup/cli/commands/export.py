"""`jenkins-backup export N FILE|-`: backup N as a plain .tar.zst (`tar --zstd -xf` reads it)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.cli.output import progress
from jenkins_backup.errors import UsageError
from jenkins_backup.settings import Settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "export", help="write backup N as a .tar.zst file ('-' for stdout)"
    )
    p.add_argument("number", help="the backup number")
    p.add_argument("file", help="the archive to write, or '-' for stdout")
    commands.common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations.export_archive import export_archive  # lazy: start-up time

    number = commands.backup_number(args.number)
    if args.file == "-":
        if sys.stdout.isatty():
            raise UsageError("refusing to write a binary archive to a terminal")
        sys.stdout.flush()
        export_archive(settings, number, sys.stdout.buffer)
        return 0
    bar = progress("export", commands.verbosity(args))
    try:
        export_archive(settings, number, args.file, bar)
    finally:
        bar.close()
    return 0
