"""The JENKINS_HOME generator is deterministic and builds the structures tests rely on."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

import homegen


def _manifest(root: Path) -> dict[bytes, tuple[int, int, int, str]]:
    """Relative path -> (type and mode, size, mtime_ns, content digest or link target)."""
    out: dict[bytes, tuple[int, int, int, str]] = {}
    base = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = os.fsdecode(os.readlink(path))
            else:
                digest = ""
            size = st.st_size if not stat.S_ISDIR(st.st_mode) else 0
            out[os.path.relpath(path, base)] = (st.st_mode, size, st.st_mtime_ns, digest)
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, homegen.Stats]:
    root = tmp_path_factory.mktemp("tiny") / "home"
    return root, homegen.generate(root, size="tiny", seed=7, odd=True)


def test_same_seed_same_tree(tmp_path: Path) -> None:
    homegen.generate(tmp_path / "a", size="tiny", seed=3)
    homegen.generate(tmp_path / "b", size="tiny", seed=3)
    homegen.generate(tmp_path / "c", size="tiny", seed=4)
    a = _manifest(tmp_path / "a")
    assert a == _manifest(tmp_path / "b")
    assert a != _manifest(tmp_path / "c")


def test_tiny_is_quick_and_small(tmp_path: Path) -> None:
    start = time.perf_counter()
    stats = homegen.generate(tmp_path / "home", size="tiny", seed=1)
    assert time.perf_counter() - start < 1.0
    assert 300 <= stats.files <= 900
    assert stats.builds > 20 and stats.jobs > 5


def test_refuses_non_empty_dir(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("x")
    with pytest.raises(FileExistsError):
        homegen.generate(tmp_path, size="tiny", seed=1)


def test_structures(tiny: tuple[Path, homegen.Stats]) -> None:
    root, _ = tiny
    for name in (
        "config.xml",
        "credentials.xml",
        "secrets/master.key",
        "secrets/hudson.util.Secret",
        "users/users.xml",
        "fingerprints",
        "caches",
        "logs",
        "war",
        "plugins",
        "nodes",
    ):
        assert (root / name).exists(), name
    assert list((root / "plugins").glob("*.jpi"))
    assert [p for p in (root / "plugins").iterdir() if p.is_dir()]
    jobs = [p.relative_to(root / "jobs").as_posix() for p in homegen.iter_jobs(root)]
    assert any("/jobs/" in j for j in jobs), "a job inside a folder"
    assert any("/jobs/" in j and j.count("/jobs/") >= 2 for j in jobs), "a nested folder"
    assert any("/branches/" in j for j in jobs), "a multibranch branch"
    for job in homegen.iter_jobs(root):
        assert (job / "config.xml").is_file()
        assert int((job / "nextBuildNumber").read_text()) > 0
        builds = [b for b in (job / "builds").iterdir() if b.name.isdigit()]
        assert builds and all((b / "build.xml").is_file() and (b / "log").is_file() for b in builds)
        link = job / "builds" / "lastSuccessfulBuild"
        assert link.is_symlink()
    logs = list((root / "jobs").rglob("log"))
    assert any(b"[INFO]" in p.read_bytes() or b"> Task" in p.read_bytes() for p in logs)
    assert list((root / "jobs").rglob("junitResult.xml"))
    assert [p for p in (root / "jobs").rglob("*") if "/archive/" in p.as_posix()]


def test_workspaces_at_several_depths(tiny: tuple[Path, homegen.Stats]) -> None:
    root, stats = tiny
    assert (root / "workspace").is_dir()
    ws = [p.relative_to(root).as_posix() for p in (root / "jobs").rglob("workspace*") if p.is_dir()]
    depths = {p.count("/") for p in ws}
    assert len(depths) >= 2, ws
    assert any(p.endswith("@tmp") for p in ws) or any(p.endswith("@2") for p in ws)
    assert stats.workspace_files > 0


def test_odd_entries(tiny: tuple[Path, homegen.Stats]) -> None:
    _, stats = tiny
    odd = [os.fsencode(p) for p in stats.odd_paths]
    names = [os.path.basename(p) for p in odd]
    assert b"new\nline.txt" in names
    assert any(len(n) == 255 for n in names)
    assert any(_not_utf8(n) for n in names)
    kinds = {os.path.basename(p): os.lstat(p).st_mode for p in odd}
    assert stat.S_ISFIFO(kinds[b"fifo"])
    broken = [p for p in odd if stat.S_ISLNK(os.lstat(p).st_mode)]
    assert broken and not any(os.path.exists(p) for p in broken)


def _not_utf8(name: bytes) -> bool:
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_add_builds(tmp_path: Path) -> None:
    root = tmp_path / "home"
    homegen.generate(root, size="tiny", seed=2)
    before = _manifest(root)
    now = time.time_ns()
    stats = homegen.add_builds(root, fraction=0.3, seed=5, now_ns=now)
    after = _manifest(root)
    assert stats.builds == stats.jobs >= 1
    new = set(after) - set(before)
    assert new and all(
        after[p][2] >= now - 3_600 * 10**9 for p in new if not stat.S_ISDIR(after[p][0])
    )
    jobs = list(homegen.iter_jobs(root))
    bumped = [
        j
        for j in jobs
        if os.fsencode(j.relative_to(root) / "nextBuildNumber") in after
        and after[os.fsencode(j.relative_to(root) / "nextBuildNumber")]
        != before[os.fsencode(j.relative_to(root) / "nextBuildNumber")]
    ]
    assert len(bumped) == stats.jobs
    for job in bumped:
        number = int((job / "nextBuildNumber").read_text()) - 1
        assert (job / "builds" / str(number) / "build.xml").is_file()
        assert os.readlink(job / "builds" / "lastSuccessfulBuild") == str(number)
