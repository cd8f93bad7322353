"""Progress reporting seen by the engine: a small protocol the CLI implements."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def advance(self, files: int, nbytes: int) -> None:
        """Called from worker threads as files are processed."""

    def close(self) -> None: ...


class NoProgress:
    def advance(self, files: int, nbytes: int) -> None:
        pass

    def close(self) -> None:
        pass
