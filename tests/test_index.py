"""The compact in-memory index: the same answers as a dict, without an object per blob."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jenkins_backup.errors import CorruptObject
from jenkins_backup.repository import idtable
from jenkins_backup.repository import writer as writer_module
from jenkins_backup.repository.idtable import IdSet, IdTable
from jenkins_backup.repository.index import (
    MAGIC,
    Index,
    Location,
    decode_index,
    encode_index,
    encode_pack,
)
from jenkins_backup.repository.pack import DATA, TREE, BlobEntry
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.writer import BlobWriter
from jenkins_backup.storage.local import LocalStorage


def blob_id(n: int) -> bytes:
    return hashlib.blake2b(n.to_bytes(8, "big"), digest_size=32).digest()


def same_prefix_ids(count: int) -> list[bytes]:
    """Ids that share their first 8 bytes: the table's sort key collides, only the rest differs."""
    return [b"\x42" * 8 + blob_id(n)[8:] for n in range(count)]


# A table is a dict up to ``small`` ids, then sharded arrays: 0 = arrays from the start,
# 300 = a dict that turns into arrays during the test, None = the default (a dict throughout).
SMALL_SIZES = pytest.mark.parametrize("small", [0, 300, None], ids=["arrays", "both", "dict"])


@SMALL_SIZES
def test_table_set_finds_what_was_inserted_and_nothing_else(small: int | None) -> None:
    table = IdTable(small=small)
    ids = [blob_id(n) for n in range(1000)]
    assert all(table.insert(i) for i in ids)
    assert len(table) == 1000
    assert all(i in table for i in ids)
    assert not any(blob_id(n) in table for n in range(1000, 2000))
    assert not table.insert(ids[7]), "a second insert of an id is refused"
    assert len(table) == 1000


@SMALL_SIZES
def test_table_keeps_the_first_record_of_an_id(small: int | None) -> None:
    table = IdTable(record_size=4, small=small)
    assert table.insert(blob_id(1), b"AAAA")
    assert not table.insert(blob_id(1), b"BBBB")
    for n in range(2, 400):
        table.insert(blob_id(n), n.to_bytes(4, "little"))
    assert not table.insert(blob_id(1), b"CCCC")
    assert table.get(blob_id(1)) == b"AAAA"
    assert table.get(blob_id(399)) == (399).to_bytes(4, "little")
    assert table.get(blob_id(400)) is None


@pytest.mark.parametrize("small", [0, 20, None], ids=["arrays", "both", "dict"])
def test_table_tells_apart_ids_with_the_same_first_bytes(small: int | None) -> None:
    table = IdTable(record_size=2, small=small)
    ids = same_prefix_ids(50)
    for n, i in enumerate(ids[:40]):
        assert table.insert(i, n.to_bytes(2, "little"))
    for n, i in enumerate(ids[:40]):
        assert table.get(i) == n.to_bytes(2, "little")
    assert not any(i in table for i in ids[40:])
    assert not table.insert(ids[3], b"zz")
    assert table.get(ids[3]) == (3).to_bytes(2, "little")


@SMALL_SIZES
def test_table_refuses_malformed_ids_and_records(small: int | None) -> None:
    table = IdTable(record_size=3, small=small)
    with pytest.raises(ValueError):
        table.insert(b"short", b"abc")
    with pytest.raises(ValueError):
        table.insert(blob_id(1), b"toolong")
    table.insert(blob_id(1), b"abc")
    assert table.get(blob_id(1)[:31]) is None
    assert table.get(b"") is None
    assert blob_id(1) + b"x" not in table


def test_table_survives_its_shards_splitting() -> None:
    """Enough ids to split every shard twice; prefix collisions straddle no shard boundary."""
    table = IdTable(record_size=4, small=1000)
    ids = [blob_id(n) for n in range(140_000)] + same_prefix_ids(30)
    for n, i in enumerate(ids):
        table.insert(i, n.to_bytes(4, "little"))
    assert len(table) == len(ids)
    for n in range(0, len(ids), 97):
        assert table.get(ids[n]) == n.to_bytes(4, "little")
    assert all(table.get(i) is not None for i in ids[-30:])
    listed = list(table.items())
    assert [k for k, _ in listed] == sorted(ids), "items come in id order"
    assert dict(listed) == {i: n.to_bytes(4, "little") for n, i in enumerate(ids)}


def test_id_set_moves_batches_into_a_table_without_losing_an_id() -> None:
    ids = IdSet(batch=100)
    first = [blob_id(n) for n in range(99)]
    assert all(ids.add(i) for i in first)
    assert not ids.add(first[0])
    assert ids.add(blob_id(99)), "the 100th id moves the batch into the table"
    assert not ids.add(first[5]), "found in the table"
    assert all(ids.add(blob_id(n)) for n in range(100, 550))
    assert len(ids) == 550
    assert all(blob_id(n) in ids for n in range(550))
    assert not any(ids.add(blob_id(n)) for n in range(0, 550, 7))
    assert blob_id(550) not in ids
    with pytest.raises(ValueError):
        ids.add(b"short")


# Ids from a few prefixes, so that hypothesis often makes 8-byte prefixes collide.
prefixes = st.sampled_from([b"\x00" * 8, b"\xff" * 8, b"\x80" + b"\x00" * 7, b"abcdefgh"])
ids_st = st.one_of(
    st.binary(min_size=32, max_size=32),
    st.builds(lambda p, r: p + r, prefixes, st.binary(min_size=24, max_size=24)),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(ids_st, st.binary(min_size=5, max_size=5)), max_size=300),
    ids_st,
    st.sampled_from([0, 1, 17, None]),
)
def test_table_behaves_like_a_dict_with_first_write_wins(
    pairs: list[tuple[bytes, bytes]], probe: bytes, small: int | None
) -> None:
    table = IdTable(record_size=5, small=small)
    model: dict[bytes, bytes] = {}
    for key, rec in pairs:
        assert table.insert(key, rec) == (key not in model)
        model.setdefault(key, rec)
    assert len(table) == len(model)
    assert dict(table.items()) == model
    assert [k for k, _ in table.items()] == sorted(model)
    assert table.get(probe) == model.get(probe)
    assert (probe in table) == (probe in model)


@settings(max_examples=150, deadline=None)
@given(st.lists(ids_st, max_size=300), st.integers(min_value=1, max_value=40), ids_st)
def test_id_set_behaves_like_a_set(ids: list[bytes], batch: int, probe: bytes) -> None:
    """Batches of every size, merged into shards that already hold ids with the same prefix."""
    id_set = IdSet(batch=batch)
    model: set[bytes] = set()
    for i in ids:
        assert id_set.add(i) == (i not in model)
        model.add(i)
    assert len(id_set) == len(model)
    assert all(i in id_set for i in model)
    assert (probe in id_set) == (probe in model)


def test_batches_build_the_same_table_as_inserts() -> None:
    ids = sorted({blob_id(n) for n in range(70_000)} | set(same_prefix_ids(20)))
    one_by_one, batched = IdTable(small=0), IdTable(small=0)
    for i in ids:
        one_by_one.insert(i)
    batched.add_new_sorted(ids[::2])  # into an empty table, then into full shards
    batched.add_new_sorted(ids[1::2])
    assert len(batched) == len(ids)
    assert list(batched.items()) == list(one_by_one.items())
    assert all(i in batched for i in ids[::501])
    with pytest.raises(ValueError):
        IdTable(record_size=1).add_new_sorted(ids[:3])


def test_batches_with_records_and_a_dict_that_turns_into_arrays() -> None:
    ids = sorted(blob_id(n) for n in range(5000))
    recs = [i[:3] for i in ids]
    table = IdTable(record_size=3, small=1000)
    table.add_new_sorted(ids[:600], recs[:600])  # a dict still
    table.add_new_sorted(ids[600:3000], recs[600:3000])  # the dict overflows into arrays
    table.add_new_sorted(ids[3000:], recs[3000:])  # merged into shards holding ids
    assert len(table) == 5000
    assert dict(table.items()) == dict(zip(ids, recs, strict=True))
    assert table.get(ids[4321]) == recs[4321]
    with pytest.raises(ValueError):
        table.add_new_sorted([blob_id(10**6)])


def pack(n: int) -> bytes:
    return hashlib.sha256(b"pack %d" % n).digest()


def entry(n: int, type_: int = DATA, offset: int = 0) -> BlobEntry:
    return BlobEntry(type_, blob_id(n), offset, 100 + n, 2**32 - 1 - n)


@pytest.mark.parametrize("small", [0, 1000, None], ids=["arrays", "both", "dict"])
def test_index_merges_many_index_files_first_location_wins(
    small: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fifty index files whose blobs overlap, as after concurrent backups of the same data."""
    if small is not None:
        monkeypatch.setattr(idtable, "SMALL", small)
    files = []
    expected: dict[bytes, Location] = {}
    for f in range(50):
        packs = []
        for p in range(f * 3, f * 3 + 3):
            entries = [
                entry(n, offset=p * 1000 + k) for k, n in enumerate(range(p * 40, p * 40 + 60))
            ]
            packs.append((pack(p), entries))
            for e in entries:
                loc = Location(pack(p), e.type, e.offset, e.length, e.raw_length)
                expected.setdefault(e.id, loc)
        files.append(encode_index(packs))
    index = Index()
    for plain in files:
        index.add_encoded(plain)
    assert len(index) == len(expected)
    for blob, loc in expected.items():
        assert index.get(blob) == loc
        assert blob in index
    assert index.get(blob_id(10**6)) is None
    assert blob_id(10**6) not in index
    assert index.packs() == {pack(p) for p in range(150)}
    assert dict(index.items()) == expected


def test_index_reads_an_index_file_as_decode_index_does() -> None:
    plain = encode_index(
        [(pack(1), [entry(1), entry(2)]), (pack(2), [entry(3, TREE)]), (pack(3), [])]
    )
    by_decoder = Index()
    for pack_id, entries in decode_index(plain):
        by_decoder.add_pack(pack_id, entries)
    by_bytes = Index()
    by_bytes.add_encoded(plain)
    assert dict(by_bytes.items()) == dict(by_decoder.items())
    assert by_bytes.packs() == by_decoder.packs() == {pack(1), pack(2), pack(3)}
    assert by_bytes.get(blob_id(3)) == Location(pack(2), TREE, 0, 103, 2**32 - 4)


def test_index_keeps_only_one_type_when_asked() -> None:
    plain = encode_index([(pack(1), [entry(1), entry(2)]), (pack(2), [entry(3, TREE)])])
    trees = Index()
    trees.add_encoded(plain, only_type=TREE)
    assert blob_id(3) in trees
    assert blob_id(1) not in trees
    assert trees.packs() == {pack(2)}


@pytest.mark.parametrize(
    "plain",
    [
        b"",
        b"JBI0",
        MAGIC + b"\x00" * 10,
        MAGIC + pack(1) + (2).to_bytes(4, "little") + b"\x00" * 45,
        MAGIC + pack(1) + (60_000_000).to_bytes(4, "little"),
    ],
    ids=["empty", "magic", "short-header", "short-entries", "huge-count"],
)
def test_index_refuses_a_malformed_index_file(plain: bytes) -> None:
    with pytest.raises(CorruptObject):
        Index().add_encoded(plain)


def test_encode_pack_is_one_pack_of_an_index_file() -> None:
    packs = [(pack(1), [entry(1), entry(2)]), (pack(2), [entry(3)])]
    assert MAGIC + b"".join(encode_pack(p, e) for p, e in packs) == encode_index(packs)


def test_deferred_index_file_is_merged_at_the_first_lookup() -> None:
    index = Index()
    index.add_pack(pack(1), [entry(1)])
    index.defer(bytearray(encode_index([(pack(2), [entry(1), entry(2)])])))
    assert index.get(blob_id(1)) == Location(pack(1), DATA, 0, 101, 2**32 - 2)
    assert index.get(blob_id(2)) == Location(pack(2), DATA, 0, 102, 2**32 - 3)
    assert len(index) == 2
    assert index.packs() == {pack(1), pack(2)}


def open_repo(path: Path) -> Repository:
    return Repository.open_or_create(LocalStorage(str(path), fsync=False))


def test_writer_stores_each_blob_once_and_indexes_it(tmp_path: Path) -> None:
    repo = open_repo(tmp_path / "repo")
    writer = BlobWriter(repo, uploads=2)
    blobs = [os.urandom(200) for _ in range(300)]
    try:
        added = [writer.add(DATA, repo.codec.blob_id(b), b) for b in blobs + blobs[:50]]
        keys = writer.flush()
    finally:
        writer.close()
    assert added == [True] * 300 + [False] * 50
    assert writer.blobs_added == 300
    assert len(keys) == 1
    assert repo.index().get(repo.codec.blob_id(blobs[0])) is not None, "merged after flush"

    again = open_repo(tmp_path / "repo")
    assert len(again.index()) == 300
    for b in blobs:
        assert again.read_blob(again.codec.blob_id(b)) == b
    second = BlobWriter(again, uploads=2)
    try:
        assert not second.add(DATA, again.codec.blob_id(blobs[5]), blobs[5])
        assert second.flush() == []
    finally:
        second.close()


def test_writer_splits_a_large_index_into_several_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backup of millions of blobs writes several index files; readers merge them all."""
    monkeypatch.setattr(writer_module, "INDEX_FILE_BYTES", 4000)
    monkeypatch.setattr(writer_module, "DATA_PACK_TARGET", 2000)
    repo = open_repo(tmp_path / "repo")
    writer = BlobWriter(repo, uploads=2)
    blobs = [os.urandom(300) for _ in range(400)]
    try:
        for b in blobs:
            writer.add(DATA, repo.codec.blob_id(b), b)
        keys = writer.flush()
    finally:
        writer.close()
    assert len(keys) > 2
    assert sorted(keys) == repo.index_files()
    again = open_repo(tmp_path / "repo")
    assert len(again.index()) == 400
    for b in blobs[::7]:
        assert again.read_blob(again.codec.blob_id(b)) == b
