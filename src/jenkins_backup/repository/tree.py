"""Trees: one object per directory, listing its entries (as git and restic do).

An unchanged directory encodes to the same bytes, hence the same id, and costs nothing in a new
snapshot. Encoding is canonical JSON; names that are not UTF-8 are kept as base64 (``name_b``).
"""

from __future__ import annotations

import base64
import json
import os
from typing import NamedTuple, TypeGuard

import orjson

from jenkins_backup.errors import CorruptObject
from jenkins_backup.repository.codec import parse_id

FILE = "f"
DIR = "d"
SYMLINK = "l"
MAX_TREE_BYTES = 256 << 20
# Within one time stamp tick a rewrite can leave a file's stat unchanged. The ctime is the file
# system's own stamp (nobody can set it), so its resolution tells the tick: whole seconds on
# ext4 with 128-byte inodes, FAT and many NFS servers (ticks of 1 or 2 s); otherwise the kernel
# stamps from a clock that advances each scheduler tick (1-10 ms; 10 ms on vfat's ctime).
RACY_COARSE_NS = 2_000_000_000
RACY_FINE_NS = 100_000_000
_KNOWN = {FILE, DIR, SYMLINK}


class Entry(NamedTuple):
    """One entry of a tree. A named tuple, not a dataclass: restore and verify make a million
    of them on a big home, and a frozen dataclass takes four times as long to build."""

    name: bytes
    kind: str
    mode: int
    mtime_ns: int
    size: int = 0
    ctime_ns: int = 0
    inode: int = 0
    content: tuple[bytes, ...] = ()  # file: chunk ids in order
    subtree: bytes = b""  # directory: tree id
    target: bytes = b""  # symlink: link target


def _put_bytes(obj: dict[str, object], key: str, value: bytes) -> None:
    try:
        obj[key] = value.decode("utf-8")
    except UnicodeDecodeError:
        obj[key + "_b"] = base64.b64encode(value).decode("ascii")


def _get_bytes(obj: dict[str, object], key: str) -> bytes:
    if key in obj:
        value = obj[key]
        if not isinstance(value, str):
            raise CorruptObject(f"tree field {key} is not a string")
        return value.encode("utf-8")
    raw = obj.get(key + "_b")
    if raw is None:
        return b""
    if not isinstance(raw, str):
        raise CorruptObject(f"tree field {key} is not a string")
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise CorruptObject(f"tree field {key} is not base64") from exc


def entry_to_obj(e: Entry) -> dict[str, object]:
    """The JSON object of one entry, as stored."""
    obj: dict[str, object] = {"t": e.kind, "mode": e.mode, "mtime": e.mtime_ns}
    _put_bytes(obj, "name", e.name)
    if e.kind == FILE:
        obj.update(size=e.size, ctime=e.ctime_ns, ino=e.inode)
        obj["content"] = [c.hex() for c in e.content]
    elif e.kind == DIR:
        obj["tree"] = e.subtree.hex()
    else:
        _put_bytes(obj, "target", e.target)
    return obj


def encode_objs(named: list[tuple[bytes, dict[str, object]]]) -> bytes:
    """Canonical encoding of (name, object) pairs: sorted by name bytes, sorted keys."""
    named.sort(key=lambda pair: pair[0])
    doc = {"v": 1, "entries": [obj for _, obj in named]}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def encode_tree(entries: list[Entry]) -> bytes:
    return encode_objs([(e.name, entry_to_obj(e)) for e in entries])


def _stored_objects(data: bytes) -> list[object]:
    """The entries list of a stored tree, unchecked; a tree that is not one is CorruptObject."""
    try:
        # orjson reads the same JSON about three times faster than the standard library (a
        # backup reads one tree per directory); strict UTF-8, no NaN, 64-bit integers: what
        # our encoder writes. Encoding stays with ``json``, whose bytes define the tree ids.
        doc = orjson.loads(data)
    except (ValueError, RecursionError) as exc:
        raise CorruptObject("tree is not valid JSON") from exc
    if not isinstance(doc, dict) or doc.get("v") != 1 or not isinstance(doc.get("entries"), list):
        raise CorruptObject("tree has an unknown layout")
    entries: list[object] = doc["entries"]
    return entries


def raw_entries(data: bytes) -> dict[bytes, dict[str, object]]:
    """Name -> stored object, without building entries: the backup's fast path only compares
    a few fields of each (a malformed field just makes the file look changed)."""
    out: dict[bytes, dict[str, object]] = {}
    for obj in _stored_objects(data):
        if isinstance(obj, dict):
            text = obj.get("name")  # the common case inline: a UTF-8 name
            name = text.encode() if type(text) is str else _get_bytes(obj, "name")
            if name:
                out[name] = obj
    return out


def file_entry(
    name: bytes,
    st: os.stat_result,
    size: int,
    content: tuple[bytes, ...],
    started_ns: int,
) -> Entry:
    """The entry of a file read by a backup that started at ``started_ns`` (``st``: its stat
    before the read).

    Racily clean files (git's rule): when the file's mtime or ctime is not older than the
    backup's start by a tick, a rewrite with the same size in the same tick as our read would
    leave its stat unchanged, and the next backup would take it as unchanged. Such an entry is
    stored with ctime 0, which no file has, so the next backup reads the file again.
    """
    tick = RACY_COARSE_NS if st.st_ctime_ns % 1_000_000_000 == 0 else RACY_FINE_NS
    racy = max(st.st_mtime_ns, st.st_ctime_ns) >= started_ns - tick
    return Entry(
        name,
        FILE,
        st.st_mode & 0o7777,
        st.st_mtime_ns,
        size,
        0 if racy else st.st_ctime_ns,
        st.st_ino,
        content,
    )


def unchanged_file(
    stored: dict[str, object] | None, st: os.stat_result
) -> TypeGuard[dict[str, object]]:
    """Whether a stored entry (from ``raw_entries``) still describes the regular file with this
    stat, so that its content need not be read again: same size, mtime, ctime and inode."""
    return (
        stored is not None
        and stored.get("t") == FILE
        and stored.get("size") == st.st_size
        and stored.get("mtime") == st.st_mtime_ns
        and stored.get("ctime") == st.st_ctime_ns
        and stored.get("ino") == st.st_ino
    )


def stored_subtree(stored: dict[str, object] | None) -> bytes | None:
    """The tree id of a stored directory entry; None for anything else or a malformed id."""
    if stored is None or stored.get("t") != DIR:
        return None
    return parse_id(stored.get("tree"))


def stored_as(stored: dict[str, object] | None, e: Entry) -> TypeGuard[dict[str, object]]:
    """Whether a stored entry encodes exactly ``e`` (so the stored object can be kept)."""
    return stored is not None and stored == entry_to_obj(e)


def _int(obj: dict[str, object], key: str) -> int:
    value = obj.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or not -(2**63) <= value < 2**64:
        raise CorruptObject(f"tree field {key} is not an integer")
    return value


def _id(value: object) -> bytes:
    out = parse_id(value)
    if out is None:
        raise CorruptObject("tree holds a malformed object id")
    return out


def decode_tree(data: bytes) -> list[Entry]:
    """Parse and validate a tree; any malformation is CorruptObject, never another error.

    Restore, verify and export decode every tree of a backup, a million entries on a big home:
    the common case (a UTF-8 name, plain integers) is checked inline, anything else takes the
    general checks, which raise.
    """
    if len(data) > MAX_TREE_BYTES:
        raise CorruptObject("tree object is oversized")
    objs = _stored_objects(data)
    entries: list[Entry] = []
    append = entries.append
    seen: set[bytes] = set()
    for obj in objs:
        if type(obj) is not dict:
            raise CorruptObject("tree entry is not an object")
        kind = obj.get("t")
        if type(kind) is not str or kind not in _KNOWN:
            raise CorruptObject(f"tree entry has unknown type {kind!r}")
        text = obj.get("name")
        name = text.encode() if type(text) is str else _get_bytes(obj, "name")
        if not name or name in (b".", b"..") or b"/" in name or b"\0" in name or len(name) > 255:
            raise CorruptObject(f"tree entry has an unsafe name {name[:64]!r}")
        if name in seen:
            raise CorruptObject(f"tree lists {name[:64]!r} twice")
        seen.add(name)
        mode = obj.get("mode", 0)
        if type(mode) is not int or not 0 <= mode < 2**64:
            mode = _int(obj, "mode")
        mode &= 0o7777
        mtime = obj.get("mtime", 0)
        if type(mtime) is not int or not -(2**63) <= mtime < 2**63:
            mtime = _int(obj, "mtime")
            if mtime >= 2**63:  # restore passes it to utime(): a signed 64-bit count of ns
                raise CorruptObject("tree entry has an impossible mtime")
        if kind == FILE:
            content = obj.get("content")
            if type(content) is not list:
                raise CorruptObject("file entry has no content list")
            size, ctime, ino = obj.get("size", 0), obj.get("ctime", 0), obj.get("ino", 0)
            if not (
                type(size) is int
                and type(ctime) is int
                and type(ino) is int
                and 0 <= size < 2**64
                and -(2**63) <= ctime < 2**64
                and -(2**63) <= ino < 2**64
            ):
                size, ctime, ino = _int(obj, "size"), _int(obj, "ctime"), _int(obj, "ino")
                if size < 0:
                    raise CorruptObject("file entry has a negative size")
            append(Entry(name, FILE, mode, mtime, size, ctime, ino, tuple(map(_id, content))))
        elif kind == DIR:
            append(Entry(name, DIR, mode, mtime, subtree=_id(obj.get("tree"))))
        else:
            target = _get_bytes(obj, "target")
            if not target or b"\0" in target:
                raise CorruptObject("symlink entry has a bad target")
            append(Entry(name, SYMLINK, mode, mtime, target=target))
    return entries
