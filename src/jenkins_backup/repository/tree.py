"""Trees: one object per directory, listing its entries (as git and restic do).

An unchanged directory encodes to the same bytes, hence the same id, and costs nothing in a new
snapshot. Encoding is canonical JSON; names that are not UTF-8 are kept as base64 (``name_b``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from jenkins_backup.errors import CorruptObject

FILE = "f"
DIR = "d"
SYMLINK = "l"
MAX_TREE_BYTES = 256 << 20
_KNOWN = {FILE, DIR, SYMLINK}


@dataclass(frozen=True)
class Entry:
    name: bytes
    kind: str
    mode: int
    mtime_ns: int
    size: int = 0
    ctime_ns: int = 0
    inode: int = 0
    content: tuple[bytes, ...] = field(default=())  # file: chunk ids in order
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


def encode_tree(entries: list[Entry]) -> bytes:
    out = []
    for e in sorted(entries, key=lambda x: x.name):
        obj: dict[str, object] = {"t": e.kind, "mode": e.mode, "mtime": e.mtime_ns}
        _put_bytes(obj, "name", e.name)
        if e.kind == FILE:
            obj.update(size=e.size, ctime=e.ctime_ns, ino=e.inode)
            obj["content"] = [c.hex() for c in e.content]
        elif e.kind == DIR:
            obj["tree"] = e.subtree.hex()
        else:
            _put_bytes(obj, "target", e.target)
        out.append(obj)
    return json.dumps({"v": 1, "entries": out}, separators=(",", ":"), sort_keys=True).encode()


def _int(obj: dict[str, object], key: str) -> int:
    value = obj.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or not -(2**63) <= value < 2**64:
        raise CorruptObject(f"tree field {key} is not an integer")
    return value


def _id(value: object) -> bytes:
    if not isinstance(value, str) or len(value) != 64:
        raise CorruptObject("tree holds a malformed object id")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise CorruptObject("tree holds a malformed object id") from exc


def decode_tree(data: bytes) -> list[Entry]:
    """Parse and validate a tree; any malformation is CorruptObject, never another error."""
    if len(data) > MAX_TREE_BYTES:
        raise CorruptObject("tree object is oversized")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise CorruptObject("tree is not valid JSON") from exc
    if not isinstance(doc, dict) or doc.get("v") != 1 or not isinstance(doc.get("entries"), list):
        raise CorruptObject("tree has an unknown layout")
    entries: list[Entry] = []
    seen: set[bytes] = set()
    for obj in doc["entries"]:
        if not isinstance(obj, dict):
            raise CorruptObject("tree entry is not an object")
        kind = obj.get("t")
        if not isinstance(kind, str) or kind not in _KNOWN:
            raise CorruptObject(f"tree entry has unknown type {kind!r}")
        name = _get_bytes(obj, "name")
        if not name or name in (b".", b"..") or b"/" in name or b"\0" in name or len(name) > 4096:
            raise CorruptObject(f"tree entry has an unsafe name {name!r}")
        if name in seen:
            raise CorruptObject(f"tree lists {name!r} twice")
        seen.add(name)
        mode = _int(obj, "mode") & 0o7777
        mtime = _int(obj, "mtime")
        if kind == FILE:
            content = obj.get("content")
            if not isinstance(content, list):
                raise CorruptObject("file entry has no content list")
            entries.append(
                Entry(
                    name,
                    FILE,
                    mode,
                    mtime,
                    _int(obj, "size"),
                    _int(obj, "ctime"),
                    _int(obj, "ino"),
                    tuple(_id(c) for c in content),
                )
            )
        elif kind == DIR:
            entries.append(Entry(name, DIR, mode, mtime, subtree=_id(obj.get("tree"))))
        else:
            target = _get_bytes(obj, "target")
            if not target or b"\0" in target:
                raise CorruptObject("symlink entry has a bad target")
            entries.append(Entry(name, SYMLINK, mode, mtime, target=target))
    return entries
