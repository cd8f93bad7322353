"""Progress on a terminal: the real console script with stderr on a pseudo-terminal.

What a person sees is checked by replaying the bytes as a terminal would (carriage return,
erase to the end of the line, newline): a total and a percentage were shown, every line left on
the screen is a log line of its own (the progress line never glued to one), and the cursor ends
on a clean line. -q shows no progress line, and without a terminal there is none.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from helpers import a_job, run_cli
from jenkins_backup.cli.progress_line import status_line

COLUMNS = 120
DEADLINE = 240.0  # seconds for one command, start-up included, on a loaded machine
_ERASE = "\x1b[K"


def on_terminal(env: dict[str, str], *args: str) -> tuple[int, str]:
    """(exit code, what was written to the terminal) of ``jenkins-backup ARGS``, its stderr on
    a pseudo-terminal COLUMNS wide (stdout and stdin are not terminals, as with ``> file``)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, COLUMNS, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jenkins_backup", *args],
        env={**env, "TERM": "xterm"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + DEADLINE
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=max(deadline - time.monotonic(), 1.0))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


def screen(raw: str) -> tuple[list[str], str]:
    """The lines a terminal shows after ``raw``, and the line the cursor is on at the end."""
    lines: list[str] = []
    line: list[str] = []
    col = 0
    i = 0
    while i < len(raw):
        if raw.startswith(_ERASE, i):
            del line[col:]
            i += len(_ERASE)
            continue
        c = raw[i]
        assert c != "\x1b", (
            f"an escape sequence a plain terminal would not know: {raw[i : i + 8]!r}"
        )
        if c == "\r":
            col = 0
        elif c == "\n":
            lines.append("".join(line))
            line, col = [], 0
        else:
            if col < len(line):
                line[col] = c
            else:
                line.append(c)
            col += 1
        i += 1
    return lines, "".join(line)


def frames(raw: str) -> list[str]:
    """Every state the progress line was drawn in."""
    return [f.split("\r")[0] for f in raw.split("\r" + _ERASE)[1:] if f.startswith("[")]


def test_restore_shows_total_and_percentage_and_ends_clean(
    env: dict[str, str], tmp_path: Path
) -> None:
    run_cli("backup", "1", env=env, check=True)
    target = {**env, "JENKINS_HOME": str(tmp_path / "restored")}
    code, raw = on_terminal(target, "restore", "1")
    assert code == 0, raw
    drawn = frames(raw)
    assert drawn, raw
    files = int(re.search(r"restoring backup 1 \((\d+) files", raw).group(1))  # type: ignore[union-attr]
    assert any(f"/{files:,} files" in f and re.search(r"\d+%", f) for f in drawn), drawn
    assert all(len(f) < COLUMNS for f in drawn)
    lines, last = screen(raw)
    assert last == "", f"the progress line is left on the screen: {last!r}"
    assert lines and all(line.startswith("jenkins-backup: ") for line in lines), lines
    assert any(line.startswith("jenkins-backup: restored backup 1: ") for line in lines)


def test_backup_estimates_from_its_parent_and_logs_above_the_line(
    env: dict[str, str], home: Path
) -> None:
    run_cli("backup", "1", env=env, check=True)
    (a_job(home) / "config.xml").write_text("<project>changed</project>")
    code, raw = on_terminal(env, "backup", "2", "-v")
    assert code == 0, raw
    drawn = frames(raw)
    assert any(re.search(r"\d+% [\d,]+/~[\d,]+ files", f) for f in drawn), drawn
    lines, last = screen(raw)
    assert last == ""
    assert all(line.startswith("jenkins-backup: ") for line in lines), lines
    listed = a_job(home).relative_to(home).as_posix() + "/config.xml"
    assert f"jenkins-backup: backup: {listed}" in lines, "-v names each file read"
    assert any(line.startswith("jenkins-backup: backup 2 committed: ") for line in lines)


def test_quiet_and_non_terminal_runs_draw_no_progress(env: dict[str, str], tmp_path: Path) -> None:
    run_cli("backup", "1", env=env, check=True)
    target = {**env, "JENKINS_HOME": str(tmp_path / "restored")}
    code, raw = on_terminal(target, "restore", "1", "-q")
    assert (code, raw) == (0, ""), "-q: no progress line, no info lines"
    piped = run_cli("restore", "1", env={**env, "JENKINS_HOME": str(tmp_path / "r2")}, check=True)
    assert "\r" not in piped.stderr and "\x1b" not in piped.stderr
    assert piped.stderr.splitlines()[-1].startswith("jenkins-backup: restored backup 1: ")


def test_the_line_fits_the_width_and_shows_no_control_characters() -> None:
    done, total = (1234, 300 << 20), (3000, 700 << 20)
    line = status_line("restore", 5.0, done, total, path=b"jobs/a/" + b"x" * 200, width=120)
    assert line.startswith("[0:05] restore 43% 1,234/3,000 files 300.0 MiB/700.0 MiB 60.0 MiB/s")
    assert "ETA 0:06  ...xxx" in line and len(line) == 119, "fits, the path's tail shown"
    narrow = status_line("restore", 5.0, done, total, path=b"jobs/a", width=72)
    assert narrow.endswith("ETA 0:06") and len(narrow) < 72, "rate and path make room"
    odd = status_line("restore", 1.0, (1, 1), None, path=b"a\x1b[2J\nb", width=200)
    assert odd.endswith("  a?[2J?b"), "a name cannot move the cursor"
    guess = status_line("backup", 1.0, (10, 100), (5, 50), estimate=True, width=200)
    assert "99% 10/~5 files" in guess and "ETA" not in guess, "a guess never says 100%"
    finished = status_line("restore", 1.0, (5, 50), (5, 50), width=200)
    assert "100%" in finished and "ETA" not in finished
