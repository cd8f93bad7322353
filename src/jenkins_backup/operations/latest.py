"""The latest operation (the operator's getLatestAction)."""

from __future__ import annotations

from jenkins_backup.operations.common import latest_intact, open_repository
from jenkins_backup.settings import Settings


def latest(settings: Settings) -> int:
    """The number of the most recently committed intact backup, or -1 when there is none."""
    repo = open_repository(settings)
    if repo is None:
        return -1
    found = latest_intact(repo, complete=True)
    return found[0].number if found else -1
