"""The init operation: create a repository explicitly, so that backup may refuse to."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from jenkins_backup.errors import RepositoryError
from jenkins_backup.operations.common import open_repository, storage_for
from jenkins_backup.repository.repo import Repository
from jenkins_backup.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InitResult:
    location: str
    encrypted: bool


def init(settings: Settings) -> InitResult:
    """Create the repository; one already there is an error (its key and history stay)."""
    if Repository.exists(storage_for(settings)):
        raise RepositoryError(f"a repository already exists at {settings.require_repository()}")
    repo = open_repository(settings, create=True)
    assert repo is not None
    enc = repo.codec.encrypted
    log.info("initialised %s repository", "an encrypted" if enc else "an unencrypted")
    return InitResult(repo.storage.describe(), enc)
