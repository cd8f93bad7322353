"""The index: where each blob lives (pack, offset, length).

Each backup writes one index file for the packs it created, at ``index/<id>``. Readers merge all
of them. Plaintext layout: ``b"JBI1"`` then, per pack, ``pack id (32) | u32 count | count x
(type u8, id 32, offset u32, length u32, raw length u32)``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from jenkins_backup.errors import CorruptObject
from jenkins_backup.repository.codec import ID_LEN
from jenkins_backup.repository.pack import BlobEntry

MAGIC = b"JBI1"
_PACK = struct.Struct(f"<{ID_LEN}sI")
_ENTRY = struct.Struct(f"<B{ID_LEN}sIII")
MAX_INDEX_ENTRIES = 50_000_000


@dataclass(frozen=True, slots=True)
class Location:
    pack: bytes
    type: int
    offset: int
    length: int
    raw_length: int


def encode_index(packs: Iterable[tuple[bytes, list[BlobEntry]]]) -> bytes:
    out = [MAGIC]
    for pack_id, entries in packs:
        out.append(_PACK.pack(pack_id, len(entries)))
        out.extend(_ENTRY.pack(e.type, e.id, e.offset, e.length, e.raw_length) for e in entries)
    return b"".join(out)


def decode_index(
    plain: bytes, only_type: int | None = None
) -> Iterator[tuple[bytes, list[BlobEntry]]]:
    """Yield (pack id, entries). With ``only_type``, packs of other types are skipped unparsed
    (packs never mix types), which keeps tree lookups cheap in a large repository."""
    if plain[:4] != MAGIC:
        raise CorruptObject("index has a bad magic number")
    pos = 4
    view = memoryview(plain)
    while pos < len(plain):
        if pos + _PACK.size > len(plain):
            raise CorruptObject("index is truncated")
        pack_id, count = _PACK.unpack_from(view, pos)
        pos += _PACK.size
        end = pos + count * _ENTRY.size
        if count > MAX_INDEX_ENTRIES or end > len(plain):
            raise CorruptObject("index is truncated")
        if only_type is not None and count and plain[pos] != only_type:
            pos = end
            continue
        entries = [BlobEntry(*f) for f in _ENTRY.iter_unpack(view[pos:end])]
        pos = end
        yield bytes(pack_id), entries


class Index:
    """Blob id -> location, merged from every index file. Compact tuples keep memory low."""

    def __init__(self) -> None:
        self._packs: list[bytes] = []
        self._pack_no: dict[bytes, int] = {}
        self._blobs: dict[bytes, tuple[int, int, int, int, int]] = {}

    def add_pack(self, pack_id: bytes, entries: Iterable[BlobEntry]) -> None:
        no = self._pack_no.get(pack_id)
        if no is None:
            no = len(self._packs)
            self._packs.append(pack_id)
            self._pack_no[pack_id] = no
        blobs = self._blobs
        for e in entries:
            if e.id not in blobs:
                blobs[e.id] = (no, e.type, e.offset, e.length, e.raw_length)

    def __contains__(self, blob_id: bytes) -> bool:
        return blob_id in self._blobs

    def __len__(self) -> int:
        return len(self._blobs)

    def get(self, blob_id: bytes) -> Location | None:
        t = self._blobs.get(blob_id)
        if t is None:
            return None
        return Location(self._packs[t[0]], t[1], t[2], t[3], t[4])

    def packs(self) -> set[bytes]:
        return set(self._packs)

    def items(self) -> Iterator[tuple[bytes, Location]]:
        for blob_id, t in self._blobs.items():
            yield blob_id, Location(self._packs[t[0]], t[1], t[2], t[3], t[4])
