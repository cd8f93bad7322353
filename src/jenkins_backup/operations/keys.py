"""Key rotation: add or remove a user key of an encrypted repository, never touching data.

Only the config object changes: it is the repository's one mutable object, replaced whole with
an overwriting put (atomic on every backend: readers see the old or the new config). Concurrent
backups are unaffected, since every slot wraps the same master key. Two key commands racing on
one repository are last-writer-wins: each re-reads the config after writing and fails if its
change is not there, so a lost update is reported instead of silently dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from jenkins_backup.errors import EncryptionKeyError, NoRepository, RepositoryError
from jenkins_backup.operations.common import storage_for
from jenkins_backup.repository import config as cfg
from jenkins_backup.repository import crypto
from jenkins_backup.settings import Settings
from jenkins_backup.storage.base import Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyInfo:
    id: str
    created: str
    current: bool  # the key given in BACKUP_ENCRYPTION_KEY(_FILE) opens this slot


def _encrypted_config(storage: Storage) -> cfg.RepoConfig:
    if not storage.stat(cfg.KEY):
        raise NoRepository(f"no repository at {storage.describe()}")
    config = cfg.decode_config(storage.get(cfg.KEY))
    if config.encryption is None:
        raise EncryptionKeyError(
            "the repository is not encrypted: encryption is chosen when a repository is created"
        )
    return config


def _write(storage: Storage, config: cfg.RepoConfig, encryption: dict[str, Any]) -> None:
    storage.put(cfg.KEY, cfg.encode_config(replace(config, encryption=encryption)))
    if cfg.decode_config(storage.get(cfg.KEY)).encryption != encryption:
        raise RepositoryError(
            "the repository config was changed concurrently: run the command again"
        )


def list_keys(settings: Settings) -> list[KeyInfo]:
    storage = storage_for(settings)
    config = _encrypted_config(storage)
    _, opened = crypto.unlock(config, settings.encryption_key)
    return [KeyInfo(s.id, s.created, s.id == opened) for s in crypto.parse_slots(config.encryption)]


def add_key(settings: Settings, new_key: bytes) -> str:
    """Wrap the master key for ``new_key`` (the current key must open the repository)."""
    storage = storage_for(settings)
    config = _encrypted_config(storage)
    encryption, key_id = crypto.add_key(config, settings.encryption_key, new_key)
    _write(storage, config, encryption)
    log.info("added key %s to %s", key_id, storage.describe())
    return key_id


def remove_key(settings: Settings, key_id: str) -> None:
    storage = storage_for(settings)
    config = _encrypted_config(storage)
    encryption = crypto.remove_key(config, settings.encryption_key, key_id)
    _write(storage, config, encryption)
    log.info("removed key %s from %s", key_id, storage.describe())
