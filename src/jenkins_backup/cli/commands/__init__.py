"""One module per command: ``register`` adds its parser, ``run`` calls one operation."""

from __future__ import annotations

import argparse
from types import ModuleType

from jenkins_backup import settings as settings_mod
from jenkins_backup.cli.commands import (
    backup,
    daemon,
    diff,
    dump,
    export,
    find,
    forget,
    import_,
    init,
    jobs,
    key,
    latest,
    listing,
    ls,
    pin,
    prune,
    repair,
    restore,
    status,
    verify,
)
from jenkins_backup.errors import UsageError
from jenkins_backup.settings import Settings

ALL: list[ModuleType] = [backup, restore, latest, listing, key, daemon, import_, export]
ALL += [prune, verify, forget, pin, repair, ls, dump, find, diff, jobs, init, status]


def common_options(
    p: argparse.ArgumentParser, *, home: bool = False, patterns: bool = True
) -> None:
    """Options every command takes; each flag has an environment variable of the same meaning.

    ``patterns``: --include/--exclude shape the scope (restore gives them its own meaning:
    they select what is restored, and BACKUP_INCLUDE/EXCLUDE alone shape its scope)."""
    p.add_argument("--repository", "-r", help="repository location (env BACKUP_REPOSITORY)")
    if home:
        p.add_argument("--jenkins-home", help="the Jenkins home directory (env JENKINS_HOME)")
        p.add_argument("--scope", help="jobs | history | full (env BACKUP_SCOPE)")
    if home and patterns:
        p.add_argument(
            "--exclude", action="append", default=[], help="extra exclude pattern (repeatable)"
        )
        p.add_argument(
            "--include", action="append", default=[], help="extra include pattern (repeatable)"
        )
    p.add_argument("--timeout", help="seconds before the command gives up (env BACKUP_TIMEOUT)")
    p.add_argument("--threads", help="worker threads (env BACKUP_THREADS)")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument("-q", "--quiet", action="count", default=0)


def verbosity(args: argparse.Namespace) -> int:
    """-v minus -q: below 0 warnings only and no progress bar, above 0 debug and file lists."""
    return int(getattr(args, "verbose", 0)) - int(getattr(args, "quiet", 0))


def json_option(p: argparse.ArgumentParser, what: str = "a JSON object") -> None:
    """``--json``: the command's report as one document on stdout (fields: docs/json.md)."""
    p.add_argument("--json", action="store_true", help=f"print {what} on stdout")


def settings_from(args: argparse.Namespace) -> Settings:
    return settings_mod.load(
        repository=getattr(args, "repository", None),
        jenkins_home=getattr(args, "jenkins_home", None),
        scope=getattr(args, "scope", None),
        excludes=tuple(getattr(args, "exclude", ())),
        includes=tuple(getattr(args, "include", ())),
        timeout=getattr(args, "timeout", None),
        threads=getattr(args, "threads", None),
        interval=getattr(args, "interval", None),
        metrics_port=getattr(args, "metrics_port", None),
        create=False if getattr(args, "no_create", False) else None,
        keep=getattr(args, "keep", None),  # retention flags: BACKUP_KEEP_* -> value
        allow_shrink=getattr(args, "allow_shrink", False),
        strict=getattr(args, "strict", False),
        tags=tuple(getattr(args, "tag", ())),
    )


def backup_number(text: str) -> int:
    """A backup number as the operator passes it: a positive decimal integer."""
    if not text.isascii() or not text.isdigit() or int(text) < 1 or int(text) >= 2**63:
        raise UsageError(f"backup number must be a positive integer, not {text!r}")
    return int(text)
