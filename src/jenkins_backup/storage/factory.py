"""Open a storage backend from a repository location (a path or URL)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote, urlparse

from jenkins_backup.errors import UsageError
from jenkins_backup.storage.base import Storage
from jenkins_backup.storage.cloud import TransferOptions
from jenkins_backup.storage.local import LocalStorage


def local_path(location: str) -> str | None:
    """The directory of a local repository (a path or file:// URL); None for object storage."""
    if "://" not in location:
        return location
    parsed = urlparse(location)
    if parsed.scheme != "file":
        return None
    if parsed.netloc not in ("", "localhost"):
        raise UsageError(f"file:// URL must not name a host: {location}")
    return unquote(parsed.path)


def open_storage(
    location: str,
    environ: Mapping[str, str] | None = None,
    *,
    options: TransferOptions | None = None,
) -> Storage:
    """Return the backend for ``location``.

    ``environ`` carries the cloud SDK variables (AWS_*, AZURE_*, GOOGLE_*, STORAGE_EMULATOR_HOST)
    collected by settings, so that nothing below the settings layer reads ``os.environ`` itself.
    ``options`` bounds network transfers (timeouts, retries, part sizes).

    Each cloud backend is imported only for its own scheme: their client libraries cost tens to
    hundreds of milliseconds, which every command would otherwise pay at start-up.
    """
    env: Mapping[str, str] = environ if environ is not None else {}
    path = local_path(location)
    if path is not None:
        return LocalStorage(path)
    parsed = urlparse(location)
    if parsed.scheme == "s3":
        from jenkins_backup.storage.s3 import S3Storage

        return S3Storage(location, env, options)
    if parsed.scheme in ("az", "azure"):
        from jenkins_backup.storage.azure import AzureStorage

        return AzureStorage(location, env, options)
    if parsed.scheme == "gs":
        from jenkins_backup.storage.gcs import GCSStorage

        return GCSStorage(location, env, options)
    raise UsageError(f"unsupported repository scheme {parsed.scheme!r} in BACKUP_REPOSITORY")
