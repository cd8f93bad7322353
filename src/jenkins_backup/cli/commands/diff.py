"""`jenkins-backup diff N M [--jobs] [-- PATH]`: what changed between two backups."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.cli.output import print_json
from jenkins_backup.errors import UsageError
from jenkins_backup.settings import Settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "diff",
        help="paths added (+), removed (-) and changed (M) from backup N to backup M",
        description="Without options: every path that differs (content, type, mode or link "
        "target; a new mtime alone is no change). --jobs: the same in Jenkins terms. "
        "-- PATH: a unified diff of one file.",
    )
    p.add_argument("old", help="the older backup number")
    p.add_argument("new", help="the newer backup number")
    p.add_argument("path", nargs="?", help="after --: one file to compare as text")
    p.add_argument(
        "--jobs", action="store_true", help="jobs added and removed, builds, configurations"
    )
    p.add_argument("--json", action="store_true", help="print a JSON object on stdout")
    commands.common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations import browse  # lazy: start-up time

    old, new = commands.backup_number(args.old), commands.backup_number(args.new)
    if args.path is not None:
        if args.jobs or args.json:
            raise UsageError("diff -- PATH prints a unified diff: no --jobs or --json with it")
        sys.stdout.write(browse.diff_file(settings, old, new, args.path))
        return 0
    if args.jobs:
        jd = browse.diff_jobs(settings, old, new)
        if args.json:
            print_json({**_fields(jd), "summary": jd.summary})
            return 0
        for c in jd.changes:
            if c.op == "+":
                print(f"+ {c.name}" + (f" (builds {c.builds_added})" if c.builds_added else ""))
            elif c.op == "-":
                print(f"- {c.name}")
            else:
                what = []
                if c.builds_added:
                    what.append(f"+builds {c.builds_added}")
                if c.builds_removed:
                    what.append(f"-builds {c.builds_removed}")
                if c.config_changed:
                    what.append("configuration changed")
                print(f"M {c.name}: {', '.join(what)}")
        print(jd.summary)
        return 0
    d = browse.diff(settings, old, new)
    if args.json:
        print_json(d)
        return 0
    for pc in d.changes:
        print(f"{pc.op} {pc.path}")
    print(f"{d.added} added, {d.removed} removed, {d.changed} changed")
    return 0


def _fields(value: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
