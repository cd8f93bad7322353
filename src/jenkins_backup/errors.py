"""The error hierarchy shared by every layer; the CLI maps it to exit codes in one place."""

from __future__ import annotations


class BackupError(Exception):
    """Base of every error the tool reports as a one-line failure (exit 1)."""


class UsageError(BackupError):
    """Bad arguments or missing configuration (exit 2)."""


class StorageError(BackupError):
    """The storage backend failed (network, permissions, disk)."""


class ObjectNotFound(StorageError):
    """A requested object does not exist."""


class RepositoryError(BackupError):
    """The repository is missing, malformed or inconsistent."""


class CorruptObject(RepositoryError):
    """An object failed verification (hash mismatch, bad encoding)."""


class SnapshotVanished(CorruptObject):
    """A listed snapshot was gone when read: forgotten meanwhile (prune looks for its tombstone)."""


class ClockSkew(RepositoryError):
    """The local clock and the store's disagree by more than prune tolerates."""


class EncryptionKeyError(RepositoryError):
    """The encryption key is wrong or missing."""


class VerifyFailed(RepositoryError):
    """Verify found problems; each was printed before this one-line summary."""


class PruneBlocked(RepositoryError):
    """Prune found a reason not to delete anything (the repository is left as it was)."""


class RestoreDamaged(CorruptObject):
    """A named backup was restored as far as it could be, but files are missing from it;
    ``result`` is the restore's result, naming them."""

    def __init__(self, message: str, result: object = None) -> None:
        super().__init__(message)
        self.result = result


class PinStateUnknown(RepositoryError):
    """The pins could not all be read: retention forgets nothing rather than a pinned backup."""


class BackupPinned(RepositoryError):
    """An explicit forget of a pinned backup, without saying it is meant (--force)."""


class BackupInFlight(RepositoryError):
    """prune --now refused: the repository shows a backup writing to it."""


class NoRestorableBackup(RepositoryError):
    """Backups exist but none can be restored: never reported as an empty repository."""


class SnapshotNotFound(RepositoryError):
    """The requested backup number does not exist."""


class UnsafePath(BackupError):
    """A path from the repository would escape the restore target."""


class ShrinkRefused(BackupError):
    """A backup would replace far more data than it holds: refused unless allowed."""


class PartialBackup(BackupError):
    """The backup was committed but lacks entries it could not read, and strictness was asked
    for (exit 3, as restic does). ``result`` is the committed backup's result."""

    def __init__(self, message: str, result: object = None) -> None:
        super().__init__(message)
        self.result = result


class PathNotFound(BackupError):
    """A path asked for is not in the backup (ls, dump, diff, restore --job)."""


class WrongKey(EncryptionKeyError):
    """The key given does not open the repository, or a key is missing or superfluous (exit 12)."""


class NoRepository(RepositoryError):
    """No repository exists at the configured location (exit 10)."""
