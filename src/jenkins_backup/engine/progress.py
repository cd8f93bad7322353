"""Progress reporting seen by the engine: a small protocol the CLI implements."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def total(self, files: int, nbytes: int, *, estimate: bool = False) -> None:
        """What the whole run will process, when known before it starts (restore: from the
        check; ``estimate``: a guess, e.g. a backup's parent)."""

    def advance(self, files: int, nbytes: int, path: bytes = b"") -> None:
        """Called from worker threads as files are processed; ``nbytes`` counts their size,
        read or skipped as unchanged alike. ``path`` (relative to the home): the file just
        processed, when there is one file."""

    def close(self) -> None: ...


class NoProgress:
    def total(self, files: int, nbytes: int, *, estimate: bool = False) -> None:
        pass

    def advance(self, files: int, nbytes: int, path: bytes = b"") -> None:
        pass

    def close(self) -> None:
        pass
