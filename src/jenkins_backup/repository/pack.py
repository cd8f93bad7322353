"""Packs: many sealed blobs in one immutable object, with a header at the end.

Layout: ``blob_1 .. blob_n | sealed header | u32 header length | b"JBP1"``. The header is a
16-byte random salt, then ``(type u8, id 32 bytes, offset u32, length u32, raw length u32)``
per blob, so that an index can be rebuilt from the packs alone. The pack's name is BLAKE3 of
its stored bytes.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import blake3

from jenkins_backup.errors import CorruptObject
from jenkins_backup.repository.codec import ID_LEN, Codec

MAGIC = b"JBP1"
SALT_LEN = 16
DATA = 0
TREE = 1
_ENTRY = struct.Struct(f"<B{ID_LEN}sIII")
_TRAILER = struct.Struct("<I4s")


@dataclass(frozen=True)
class BlobEntry:
    type: int
    id: bytes
    offset: int
    length: int
    raw_length: int


def encode_header(entries: list[BlobEntry], salt: bytes | None = None) -> bytes:
    """A random salt first: no two packs are ever byte-identical, so a pack name is never
    shared by two writers (a killed run's leftover and a retry, a prune's repack and an
    earlier interrupted one), and a create-only write never lands on an object that a
    concurrent prune may be deleting."""
    salt = os.urandom(SALT_LEN) if salt is None else salt
    if len(salt) != SALT_LEN:
        raise ValueError("pack salt has the wrong length")
    body = b"".join(_ENTRY.pack(e.type, e.id, e.offset, e.length, e.raw_length) for e in entries)
    return salt + body


def decode_header(plain: bytes) -> list[BlobEntry]:
    if len(plain) < SALT_LEN or (len(plain) - SALT_LEN) % _ENTRY.size:
        raise CorruptObject("pack header has a partial entry")
    return [BlobEntry(*fields) for fields in _ENTRY.iter_unpack(plain[SALT_LEN:])]


class PackBuilder:
    """Accumulates sealed blobs of one type; not thread-safe (the writer holds a lock)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.entries: list[BlobEntry] = []
        self.size = 0

    def add(self, type_: int, blob_id: bytes, sealed: bytes, raw_length: int) -> None:
        self.entries.append(BlobEntry(type_, blob_id, self.size, len(sealed), raw_length))
        self.parts.append(sealed)
        self.size += len(sealed)

    def finish(self, codec: Codec) -> tuple[bytes, bytes, list[BlobEntry]]:
        """Return (pack id, pack bytes, entries)."""
        header = codec.seal(encode_header(self.entries))
        self.parts.append(header)
        self.parts.append(_TRAILER.pack(len(header), MAGIC))
        data = b"".join(self.parts)
        self.parts = []
        return blake3.blake3(data).digest(), data, self.entries


def parse_trailer(tail: bytes, pack_size: int) -> int:
    """Return the sealed header's length from the pack's last 8 bytes."""
    if len(tail) != _TRAILER.size:
        raise CorruptObject("pack too short")
    length, magic = _TRAILER.unpack(tail)
    if magic != MAGIC or length + _TRAILER.size > pack_size:
        raise CorruptObject("pack trailer is malformed")
    return int(length)


TRAILER_SIZE = _TRAILER.size
