"""Google Cloud Storage through google-cloud-storage: ``gs://bucket/prefix``.

Not obstore: its GCS writes use the XML API, which the emulator that installs here
(fake-gcs-server) rejects, so its GCS path could not be tested. google-cloud-storage speaks the
JSON API, which both GCS and fake-gcs-server accept. The Google libraries are imported when a
gs:// repository is opened, never at start-up (they cost ~0.3 s).

Credentials: ``GOOGLE_APPLICATION_CREDENTIALS`` (service-account or external-account JSON, as
GKE Workload Identity Federation writes it), else Application Default Credentials (the GKE
metadata server, gcloud's user credentials). ``STORAGE_EMULATOR_HOST`` selects an emulator,
anonymously. The project comes from ``GOOGLE_CLOUD_PROJECT`` or the credentials; object
operations do not need one.

``atomic_create`` is True: create-only writes carry ``ifGenerationMatch=0``, which GCS and
fake-gcs-server enforce (412 on an existing object).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from jenkins_backup.errors import ObjectNotFound, StorageError, UsageError
from jenkins_backup.storage.base import ObjectInfo, Storage
from jenkins_backup.storage.cloud import TransferOptions, redact_url, short_message, split_url

T = TypeVar("T")
_SCOPES = ["https://www.googleapis.com/auth/devstorage.read_write"]


def _modules() -> Any:
    """The Google modules, imported lazily and typed as Any (they ship no complete stubs)."""
    try:
        names = {
            "storage": "google.cloud.storage",
            "retry": "google.cloud.storage.retry",
            "exceptions": "google.api_core.exceptions",
            "auth": "google.auth",
            "auth_exceptions": "google.auth.exceptions",
            "credentials": "google.auth.credentials",
            "transport": "google.auth.transport.requests",
            "requests": "requests",
            "adapters": "requests.adapters",
        }
        loaded = {key: importlib.import_module(name) for key, name in names.items()}
    except ImportError as exc:
        raise UsageError(
            "gs:// repositories need google-cloud-storage: pip install 'jenkins-backup[gcs]'"
        ) from exc

    class Namespace:
        pass

    ns: Any = Namespace()
    for key, module in loaded.items():
        setattr(ns, key, module)
    return ns


class GCSStorage(Storage):
    atomic_create = True

    def __init__(
        self, location: str, environ: Mapping[str, str], options: TransferOptions | None = None
    ) -> None:
        self._options = options or TransferOptions()
        self._g = g = _modules()
        bucket, prefix = split_url(location, "bucket")
        self._root = f"{prefix}/" if prefix else ""
        self._location = f"gs://{bucket}/{prefix}".rstrip("/")
        self._timeout = (self._options.connect_timeout, self._options.request_timeout)
        self._retry = g.retry.DEFAULT_RETRY.with_timeout(self._options.retry_timeout)
        self._errors: tuple[type[BaseException], ...] = (
            g.exceptions.GoogleAPIError,
            g.auth_exceptions.GoogleAuthError,
            g.requests.RequestException,
            OSError,
            ValueError,
        )

        project = environ.get("GOOGLE_CLOUD_PROJECT") or environ.get("CLOUDSDK_CORE_PROJECT")
        client_options: dict[str, str] = {}
        emulator = environ.get("STORAGE_EMULATOR_HOST", "")
        try:
            if emulator:
                endpoint = emulator if "://" in emulator else f"http://{emulator}"
                client_options["api_endpoint"] = endpoint.rstrip("/")
                credentials = g.credentials.AnonymousCredentials()
                project = project or "emulator"
                self._location += f" (emulator {redact_url(endpoint)})"
            elif path := environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
                credentials, found = g.auth.load_credentials_from_file(path, scopes=_SCOPES)
                project = project or found
            else:
                credentials, found = g.auth.default(scopes=_SCOPES)
                project = project or found
        except g.auth_exceptions.GoogleAuthError as exc:
            raise UsageError(f"no usable Google credentials: {type(exc).__name__}") from None

        # A pool as large as the callers' thread pool: requests keeps 10 connections by default
        # and drops (then re-opens) the rest, which costs a handshake per object.
        session = g.transport.AuthorizedSession(credentials)
        adapter = g.adapters.HTTPAdapter(
            pool_connections=4, pool_maxsize=self._options.pool_size, max_retries=0
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._client = g.storage.Client(
            project=project,
            credentials=credentials,
            _http=session,
            client_options=client_options or None,
        )
        self._bucket = self._client.bucket(bucket)
        self._bucket_name = bucket

    def describe(self) -> str:
        return self._location

    def _call(self, what: str, key: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except StorageError:
            raise
        except self._g.exceptions.NotFound as exc:
            raise ObjectNotFound(key) from exc
        except self._errors as exc:
            raise StorageError(f"{what} {key} at {self._location}: {short_message(exc)}") from None

    def _blob(self, key: str) -> Any:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"invalid object key {key!r}")
        return self._bucket.blob(self._root + key)

    def put(self, key: str, data: bytes, *, create_only: bool = False) -> bool:
        blob = self._blob(key)
        if len(data) > self._options.part_size:
            # A resumable upload in parts: a failure costs one part, not the whole object.
            blob.chunk_size = self._options.part_size
        precondition = {"if_generation_match": 0} if create_only else {}

        def upload() -> bool:
            try:
                blob.upload_from_string(
                    data,
                    content_type="application/octet-stream",
                    timeout=self._timeout,
                    retry=self._retry,
                    **precondition,
                )
            except self._g.exceptions.PreconditionFailed:
                return False
            return True

        return self._call("write", key, upload)

    def get(self, key: str) -> bytes:
        blob = self._blob(key)

        def download() -> bytes:
            try:
                data: bytes = blob.download_as_bytes(timeout=self._timeout, retry=self._retry)
            except self._g.exceptions.RequestRangeNotSatisfiable:
                # fake-gcs-server answers 416 for an empty object; GCS itself does not.
                if self.stat(key) is None:
                    raise ObjectNotFound(key) from None
                return b""
            return data

        return self._call("read", key, download)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        blob = self._blob(key)
        # The JSON API takes an inclusive end; a negative start asks for a suffix.
        end = start + length - 1 if start >= 0 else None
        data: bytes = self._call(
            "read",
            key,
            lambda: blob.download_as_bytes(
                start=start, end=end, timeout=self._timeout, retry=self._retry
            ),
        )
        return data[:length]

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        pages = self._call(
            "list",
            prefix,
            lambda: (
                self._client.list_blobs(
                    self._bucket_name,
                    prefix=self._root + prefix,
                    page_size=1000,
                    timeout=self._timeout,
                    retry=self._retry,
                ).pages
            ),
        )
        skip = len(self._root)
        while True:
            page = self._call("list", prefix, lambda: next(pages, None))
            if page is None:
                return
            for blob in page:
                yield ObjectInfo(blob.name[skip:], int(blob.size), blob.updated.timestamp())

    def stat(self, key: str) -> ObjectInfo | None:
        blob = self._call(
            "stat",
            key,
            lambda: self._bucket.get_blob(
                self._root + key, timeout=self._timeout, retry=self._retry
            ),
        )
        if blob is None:
            return None
        return ObjectInfo(key, int(blob.size), blob.updated.timestamp())

    def delete(self, key: str) -> None:
        blob = self._blob(key)
        with contextlib.suppress(ObjectNotFound):
            self._call("delete", key, lambda: blob.delete(timeout=self._timeout, retry=self._retry))

    def close(self) -> None:
        self._client.close()
