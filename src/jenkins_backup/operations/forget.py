"""The forget operation: remove one backup; its data goes at the next prune."""

from __future__ import annotations

import logging

from jenkins_backup.errors import SnapshotNotFound
from jenkins_backup.operations.common import existing_repository
from jenkins_backup.settings import Settings

log = logging.getLogger(__name__)


def forget(settings: Settings, number: int) -> int:
    """Forget backup ``number`` (and any older snapshot under that number); return how many."""
    repo = existing_repository(settings)
    refs = [r for r in repo.all_snapshot_refs() if r.number == number]
    if not refs:
        raise SnapshotNotFound(f"backup {number} does not exist")
    repo.remove_snapshots(refs)
    log.info("forgot backup %d; its data is removed by a later prune", number)
    return len(refs)
