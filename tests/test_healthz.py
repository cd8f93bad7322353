"""`/healthz` is a liveness answer of its own, not the metrics page under another name."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

from jenkins_backup import settings
from jenkins_backup.operations.metrics import BackupMetrics, Health, serve


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_healthz_says_what_is_stuck(tmp_path: Path) -> None:
    s = settings.load(environ={"BACKUP_REPOSITORY": str(tmp_path / "repo")})
    metrics = BackupMetrics(s)
    health = Health(metrics, bound=60.0)
    server, port = serve(metrics, health, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{port}"
    try:
        assert get(f"{base}/healthz") == (200, "ok\n")
        status, body = get(f"{base}/metrics")
        assert status == 200 and "jenkins_backup_build_info" in body
        assert get(f"{base}/")[0] == 404

        metrics.refreshed = time.monotonic() - 120  # a repository refresh hangs
        status, body = get(f"{base}/healthz")
        assert status == 503 and "no repository refresh ended" in body
        metrics.refresh()  # it ends (the repository does not exist yet: nothing to read)
        assert get(f"{base}/healthz") == (200, "ok\n")

        health.expect(-120)  # the main loop is late
        status, body = get(f"{base}/healthz")
        assert status == 503 and "main loop" in body
    finally:
        server.shutdown()
        server.server_close()
