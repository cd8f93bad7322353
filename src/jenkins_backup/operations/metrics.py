"""Prometheus metrics of the daemon, served on ``/metrics``, and its liveness on ``/healthz``.

Backups may run in other processes (the operator execs `backup N`), so nothing is counted in
memory: the facts about successful backups come from the repository itself (the newest
committed snapshot, read again by ``refresh`` on the daemon's schedule, never during a scrape,
so a slow store cannot time out a scrape), and outcomes of this container's backups, restores
and verifications and backups in flight come from the repository's runtime directory (cheap
local files, read at each scrape; counted from the daemon's start, so the counters are this
container's). Without a runtime directory the daemon counts its own runs in memory.

Names follow Prometheus' conventions (base units, ``_total`` counters); the process and Python
collectors add the standard ``process_*`` and ``python_*`` metrics.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    make_wsgi_app,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from jenkins_backup import __version__
from jenkins_backup.errors import BackupError
from jenkins_backup.operations import activity
from jenkins_backup.operations.common import open_repository
from jenkins_backup.repository import config as repo_config
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.snapshot import Snapshot, SnapshotRef
from jenkins_backup.settings import Settings

log = logging.getLogger(__name__)
# Listing every pack is the expensive part of a refresh: do it when the backups change, and
# otherwise this often (prune deletes unreferenced packs later than it deletes snapshots).
SIZE_REFRESH = 600.0
# Results each counter always shows (a series that exists at 0 makes rate() and alerts work).
RESULTS = {
    "backup": ("success", "failure", "refused"),
    "restore": ("success", "failure"),
    "verify": ("success", "damaged", "failure"),
}
# Warning kind -> the operation whose last run reports it.
WARNINGS = {
    "unreadable_files": "backup",
    "shrink_guard_refused": "backup",
    "damaged_backups_skipped": "restore",
    "damaged_backups_found": "verify",
}


@dataclass(frozen=True)
class RepositoryFacts:
    readable: bool = False
    backups: int = 0
    size_bytes: int = 0
    last: Snapshot | None = None


class BackupMetrics:
    """A prometheus_client collector over the repository and this container's runs."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.memory = activity.MemoryStatus()
        self._baseline = activity.read_status(settings.runtime_dir)
        self.refreshed = time.monotonic()  # when refresh last ended, well or not (liveness)
        self._lock = threading.Lock()
        self._facts = RepositoryFacts()
        self._repo: Repository | None = None
        self._refs: list[SnapshotRef] | None = None
        self._sized_at = 0.0
        self._task_failures: dict[str, int] = {}
        self._failing = False

    @property
    def facts(self) -> RepositoryFacts:
        with self._lock:
            return self._facts

    def task_failed(self, task: str) -> None:
        with self._lock:
            self._task_failures[task] = self._task_failures.get(task, 0) + 1

    def refresh(self) -> None:
        """Read the repository again; on failure keep the last facts, marked unreadable."""
        try:
            self._refresh()
        finally:
            self.refreshed = time.monotonic()

    def _refresh(self) -> None:
        try:
            facts = self._read()
        except Exception as exc:  # metrics must never take the daemon down
            if not self._failing:  # once per outage, not at every refresh
                log.warning("metrics: cannot read the repository: %s", exc)
            self._failing = True
            self._repo = None  # reopen next time: credentials or the store may have changed
            with self._lock:
                self._facts = RepositoryFacts(
                    False, self._facts.backups, self._facts.size_bytes, self._facts.last
                )
            return
        self._failing = False
        with self._lock:
            self._facts = facts

    def _read(self) -> RepositoryFacts:
        if self._repo is None:
            self._repo = open_repository(self._settings)
            if self._repo is None:  # nothing backed up yet
                return RepositoryFacts(readable=True)
            self._refs = None
        repo = self._repo
        refs = repo.snapshot_refs()
        old = self.facts
        changed = refs != self._refs
        last = old.last if not changed else _newest_loadable(repo, refs)
        size = old.size_bytes
        if changed or time.monotonic() - self._sized_at > SIZE_REFRESH:
            size = _repository_size(repo)
            self._sized_at = time.monotonic()
        self._refs = refs
        return RepositoryFacts(True, len(refs), size, last)

    def runs(self) -> activity.Status:
        """This container's runs: those recorded since the daemon started."""
        if self._settings.runtime_dir is None:
            return self.memory.status
        return activity.read_status(self._settings.runtime_dir).since(self._baseline)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            facts = self._facts
            task_failures = dict(self._task_failures)
        runs = self.runs()
        in_flight = activity.running(self._settings.runtime_dir)
        last = facts.last

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"jenkins_backup_{name}", doc, value=value)

        info = GaugeMetricFamily(
            "jenkins_backup_build_info",
            "Version of jenkins-backup and of Python this daemon runs (always 1).",
            labels=["version", "python"],
        )
        info.add_metric([__version__, platform.python_version()], 1)
        yield info
        yield gauge(
            "latest_backup_timestamp_seconds",
            "Commit time of the newest intact backup (Unix time; 0 when there is none).",
            last.time_ns / 1e9 if last else 0,
        )
        yield gauge(
            "latest_backup_number",
            "Number of the newest intact backup (0 when none).",
            last.number if last else 0,
        )
        yield gauge(
            "latest_backup_duration_seconds",
            "How long the newest backup took.",
            last.stats.seconds if last else 0,
        )
        yield gauge(
            "latest_backup_added_bytes",
            "Stored bytes the newest backup added to the repository.",
            last.stats.bytes_added if last else 0,
        )
        yield gauge(
            "latest_backup_files", "Files in the newest backup.", last.stats.files if last else 0
        )
        yield gauge(
            "latest_backup_content_bytes",
            "Bytes of file content in the newest backup.",
            last.stats.bytes if last else 0,
        )
        yield gauge(
            "max_backup_age_seconds",
            "Age of the newest backup above which the shipped alert fires (BACKUP_MAX_AGE).",
            self._settings.max_backup_age,
        )
        yield gauge("repository_backups", "Backups in the repository.", facts.backups)
        yield gauge("repository_size_bytes", "Stored size of the repository.", facts.size_bytes)
        yield gauge(
            "repository_up",
            "1 when the last read of the repository worked.",
            1 if facts.readable else 0,
        )
        yield gauge("backups_running", "Backups in flight in this container.", len(in_flight))
        for operation, plural in (
            ("backup", "backups"),
            ("restore", "restores"),
            ("verify", "verifications"),
        ):
            counter = CounterMetricFamily(
                f"jenkins_backup_{plural}",
                f"Finished {plural} in this container since the daemon started, by result.",
                labels=["result"],
            )
            for result in sorted(set(RESULTS[operation]) | set(runs.counts.get(operation, {}))):
                counter.add_metric([result], runs.count(operation, result))
            yield counter
            h = runs.durations.get(operation, activity.Histogram())
            buckets = [
                (_bound(b), float(c))
                for b, c in zip(activity.DURATION_BUCKETS, h.buckets, strict=True)
            ]
            yield HistogramMetricFamily(
                f"jenkins_backup_{operation}_duration_seconds",
                f"How long each {operation} in this container took, successful or not.",
                buckets=[*buckets, ("+Inf", float(h.count))],
                sum_value=h.total,
            )
        yield gauge(
            "last_backup_failure_timestamp_seconds",
            "When a backup last failed in this container (Unix time; 0 when never).",
            runs.last_failure_time,
        )
        warnings = GaugeMetricFamily(
            "jenkins_backup_warnings",
            "Warnings of the last run of each operation: unreadable files and shrink guard "
            "refusal (backup), damaged backups skipped (restore), damaged backups found "
            "(verify).",
            labels=["kind"],
        )
        for kind, operation in WARNINGS.items():
            outcome = runs.last.get(operation)
            if kind == "shrink_guard_refused":
                value = 1 if outcome is not None and outcome.result == "refused" else 0
            else:
                value = outcome.warnings.get(kind, 0) if outcome is not None else 0
            warnings.add_metric([kind], value)
        yield warnings
        tasks = CounterMetricFamily(
            "jenkins_backup_task_failures",
            "Failed runs of the daemon's own tasks (retention, sweep, metrics refresh).",
            labels=["task"],
        )
        for task in sorted(set(task_failures) | {"metrics", "retention", "sweep"}):
            tasks.add_metric([task], task_failures.get(task, 0))
        yield tasks


def _bound(seconds: float) -> str:
    return f"{seconds:g}" if seconds != int(seconds) else f"{int(seconds)}.0"


LOOP_BOUND = 30.0


class Health:
    """Liveness: the daemon's loop runs and its repository refreshes keep ending.

    A refresh that has not ended within its bound (a store call that hangs past the commands'
    own time bound) means the daemon no longer sees its repository: restarting helps.
    """

    def __init__(self, metrics: BackupMetrics, bound: float) -> None:
        self._metrics = metrics
        self._bound = bound
        self._due = time.monotonic() + LOOP_BOUND

    def expect(self, seconds: float = 0.0) -> None:
        """The main loop is here, and back within ``seconds`` (a backup's bound) + LOOP_BOUND."""
        self._due = time.monotonic() + seconds + LOOP_BOUND

    def problems(self) -> list[str]:
        now = time.monotonic()
        found = []
        if now > self._due:
            found.append(f"the main loop is {now - self._due:.0f}s late")
        if now - self._metrics.refreshed > self._bound:
            found.append(f"no repository refresh ended for {now - self._metrics.refreshed:.0f}s")
        return found


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
        pass


def serve(
    metrics: BackupMetrics, health: Health, address: str, port: int
) -> tuple[WSGIServer, int]:
    """Serve ``/metrics`` and ``/healthz`` on a background thread; port 0 picks a free port."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics_app(environ, start)  # type: ignore[no-any-return]
        if path == "/healthz":
            problems = health.problems()
            body = ("; ".join(problems) or "ok").encode() + b"\n"
            status = "503 Service Unavailable" if problems else "200 OK"
            start(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        body = b"not found: try /metrics or /healthz\n"
        start("404 Not Found", [("Content-Type", "text/plain")])
        return [body]

    server = make_server(address, port, app, _Server, _QuietHandler)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server, server.server_port


def _newest_loadable(repo: Repository, refs: list[SnapshotRef]) -> Snapshot | None:
    for ref in reversed(refs):
        try:
            return repo.load_snapshot(ref)
        except BackupError as exc:
            log.warning("metrics: skipping damaged backup %d: %s", ref.number, exc)
    return None


def _repository_size(repo: Repository) -> int:
    # Everything the repository stores, and nothing else that may share its location (the PVC
    # image's old archives in BACKUP_DIR, a volume's lost+found).
    total = repo.stored_bytes()
    config = repo.storage.stat(repo_config.KEY)
    return total + (config.size if config else 0)
