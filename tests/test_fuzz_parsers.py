"""Fuzz every metadata parser with structured hostile input; each may only raise its own error.

test_format.py feeds random bytes to the tree, index and snapshot decoders; this file adds
structure-aware inputs (valid layouts with hostile values) and the parsers it does not cover:
config, pack header and trailer, the encryption envelope and the key slots.

The default run is short. A long run: ``FUZZ_EXAMPLES=20000 pytest tests/test_fuzz_parsers.py
--hypothesis-show-statistics``.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jenkins_backup.errors import CorruptObject, EncryptionKeyError, RepositoryError
from jenkins_backup.repository import config as cfg
from jenkins_backup.repository import crypto
from jenkins_backup.repository.codec import Codec
from jenkins_backup.repository.index import MAGIC as INDEX_MAGIC
from jenkins_backup.repository.index import decode_index
from jenkins_backup.repository.pack import MAGIC as PACK_MAGIC
from jenkins_backup.repository.pack import decode_header, parse_trailer
from jenkins_backup.repository.snapshot import decode_snapshot
from jenkins_backup.repository.tree import decode_tree

fuzz = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# JSON values with the integers that break naive code: negative, huge, 2**63 and 2**64 edges.
edge_ints = st.sampled_from([0, -1, 1, 2**31, 2**32 - 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1])
scalars = st.none() | st.booleans() | st.integers() | edge_ints | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _doc(base: dict[str, object], fields: list[str]) -> st.SearchStrategy[dict[str, object]]:
    """``base`` with some of ``fields`` replaced by hostile values, or dropped."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, object]:
        doc = dict(base)
        for key in draw(st.lists(st.sampled_from(fields), max_size=len(fields), unique=True)):
            if draw(st.booleans()):
                doc[key] = draw(json_values)
            else:
                doc.pop(key, None)
        return doc

    return build()


ID = "ab" * 32
TREE_ENTRY: dict[str, object] = {
    "t": "f",
    "name": "x",
    "mode": 420,
    "mtime": 0,
    "size": 0,
    "content": [],
    "tree": ID,
    "target": "t",
    "name_b": "eA==",
    "ctime": 0,
    "ino": 0,
}


@fuzz
@given(st.lists(_doc(TREE_ENTRY, list(TREE_ENTRY)), max_size=6))
def test_tree_entries_with_hostile_fields(entries: list[dict[str, object]]) -> None:
    for e in entries:
        e["t"] = e.get("t") if isinstance(e.get("t"), str) else "f"
    try:
        for parsed in decode_tree(json.dumps({"v": 1, "entries": entries}).encode()):
            assert parsed.name and b"/" not in parsed.name and b"\0" not in parsed.name
            assert parsed.name not in (b".", b"..") and len(parsed.name) <= 255
            assert 0 <= parsed.mode <= 0o7777 and parsed.size >= 0 and parsed.mtime_ns < 2**63
    except CorruptObject:
        pass


@fuzz
@given(
    st.lists(
        st.tuples(
            st.binary(min_size=32, max_size=32), st.integers(0, 2**32 - 1), st.binary(max_size=200)
        ),
        max_size=4,
    )
)
def test_index_with_hostile_counts(parts: list[tuple[bytes, int, bytes]]) -> None:
    plain = INDEX_MAGIC + b"".join(pid + struct.pack("<I", n) + body for pid, n, body in parts)
    try:
        for _, entries in decode_index(plain):
            assert all(0 <= e.offset < 2**32 for e in entries)
    except CorruptObject:
        pass


SNAPSHOT: dict[str, object] = {
    "v": 1,
    "number": 1,
    "time_ns": 1,
    "tree": ID,
    "scope": "jobs",
    "hostname": "h",
    "parent": "",
    "program": "",
    "source": "backup",
    "stats": {"files": 1},
}


@fuzz
@given(_doc(SNAPSHOT, list(SNAPSHOT)))
def test_snapshot_with_hostile_fields(doc: dict[str, object]) -> None:
    try:
        snap = decode_snapshot(json.dumps(doc).encode())
    except CorruptObject:
        return
    assert isinstance(snap.number, int) and len(snap.tree) == 32
    assert all(isinstance(getattr(snap, f), str) for f in ("scope", "hostname", "parent"))


CONFIG = json.loads(cfg.encode_config(cfg.new_config()))


@fuzz
@given(
    _doc(CONFIG, list(CONFIG))
    | st.builds(
        lambda c: {**CONFIG, "chunker": c}, _doc(CONFIG["chunker"], list(CONFIG["chunker"]))
    )
)
def test_config_with_hostile_fields(doc: dict[str, object]) -> None:
    try:
        c = cfg.decode_config(json.dumps(doc).encode())
    except RepositoryError:
        return
    assert 64 <= c.chunker.min_size <= c.chunker.avg_size <= c.chunker.max_size <= 64 << 20


@fuzz
@given(st.binary(max_size=300))
def test_config_rejects_garbage_cleanly(data: bytes) -> None:
    with contextlib.suppress(RepositoryError):
        cfg.decode_config(data)


@fuzz
@given(st.binary(max_size=300), st.integers(0, 2**40))
def test_pack_header_and_trailer(data: bytes, pack_size: int) -> None:
    with contextlib.suppress(CorruptObject):
        decode_header(data)
    for tail in (data[-8:], data[-4:] + PACK_MAGIC):
        with contextlib.suppress(CorruptObject):
            assert 0 <= parse_trailer(tail, pack_size) <= pack_size


_codec = crypto.codec_for(bytes(range(64)))


@fuzz
@given(st.binary(max_size=400), st.integers(0, 1 << 20))
def test_crypto_envelope_rejects_forgeries(sealed: bytes, max_size: int) -> None:
    try:
        _codec.unseal(sealed, max_size)
    except CorruptObject:
        pass
    else:
        raise AssertionError("a forged object passed authentication")


@fuzz
@given(st.binary(max_size=2000), st.integers(0, 10))
def test_crypto_round_trip_and_bit_flips(data: bytes, flip: int) -> None:
    sealed = bytearray(_codec.seal(data))
    assert _codec.unseal_verified(bytes(sealed), _codec.blob_id(data), len(data)) == data
    assert Codec().blob_id(data) != _codec.blob_id(data), "names are keyed"
    sealed[flip % len(sealed)] ^= 0x40
    try:
        _codec.unseal(bytes(sealed), len(data))
    except CorruptObject:
        return
    raise AssertionError("a modified object passed authentication")


SLOT: dict[str, object] = {
    "id": "ab12",
    "created": "",
    "kdf": "scrypt",
    "n": 4,
    "r": 1,
    "p": 1,
    "salt": "00" * 16,
    "wrapped": "00" * (crypto.NONCE + crypto.MASTER_LEN + crypto.TAG),
}
ENCRYPTION: dict[str, object] = {"version": 1, "cipher": crypto.CIPHER, "keys": [SLOT]}


@fuzz
@given(
    _doc(ENCRYPTION, list(ENCRYPTION))
    | st.builds(lambda s: {**ENCRYPTION, "keys": [s]}, _doc(SLOT, list(SLOT)))
)
def test_key_slots_with_hostile_fields(encryption: dict[str, object]) -> None:
    config = cfg.RepoConfig(id="r", encryption=encryption)
    try:
        crypto.unlock(config, b"some key of sixteen+ chars")
    except (EncryptionKeyError, RepositoryError):
        return
    raise AssertionError("a forged key slot opened")
