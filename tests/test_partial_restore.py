"""Restoring a part of a backup: one job, some builds, some paths; elsewhere; previewed; exact.

Every test runs on a generated home (folders, multibranch projects, builds, odd names) against a
local directory and S3. Expectations come from the files themselves (``describe``: kind, mode,
mtime, content hash), never from the tool: a partial restore writes exactly its part and leaves
every other path as it was, byte for byte and mtime for mtime.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from homegen import iter_jobs

from helpers import describe, in_jobs_scope
from inprocess import run_main
from jenkins_backup.errors import CorruptObject
from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.common import existing_repository
from jenkins_backup.operations.restore import RestoreOptions, restore
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.tree import DIR
from jenkins_backup.repository.tree import Entry as TreeEntry
from jenkins_backup.settings import load
from repo_backends import RawStore

Tree = dict[bytes, tuple[str, int, int, str]]


def _full_name(home: Path, job: Path) -> str:
    return "/".join(job.relative_to(home / "jobs").parts[::2])


def _rel(home: Path, p: Path) -> bytes:
    return os.fsencode(p.relative_to(home))


def _builds(job: Path) -> list[int]:
    return sorted(
        int(p.name) for p in (job / "builds").iterdir() if p.name.isdigit() and not p.is_symlink()
    )


def _kinds(home: Path) -> dict[str, Path]:
    """One item of each kind in the generated home: a plain top-level job with builds, a job in
    a folder, a branch of a multibranch project, a folder."""
    jobs = [j for j in iter_jobs(home) if len(_builds(j)) >= 3]
    found = {
        "job": next(j for j in jobs if j.parent == home / "jobs"),
        "in-folder": next(j for j in jobs if j.parent.name == "jobs" and j.parent != home / "jobs"),
        "branch": next(j for j in jobs if j.parent.name == "branches"),
        "folder": next(d for d in (home / "jobs").iterdir() if (d / "jobs").is_dir()),
    }
    return found


def _escaped(rel: bytes) -> str:
    """A path as the dry run shows it: Python's escapes for what is not printable."""
    return repr(os.fsdecode(rel))[1:-1]


def _under(rel: bytes, base: bytes) -> bool:
    return rel == base or rel.startswith(base + b"/")


def _scoped(tree: Tree) -> Tree:
    return {k: v for k, v in tree.items() if in_jobs_scope(os.fsdecode(k))}


def _settings(env: dict[str, str], **extra: str):  # type: ignore[no-untyped-def]
    return load(environ={**env, **extra})


@pytest.mark.parametrize("kind", ["job", "in-folder", "branch", "folder"])
def test_job_restore_writes_that_item_and_leaves_every_other_path(
    repo_env: dict[str, str], home: Path, kind: str
) -> None:
    settings = _settings(repo_env)
    backup(settings, 1)
    original = describe(home)
    item = _kinds(home)[kind]
    base = _rel(home, item)
    other = next(j for j in iter_jobs(home) if not _under(_rel(home, j), base))
    # The item is damaged: its configuration edited, a build deleted, a file added.
    job = item if kind != "folder" else next(j for j in iter_jobs(item))
    (job / "config.xml").write_bytes(b"<broken/>")
    shutil.rmtree(job / "builds" / str(_builds(job)[0]))
    (job / "added-since.txt").write_text("kept: restore is an overlay\n")
    # Elsewhere, changes the restore must not undo.
    (other / "config.xml").write_bytes(b"<edited since the backup/>")
    shutil.rmtree(other / "builds" / str(_builds(other)[0]))
    before = describe(home)

    code, _out, err = run_main(repo_env, "restore", "1", "--job", _full_name(home, item))
    assert code == 0, err
    after = describe(home)
    assert {k: v for k, v in after.items() if not _under(k, base)} == {
        k: v for k, v in before.items() if not _under(k, base)
    }
    inside = {k: v for k, v in after.items() if _under(k, base) and k != base}
    expected = {k: v for k, v in _scoped(original).items() if _under(k, base) and k != base}
    added = _rel(home, job / "added-since.txt")
    assert inside.pop(added) == before[added]
    workspaces = {k: v for k, v in before.items() if _under(k, base) and k not in expected}
    workspaces.pop(added)
    workspaces.pop(base)
    assert inside == {**expected, **workspaces}  # workspaces stay as they were
    assert after[base] == original[base]  # the item's own directory: mode and mtime
    assert err.strip().splitlines()[-1].startswith("jenkins-backup: next: reload from disk: POST")


def test_a_deleted_job_comes_back_whole(repo_env: dict[str, str], home: Path) -> None:
    settings = _settings(repo_env)
    backup(settings, 1)
    original = _scoped(describe(home))
    job = _kinds(home)["in-folder"]
    base = _rel(home, job)
    shutil.rmtree(job)
    code, _, err = run_main(repo_env, "restore", "1", "--job", _full_name(home, job))
    assert code == 0, err
    got = {k: v for k, v in describe(home).items() if _under(k, base)}
    assert got == {k: v for k, v in original.items() if _under(k, base)}
    # Jenkins does not know the job any more: only a reload of the configuration finds it.
    assert "Reload Configuration from Disk" in err.splitlines()[-1]
    assert "POST" not in err.splitlines()[-1]


def test_builds_restores_those_builds_alone(
    repo_env: dict[str, str], home: Path, tmp_path: Path
) -> None:
    settings = _settings(repo_env)
    backup(settings, 1)
    original = describe(home)
    job = _kinds(home)["job"]
    numbers = _builds(job)
    first, second, third = numbers[0], numbers[1], numbers[2]
    for n in (first, third):
        shutil.rmtree(job / "builds" / str(n))
    (job / "config.xml").write_bytes(b"<changed since/>")
    before = describe(home)
    wanted = f"{first},{third}-{third}"
    code, _, err = run_main(
        repo_env, "restore", "1", "--job", _full_name(home, job), "--builds", wanted
    )
    assert code == 0, err
    after = describe(home)
    restored = [_rel(home, job / "builds" / str(n)) for n in (first, third)]

    def in_builds(k: bytes) -> bool:
        return any(_under(k, r) for r in restored)

    assert {k: v for k, v in after.items() if in_builds(k)} == {
        k: v for k, v in original.items() if in_builds(k)
    }
    rest = {k: v for k, v in after.items() if not in_builds(k)}
    builds_dir = _rel(home, job / "builds")
    assert rest.pop(builds_dir)[:2] == before.pop(builds_dir)[:2]  # its mtime changes: new dirs
    assert rest == before  # configuration, other builds, nextBuildNumber: untouched
    assert (job / "builds" / str(second)).is_dir()

    # Into an empty directory: those builds and a nextBuildNumber above them, nothing else.
    target = tmp_path / "builds-only"
    code, _, err = run_main(
        repo_env,
        "restore",
        "1",
        "--job",
        _full_name(home, job),
        "--builds",
        f"{first}-{second}",
        "--target",
        str(target),
    )
    assert code == 0, err
    jobdir = target / job.relative_to(home)
    assert sorted(os.listdir(jobdir)) == ["builds", "nextBuildNumber"]
    assert sorted(os.listdir(jobdir / "builds")) == sorted([str(first), str(second)])
    assert (jobdir / "nextBuildNumber").read_text() == f"{second + 1}\n"


def test_next_build_number_is_never_lowered_below_a_build(
    repo_env: dict[str, str], home: Path
) -> None:
    settings = _settings(repo_env)
    job = _kinds(home)["branch"]
    top = _builds(job)[-1]
    (job / "nextBuildNumber").write_text(f"{top + 1}\n")
    backup(settings, 1)
    kept = describe(home)[_rel(home, job / "nextBuildNumber")]
    # A plain restore of the job as it is: the backup's number is right and is left alone.
    code, _, err = run_main(repo_env, "restore", "1", "--job", _full_name(home, job))
    assert code == 0, err
    assert describe(home)[_rel(home, job / "nextBuildNumber")] == kept
    # Jenkins ran two builds since: restoring the job brings back the older number, which is
    # raised above the newest build directory (Jenkins refuses to reuse a build's directory).
    shutil.copytree(job / "builds" / str(top), job / "builds" / str(top + 1), symlinks=True)
    shutil.copytree(job / "builds" / str(top), job / "builds" / str(top + 7), symlinks=True)
    (job / "nextBuildNumber").write_text(f"{top + 8}\n")
    (job / "config.xml").write_bytes(b"<broken/>")
    code, _, err = run_main(repo_env, "restore", "1", "--job", _full_name(home, job))
    assert code == 0, err
    assert (job / "nextBuildNumber").read_text() == f"{top + 8}\n"
    assert (job / "builds" / str(top + 7)).is_dir()  # an overlay: newer builds stay
    # A number the admin lowered by hand is raised too.
    (job / "nextBuildNumber").write_text("3\n")
    code, _, err = run_main(
        repo_env, "restore", "1", "--job", _full_name(home, job), "--builds", str(top)
    )
    assert code == 0, err
    assert (job / "nextBuildNumber").read_text() == f"{top + 8}\n"


def test_include_and_exclude_select_exactly(
    repo_env: dict[str, str], home: Path, tmp_path: Path
) -> None:
    settings = _settings(repo_env)
    backup(settings, 1)
    source = _scoped(describe(home))
    files = {k: v for k, v in source.items() if v[0] != "dir"}

    target = tmp_path / "configs"
    code, _, err = run_main(
        repo_env, "restore", "1", "--include", "**/config.xml", "--target", str(target)
    )
    assert code == 0, err
    got = describe(target)
    want = {k: v for k, v in files.items() if k.split(b"/")[-1] == b"config.xml"}
    assert {k: v for k, v in got.items() if v[0] != "dir"} == want
    dirs = {k for k, v in got.items() if v[0] == "dir"}
    assert dirs == {b"/".join(k.split(b"/")[:i]) for k in want for i in range(1, k.count(b"/") + 1)}

    target = tmp_path / "no-builds"
    args = ["--exclude", "builds", "--exclude", "*.log", "--target", str(target)]
    code, _, err = run_main(repo_env, "restore", "1", *args)
    assert code == 0, err

    def excluded(k: bytes) -> bool:
        segs = os.fsdecode(k).split("/")
        return "builds" in segs or any(fnmatch.fnmatchcase(s, "*.log") for s in segs)

    got = describe(target)
    assert {k: v for k, v in got.items() if v[0] != "dir"} == {
        k: v for k, v in files.items() if not excluded(k)
    }
    # Directories selected are written whole, mode and mtime included.
    assert {k: v for k, v in got.items() if v[0] == "dir"} == {
        k: v for k, v in source.items() if v[0] == "dir" and not excluded(k)
    }

    # --job and patterns together: a path must satisfy both.
    job = _kinds(home)["job"]
    target = tmp_path / "job-configs"
    code, _, err = run_main(
        repo_env,
        "restore",
        "1",
        "--job",
        _full_name(home, job),
        "--include",
        "*.xml",
        "--exclude",
        "builds",
        "--target",
        str(target),
    )
    assert code == 0, err
    base = _rel(home, job)
    got = {k for k, v in describe(target).items() if v[0] != "dir"}
    assert got == {
        k
        for k, v in files.items()
        if _under(k, base) and k.endswith(b".xml") and b"/builds/" not in k
    }


def test_delete_removes_exactly_what_the_selected_part_lacks(
    repo_env: dict[str, str], home: Path
) -> None:
    settings = _settings(repo_env)
    backup(settings, 1)
    original = _scoped(describe(home))
    kinds = _kinds(home)
    job, other = kinds["job"], kinds["in-folder"]
    base = _rel(home, job)
    extra_dir = job / "builds" / "9999"
    extra_dir.mkdir()
    (extra_dir / "log").write_text("a build the backup never saw\n")
    (job / "stray.txt").write_text("x")
    os.symlink("nowhere", job / "stray-link")
    ws = job / "workspace"
    ws.mkdir(exist_ok=True)
    (ws / "local-change.c").write_text("never touched: workspaces are out of scope\n")
    (other / "stray.txt").write_text("outside the selection\n")
    (home / "outside-scope.txt").write_text("not in the jobs scope\n")
    before = describe(home)

    code, _, err = run_main(repo_env, "restore", "1", "--job", _full_name(home, job), "--delete")
    assert code == 0, err
    after = describe(home)
    gone = set(before) - set(after)
    assert gone == {
        _rel(home, p) for p in (extra_dir, extra_dir / "log", job / "stray.txt", job / "stray-link")
    }
    assert {k: v for k, v in after.items() if not _under(k, base)} == {
        k: v for k, v in before.items() if not _under(k, base)
    }
    inside = {k: v for k, v in after.items() if _under(k, base)}
    assert {k: v for k, v in inside.items() if in_jobs_scope(os.fsdecode(k))} == {
        k: v for k, v in original.items() if _under(k, base)
    }
    assert (ws / "local-change.c").read_text().startswith("never touched")

    # A whole restore with --delete: the scope equals the backup, nothing outside it moves,
    # and what no backup holds (a FIFO) is not "lacking" from it.
    fifos = [p for p in home.rglob("*") if stat.S_ISFIFO(p.lstat().st_mode)]
    assert fifos
    code, _, err = run_main(repo_env, "restore", "1", "--delete")
    assert code == 0, err
    assert all(stat.S_ISFIFO(p.lstat().st_mode) for p in fifos)
    after = describe(home)
    assert _scoped(after) == original
    assert not (other / "stray.txt").exists()
    outside = {k: v for k, v in before.items() if not in_jobs_scope(os.fsdecode(k))}
    assert {k: v for k, v in after.items() if not in_jobs_scope(os.fsdecode(k))} == outside


def test_delete_with_builds_stays_inside_those_builds(repo_env: dict[str, str], home: Path) -> None:
    settings = _settings(repo_env)
    backup(settings, 1)
    job = _kinds(home)["job"]
    numbers = _builds(job)
    top = numbers[-1]
    (job / "builds" / str(numbers[0]) / "extra.txt").write_text("x")
    newer = job / "builds" / str(top + 1)
    newer.mkdir()
    (newer / "log").write_text("a newer build\n")
    (job / "stray.txt").write_text("outside the builds asked for\n")
    before = describe(home)
    code, _, err = run_main(
        repo_env,
        "restore",
        "1",
        "--job",
        _full_name(home, job),
        "--builds",
        f"{numbers[0]}-{top}",
        "--delete",
    )
    assert code == 0, err
    after = describe(home)
    assert set(before) - set(after) == {_rel(home, job / "builds" / str(numbers[0]) / "extra.txt")}
    assert (newer / "log").is_file() and (job / "stray.txt").is_file()
    assert (job / "nextBuildNumber").read_text() == f"{top + 2}\n"


def test_dry_run_lists_the_changes_and_writes_nothing(
    repo_env: dict[str, str], home: Path, tmp_path: Path
) -> None:
    settings = _settings(repo_env)
    backup(settings, 1)
    job = _kinds(home)["in-folder"]
    base = job.relative_to(home).as_posix()
    gone = job / "builds" / str(_builds(job)[0])
    gone_files = sorted(p for p in gone.rglob("*"))
    shutil.rmtree(gone)
    (job / "config.xml").write_bytes(b"<broken/>")
    (job / "stray.txt").write_text("x")
    before = describe(home)

    code, out, err = run_main(
        repo_env, "restore", "1", "--job", _full_name(home, job), "--dry-run", "--delete"
    )
    assert code == 0, err
    assert describe(home) == before  # byte for byte, every mtime and mode
    assert not list(home.rglob(".jbtmp-*"))
    code, as_json, err = run_main(
        repo_env, "restore", "1", "--job", _full_name(home, job), "--dry-run", "--delete", "--json"
    )
    assert code == 0, err
    assert {f"{p['op']} {p['path']}" for p in json.loads(as_json)} == set(out.splitlines())
    assert describe(home) == before

    def shown(p: Path) -> str:
        rel = _escaped(os.fsencode(p.relative_to(home)))
        return rel + "/" if p.is_dir() and not p.is_symlink() else rel

    lines = set(out.splitlines())
    expected = {f"M {base}/config.xml", f"- {base}/stray.txt", f"+ {gone.relative_to(home)}/"}
    # Everything below the deleted build, as it was (seen from the restored copy below).
    code, _, err = run_main(repo_env, "restore", "1", "--job", _full_name(home, job), "--delete")
    assert code == 0, err
    expected |= {f"+ {shown(p)}" for p in gone.rglob("*")}
    assert len(gone_files) == len(list(gone.rglob("*")))
    assert lines == expected
    code, out, err = run_main(repo_env, "restore", "1", "--job", _full_name(home, job), "--dry-run")
    assert (code, out) == (0, "")  # restored: nothing left to do

    # Into a directory that does not exist: everything is new, and it is not created.
    target = tmp_path / "not-yet"
    code, out, err = run_main(repo_env, "restore", "1", "--dry-run", "--target", str(target))
    assert code == 0, err
    assert not target.exists()
    listed = {line[2:].rstrip("/") for line in out.splitlines()}
    assert all(line.startswith("+ ") for line in out.splitlines())
    assert listed == {_escaped(k) for k in _scoped(describe(home))}


def test_target_takes_a_whole_restore_elsewhere(
    repo_env: dict[str, str], home: Path, tmp_path: Path
) -> None:
    settings = _settings(repo_env)
    backup(settings, 1)
    target = tmp_path / "elsewhere" / "deeper"
    code, _, err = run_main(repo_env, "restore", "1", "--target", str(target))
    assert code == 0, err
    assert describe(target) == _scoped(describe(home))


def test_unknown_job_and_refused_combinations(
    repo_env: dict[str, str], home: Path, tmp_path: Path
) -> None:
    settings = _settings(repo_env)
    backup(settings, 1)
    target = tmp_path / "target"
    job = _full_name(home, _kinds(home)["job"])
    cases = [
        (["--job", "no/such/job"], 1, "no job 'no/such/job' in backup 1"),
        (["--job", job, "--builds", "999990-999999"], 1, "no build 999990-999999 of"),
        (["--builds", "1-3"], 2, "--builds needs exactly one --job"),
        (["--job", job, "--job", job, "--builds", "1"], 2, "--builds needs exactly one --job"),
        (["--job", job, "--builds", "3-1"], 2, "--builds takes numbers and ranges"),
        (["--job", job, "--builds", "x"], 2, "--builds takes numbers and ranges"),
        (["--include", ""], 2, "empty include/exclude pattern"),
    ]
    for args, want, message in cases:
        code, _out, err = run_main(repo_env, "restore", "1", *args, "--target", str(target))
        assert code == want, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, err)
        assert not target.exists()


def test_a_partial_restore_reads_and_checks_only_its_part(
    repo_env: dict[str, str], home: Path, tmp_path: Path
) -> None:
    """Bit rot outside the part asked for does not matter; inside it, the usual rules: every
    readable file written, the damaged named, exit 1."""
    settings = _settings(repo_env)
    backup(settings, 1)
    raw = RawStore(repo_env)
    packs = set(raw.sizes("data/"))
    rotten = home / "jobs" / "rotten"
    (rotten / "builds" / "1").mkdir(parents=True)
    (rotten / "config.xml").write_bytes(os.urandom(256 << 10))
    (rotten / "builds" / "1" / "log").write_bytes(os.urandom(256 << 10))
    backup(settings, 2)
    sizes = raw.sizes("data/")
    new = [k for k in sizes if k not in packs]
    raw.flip(max(new, key=lambda k: sizes[k]), 20)  # backup 2's data: the rotten job's files

    healthy = _kinds(home)["job"]
    target = tmp_path / "healthy"
    code, _, err = run_main(
        repo_env, "restore", "2", "--job", _full_name(home, healthy), "--target", str(target)
    )
    assert code == 0, err
    want = {k: v for k, v in _scoped(describe(home)).items() if _under(k, _rel(home, healthy))}
    got = describe(target)
    assert {k: v for k, v in got.items() if _under(k, _rel(home, healthy))} == want

    target = tmp_path / "rotten"
    with pytest.raises(CorruptObject, match="backup 2 is damaged: "):
        restore(
            load(environ=repo_env), 2, None, RestoreOptions(jobs=("rotten",), target=str(target))
        )
    job = target / "jobs" / "rotten"
    written = [p for p in job.rglob("*") if p.is_file() and p.name != "nextBuildNumber"]
    for p in written:  # never a wrong byte
        assert p.read_bytes() == (home / p.relative_to(target)).read_bytes()
    assert len(written) < 2
    assert (job / "nextBuildNumber").read_text() == "2\n"  # builds/1 is there: never reused


def test_a_job_restore_reads_the_trees_on_its_way_and_its_own(
    repo_env: dict[str, str], home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(repo_env)
    backup(settings, 1)
    job = _kinds(home)["in-folder"]
    parts = tuple(os.fsencode(p) for p in job.relative_to(home).parts)
    repo = existing_repository(settings)
    root = repo.load_snapshot(repo.snapshot_refs()[-1]).tree
    allowed = {root}
    tree = root
    for name in parts:  # the trees on the way: the home, jobs, the folder, its jobs/
        tree = next(e for e in repo.read_tree(tree) if e.name == name).subtree
        allowed.add(tree)
    allowed |= {t for t in _subtrees(repo, tree)}
    everything = _subtrees(repo, root)
    assert len(everything) > 3 * len(allowed)

    read: set[bytes] = set()
    original = Repository.read_tree

    def recording(self: Repository, tree_id: bytes) -> list[TreeEntry]:
        read.add(tree_id)
        return original(self, tree_id)

    monkeypatch.setattr(Repository, "read_tree", recording)
    code, _, err = run_main(
        repo_env, "restore", "1", "--job", _full_name(home, job), "--target", str(tmp_path / "t")
    )
    assert code == 0, err
    assert read <= allowed and tree in read


def _subtrees(repo: Repository, tree: bytes) -> set[bytes]:
    out = {tree}
    for e in repo.read_tree(tree):
        if e.kind == DIR:
            out |= _subtrees(repo, e.subtree)
    return out


def test_a_linked_jobs_directory_is_written_through_previewed_and_cleaned(
    repo_env: dict[str, str], home: Path, tmp_path: Path
) -> None:
    """``jobs`` on a volume of its own (a link, a scope root): a partial restore, its preview
    and --delete go through the link as a full restore does, and the link stays a link."""
    settings = _settings(repo_env)
    backup(settings, 1)
    volume = tmp_path / "jobs-volume"
    (home / "jobs").rename(volume)
    (home / "jobs").symlink_to(volume)
    job = _kinds(home)["job"]
    (job / "stray.txt").write_text("x")
    (job / "config.xml").write_bytes(b"<broken/>")
    name = _full_name(home, job)
    rel = job.relative_to(home).as_posix()
    code, out, err = run_main(repo_env, "restore", "1", "--job", name, "--dry-run", "--delete")
    assert code == 0, err
    assert set(out.splitlines()) == {f"M {rel}/config.xml", f"- {rel}/stray.txt"}
    code, out, err = run_main(repo_env, "restore", "1", "--delete", "--dry-run")
    assert code == 0, err
    assert set(out.splitlines()) == {f"M {rel}/config.xml", f"- {rel}/stray.txt"}
    code, _, err = run_main(repo_env, "restore", "1", "--job", name, "--delete")
    assert code == 0, err
    assert (home / "jobs").is_symlink()
    assert not (volume / job.name / "stray.txt").exists()
    assert (volume / job.name / "config.xml").read_bytes() != b"<broken/>"
