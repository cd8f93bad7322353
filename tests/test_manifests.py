"""Checks of the deployment examples in deploy/.

The Jenkins resources in deploy/operator are validated against the openAPIV3Schema of the
Jenkins Operator's CRD (tests/fixtures/jenkins_crd_schema.json; source and licence in
tests/fixtures/README.md), made strict the way `kubectl apply` (field validation "Strict") is:
an unknown or misspelled field is an error, not silently pruned. On top of the schema they must
satisfy the operator's own validation and the backup/restore contract (DESIGN.md section 2).

The Helm values and the plain Deployment have no CRD; their containers and volumes are validated
against the container and volume schemas embedded in the same CRD (the operator's types are the
core/v1 ones), and their wiring (commands, mounts, volumes) is checked directly.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the manifests")
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema validates the manifests")

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
OPERATOR_FILES = sorted((DEPLOY / "operator").glob("*.yaml"))
HELM_VALUES = DEPLOY / "helm" / "values-jenkins-chart.yaml"
PLAIN_DEPLOYMENTS = sorted((DEPLOY / "plain").glob("*.yaml"))
SCHEMA_FILE = ROOT / "tests" / "fixtures" / "jenkins_crd_schema.json"
WRAPPER_DIR = ROOT / "image" / "bin"
DOCKERFILE = ROOT / "Dockerfile"

WRAPPER_PREFIX = "/home/user/bin/"
# Volumes the operator adds to every Jenkins pod (resources.GetJenkinsMasterPodBaseVolumes):
# containers may mount them, spec.master.volumes may not redefine them.
OPERATOR_BASE_VOLUMES = frozenset(
    {"jenkins-home", "scripts", "init-configuration", "operator-credentials"}
)
# Volumes the Jenkins Helm chart defines in the controller pod itself.
CHART_VOLUMES = frozenset(
    {"jenkins-home", "jenkins-config", "plugins", "plugin-dir", "jenkins-cache", "tmp-volume"}
)
# Value names of the Jenkins chart that these values use (checked against the chart's
# values.yaml): a misspelled key would be ignored by Helm without a word.
CHART_TOP_LEVEL_KEYS = frozenset({"controller", "persistence", "serviceAccount"})
CHART_CONTROLLER_KEYS = frozenset(
    {
        "customInitContainers",
        "sidecars",
        "terminationGracePeriodSeconds",
        "podAnnotations",
        "podSecurityContextOverride",
        "containerSecurityContext",
    }
)
CHART_SIDECARS_KEYS = frozenset({"additionalSidecarContainers", "configAutoReload"})
CHART_PERSISTENCE_KEYS = frozenset({"enabled", "volumes", "mounts", "existingClaim", "size"})
CHART_JENKINS_HOME = "/var/jenkins_home"

JsonDict = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# helpers


def load_docs(path: Path) -> list[JsonDict]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def strict(schema: Any) -> Any:
    """Forbid unknown fields wherever the schema lists the known ones.

    The API server prunes fields that a structural schema does not declare, and kubectl's strict
    field validation rejects them; a plain JSON Schema validator would accept them. Objects with
    x-kubernetes-preserve-unknown-fields or their own additionalProperties are left alone.
    """
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: JsonDict = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: strict(sub) for name, sub in value.items()}
        else:
            out[key] = strict(value)
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields", False)
    ):
        out["additionalProperties"] = False
    return out


def load_schema() -> JsonDict:
    with SCHEMA_FILE.open(encoding="utf-8") as handle:
        schema: JsonDict = json.load(handle)
    return schema


@pytest.fixture(scope="module")
def crd_schema() -> JsonDict:
    schema: JsonDict = strict(load_schema())
    return schema


def sub_schema(schema: JsonDict, *path: str) -> JsonDict:
    node: JsonDict = schema
    for part in path:
        node = node["items"] if part == "[]" else node["properties"][part]
    return node


def schema_errors(schema: JsonDict, instance: Any) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return sorted(
        f"{'/'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
        for err in validator.iter_errors(instance)
    )


def jenkins_resources(path: Path) -> list[JsonDict]:
    return [doc for doc in load_docs(path) if doc.get("kind") == "Jenkins"]


def only_jenkins(path: Path) -> JsonDict:
    resources = jenkins_resources(path)
    assert len(resources) == 1, f"{path.name}: expected exactly one Jenkins resource"
    return resources[0]


def dockerfile_exec_form(instruction: str) -> list[str]:
    """The JSON (exec form) argument of the last ENTRYPOINT or CMD in the Dockerfile."""
    found: list[str] | None = None
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.startswith(instruction + " "):
            value = json.loads(line[len(instruction) + 1 :])
            assert isinstance(value, list), f"{instruction} must use the exec form"
            found = [str(item) for item in value]
    assert found is not None, f"Dockerfile has no {instruction}"
    return found


def effective_argv(container: JsonDict) -> list[str]:
    """What the container runs, with the image's ENTRYPOINT/CMD and tini left out."""
    if "command" in container:
        argv = list(container["command"]) + list(container.get("args", []))
    else:
        entrypoint = dockerfile_exec_form("ENTRYPOINT")
        argv = entrypoint + list(container.get("args", dockerfile_exec_form("CMD")))
    while argv and (argv[0].endswith("/tini") or argv[0] in {"tini", "--"}):
        argv = argv[1:]
    return argv


def env_map(container: JsonDict) -> dict[str, JsonDict]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def env_value(container: JsonDict, name: str) -> str | None:
    entry = env_map(container).get(name)
    if entry is None or "value" not in entry:
        return None
    return str(entry["value"])


def mount_paths(container: JsonDict) -> dict[str, str]:
    """Volume name -> mount path."""
    return {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_FACTORS = {
    None: 1,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
}


def memory_bytes(quantity: str | int) -> float:
    match = _QUANTITY.match(str(quantity))
    assert match, f"unparsed memory quantity {quantity!r}"
    return float(match.group(1)) * _FACTORS[match.group(2)]


def check_backup_container_basics(container: JsonDict, where: str) -> None:
    """Properties every jenkins-backup container of these examples must have."""
    resources = container.get("resources", {})
    limit = resources.get("limits", {}).get("memory")
    assert limit is not None, f"{where}: set a memory limit (the operator's default is 100Mi)"
    assert memory_bytes(limit) >= 512 * 2**20, f"{where}: memory limit {limit} is too small"
    security = container.get("securityContext", {})
    assert security.get("allowPrivilegeEscalation") is False, where
    if security.get("readOnlyRootFilesystem"):
        assert "/tmp" in mount_paths(container).values(), (
            f"{where}: a read-only root filesystem needs a writable /tmp volume"
        )


def wrapper_names() -> set[str]:
    return {path.name for path in WRAPPER_DIR.glob("*.sh")}


def iter_operator_resources() -> Iterator[tuple[str, JsonDict]]:
    for path in OPERATOR_FILES:
        for doc in jenkins_resources(path):
            yield path.name, doc


# ---------------------------------------------------------------------------------------------
# the fixture itself


def test_fixture_names_its_source() -> None:
    schema = load_schema()
    comment = schema["$comment"]
    for needle in ("jenkinsci/kubernetes-operator", "jenkins.io_jenkins.yaml", "ce17cbd3"):
        assert needle in comment
    assert schema["x-source"]["version"] == "v1alpha2"
    assert SCHEMA_FILE.stat().st_size < 300_000


def test_schema_covers_the_backup_contract(crd_schema: JsonDict) -> None:
    backup = sub_schema(crd_schema, "spec", "backup")
    restore = sub_schema(crd_schema, "spec", "restore")
    assert set(backup["required"]) >= {"action", "containerName", "interval"}
    assert "makeBackupBeforePodDeletion" in backup["properties"]
    assert {"getLatestAction", "recoveryOnce"} <= set(restore["properties"])


def test_strict_schema_rejects_typos_and_missing_fields(crd_schema: JsonDict) -> None:
    good = only_jenkins(DEPLOY / "operator" / "pvc.yaml")
    assert schema_errors(crd_schema, good) == []

    typo = copy.deepcopy(good)
    typo["spec"]["backup"]["makeBackupBeforePodDelete"] = typo["spec"]["backup"].pop(
        "makeBackupBeforePodDeletion"
    )
    assert schema_errors(crd_schema, typo)

    missing = copy.deepcopy(good)
    del missing["spec"]["backup"]["interval"]
    assert schema_errors(crd_schema, missing)

    wrong_type = copy.deepcopy(good)
    wrong_type["spec"]["backup"]["interval"] = "30"
    assert schema_errors(crd_schema, wrong_type)


# ---------------------------------------------------------------------------------------------
# deploy/operator


def test_operator_examples_exist() -> None:
    names = {path.name for path in OPERATOR_FILES}
    assert {"s3-iam-role.yaml", "s3-compatible-secret.yaml", "pvc.yaml"} <= names


@pytest.mark.parametrize("path", OPERATOR_FILES, ids=lambda p: p.name)
def test_operator_resource_matches_crd_schema(path: Path, crd_schema: JsonDict) -> None:
    resources = jenkins_resources(path)
    assert resources, f"{path.name} holds no Jenkins resource"
    for resource in resources:
        assert resource["apiVersion"] == "jenkins.io/v1alpha2"
        assert schema_errors(crd_schema, resource) == []


@pytest.mark.parametrize("path", OPERATOR_FILES, ids=lambda p: p.name)
def test_operator_resource_passes_operator_validation(path: Path) -> None:
    """The checks the operator itself makes before it creates the pod."""
    resource = only_jenkins(path)
    spec = resource["spec"]
    master = spec["master"]
    containers = master["containers"]
    assert containers[0]["name"] == "jenkins-master", "the first container must be jenkins-master"
    names = [c["name"] for c in containers]
    assert len(names) == len(set(names)), "container names must be unique"
    assert spec["jenkinsAPISettings"]["authorizationStrategy"] in {"createUser", "serviceAccount"}

    user_volumes = {v["name"] for v in master.get("volumes", [])}
    assert not user_volumes & OPERATOR_BASE_VOLUMES, "reserved volume names"
    for container in containers:
        assert container.get("image") and container.get("imagePullPolicy")
        for mount in container.get("volumeMounts", []):
            assert mount["mountPath"]
            assert mount["name"] in user_volumes | OPERATOR_BASE_VOLUMES, (
                f"{container['name']}: no volume {mount['name']!r}"
            )
    for env in containers[0].get("env", []):
        assert env["name"] != "COPY_REFERENCE_FILE_LOG", "set by the operator"


@pytest.mark.parametrize("path", OPERATOR_FILES, ids=lambda p: p.name)
def test_operator_backup_contract(path: Path) -> None:
    spec = only_jenkins(path)["spec"]
    containers = {c["name"]: c for c in spec["master"]["containers"]}
    backup, restore = spec["backup"], spec["restore"]

    assert backup["containerName"] in containers
    assert restore["containerName"] in containers
    assert backup["containerName"] == restore["containerName"]
    assert backup["containerName"] != "jenkins-master"
    assert backup["interval"] == 300
    assert backup["makeBackupBeforePodDeletion"] is True
    assert "recoveryOnce" not in restore, "an example must not pin a restore"

    commands = {
        "backup": backup["action"]["exec"]["command"],
        "restore": restore["action"]["exec"]["command"],
        "latest": restore["getLatestAction"]["exec"]["command"],
    }
    wrappers = {"backup": "backup.sh", "restore": "restore.sh", "latest": "get-latest.sh"}
    for action, command in commands.items():
        assert command, f"{action}: empty command"
        # The operator appends the number itself (nothing for getLatestAction).
        assert not any(arg.isdigit() for arg in command), f"{action}: {command}"
        if command[0].startswith(WRAPPER_PREFIX):
            name = command[0].removeprefix(WRAPPER_PREFIX)
            assert name == wrappers[action], f"{action}: {command}"
            assert name in wrapper_names(), f"no image/bin/{name}"
            assert len(command) == 1
        else:
            assert command == ["jenkins-backup", action], f"{action}: {command}"


@pytest.mark.parametrize("path", OPERATOR_FILES, ids=lambda p: p.name)
def test_operator_sidecar_shares_jenkins_home(path: Path) -> None:
    docs = load_docs(path)
    spec = only_jenkins(path)["spec"]
    master = spec["master"]
    sidecar = next(c for c in master["containers"] if c["name"] == spec["backup"]["containerName"])
    mounts = mount_paths(sidecar)

    assert "jenkins-home" in mounts, "the sidecar must mount the jenkins-home volume"
    assert env_value(sidecar, "JENKINS_HOME") == mounts["jenkins-home"]
    # The image's default CMD is the daemon; an override must still run it.
    assert effective_argv(sidecar)[:2] == ["jenkins-backup", "daemon"]
    check_backup_container_basics(sidecar, f"{path.name}:{sidecar['name']}")
    # Image user 1000 and the operator's default pod security context agree.
    assert master.get("securityContext", {}).get("runAsUser", 1000) == 1000
    prestop = sidecar.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
    assert prestop, "the sidecar must outlive SIGTERM long enough for the backup before deletion"
    delay = int(prestop[-1])
    assert delay < master.get("terminationGracePeriodSeconds", 30)

    # Where the backups go.
    env = env_map(sidecar)
    volumes = {v["name"]: v for v in master.get("volumes", [])}
    if "BACKUP_DIR" in env:
        backup_dir = env["BACKUP_DIR"]["value"]
        owner = [name for name, mount in mounts.items() if mount == backup_dir]
        assert owner, f"BACKUP_DIR {backup_dir} is not a mounted volume"
        claim = volumes[owner[0]]["persistentVolumeClaim"]["claimName"]
        claims = {d["metadata"]["name"] for d in docs if d.get("kind") == "PersistentVolumeClaim"}
        assert claim in claims, f"PVC {claim} is not defined in {path.name}"
    else:
        repository = env_value(sidecar, "BACKUP_REPOSITORY") or ""
        bucket = env_value(sidecar, "BACKUP_BUCKET")
        assert repository.startswith(("s3://", "gs://", "az://")) or bucket, "no repository"

    # Every secret the sidecar reads is in the same file.
    secrets = {d["metadata"]["name"] for d in docs if d.get("kind") == "Secret"}
    for entry in env.values():
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["name"] in secrets, f"secret {ref['name']} not defined in {path.name}"
            secret = next(
                d
                for d in docs
                if d.get("kind") == "Secret" and d["metadata"]["name"] == ref["name"]
            )
            keys: set[str] = set(secret.get("stringData", {})) | set(secret.get("data", {}))
            assert ref["key"] in keys, f"secret {ref['name']} has no key {ref['key']}"


def test_s3_iam_role_example_uses_a_role_not_keys() -> None:
    resource = only_jenkins(DEPLOY / "operator" / "s3-iam-role.yaml")
    master = resource["spec"]["master"]
    assert master["annotations"]["iam.amazonaws.com/role"].startswith("arn:aws:iam::")
    sidecar = master["containers"][1]
    names = set(env_map(sidecar))
    assert not names & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    # The documented S3 example's variables (drop-in).
    assert {"BACKUP_BUCKET", "BACKUP_PATH"} <= names
    # The IRSA alternative is spelled out for users to switch to.
    assert "eks.amazonaws.com/role-arn" in (DEPLOY / "operator" / "s3-iam-role.yaml").read_text()


def test_s3_compatible_example_reads_endpoint_and_keys() -> None:
    sidecar = only_jenkins(DEPLOY / "operator" / "s3-compatible-secret.yaml")["spec"]["master"][
        "containers"
    ][1]
    env = env_map(sidecar)
    assert env_value(sidecar, "AWS_ENDPOINT_URL")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert "secretKeyRef" in env[key]["valueFrom"]


def test_pvc_example_is_the_backup_pvc_layout() -> None:
    spec = only_jenkins(DEPLOY / "operator" / "pvc.yaml")["spec"]
    sidecar = next(c for c in spec["master"]["containers"] if c["name"] == "backup")
    assert env_value(sidecar, "BACKUP_DIR") == "/backup"
    assert env_value(sidecar, "JENKINS_HOME") == "/jenkins-home"
    assert env_value(sidecar, "BACKUP_KEEP_HOURLY") is not None
    assert spec["backup"]["action"]["exec"]["command"] == ["/home/user/bin/backup.sh"]
    assert spec["restore"]["action"]["exec"]["command"] == ["/home/user/bin/restore.sh"]
    assert spec["restore"]["getLatestAction"]["exec"]["command"] == ["/home/user/bin/get-latest.sh"]


# ---------------------------------------------------------------------------------------------
# deploy/helm and deploy/plain


def validate_pod_parts(
    crd_schema: JsonDict, containers: list[JsonDict], volumes: list[JsonDict]
) -> None:
    container_schema = sub_schema(crd_schema, "spec", "master", "containers", "[]")
    volume_schema = sub_schema(crd_schema, "spec", "master", "volumes", "[]")
    for container in containers:
        assert schema_errors(container_schema, container) == [], container["name"]
    for volume in volumes:
        assert schema_errors(volume_schema, volume) == [], volume["name"]


def find_container(containers: list[JsonDict], argv_prefix: list[str]) -> JsonDict:
    matches = [c for c in containers if effective_argv(c)[: len(argv_prefix)] == argv_prefix]
    assert len(matches) == 1, f"expected one container running {argv_prefix}"
    return matches[0]


def test_helm_values_use_real_chart_keys() -> None:
    (values,) = load_docs(HELM_VALUES)
    assert set(values) <= CHART_TOP_LEVEL_KEYS
    assert set(values["controller"]) <= CHART_CONTROLLER_KEYS
    assert set(values["controller"]["sidecars"]) <= CHART_SIDECARS_KEYS
    assert set(values["persistence"]) <= CHART_PERSISTENCE_KEYS


def test_helm_values_add_restore_init_and_daemon_sidecar(crd_schema: JsonDict) -> None:
    (values,) = load_docs(HELM_VALUES)
    controller = values["controller"]
    inits = controller["customInitContainers"]
    sidecars = controller["sidecars"]["additionalSidecarContainers"]
    extra_volumes = values["persistence"].get("volumes", [])
    validate_pod_parts(crd_schema, inits + sidecars, extra_volumes)

    restore = find_container(inits, ["jenkins-backup", "restore", "latest"])
    daemon = find_container(sidecars, ["jenkins-backup", "daemon", "--interval", "300"])
    known_volumes = CHART_VOLUMES | {v["name"] for v in extra_volumes}
    for container in (restore, daemon):
        where = f"helm:{container['name']}"
        mounts = mount_paths(container)
        assert mounts.get("jenkins-home") == CHART_JENKINS_HOME, where
        assert env_value(container, "JENKINS_HOME") == CHART_JENKINS_HOME, where
        assert set(mounts) <= known_volumes, where
        check_backup_container_basics(container, where)
    # Both read the same repository and scope, or the restore would miss the backups.
    for name in ("BACKUP_REPOSITORY", "BACKUP_DIR", "BACKUP_SCOPE"):
        assert env_value(restore, name) == env_value(daemon, name), name


@pytest.mark.parametrize("path", PLAIN_DEPLOYMENTS, ids=lambda p: p.name)
def test_plain_deployment(crd_schema: JsonDict, path: Path) -> None:
    docs = load_docs(path)
    kinds = [d["kind"] for d in docs]
    assert "Deployment" in kinds and "PersistentVolumeClaim" in kinds
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["apiVersion"] == "apps/v1"
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()

    pod = template["spec"]
    containers, inits, volumes = pod["containers"], pod["initContainers"], pod["volumes"]
    validate_pod_parts(crd_schema, containers + inits, volumes)
    security_schema = sub_schema(crd_schema, "spec", "master", "securityContext")
    assert schema_errors(security_schema, pod["securityContext"]) == []

    restore = find_container(inits, ["jenkins-backup", "restore", "latest"])
    daemon = find_container(containers, ["jenkins-backup", "daemon", "--interval", "300"])
    jenkins = next(c for c in containers if c["image"].startswith("jenkins/jenkins"))
    jenkins_home = mount_paths(jenkins)["jenkins-home"]
    volume_names = {v["name"] for v in volumes}
    for container in (restore, daemon):
        where = f"plain:{container['name']}"
        mounts = mount_paths(container)
        assert mounts.get("jenkins-home") == jenkins_home, where
        assert env_value(container, "JENKINS_HOME") == jenkins_home, where
        assert set(mounts) <= volume_names, where
        check_backup_container_basics(container, where)
        backup_dir = env_value(container, "BACKUP_DIR")
        if backup_dir is not None:
            assert backup_dir in mounts.values(), where
    for container in containers + inits:
        assert set(mount_paths(container)) <= volume_names, container["name"]

    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    for volume in volumes:
        if "persistentVolumeClaim" in volume:
            assert volume["persistentVolumeClaim"]["claimName"] in claims
    for service in (d for d in docs if d["kind"] == "Service"):
        assert service["spec"]["selector"].items() <= labels.items()
