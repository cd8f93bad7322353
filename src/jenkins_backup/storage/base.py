"""The storage interface every backend implements.

Keys are '/'-separated relative paths such as ``data/ab/ab12...``. Backends know nothing about
the repository format; they move bytes. All methods are synchronous and thread-safe: callers run
them from a thread pool.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    mtime: float  # seconds since the epoch, as the store reports it


class Storage(abc.ABC):
    """Byte store. Errors: ObjectNotFound for a missing key, StorageError for the rest."""

    #: True when ``put(create_only=True)`` is atomic against concurrent writers on this store.
    atomic_create: bool = True

    @abc.abstractmethod
    def describe(self) -> str:
        """A location for messages: never contains credentials."""

    @abc.abstractmethod
    def put(self, key: str, data: bytes, *, create_only: bool = False) -> bool:
        """Store ``data`` durably under ``key``.

        With ``create_only`` an existing object is left untouched and False is returned.
        The object is visible either whole or not at all.
        """

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """Return the whole object."""

    @abc.abstractmethod
    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Return ``length`` bytes from ``start``; a negative ``start`` counts from the end."""

    @abc.abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (a folder such as ``data/``)."""

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """Size and time of ``key``, or None when it does not exist."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""

    def sweep(self, max_age: float) -> int:
        """Remove leftovers of interrupted writes older than ``max_age`` seconds; return count."""
        return 0

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections."""
