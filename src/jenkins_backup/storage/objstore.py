"""Operations shared by the backends built on obstore (S3 and Azure Blob).

obstore's synchronous calls release the GIL, so callers' thread pools keep the network busy.
Its stores resolve object paths below the repository prefix given at construction.

Catch: obstore's ``list(prefix)`` matches whole path segments only (``data/ab`` does not find
``data/ab12``). Our callers list folders (``data/``, ``snapshots/``), which is the efficient
case; a non-folder prefix is served by listing its parent folder and filtering here.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError, GenericError

from jenkins_backup.errors import ObjectNotFound, StorageError, UsageError
from jenkins_backup.storage.base import ObjectInfo, Storage
from jenkins_backup.storage.cloud import (
    TransferOptions,
    check_endpoint,
    flag,
    obstore_client_options,
    obstore_retry,
    short_message,
)

if TYPE_CHECKING:
    from obstore.store import AzureStore, S3Store

T = TypeVar("T")
# A 4xx answer is final (bad request, auth); anything else may be transient.
_CLIENT_ERROR = re.compile(r"status code: 4\d\d")


class ObstoreStorage(Storage):
    """A Storage over an obstore store; subclasses build the store and describe it."""

    #: Whether the store answers ``Range: bytes=-N`` (S3 does, Azure does not).
    suffix_ranges: bool = True

    def __init__(self, store: S3Store | AzureStore, location: str, options: TransferOptions):
        self._store = store
        self._location = location
        self._options = options

    def describe(self) -> str:
        return self._location

    def _call(self, what: str, key: str, fn: Callable[[], T]) -> T:
        """Run one library call, mapping its errors to ours with short, credential-free text."""
        try:
            return fn()
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        except (BaseError, OSError, ValueError, RuntimeError) as exc:
            raise StorageError(f"{what} {key} at {self._location}: {short_message(exc)}") from None

    def put(self, key: str, data: bytes, *, create_only: bool = False) -> bool:
        if create_only:
            return self._call("write", key, lambda: self._create(key, data))
        self._call(
            "write",
            key,
            lambda: obstore.put(
                self._store,
                key,
                data,
                use_multipart=len(data) > self._options.part_size,
                chunk_size=self._options.part_size,
                max_concurrency=self._options.part_concurrency,
            ),
        )
        return True

    def _create(self, key: str, data: bytes) -> bool:
        """One conditional PUT (If-None-Match: *), retried here on connection errors.

        obstore does not combine preconditions with multipart uploads, and atomicity matters
        more than parallel parts for objects of a few MiB. It retries 5xx answers itself but
        not a dropped connection, since the PUT may have landed; we may, because the object is
        content-addressed: if a retry finds it present, those are our bytes (returns False).
        """
        deadline = time.monotonic() + self._options.retry_timeout
        delay = 0.1
        for attempt in itertools.count():
            try:
                obstore.put(self._store, key, data, mode="create", use_multipart=False)
            except AlreadyExistsError:
                return False
            except GenericError as exc:
                transient = not _CLIENT_ERROR.search(str(exc))
                pause = random.uniform(0, delay)  # full jitter
                if (
                    not transient
                    or attempt >= self._options.max_retries
                    or time.monotonic() + pause > deadline
                ):
                    raise
                time.sleep(pause)
                delay = min(delay * 2, 5.0)
                continue
            return True
        raise AssertionError("unreachable")

    def get(self, key: str) -> bytes:
        return self._call("read", key, lambda: bytes(obstore.get(self._store, key).bytes()))

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        if start >= 0:
            return self._call(
                "read",
                key,
                lambda: bytes(obstore.get_range(self._store, key, start=start, length=length)),
            )
        if self.suffix_ranges:
            tail = self._call(
                "read",
                key,
                lambda: bytes(
                    obstore.get(self._store, key, options={"range": {"suffix": -start}}).bytes()
                ),
            )
            return tail[:length]
        info = self.stat(key)
        if info is None:
            raise ObjectNotFound(key)
        offset = max(0, info.size + start)
        if offset >= info.size:
            return b""
        return self.get_range(key, offset, min(length, info.size - offset))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        folder, _, rest = prefix.rpartition("/")
        stream = self._call(
            "list",
            prefix,
            lambda: obstore.list(self._store, prefix=folder or None, chunk_size=1000),
        )
        while True:
            batch = self._call("list", prefix, lambda: next(stream, None))
            if batch is None:
                return
            for meta in batch:
                path = meta["path"]
                if rest and not path.startswith(prefix):
                    continue
                yield ObjectInfo(path, meta["size"], _timestamp(meta["last_modified"]))

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            meta = self._call("stat", key, lambda: obstore.head(self._store, key))
        except ObjectNotFound:
            return None
        return ObjectInfo(key, meta["size"], _timestamp(meta["last_modified"]))

    def delete(self, key: str) -> None:
        # obstore raises FileNotFoundError on Azure; deletion is idempotent for us.
        with contextlib.suppress(ObjectNotFound):
            self._call("delete", key, lambda: obstore.delete(self._store, key))


def open_store(
    factory: Callable[..., T],
    url: str,
    name: str,
    *,
    endpoint: object,
    environ: Mapping[str, str],
    http_flag: str,
    endpoint_var: str,
    options: TransferOptions,
    **kwargs: object,
) -> T:
    """Build an obstore store with our network limits; plain http only where allowed
    (loopback, or ``http_flag``). Configuration errors never echo values (credentials)."""
    allow_http = (
        check_endpoint(endpoint, flag(environ, http_flag), endpoint_var)
        if isinstance(endpoint, str) and endpoint
        else False
    )
    try:
        return factory(
            name,
            client_options=obstore_client_options(options, allow_http),
            retry_config=obstore_retry(options),
            **kwargs,
        )
    except Exception as exc:
        raise UsageError(f"invalid configuration for {url}: {type(exc).__name__}") from None


def _timestamp(value: datetime) -> float:
    return value.timestamp()
