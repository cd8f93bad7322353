"""The latest operation (the operator's getLatestAction)."""

from __future__ import annotations

from dataclasses import dataclass

from jenkins_backup.operations.common import latest_restorable, open_repository
from jenkins_backup.settings import Settings


@dataclass(frozen=True)
class LatestResult:
    number: int  # -1: the repository holds no backup at all
    skipped: int  # newer backups skipped because they are damaged


def latest_result(settings: Settings) -> LatestResult:
    """The newest backup that can be restored whole, and how many newer ones were skipped.

    -1 only when there is no backup at all; backups that exist and none restorable raise
    NoRestorableBackup, and unreachable storage raises StorageError.
    """
    repo = open_repository(settings)
    found = latest_restorable(repo) if repo is not None else None
    if found is None:
        return LatestResult(-1, 0)
    return LatestResult(found.ref.number, found.skipped)


def latest(settings: Settings) -> int:
    """The number of the newest restorable backup, or -1 when the repository holds none."""
    return latest_result(settings).number
