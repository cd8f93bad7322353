"""--json: one document on stdout carrying the fields docs/json.md lists, also when the command
fails after doing its work (verify with damage, restore of a damaged backup); nothing on stdout
when it fails before (no repository)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from helpers import a_job, wait_until_at_rest
from inprocess import run_main
from repo_backends import RawStore

DOC = Path(__file__).resolve().parent.parent / "docs" / "json.md"
KEY = "a-long-enough-random-key-0123456789"


def documented() -> dict[str, set[str]]:
    """docs/json.md: each section's command line (``backup N --json``) -> its field names."""
    sections: dict[str, set[str]] = {}
    current = None
    for line in DOC.read_text().splitlines():
        if line.startswith("### "):
            current = line[4:].split(" (")[0].strip().strip("`")
            sections[current] = set()
        elif current is not None and (m := re.match(r"\| `([^`]+)` \|", line)):
            sections[current].add(m.group(1))
    return sections


def fields(doc: Any) -> set[str]:
    """Every field of a document: nested ones as ``a.b`` and ``a[].b``; an array's elements'."""
    if isinstance(doc, list):
        return set().union(*(fields(item) for item in doc)) if doc else set()
    out: set[str] = set()
    for k, v in doc.items():
        out.add(k)
        if isinstance(v, dict):
            out |= {f"{k}.{f}" for f in fields(v)}
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            out |= {f"{k}[].{f}" for f in fields(v)}
    return out


def json_of(env: dict[str, str], *args: str, code: int = 0) -> Any:
    rc, out, err = run_main(env, *args)
    assert rc == code, f"{args} exited {rc}: {err}"
    return json.loads(out)  # one document and nothing else: json.loads refuses trailing text


def test_reports_of_backup_restore_verify_prune(repo_env: dict[str, str], tmp_path: Path) -> None:
    """Local directory and S3: the fields are exactly the documented ones, the values true."""
    docs = documented()
    wait_until_at_rest(Path(repo_env["JENKINS_HOME"]))  # so that the second backup reads less
    first = json_of(repo_env, "backup", "1", "--json")
    assert fields(first) == docs["backup N --json"]
    assert first["number"] == 1 and first["files"] == first["files_read"] > 0
    assert first["bytes_added"] > 0 and first["warnings"] == {"count": 0, "paths": []}
    second = json_of(repo_env, "backup", "2", "--json")
    assert second["files"] == first["files"] and second["files_read"] < first["files"]

    target = {**repo_env, "JENKINS_HOME": str(tmp_path / "restored")}
    restored = json_of(target, "restore", "latest", "--json")
    assert fields(restored) == docs["restore N|latest --json"]
    assert restored["number"] == 2 and restored["files_written"] == first["files"]
    again = json_of(target, "restore", "2", "--json")
    assert (again["files_written"], again["files_unchanged"]) == (0, first["files"])

    verified = json_of(repo_env, "verify", "--repair", "--json")
    assert fields(verified) == docs["verify [N] --json"]
    assert verified["ok"] is True and verified["checked"] == [1, 2]
    assert verified["mode"] == "full" and verified["bytes_read"] > 0
    assert verified["repaired"]["damaged_files"] == 0
    assert json_of(repo_env, "verify", "1", "--quick", "--json")["not_checked"]

    plan = json_of(repo_env, "prune", "--dry-run", "--keep-last", "1", "--json")
    assert fields(plan) == docs["prune --json"]
    assert (plan["dry_run"], plan["kept"], plan["forgotten"]) == (True, [2], [1])
    assert len(json_of(repo_env, "list", "--json")) == 2, "a dry run changes nothing"
    done = json_of(repo_env, "prune", "--keep-last", "1", "--json")
    assert (done["dry_run"], done["kept"], done["forgotten"]) == (False, [2], [1])
    assert [b["number"] for b in json_of(repo_env, "list", "--json")] == [2]

    repaired = json_of(repo_env, "repair", "--json")
    assert fields(repaired) == docs["repair --json"]


def test_reports_survive_damage_and_stdout_stays_empty_before_work(
    env: dict[str, str], tmp_path: Path
) -> None:
    rc, out, err = run_main(env, "verify", "--json")
    assert (rc, out) == (10, ""), "no repository: the error line only"
    assert err.splitlines()[-1].startswith("jenkins-backup: error: no repository")
    assert json_of(env, "restore", "latest", "--json")["number"] is None  # empty: exit 0

    json_of(env, "backup", "1", "--json")
    raw = RawStore(env)
    sizes = raw.sizes("data/")
    raw.flip(max(sizes, key=lambda k: sizes[k]), 20)  # bit rot in the biggest data pack

    rc, out, err = run_main(env, "verify", "--json")
    report = json.loads(out)
    assert rc == 1 and report["ok"] is False and report["damaged"] == [1]
    assert report["problems"] and report["damaged_paths"]
    assert err.splitlines()[-1].startswith("jenkins-backup: error: verify (full) found")

    target = {**env, "JENKINS_HOME": str(tmp_path / "restored")}
    rc, out, err = run_main(target, "restore", "1", "--json")
    restored = json.loads(out)
    assert rc == 1 and restored["number"] == 1 and restored["damaged"]
    assert restored["files_written"] + len(restored["damaged"]) == restored["files"]
    for path in restored["damaged"]:
        assert not (tmp_path / "restored" / path).exists()
    assert err.splitlines()[-1].startswith("jenkins-backup: error: backup 1 is damaged")


def test_every_documented_field_is_there(env: dict[str, str], home: Path, tmp_path: Path) -> None:
    """The commands that show: each output carries every field docs/json.md lists for it."""
    docs = documented()
    assert run_main(env, "backup", "1")[0] == 0
    job = a_job(home)
    shutil.copytree(job / "builds" / sorted(p.name for p in (job / "builds").iterdir())[0],
                    job / "builds" / "9999")  # fmt: skip
    (job / "config.xml").write_text("<project>changed</project>")
    assert run_main(env, "backup", "2")[0] == 0
    jobs_path = job.relative_to(home).as_posix()
    runs = {
        "list --json": ("list", "--json"),
        "status --json": ("status", "--json"),
        "ls N [PATH] --json": ("ls", "1", "-R", "--json"),
        "find PATTERN... --json": ("find", "**/config.xml", "--json"),
        "diff N M --json": ("diff", "1", "2", "--json"),
        "diff N M --jobs --json": ("diff", "1", "2", "--jobs", "--json"),
        "jobs N --json": ("jobs", "2", "--json"),
    }
    for section, args in runs.items():
        got = fields(json_of(env, *args))
        assert docs[section] <= got, f"{section}: documented but missing: {docs[section] - got}"
    changed = json_of(env, "diff", "1", "2", "--jobs", "--json")["changes"]
    assert any(c["name"] == jobs_path.removeprefix("jobs/") for c in changed)

    keyed = {**env, "BACKUP_REPOSITORY": str(tmp_path / "keyed"), "BACKUP_ENCRYPTION_KEY": KEY}
    created = json_of(keyed, "init", "--json")
    assert fields(created) == docs["init --json"] and created["encrypted"] is True
    assert docs["key list --json"] <= fields(json_of(keyed, "key", "list", "--json"))


@pytest.mark.parametrize(
    "args",
    [
        ("backup", "3"),
        ("restore", "1"),
        ("verify",),
        ("verify", "--repair"),
        ("repair",),
        ("prune", "--keep-last", "5"),
        ("forget", "2"),
    ],
)
def test_commands_that_act_print_nothing_on_stdout(
    env: dict[str, str], tmp_path: Path, args: tuple[str, ...]
) -> None:
    """The stdout rule: what an acting command did is told on stderr, stdout stays empty."""
    run_main(env, "backup", "1")
    run_main(env, "backup", "2")
    if args[0] == "restore":
        env = {**env, "JENKINS_HOME": str(tmp_path / "restored")}
    rc, out, err = run_main(env, *args)
    assert (rc, out) == (0, ""), err
    assert err.startswith("jenkins-backup: ") or not err


def test_a_dry_run_shows_its_plan_on_stdout(env: dict[str, str]) -> None:
    run_main(env, "backup", "1")
    run_main(env, "backup", "2")
    rc, out, err = run_main(env, "prune", "--dry-run", "--keep-last", "1")
    assert rc == 0 and "would forget backups: 1" in out and "keep backups: 2" in out
    rc, out, err = run_main(env, "prune", "--keep-last", "1")
    assert (rc, out) == (0, "") and "forget backups: 1" in err


def test_latest_prints_its_number_alone_whatever_else_happens(env: dict[str, str]) -> None:
    """The operator parses latest's stdout: warnings (a damaged newest backup), -v debug lines
    and all else go to stderr."""
    run_main(env, "backup", "1")
    run_main(env, "backup", "2")
    raw = RawStore(env)
    raw.flip(max(raw.sizes("snapshots/")), 3)  # backup 2's snapshot object is damaged
    rc, out, err = run_main(env, "latest", "-v")
    assert (rc, out) == (0, "1\n")
    assert "jenkins-backup: " in err
