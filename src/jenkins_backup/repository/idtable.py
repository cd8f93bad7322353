"""A compact map from 32-byte object ids to fixed-size records, for millions of ids.

A dict of bytes costs about 150 bytes per id and one Python object per id; a repository of 10^7
blobs must not need 10^7 objects alive (DESIGN.md 4.9). Here ids are spread over ``2**bits``
shards by their leading bits. A shard keeps the first 8 bytes of its ids as a sorted
``array('Q')``, searched by ``bisect`` in C, and beside it one bytearray with, in the same
order, the other 24 bytes of each id and its record. That is 32 bytes plus the record per id.
An insert moves the tail of one shard (a few KiB, in C); when shards average more than
``_SPLIT_AT`` ids, each splits in two at its median key, one shard at a time, so the table never
needs twice its size in memory.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from jenkins_backup.repository.codec import ID_LEN

_KEY = struct.Struct(">Q")
_KEY_LEN = _KEY.size
_REST = ID_LEN - _KEY_LEN
_MIN_BITS = 8
_SPLIT_AT = 256


class IdTable:
    """Id -> record (``record_size`` bytes; 0 makes a set). The first insert of an id wins.

    Lookups from several threads are safe while nothing inserts: an insert moves two arrays one
    after the other, and a split replaces them all.
    """

    __slots__ = ("_bits", "_keys", "_len", "_record_size", "_recs", "_shift", "_split_at", "_width")

    def __init__(self, record_size: int = 0) -> None:
        self._record_size = record_size
        self._width = _REST + record_size
        self._bits = _MIN_BITS
        self._shift = 64 - _MIN_BITS
        self._split_at = _SPLIT_AT << _MIN_BITS
        self._keys = [array("Q") for _ in range(1 << _MIN_BITS)]
        self._recs = [bytearray() for _ in range(1 << _MIN_BITS)]
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __contains__(self, blob_id: bytes) -> bool:
        return self.locate(blob_id) >= 0

    def locate(self, blob_id: bytes) -> int:
        """The position of ``blob_id`` (shard number * 2**32 + index in shard), or -1."""
        if not self._len or len(blob_id) != ID_LEN:
            return -1
        key: int = _KEY.unpack_from(blob_id)[0]
        shard = key >> self._shift
        keys = self._keys[shard]
        i = bisect_left(keys, key)
        if i == len(keys) or keys[i] != key:
            return -1
        if self._recs[shard].startswith(blob_id[_KEY_LEN:], i * self._width):
            return shard << 32 | i
        return self._locate_among_equal_keys(shard, i, key, blob_id[_KEY_LEN:])

    def _locate_among_equal_keys(self, shard: int, i: int, key: int, rest: bytes) -> int:
        """The rare case of ids that share their first 8 bytes (all are next to each other)."""
        keys, recs, width = self._keys[shard], self._recs[shard], self._width
        while i < len(keys) and keys[i] == key:
            if recs.startswith(rest, i * width):
                return shard << 32 | i
            i += 1
        return -1

    def unpack(self, blob_id: bytes, layout: struct.Struct) -> tuple[Any, ...] | None:
        """The record of ``blob_id`` decoded with ``layout``, or None (one call: hot path)."""
        pos = self.locate(blob_id)
        if pos < 0:
            return None
        return layout.unpack_from(self._recs[pos >> 32], (pos & 0xFFFFFFFF) * self._width + _REST)

    def get(self, blob_id: bytes) -> bytes | None:
        """The record stored with ``blob_id``, or None."""
        pos = self.locate(blob_id)
        if pos < 0:
            return None
        at = (pos & 0xFFFFFFFF) * self._width + _REST
        return bytes(self._recs[pos >> 32][at : at + self._record_size])

    def insert(self, blob_id: bytes, record: bytes = b"") -> bool:
        """Store ``record`` for ``blob_id``; False (and nothing changes) when the id is present."""
        if len(blob_id) != ID_LEN or len(record) != self._record_size:
            raise ValueError("id or record has the wrong length")
        key: int = _KEY.unpack_from(blob_id)[0]
        shard = key >> self._shift
        keys = self._keys[shard]
        recs = self._recs[shard]
        width = self._width
        rest = blob_id[_KEY_LEN:]
        i = bisect_left(keys, key)
        n = len(keys)
        while i < n and keys[i] == key:  # ids that share their first 8 bytes: order by the rest
            stored = recs[i * width : i * width + _REST]
            if stored == rest:
                return False
            if stored > rest:
                break
            i += 1
        keys.insert(i, key)
        recs[i * width : i * width] = rest + record if record else rest
        self._len += 1
        if self._len > self._split_at:
            self._split()
        return True

    def _split(self) -> None:
        """Double the shard count; old shards are released as they are split."""
        bits = self._bits + 1
        shift = 64 - bits
        width = self._width
        old_keys, old_recs = self._keys, self._recs
        old_keys.reverse()
        old_recs.reverse()
        new_keys: list[array[int]] = []
        new_recs: list[bytearray] = []
        shard = 0
        while old_keys:
            keys, recs = old_keys.pop(), old_recs.pop()
            mid = bisect_left(keys, (2 * shard + 1) << shift)
            new_keys += (keys[:mid], keys[mid:])
            new_recs += (recs[: mid * width], recs[mid * width :])
            shard += 1
        self._keys, self._recs = new_keys, new_recs
        self._bits, self._shift, self._split_at = bits, shift, _SPLIT_AT << bits

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """(id, record) in id order."""
        width = self._width
        for keys, recs in zip(self._keys, self._recs, strict=True):
            for i, key in enumerate(keys):
                at = i * width
                yield _KEY.pack(key) + recs[at : at + _REST], bytes(recs[at + _REST : at + width])


class IdSet:
    """A set of ids that starts as a plain set (fastest) and moves into an IdTable once it holds
    more than ``small`` ids (about 110 bytes each in a set, 32 in the table)."""

    __slots__ = ("_set", "_small", "_table")

    def __init__(self, small: int = 1 << 17) -> None:
        self._small = small
        self._set: set[bytes] | None = set()
        self._table = IdTable()

    def __len__(self) -> int:
        return len(self._set) if self._set is not None else len(self._table)

    def __contains__(self, blob_id: bytes) -> bool:
        return blob_id in self._set if self._set is not None else blob_id in self._table

    def add(self, blob_id: bytes) -> bool:
        """Add an id; False when it was there already."""
        ids = self._set
        if ids is None:
            return self._table.insert(blob_id)
        if blob_id in ids:
            return False
        if len(blob_id) != ID_LEN:
            raise ValueError("id has the wrong length")
        ids.add(blob_id)
        if len(ids) > self._small:
            for i in sorted(ids):  # in order: each insert lands next to the previous one
                self._table.insert(i)
            self._set = None
        return True
