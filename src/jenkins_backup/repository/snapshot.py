"""Snapshots: the small object whose creation commits a backup.

Its key (repository/layout.py) holds the commit time, the number and the id, so that a listing
alone orders backups by commit time and names their numbers; the id is the hash of the
plaintext, so the name is verified when the object is read.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from jenkins_backup.errors import CorruptObject
from jenkins_backup.repository.codec import parse_id

MAX_SNAPSHOT_BYTES = 1 << 20
_TEXT_FIELDS = ("scope", "hostname", "parent", "program", "source")


@dataclass(frozen=True)
class SnapshotStats:
    files: int = 0
    dirs: int = 0
    bytes: int = 0
    files_read: int = 0
    bytes_read: int = 0
    blobs_added: int = 0
    bytes_added: int = 0  # stored (compressed) bytes of new packs
    warnings: int = 0
    seconds: float = 0.0  # how long the backup took, up to its commit


#: Tags a snapshot may carry, and their length: enough to name a reason, small enough to list.
MAX_TAGS = 16
MAX_TAG_LENGTH = 64
# A letter or digit first, then letters, digits and ``. _ - + : @ =``: no spaces, no commas
# (BACKUP_TAGS is comma-separated), nothing a shell or a table would mangle.
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+:@=-]*$")


def tag_problem(text: str) -> str | None:
    """Why ``text`` cannot be a tag, or None when it can."""
    if not text:
        return "a tag cannot be empty"
    if len(text) > MAX_TAG_LENGTH:
        return f"tag {text[:20]!r}... is longer than {MAX_TAG_LENGTH} characters"
    if not _TAG.match(text) or not text.isascii():
        return (
            f"tag {text!r} has characters a tag cannot have: start with a letter or digit, then"
            " letters, digits and . _ - + : @ = only"
        )
    return None


#: Unreadable paths a snapshot names (its count is complete).
MAX_UNREADABLE_PATHS = 20


@dataclass(frozen=True)
class Unreadable:
    """Entries in scope that a backup could not read (permissions, I/O errors, too deep), so
    it does not hold them: an honest partial backup says so."""

    count: int = 0
    paths: tuple[str, ...] = ()  # the first few, relative to JENKINS_HOME


@dataclass(frozen=True)
class Snapshot:
    number: int
    time_ns: int  # commit time, UTC
    tree: bytes
    scope: str
    hostname: str
    parent: str = ""  # key of the parent snapshot, if any
    stats: SnapshotStats = field(default_factory=SnapshotStats)
    program: str = ""
    source: str = ""  # "backup" or "import"
    unreadable: Unreadable = field(default_factory=Unreadable)
    tags: tuple[str, ...] = ()  # given at backup time (--tag, BACKUP_TAGS); sorted

    @property
    def committed_at(self) -> str:
        return iso_time(self.time_ns)


def iso_time(time_ns: int) -> str:
    """ISO 8601 in UTC with milliseconds, as ``list`` shows commit times."""
    dt = datetime.fromtimestamp(time_ns / 1e9, tz=UTC)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, order=True)
class SnapshotRef:
    """What a listing tells without reading the object."""

    time_ns: int
    number: int
    id: bytes
    key: str


def encode_snapshot(s: Snapshot) -> bytes:
    doc = asdict(s)
    doc["v"] = 1
    doc["tree"] = s.tree.hex()
    if not s.unreadable.count:
        del doc["unreadable"]  # a complete backup reads as before (older versions too)
    if not s.tags:
        del doc["tags"]  # so does an untagged one
    else:
        doc["tags"] = list(s.tags)
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def decode_snapshot(data: bytes) -> Snapshot:
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise CorruptObject("snapshot is oversized")
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.pop("v") != 1:
            raise CorruptObject("snapshot has an unknown version")
        stats = SnapshotStats(**doc.pop("stats"))
        tree = parse_id(doc.pop("tree"))
        if tree is None:
            raise CorruptObject("snapshot names a malformed tree id")
        unreadable = _unreadable(doc.pop("unreadable", {}))
        tags = _tags(doc.pop("tags", []))
        snap = Snapshot(tree=tree, stats=stats, unreadable=unreadable, tags=tags, **doc)
    except CorruptObject:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise CorruptObject(f"snapshot is malformed: {exc}") from exc
    if (
        len(snap.tree) != 32
        or not isinstance(snap.number, int)
        or not isinstance(snap.time_ns, int)
        or not all(isinstance(getattr(snap, f), str) for f in _TEXT_FIELDS)
        or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
            for v in asdict(snap.stats).values()
        )
    ):
        raise CorruptObject("snapshot is malformed")
    return snap


def _unreadable(doc: object) -> Unreadable:
    if not isinstance(doc, dict):
        raise CorruptObject("snapshot has a malformed unreadable record")
    count, paths = doc.get("count", 0), doc.get("paths", [])
    if (
        not isinstance(count, int)
        or isinstance(count, bool)
        or count < 0
        or not isinstance(paths, list)
        or len(paths) > MAX_UNREADABLE_PATHS
        or not all(isinstance(p, str) for p in paths)
        or set(doc) - {"count", "paths"}
    ):
        raise CorruptObject("snapshot has a malformed unreadable record")
    return Unreadable(count, tuple(paths))


def _tags(doc: object) -> tuple[str, ...]:
    """The tags field: a short list of short strings. Their characters are not checked here, so
    that a later version may allow more without making this one skip its backups."""
    if (
        not isinstance(doc, list)
        or len(doc) > MAX_TAGS
        or not all(isinstance(t, str) and 0 < len(t) <= MAX_TAG_LENGTH for t in doc)
    ):
        raise CorruptObject("snapshot has a malformed tags field")
    return tuple(doc)
