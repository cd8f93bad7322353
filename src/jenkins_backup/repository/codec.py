"""Hashing, compression and (optional) encryption of every stored byte.

A sealed object is ``frame`` when the repository is not encrypted, and
``nonce(12) || AEAD(frame)`` when it is. A frame is one flag byte (0 = raw, 1 = zstd) followed
by the body. Object ids are BLAKE3 of the plaintext, keyed when the repository is encrypted so
that names reveal nothing about content.
"""

from __future__ import annotations

import threading
from typing import Protocol

import blake3
import zstandard

from jenkins_backup.errors import CorruptObject

ID_LEN = 32


def parse_id(value: object) -> bytes | None:
    """An object id from its 2 * ID_LEN hex digits; None for anything else. ``bytes.fromhex``
    alone skips whitespace, and would make a shorter id of a string of the right length."""
    if not isinstance(value, str) or len(value) != 2 * ID_LEN:
        return None
    try:
        out = bytes.fromhex(value)
    except ValueError:
        return None
    return out if len(out) == ID_LEN else None


RAW = 0
ZSTD = 1
# Compression is skipped when it saves less than this fraction (archived binaries, jars, zips).
_MIN_SAVING = 0.03


class Cipher(Protocol):
    """Authenticated encryption of one object; implemented in repository/crypto.py."""

    def encrypt(self, frame: bytes) -> bytes: ...

    def decrypt(self, sealed: bytes) -> bytes: ...


class Codec:
    """Per-repository transform between plaintext and stored bytes. Thread-safe."""

    def __init__(
        self, *, level: int = 3, id_key: bytes | None = None, cipher: Cipher | None = None
    ) -> None:
        self.level = level
        self.id_key = id_key
        self.cipher = cipher
        self._local = threading.local()

    @property
    def encrypted(self) -> bool:
        return self.cipher is not None

    def blob_id(self, data: bytes | memoryview) -> bytes:
        if self.id_key is None:
            return blake3.blake3(data).digest()
        return blake3.blake3(data, key=self.id_key).digest()

    def _compressor(self) -> zstandard.ZstdCompressor:
        comp: zstandard.ZstdCompressor | None = getattr(self._local, "comp", None)
        if comp is None:
            comp = zstandard.ZstdCompressor(level=self.level)
            self._local.comp = comp
        return comp

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        dec: zstandard.ZstdDecompressor | None = getattr(self._local, "dec", None)
        if dec is None:
            dec = zstandard.ZstdDecompressor()
            self._local.dec = dec
        return dec

    def seal(self, data: bytes | memoryview) -> bytes:
        compressed = self._compressor().compress(data)
        if len(compressed) < len(data) * (1 - _MIN_SAVING):
            frame = bytes((ZSTD,)) + compressed
        else:
            frame = bytes((RAW,)) + bytes(data)
        return self.cipher.encrypt(frame) if self.cipher is not None else frame

    def unseal(self, sealed: bytes | memoryview, max_size: int) -> bytes:
        """Return the plaintext; raise CorruptObject on any malformation."""
        frame = self.cipher.decrypt(bytes(sealed)) if self.cipher is not None else sealed
        if len(frame) < 1:
            raise CorruptObject("empty object")
        flag = frame[0]
        body = frame[1:]
        if flag == RAW:
            if len(body) > max_size:
                raise CorruptObject("object larger than announced")
            return bytes(body)
        if flag == ZSTD:
            try:
                out: bytes = self._decompressor().decompress(body, max_output_size=max_size)
            except zstandard.ZstdError as exc:
                raise CorruptObject(f"bad compressed data: {exc}") from exc
            if len(out) > max_size:
                raise CorruptObject("object larger than announced")
            return out
        raise CorruptObject(f"unknown frame flag {flag}")

    def unseal_verified(self, sealed: bytes | memoryview, blob_id: bytes, size: int) -> bytes:
        data = self.unseal(sealed, size)
        if len(data) != size or self.blob_id(data) != blob_id:
            raise CorruptObject(f"blob {blob_id.hex()[:16]} fails its hash check")
        return data
