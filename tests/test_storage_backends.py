"""One contract for every storage backend, run against real servers on 127.0.0.1.

local: a temp directory; s3: SeaweedFS; gcs: fake-gcs-server; azure: azurite. A cloud
backend's cases skip (with the reason) only when its server is not installed here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from faultproxy import FaultProxy
from jenkins_backup.errors import ObjectNotFound, StorageError, UsageError
from jenkins_backup.storage.base import Storage
from jenkins_backup.storage.cloud import TransferOptions, short_message
from jenkins_backup.storage.factory import open_storage
from servers import Server

BACKENDS = ["local", "s3", "gcs", "azure"]
MiB = 1024 * 1024


def _open(request: pytest.FixtureRequest, name: str, tmp_path: Path) -> Storage:
    if name == "local":
        return open_storage(str(tmp_path / "repo"))
    server: Server = request.getfixturevalue(f"{name}_server")
    label = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40]
    return open_storage(server.repo_url(label), server.env)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> Iterator[Storage]:
    st = _open(request, backend, tmp_path)
    yield st
    st.close()


def _blob(n: int, seed: int = 0) -> bytes:
    """Deterministic incompressible bytes."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.blake2b(f"{seed}:{counter}".encode(), digest_size=64).digest()
        counter += 1
    return bytes(out[:n])


# --- the contract ---------------------------------------------------------------------------


def test_put_get_round_trip(storage: Storage) -> None:
    data = _blob(100_000)
    assert storage.put("data/ab/obj1", data) is True
    assert storage.get("data/ab/obj1") == data
    assert storage.put("empty", b"") is True
    assert storage.get("empty") == b""
    storage.put("data/ab/obj1", b"replaced")
    assert storage.get("data/ab/obj1") == b"replaced"


def test_get_range(storage: Storage) -> None:
    data = bytes(range(256)) * 40
    storage.put("packs/p1", data)
    assert storage.get_range("packs/p1", 0, 10) == data[:10]
    assert storage.get_range("packs/p1", 1000, 500) == data[1000:1500]
    assert storage.get_range("packs/p1", len(data) - 5, 100) == data[-5:]  # past the end
    assert storage.get_range("packs/p1", -16, 16) == data[-16:]  # trailer read
    assert storage.get_range("packs/p1", -100, 10) == data[-100:-90]
    with pytest.raises(ObjectNotFound):
        storage.get_range("packs/missing", 0, 4)
    with pytest.raises(ObjectNotFound):
        storage.get_range("packs/missing", -4, 4)


def test_create_only(storage: Storage) -> None:
    assert storage.put("snapshots/s1", b"first", create_only=True) is True
    assert storage.put("snapshots/s1", b"second", create_only=True) is False
    assert storage.get("snapshots/s1") == b"first"


def test_missing_objects(storage: Storage) -> None:
    with pytest.raises(ObjectNotFound):
        storage.get("nothing/here")
    assert storage.stat("nothing/here") is None
    storage.delete("nothing/here")  # not an error
    assert list(storage.list("nothing/")) == []


def test_stat_and_delete(storage: Storage) -> None:
    before = time.time()
    storage.put("index/i1", b"12345")
    info = storage.stat("index/i1")
    assert info is not None
    assert (info.key, info.size) == ("index/i1", 5)
    assert before - 300 < info.mtime < time.time() + 300  # server clocks are close, not equal
    storage.delete("index/i1")
    assert storage.stat("index/i1") is None
    with pytest.raises(ObjectNotFound):
        storage.get("index/i1")


def test_list_by_folder_prefix_with_paging(storage: Storage) -> None:
    """More than 1000 keys: S3, GCS and Azure return pages of at most 1000."""
    keys = [f"data/{i % 7:02x}/{i:06d}" for i in range(1100)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: storage.put(k, k.encode()), keys))
    storage.put("snapshots/0001", b"s")
    storage.put("database", b"not in data/")  # shares the letters, not the folder
    found = {i.key: i.size for i in storage.list("data/")}
    assert found == {k: len(k) for k in keys}
    assert {i.key for i in storage.list("data/03/")} == {k for k in keys if k[5:7] == "03"}
    assert [i.key for i in storage.list("snapshots/")] == ["snapshots/0001"]
    assert len(list(storage.list(""))) == 1102


def test_parallel_writers(storage: Storage) -> None:
    """Distinct keys from many threads, and a create-only race on one key with one winner."""

    def write(i: int) -> bool:
        storage.put(f"data/par/{i:03d}", _blob(4096, i))
        return storage.put("locks/race", b"same bytes", create_only=True)

    with ThreadPoolExecutor(32) as pool:
        wins = list(pool.map(write, range(64)))
    for i in range(64):
        assert storage.get(f"data/par/{i:03d}") == _blob(4096, i)
    assert storage.get("locks/race") == b"same bytes"
    assert storage.atomic_create, "every backend's create-only write is atomic"
    assert wins.count(True) == 1


def test_big_object(storage: Storage) -> None:
    """20 MiB: uploaded in parts where the store does multipart; create-only in one request."""
    data = _blob(20 * MiB, seed=7)
    assert storage.put("data/big/overwrite", data) is True
    assert storage.put("data/big/create", data, create_only=True) is True
    for key in ("data/big/overwrite", "data/big/create"):
        got = storage.get(key)
        assert len(got) == len(data) and got == data
        assert storage.get_range(key, -1000, 1000) == data[-1000:]
        info = storage.stat(key)
        assert info is not None and info.size == len(data)


def test_no_secret_in_describe_or_errors(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    st = _open(request, backend, tmp_path)
    with pytest.raises(ObjectNotFound) as info:
        st.get("nothing")
    texts = [st.describe(), str(info.value)]
    if backend != "local":
        env = request.getfixturevalue(f"{backend}_server").env
        secrets = [env.get("AWS_SECRET_ACCESS_KEY", "")]
        secrets += re.findall(r"AccountKey=([^;]+)", env.get("AZURE_STORAGE_CONNECTION_STRING", ""))
        for secret in filter(None, secrets):
            assert all(secret not in text for text in texts)


# --- configuration --------------------------------------------------------------------------


def test_cloud_modules_are_imported_lazily() -> None:
    code = (
        "import sys, jenkins_backup.storage.factory as f;"
        "f.open_storage('/tmp/x');"
        "bad=[m for m in ('obstore','google','boto3','botocore') if m in sys.modules];"
        "sys.exit(str(bad) if bad else 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    "location",
    ["s3://", "s3://bucket/a//b", "gs://b/../x", "ftp://host/x", "az://c?sig=abc"],
)
def test_bad_locations(location: str) -> None:
    with pytest.raises(UsageError) as info:
        open_storage(location, {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"})
    assert "sig=abc" not in str(info.value)


def test_s3_plain_http_needs_loopback_or_opt_in() -> None:
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "eu-west-1"}
    with pytest.raises(UsageError, match="AWS_ALLOW_HTTP"):
        open_storage("s3://b/p", {**env, "AWS_ENDPOINT_URL": "http://minio.example:9000"})
    st = open_storage(
        "s3://b/p",
        {**env, "AWS_ENDPOINT_URL": "http://minio.example:9000", "AWS_ALLOW_HTTP": "true"},
    )
    assert st.describe() == "s3://b/p (endpoint http://minio.example:9000)"
    assert open_storage("s3://b/p/q/", env).describe() == "s3://b/p/q"


def test_short_message_hides_tokens() -> None:
    exc = RuntimeError(
        "Error performing GET https://acct.blob.core.windows.net/c/k?sv=1&sig=SECRET1 - 403\n"
        "body with AccountKey=SECRET2;"
    )
    text = short_message(exc)
    assert "SECRET1" not in text and "SECRET2" not in text and "acct.blob" in text


def test_s3_wrong_secret_is_a_short_storage_error(s3_server: Server) -> None:
    env = {**s3_server.env, "AWS_SECRET_ACCESS_KEY": "wrong-secret-value-1234567890"}
    st = open_storage(s3_server.repo_url("bad-secret"), env)
    with pytest.raises(StorageError) as info:
        st.put("k", b"v")
    assert "wrong-secret-value" not in str(info.value)
    assert "\n" not in str(info.value) and len(str(info.value)) < 500


def test_s3_profile_through_botocore(s3_server: Server, tmp_path: Path) -> None:
    pytest.importorskip("botocore")
    creds = tmp_path / "credentials"
    creds.write_text(
        f"[jbtest]\naws_access_key_id = {s3_server.env['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {s3_server.env['AWS_SECRET_ACCESS_KEY']}\n"
    )
    env = {
        "AWS_PROFILE": "jbtest",
        "AWS_SHARED_CREDENTIALS_FILE": str(creds),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_server.env["AWS_ENDPOINT_URL"],
    }
    st = open_storage(s3_server.repo_url("profile"), env)
    assert st.put("k", b"via profile") is True
    assert st.get("k") == b"via profile"
    assert "profile jbtest" in st.describe()


class _CredentialServer:
    """Instance metadata (IMDSv1 only, as old kube2iam) and container credentials, on loopback."""

    def __init__(self, access_key: str, secret: str) -> None:
        body = json.dumps(
            {
                "Code": "Success",
                "AccessKeyId": access_key,
                "SecretAccessKey": secret,
                "Token": "",
                "Expiration": "2099-01-01T00:00:00Z",
            }
        ).encode()
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, code: int, data: bytes) -> None:
                hits.append(f"{self.command} {self.path}")
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:  # IMDSv2 token: refused, as by IMDSv1-only servers
                self._reply(403, b"")

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/latest/meta-data/iam/security-credentials":
                    self._reply(200, b"jb-role")
                elif self.path.endswith("/jb-role") or self.path == "/creds":
                    self._reply(200, body)
                else:
                    self._reply(404, b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("source", ["imds", "container"])
def test_s3_credentials_from_metadata(s3_server: Server, source: str, tmp_path: Path) -> None:
    server = _CredentialServer(
        s3_server.env["AWS_ACCESS_KEY_ID"], s3_server.env["AWS_SECRET_ACCESS_KEY"]
    )
    try:
        env = {"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_server.env["AWS_ENDPOINT_URL"]}
        if source == "imds":
            env |= {"AWS_METADATA_ENDPOINT": server.url, "AWS_IMDSV1_FALLBACK": "true"}
        else:  # EKS Pod Identity: a full URI and a token file
            token = tmp_path / "token"
            token.write_text("pod-identity-token")
            env |= {
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": server.url + "/creds",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token),
            }
        st = open_storage(s3_server.repo_url(source), env)
        assert st.put("k", source.encode()) is True
        assert st.get("k") == source.encode()
        assert server.hits
    finally:
        server.close()


def test_azure_account_key_form(azure_server: Server) -> None:
    from servers import AZURITE_ACCOUNT, AZURITE_KEY

    env = {
        "AZURE_STORAGE_ACCOUNT_NAME": AZURITE_ACCOUNT,
        "AZURE_STORAGE_ACCOUNT_KEY": AZURITE_KEY,
        "AZURE_STORAGE_ENDPOINT": f"{azure_server.endpoint}/{AZURITE_ACCOUNT}",
    }
    st = open_storage(azure_server.repo_url("key-form").replace("az://", "azure://"), env)
    assert st.put("k", b"v", create_only=True) is True
    assert st.get("k") == b"v"
    assert AZURITE_KEY not in st.describe()


# --- network faults (S3 through the fault proxy) ---------------------------------------------

FAST = TransferOptions(
    connect_timeout=1.0, request_timeout=2.0, max_retries=3, retry_timeout=6.0, part_size=8 * MiB
)


def _via(proxy: FaultProxy, server: Server, name: str) -> Storage:
    env = {**server.env, "AWS_ENDPOINT_URL": proxy.endpoint}
    return open_storage(server.repo_url(name), env, options=FAST)


def test_s3_retries_through_503(s3_server: Server) -> None:
    with FaultProxy(("127.0.0.1", s3_server.port), "http503", faults=3) as proxy:
        st = _via(proxy, s3_server, "retry-503")
        assert st.put("data/x", b"payload", create_only=True) is True
        assert st.get("data/x") == b"payload"
        assert proxy.faulted == 3


@pytest.mark.parametrize("create_only", [False, True])
def test_s3_retries_through_reset_mid_upload(s3_server: Server, create_only: bool) -> None:
    data = _blob(2 * MiB, seed=3)
    with FaultProxy(("127.0.0.1", s3_server.port), "reset", faults=2, after=256 * 1024) as proxy:
        st = _via(proxy, s3_server, "reset-up")
        assert st.put("data/y", data, create_only=create_only) is True
        assert proxy.faulted == 2
    direct = open_storage(st.describe().split(" ")[0], s3_server.env)
    assert direct.get("data/y") == data


def test_s3_retries_through_reset_mid_download(s3_server: Server) -> None:
    data = _blob(2 * MiB, seed=4)
    location = s3_server.repo_url("reset-down")
    open_storage(location, s3_server.env).put("data/z", data)
    with FaultProxy(
        ("127.0.0.1", s3_server.port), "reset", faults=1, after=300 * 1024, direction="down"
    ) as proxy:
        st = open_storage(
            location, {**s3_server.env, "AWS_ENDPOINT_URL": proxy.endpoint}, options=FAST
        )
        assert st.get("data/z") == data
        assert proxy.faulted == 1


# A stall only waits out the limits: the same three tries in a quarter of FAST's time.
STALL = replace(FAST, connect_timeout=0.25, request_timeout=0.5, retry_timeout=1.5)


@pytest.mark.parametrize("operation", ["put", "get", "list"])
def test_s3_stalled_endpoint_fails_within_bound(s3_server: Server, operation: str) -> None:
    with FaultProxy(("127.0.0.1", s3_server.port), "stall") as proxy:
        env = {**s3_server.env, "AWS_ENDPOINT_URL": proxy.endpoint}
        st = open_storage(s3_server.repo_url("stall"), env, options=STALL)
        start = time.monotonic()
        with pytest.raises(StorageError):
            if operation == "put":
                st.put("data/s", b"x" * 1000, create_only=True)
            elif operation == "get":
                st.get("data/s")
            else:
                list(st.list("data/"))
        elapsed = time.monotonic() - start
    # request timeout 0.5 s, retries for at most 1.5 s: well under this bound, never a hang.
    assert elapsed < 5, elapsed


def test_s3_dead_endpoint_fails_within_bound(s3_server: Server) -> None:
    with FaultProxy(("127.0.0.1", s3_server.port)) as proxy:
        endpoint = proxy.endpoint
    st = open_storage(
        s3_server.repo_url("dead"), {**s3_server.env, "AWS_ENDPOINT_URL": endpoint}, options=FAST
    )
    start = time.monotonic()
    with pytest.raises(StorageError) as info:
        st.get("data/anything")
    assert time.monotonic() - start < 20
    assert s3_server.env["AWS_SECRET_ACCESS_KEY"] not in str(info.value)


def test_s3_slow_but_alive_endpoint_succeeds(s3_server: Server) -> None:
    with FaultProxy(("127.0.0.1", s3_server.port), "delay", delay=0.05) as proxy:
        st = _via(proxy, s3_server, "slow")
        assert st.put("data/slow", b"abc" * 1000) is True
        assert st.get("data/slow") == b"abc" * 1000


def test_environment_is_not_read(monkeypatch: pytest.MonkeyPatch, s3_server: Server) -> None:
    """open_storage uses the mapping it is given; endpoint variables in os.environ are ignored."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    st = open_storage(s3_server.repo_url("env"), s3_server.env)
    assert st.put("k", b"v") is True
    assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
