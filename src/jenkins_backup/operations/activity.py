"""What backup commands leave for the daemon: pid files while they run, and a status file.

In operator mode every backup is a separate `jenkins-backup backup N` process exec'd in the
sidecar, so the daemon learns about them through a small runtime directory in the same
container: ``running/<pid>.json`` exists while a backup runs (the daemon keeps the container
alive for it on SIGTERM), and ``status.json`` counts outcomes (the failure metrics).

Nothing here may fail a backup: a runtime directory that cannot be written costs the metrics
and the shutdown wait, never the backup itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace

from jenkins_backup.processes import pid_alive

log = logging.getLogger(__name__)
_RUNNING = "running"
_STATUS = "status.json"
_LOCK = "status.lock"


@dataclass(frozen=True)
class Status:
    """Outcomes of the backups run in this container (wall-clock times, seconds)."""

    successes: int = 0
    failures: int = 0
    last_success_time: float = 0.0
    last_success_started: float = 0.0
    last_failure_time: float = 0.0
    last_failure_number: int = 0


@dataclass(frozen=True)
class Running:
    pid: int
    number: int
    started: float


@contextlib.contextmanager
def tracking(runtime_dir: str, number: int) -> Iterator[None]:
    """Announce a backup for its duration, then record how it ended."""
    started = time.time()
    pid_file = os.path.join(runtime_dir, _RUNNING, f"{os.getpid()}.json")
    _quietly(_write_atomic, pid_file, {"pid": os.getpid(), "number": number, "started": started})
    try:
        yield
    except BaseException:
        record(runtime_dir, number, started, ok=False)
        raise
    else:
        record(runtime_dir, number, started, ok=True)
    finally:
        _quietly(_unlink, pid_file)


def running(runtime_dir: str) -> list[Running]:
    """Backups in flight in this container; pid files of dead processes are removed."""
    folder = os.path.join(runtime_dir, _RUNNING)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    out: list[Running] = []
    for name in names:
        path = os.path.join(folder, name)
        stem, _, ext = name.partition(".")
        if ext != "json" or not stem.isdigit():
            continue
        pid = int(stem)
        if not pid_alive(pid):
            _quietly(_unlink, path)
            continue
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            out.append(Running(pid, int(doc["number"]), float(doc["started"])))
        except (OSError, ValueError, KeyError, TypeError):
            out.append(Running(pid, 0, 0.0))  # being written or damaged: still a live backup
    return out


def read_status(runtime_dir: str) -> Status:
    try:
        with open(os.path.join(runtime_dir, _STATUS), encoding="utf-8") as f:
            doc = json.load(f)
        return Status(**{k: doc[k] for k in Status.__dataclass_fields__ if k in doc})
    except (OSError, ValueError, TypeError):
        return Status()


def record(runtime_dir: str, number: int, started: float, *, ok: bool) -> None:
    """Count one backup's outcome (number 0: it failed before it had a number)."""
    _quietly(_update_status, runtime_dir, number, started, ok)


def _update_status(runtime_dir: str, number: int, started: float, ok: bool) -> None:
    os.makedirs(runtime_dir, exist_ok=True)
    with open(os.path.join(runtime_dir, _LOCK), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent backups must not lose each other's counts
        old = read_status(runtime_dir)
        now = time.time()
        if ok:
            new = replace(
                old,
                successes=old.successes + 1,
                last_success_time=now,
                last_success_started=started,
            )
        else:
            new = replace(
                old, failures=old.failures + 1, last_failure_time=now, last_failure_number=number
            )
        _write_atomic(os.path.join(runtime_dir, _STATUS), asdict(new))


def _write_atomic(path: str, doc: dict[str, object]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _quietly(fn: Callable[..., None], *args: object) -> None:
    try:
        fn(*args)
    except OSError as exc:
        log.warning("cannot update the runtime directory: %s", exc)
