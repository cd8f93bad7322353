"""The shrink guard: a backup that holds far less than the newest one is refused.

A restore that failed, followed by Jenkins starting empty, or a volume that did not mount,
shows up as a home that suddenly lost most of its files; backing it up would make the empty
state ``latest`` and let retention age out the real history. So a backup whose scope lost more
than half of the files or of the bytes of the newest intact backup is refused, unless
BACKUP_ALLOW_SHRINK=true (or ``backup --allow-shrink``) says the loss is intended.

Small homes are not guarded: each rule applies only when the newest backup reached its floor,
so that deleting a few builds of a new Jenkins never blocks its backups.
"""

from __future__ import annotations

from jenkins_backup.errors import ShrinkRefused
from jenkins_backup.repository.snapshot import Snapshot, SnapshotStats
from jenkins_backup.units import human_size

#: The files rule applies when the newest backup held at least this many files.
FLOOR_FILES = 100
#: The bytes rule applies when the newest backup held at least this many bytes.
FLOOR_BYTES = 16 << 20


def check_shrink(newest: Snapshot | None, stats: SnapshotStats, *, allowed: bool) -> None:
    """Raise ShrinkRefused if ``stats`` lost more than half of ``newest``'s files or bytes."""
    if newest is None or allowed:
        return
    old = newest.stats
    files_lost = old.files >= FLOOR_FILES and 2 * stats.files < old.files
    bytes_lost = old.bytes >= FLOOR_BYTES and 2 * stats.bytes < old.bytes
    if files_lost or bytes_lost:
        raise ShrinkRefused(
            f"backup refused: the scope holds {stats.files} files ({human_size(stats.bytes)}) "
            f"where backup {newest.number} held {old.files} ({human_size(old.bytes)}); "
            "set BACKUP_ALLOW_SHRINK=true (or --allow-shrink) if this loss is intended"
        )
