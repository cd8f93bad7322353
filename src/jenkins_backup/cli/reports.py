"""The ``--json`` documents of the commands that act (backup, restore, verify, prune).

Each is built here from the operation's result, field by field, so that the documented fields
(docs/json.md) do not move when an internal record gains or renames one.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported by the commands only with --json: start-up time
    from jenkins_backup.operations.backup import BackupResult
    from jenkins_backup.operations.prune import PruneResult
    from jenkins_backup.operations.restore import RestoreResult
    from jenkins_backup.operations.verify import VerifyResult
    from jenkins_backup.repository.snapshot import Unreadable


def _unreadable(u: Unreadable) -> dict[str, Any]:
    return {"count": u.count, "paths": list(u.paths)}


def backup_report(result: BackupResult) -> dict[str, Any]:
    """The committed backup: the fields of a ``list --json`` row, plus what this run did."""
    snap, stats = result.snapshot, result.snapshot.stats
    return {
        "number": result.number,
        "committed_at": snap.committed_at,
        "scope": snap.scope,
        "files": stats.files,
        "dirs": stats.dirs,
        "bytes": stats.bytes,
        "files_read": stats.files_read,
        "bytes_read": stats.bytes_read,
        "blobs_added": stats.blobs_added,
        "bytes_added": stats.bytes_added,
        "warnings": _unreadable(snap.unreadable),
        "replaced": result.replaced,
        "seconds": round(result.seconds, 3),
    }


def restore_report(result: RestoreResult) -> dict[str, Any]:
    """What was written; ``number`` is null when ``latest`` found no backup (nothing written)."""
    s = result.stats
    return {
        "number": result.number,
        "files": s.files if s else 0,
        "files_written": s.files_written if s else 0,
        "files_unchanged": s.files_unchanged if s else 0,
        "bytes_written": s.bytes_written if s else 0,
        "warnings": s.warnings if s else 0,
        "damaged": list(s.damaged) if s else [],
        "skipped_damaged": result.skipped,
        "removed": result.removed,
        "seconds": round(result.seconds, 3),
    }


def verify_report(
    result: VerifyResult, *, quick: bool, repaired: dict[str, int] | None
) -> dict[str, Any]:
    """Every problem found; ``ok`` is false exactly when verify exits non-zero."""
    return {
        "ok": not result.problems,
        "mode": "quick" if quick else "full",
        "checked": list(result.checked),
        "damaged": list(result.damaged),
        "problems": list(result.problems),
        "damaged_paths": list(result.damaged_paths),
        "bytes_read": result.bytes_read,
        "not_checked": result.not_checked,
        "repaired": repaired,
    }


def prune_report(result: PruneResult) -> dict[str, Any]:
    """The plan (a dry run) or what was done: the same fields either way."""
    return {
        "dry_run": result.dry_run,
        "now": result.now,
        "kept": list(result.kept),
        "forgotten": list(result.forgotten),
        "collect": dataclasses.asdict(result.gc),
    }
