"""The repair operation: rebuild the index from the packs' own headers.

Index files are a cache of what the packs' headers say. A damaged, truncated or deleted index
file never makes a backup unrestorable (readers find the blobs from the headers), but costs
every reader a scan of the unlisted packs until an index file lists them again: this writes it.
"""

from __future__ import annotations

from jenkins_backup.errors import RepositoryError
from jenkins_backup.operations.common import open_repository, storage_for
from jenkins_backup.repository.integrity import RepairStats, rebuild_index
from jenkins_backup.settings import Settings


def repair(settings: Settings) -> RepairStats:
    repo = open_repository(settings)
    if repo is None:
        raise RepositoryError(f"no repository at {storage_for(settings).describe()}")
    return rebuild_index(repo)
