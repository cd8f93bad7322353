"""`jenkins-backup import N FILE` or `import --all DIR|URL`: migrate the old providers' tars."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from jenkins_backup.cli import commands
from jenkins_backup.cli.output import progress
from jenkins_backup.errors import BackupError, UsageError
from jenkins_backup.settings import Settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "import",
        help="import N.tar.gz / N.tar.zstd archives as backups, keeping numbers and times",
        description="import N FILE, or import --all DIR|s3://bucket/prefix",
    )
    p.add_argument("args", nargs="*", metavar="N FILE", help="the backup number and the archive")
    p.add_argument(
        "--all", metavar="SOURCE", help="every numbered archive in a directory or storage URL"
    )
    p.add_argument(
        "--work-dir",
        help="where archives are extracted while imported "
        "(default: a local repository's tmp/, else TMPDIR)",
    )
    commands.common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from jenkins_backup.operations.import_archive import (  # lazy: start-up time
        FAILED,
        import_all,
        import_archive,
    )

    bar = progress("import", commands.verbosity(args))
    try:
        if args.all is not None:
            if args.args:
                raise UsageError("import --all SOURCE takes no other argument")
            result = import_all(settings, args.all, work_dir=args.work_dir, progress=bar)
        else:
            if len(args.args) != 2:
                raise UsageError("usage: import N FILE, or import --all SOURCE")
            number = commands.backup_number(args.args[0])
            import_archive(settings, number, args.args[1], work_dir=args.work_dir, progress=bar)
            return 0
    finally:
        bar.close()
    counts = {s: sum(1 for o in result.outcomes if o.status == s) for s in ("imported", "skipped")}
    failed = [o for o in result.outcomes if o.status == FAILED]
    summary = f"{counts['imported']} imported, {counts['skipped']} skipped, {len(failed)} failed"
    if failed:
        numbers = ", ".join(str(o.number) for o in failed[:10])
        more = ", ..." if len(failed) > 10 else ""
        raise BackupError(f"import incomplete: {summary} (numbers {numbers}{more})")
    logging.getLogger(__name__).info("import done: %s", summary)
    return 0
