"""Open a storage backend from a repository location (a path or URL)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote, urlparse

from jenkins_backup.errors import UsageError
from jenkins_backup.storage.base import Storage
from jenkins_backup.storage.local import LocalStorage


def open_storage(location: str, environ: Mapping[str, str] | None = None) -> Storage:
    """Return the backend for ``location``.

    ``environ`` carries the cloud SDK variables (AWS_*, AZURE_*, GOOGLE_*) collected by settings,
    so that nothing below the settings layer reads ``os.environ`` itself.
    """
    if "://" not in location:
        return LocalStorage(location)
    parsed = urlparse(location)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise UsageError(f"file:// URL must not name a host: {location}")
        return LocalStorage(unquote(parsed.path))
    raise UsageError(f"unsupported repository scheme {parsed.scheme!r} in BACKUP_REPOSITORY")
