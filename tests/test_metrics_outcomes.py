"""What the metrics say about this container's backups, restores and verifications.

The commands run through the CLI's main (in process); the daemon's collector reads
their outcomes from the repository's runtime directory, counting only runs since it started.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from prometheus_client.core import Metric

from helpers import clean_env
from inprocess import run_cli
from jenkins_backup import settings
from jenkins_backup.operations.metrics import BackupMetrics


def samples(metrics: BackupMetrics) -> dict[str, float]:
    out: dict[str, float] = {}
    family: Metric
    for family in metrics.collect():
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def a_home(root: Path, files: int) -> None:
    for i in range(files):
        build = root / "jobs" / f"job-{i % 5}" / "builds" / str(i)
        build.mkdir(parents=True, exist_ok=True)
        (build / "log").write_text(f"build {i}\n" * 20)


def test_outcomes_by_result_and_warnings(tmp_path: Path) -> None:
    home, repo = tmp_path / "home", tmp_path / "repo"
    a_home(home, 150)
    env = clean_env(JENKINS_HOME=str(home), BACKUP_REPOSITORY=str(repo))
    env.pop("BACKUP_RUNTIME_DIR", None)  # the default: the repository's own
    run_cli("backup", "1", env=env, check=True)  # before the daemon: not this container's
    metrics = BackupMetrics(settings.load(environ=env))

    run_cli("backup", "2", env=env, check=True)
    shutil.rmtree(home / "jobs")
    a_home(home, 10)  # the home lost most of its files: the shrink guard refuses
    refused = run_cli("backup", "3", env=env)
    assert refused.returncode != 0 and "refused" in refused.stderr
    m = samples(metrics)
    assert m['jenkins_backup_backups_total{result="success"}'] == 1
    assert m['jenkins_backup_backups_total{result="refused"}'] == 1
    assert m['jenkins_backup_backups_total{result="failure"}'] == 0
    assert m['jenkins_backup_warnings{kind="shrink_guard_refused"}'] == 1
    assert m["jenkins_backup_backup_duration_seconds_count"] == 2

    run_cli("restore", "2", env=env, check=True)
    run_cli("verify", env=env, check=True)
    m = samples(metrics)
    assert m['jenkins_backup_restores_total{result="success"}'] == 1
    assert m['jenkins_backup_verifications_total{result="success"}'] == 1
    assert m['jenkins_backup_verifications_total{result="damaged"}'] == 0
    assert m['jenkins_backup_warnings{kind="damaged_backups_found"}'] == 0
    assert m["jenkins_backup_restore_duration_seconds_count"] == 1

    # Damage a pack: verify finds it, and the gauge says how many backups are damaged.
    pack = max(
        (p for p in (repo / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size
    )
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pack.write_bytes(bytes(data))
    assert run_cli("verify", env=env).returncode != 0
    m = samples(metrics)
    assert m['jenkins_backup_verifications_total{result="damaged"}'] == 1
    assert m['jenkins_backup_warnings{kind="damaged_backups_found"}'] >= 1

    # Now the home is as backup 2 left it (restored): the next backup succeeds again.
    run_cli("backup", "3", env=env, check=True)
    m = samples(metrics)
    assert m['jenkins_backup_warnings{kind="shrink_guard_refused"}'] == 0


def test_another_repository_s_runs_are_not_counted(tmp_path: Path) -> None:
    home = tmp_path / "home"
    a_home(home, 3)
    mine = clean_env(JENKINS_HOME=str(home), BACKUP_REPOSITORY=str(tmp_path / "mine"))
    other = {**mine, "BACKUP_REPOSITORY": str(tmp_path / "other")}
    for env in (mine, other):
        env.pop("BACKUP_RUNTIME_DIR", None)
    metrics = BackupMetrics(settings.load(environ=mine))
    run_cli("backup", "1", env=other, check=True)
    assert run_cli("backup", "2", env={**other, "JENKINS_HOME": str(tmp_path / "none")}).returncode
    m = samples(metrics)
    assert m['jenkins_backup_backups_total{result="success"}'] == 0
    assert m['jenkins_backup_backups_total{result="failure"}'] == 0
    run_cli("backup", "1", env=mine, check=True)
    assert samples(metrics)['jenkins_backup_backups_total{result="success"}'] == 1
