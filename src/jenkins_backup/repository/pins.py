"""Pins: a backup retention must never forget, marked after the fact without touching it.

A snapshot is immutable (its name is the hash of its content), so a pin is an object of its own,
``pins/<snapshot id>``, created only (create-only), removed by deleting it. Its existence is the
pin: readers never need its content (a short sealed JSON record for a person reading the store),
so a damaged pin still pins. A name under ``pins/`` that is not a snapshot id makes every pin
state unknown, and retention then forgets nothing (docs/FORMAT.md, "Pins").
"""

from __future__ import annotations

import json

from jenkins_backup.errors import PinStateUnknown
from jenkins_backup.repository import layout
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.snapshot import SnapshotRef


def encode_pin(ref: SnapshotRef, pinned_ns: int) -> bytes:
    """The pin's content: which snapshot and when, for people; no reader depends on it."""
    doc = {"v": 1, "snapshot": ref.key, "pinned_ns": pinned_ns}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def write_pin(repo: Repository, ref: SnapshotRef, pinned_ns: int) -> bool:
    """Pin ``ref``; False when it was pinned already (the older pin is left as it was)."""
    sealed = repo.codec.seal(encode_pin(ref, pinned_ns))
    return repo.storage.put(layout.pin_key(ref.id), sealed, create_only=True)


def remove_pin(repo: Repository, snap_id: bytes) -> bool:
    """Unpin; False when there was no pin."""
    key = layout.pin_key(snap_id)
    if repo.storage.stat(key) is None:
        return False
    repo.storage.delete(key)
    return True


def pinned_ids(repo: Repository) -> frozenset[bytes]:
    """Ids of the pinned snapshots. Raises PinStateUnknown when a name under ``pins/`` is not
    one this version reads (it may pin any backup), and StorageError when the listing fails:
    callers that forget must then forget nothing."""
    found: set[bytes] = set()
    for info in repo.storage.list(layout.PINS):
        snap_id = layout.parse_pin_key(info.key)
        if snap_id is None:
            raise PinStateUnknown(
                f"{info.key} is not a pin this version can read, so any backup may be pinned:"
                " retention forgets nothing until it is removed"
            )
        found.add(snap_id)
    return frozenset(found)
