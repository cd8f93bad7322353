"""`jenkins-backup list [--json]`: the backups in the repository."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.settings import Settings
from jenkins_backup.units import human_size


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("list", help="list backups")
    p.add_argument("--json", action="store_true", help="print a JSON array on stdout")
    commands.common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations.listing import list_backups  # lazy: start-up time

    backups = list_backups(settings)
    if args.json:
        json.dump([_json(b) for b in backups], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    rows = [("NUMBER", "COMMITTED AT (UTC)", "FILES", "SIZE", "NEW DATA", "PINNED", "TAGS")]
    for b in backups:
        pinned = "?" if b.pinned is None else "yes" if b.pinned else "no"
        tags = ",".join(b.tags) or "-"
        if b.intact:
            rows.append(
                (
                    str(b.number),
                    b.committed_at,
                    str(b.files),
                    human_size(b.bytes),
                    human_size(b.bytes_added),
                    pinned,
                    tags,
                )
            )
        else:
            rows.append((str(b.number), b.committed_at, "?", "damaged", "?", pinned, "?"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print(
            "  ".join(
                c.rjust(w) if i not in (1, 6) else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )
    if not backups:
        print("(no backups)")
    return 0


def _json(b: Any) -> dict[str, Any]:
    return dataclasses.asdict(b)
