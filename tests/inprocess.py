"""The console script's ``main`` run in this process, with a given environment.

A start-up of the interpreter costs more than most commands a test runs, so behaviour tests call
``main`` here (``run_main``, or ``run_cli``: the same result as ``helpers.run_cli``, so a test
changes its import and nothing else). Only the CLI-contract file, the kill tests and tests of a
process property (time bound, signals, file descriptors) start the real console script.

What a child process would start afresh is set up and put back around each call: the
environment (exactly the one given, as a child's would be), stdin (empty), stdout and stderr
(captured as bytes and decoded as ``subprocess.run(text=True)`` does), the logging ``main``
configures, and the garbage collector's thresholds. An exception ``main`` lets through is
printed as the interpreter would and gives exit status 1.
"""

from __future__ import annotations

import gc
import io
import locale
import logging
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from helpers import clean_env
from jenkins_backup.cli.main import main

# Loggers whose level main() sets (cli/output.py) besides the root logger.
_CONFIGURED_LOGGERS = ("", "botocore", "urllib3", "google", "azure")


@contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """os.environ is exactly ``env`` inside, as a child started with ``env=`` sees it."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _logging_restored() -> Iterator[None]:
    """main() replaces the root logger's handlers (pytest's among them) and sets levels."""
    loggers = [logging.getLogger(name) for name in _CONFIGURED_LOGGERS]
    saved = [(lg, lg.level, list(lg.handlers)) for lg in loggers]
    try:
        yield
    finally:
        for lg, level, handlers in saved:
            for h in lg.handlers:
                if h not in handlers:
                    h.close()
            lg.handlers[:] = handlers
            lg.setLevel(level)


class _Stream(io.TextIOWrapper):
    """A text stream over bytes, as a child's stdout or stderr into a pipe (``.buffer`` too)."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", errors="surrogateescape", newline=None)

    def captured(self) -> bytes:
        self.flush()
        raw = self.buffer
        assert isinstance(raw, io.BytesIO)
        return raw.getvalue()


def run_main_bytes(
    env: Mapping[str, str], *args: str, stdin: bytes = b""
) -> tuple[int, bytes, bytes]:
    """(exit status, stdout, stderr) of ``jenkins-backup ARGS`` run in this process, with
    exactly ``env`` as the environment."""
    out, err = _Stream(), _Stream()
    stdin_stream = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors="surrogateescape")
    threads = set(threading.enumerate())
    thresholds = gc.get_threshold()
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    code: int
    with _environment(env), _logging_restored():
        sys.stdin, sys.stdout, sys.stderr = stdin_stream, out, err
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's --help and --version
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        except Exception:
            traceback.print_exc()
            code = 1
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved_streams
            gc.set_threshold(*thresholds)
    left = [t for t in threading.enumerate() if t not in threads and not t.daemon]
    assert not left, f"jenkins-backup {' '.join(args)} left threads running: {left}"
    return code, out.captured(), err.captured()


def run_main(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``jenkins-backup ARGS`` with ``env`` added to os.environ
    (less the tool's own variables, as ``helpers.clean_env`` leaves it)."""
    code, out, err = run_main_bytes(clean_env(**env), *args)
    return code, _decode(out), _decode(err)


def run_cli(
    *args: str, env: Mapping[str, str], timeout: float = 300, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """``helpers.run_cli`` in this process: the same result for the same command.

    ``timeout`` is accepted for the same signature; pytest-timeout bounds a hang in process.
    """
    del timeout
    code, out, err = run_main_bytes(env, *args)
    proc = subprocess.CompletedProcess(["jenkins-backup", *args], code, _decode(out), _decode(err))
    if check and code != 0:
        raise AssertionError(f"jenkins-backup {' '.join(args)} exited {code}:\n{proc.stderr}")
    return proc


def _decode(data: bytes) -> str:
    """As ``subprocess.run(text=True)`` reads a child's output: locale encoding, newlines
    translated."""
    text = data.decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")
