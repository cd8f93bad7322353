"""Where each object lives in the store: every key prefix spelled once, with its parsers.

The layout (docs/FORMAT.md)::

    config                                      the repository config
    data/<id[:2]>/<id>                          packs, named by BLAKE3 of their bytes
    index/<id>                                  index files, named by the id of their plaintext
    snapshots/<commit ns:020>-<number>-<id>     committed backups
    forgotten/<forget ns:020>-<snapshot name>   tombstones of forgotten backups
    condemned/<condemn ns:020>/<id>             packs prune will delete after the grace period
    gc/last-run                                 prune's marker: when a collection last started
    gc/clock                                    written by a backup to read the store's clock
    gc/now                                      stamped by prune --now as it starts and ends
    pins/<snapshot id>                          a pinned backup: retention never forgets it
    running/<32 hex digits>                     a backup in flight (advisory, expires)

Temporary files of the local directory store (``tmp/``) belong to that store, not to the format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jenkins_backup.errors import CorruptObject
from jenkins_backup.repository.codec import parse_id
from jenkins_backup.repository.snapshot import SnapshotRef
from jenkins_backup.storage.base import ObjectInfo

CONFIG = "config"
DATA = "data/"
INDEX = "index/"
SNAPSHOTS = "snapshots/"
FORGOTTEN = "forgotten/"
CONDEMNED = "condemned/"
GC_MARKER = "gc/last-run"
CLOCK_PROBE = "gc/clock"
NOW_MARKER = "gc/now"
PINS = "pins/"
RUNNING = "running/"
#: Every prefix of objects the repository stores (a location may hold other files too).
STORED = (DATA, INDEX, SNAPSHOTS, CONDEMNED, FORGOTTEN, PINS, RUNNING)

_SNAPSHOT = re.compile(r"^snapshots/(\d{20})-(\d{1,19})-([0-9a-f]{64})$")
_PIN = re.compile(r"^pins/([0-9a-f]{64})$")
_RUNNING = re.compile(r"^running/[0-9a-f]{32}$")


def object_name(key: str) -> str:
    """The last segment of a key: the hex id that names index files and condemned lists."""
    return key.rsplit("/", 1)[-1]


def written_ns(info: ObjectInfo) -> int:
    """The latest time the object may have been written, by the store's clock, in ns. S3 and
    Azure report whole seconds, truncated: an object stamped 12:00:00 may be from 12:00:00.99,
    and taking the stamp as is would make a pack in flight look up to a second older."""
    mtime = info.mtime + 1.0 if float(info.mtime).is_integer() else info.mtime
    return int(mtime * 1e9)


# -- packs ---------------------------------------------------------------------------------


def pack_key(pack_id: bytes) -> str:
    h = pack_id.hex()
    return f"{DATA}{h[:2]}/{h}"


def pack_id_from_key(key: str) -> bytes | None:
    """The pack id a ``data/`` key names, or None for anything else found there."""
    return parse_id(object_name(key))


# -- index files and condemned lists -----------------------------------------------------


def index_key(plain_id: bytes) -> str:
    return INDEX + plain_id.hex()


def condemned_key(time_ns: int, plain_id: bytes) -> str:
    return f"{CONDEMNED}{time_ns:020d}/{plain_id.hex()}"


def condemned_time(key: str) -> int:
    """When the packs of a condemned list were condemned (ns since the epoch)."""
    stamp = key[len(CONDEMNED) :].split("/", 1)[0]
    if not stamp.isdigit():
        raise CorruptObject(f"{key} has a malformed name")
    return int(stamp)


# -- snapshots and tombstones ------------------------------------------------------------


def snapshot_key(time_ns: int, number: int, snap_id: bytes) -> str:
    return f"{SNAPSHOTS}{time_ns:020d}-{number}-{snap_id.hex()}"


def parse_snapshot_key(key: str) -> SnapshotRef | None:
    m = _SNAPSHOT.match(key)
    if not m or int(m.group(1)) >= 2**63 or int(m.group(2)) >= 2**63:
        return None  # not ours: times and numbers are signed 64-bit, like the operator's
    return SnapshotRef(int(m.group(1)), int(m.group(2)), bytes.fromhex(m.group(3)), key)


@dataclass(frozen=True, order=True)
class Tombstone:
    """A forgotten snapshot: the object unchanged, under the time it was forgotten."""

    forgotten_ns: int  # by the forgetter's clock
    ref: SnapshotRef  # the snapshot as it was listed before it was forgotten
    key: str  # where the tombstone is
    stamped_ns: int = 0  # the store's time stamp on it, when listed

    @property
    def since_ns(self) -> int:
        """When it was forgotten, at the latest: the later of the name's and the store's time."""
        return max(self.forgotten_ns, self.stamped_ns)

    @property
    def stored(self) -> SnapshotRef:
        """The ref to read the tombstone's object with (its own key)."""
        return SnapshotRef(self.ref.time_ns, self.ref.number, self.ref.id, self.key)


def tombstone_key(forget_ns: int, ref: SnapshotRef) -> str:
    return f"{FORGOTTEN}{forget_ns:020d}-{ref.key[len(SNAPSHOTS) :]}"


def parse_tombstone(key: str) -> Tombstone | None:
    name = key[len(FORGOTTEN) :] if key.startswith(FORGOTTEN) else ""
    if len(name) < 22 or not name[:20].isdigit() or name[20] != "-":
        return None
    ref = parse_snapshot_key(SNAPSHOTS + name[21:])
    return Tombstone(int(name[:20]), ref, key) if ref else None


# -- pins and backups in flight ------------------------------------------------------------


def pin_key(snap_id: bytes) -> str:
    return PINS + snap_id.hex()


def parse_pin_key(key: str) -> bytes | None:
    """The snapshot id a ``pins/`` key names, or None when the name is not a pin's."""
    m = _PIN.match(key)
    return bytes.fromhex(m.group(1)) if m else None


def running_key(token: str) -> str:
    return RUNNING + token


def is_running_key(key: str) -> bool:
    return bool(_RUNNING.match(key))
