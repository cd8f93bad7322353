"""The pin and unpin operations: mark a backup that retention must never forget, or unmark it."""

from __future__ import annotations

import time

from jenkins_backup.errors import SnapshotNotFound
from jenkins_backup.operations.common import existing_repository
from jenkins_backup.repository.pins import remove_pin, write_pin
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.snapshot import SnapshotRef
from jenkins_backup.settings import Settings


def _backup(repo: Repository, number: int) -> SnapshotRef:
    """The backup ``number`` names (the newest snapshot of that number)."""
    for ref in repo.snapshot_refs():
        if ref.number == number:
            return ref
    raise SnapshotNotFound(f"backup {number} does not exist")


def pin(settings: Settings, number: int) -> bool:
    """Pin backup ``number``; False when it was pinned already."""
    repo = existing_repository(settings)
    return write_pin(repo, _backup(repo, number), time.time_ns())


def unpin(settings: Settings, number: int) -> bool:
    """Unpin backup ``number``; False when it was not pinned."""
    repo = existing_repository(settings)
    return remove_pin(repo, _backup(repo, number).id)
