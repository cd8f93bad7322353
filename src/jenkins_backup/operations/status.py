"""The status operation: what an admin or a script checks first, in one small report.

Reads the snapshot listing, the newest snapshot and its root tree, and one listing per stored
prefix for the size; the last failure comes from the runtime directory the commands of this
container record their runs in (not from the repository), running backups from there and from
the repository's in-flight markers (backups of any pod).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any

from jenkins_backup.errors import BackupError
from jenkins_backup.operations import activity
from jenkins_backup.operations.common import existing_repository, latest_intact
from jenkins_backup.repository.inflight import in_flight
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.snapshot import iso_time
from jenkins_backup.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StatusReport:
    location: str
    backups: int  # committed backups (numbers), damaged ones included
    size_bytes: int  # everything the repository stores
    encrypted: bool
    newest_intact: int | None  # its number; None when no backup reads back
    newest_committed_at: str | None
    newest_age_seconds: float | None
    last_failure_number: int | None  # the last failed backup recorded in the runtime directory
    last_failure_at: str | None
    running: tuple[int, ...]  # numbers of backups in flight (runtime directory and markers)
    retention: dict[str, Any]  # the policy in force (None: not limited)


def status(settings: Settings, now: float | None = None) -> StatusReport:
    now = time.time() if now is None else now
    repo = existing_repository(settings)
    refs = repo.snapshot_refs()
    found = latest_intact(repo)
    recorded = activity.read_status(settings.runtime_dir)
    failed = recorded.last_failure_time > 0
    return StatusReport(
        location=repo.storage.describe(),
        backups=len(refs),
        size_bytes=repo.stored_bytes(),
        encrypted=repo.codec.encrypted,
        newest_intact=found[1].number if found else None,
        newest_committed_at=found[1].committed_at if found else None,
        newest_age_seconds=max(0.0, now - found[1].time_ns / 1e9) if found else None,
        last_failure_number=recorded.last_failure_number if failed else None,
        last_failure_at=iso_time(int(recorded.last_failure_time * 1e9)) if failed else None,
        running=_running(repo, settings, now),
        retention=dataclasses.asdict(settings.retention),
    )


def _running(repo: Repository, settings: Settings, now: float) -> tuple[int, ...]:
    """Numbers of the backups in flight: this container's, and those the repository's markers
    show (unexpired and readable)."""
    numbers = {r.number for r in activity.running(settings.runtime_dir)}
    try:
        markers = in_flight(repo, int(now * 1e9), settings.timeout, settings.prune_grace)
    except BackupError as exc:
        log.warning("the markers of backups in flight cannot be read: %s", exc)
        markers = []
    numbers |= {m.number for m in markers if m.number is not None}
    return tuple(sorted(numbers))
