"""The monitoring that ships in deploy/monitoring/, checked with the real Prometheus.

promtool checks the PrometheusRule's rules and runs their unit tests
(tests/fixtures/prometheus_rules_test.yaml: each alert fires for one pod and stays silent for
another); the dashboard and the rules use only metrics a real daemon serves; and a real
Prometheus on 127.0.0.1 scrapes a running `jenkins-backup daemon` whose backups fail, until its
own API shows the alert pending or firing.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import clean_env

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the manifests")

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "deploy" / "monitoring"
RULE_TESTS = ROOT / "tests" / "fixtures" / "prometheus_rules_test.yaml"
BOUND = 90.0
ALERTS = {
    "JenkinsBackupTooOld",
    "JenkinsBackupFailing",
    "JenkinsBackupShrinkGuardRefused",
    "JenkinsBackupDamaged",
    "JenkinsBackupRepositoryUnreachable",
}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package prometheus: .ci/install-system.sh)")
    return path


def rule_groups() -> dict[str, Any]:
    doc = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "PrometheusRule"
    return {"groups": doc["spec"]["groups"]}


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule_groups()))
    return path


def test_rules_pass_promtool_check(rules_file: Path) -> None:
    proc = subprocess.run(
        [tool("promtool"), "check", "rules", str(rules_file)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = {r["alert"] for g in rule_groups()["groups"] for r in g["rules"]}
    assert names == ALERTS


def test_every_alert_fires_and_stays_silent_in_promtool_tests(rules_file: Path) -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())
    tested = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"]}
    assert tested == ALERTS
    for case in tests["tests"]:
        pods = {s["series"].split('pod="')[1].split('"')[0] for s in case["input_series"]}
        assert pods == {"a", "b"}, case["name"]  # one pod fires, the other must stay silent
    shutil.copy(RULE_TESTS, rules_file.parent / "tests.yaml")
    proc = subprocess.run(
        [tool("promtool"), "test", "rules", str(rules_file.parent / "tests.yaml")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_podmonitor_scrapes_the_examples_metrics_port() -> None:
    doc = yaml.safe_load((MONITORING / "podmonitor.yaml").read_text())
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "PodMonitor"
    (endpoint,) = doc["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics"
    for example in (ROOT / "deploy").glob("*/*.yaml"):
        if "containerPort: 9180" in example.read_text():
            assert f"name: {endpoint['port']}" in example.read_text(), example.name


# ---------------------------------------------------------------------------------------------
# a real daemon and a real Prometheus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def wait_for(what: str, probe: Any) -> Any:
    deadline = time.monotonic() + BOUND
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except OSError as exc:
            value, last = None, exc
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


class Process:
    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for p in reversed(started):
        p.stop()


def failing_daemon(tmp_path: Path, processes: list[Process]) -> int:
    """A standalone daemon whose every backup fails (its JENKINS_HOME does not exist)."""
    port = free_port()
    env = clean_env(
        JENKINS_HOME=str(tmp_path / "no-such-home"),
        BACKUP_REPOSITORY=str(tmp_path / "repo"),
        BACKUP_METRICS_PORT=str(port),
        BACKUP_METRICS_ADDRESS="127.0.0.1",
        BACKUP_SHUTDOWN_GRACE="0",
    )
    env.pop("BACKUP_RUNTIME_DIR", None)
    argv = [sys.executable, "-m", "jenkins_backup", "daemon", "--interval", "0.5"]
    processes.append(Process(argv, tmp_path / "daemon.log", env))
    wait_for("the daemon's metrics", lambda: get(f"http://127.0.0.1:{port}/metrics"))
    return port


def served_names(text: str) -> set[str]:
    """Names of the samples served (a histogram's _bucket, _sum, _count; a counter's _total)."""
    return {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_rules_and_dashboard_use_only_served_metrics(
    tmp_path: Path, processes: list[Process]
) -> None:
    port = failing_daemon(tmp_path, processes)
    served = served_names(get(f"http://127.0.0.1:{port}/metrics"))
    assert {"jenkins_backup_build_info", "process_resident_memory_bytes"} <= served
    used_text = (MONITORING / "prometheusrule.yaml").read_text() + (
        MONITORING / "grafana-dashboard.json"
    ).read_text()
    used = set(re.findall(r"\bjenkins_backup_[a-z_]+", used_text))
    assert used and used <= served, used - served
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("age", "duration", "bytes added", "repository size", "failures"):
        assert topic in titles


def test_a_real_prometheus_raises_the_alert_of_a_failing_daemon(
    tmp_path: Path, processes: list[Process], rules_file: Path
) -> None:
    prometheus = tool("prometheus")
    port = failing_daemon(tmp_path, processes)
    web = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_file)],
        "scrape_configs": [
            {
                "job_name": "jenkins-backup",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"], "labels": {"pod": "jenkins-0"}}
                ],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    argv = [
        prometheus,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{web}",
    ]
    processes.append(Process(argv, tmp_path / "prometheus.log"))
    api = f"http://127.0.0.1:{web}/api/v1"

    def alert() -> dict[str, Any] | None:
        alerts = json.loads(get(f"{api}/alerts"))["data"]["alerts"]
        found = [a for a in alerts if a["labels"]["alertname"] == "JenkinsBackupFailing"]
        return found[0] if found and found[0]["state"] in ("pending", "firing") else None

    try:
        found = wait_for("JenkinsBackupFailing to be pending", alert)
    except AssertionError:
        raise AssertionError(
            (tmp_path / "prometheus.log").read_text()[-2000:]
            + (tmp_path / "daemon.log").read_text()[-2000:]
        ) from None
    assert found["labels"]["pod"] == "jenkins-0"
    # The scrape went through Prometheus: the failures it stored are the daemon's.
    query = 'jenkins_backup_backups_total{result="failure"}'
    result = json.loads(get(f"{api}/query?query={urllib.parse.quote(query)}"))["data"]["result"]
    assert result and float(result[0]["value"][1]) >= 1
    assert "backup 1 failed" in (tmp_path / "daemon.log").read_text()
