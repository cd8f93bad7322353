"""What backup, restore and verify commands leave for the daemon: pid files and a status file.

In operator mode every backup is a separate `jenkins-backup backup N` process exec'd in the
sidecar, so the daemon learns about them through a small runtime directory of the repository
(settings.default_runtime_dir: inside a local repository, per repository in TMPDIR for object
storage): ``running/<pid>.json`` exists while a backup runs (the daemon keeps the container
alive for it on SIGTERM), and ``status.json`` counts outcomes by operation and result, with
duration histograms and the warnings of each operation's last run (the metrics).

Nothing here may fail a command: a runtime directory that cannot be written costs the metrics
and the shutdown wait, never the backup itself. Files are group-writable (0664, directories
2775) like the repository's, so that an arbitrary UID of group 0 shares them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from jenkins_backup.errors import ShrinkRefused
from jenkins_backup.processes import pid_alive

log = logging.getLogger(__name__)
_RUNNING = "running"
_STATUS = "status.json"
_LOCK = "status.lock"
_FILE_MODE = 0o664
_HOST = socket.gethostname()  # a pod's name: pid files name the pod their pid belongs to
_DIR_MODE = 0o2775
OPERATIONS = ("backup", "restore", "verify")
# Upper bounds (seconds) of the duration histograms' buckets: seconds for a small home up to
# hours for a first backup of a large one.
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
SUCCESS = "success"
FAILURE = "failure"


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts of durations at or below each of DURATION_BUCKETS, sum and count."""

    buckets: tuple[int, ...] = (0,) * len(DURATION_BUCKETS)
    total: float = 0.0
    count: int = 0

    def add(self, seconds: float) -> Histogram:
        buckets = tuple(
            c + (seconds <= b) for c, b in zip(self.buckets, DURATION_BUCKETS, strict=True)
        )
        return Histogram(buckets, self.total + seconds, self.count + 1)

    def minus(self, other: Histogram) -> Histogram:
        return Histogram(
            tuple(a - b for a, b in zip(self.buckets, other.buckets, strict=True)),
            self.total - other.total,
            self.count - other.count,
        )


@dataclass(frozen=True)
class Outcome:
    """How an operation's last run ended (wall-clock seconds)."""

    result: str
    time: float
    number: int
    warnings: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Status:
    """Outcomes of the runs recorded in one runtime directory."""

    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # op -> result -> n
    durations: Mapping[str, Histogram] = field(default_factory=dict)
    last: Mapping[str, Outcome] = field(default_factory=dict)
    last_success_started: float = 0.0  # of a backup: the daemon's shutdown wait
    last_failure_time: float = 0.0  # of a backup
    last_failure_number: int = 0

    def count(self, operation: str, result: str) -> int:
        return self.counts.get(operation, {}).get(result, 0)

    def since(self, baseline: Status) -> Status:
        """Counts and histograms of the runs after ``baseline``; last outcomes as they are."""
        counts = {
            op: {r: n - baseline.count(op, r) for r, n in results.items()}
            for op, results in self.counts.items()
        }
        durations = {
            op: h.minus(baseline.durations.get(op, Histogram())) for op, h in self.durations.items()
        }
        return replace(self, counts=counts, durations=durations)


def add_run(old: Status, operation: str, outcome: Outcome, started: float) -> Status:
    """The status with one more run counted (pure: the file and memory records share it)."""
    counts = {op: dict(results) for op, results in old.counts.items()}
    results = counts.setdefault(operation, {})
    results[outcome.result] = results.get(outcome.result, 0) + 1
    durations = dict(old.durations)
    durations[operation] = durations.get(operation, Histogram()).add(
        max(0.0, outcome.time - started)
    )
    new = replace(old, counts=counts, durations=durations, last={**old.last, operation: outcome})
    if operation == "backup" and outcome.result == SUCCESS:
        new = replace(new, last_success_started=started)
    elif operation == "backup":
        new = replace(new, last_failure_time=outcome.time, last_failure_number=outcome.number)
    return new


def encode_status(status: Status) -> dict[str, Any]:
    return {
        "version": 2,
        "counts": status.counts,
        "durations": {
            op: {"buckets": list(h.buckets), "sum": h.total, "count": h.count}
            for op, h in status.durations.items()
        },
        "last": {
            op: {"result": o.result, "time": o.time, "number": o.number, "warnings": o.warnings}
            for op, o in status.last.items()
        },
        "last_success_started": status.last_success_started,
        "last_failure_time": status.last_failure_time,
        "last_failure_number": status.last_failure_number,
    }


def decode_status(doc: Any) -> Status:
    """The status a file holds; anything unreadable or of another version counts as none."""
    if not isinstance(doc, dict) or doc.get("version") != 2:
        return Status()
    try:
        durations = {}
        for op, h in doc["durations"].items():
            buckets = tuple(int(c) for c in h["buckets"])
            if len(buckets) == len(DURATION_BUCKETS):  # bucket bounds changed: start again
                durations[str(op)] = Histogram(buckets, float(h["sum"]), int(h["count"]))
        return Status(
            counts={
                str(op): {str(r): int(n) for r, n in results.items()}
                for op, results in doc["counts"].items()
            },
            durations=durations,
            last={
                str(op): Outcome(
                    str(o["result"]),
                    float(o["time"]),
                    int(o["number"]),
                    {str(k): int(v) for k, v in o["warnings"].items()},
                )
                for op, o in doc["last"].items()
            },
            last_success_started=float(doc["last_success_started"]),
            last_failure_time=float(doc["last_failure_time"]),
            last_failure_number=int(doc["last_failure_number"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return Status()


@dataclass(frozen=True)
class Running:
    pid: int
    number: int
    started: float


@dataclass
class Run:
    """What a command tells about its run while it is tracked: its result and warnings."""

    number: int = 0
    result: str = SUCCESS
    warnings: dict[str, int] = field(default_factory=dict)


class MemoryStatus:
    """The daemon's own runs when there is no runtime directory to record them in."""

    def __init__(self) -> None:
        self.status = Status()

    def record(self, operation: str, outcome: Outcome, started: float) -> None:
        self.status = add_run(self.status, operation, outcome, started)


@contextlib.contextmanager
def tracking(
    runtime_dir: str | None,
    operation: str,
    number: int = 0,
    *,
    announce: bool = False,
    memory: MemoryStatus | None = None,
) -> Iterator[Run]:
    """Record how one run ends (a failure unless it returns; ``Run.result`` may say more).

    ``announce``: leave a pid file for the duration (backups: the daemon waits for them on
    SIGTERM). The runtime directory itself is created, but not its parent (a restore of a
    repository that does not exist yet must write nothing); a backup creates its repository.
    """
    started = time.time()
    run = Run(number)
    pid_file = None
    if announce and runtime_dir is not None:
        pid_file = os.path.join(runtime_dir, _RUNNING, f"{os.getpid()}.json")
        doc = {"pid": os.getpid(), "number": number, "started": started, "host": _HOST}
        _quietly(partial(_write_atomic, runtime_dir, pid_file, doc, parents=True))
    try:
        yield run
    except BaseException as exc:
        if run.result == SUCCESS:
            run.result = result_of(exc)
        _end(runtime_dir, operation, run, started, memory)
        raise
    else:
        _end(runtime_dir, operation, run, started, memory)
    finally:
        if pid_file is not None:
            _quietly(partial(_unlink, pid_file))


def _end(
    runtime_dir: str | None,
    operation: str,
    run: Run,
    started: float,
    memory: MemoryStatus | None,
) -> None:
    outcome = Outcome(run.result, time.time(), run.number, dict(run.warnings))
    record(runtime_dir, operation, outcome, started, memory=memory)


def running(runtime_dir: str | None) -> list[Running]:
    """Backups in flight in this container; pid files of dead processes are removed."""
    if runtime_dir is None:
        return []
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
            _quietly(partial(_unlink, path))
            continue
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            if doc.get("host", _HOST) != _HOST:  # another pod's (a repository volume outlives
                _quietly(partial(_unlink, path))  # pods): its pid means nothing here
                continue
            out.append(Running(pid, int(doc["number"]), float(doc["started"])))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            out.append(Running(pid, 0, 0.0))  # being written or damaged: still a live backup
    return out


def read_status(runtime_dir: str | None) -> Status:
    if runtime_dir is None:
        return Status()
    try:
        with open(os.path.join(runtime_dir, _STATUS), encoding="utf-8") as f:
            return decode_status(json.load(f))
    except (OSError, ValueError):
        return Status()


def record(
    runtime_dir: str | None,
    operation: str,
    outcome: Outcome,
    started: float,
    *,
    memory: MemoryStatus | None = None,
) -> None:
    """Count one run's outcome (a backup's number 0: it failed before it had a number)."""
    if memory is not None:
        memory.record(operation, outcome, started)
    # No parent: a repository that does not exist (yet); there is nothing to tell about it.
    if runtime_dir is not None and os.path.isdir(os.path.dirname(runtime_dir)):
        _quietly(partial(_update_status, runtime_dir, operation, outcome, started))


def _update_status(runtime_dir: str, operation: str, outcome: Outcome, started: float) -> None:
    _make_dir(runtime_dir)
    lock_path = os.path.join(runtime_dir, _LOCK)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, _FILE_MODE)
    with open(fd, "r+b") as lock:
        _group_writable(lock_path, _FILE_MODE)
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent commands must not lose each other's counts
        new = add_run(read_status(runtime_dir), operation, outcome, started)
        _write_atomic(runtime_dir, os.path.join(runtime_dir, _STATUS), encode_status(new))


def _make_dir(path: str, *, parents: bool = False) -> None:
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parents and not os.path.isdir(parent):
        _make_dir(parent, parents=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path)
        _group_writable(path, _DIR_MODE)


def _group_writable(path: str, mode: int) -> None:
    with contextlib.suppress(OSError):  # not ours (another UID created it): leave it
        if os.stat(path).st_uid == os.getuid():
            os.chmod(path, mode)


def _write_atomic(
    runtime_dir: str, path: str, doc: Mapping[str, Any], *, parents: bool = False
) -> None:
    _make_dir(runtime_dir, parents=parents)
    _make_dir(os.path.dirname(path))
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
    with open(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), _FILE_MODE)
        json.dump(doc, f)
    os.replace(tmp, path)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _quietly(fn: Callable[[], None]) -> None:
    try:
        fn()
    except OSError as exc:
        log.warning("cannot update the runtime directory: %s", exc)


# Where each warning the metrics show is found in an operation's result (or its stats), by the
# names the results use; a result without the field reports none.
WARNING_FIELDS: Mapping[str, tuple[str, ...]] = {
    "unreadable_files": ("unreadable_files", "unreadable"),
    "damaged_backups_skipped": ("damaged_skipped", "skipped_damaged", "skipped"),
    "damaged_backups_found": ("damaged",),
}


def warnings_from(result: object) -> dict[str, int]:
    """The warnings a result reports: counts, or the length of listed items."""
    found: dict[str, int] = {}
    holders = [result, getattr(result, "stats", None), getattr(result, "snapshot", None)]
    holders.append(getattr(holders[-1], "stats", None))
    for kind, names in WARNING_FIELDS.items():
        for holder in holders:
            value = next((getattr(holder, n) for n in names if hasattr(holder, n)), None)
            if isinstance(value, bool) or value is None:
                continue
            count = getattr(value, "count", None)  # a record that counts its items
            if isinstance(count, int) and not isinstance(value, (list, tuple)):
                found[kind] = count
            elif isinstance(value, int):
                found[kind] = value
            elif isinstance(value, (list, tuple, set, frozenset, dict)):
                found[kind] = len(value)
            else:
                continue
            break
    return found


def result_of(exc: BaseException) -> str:
    """A failed run's result label: "refused" when the shrink guard stopped a backup."""
    return "refused" if isinstance(exc, ShrinkRefused) else FAILURE
