"""`jenkins-backup verify [N] [--quick] [--repair]`: check backups; exit 1 listing every problem."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.cli.output import print_json
from jenkins_backup.errors import VerifyFailed
from jenkins_backup.settings import Settings

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "verify", help="check that backups are complete and read back with the right hashes"
    )
    p.add_argument("number", nargs="?", help="the backup to check (default: every backup)")
    p.add_argument(
        "--quick", action="store_true", help="only check that every referenced object exists"
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="first rebuild damaged or missing index files from the packs (as `repair`)",
    )
    commands.json_option(p, "the report as a JSON object (also when problems are found)")
    commands.common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations import activity
    from jenkins_backup.operations.verify import verify  # lazy: start-up time

    number = commands.backup_number(args.number) if args.number is not None else None
    repaired: dict[str, int] | None = None
    if args.repair:
        from jenkins_backup.operations.repair import repair

        stats = repair(settings)
        repaired = dataclasses.asdict(stats)
        log.info(
            "repaired the index: %d damaged index file(s) removed, %d pack(s) indexed again",
            stats.damaged_files,
            stats.packs_indexed,
        )
    with activity.tracking(settings.runtime_dir, "verify", number or 0) as run:  # metrics
        result = verify(settings, number, quick=args.quick)
        run.warnings = {"damaged_backups_found": len(result.damaged)}
        if result.problems:
            run.result = "damaged"
    mode = "quick" if args.quick else "full"
    if args.json:
        from jenkins_backup.cli.reports import verify_report

        print_json(verify_report(result, quick=args.quick, repaired=repaired))
    if result.problems:
        for problem in result.problems:
            print(problem, file=sys.stderr)
        if result.not_checked:
            print(f"not checked: {result.not_checked}", file=sys.stderr)
        damaged = " ".join(str(n) for n in result.damaged) or "none"
        raise VerifyFailed(
            f"verify ({mode}) found {len(result.problems)} problem(s) in "
            f"{len(result.checked)} backup(s); damaged backups: {damaged}"
        )
    log.info("verified %d backup(s) (%s): no problems", len(result.checked), mode)
    if result.not_checked:
        log.info("not checked: %s", result.not_checked)
    return 0
