"""`jenkins-backup prune [--dry-run] [--keep-*]`: apply retention, remove unneeded data."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.cli.output import print_json
from jenkins_backup.errors import PruneBlocked
from jenkins_backup.settings import Settings
from jenkins_backup.units import human_size

log = logging.getLogger(__name__)

_KEEP = {
    "--keep-last": "BACKUP_KEEP_LAST",
    "--keep-hourly": "BACKUP_KEEP_HOURLY",
    "--keep-daily": "BACKUP_KEEP_DAILY",
    "--keep-weekly": "BACKUP_KEEP_WEEKLY",
    "--keep-monthly": "BACKUP_KEEP_MONTHLY",
}


class _Keep(argparse.Action):
    """Collects the --keep-* flags into ``args.keep``, keyed by their environment variable."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        keep = dict(getattr(namespace, "keep", None) or {})
        keep[_KEEP[option_string or ""]] = str(values)
        namespace.keep = keep


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "prune", help="forget backups the retention policy does not keep and remove their data"
    )
    p.add_argument("--dry-run", action="store_true", help="say what would go; change nothing")
    for flag, var in _KEEP.items():
        p.add_argument(flag, metavar="N", action=_Keep, help=f"env {var}")
    commands.json_option(p, "the plan (--dry-run) or the result as a JSON object")
    commands.common_options(p)
    p.set_defaults(run=run, keep=None)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations.common import existing_repository
    from jenkins_backup.operations.prune import check_grace, prune  # lazy: start-up time

    check_grace(settings)  # a setting that could delete data is refused before anything else
    existing_repository(settings)  # a mistyped location is exit 10, not "nothing to prune"
    result = prune(settings, dry_run=args.dry_run)
    gc = result.gc
    if args.json:
        from jenkins_backup.cli.reports import prune_report

        print_json(prune_report(result))
    else:
        # A dry run shows its plan (stdout); a prune reports what it did, as logs (stderr).
        say = print if result.dry_run else log.info
        would = "would " if result.dry_run else ""
        if result.forgotten:
            say(f"{would}forget backups: {' '.join(str(n) for n in result.forgotten)}")
        say(f"keep backups: {' '.join(str(n) for n in result.kept) or '(none)'}")
        say(
            f"{would}delete {gc.packs_deleted} pack(s), freeing {human_size(gc.bytes_freed)}; "
            f"{would}condemn {gc.packs_condemned} pack(s) ({human_size(gc.bytes_condemned)}, "
            f"deleted after the grace period); {would}repack {gc.packs_repacked}; "
            f"{would}rescue {gc.packs_rescued}"
        )
    for problem in gc.problems:
        print(problem, file=sys.stderr)
    if gc.blocked:
        raise PruneBlocked(f"prune removed no data: {gc.blocked}")
    return 0
