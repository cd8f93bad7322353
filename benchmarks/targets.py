"""The speed targets: every anchor of the ratio table measured in one run, on the same trees.

    python benchmarks/run.py --targets --many-home /work/bench/many --s3 --out docs/benchmarks.md

Two homes: the medium one (generated per run, about 30 s, unless ``--medium-home``) and the
many-files one (``tools/homegen.py --size many-files --seed 1``: about 1.08M files; generating
it takes about 5 minutes, so pass ``--many-home`` to reuse one). A home passed in is only read:
the steps that write into a home (a restore over the identical home, new builds) run on an
overlay mounted over it, whose files keep their inode numbers and times. Caches stay warm (the
page cache is not dropped): the targets compare our walk and writes with the kernel's, not with
the disk. Each target is a ratio of two rows of this run, marked met or not met.

Cases (``--only``, comma-separated): see CASES. A case measures what its targets need and
prepares, untimed, what it depends on (a first backup, an archive to extract).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import homegen
from measure import Measurement, run
from tools import JenkinsBackup, Restic, TarZstd, Tool

MIB = 2**20
ToolT = TypeVar("ToolT", bound=Tool)
FIND = "find jobs -printf '%s %T@ %C@ %i\\n' >/dev/null"
PRUNE_WORKSPACES = ("-type", "d", "-name", "workspace*", "-prune", "-o")
CASES = (
    "medium-first",
    "medium-restore",
    "medium-restore-s3",
    "medium-restore-identical",
    "many-files-first",
    "many-files-unchanged",
    "many-files-second",
    "many-files-restore",
    "many-files-restore-identical",
)


@dataclass(frozen=True)
class Target:
    """``rows[step, tool] / rows[base_step, base_tool]`` at most ``limit``; optional RSS cap."""

    case: str
    text: str
    step: str
    tool: str
    base_step: str
    base_tool: str
    limit: float
    rss_mib: float | None = None


J, R, T = "jenkins-backup", "restic", "tar --zstd"
TARGETS = (
    Target(
        "many-files-unchanged",
        "unchanged backup of the many-files home: at most 1.5x the find walk, RSS 250 MiB",
        "many: unchanged backup",
        J,
        "many: find walk",
        "find",
        1.5,
        250,
    ),
    Target(
        "many-files-second",
        "backup after new builds in 5% of the jobs: at most 1.3x the unchanged one",
        "many (overlay): backup after new builds",
        J,
        "many (overlay): unchanged backup",
        J,
        1.3,
    ),
    Target(
        "medium-first",
        "first backup of the medium home: at most 1.0x tar --zstd",
        "medium: first backup",
        J + " (history)",
        "medium: first backup",
        T,
        1.0,
    ),
    Target(
        "many-files-first",
        "first backup of the many-files home: at most 0.7x restic, RSS 300 MiB",
        "many: first backup",
        J,
        "many: first backup",
        R,
        0.7,
        300,
    ),
    Target(
        "many-files-restore",
        "restore of the many-files home into an empty directory: at most 1.0x tar --zstd -x, "
        "RSS 300 MiB",
        "many: restore into an empty directory",
        J,
        "many: restore into an empty directory",
        T,
        1.0,
        300,
    ),
    Target(
        "medium-restore",
        "restore of the medium home into an empty directory: at most 1.0x tar --zstd -x",
        "medium: restore into an empty directory",
        J + " (history)",
        "medium: restore into an empty directory",
        T,
        1.0,
    ),
    Target(
        "medium-restore-s3",
        "restore of the medium home from S3 (SeaweedFS): at most 1.0x restic restore",
        "medium: restore from S3",
        J + " S3",
        "medium: restore from S3",
        R + " S3",
        1.0,
    ),
    Target(
        "medium-restore-identical",
        "restore over the identical medium home: at most 1.5x the find walk of that home",
        "medium (overlay): restore over the identical home",
        J + " (history)",
        "medium (overlay): find walk",
        "find",
        1.5,
    ),
    Target(
        "many-files-restore-identical",
        "restore over the identical many-files home: at most 1.5x the find walk of that home",
        "many (overlay): restore over the identical home",
        J,
        "many (overlay): find walk",
        "find",
        1.5,
    ),
)


@dataclass
class Rows:
    """Measured rows, written to JSON after every step (a long run that dies keeps its rows)."""

    path: Path
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, step: str, tool: str, m: Measurement | None, status: str = "ok") -> None:
        row: dict[str, Any] = {"step": step, "tool": tool, "load": round(os.getloadavg()[0], 2)}
        if m is not None:
            row.update(wall_s=round(m.wall_s, 2), cpu_s=round(m.cpu_s, 2))
            row.update(rss_mib=round(m.rss_mib, 1))
            if not m.ok:
                status = f"exit {m.returncode}: {m.error}"
        row["status"] = status
        self.rows.append(row)
        shown = f"{m.wall_s:8.2f} s  cpu {m.cpu_s:8.2f} s  rss {m.rss_mib:7.1f} MiB" if m else ""
        say(f"{step:52} {tool:26} {shown}  load {row['load']}  {status}")
        self.path.write_text(json.dumps(self.rows, indent=1) + "\n")

    def get(self, step: str, tool: str) -> dict[str, Any] | None:
        for r in self.rows:
            if r["step"] == step and r["tool"] == tool and r["status"] == "ok":
                return r
        return None


class Home:
    """A tree, read only; ``scratch()`` gives a writable view of it (an overlay mount)."""

    def __init__(self, name: str, path: Path, work: Path, stack: ExitStack) -> None:
        self.name = name
        self.path = path
        self.work = work
        self.stack = stack
        self._scratch: Path | None = None
        self.scratch_error = ""

    def scratch(self) -> Path | None:
        if self._scratch is not None or self.scratch_error:
            return self._scratch
        base = self.work / f"{self.name}-overlay"
        subprocess.run(["umount", str(base / "merged")], capture_output=True, check=False)
        remove(base)  # a reused work directory starts from the identical home again
        upper, lower_work, merged = base / "upper", base / "work", base / "merged"
        for d in (upper, lower_work, merged):
            d.mkdir(parents=True, exist_ok=True)
        opts = f"lowerdir={self.path},upperdir={upper},workdir={lower_work}"
        done = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            self.scratch_error = f"overlay mount failed: {done.stderr.strip()[:120]}"
            return None
        self.stack.callback(subprocess.run, ["umount", str(merged)], check=False)
        self._scratch = merged
        return merged


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def remove(path: Path) -> None:
    """``rm -rf``: a million files go faster than with shutil.rmtree."""
    if path.exists():
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)


def count_files(jobs: Path) -> tuple[int, int]:
    """(regular files, bytes) below ``jobs``, workspaces left out (what both scopes hold,
    except the top-level config.xml files scope history leaves out)."""
    out = subprocess.run(
        ["find", str(jobs), *PRUNE_WORKSPACES, "-type", "f", "-printf", "%s\\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return len(out), sum(int(x) for x in out)


def best(repeat: int, fn: Callable[[], Measurement]) -> Measurement:
    """The fastest of ``repeat`` runs (load only ever adds time)."""
    runs = [fn() for _ in range(max(1, repeat))]
    ok = [m for m in runs if m.ok]
    return min(ok, key=lambda m: m.wall_s) if ok else runs[-1]


def find_walk(home: Path, timeout: float) -> Measurement:
    return run(["sh", "-c", FIND], cwd=home, timeout=timeout)


class Plan:
    """The cases selected, run in an order that shares their preparations."""

    def __init__(self, args: argparse.Namespace, work: Path, stack: ExitStack) -> None:
        self.args = args
        self.work = work
        self.stack = stack
        self.only = set(args.only.split(",")) if args.only else set(CASES)
        unknown = self.only - set(CASES)
        if unknown:
            raise SystemExit(f"unknown case(s): {', '.join(sorted(unknown))}; known: {CASES}")
        self.rows = Rows(work / "rows.json")
        self.meta: dict[str, Any] = {}

    def wants(self, *cases: str) -> bool:
        return any(c in self.only for c in cases)

    def _tool(self, tool: ToolT) -> ToolT:
        tool.timeout = self.args.timeout
        return tool

    def _tar(self, name: str, home: Path) -> TarZstd:
        tar = TarZstd(home, self.work)
        tar.out = self.work / f"{name}-tar"
        tar.timeout = self.args.timeout
        return tar

    # -- the many-files home ---------------------------------------------------------------

    def many(self) -> None:
        if not self.wants(*(c for c in CASES if c.startswith("many-files"))):
            return
        path = self.args.many_home
        if path is None:
            path = self.work / "many"
            if not (path / "jobs").is_dir():
                say(f"generating the many-files home in {path} (about 5 minutes)")
                gen = homegen.generate(path, size="many-files", seed=self.args.seed)
                self.meta["many_generated_s"] = gen.seconds
        home = Home("many", path.resolve(), self.work, self.stack)
        self.meta["many_home"] = str(home.path)
        rows, a = self.rows, self.args
        jb = self._tool(JenkinsBackup(J, home.path, self.work, str(self.work / "jb-many")))
        say("many-files home: find walk (also warms the page cache)")
        find_walk(home.path, a.timeout)
        rows.add("many: find walk", "find", best(a.repeat, lambda: find_walk(home.path, a.timeout)))
        has_backup = (self.work / "jb-many" / "snapshots").is_dir() and a.reuse
        if self.wants("many-files-first") or not has_backup:
            remove(self.work / "jb-many")
            step = "many: first backup"
            rows.add(step, J, jb.backup(1), "ok" if self.wants("many-files-first") else "setup")
        if self.wants("many-files-first"):
            restic = self._tool(Restic(R, home.path, self.work, str(self.work / "restic-many")))
            if restic.missing:
                rows.add("many: first backup", R, None, restic.missing)
            else:
                remove(self.work / "restic-many")
                restic.setup()
                rows.add("many: first backup", R, restic.backup(1))
        if self.wants("many-files-unchanged", "many-files-second"):
            rows.add("many: unchanged backup", J, best(a.repeat, lambda: jb.backup(2)))
        if self.wants("many-files-restore"):
            self._restore_empty("many", home.path, jb, 1, "jobs")
        if self.wants("many-files-restore-identical", "many-files-second"):
            self._on_overlay("many", home, jb)

    # -- the medium home -------------------------------------------------------------------

    def medium(self) -> None:
        if not self.wants(*(c for c in CASES if c.startswith("medium"))):
            return
        path = self.args.medium_home
        if path is None:
            path = self.work / "medium"
            if not (path / "jobs").is_dir():
                say(f"generating the medium home in {path}")
                gen = homegen.generate(path, size="medium", seed=self.args.seed)
                self.meta["medium_generated_s"] = gen.seconds
        home = Home("medium", path.resolve(), self.work, self.stack)
        self.meta["medium_home"] = str(home.path)
        rows, a = self.rows, self.args
        find_walk(home.path, a.timeout)  # warms the page cache
        hist = self._tool(
            JenkinsBackup(
                J + " (history)",
                home.path,
                self.work,
                str(self.work / "jb-medium"),
                scope="history",
            )
        )
        remove(self.work / "jb-medium")
        first = "ok" if self.wants("medium-first") else "setup"
        rows.add("medium: first backup", hist.name, hist.backup(1), first)
        if self.wants("medium-first"):
            tar = self._tar("medium", home.path)
            if tar.missing:
                rows.add("medium: first backup", T, None, tar.missing)
            else:
                tar.setup()
                rows.add("medium: first backup", T, tar.backup(1))
        if self.wants("medium-restore"):
            self._restore_empty("medium", home.path, hist, 1, "history")
        if self.wants("medium-restore-identical"):
            self._on_overlay("medium", home, hist)
        if self.wants("medium-restore-s3"):
            self._s3(home.path)

    def _s3(self, home: Path) -> None:
        from seaweed import BUCKET, SeaweedS3

        step = "medium: restore from S3"
        try:
            s3 = self.stack.enter_context(SeaweedS3(self.work / "seaweed", self.args.s3_port))
        except RuntimeError as exc:
            self.rows.add(step, J + " S3", None, f"skipped: {exc}")
            return
        jb = self._tool(JenkinsBackup(J + " S3", home, self.work, f"s3://{BUCKET}/jb", env=s3.env))
        restic = self._tool(
            Restic(R + " S3", home, self.work, f"s3:{s3.endpoint}/{BUCKET}/restic", env=s3.env)
        )
        self.rows.add("medium: first backup to S3", jb.name, jb.backup(1), "setup")
        for tool in (jb, restic):
            if tool.missing:
                self.rows.add(step, tool.name, None, tool.missing)
                continue
            if tool is restic:
                restic.setup()
                self.rows.add("medium: first backup to S3", tool.name, tool.backup(1), "setup")
            target = self.work / f"restore-{tool.slug}"
            remove(target)
            target.mkdir(parents=True)
            self.rows.add(step, tool.name, tool.restore(1, target))
            remove(target)

    # -- shared steps ------------------------------------------------------------------------

    def _restore_empty(self, name: str, home: Path, jb: Tool, number: int, scope: str) -> None:
        step = f"{name}: restore into an empty directory"
        tar = self._tar(name, home)
        expected = count_files(home / "jobs")
        if scope == "history":  # the top-level config.xml files are not in scope history
            configs = list((home / "jobs").glob("*/config.xml"))
            expected = (
                expected[0] - len(configs),
                expected[1] - sum(p.stat().st_size for p in configs),
            )
        for tool in (jb, tar):
            if tool.missing:
                self.rows.add(step, tool.name, None, tool.missing)
                continue
            if tool is tar and not (tar.out / f"{number}.tar.zst").exists():
                tar.setup()
                say(f"{name}: writing the tar --zstd archive to extract (untimed)")
                tar.backup(number)
            target = self.work / f"restore-{name}-{tool.slug}"
            remove(target)
            target.mkdir(parents=True)
            m = tool.restore(number, target)
            status = "ok"
            if m.ok:
                got = count_files(target / "jobs")
                if got != expected:
                    status = f"restored {got[0]} files/{got[1]} B, expected {expected}"
            self.rows.add(step, tool.name, m, status)
            remove(target)

    def _on_overlay(self, name: str, home: Home, jb: JenkinsBackup) -> None:
        """Restore over the identical home, then new builds and the backup after them, on an
        overlay: the home itself is never written."""
        merged = home.scratch()
        a = self.args
        if merged is None:
            for step in ("restore over the identical home", "backup after new builds"):
                self.rows.add(f"{name} (overlay): {step}", jb.name, None, home.scratch_error)
            return
        over = self._tool(JenkinsBackup(jb.name, merged, self.work, jb.repository, scope=jb.scope))
        find_walk(merged, a.timeout)
        self.rows.add(
            f"{name} (overlay): find walk",
            "find",
            best(a.repeat, lambda: find_walk(merged, a.timeout)),
        )
        if self.wants(f"{name}-files-restore-identical", f"{name}-restore-identical"):
            # The newest backup was taken of this very tree: what the operator's pod start sees.
            self.rows.add(
                f"{name} (overlay): restore over the identical home",
                jb.name,
                best(a.repeat, lambda: over.restore(1, merged)),
            )
        if name == "many" and self.wants("many-files-second"):
            self.rows.add("many (overlay): unchanged backup", jb.name, over.backup(3))
            changed = homegen.add_builds(merged, a.fraction, seed=a.seed + 1)
            self.meta["changed"] = asdict(changed)
            self.rows.add("many (overlay): backup after new builds", jb.name, over.backup(4))


def ratio_lines(rows: Rows, only: set[str]) -> list[str]:
    lines = [
        "| target | measured | anchor | ratio | limit | CPU ratio | peak RSS MiB | result |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for t in TARGETS:
        if t.case not in only:
            continue
        mine, base = rows.get(t.step, t.tool), rows.get(t.base_step, t.base_tool)
        if mine is None or base is None or not base["wall_s"]:
            lines.append(f"| {t.text} | {t.tool} | {t.base_tool} | n/a | {t.limit} | | | n/a |")
            continue
        ratio = mine["wall_s"] / base["wall_s"]
        cpu = f"{mine['cpu_s'] / base['cpu_s']:.2f}" if base["cpu_s"] else "n/a"
        ok = ratio <= t.limit and (t.rss_mib is None or mine["rss_mib"] <= t.rss_mib)
        rss = f"{mine['rss_mib']:.0f}" + (f" (max {t.rss_mib:.0f})" if t.rss_mib else "")
        lines.append(
            f"| {t.text} | {t.tool} {mine['wall_s']:.2f} s | {t.base_tool} "
            f"{base['wall_s']:.2f} s | {ratio:.2f} | {t.limit} | {cpu} | {rss} | "
            f"{'met' if ok else '**not met**'} |"
        )
    return lines


BEGIN, END = "<!-- targets: begin -->", "<!-- targets: end -->"


def write_section(out: Path, meta: dict[str, Any], rows: Rows, only: set[str]) -> None:
    """Replace the targets section of ``out`` (or put one at its top), keeping the rest."""
    max_load = max((float(r["load"]) for r in rows.rows), default=0.0)
    body = [
        BEGIN,
        "## Speed targets (issue 15)",
        "",
        f"Produced by `{meta['command']}` on {meta['date']} in {meta['minutes']:.0f} minutes; "
        f"{meta['machine']}; caches warm. Each ratio is a wall time of this run divided by its "
        f"anchor's, on the same tree (the CPU ratio, user+sys, is less sensitive to load); "
        f"the 1-minute load average reached {max_load:.1f} (wall times are inflated above "
        "the CPU count's worth of load).",
        "",
        *ratio_lines(rows, only),
        "",
        "| step | tool | wall s | CPU s | peak RSS MiB | load | status |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
        *(
            f"| {r['step']} | {r['tool']} | {r.get('wall_s', '')} | {r.get('cpu_s', '')} | "
            f"{r.get('rss_mib', '')} | {r['load']} | {r['status']} |"
            for r in rows.rows
        ),
        "",
        END,
    ]
    text = out.read_text() if out.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + "\n".join(body) + rest.split(END, 1)[1]
    else:
        title, _, rest = text.partition("\n")
        text = title + "\n\n" + "\n".join(body) + "\n" + rest
    out.write_text(text)


@contextlib.contextmanager
def work_dir(path: Path, reuse: bool) -> Iterator[Path]:
    path = path.resolve()
    if not reuse:
        remove(path)
    path.mkdir(parents=True, exist_ok=True)
    yield path


def main(args: argparse.Namespace, machine: str, command: str) -> int:
    started = time.monotonic()
    with work_dir(args.work, args.reuse) as work, ExitStack() as stack:
        plan = Plan(args, work, stack)
        plan.many()
        plan.medium()
        meta = {
            **plan.meta,
            "command": command,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": machine,
            "minutes": (time.monotonic() - started) / 60,
        }
        (work / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_name("benchmarks-targets.json").write_text(
            json.dumps({"meta": meta, "rows": plan.rows.rows}, indent=1) + "\n"
        )
        write_section(args.out, meta, plan.rows, plan.only)
        say(f"wrote {args.out} ({meta['minutes']:.1f} minutes)")
    if not args.keep and not args.reuse:
        shutil.rmtree(work, ignore_errors=True)
    return 0
