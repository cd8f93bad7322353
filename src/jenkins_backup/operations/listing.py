"""The list operation: every backup with its commit time, size, new data, tags and pin."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from jenkins_backup.errors import BackupError
from jenkins_backup.operations.common import existing_repository
from jenkins_backup.repository.pins import pinned_ids
from jenkins_backup.repository.snapshot import Unreadable, iso_time
from jenkins_backup.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackupInfo:
    number: int
    committed_at: str
    files: int
    bytes: int
    bytes_added: int
    scope: str
    intact: bool
    encrypted: bool = False  # a repository setting, repeated per row so --json stays an array
    # What the backup could not read and does not hold: {"count": n, "paths": [first few]}.
    warnings: Unreadable = field(default_factory=Unreadable)
    tags: tuple[str, ...] = ()  # given at backup time
    pinned: bool | None = False  # None: the pins could not be read


def list_backups(settings: Settings) -> list[BackupInfo]:
    """Oldest commit first; a damaged snapshot object still shows, unreadable."""
    repo = existing_repository(settings)
    enc = repo.codec.encrypted
    log.info("repository %s is %sencrypted", repo.storage.describe(), "" if enc else "not ")
    try:
        pins: frozenset[bytes] | None = pinned_ids(repo)
    except BackupError as exc:  # shown as unknown; never hides a backup
        log.warning("pins cannot be read: %s", exc)
        pins = None
    out: list[BackupInfo] = []
    for ref in repo.snapshot_refs():
        pinned = None if pins is None else ref.id in pins
        try:
            snap = repo.load_snapshot(ref)
        except BackupError:  # shown as damaged; never hides the others
            snap = None
        if snap is None:
            out.append(
                BackupInfo(
                    ref.number, iso_time(ref.time_ns), 0, 0, 0, "", False, enc, pinned=pinned
                )
            )
            continue
        out.append(
            BackupInfo(
                snap.number,
                snap.committed_at,
                snap.stats.files,
                snap.stats.bytes,
                snap.stats.bytes_added,
                snap.scope,
                True,
                enc,
                snap.unreadable,
                snap.tags,
                pinned,
            )
        )
    return out
