"""Tags and pins end to end, on a local directory and on S3: tags stored at backup time and
listed, pins that retention (prune's and a backup's) never forgets, forget of a pinned backup,
and pins damaged or hostile: never a vanished backup, at worst nothing forgotten."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from inprocess import run_main
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.forget import forget
from jenkins_backup.repository.repo import Repository
from jenkins_backup.settings import load
from jenkins_backup.storage.factory import open_storage
from repo_backends import RawStore

DAY = 24 * 3600 * 10**9


def _listed(env: dict[str, str]) -> list[dict[str, object]]:
    code, out, err = run_main(env, "list", "--json")
    assert code == 0, err
    rows: list[dict[str, object]] = json.loads(out)
    return rows


def _numbers(env: dict[str, str]) -> list[object]:
    return [r["number"] for r in _listed(env)]


def _ok(env: dict[str, str], *args: str) -> str:
    code, out, err = run_main(env, *args)
    assert code == 0, f"{args}: {err}"
    return out


def _raw_put(env: dict[str, str], key: str, data: bytes) -> None:
    raw = RawStore(env)
    if raw.local is not None:
        (raw.local / key).parent.mkdir(parents=True, exist_ok=True)
    raw.put(key, data)


def test_tags_are_stored_at_backup_time_and_listed(repo_env: dict[str, str]) -> None:
    env = {**repo_env, "BACKUP_TAGS": "nightly"}
    _ok(env, "backup", "1", "--tag", "before-upgrade", "--tag", "jenkins-2.440")
    _ok(repo_env, "backup", "2")
    rows = _listed(repo_env)
    assert [(r["number"], r["tags"], r["pinned"]) for r in rows] == [
        (1, ["before-upgrade", "jenkins-2.440", "nightly"], False),
        (2, [], False),
    ]
    _ok(repo_env, "pin", "2")
    table = _ok(repo_env, "list").splitlines()
    assert table[0].split()[-2:] == ["PINNED", "TAGS"]
    assert table[1].split()[-2:] == ["no", "before-upgrade,jenkins-2.440,nightly"]
    assert table[2].split()[-2:] == ["yes", "-"]


def test_a_bad_tag_is_one_line_and_commits_nothing(repo_env: dict[str, str]) -> None:
    for args in (("--tag", "two words"), ("--tag", "x" * 65)):
        code, out, err = run_main(repo_env, "backup", "1", *args)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
        assert "tag" in err
    code, _, err = run_main({**repo_env, "BACKUP_TAGS": "ok,not ok"}, "backup", "1")
    assert code == 2 and "BACKUP_TAGS" in err
    assert run_main(repo_env, "list")[0] == 10  # nothing was created either


def test_pin_and_unpin(repo_env: dict[str, str]) -> None:
    assert run_main(repo_env, "pin", "1")[0] == 10  # no repository there
    _ok(repo_env, "backup", "1")
    code, out, err = run_main(repo_env, "pin", "7")
    assert (code, out) == (1, "") and err.strip().splitlines() == [
        "jenkins-backup: error: backup 7 does not exist"
    ]
    assert _ok(repo_env, "pin", "1") == "backup 1 pinned\n"
    assert _ok(repo_env, "pin", "1") == "backup 1 was already pinned\n"
    assert _listed(repo_env)[0]["pinned"] is True
    assert _ok(repo_env, "unpin", "1") == "backup 1 unpinned\n"
    assert _ok(repo_env, "unpin", "1") == "backup 1 was not pinned\n"
    assert _listed(repo_env)[0]["pinned"] is False
    assert "pins/" not in "".join(RawStore(repo_env).sizes("pins/"))


def test_retention_after_each_backup_never_forgets_a_pinned_one(
    repo_env: dict[str, str],
) -> None:
    env = {**repo_env, "BACKUP_KEEP_LAST": "1"}
    _ok(env, "backup", "1")
    _ok(env, "pin", "1")
    for n in (2, 3, 4):
        _ok(env, "backup", str(n))
    assert _numbers(env) == [1, 4]
    _ok(env, "prune", "--keep-last", "1", "--keep-daily", "1", "--keep-within", "1h")
    assert _numbers(env) == [1, 4]
    _ok(env, "unpin", "1")
    _ok(env, "prune")
    assert _numbers(env) == [4]


def test_forget_of_a_pinned_backup_needs_force(repo_env: dict[str, str]) -> None:
    _ok(repo_env, "backup", "1")
    _ok(repo_env, "backup", "2")
    _ok(repo_env, "pin", "1")
    code, out, err = run_main(repo_env, "forget", "1")
    assert (code, out) == (1, "") and err.strip().splitlines() == [
        "jenkins-backup: error: backup 1 is pinned: unpin it first, or run forget 1 --force"
    ]
    assert _numbers(repo_env) == [1, 2]
    _ok(repo_env, "forget", "1", "--force")
    assert _numbers(repo_env) == [2]
    assert RawStore(repo_env).sizes("pins/") == {}  # the pin went with it


def test_keep_within_and_keep_tag_end_to_end(repo_env: dict[str, str]) -> None:
    """Backups committed 30, 20, 10 and 1 day(s) ago (real snapshot objects with chosen commit
    times), one tagged, one pinned: prune keeps exactly what the rules say."""
    settings = load(environ=repo_env)
    first = backup(settings, 99).snapshot
    forget(settings, 99)  # its tree stays stored; its snapshot no longer bounds commit times
    repo = Repository.open(open_storage(repo_env["BACKUP_REPOSITORY"], repo_env))
    now = time.time_ns()
    for number, days, tags in ((1, 30, ()), (2, 20, ("release",)), (3, 10, ()), (4, 1, ())):
        repo.commit(replace(first, number=number, time_ns=now - days * DAY, tags=tags))
    assert _numbers(repo_env) == [1, 2, 3, 4]
    _ok(repo_env, "pin", "1")
    plan = _ok(repo_env, "prune", "--dry-run", "--keep-within", "15d", "--keep-tag", "release")
    assert "forget backups: " not in plan  # 1 pinned, 2 tagged, 3 and 4 within 15 days
    _ok(repo_env, "prune", "--keep-within", "15d", "--keep-tag", "release")
    assert _numbers(repo_env) == [1, 2, 3, 4]
    assert "would forget backups: 3 2" in _ok(repo_env, "prune", "--dry-run", "--keep-within", "5d")
    _ok(repo_env, "prune", "--keep-within", "5d")
    assert _numbers(repo_env) == [1, 4]


def test_a_damaged_pin_still_pins(repo_env: dict[str, str]) -> None:
    env = {**repo_env, "BACKUP_KEEP_LAST": "1"}
    _ok(env, "backup", "1")
    _ok(env, "pin", "1")
    (key,) = RawStore(env).sizes("pins/")
    RawStore(env).put(key, b"\xff garbage")
    _ok(env, "backup", "2")
    _ok(env, "prune")
    assert _numbers(env) == [1, 2]
    assert [r["pinned"] for r in _listed(env)] == [True, False]


@pytest.mark.parametrize("name", ["pins/not-a-snapshot-id", "pins/" + "A" * 64, "pins/x/y"])
def test_a_pin_that_cannot_be_read_makes_retention_forget_nothing(
    repo_env: dict[str, str], name: str
) -> None:
    env = {**repo_env, "BACKUP_KEEP_LAST": "1"}
    _ok(env, "backup", "1")
    _raw_put(env, name, b"{}")
    # The backup commits; its retention forgets nothing and says why.
    code, _, err = run_main(env, "backup", "2")
    assert code == 0 and "retention forgets nothing" in err and name.split("/")[1] in err
    assert _numbers(env) == [1, 2]
    code, _, err = run_main(env, "prune")
    assert code == 1 and err.strip().splitlines()[-1].startswith("jenkins-backup: error: pins/")
    assert _numbers(env) == [1, 2]
    # Nothing is hidden: list shows every backup, its pin state unknown; latest is unchanged.
    assert [r["pinned"] for r in _listed(env)] == [None, None]
    assert _ok(env, "latest") == "2\n"
    RawStore(env).delete(name)
    _ok(env, "prune")
    assert _numbers(env) == [2]
