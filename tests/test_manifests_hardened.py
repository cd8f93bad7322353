"""The deployment examples fit a hardened cluster.

- Every core Kubernetes object validates against the Kubernetes API's own schema
  (kubernetes-validate, offline: the schemas ship in the package), strictly: an unknown field
  is an error. The Helm values' containers and pod security context are validated inside a Pod.
- Every pod passes the Pod Security Standards' "restricted" profile (checked rule by rule, as
  the admission controller does), plus a read-only root file system everywhere.
- The OpenShift variant fixes no UID, GID or fsGroup; retention has hourly, daily and weekly
  rules; the plain Deployment does not start Jenkins with its security switched off.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the manifests")
kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.30"
MANIFESTS = sorted(p for p in DEPLOY.glob("*/*.yaml") if p.parent.name != "helm")
HELM_VALUES = DEPLOY / "helm" / "values-jenkins-chart.yaml"
# Custom resources: their CRD schemas are checked elsewhere (tests/test_manifests.py for the
# Jenkins resource, promtool for the PrometheusRule).
CUSTOM_KINDS = {"Jenkins", "PodMonitor", "PrometheusRule"}
# The volume types the restricted profile allows.
ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
BACKUP_IMAGE = "jenkins-backup:"

Json = dict[str, Any]


def docs(path: Path) -> list[Json]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def helm_pod() -> Json:
    """The pod the Jenkins chart renders from these values, as far as they decide it."""
    (values,) = docs(HELM_VALUES)
    controller = values["controller"]
    jenkins = {
        "name": "jenkins",
        "image": "jenkins/jenkins:lts",
        "securityContext": controller["containerSecurityContext"],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "jenkins-0"},
        "spec": {
            "securityContext": controller["podSecurityContextOverride"],
            "initContainers": controller["customInitContainers"],
            "containers": [jenkins, *controller["sidecars"]["additionalSidecarContainers"]],
            "volumes": [
                {"name": "jenkins-home", "emptyDir": {}},
                *values["persistence"]["volumes"],
            ],
        },
    }


def pods() -> list[tuple[str, Json]]:
    """(where, pod spec) of every example; a Jenkins resource's pod is its spec.master."""
    out = [("helm", helm_pod()["spec"])]
    for path in MANIFESTS:
        for doc in docs(path):
            if doc["kind"] == "Jenkins":
                out.append((path.name, doc["spec"]["master"]))
            elif doc["kind"] in {"Deployment", "StatefulSet", "Job"}:
                out.append((path.name, doc["spec"]["template"]["spec"]))
    return out


def restricted_violations(pod: Json) -> list[str]:
    """The Pod Security Standards "restricted" rules a pod breaks (and a writable root)."""
    problems = []
    pod_sc = pod.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            problems.append(f"{key} is set")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            problems.append(f"volume {volume['name']}: {sorted(kinds)} not allowed")
    if pod_sc.get("runAsUser") == 0:
        problems.append("pod runAsUser 0")
    pod_seccomp = pod_sc.get("seccompProfile", {}).get("type")
    containers = pod.get("initContainers", []) + pod["containers"]
    for c in containers:
        sc = c.get("securityContext", {})
        where = c["name"]
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            problems.append(f"{where}: capabilities not dropped (ALL)")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where}: adds capabilities {caps['add']}")
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if non_root is not True:
            problems.append(f"{where}: runAsNonRoot is not true")
        if sc.get("runAsUser") == 0:
            problems.append(f"{where}: runAsUser 0")
        seccomp = sc.get("seccompProfile", {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccompProfile is not RuntimeDefault or Localhost")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem is not true")
        for port in c.get("ports", []):
            if port.get("hostPort"):
                problems.append(f"{where}: hostPort")
    return problems


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_core_objects_match_the_kubernetes_schema(path: Path) -> None:
    for doc in docs(path):
        if doc["kind"] not in CUSTOM_KINDS:
            kv.validate(doc, K8S_VERSION, strict=True)


def test_helm_pod_matches_the_kubernetes_schema() -> None:
    kv.validate(helm_pod(), K8S_VERSION, strict=True)


def test_schema_validation_rejects_a_misspelled_field() -> None:
    (deployment,) = [
        d for d in docs(DEPLOY / "plain" / "deployment.yaml") if d["kind"] == "Deployment"
    ]
    bad = copy.deepcopy(deployment)
    bad["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, K8S_VERSION, strict=True)


@pytest.mark.parametrize("where,pod", pods(), ids=[w for w, _ in pods()])
def test_every_pod_passes_the_restricted_profile(where: str, pod: Json) -> None:
    assert restricted_violations(pod) == []


def test_the_restricted_check_catches_each_rule() -> None:
    where, pod = pods()[-1]
    for breaking in (
        lambda c: c["securityContext"].pop("allowPrivilegeEscalation"),
        lambda c: c["securityContext"].update(capabilities={"drop": []}),
        lambda c: c["securityContext"].update(runAsNonRoot=False),
        lambda c: c["securityContext"].update(seccompProfile={"type": "Unconfined"}),
        lambda c: c["securityContext"].update(readOnlyRootFilesystem=False),
        lambda c: c["securityContext"].update(privileged=True),
    ):
        broken = copy.deepcopy(pod)
        container = broken["containers"][-1]
        container.setdefault("securityContext", {})
        breaking(container)
        assert restricted_violations(broken), where
    host = copy.deepcopy(pod)
    host["volumes"] = [*host.get("volumes", []), {"name": "h", "hostPath": {"path": "/"}}]
    assert restricted_violations(host)


def test_openshift_variant_fixes_no_uid_gid_or_fsgroup() -> None:
    path = DEPLOY / "plain" / "deployment-openshift.yaml"
    (deployment,) = [d for d in docs(path) if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    contexts = [pod.get("securityContext", {})] + [
        c.get("securityContext", {}) for c in pod.get("initContainers", []) + pod["containers"]
    ]
    for sc in contexts:
        assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(sc), sc
    assert restricted_violations(pod) == []


def backup_daemons() -> list[tuple[str, Json]]:
    out = []
    for where, pod in pods():
        for c in pod["containers"]:
            if c.get("image", "").startswith(BACKUP_IMAGE):
                out.append((f"{where}:{c['name']}", c))
    return out


@pytest.mark.parametrize("where,container", backup_daemons(), ids=[w for w, _ in backup_daemons()])
def test_retention_keeps_hourly_daily_and_weekly_backups(where: str, container: Json) -> None:
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert "BACKUP_COUNT" not in env, "a keep-last count alone keeps minutes of history"
    for name in ("BACKUP_KEEP_HOURLY", "BACKUP_KEEP_DAILY", "BACKUP_KEEP_WEEKLY"):
        assert int(env[name]) >= 7, name
    assert int(env["BACKUP_KEEP_WEEKLY"]) * 7 >= 30, "at least a month of weekly backups"


def test_operator_examples_back_up_every_few_minutes_not_every_30_seconds() -> None:
    for path in MANIFESTS:
        for doc in docs(path):
            if doc["kind"] == "Jenkins":
                assert doc["spec"]["backup"]["interval"] >= 300, path.name


@pytest.mark.parametrize("path", sorted((DEPLOY / "plain").glob("*.yaml")), ids=lambda p: p.name)
def test_plain_deployment_does_not_start_an_unsecured_jenkins(path: Path) -> None:
    (deployment,) = [d for d in docs(path) if d["kind"] == "Deployment"]
    for c in deployment["spec"]["template"]["spec"]["containers"]:
        words = [str(e.get("value", "")) for e in c.get("env", [])] + c.get("args", [])
        assert not any("runSetupWizard=false" in w for w in words), c["name"]
        assert not any("useSecurity" in w and "false" in w for w in words), c["name"]


@pytest.mark.parametrize("where,container", backup_daemons(), ids=[w for w, _ in backup_daemons()])
def test_daemon_liveness_is_its_healthz(where: str, container: Json) -> None:
    probe = container["livenessProbe"]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert probe["path"] == "/healthz" and probe["port"] in ports
