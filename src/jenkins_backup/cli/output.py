"""Human output: log lines on stderr, a progress line only on a terminal, tables and JSON on
stdout (the rule: a command's product on stdout, everything else on stderr; README)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jenkins_backup.engine.progress import NoProgress, Progress

if TYPE_CHECKING:
    from jenkins_backup.cli.progress_line import ProgressLine


def setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    handler = _Console(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("botocore", "urllib3", "google", "azure"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"jenkins-backup: {record.levelname.lower()}: {msg}"
        return f"jenkins-backup: {msg}"


class _Console(logging.StreamHandler):  # type: ignore[type-arg]
    """Log lines on stderr; while a progress line is shown, each goes above it."""

    line: ProgressLine | None = None

    def emit(self, record: logging.LogRecord) -> None:
        line = self.line
        if line is None:
            super().emit(record)
            return
        try:
            text = self.format(record)
        except Exception:
            self.handleError(record)
            return
        line.print_above(text)


def erase_progress() -> None:
    """Before a message written straight to stderr while a command runs (the time bound)."""
    console = _console()
    line = console.line if console is not None else None
    if line is not None:
        line.abandon()


def _console() -> _Console | None:
    return next((h for h in logging.getLogger().handlers if isinstance(h, _Console)), None)


class _Shown:
    """The progress line, attached to the log handler for as long as it is shown."""

    def __init__(self, label: str, console: _Console) -> None:
        from jenkins_backup.cli.progress_line import ProgressLine  # only on a terminal

        self._console = console
        self.line = ProgressLine(label, sys.stderr)
        console.line = self.line

    def total(self, files: int, nbytes: int, *, estimate: bool = False) -> None:
        self.line.total(files, nbytes, estimate=estimate)

    def advance(self, files: int, nbytes: int, path: bytes = b"") -> None:
        self.line.advance(files, nbytes, path)

    def close(self) -> None:
        self._console.line = None
        self.line.close()


class _Listed:
    """-v: each file processed is named in a log line (above the progress line, if any)."""

    def __init__(self, label: str, inner: Progress) -> None:
        self._log = logging.getLogger(f"jenkins_backup.files.{label}")
        self._label = label
        self._inner = inner

    def total(self, files: int, nbytes: int, *, estimate: bool = False) -> None:
        self._inner.total(files, nbytes, estimate=estimate)

    def advance(self, files: int, nbytes: int, path: bytes = b"") -> None:
        self._inner.advance(files, nbytes, path)
        if path:
            self._log.debug("%s: %s", self._label, os.fsdecode(path))

    def close(self) -> None:
        self._inner.close()


def shows_progress(verbosity: int) -> bool:
    """A progress line only for a person at a terminal: never with -q, never in a pipe or the
    operator's exec (no TTY), never on a terminal that cannot move the cursor."""
    return verbosity >= 0 and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def progress(label: str, verbosity: int = 0) -> Progress:
    """What the engine reports to: a progress line on a terminal, file names at -v."""
    console = _console()
    shown: Progress = NoProgress()
    if console is not None and shows_progress(verbosity):
        shown = _Shown(label, console)
    return _Listed(label, shown) if verbosity > 0 else shown


def print_json(value: Any) -> None:
    """A command's --json product on stdout: dataclasses as objects, one document."""
    import dataclasses
    import json

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {k: plain(x) for k, x in dataclasses.asdict(v).items()}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    json.dump(plain(value), sys.stdout, indent=2)
    sys.stdout.write("\n")


def print_table(rows: Sequence[tuple[str, ...]], right: tuple[int, ...] = ()) -> None:
    """Columns padded to their widest cell; ``right`` lists the right-aligned columns."""
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
