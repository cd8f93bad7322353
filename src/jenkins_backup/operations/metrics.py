"""Prometheus metrics of the daemon, served on ``/metrics``.

Backups may run in other processes (the operator execs `backup N`), so nothing is counted in
memory: the facts about successful backups come from the repository itself (the newest
committed snapshot, read again by ``refresh`` on the daemon's schedule, never during a scrape,
so a slow store cannot time out a scrape), and failures and backups in flight come from the
runtime directory the backup commands write (cheap local files, read at each scrape).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

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


@dataclass(frozen=True)
class RepositoryFacts:
    readable: bool = False
    backups: int = 0
    size_bytes: int = 0
    last: Snapshot | None = None


class BackupMetrics:
    """A prometheus_client collector over the repository and the runtime directory."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
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

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            facts = self._facts
            task_failures = dict(self._task_failures)
        status = activity.read_status(self._settings.runtime_dir)
        in_flight = activity.running(self._settings.runtime_dir)
        last = facts.last

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"jenkins_backup_{name}", doc, value=value)

        yield gauge(
            "last_success_timestamp_seconds",
            "Commit time of the newest backup (Unix time; 0 when there is none).",
            last.time_ns / 1e9 if last else 0,
        )
        yield gauge(
            "last_success_number",
            "Number of the newest backup (0 when none).",
            last.number if last else 0,
        )
        yield gauge(
            "last_duration_seconds",
            "How long the newest backup took.",
            last.stats.seconds if last else 0,
        )
        yield gauge(
            "last_bytes_added",
            "Stored bytes the newest backup added to the repository.",
            last.stats.bytes_added if last else 0,
        )
        yield gauge("last_files", "Files in the newest backup.", last.stats.files if last else 0)
        yield gauge(
            "last_bytes",
            "Bytes of file content in the newest backup.",
            last.stats.bytes if last else 0,
        )
        yield gauge("backups", "Backups in the repository.", facts.backups)
        yield gauge("repository_size_bytes", "Stored size of the repository.", facts.size_bytes)
        yield gauge(
            "repository_up",
            "1 when the last read of the repository worked.",
            1 if facts.readable else 0,
        )
        yield gauge("running", "Backups in flight in this container.", len(in_flight))
        yield CounterMetricFamily(
            "jenkins_backup_failures", "Failed backups in this container.", value=status.failures
        )
        yield gauge(
            "last_failure_timestamp_seconds",
            "When a backup last failed in this container (Unix time; 0 when never).",
            status.last_failure_time,
        )
        tasks = CounterMetricFamily(
            "jenkins_backup_task_failures",
            "Failed runs of the daemon's own tasks (retention, sweep, metrics refresh).",
            labels=["task"],
        )
        for task, count in sorted(task_failures.items()):
            tasks.add_metric([task], count)
        yield tasks


def serve(metrics: BackupMetrics, address: str, port: int) -> tuple[WSGIServer, int]:
    """Serve ``/metrics`` on a background thread; port 0 picks a free port (returned)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    server, _thread = start_http_server(port, addr=address, registry=registry)
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
