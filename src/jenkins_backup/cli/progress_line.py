"""The progress line on a terminal: totals, percentage, rate, ETA and the file just processed.

One line on stderr, rewritten in place a few times a second by a small thread. Log lines are
written above it: the line is erased, the log line written with its newline, the line drawn
again, so the two are never glued together. Closing it erases it, leaving the cursor at the
start of an empty line. Only ever used when stderr is a terminal (cli/output.py decides).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from typing import TextIO

from jenkins_backup.units import human_size

REFRESH = 0.2  # seconds between redraws
_ERASE = "\r\x1b[K"  # to the line's start, then clear to its end


def _clock(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


def _printable(path: bytes) -> str:
    """A file name as the terminal may show it: control characters would move the cursor."""
    text = os.fsdecode(path)
    return "".join(c if c.isprintable() else "?" for c in text)


def status_line(
    label: str,
    elapsed: float,
    done: tuple[int, int],
    total: tuple[int, int] | None,
    *,
    estimate: bool = False,
    path: bytes = b"",
    width: int = 80,
) -> str:
    """``[0:05] restore 45% 1,234/3,000 files 300.0 MiB/700.0 MiB 52.1 MiB/s ETA 0:06  path``, at
    most ``width - 1`` characters (a full line would wrap on some terminals): the path is cut
    from the left, then the rate left out."""
    files, nbytes = done
    parts = [f"[{_clock(elapsed)}]", label]
    about = "~" if estimate else ""
    if total is not None:
        tfiles, tbytes = total
        part, whole = (nbytes, tbytes) if tbytes > 0 else (files, tfiles)
        pct = min(100.0 * part / whole, 100.0) if whole > 0 else 100.0
        if estimate or part < whole:
            pct = min(pct, 99.0)  # never 100% before the end, nor on a guess
        parts.append(f"{pct:.0f}%")
        parts.append(f"{files:,}/{about}{tfiles:,} files")
        parts.append(f"{human_size(nbytes)}/{about}{human_size(tbytes)}")
    else:
        parts.append(f"{files:,} files")
        parts.append(human_size(nbytes))
    rate = nbytes / elapsed if elapsed > 0.5 else 0.0
    speed = f"{human_size(rate)}/s" if rate > 0 else ""
    if total is not None and rate > 0 and nbytes < total[1]:
        parts.append(f"ETA {_clock((total[1] - nbytes) / rate)}")
    line = " ".join(parts)
    if speed and len(line) + 1 + len(speed) < width:
        head, eta = (parts[:-1], parts[-1:]) if parts[-1].startswith("ETA") else (parts, [])
        line = " ".join([*head, speed, *eta])
    room = width - 1 - len(line) - 2
    if path and room >= 10:
        shown = _printable(path)
        if len(shown) > room:
            shown = "..." + shown[-(room - 3) :]
        line += "  " + shown
    return line[: width - 1]


class ProgressLine:
    """The Progress protocol (engine/progress.py) drawn on a terminal; thread-safe."""

    def __init__(
        self,
        label: str,
        stream: TextIO,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh: float = REFRESH,
    ) -> None:
        self._label = label
        self._stream = stream
        self._clock = clock
        self._start = clock()
        self._lock = threading.Lock()
        self._files = 0
        self._bytes = 0
        self._total: tuple[int, int] | None = None
        self._estimate = False
        self._path = b""
        self._closed = False
        self._stop = threading.Event()
        self._drawn = False  # nothing shown before the first tick or the totals
        self._thread = threading.Thread(
            target=self._tick, args=(refresh,), name="progress", daemon=True
        )
        self._thread.start()

    def total(self, files: int, nbytes: int, *, estimate: bool = False) -> None:
        with self._lock:
            self._total = (files, nbytes)
            self._estimate = estimate
            self._draw()

    def advance(self, files: int, nbytes: int, path: bytes = b"") -> None:
        with self._lock:
            self._files += files
            self._bytes += nbytes
            if path:
                self._path = path

    def print_above(self, text: str) -> None:
        """Write one log line above the progress line (the logging handler's way out)."""
        with self._lock:
            self._write((_ERASE if self._drawn else "") + text + "\n")
            if self._drawn and not self._closed:
                self._draw()

    def close(self) -> None:
        """Stop redrawing and erase the line: the operation's own summary (logged) stays last."""
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            if self._drawn and not self._closed:
                self._write(_ERASE)
            self._closed = True

    def abandon(self) -> None:
        """Erase the line for a last message written around it (the time bound's hard exit):
        waits for a drawing thread briefly, never forever."""
        if self._lock.acquire(timeout=1.0):
            try:
                if self._drawn and not self._closed:
                    self._write(_ERASE)
                self._closed = True
            finally:
                self._lock.release()

    def _tick(self, refresh: float) -> None:
        while not self._stop.wait(refresh):
            with self._lock:
                if not self._closed:
                    self._draw()

    def _draw(self) -> None:
        try:
            width = os.get_terminal_size(self._stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            width = 0
        if width <= 0:  # a terminal that does not say its size
            width = shutil.get_terminal_size().columns
        line = status_line(
            self._label,
            self._clock() - self._start,
            (self._files, self._bytes),
            self._total,
            estimate=self._estimate,
            path=self._path,
            width=max(width, 20),
        )
        self._write(_ERASE + line)
        self._drawn = True

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):  # the terminal went away: the work goes on without it
            self._closed = True
