"""Human output: logging to stderr, progress bars only on a terminal."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from jenkins_backup.engine.progress import NoProgress, Progress


def setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
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


class _BarProgress:
    """A tqdm bar counting files, with bytes and rate in the postfix."""

    def __init__(self, label: str) -> None:
        from tqdm import tqdm  # imported only on a terminal: start-up time matters

        self._bar: Any = tqdm(desc=label, unit=" files", file=sys.stderr, dynamic_ncols=True)
        self._bytes = 0
        self._start = time.monotonic()
        self._last = 0.0

    def advance(self, files: int, nbytes: int) -> None:
        self._bytes += nbytes
        self._bar.update(files)
        now = time.monotonic()
        if now - self._last > 0.5:
            self._last = now
            rate = self._bytes / max(now - self._start, 1e-6) / 2**20
            self._bar.set_postfix_str(f"{self._bytes / 2**20:.0f} MiB, {rate:.0f} MiB/s")

    def close(self) -> None:
        self._bar.close()


def progress(label: str) -> Progress:
    if sys.stderr.isatty():
        return _BarProgress(label)
    return NoProgress()


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
