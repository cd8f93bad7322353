"""Pure encode/decode functions of every on-storage object: round trips and hostile input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jenkins_backup.errors import CorruptObject, RepositoryError
from jenkins_backup.repository import config as cfg
from jenkins_backup.repository.codec import Codec
from jenkins_backup.repository.index import decode_index, encode_index
from jenkins_backup.repository.layout import parse_snapshot_key as parse_key
from jenkins_backup.repository.layout import snapshot_key
from jenkins_backup.repository.pack import BlobEntry, PackBuilder, decode_header, encode_header
from jenkins_backup.repository.snapshot import (
    Snapshot,
    SnapshotStats,
    decode_snapshot,
    encode_snapshot,
)
from jenkins_backup.repository.tree import DIR, FILE, SYMLINK, Entry, decode_tree, encode_tree

ids = st.binary(min_size=32, max_size=32)
names = st.binary(min_size=1, max_size=255).filter(
    lambda n: b"/" not in n and b"\0" not in n and n not in (b".", b"..")
)
u32 = st.integers(min_value=0, max_value=2**32 - 1)
times = st.integers(min_value=0, max_value=2**62)


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    kind = draw(st.sampled_from([FILE, DIR, SYMLINK]))
    name = draw(names)
    mode = draw(st.integers(0, 0o7777))
    mtime = draw(times)
    if kind == FILE:
        return Entry(
            name,
            FILE,
            mode,
            mtime,
            draw(u32),
            draw(times),
            draw(u32),
            tuple(draw(st.lists(ids, max_size=4))),
        )
    if kind == DIR:
        return Entry(name, DIR, mode, mtime, subtree=draw(ids))
    target = draw(st.binary(min_size=1, max_size=300).filter(lambda t: b"\0" not in t))
    return Entry(name, SYMLINK, mode, mtime, target=target)


@given(st.lists(entries(), max_size=20, unique_by=lambda e: e.name))
def test_tree_round_trip(items: list[Entry]) -> None:
    data = encode_tree(items)
    assert decode_tree(data) == sorted(items, key=lambda e: e.name)
    assert encode_tree(list(reversed(items))) == data, "encoding is canonical"


@given(st.binary(max_size=2000))
def test_tree_decoder_rejects_garbage_cleanly(data: bytes) -> None:
    with contextlib.suppress(CorruptObject):
        decode_tree(data)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "t",
                        "name",
                        "mode",
                        "mtime",
                        "content",
                        "tree",
                        "target",
                        "size",
                        "name_b",
                        "v",
                        "entries",
                    ]
                ),
                children,
                max_size=5,
            )
        ),
        max_leaves=30,
    )
)
def test_tree_decoder_rejects_malformed_json(doc: object) -> None:
    import json

    for candidate in (doc, {"v": 1, "entries": doc}, {"v": 1, "entries": [doc]}):
        with contextlib.suppress(CorruptObject):
            decode_tree(json.dumps(candidate).encode())


@pytest.mark.parametrize("where", ["content", "tree"])
def test_tree_ids_are_64_hex_digits_and_nothing_else(where: str) -> None:
    """``bytes.fromhex`` skips spaces: 64 characters with two of them are a 31-byte id."""
    import json

    from jenkins_backup.repository.tree import stored_subtree

    short = "ab" * 31 + "  "
    if where == "content":
        obj: dict[str, object] = {
            "t": "f",
            "name": "a",
            "mode": 420,
            "mtime": 0,
            "content": [short],
        }
    else:
        obj = {"t": "d", "name": "a", "mode": 493, "mtime": 0, "tree": short}
        assert stored_subtree(obj) is None  # the backup reads the directory anew
    with pytest.raises(CorruptObject):
        decode_tree(json.dumps({"v": 1, "entries": [obj]}).encode())


def test_snapshots_and_pack_keys_take_only_64_hex_digit_ids() -> None:
    """The same rule for the other places that read an id: a snapshot's root tree (a hostile
    snapshot object) and a pack's key (a hostile object put under data/)."""
    import json

    from jenkins_backup.repository.layout import pack_id_from_key

    short = "ab" * 31 + "  "
    snap = Snapshot(number=1, time_ns=1, tree=bytes(32), scope="jobs", hostname="h")
    doc = json.loads(encode_snapshot(snap))
    doc["tree"] = short
    with pytest.raises(CorruptObject):
        decode_snapshot(json.dumps(doc).encode())
    assert pack_id_from_key(f"data/ab/{short}") is None
    assert pack_id_from_key("data/ab/" + "ab" * 32) == bytes.fromhex("ab" * 32)


@pytest.mark.parametrize("name", ["..", ".", "a/b", "x\u0000y", ""])
def test_tree_rejects_unsafe_names(name: str) -> None:
    import json

    doc = {"v": 1, "entries": [{"t": "f", "name": name, "mode": 420, "mtime": 0, "content": []}]}
    with pytest.raises(CorruptObject):
        decode_tree(json.dumps(doc).encode())


@given(
    st.lists(
        st.tuples(
            ids, st.lists(st.builds(BlobEntry, st.integers(0, 1), ids, u32, u32, u32), max_size=5)
        ),
        max_size=5,
    )
)
def test_index_round_trip(packs: list[tuple[bytes, list[BlobEntry]]]) -> None:
    assert list(decode_index(encode_index(packs))) == packs


@given(st.binary(max_size=500))
def test_index_decoder_rejects_garbage_cleanly(data: bytes) -> None:
    with contextlib.suppress(CorruptObject):
        list(decode_index(b"JBI1" + data))


@given(st.lists(st.builds(BlobEntry, st.integers(0, 1), ids, u32, u32, u32), max_size=10))
def test_pack_header_round_trip(items: list[BlobEntry]) -> None:
    assert decode_header(encode_header(items)) == items


@given(
    st.builds(
        Snapshot,
        number=st.integers(1, 2**62),
        time_ns=times,
        tree=ids,
        scope=st.sampled_from(["jobs", "full"]),
        hostname=st.text(max_size=30),
        stats=st.builds(SnapshotStats, *[u32] * 8),
    )
)
def test_snapshot_round_trip(snap: Snapshot) -> None:
    assert decode_snapshot(encode_snapshot(snap)) == snap
    key = snapshot_key(snap.time_ns, snap.number, snap.tree)
    ref = parse_key(key)
    assert ref is not None and (ref.time_ns, ref.number) == (snap.time_ns, snap.number)


@given(st.binary(max_size=500))
def test_snapshot_decoder_rejects_garbage_cleanly(data: bytes) -> None:
    with contextlib.suppress(CorruptObject):
        decode_snapshot(data)


@pytest.mark.parametrize(
    "key",
    [
        "snapshots/x",
        "snapshots/1-2-3",
        "other/00000000000000000001-1-" + "a" * 64,
        "snapshots/00000000000000000001-1-" + "A" * 64,
    ],
)
def test_foreign_snapshot_keys_are_ignored(key: str) -> None:
    assert parse_key(key) is None


def test_config_round_trip_and_rejection() -> None:
    c = cfg.new_config()
    assert cfg.decode_config(cfg.encode_config(c)) == c
    for bad in (
        b"{}",
        b"[]",
        b"not json",
        b'{"format": "other", "version": 1}',
        b'{"format": "jenkins-backup", "version": 99}',
    ):
        with pytest.raises(RepositoryError):
            cfg.decode_config(bad)


@settings(max_examples=50)
@given(st.binary(max_size=5000))
def test_codec_round_trip_and_verification(data: bytes) -> None:
    codec = Codec()
    blob_id = codec.blob_id(data)
    sealed = codec.seal(data)
    assert codec.unseal_verified(sealed, blob_id, len(data)) == data
    if data:
        with pytest.raises(CorruptObject):
            codec.unseal_verified(sealed, bytes(32), len(data))


def test_codec_refuses_decompression_bombs() -> None:
    codec = Codec()
    sealed = codec.seal(b"\0" * (10 << 20))
    with pytest.raises(CorruptObject):
        codec.unseal(sealed, 1 << 20)


def test_packs_with_the_same_blobs_have_distinct_names() -> None:
    """A pack name belongs to one writer: a retry or a repack of the same blobs never lands on
    an existing (possibly condemned) pack, which a create-only write would silently trust."""
    codec = Codec()
    names = set()
    for _ in range(3):
        builder = PackBuilder()
        builder.add(0, codec.blob_id(b"x"), codec.seal(b"x"), 1)
        pack_id, data, entries = builder.finish(codec)
        names.add(pack_id)
        assert decode_header(codec.unseal(data[-8 - _header_len(data) : -8], 1 << 20)) == entries
    assert len(names) == 3


def _header_len(pack: bytes) -> int:
    import struct

    return int(struct.unpack("<I", pack[-8:-4])[0])
