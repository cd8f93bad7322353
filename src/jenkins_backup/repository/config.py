"""The repository config: written once, create-only, by the first backup."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from jenkins_backup.errors import RepositoryError
from jenkins_backup.repository import layout

KEY = layout.CONFIG
FORMAT = "jenkins-backup"
VERSION = 1
#: Files up to this size are stored as one blob; bigger ones are chunked (``ChunkerParams``), so
#: no blob of a valid backup is larger than ``max(SMALL_FILE, max_size)``.
SMALL_FILE = 1 << 20


@dataclass(frozen=True)
class ChunkerParams:
    min_size: int = 256 * 1024
    avg_size: int = 1024 * 1024
    max_size: int = 4 * 1024 * 1024
    seed: int = 0


@dataclass(frozen=True)
class RepoConfig:
    id: str
    version: int = VERSION
    chunker: ChunkerParams = field(default_factory=ChunkerParams)
    compression: str = "zstd"
    hash: str = "blake3"
    # None for a plain repository; otherwise the parameters and wrapped keys (crypto.py).
    encryption: dict[str, Any] | None = None


def new_config(encryption: dict[str, Any] | None = None) -> RepoConfig:
    return RepoConfig(id=secrets.token_hex(16), encryption=encryption)


def encode_config(c: RepoConfig) -> bytes:
    doc = asdict(c)
    doc["format"] = FORMAT
    return json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"


def _checked(c: RepoConfig) -> RepoConfig:
    """Hostile input: the chunker sizes buffers and the id names things; bound them."""
    k = c.chunker
    sizes = (k.min_size, k.avg_size, k.max_size, k.seed)
    if (
        not isinstance(c.id, str)
        or not 1 <= len(c.id) <= 64
        or c.compression != "zstd"
        or c.hash != "blake3"
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in sizes)
        or not 64 <= k.min_size <= k.avg_size <= k.max_size <= 64 << 20
        or not 0 <= k.seed < 2**32
        or not (c.encryption is None or isinstance(c.encryption, dict))
    ):
        raise ValueError("field out of range")
    return c


def decode_config(data: bytes) -> RepoConfig:
    try:
        doc = json.loads(data)
        if doc.pop("format") != FORMAT:
            raise RepositoryError("not a jenkins-backup repository")
        version = doc.get("version")
        if version != VERSION:
            raise RepositoryError(f"repository format version {version} is not supported")
        chunker = ChunkerParams(**doc.pop("chunker"))
        return _checked(RepoConfig(chunker=chunker, **doc))
    except RepositoryError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise RepositoryError("repository config is malformed") from exc
