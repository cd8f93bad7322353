"""A local repository is group-writable, so that another UID of its group can use it.

OpenShift runs a pod under an arbitrary UID whose group is 0; the image's user 1000 has group 0
as well. A repository that UID 1000 created must accept the backups, restores and runtime
records of any other UID of group 0.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import clean_env
from jenkins_backup import settings
from jenkins_backup.operations.backup import backup


def small_home(root: Path) -> None:
    build = root / "jobs" / "a" / "builds" / "1"
    build.mkdir(parents=True)
    (build / "log").write_text("built\n")
    (root / "jobs" / "a" / "nextBuildNumber").write_text("2\n")


def test_objects_and_directories_are_group_writable(tmp_path: Path) -> None:
    small_home(tmp_path / "home")
    repo = tmp_path / "repo"
    old = os.umask(0o022)
    try:
        s = settings.load(environ={"JENKINS_HOME": str(tmp_path / "home"), "BACKUP_DIR": str(repo)})
        backup(s, 1)
    finally:
        os.umask(old)
    seen = 0
    for path in [repo, *repo.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_dir():
            assert mode == 0o2775, f"{path}: {oct(mode)}"
        else:
            assert mode == 0o664, f"{path}: {oct(mode)}"
            seen += 1
    assert seen >= 3


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory every UID can reach (pytest's tmp_path is private to its owner)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run commands as other UIDs")
    path = Path(tempfile.mkdtemp(prefix="jb-uids-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=True)


def python_for_others() -> tuple[str, dict[str, str]]:
    """An interpreter other UIDs may run, and the PYTHONPATH that finds this checkout with it.

    A virtualenv's interpreter may link into root's private home; the system's python3 of the
    same version then runs the same code and compiled dependencies.
    """
    if _others_may_run(sys.executable):
        return sys.executable, {}
    system = "/usr/bin/python3"
    version = subprocess.run(
        [system, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not _others_may_run(system) or version != str(tuple(sys.version_info[:2])):
        pytest.skip(f"no interpreter other UIDs may run ({sys.executable} is private)")
    import zstandard

    import jenkins_backup

    paths = [Path(jenkins_backup.__file__).parent.parent, Path(zstandard.__file__).parent.parent]
    return system, {"PYTHONPATH": os.pathsep.join(str(p) for p in paths)}


def _others_may_run(path: str) -> bool:
    real = Path(os.path.realpath(path))
    return all(p.stat().st_mode & stat.S_IXOTH for p in [real, *real.parents])


def as_user(uid: int, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    python, extra = python_for_others()
    return subprocess.run(
        [python, "-m", "jenkins_backup", *args],
        env={**env, **extra},
        user=uid,
        group=0,
        extra_groups=[],
        umask=0o022,
        cwd="/",
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_arbitrary_uid_of_group_0_uses_a_repository_uid_1000_created(shared: Path) -> None:
    home = shared / "home"
    small_home(home)
    # UID 1000 owns the volume (as a bind mount or a PVC with fsGroup would give it).
    subprocess.run(["chown", "-R", "1000:0", str(shared)], check=True)
    subprocess.run(["chmod", "-R", "g+w", str(home)], check=True)
    env = clean_env(JENKINS_HOME=str(home), BACKUP_DIR=str(shared / "repo"))
    env.pop("BACKUP_RUNTIME_DIR", None)
    first = as_user(1000, env, "backup", "1")
    assert first.returncode == 0, first.stderr

    other = 1000630000  # an OpenShift-style UID
    # Its own JENKINS_HOME for the restore (a file's owner alone may set its times and mode).
    fresh = shared / "fresh-home"
    fresh.mkdir()
    os.chown(fresh, other, 0)
    for args, home_dir in (("backup", "2"), home), (("verify",), home), (("restore", "2"), fresh):
        proc = as_user(other, {**env, "JENKINS_HOME": str(home_dir)}, *args)
        assert proc.returncode == 0, f"{args}: {proc.stderr}"
        assert "cannot update the runtime directory" not in proc.stderr, proc.stderr
    assert (fresh / "jobs" / "a" / "builds" / "1" / "log").read_text() == "built\n"
    latest = as_user(1000, env, "latest")
    assert latest.stdout == "2\n", latest.stderr
    status = (shared / "repo" / ".runtime" / "status.json").stat()
    assert status.st_uid in (1000, other) and stat.S_IMODE(status.st_mode) == 0o664
