from __future__ import annotations

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
