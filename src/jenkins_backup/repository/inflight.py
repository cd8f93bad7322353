"""Backups in flight, announced in the repository: advisory markers that expire.

A backup writes ``running/<random>`` as it starts and deletes it when it ends (committed or
failed). Only ``prune --now``, which deletes unreferenced data at once, and ``status`` read them:
no correctness rests on them (a killed pod leaves its marker behind, so a marker counts only
until it expires: the store's time stamp on it plus the backup's timeout, and never longer than
the prune grace). A marker whose content cannot be read counts as a backup in flight, expiring
by the reader's own timeout: the side of caution for a deletion the user asked for.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from jenkins_backup.errors import CorruptObject, ObjectNotFound
from jenkins_backup.repository import layout
from jenkins_backup.repository.repo import Repository

_MAX_MARKER_BYTES = 4096


@dataclass(frozen=True)
class InFlight:
    key: str
    number: int | None  # None: the marker could not be read
    hostname: str
    pid: int
    expires_ns: int  # by the store's clock


def encode_marker(number: int, hostname: str, pid: int, started_ns: int, timeout: float) -> bytes:
    doc = {
        "v": 1,
        "number": number,
        "hostname": hostname,
        "pid": pid,
        "started_ns": started_ns,
        "timeout": timeout,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def decode_marker(data: bytes) -> tuple[int, str, int, float]:
    """(number, hostname, pid, timeout in s) of a marker; CorruptObject when malformed."""
    try:
        doc = json.loads(data)
        number, hostname, pid, timeout = (
            doc["number"], doc["hostname"], doc["pid"], doc["timeout"]
        )  # fmt: skip
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise CorruptObject(f"malformed marker: {exc}") from exc
    if (
        doc.get("v") != 1
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in (number, pid))
        or not isinstance(hostname, str)
        or not isinstance(timeout, int | float)
        or isinstance(timeout, bool)
        or not 0 < timeout < 10**9
    ):
        raise CorruptObject("malformed marker")
    return number, hostname, pid, float(timeout)


def announce(
    repo: Repository, number: int, hostname: str, pid: int, started_ns: int, timeout: float
) -> str:
    """Write the marker of a backup starting now; returns its key (for ``withdraw``)."""
    key = layout.running_key(secrets.token_hex(16))
    plain = encode_marker(number, hostname, pid, started_ns, timeout)
    repo.storage.put(key, repo.codec.seal(plain), create_only=True)
    return key


def withdraw(repo: Repository, key: str) -> None:
    repo.storage.delete(key)


def in_flight(repo: Repository, now_ns: int, own_timeout: float, max_age: float) -> list[InFlight]:
    """The markers not yet expired at ``now_ns`` (the store's clock). ``own_timeout``: the
    lifetime of a marker that cannot be read; ``max_age``: the longest any marker counts."""
    found: list[InFlight] = []
    for info in repo.storage.list(layout.RUNNING):
        written = layout.written_ns(info)
        number: int | None = None
        hostname, pid, timeout = "", 0, own_timeout
        try:
            if not layout.is_running_key(info.key) or info.size > _MAX_MARKER_BYTES:
                raise CorruptObject("not a marker")
            plain = repo.codec.unseal(repo.storage.get(info.key), _MAX_MARKER_BYTES)
            number, hostname, pid, timeout = decode_marker(plain)
        except ObjectNotFound:
            continue  # ended meanwhile
        except CorruptObject:
            number = None
        expires = written + int(min(timeout, max_age) * 1e9)
        if now_ns < expires:
            found.append(InFlight(info.key, number, hostname, pid, expires))
    return found
