"""Storage backends: a handful of byte-level operations, one implementation per store."""

from jenkins_backup.storage.base import ObjectInfo, Storage

__all__ = ["ObjectInfo", "Storage"]
