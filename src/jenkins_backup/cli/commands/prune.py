"""`jenkins-backup prune [--dry-run] [--now] [--keep-*]`: apply retention, remove unneeded data."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.cli.output import print_json
from jenkins_backup.errors import PruneBlocked
from jenkins_backup.repository.snapshot import iso_time
from jenkins_backup.settings import Settings
from jenkins_backup.units import human_size

log = logging.getLogger(__name__)

_KEEP = {
    "--keep-last": "BACKUP_KEEP_LAST",
    "--keep-hourly": "BACKUP_KEEP_HOURLY",
    "--keep-daily": "BACKUP_KEEP_DAILY",
    "--keep-weekly": "BACKUP_KEEP_WEEKLY",
    "--keep-monthly": "BACKUP_KEEP_MONTHLY",
    "--keep-within": "BACKUP_KEEP_WITHIN",
    "--keep-tag": "BACKUP_KEEP_TAG",
}
_METAVAR = {"--keep-within": "DURATION", "--keep-tag": "TAG"}
_NOW_HINT = "prune --now frees it at once (only while no backup writes to the repository)"


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
        var = _KEEP[option_string or ""]
        if var == "BACKUP_KEEP_TAG" and keep.get(var):  # repeatable: the tags add up
            keep[var] = f"{keep[var]},{values}"
        else:
            keep[var] = str(values)
        namespace.keep = keep


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "prune", help="forget backups the retention policy does not keep and remove their data"
    )
    p.add_argument("--dry-run", action="store_true", help="say what would go; change nothing")
    p.add_argument(
        "--now",
        action="store_true",
        help="delete unreferenced data at once, without the grace period: safe only while no"
        " backup writes to the repository (refused while one is seen in flight)",
    )
    for flag, var in _KEEP.items():
        more = " (repeatable)" if flag == "--keep-tag" else ""
        p.add_argument(flag, metavar=_METAVAR.get(flag, "N"), action=_Keep, help=f"env {var}{more}")
    commands.json_option(p, "the plan (--dry-run) or the result as a JSON object")
    commands.common_options(p)
    p.set_defaults(run=run, keep=None)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations.common import existing_repository
    from jenkins_backup.operations.prune import check_grace, prune  # lazy: start-up time

    check_grace(settings)  # a setting that could delete data is refused before anything else
    existing_repository(settings)  # a mistyped location is exit 10, not "nothing to prune"
    result = prune(settings, dry_run=args.dry_run, now=args.now)
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
        if gc.packs_waiting:
            say(
                f"{gc.packs_waiting} condemned pack(s) ({human_size(gc.bytes_waiting)}) become"
                f" free after {iso_time(gc.waiting_until_ns)} (the grace period protects"
                f" backups in flight); {_NOW_HINT}"
            )
        if gc.tombstones_pending:
            say(
                f"{gc.tombstones_pending} forgotten backup(s) keep their data until"
                f" {iso_time(gc.tombstones_until_ns)}, then prune condemns it and deletes it a"
                f" grace period later; {_NOW_HINT}"
            )
    for problem in gc.problems:
        print(problem, file=sys.stderr)
    if gc.blocked:
        raise PruneBlocked(f"prune removed no data: {gc.blocked}")
    return 0
