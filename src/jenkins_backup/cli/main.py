"""Entry point: parse arguments, load settings, run one operation, map errors to exit codes.

Exit codes: 0 success, 1 failure, 2 usage error, 3 a backup committed without some unreadable
files when BACKUP_STRICT asked for a complete one, 10 no repository at that location (every
command but backup, latest, init and restore latest), 12 the encryption key is wrong, missing or
superfluous. The last stderr line of a failure is one short,
stable sentence: the operator embeds it in its own error and stops after 10 identical ones.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import threading
from collections.abc import Sequence

from jenkins_backup import __version__
from jenkins_backup.cli import commands
from jenkins_backup.cli.output import erase_progress, setup_logging
from jenkins_backup.errors import BackupError, NoRepository, PartialBackup, UsageError, WrongKey
from jenkins_backup.settings import QUICK_TIMEOUT

log = logging.getLogger("jenkins_backup")
# Exit codes scripts can act on; every other BackupError is 1 (see the module docstring).
_EXIT_CODES: dict[type[BackupError], int] = {NoRepository: 10, WrongKey: 12}
_QUICK_COMMANDS = {"latest", "list"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jenkins-backup",
        description="Incremental, deduplicated backup and restore of JENKINS_HOME.",
    )
    parser.add_argument("--version", action="version", version=f"jenkins-backup {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in commands.ALL:
        module.register(sub)
    return parser


def _watchdog(seconds: float, command: str) -> threading.Timer:
    """Bound the command's time: the operator applies none, and a hang blocks it entirely.

    A hard exit is safe: every write is create-only or atomic, so an interrupted command leaves
    the repository as it was plus garbage that later runs clean up.
    """

    def fire() -> None:
        erase_progress()
        sys.stderr.write(f"jenkins-backup: error: {command} timed out after {seconds:g} seconds\n")
        sys.stderr.flush()
        os._exit(1)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


def main(argv: Sequence[str] | None = None) -> int:
    # Walking a home allocates millions of short-lived objects and creates almost no cycles:
    # the default thresholds would run full collections over and over.
    gc.set_threshold(100_000, 50, 100)
    args_list = list(sys.argv[1:] if argv is None else argv)
    verbosity = 0
    try:
        parser = build_parser()
        args = parser.parse_args(args_list)
        verbosity = args.verbose - args.quiet
        setup_logging(verbosity)
        settings = commands.settings_from(args)
        seconds = settings.timeout
        if not settings.timeout_explicit and args.command in _QUICK_COMMANDS:
            seconds = QUICK_TIMEOUT
        timer = _watchdog(seconds, args.command) if args.command != "daemon" else None
        try:
            result: int = args.run(args, settings)
        finally:
            if timer is not None:
                timer.cancel()
        return result
    except UsageError as exc:
        print(f"jenkins-backup: usage error: {exc}", file=sys.stderr)
        return 2
    except PartialBackup as exc:
        print(f"jenkins-backup: error: {exc}", file=sys.stderr)
        return 3
    except BackupError as exc:
        print(f"jenkins-backup: error: {exc}", file=sys.stderr)
        return _EXIT_CODES.get(type(exc), 1)
    except KeyboardInterrupt:
        print("jenkins-backup: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:
        if verbosity > 0:
            raise
        where = f" ({os.fsdecode(exc.filename)})" if exc.filename else ""
        print(f"jenkins-backup: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
