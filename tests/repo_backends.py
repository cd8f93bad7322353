"""Run a behavioural test against a local directory and an S3 repository (SeaweedFS).

``repo_env`` (imported by conftest.py) is the operator's environment with BACKUP_REPOSITORY on
each backend in turn. ``RawStore`` reads, damages and measures that repository's objects with a
client of its own (the filesystem, or boto3 for S3): tests neither damage nor measure a
repository through the code under test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from servers import Server

BACKENDS = ["local", "s3"]


@pytest.fixture(params=BACKENDS)
def repo_env(request: pytest.FixtureRequest, env: dict[str, str]) -> dict[str, str]:
    """``env`` with a fresh repository on the local disk, then on S3."""
    if request.param == "local":
        return env
    server: Server = request.getfixturevalue("s3_server")
    return {**env, **server.env, "BACKUP_REPOSITORY": server.repo_url("repo")}


class RawStore:
    """The repository's objects by key, seen without jenkins-backup's storage layer."""

    def __init__(self, env: dict[str, str]) -> None:
        location = env["BACKUP_REPOSITORY"]
        self.local: Path | None = None
        if "://" not in location:
            self.local = Path(location)
            return
        import boto3
        from botocore.config import Config

        url = urlparse(location)
        self.bucket, self.root = url.netloc, url.path.strip("/") + "/"
        self.s3: Any = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env.get("AWS_REGION", "us-east-1"),
            config=Config(s3={"addressing_style": "path"}),
        )

    def sizes(self, prefix: str = "") -> dict[str, int]:
        """Size of every object whose key starts with ``prefix``."""
        if self.local is not None:
            folder = self.local / prefix.rpartition("/")[0]
            files = (p for p in folder.rglob("*") if p.is_file())
            keys = {p.relative_to(self.local).as_posix(): p.stat().st_size for p in files}
            return {k: v for k, v in keys.items() if k.startswith(prefix)}
        out: dict[str, int] = {}
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.root + prefix
        )
        for page in pages:
            for obj in page.get("Contents", []):
                out[obj["Key"][len(self.root) :]] = int(obj["Size"])
        return out

    def total(self, prefix: str = "") -> int:
        """Bytes stored under ``prefix``: the repository's size as the store bills it."""
        return sum(self.sizes(prefix).values())

    def get(self, key: str) -> bytes:
        if self.local is not None:
            return (self.local / key).read_bytes()
        body: bytes = self.s3.get_object(Bucket=self.bucket, Key=self.root + key)["Body"].read()
        return body

    def put(self, key: str, data: bytes) -> None:
        if self.local is not None:
            (self.local / key).write_bytes(data)
        else:
            self.s3.put_object(Bucket=self.bucket, Key=self.root + key, Body=data)

    def delete(self, key: str) -> None:
        if self.local is not None:
            (self.local / key).unlink()
        else:
            self.s3.delete_object(Bucket=self.bucket, Key=self.root + key)

    def flip(self, key: str, offset: int) -> None:
        """Damage one byte of an object in place."""
        raw = bytearray(self.get(key))
        raw[offset] ^= 0xFF
        self.put(key, bytes(raw))
