"""The forget operation: remove one backup; its data goes at the next prune."""

from __future__ import annotations

import logging

from jenkins_backup.errors import BackupPinned, SnapshotNotFound
from jenkins_backup.operations.common import existing_repository
from jenkins_backup.repository.pins import pinned_ids, remove_pin
from jenkins_backup.settings import Settings

log = logging.getLogger(__name__)


def forget(settings: Settings, number: int, *, force: bool = False) -> int:
    """Forget backup ``number`` (and any older snapshot under that number); return how many.

    A pinned backup is forgotten only with ``force`` (the pin goes with it): a pin says "keep",
    and a mistyped number must not undo it.
    """
    repo = existing_repository(settings)
    refs = [r for r in repo.all_snapshot_refs() if r.number == number]
    if not refs:
        raise SnapshotNotFound(f"backup {number} does not exist")
    if not force:  # with --force the pin state does not matter (nor can it be unknown)
        pins = pinned_ids(repo)
        if any(r.id in pins for r in refs):
            raise BackupPinned(
                f"backup {number} is pinned: unpin it first, or run forget {number} --force"
            )
    repo.remove_snapshots(refs)
    for ref in refs:  # a pin outliving its backup would only be litter
        remove_pin(repo, ref.id)
    log.info("forgot backup %d; its data is removed by a later prune", number)
    return len(refs)
