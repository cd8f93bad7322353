"""Session fixtures for the real storage servers (imported by tests/conftest.py).

Each fixture yields a started server from tests/servers.py (``env`` for open_storage,
``repo_url(name)`` for a fresh repository), or skips with the reason when the server is not
installed here. A server that is installed but fails to start is an error, not a skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import Azurite, FakeGCS, SeaweedFS_S3, Server, ServerUnavailable

SERVER_LOGS: list[Path] = []
"""Logs of the servers this run started: conftest prints their tails when tests failed."""


def _serve(server: Server, tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp(name)
    try:
        server.start(workdir)
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    SERVER_LOGS.extend(sorted(workdir.glob("*.log")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve(SeaweedFS_S3(), tmp_path_factory, "seaweedfs")


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve(FakeGCS(), tmp_path_factory, "fake-gcs")


@pytest.fixture(scope="session")
def azure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve(Azurite(), tmp_path_factory, "azurite")
