"""S3 client comparison against SeaweedFS on loopback: obstore vs boto3 (and our backend).

    python benchmarks/storage_clients.py [--small 3000] [--big 8]

Starts a SeaweedFS (tests/servers.py), then runs each client in its own process, so that CPU
time and peak RSS belong to that client alone, and prints a markdown table:
PUT/s and GET/s for 4 KiB objects with 16 threads, MB/s for 16 MiB objects (4 threads),
keys/s for listing, client CPU seconds, peak RSS. Figures are recorded in docs/storage.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent / "src")]

SMALL = 4096
BIG = 16 * 1024 * 1024
THREADS = 16


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    cpu, start = _cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - start, _cpu() - cpu


class Client:
    def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def get(self, key: str) -> bytes:
        raise NotImplementedError

    def list(self, prefix: str) -> int:
        raise NotImplementedError


class Boto3Client(Client):
    def __init__(self, bucket: str, root: str, env: dict[str, str]) -> None:
        import boto3
        from botocore.config import Config

        self.bucket, self.root = bucket, root
        self.s3: Any = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
            config=Config(max_pool_connections=32, s3={"addressing_style": "path"}),
        )
        from boto3.s3.transfer import TransferConfig

        self.transfer = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20)

    def put(self, key: str, data: bytes) -> None:
        if len(data) > 8 << 20:
            import io

            self.s3.upload_fileobj(
                io.BytesIO(data), self.bucket, self.root + key, Config=self.transfer
            )
        else:
            self.s3.put_object(Bucket=self.bucket, Key=self.root + key, Body=data)

    def get(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=self.bucket, Key=self.root + key)["Body"].read()
        return body

    def list(self, prefix: str) -> int:
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.root + prefix
        )
        return sum(len(p.get("Contents", [])) for p in pages)


class ObstoreClient(Client):
    def __init__(self, bucket: str, root: str, env: dict[str, str]) -> None:
        import obstore
        from obstore.store import S3Store

        self.obs = obstore
        self.store = S3Store(
            bucket,
            prefix=root.rstrip("/"),
            endpoint=env["AWS_ENDPOINT_URL"],
            access_key_id=env["AWS_ACCESS_KEY_ID"],
            secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region="us-east-1",
            client_options={"allow_http": True},
        )

    def put(self, key: str, data: bytes) -> None:
        self.obs.put(self.store, key, data, chunk_size=8 << 20, max_concurrency=4)

    def get(self, key: str) -> bytes:
        return bytes(self.obs.get(self.store, key).bytes())

    def list(self, prefix: str) -> int:
        return sum(len(batch) for batch in self.obs.list(self.store, prefix=prefix.rstrip("/")))


class BackendClient(Client):
    """Our S3Storage: obstore plus create-only semantics, error mapping and retries."""

    def __init__(self, bucket: str, root: str, env: dict[str, str]) -> None:
        from jenkins_backup.storage.factory import open_storage

        self.st = open_storage(f"s3://{bucket}/{root}", env)

    def put(self, key: str, data: bytes) -> None:
        self.st.put(key, data, create_only=True)

    def get(self, key: str) -> bytes:
        return self.st.get(key)

    def list(self, prefix: str) -> int:
        return sum(1 for _ in self.st.list(prefix))


CLIENTS: dict[str, type[Client]] = {
    "obstore": ObstoreClient,
    "jenkins-backup S3Storage": BackendClient,
    "boto3": Boto3Client,
}


def run_one(name: str, env: dict[str, str], small: int, big: int) -> dict[str, float]:
    """Runs in a child process: one client, fresh prefix, every phase."""
    client = CLIENTS[name]("jb-test", f"bench-{uuid.uuid4().hex[:8]}/", env)
    out: dict[str, float] = {}
    payload = os.urandom(SMALL)
    keys = [f"small/{i:06d}" for i in range(small)]
    client.put("warmup", payload)
    with ThreadPoolExecutor(THREADS) as pool:
        wall, cpu = _timed(lambda: list(pool.map(lambda k: client.put(k, payload), keys)))
        out["small_put_per_s"], out["small_put_cpu_ms_per_1000"] = small / wall, cpu / small * 1e6
        wall, cpu = _timed(lambda: list(pool.map(client.get, keys)))
        out["small_get_per_s"] = small / wall
    wall, _ = _timed(lambda: client.list("small/"))
    out["list_keys_per_s"] = small / wall
    data = os.urandom(BIG)
    bigkeys = [f"big/{i:03d}" for i in range(big)]
    with ThreadPoolExecutor(4) as pool:
        wall, cpu = _timed(lambda: list(pool.map(lambda k: client.put(k, data), bigkeys)))
        out["big_put_mb_s"], out["big_put_cpu_s"] = big * BIG / wall / 1e6, cpu
        wall, cpu = _timed(lambda: list(pool.map(client.get, bigkeys)))
        out["big_get_mb_s"] = big * BIG / wall / 1e6
    out["cpu_s_total"] = _cpu()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=3000, help="number of 4 KiB objects")
    parser.add_argument("--big", type=int, default=8, help="number of 16 MiB objects")
    parser.add_argument("--rounds", type=int, default=2, help="report the last of N rounds")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        env = json.loads(os.environ["BENCH_ENV"])
        print(json.dumps(run_one(args.child, env, args.small, args.big)))
        return

    from servers import SeaweedFS_S3

    with tempfile.TemporaryDirectory() as tmp, SeaweedFS_S3() as server:
        server.start(Path(tmp))
        results = {}
        # The first round warms the server (volume growth, caches); the last one is reported.
        for name in [*CLIENTS] * args.rounds:
            proc = subprocess.run(
                [sys.executable, __file__, "--child", name, f"--small={args.small}",
                 f"--big={args.big}"],
                env={**os.environ, "BENCH_ENV": json.dumps(server.env)},
                capture_output=True, text=True, timeout=900, check=False,
            )  # fmt: skip
            if proc.returncode:
                print(f"{name} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])

    rows = [
        ("4 KiB PUT/s (16 threads)", "small_put_per_s", "{:.0f}"),
        ("4 KiB GET/s (16 threads)", "small_get_per_s", "{:.0f}"),
        ("client CPU ms per 1000 small PUTs", "small_put_cpu_ms_per_1000", "{:.0f}"),
        ("16 MiB PUT MB/s (4 threads)", "big_put_mb_s", "{:.0f}"),
        ("16 MiB GET MB/s (4 threads)", "big_get_mb_s", "{:.0f}"),
        ("list keys/s", "list_keys_per_s", "{:.0f}"),
        ("client CPU s, whole run", "cpu_s_total", "{:.1f}"),
        ("peak RSS MB", "peak_rss_mb", "{:.0f}"),
    ]
    names = list(results)
    cpus = os.cpu_count()
    print(f"SeaweedFS on 127.0.0.1, {args.small} x 4 KiB, {args.big} x 16 MiB, {cpus} CPUs\n")
    print("| measure | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for label, key, fmt in rows:
        print(f"| {label} | " + " | ".join(fmt.format(results[n][key]) for n in names) + " |")


if __name__ == "__main__":
    main()
