"""`jenkins-backup repair`: rebuild damaged or missing index files from the packs."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.cli.output import print_json
from jenkins_backup.settings import Settings

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "repair", help="rebuild damaged or missing index files from the packs' own headers"
    )
    commands.json_option(p)
    commands.common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations.repair import repair  # lazy: start-up time

    stats = repair(settings)
    if args.json:
        print_json(stats)
        return 0
    log.info(
        "repaired the index: %d damaged index file(s) removed, %d pack(s) (%d blobs) indexed again",
        stats.damaged_files,
        stats.packs_indexed,
        stats.blobs_indexed,
    )
    return 0
