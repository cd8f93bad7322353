"""Scope profiles and patterns, decided per path."""

from __future__ import annotations

import pytest

from jenkins_backup.engine.scope import Scope
from jenkins_backup.errors import UsageError

CASES = [
    # path, is_dir, jobs, history, full
    ("jobs", True, True, True, True),
    ("jobs/a/config.xml", False, True, False, True),
    ("jobs/a/builds/1/log", False, True, True, True),
    ("jobs/a/workspace", True, False, False, False),
    ("jobs/a/workspace@tmp", True, False, False, False),
    ("jobs/f/jobs/b/workspace@2", True, False, False, False),
    ("jobs/f/jobs/b/config.xml", False, True, True, True),
    ("jobs/mb/branches/main/workspace", True, False, False, False),
    ("jobs/a/builds/1/archive/workspace", True, True, True, True),
    ("workspace", True, False, False, False),
    ("plugins", True, False, False, True),
    ("plugins/git.jpi", False, False, False, True),
    ("plugins/git", True, False, False, False),
    ("secrets/master.key", False, False, False, True),
    ("caches", True, False, False, False),
    ("war", True, False, False, False),
    ("logs", True, False, False, False),
    ("config.xml", False, False, False, True),
    ("queue.xml.tmp", False, False, False, False),
]


@pytest.mark.parametrize(("path", "is_dir", "jobs", "history", "full"), CASES)
def test_profiles(path: str, is_dir: bool, jobs: bool, history: bool, full: bool) -> None:
    rel = path.encode()
    assert Scope("jobs").wants(rel, is_dir) is jobs
    assert Scope("history").wants(rel, is_dir) is history
    assert Scope("full").wants(rel, is_dir) is full


def test_exclude_patterns() -> None:
    s = Scope("jobs", excludes=("*.log.gz", "jobs/*/builds/*/archive"))
    assert not s.wants(b"jobs/a/builds/1/log.log.gz", False)
    assert not s.wants(b"jobs/a/builds/1/archive", True)
    assert not s.descend(b"jobs/a/builds/1/archive")
    assert s.wants(b"jobs/a/builds/1/log", False)


def test_include_patterns_extend_a_profile() -> None:
    s = Scope("jobs", includes=("secrets/**", "*.groovy"))
    assert s.descend(b"secrets")
    assert s.wants(b"secrets/master.key", False)
    assert s.wants(b"init.groovy", False)
    assert not s.wants(b"plugins/git.jpi", False)


def test_unknown_profile() -> None:
    with pytest.raises(UsageError):
        Scope("everything")
