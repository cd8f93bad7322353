#!/usr/bin/env python3
"""Regenerate tests/fixtures/jenkins_crd_schema.json from the Jenkins Operator's CRD.

The manifest tests validate deploy/operator/*.yaml against the openAPIV3Schema of the
`Jenkins` CustomResourceDefinition (group jenkins.io). The tests must not depend on anything
outside this repository, so a trimmed copy of that schema lives in tests/fixtures. This script
produces it:

    python tools/extract_crd_schema.py path/to/jenkins.io_jenkins.yaml \
        --source-ref ce17cbd3 -o tests/fixtures/jenkins_crd_schema.json

The CRD is published by the Jenkins Operator for Kubernetes (GitHub jenkinsci/kubernetes-operator,
file config/crd/bases/jenkins.io_jenkins.yaml, Apache License 2.0).

Trimming: every `description` annotation is dropped (a property that happens to be *named*
"description" is kept). Validation keywords and Kubernetes extensions (x-kubernetes-*) are kept
unchanged, so the fixture accepts and rejects exactly what the full schema does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

DEFAULT_VERSION = "v1alpha2"
SOURCE_REPO = "jenkinsci/kubernetes-operator"
SOURCE_PATH = "config/crd/bases/jenkins.io_jenkins.yaml"
SOURCE_LICENSE = "Apache-2.0"

# Keys whose value maps property names to schemas: their keys are names, not keywords.
_NAME_MAPS = frozenset({"properties", "patternProperties", "definitions", "$defs"})


def strip_descriptions(node: Any, *, names: bool = False) -> Any:
    """Return a copy of a schema node without `description` annotations."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if not names and key == "description":
                continue
            out[key] = strip_descriptions(value, names=(not names and key in _NAME_MAPS))
        return out
    if isinstance(node, list):
        return [strip_descriptions(item) for item in node]
    return node


def load_crd(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        docs = [doc for doc in yaml.safe_load_all(handle) if doc]
    for doc in docs:
        if doc.get("kind") == "CustomResourceDefinition":
            return dict(doc)
    raise SystemExit(f"{path}: no CustomResourceDefinition found")


def extract(crd: dict[str, Any], version: str) -> dict[str, Any]:
    spec = crd["spec"]
    for entry in spec["versions"]:
        if entry["name"] == version:
            schema = entry["schema"]["openAPIV3Schema"]
            break
    else:
        names = ", ".join(v["name"] for v in spec["versions"])
        raise SystemExit(f"version {version!r} not in CRD (has: {names})")
    trimmed: dict[str, Any] = strip_descriptions(schema)
    return trimmed


def build_fixture(crd: dict[str, Any], version: str, source_ref: str) -> dict[str, Any]:
    schema = extract(crd, version)
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    header = {
        "$comment": (
            f"openAPIV3Schema of {kind} ({group}/{version}), descriptions removed. "
            f"Source: GitHub {SOURCE_REPO}, {SOURCE_PATH}, commit {source_ref}, "
            f"{SOURCE_LICENSE}. Regenerate with tools/extract_crd_schema.py."
        ),
        "x-source": {
            "repository": SOURCE_REPO,
            "path": SOURCE_PATH,
            "commit": source_ref,
            "license": SOURCE_LICENSE,
            "group": group,
            "kind": kind,
            "version": version,
        },
    }
    return {**header, **schema}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("crd", type=Path, help="path to jenkins.io_jenkins.yaml")
    parser.add_argument("-o", "--output", type=Path, help="output file (default: stdout)")
    parser.add_argument("--version", default=DEFAULT_VERSION, help="CRD version to extract")
    parser.add_argument(
        "--source-ref", default="ce17cbd3", help="commit of the CRD, recorded in the fixture"
    )
    args = parser.parse_args(argv)

    fixture = build_fixture(load_crd(args.crd), args.version, args.source_ref)
    text = json.dumps(fixture, indent=1, sort_keys=False, ensure_ascii=False) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({len(text.encode())} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
