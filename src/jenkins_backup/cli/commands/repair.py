"""`jenkins-backup repair`: rebuild damaged or missing index files from the packs."""

from __future__ import annotations

import argparse
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.settings import Settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "repair", help="rebuild damaged or missing index files from the packs' own headers"
    )
    commands.common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations.repair import repair  # lazy: start-up time

    stats = repair(settings)
    print(
        f"repaired the index: {stats.damaged_files} damaged index file(s) removed, "
        f"{stats.packs_indexed} pack(s) ({stats.blobs_indexed} blobs) indexed again"
    )
    return 0
