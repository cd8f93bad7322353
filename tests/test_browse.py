"""Seeing inside backups: ls, dump, find, diff and jobs read a backup as the home was.

Expected values come from the files themselves (os, tarfile, difflib), never from the tool.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
from pathlib import Path

from homegen import add_builds, iter_jobs

from inprocess import run_cli
from jenkins_backup.operations import browse
from jenkins_backup.operations.backup import backup
from jenkins_backup.settings import load


def _job_names(home: Path) -> dict[str, Path]:
    """Full names as Jenkins shows them: every other path segment below jobs/."""
    out = {}
    for d in iter_jobs(home):
        parts = d.relative_to(home / "jobs").parts
        out["/".join(parts[::2])] = d
    return out


def _builds(job: Path) -> set[int]:
    b = job / "builds"
    return {
        int(p.name) for p in b.iterdir() if p.name.isdigit() and not p.is_symlink() and p.is_dir()
    }


def test_ls_shows_a_job_directory_as_it_is(repo_env: dict[str, str], home: Path) -> None:
    settings = load(environ=repo_env)
    backup(settings, 1)
    job = next(iter(_job_names(home).values()))
    rel = job.relative_to(home).as_posix()
    got = {f.path: f for f in browse.ls(settings, 1, rel)}
    assert set(got) == {f"{rel}/{n}" for n in os.listdir(job) if not n.startswith("workspace")}
    for path, f in got.items():
        st = os.lstat(home / path)
        assert f.mode == stat.S_IMODE(st.st_mode) or f.type == "symlink"
        assert f.mtime_ns == st.st_mtime_ns
        if f.type == "file":
            assert f.size == st.st_size
    deep = {f.path for f in browse.ls(settings, 1, rel, recursive=True)}
    on_disk = {
        (Path(dp) / n).relative_to(home).as_posix()
        for dp, dns, fns in os.walk(job)
        for n in dns + fns
        if "workspace" not in (Path(dp) / n).relative_to(job).as_posix()
        and not stat.S_ISFIFO(os.lstat(Path(dp) / n).st_mode)  # not backed up
    }
    assert deep == on_disk


def test_dump_gives_a_files_bytes_and_a_directory_as_tar(
    repo_env: dict[str, str], home: Path, tmp_path: Path
) -> None:
    settings = load(environ=repo_env)
    backup(settings, 1)
    job = next(iter(_job_names(home).values()))
    config = job / "config.xml"
    out = io.BytesIO()
    browse.dump(settings, 1, config.relative_to(home).as_posix(), out)
    assert out.getvalue() == config.read_bytes()

    out = io.BytesIO()
    browse.dump(settings, 1, job.relative_to(home).as_posix(), out)
    target = tmp_path / "untarred"
    with tarfile.open(fileobj=io.BytesIO(out.getvalue()), mode="r:") as tf:
        tf.extractall(target, filter="tar")
    for dirpath, _, files in os.walk(job):
        for name in files:
            src = Path(dirpath) / name
            if "workspace" in src.relative_to(job).as_posix() or not src.is_file():
                continue  # links, FIFOs
            copy = target / src.relative_to(home)
            assert copy.read_bytes() == src.read_bytes(), src
            # tarfile extracts through a float: the PAX time is exact, its utime() is not.
            assert abs(copy.stat().st_mtime_ns - src.stat().st_mtime_ns) < 1000


def test_find_names_the_backups_holding_a_path_newest_first(
    repo_env: dict[str, str], home: Path
) -> None:
    settings = load(environ=repo_env)
    backup(settings, 1)
    marker = home / "jobs" / "find-me"
    marker.mkdir()
    (marker / "config.xml").write_text("<project/>")
    backup(settings, 2)
    backup(settings, 3)
    hits = browse.find(settings, ["find-me/config.xml", "**/find-me/config.xml"])
    assert [h.number for h in hits] == [3, 2]
    assert hits[0].paths == ("jobs/find-me/config.xml",)
    assert browse.find(settings, ["no-such-name-anywhere"]) == []


def test_diff_reports_exactly_what_changed(repo_env: dict[str, str], home: Path) -> None:
    settings = load(environ=repo_env)
    backup(settings, 1)
    jobs = list(_job_names(home).values())
    changed = jobs[0] / "config.xml"
    changed.write_bytes(changed.read_bytes() + b"<!-- edited -->\n")
    removed = jobs[1] / "config.xml"
    removed.unlink()
    added = jobs[2] / "notes.txt"
    added.write_text("new\n")
    touched = jobs[3] / "config.xml"  # same bytes, new mtime: not a change
    os.utime(touched, ns=(1, 1))
    backup(settings, 2)
    d = browse.diff(settings, 1, 2)
    got = {(c.op, c.path) for c in d.changes}
    rel = lambda p: p.relative_to(home).as_posix()  # noqa: E731
    assert got == {("M", rel(changed)), ("-", rel(removed)), ("+", rel(added))}
    assert (d.added, d.removed, d.changed) == (1, 1, 1)

    text = browse.diff_file(settings, 1, 2, rel(changed))
    assert text.splitlines()[-1] == "+<!-- edited -->"
    assert text.startswith(f"--- 1/{rel(changed)}\n+++ 2/{rel(changed)}\n")


def test_diff_jobs_counts_what_the_home_gained_and_lost(
    repo_env: dict[str, str], home: Path
) -> None:
    settings = load(environ=repo_env)
    backup(settings, 1)
    before = {name: _builds(d) for name, d in _job_names(home).items()}
    names = sorted(before)
    gone = names[0]
    shutil.rmtree(_job_names(home)[gone])
    new_job = home / "jobs" / "brand-new"
    (new_job / "builds" / "1").mkdir(parents=True)
    (new_job / "builds" / "2").mkdir()
    (new_job / "config.xml").write_text("<project/>")
    add_builds(home, fraction=0.5, seed=3)
    edited = [n for n in names[1:] if n in _job_names(home)][:2]
    for n in edited:
        cfg = _job_names(home)[n] / "config.xml"
        cfg.write_bytes(cfg.read_bytes() + b"\n")
    backup(settings, 2)
    after = {name: _builds(d) for name, d in _job_names(home).items()}

    jd = browse.diff_jobs(settings, 1, 2)
    plus = sum(len(after[n] - before.get(n, set())) for n in after)
    minus = sum(len(before[n] - after.get(n, set())) for n in before)
    assert (jd.jobs_added, jd.jobs_removed) == (1, 1)
    assert (jd.builds_added, jd.builds_removed) == (plus, minus)
    assert jd.configs_changed == len(edited)
    assert {c.name for c in jd.changes if c.op == "+"} == {"brand-new"}
    assert {c.name for c in jd.changes if c.op == "-"} == {gone}
    job_s = "job" if jd.jobs_added == 1 else "jobs"
    assert jd.summary.startswith(f"+1 {job_s}, -1 job, +{plus} build")


def test_jobs_lists_every_job_with_its_builds(repo_env: dict[str, str], home: Path) -> None:
    settings = load(environ=repo_env)
    backup(settings, 1)
    found = {j.name: j for j in browse.jobs(settings, 1)}
    expected = _job_names(home)
    assert expected.keys() <= found.keys()
    for name, d in expected.items():
        numbers = sorted(_builds(d))
        assert found[name].build_count == len(numbers)
        if numbers:
            first = found[name].builds.split(",")[0].split("-")[0]
            assert int(first) == numbers[0]
            assert found[name].builds.split(",")[-1].split("-")[-1] == str(numbers[-1])
    kinds = {j.kind for j in found.values()}
    assert {"job", "folder", "multibranch"} <= kinds


def test_browse_commands_print_documented_json(env: dict[str, str], home: Path) -> None:
    run_cli("backup", "1", env=env, check=True)
    (home / "jobs" / "json-job").mkdir()
    (home / "jobs" / "json-job" / "config.xml").write_text("<project/>")
    run_cli("backup", "2", env=env, check=True)

    ls = json.loads(run_cli("ls", "2", "jobs", "--json", env=env, check=True).stdout)
    assert {"path", "type", "mode", "size", "mtime", "mtime_ns", "target"} <= ls[0].keys()
    jobs = json.loads(run_cli("jobs", "2", "--json", env=env, check=True).stdout)
    assert {"name", "kind", "path", "builds", "build_count", "last_build"} <= jobs[0].keys()
    d = json.loads(run_cli("diff", "1", "2", "--json", env=env, check=True).stdout)
    assert {"old", "new", "changes", "added", "removed", "changed"} <= d.keys()
    assert {"op": "+", "path": "jobs/json-job/config.xml", "type": "file"}.items() <= next(
        c for c in d["changes"] if c["path"] == "jobs/json-job/config.xml"
    ).items()
    dj = json.loads(run_cli("diff", "1", "2", "--jobs", "--json", env=env, check=True).stdout)
    assert dj["jobs_added"] == 1 and dj["summary"].startswith("+1 job, -0 jobs")
    found = json.loads(run_cli("find", "json-job", "--json", env=env, check=True).stdout)
    assert [h["number"] for h in found] == [2] and "committed_at" in found[0]
    proc = run_cli("dump", "2", "jobs/json-job/config.xml", env=env, check=True)
    assert proc.stdout == "<project/>"
    missing = run_cli("dump", "2", "jobs/nope/config.xml", env=env)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1].endswith("is not in this backup")
    assert hashlib.sha256(proc.stdout.encode()).digest()  # bytes, not a log line
