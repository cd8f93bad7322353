"""The sidecar's main process (`jenkins-backup daemon`): maintenance, metrics, and shutdown.

Two modes, one repository format:

- Operator mode (no interval): the operator execs `backup N` in this container; the daemon
  keeps the container alive, sweeps leftovers of killed runs, applies retention, and serves
  metrics. On SIGTERM it stays up while backup commands run and for a settle window: the
  operator's backup before pod deletion is exec'd only after the pod started terminating, and
  would fail if this process (PID 1's child) had already exited and stopped the container.
- Standalone mode (interval): the daemon is its own operator, with the same state machine
  as the operator's: the next number is the last successful one + 1, starting from the
  latest intact backup; a failure is retried with the same number at the next tick; on SIGTERM
  it finishes the backup in flight, backs up once more, and exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from jenkins_backup.errors import BackupError
from jenkins_backup.operations import activity
from jenkins_backup.operations.backup import STALE_TMP_AGE, backup
from jenkins_backup.operations.common import storage_for
from jenkins_backup.operations.latest import latest
from jenkins_backup.operations.metrics import BackupMetrics, Health, serve
from jenkins_backup.operations.prune import prune
from jenkins_backup.settings import Settings

log = logging.getLogger(__name__)
METRICS_REFRESH = 15.0
SWEEP_EVERY = 3600.0
RETENTION_FIRST_AFTER = 60.0  # let a restore at start-up settle before deleting anything
_POLL = 0.2


@dataclass(frozen=True)
class Periodic:
    """A maintenance task run on its own thread: a slow prune never delays metrics."""

    name: str
    every: float
    run: Callable[[], object]
    first_after: float = 0.0


@dataclass(frozen=True)
class DaemonResult:
    backups: int  # standalone backups committed (0 in operator mode)
    failures: int


def run(settings: Settings, stop: threading.Event) -> DaemonResult:
    """Run until ``stop`` is set (the CLI sets it on SIGTERM), then shut down gracefully."""
    settings.require_repository()
    if settings.interval is not None:
        settings.require_home()
    metrics = BackupMetrics(settings)
    # A refresh is bounded like a command (the same store calls); a few of its periods on top.
    health = Health(metrics, settings.timeout + 4 * METRICS_REFRESH)
    server, port = serve(metrics, health, settings.metrics_address, settings.metrics_port)
    log.info("metrics on http://%s:%d/metrics", settings.metrics_address, port)
    if settings.runtime_dir is None:
        log.warning(
            "no runtime directory (object storage and no writable TMPDIR): the metrics count "
            "only the daemon's own backups, and SIGTERM waits only the settle window"
        )
    for task in maintenance_tasks(settings, metrics):
        threading.Thread(
            target=_repeat, args=(task, stop, metrics), name=task.name, daemon=True
        ).start()
    try:
        if settings.interval is None:
            log.info("operator mode: waiting for the operator's backup commands")
            _wait(stop, health)
            stopped_at = time.time()
            log.info("stopping: waiting up to %gs for a last backup", settings.shutdown_grace)
            health.expect(settings.shutdown_grace + settings.timeout)
            _linger(settings, stopped_at, settings.shutdown_grace)
            result = DaemonResult(0, 0)
        else:
            log.info("standalone mode: a backup every %gs", settings.interval)
            result = Standalone(settings, metrics, health).run(stop)
            health.expect(settings.timeout)
            _linger(settings, time.time(), 0.0)
    finally:
        server.shutdown()
        server.server_close()
    log.info("stopped")
    return result


def maintenance_tasks(settings: Settings, metrics: BackupMetrics) -> list[Periodic]:
    tasks = [
        Periodic("metrics", METRICS_REFRESH, metrics.refresh),
        Periodic("sweep", SWEEP_EVERY, partial(sweep, settings)),
    ]
    if settings.retention.active:
        first = min(RETENTION_FIRST_AFTER, settings.prune_interval)
        tasks.append(
            Periodic("retention", settings.prune_interval, partial(_retention, settings), first)
        )
    return tasks


def _retention(settings: Settings) -> None:
    result = prune(settings)
    if result.forgotten:
        log.info("retention forgot backup(s) %s", ", ".join(map(str, result.forgotten)))


def sweep(settings: Settings) -> int:
    """Remove temporary objects of killed runs, then stale pid files of killed commands."""
    storage = storage_for(settings)
    try:
        removed = storage.sweep(STALE_TMP_AGE)
    finally:
        storage.close()
    if removed:
        log.info("removed %d leftover temporary file(s) of interrupted runs", removed)
    activity.running(settings.runtime_dir)
    return removed


class Standalone:
    """The operator's numbering, run by the daemon itself."""

    def __init__(self, settings: Settings, metrics: BackupMetrics, health: Health) -> None:
        assert settings.interval is not None
        self.settings = settings
        self.interval = settings.interval
        self.metrics = metrics
        self.health = health
        self.last: int | None = None  # the CR's status.lastBackup; None until read
        self.backups = 0
        self.failures = 0

    def run(self, stop: threading.Event) -> DaemonResult:
        due = time.monotonic() + self.interval
        while not _wait_until(stop, due, self.health):
            self.tick()
            due += self.interval
            if due <= time.monotonic():  # a backup longer than the interval: skip, don't pile up
                due = time.monotonic() + self.interval
        log.info("stopping: one last backup")
        self.health.expect(self.settings.timeout)
        self.tick()
        return DaemonResult(self.backups, self.failures)

    def tick(self) -> bool:
        """One backup with the pending number; False (logged, nothing changed) on failure."""
        number = None
        runtime_dir, memory = self.settings.runtime_dir, self.metrics.memory
        self.health.expect(self.settings.timeout)  # the deadline below bounds the backup
        try:
            with (
                _deadline(self.settings.timeout),
                activity.tracking(runtime_dir, "backup", announce=True, memory=memory) as run,
            ):
                number = run.number = self._pending()
                run.warnings = activity.warnings_from(backup(self.settings, number))
        except (BackupError, OSError) as exc:
            self._failed(number, str(exc))
            return False
        except Exception as exc:  # a bug must not end the schedule: log it whole, retry
            log.exception("backup %s failed unexpectedly", number)
            self._failed(number, repr(exc))
            return False
        finally:
            self.metrics.refresh()
        self.last = number
        self.backups += 1
        return True

    def _pending(self) -> int:
        """lastBackup + 1; lastBackup is read from the repository once (none counts as 0)."""
        if self.last is None:
            self.last = max(latest(self.settings), 0)
        return self.last + 1

    def _failed(self, number: int | None, why: str) -> None:
        self.failures += 1
        what = f"backup {number}" if number is not None else "finding the next backup number"
        log.error("%s failed: %s; retrying at the next tick", what, why)


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Bound an in-process backup as the CLI's watchdog bounds a command.

    A backup that hangs (a store that never answers) would stop the schedule for good; exiting
    lets the kubelet restart the container, and every write is create-only or atomic.
    """

    def give_up() -> None:
        log.critical("a backup timed out after %g seconds; exiting", seconds)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _repeat(task: Periodic, stop: threading.Event, metrics: BackupMetrics) -> None:
    if stop.wait(task.first_after):
        return
    while True:
        try:
            task.run()
        except Exception as exc:  # a maintenance task must never end the daemon
            metrics.task_failed(task.name)
            log.error("%s failed: %s", task.name, exc)
            log.debug("%s failed", task.name, exc_info=True)
        if stop.wait(task.every):
            return


def _wait(stop: threading.Event, health: Health) -> None:
    _wait_until(stop, float("inf"), health)


def _wait_until(stop: threading.Event, due: float, health: Health) -> bool:
    """Wait until ``due`` (monotonic) or the stop; True if stopped. Beats for the liveness."""
    while True:
        health.expect()
        left = due - time.monotonic()
        if left <= 0:
            return stop.is_set()
        if stop.wait(min(left, 1.0)):  # a bounded wait keeps signal handlers responsive
            return True


def _linger(settings: Settings, stopped_at: float, settle: float) -> None:
    """Stay up while backup commands run, and for ``settle`` seconds for one to start.

    The settle window ends early once a backup that started after the stop has succeeded: that
    is the operator's backup before pod deletion. Bounded by the settle window plus the
    commands' own time bound (a pid reused by another process cannot hold us forever).
    """
    start = time.monotonic()
    hard_stop = start + settle + settings.timeout
    waited_for: set[int] = set()
    while time.monotonic() < hard_stop:
        busy = [r for r in activity.running(settings.runtime_dir) if r.pid != os.getpid()]
        for r in busy:
            if r.pid not in waited_for:
                waited_for.add(r.pid)
                log.info("waiting for backup %d (pid %d) to finish", r.number, r.pid)
        if not busy:
            if time.monotonic() - start >= settle:
                return
            if activity.read_status(settings.runtime_dir).last_success_started >= stopped_at:
                log.info("the backup before shutdown is done")
                return
        time.sleep(_POLL)
    log.warning("stopping with backups still running after %gs", settle + settings.timeout)
