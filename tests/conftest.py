from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from homegen import generate  # noqa: E402

from conftest_servers import SERVER_LOGS, azure_server, gcs_server, s3_server  # noqa: E402, F401
from helpers import clean_env  # noqa: E402
from repo_backends import repo_env  # noqa: E402, F401

# Where the tests' temporary directories go unless --basetemp or PYTEST_DEBUG_TEMPROOT says:
# the tests write and remove hundreds of thousands of small files and fsync every object of a
# local repository, which costs a disk far more time than memory. tmp_path_retention_policy
# (pyproject.toml) removes a passed test's directory at once, so the suite holds little of it.
MEMORY_TEMPROOT = "/dev/shm"
MEMORY_TEMPROOT_FREE = 4 << 30


def _memory_temproot() -> str | None:
    try:
        st = os.statvfs(MEMORY_TEMPROOT)
    except OSError:
        return None
    usable = os.access(MEMORY_TEMPROOT, os.W_OK | os.X_OK) and not st.f_flag & (
        os.ST_RDONLY | os.ST_NOEXEC  # tests run programs they write into their directories
    )
    return MEMORY_TEMPROOT if usable and st.f_bavail * st.f_frsize >= MEMORY_TEMPROOT_FREE else None


def pytest_configure(config: pytest.Config) -> None:
    if config.option.basetemp is None and not os.environ.get("PYTEST_DEBUG_TEMPROOT"):
        root = _memory_temproot()
        if root is not None:
            os.environ["PYTEST_DEBUG_TEMPROOT"] = root


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A realistic tiny JENKINS_HOME (folders, multibranch, workspaces, odd names, a FIFO)."""
    root = tmp_path / "jenkins_home"
    generate(root, size="tiny", seed=7, odd=True)
    return root


@pytest.fixture
def env(tmp_path: Path, home: Path) -> Iterator[dict[str, str]]:
    yield clean_env(
        JENKINS_HOME=str(home),
        BACKUP_REPOSITORY=str(tmp_path / "repo"),
        BACKUP_RUNTIME_DIR=str(tmp_path / "runtime"),
    )


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """When tests failed, show what the storage servers said: their logs vanish with the run."""
    if exitstatus == 0:
        return
    for log in SERVER_LOGS:
        try:
            lines = log.read_text(errors="replace").splitlines()[-15:]
        except OSError:
            continue
        terminalreporter.section(f"last lines of {log.name}")
        for line in lines:
            terminalreporter.write_line(line[:300])
