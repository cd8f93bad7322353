"""A compact map from 32-byte object ids to fixed-size records, for millions of ids.

A dict costs about 200 bytes and two Python objects per id; a repository of 10^7 blobs must not
need 10^7 objects alive. So past ``small`` ids, the ids are spread over
``2**bits`` shards by their leading bits. A shard keeps the first 8 bytes of its ids as a sorted
``array('Q')``, searched by ``bisect`` in C, and beside it one bytearray with, in the same order,
the other 24 bytes of each id and its record: 32 bytes plus the record per id. An insert moves
the tail of one shard (a few KiB, in C); when shards average more than ``_SPLIT_AT`` ids, each
splits in two at its median key, one shard at a time, so the table never needs twice its size.
Below ``small`` ids a plain dict is faster and small enough.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from operator import add, itemgetter
from typing import Any

from jenkins_backup.repository.codec import ID_LEN

_KEY = struct.Struct(">Q")
_KEY_LEN = _KEY.size
_REST = ID_LEN - _KEY_LEN
# The smallest id of a shard, from its first key (ids compare as bytes).
_BOUND = struct.Struct(f">Q{_REST}x")
_first = itemgetter(0)
_MIN_BITS = 8
_SPLIT_AT = 256
SMALL = 1 << 18


class IdTable:
    """Id -> record (``record_size`` bytes; 0 makes a set). The first insert of an id wins.

    Lookups from several threads are safe while nothing inserts: an insert moves two arrays one
    after the other, and a split replaces them all.
    """

    __slots__ = (
        "_bits",
        "_keys",
        "_len",
        "_record_size",
        "_recs",
        "_row",
        "_row_key",
        "_row_tail",
        "_shift",
        "_small",
        "_small_max",
        "_split_at",
        "_tail",
        "_width",
    )

    def __init__(self, record_size: int = 0, small: int | None = None) -> None:
        small = SMALL if small is None else small
        self._record_size = record_size
        self._width = width = _REST + record_size
        # A row is an id then its record: sorting rows sorts by id (ids are distinct).
        self._row = struct.Struct(f">Q{width}s")  # from a key and a shard's tail bytes
        self._row_key = struct.Struct(f">Q{width}x")
        self._row_tail = struct.Struct(f"{_KEY_LEN}x{width}s")
        self._tail = struct.Struct(f"{width}s")
        self._small_max = small
        self._small: dict[bytes, bytes] | None = {} if small else None
        self._bits = _MIN_BITS
        self._shift = 64 - _MIN_BITS
        self._split_at = _SPLIT_AT << _MIN_BITS
        self._keys: list[array[int]] = []
        self._recs: list[bytearray] = []
        if not small:
            self._make_shards()
        self._len = 0  # ids in the shards

    def _make_shards(self) -> None:
        self._keys = [array("Q") for _ in range(1 << self._bits)]
        self._recs = [bytearray() for _ in range(1 << self._bits)]

    def __len__(self) -> int:
        return self._len if self._small is None else len(self._small)

    def __contains__(self, blob_id: bytes) -> bool:
        if self._small is not None:
            return blob_id in self._small
        return self._position(blob_id) >= 0

    def _position(self, blob_id: bytes) -> int:
        """Where ``blob_id`` is in the shards: shard number * 2**32 + index in it, or -1."""
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
        return self._among_equal_keys(shard, i, key, blob_id[_KEY_LEN:])

    def _among_equal_keys(self, shard: int, i: int, key: int, rest: bytes) -> int:
        """The rare case of ids that share their first 8 bytes (all are next to each other)."""
        keys, recs, width = self._keys[shard], self._recs[shard], self._width
        while i < len(keys) and keys[i] == key:
            if recs.startswith(rest, i * width):
                return shard << 32 | i
            i += 1
        return -1

    def unpack(self, blob_id: bytes, layout: struct.Struct) -> tuple[Any, ...] | None:
        """The record of ``blob_id`` decoded with ``layout``, or None (one call: hot path)."""
        if self._small is not None:
            rec = self._small.get(blob_id)
            return None if rec is None else layout.unpack(rec)
        pos = self._position(blob_id)
        if pos < 0:
            return None
        return layout.unpack_from(self._recs[pos >> 32], (pos & 0xFFFFFFFF) * self._width + _REST)

    def get(self, blob_id: bytes) -> bytes | None:
        """The record stored with ``blob_id``, or None."""
        if self._small is not None:
            return self._small.get(blob_id)
        pos = self._position(blob_id)
        if pos < 0:
            return None
        at = (pos & 0xFFFFFFFF) * self._width + _REST
        return bytes(self._recs[pos >> 32][at : at + self._record_size])

    def insert(self, blob_id: bytes, record: bytes = b"") -> bool:
        """Store ``record`` for ``blob_id``; False (and nothing changes) when the id is present."""
        if len(blob_id) != ID_LEN or len(record) != self._record_size:
            raise ValueError("id or record has the wrong length")
        small = self._small
        if small is not None:
            if blob_id in small:
                return False
            small[blob_id] = record
            if len(small) > self._small_max:
                self._leave_small()
            return True
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

    def _leave_small(self) -> None:
        small = self._small
        assert small is not None
        self._small = None
        self._make_shards()
        ids = sorted(small)
        self.add_new_sorted(ids, [small[i] for i in ids] if self._record_size else None)

    def add_new_sorted(self, ids: list[bytes], records: list[bytes] | None = None) -> None:
        """Add many ids at once, each shard rebuilt by C loops (sort, join, unpack) instead of
        one insert per id. The ids must be sorted, distinct and absent from the table (IdSet's
        batches); ``records`` go with them, in the same order, when the table has records."""
        if (records is None) != (not self._record_size):
            raise ValueError("records are needed exactly when the table has them")
        if self._small is not None:
            for i, blob_id in enumerate(ids):
                self.insert(blob_id, records[i] if records is not None else b"")
            return
        rows = ids if records is None else list(map(add, ids, records))
        while self._len + len(rows) > self._split_at:
            self._split()
        last = len(self._keys) - 1
        lo = 0
        for shard in range(last + 1):
            hi = (
                bisect_left(ids, _BOUND.pack((shard + 1) << self._shift))
                if shard < last
                else len(ids)
            )
            if hi == lo:
                continue
            new = rows[lo:hi]
            keys, recs = self._keys[shard], self._recs[shard]
            if keys:
                old = map(self._row.pack, keys, map(_first, self._tail.iter_unpack(recs)))
                new = sorted([*old, *new])  # two sorted runs: timsort merges them in one pass
            joined = b"".join(new)
            self._keys[shard] = array("Q", map(_first, self._row_key.iter_unpack(joined)))
            self._recs[shard] = bytearray(b"".join(map(_first, self._row_tail.iter_unpack(joined))))
            self._len += hi - lo
            lo = hi

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
        if self._small is not None:
            yield from sorted(self._small.items())
            return
        width = self._width
        for keys, recs in zip(self._keys, self._recs, strict=True):
            for i, key in enumerate(keys):
                at = i * width
                yield _KEY.pack(key) + recs[at : at + _REST], bytes(recs[at + _REST : at + width])


class IdSet:
    """A set of ids, for the new blobs of one backup. Recent ids are in a plain set (fast; about
    130 bytes each); every ``batch`` of them moves into an IdTable (32 bytes each) by C loops:
    inserts one by one from the reader threads cost several times more, each on a cold cache."""

    __slots__ = ("_batch", "_recent", "_table")

    def __init__(self, batch: int = 1 << 19) -> None:
        self._batch = batch
        self._recent: set[bytes] = set()
        self._table = IdTable(small=0)

    def __len__(self) -> int:
        return len(self._recent) + len(self._table)

    def __contains__(self, blob_id: bytes) -> bool:
        return blob_id in self._recent or blob_id in self._table

    def add(self, blob_id: bytes) -> bool:
        """Add an id; False when it was there already."""
        recent = self._recent
        if blob_id in recent or blob_id in self._table:
            return False
        if len(blob_id) != ID_LEN:
            raise ValueError("id has the wrong length")
        recent.add(blob_id)
        if len(recent) >= self._batch:
            self._table.add_new_sorted(sorted(recent))
            recent.clear()
        return True
