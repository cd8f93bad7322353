"""`jenkins-backup status [--json]`: newest intact backup and its age, failures, size."""

from __future__ import annotations

import argparse
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.cli.output import print_json
from jenkins_backup.settings import Settings
from jenkins_backup.units import human_size


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "status", help="newest intact backup and its age, last failure, running, size"
    )
    p.add_argument("--json", action="store_true", help="print a JSON object on stdout")
    commands.common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations.status import status  # lazy: start-up time

    s = status(settings)
    if args.json:
        print_json(s)
        return 0
    print(f"repository: {s.location} ({'encrypted' if s.encrypted else 'not encrypted'})")
    print(f"backups: {s.backups}, {human_size(s.size_bytes)} stored")
    if s.newest_intact is None:
        print("newest intact backup: none")
    else:
        age = s.newest_age_seconds or 0.0
        print(
            f"newest intact backup: {s.newest_intact} at {s.newest_committed_at} "
            f"({age / 3600:.1f} h ago)"
        )
    if s.last_failure_number is not None:
        print(f"last failed backup: {s.last_failure_number} at {s.last_failure_at}")
    print(f"running: {' '.join(map(str, s.running)) or 'none'}")
    policy = {k: v for k, v in s.retention.items() if v not in (None, (), [])}
    print(f"retention: {', '.join(f'{k}={v}' for k, v in policy.items()) or 'none'}")
    return 0
