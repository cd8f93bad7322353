"""The index: where each blob lives (pack, offset, length).

Each backup writes one index file for the packs it created (several past about a million new
blobs), at ``index/<id>``. Readers merge all of them. Plaintext layout: ``b"JBI1"`` then, per
pack, ``pack id (32) | u32 count | count x (type u8, id 32, offset u32, length u32, raw length
u32)``.

In memory the merged index is an IdTable: about 49 bytes per blob and no Python object per blob,
so that a repository of millions of small files fits in a backup's memory budget.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from jenkins_backup.errors import CorruptObject
from jenkins_backup.repository.codec import ID_LEN
from jenkins_backup.repository.idtable import IdTable
from jenkins_backup.repository.pack import BlobEntry

MAGIC = b"JBI1"
_PACK = struct.Struct(f"<{ID_LEN}sI")
_ENTRY = struct.Struct(f"<B{ID_LEN}sIII")
# A blob's record in the IdTable: type, pack number (into Index._packs), offset, length, raw length.
_LOC = struct.Struct("<BIIII")
MAX_INDEX_ENTRIES = 50_000_000


@dataclass(frozen=True, slots=True)
class Location:
    pack: bytes
    type: int
    offset: int
    length: int
    raw_length: int


def encode_pack(pack_id: bytes, entries: Iterable[BlobEntry]) -> bytes:
    """One pack's part of an index file; an index file is MAGIC and such parts, concatenated."""
    body = [_ENTRY.pack(e.type, e.id, e.offset, e.length, e.raw_length) for e in entries]
    return _PACK.pack(pack_id, len(body)) + b"".join(body)


def encode_index(packs: Iterable[tuple[bytes, list[BlobEntry]]]) -> bytes:
    return b"".join([MAGIC, *(encode_pack(pack_id, entries) for pack_id, entries in packs)])


def pack_records(plain: bytes | bytearray | memoryview) -> Iterator[tuple[bytes, bytes]]:
    """(pack id, its entries' records as stored) of an index file: one object per pack and none
    per blob, for prune, which holds every pack of the repository at once."""
    for pack_id, raw in _pack_parts(plain, None):
        yield pack_id, bytes(raw)


def entry_records(entries: Iterable[BlobEntry]) -> bytes:
    return b"".join([_ENTRY.pack(e.type, e.id, e.offset, e.length, e.raw_length) for e in entries])


def records_entries(records: bytes) -> list[BlobEntry]:
    return [BlobEntry(*f) for f in _ENTRY.iter_unpack(records)]


def record_lengths(records: bytes) -> Iterator[tuple[bytes, int]]:
    """(blob id, stored length) of each record."""
    for _, blob_id, _, length, _ in _ENTRY.iter_unpack(records):
        yield blob_id, length


def encode_records(packs: Iterable[tuple[bytes, bytes]]) -> bytes:
    """An index file from (pack id, records) pairs."""
    parts = (_PACK.pack(p, len(r) // _ENTRY.size) + r for p, r in packs)
    return b"".join([MAGIC, *parts])


def _pack_parts(
    plain: bytes | bytearray | memoryview, only_type: int | None
) -> Iterator[tuple[bytes, memoryview]]:
    """Yield (pack id, its entries' raw bytes) of an index file, checking the framing."""
    view = memoryview(plain)
    if view[:4] != MAGIC:
        raise CorruptObject("index has a bad magic number")
    pos = 4
    size = len(view)
    while pos < size:
        if pos + _PACK.size > size:
            raise CorruptObject("index is truncated")
        pack_id, count = _PACK.unpack_from(view, pos)
        pos += _PACK.size
        end = pos + count * _ENTRY.size
        if count > MAX_INDEX_ENTRIES or end > size:
            raise CorruptObject("index is truncated")
        if only_type is not None and count and view[pos] != only_type:
            pos = end
            continue
        yield bytes(pack_id), view[pos:end]
        pos = end


def check_encoded(plain: bytes | bytearray | memoryview) -> None:
    """Check an index file's framing whole before any of it is merged."""
    for _ in _pack_parts(plain, None):
        pass


def decode_index(
    plain: bytes, only_type: int | None = None
) -> Iterator[tuple[bytes, list[BlobEntry]]]:
    """Yield (pack id, entries). With ``only_type``, packs of other types are skipped unparsed
    (packs never mix types), which keeps tree lookups cheap in a large repository."""
    for pack_id, raw in _pack_parts(plain, only_type):
        yield pack_id, [BlobEntry(*f) for f in _ENTRY.iter_unpack(raw)]


class Index:
    """Blob id -> location, merged from every index file; the first location of an id wins.

    Lookups from several threads are safe, but only while nothing adds to the index: the
    repository fills an index before it hands it out, and a backup adds its own packs after its
    walk and uploads are over.
    """

    def __init__(self) -> None:
        self._packs: list[bytes] = []
        self._pack_no: dict[bytes, int] = {}
        self._blobs = IdTable(_LOC.size)
        self._deferred: list[bytes | bytearray] = []
        self._lock = threading.Lock()

    def _number(self, pack_id: bytes) -> int:
        no = self._pack_no.get(pack_id)
        if no is None:
            no = len(self._packs)
            self._packs.append(pack_id)
            self._pack_no[pack_id] = no
        return no

    def add_pack(self, pack_id: bytes, entries: Iterable[BlobEntry]) -> None:
        loc = _LOC.pack
        no = self._number(pack_id)
        insert = self._blobs.insert
        for e in entries:
            insert(e.id, loc(e.type, no, e.offset, e.length, e.raw_length))

    def add_encoded(
        self, plain: bytes | bytearray | memoryview, only_type: int | None = None
    ) -> None:
        """Merge an index file's plaintext, as ``decode_index`` reads it but without building an
        object per blob (the load of a large index is mostly this loop)."""
        loc = _LOC.pack
        insert = self._blobs.insert
        for pack_id, raw in _pack_parts(plain, only_type):
            no = self._number(pack_id)
            for type_, blob_id, offset, length, raw_length in _ENTRY.iter_unpack(raw):
                insert(blob_id, loc(type_, no, offset, length, raw_length))

    def defer(self, plain: bytes | bytearray) -> None:
        """Merge an index file that this process wrote at the first lookup that follows: a
        backup adds its own index file once its uploads are over, and then rarely looks again
        (only a retention run after it does)."""
        self._deferred.append(plain)

    def _merge_deferred(self) -> None:
        with self._lock:  # readers in several threads may arrive here together
            for plain in self._deferred:
                self.add_encoded(plain)
            self._deferred = []

    def __contains__(self, blob_id: bytes) -> bool:
        if self._deferred:
            self._merge_deferred()
        return blob_id in self._blobs

    def __len__(self) -> int:
        if self._deferred:
            self._merge_deferred()
        return len(self._blobs)

    def get(self, blob_id: bytes) -> Location | None:
        if self._deferred:
            self._merge_deferred()
        rec = self._blobs.unpack(blob_id, _LOC)
        if rec is None:
            return None
        type_, no, offset, length, raw_length = rec
        return Location(self._packs[no], type_, offset, length, raw_length)

    def packs(self) -> set[bytes]:
        if self._deferred:
            self._merge_deferred()
        return set(self._packs)

    def items(self) -> Iterator[tuple[bytes, Location]]:
        """Every (id, location), in id order; the index must not change meanwhile."""
        if self._deferred:
            self._merge_deferred()
        for blob_id, rec in self._blobs.items():
            type_, no, offset, length, raw_length = _LOC.unpack(rec)
            yield blob_id, Location(self._packs[no], type_, offset, length, raw_length)
