"""Markdown table, ratios, target check and PNG chart from the benchmark's rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

STEPS = ("first backup", "second backup", "unchanged", "restore")
OURS = "jenkins-backup"
ANCHORS = ("tar -czf", "tar --zstd", "restic")
MIB = 2**20

Rows = list[dict[str, Any]]


def _get(rows: Rows, step: str, tool: str, key: str = "wall_s") -> float | None:
    for r in rows:
        if r["step"] == step and r["tool"] == tool and r["status"] == "ok":
            value = r[key]
            return float(value) if value is not None else None
    return None


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or not b else f"{a / b:.3g}"


def _stored_after(rows: Rows, tool: str) -> float | None:
    return _get(rows, "unchanged", tool, "stored")


def _counterpart(rows: Rows, ours: str, anchor: str) -> str:
    """Our row to compare with ``anchor``: the scope-history row against the PVC image."""
    history = f"{ours} (history)"
    if anchor == "tar --zstd" and any(r["tool"] == history for r in rows):
        return history
    return ours


def results_table(rows: Rows) -> list[str]:
    out = [
        "| step | tool | scope | wall s | CPU s | peak RSS MiB | stored MiB | load | status |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        stored = "" if r["stored"] is None else f"{r['stored'] / MIB:.1f}"
        out.append(
            f"| {r['step']} | {r['tool']} | {r['scope']} | {_fmt(r['wall_s'])} | "
            f"{_fmt(r['cpu_s'])} | {_fmt(r['rss_mib'], 1)} | {stored} | "
            f"{_fmt(r.get('load'), 1)} | {r['status']} |"
        )
    return out


def ratio_table(rows: Rows, ours: str, anchors: tuple[str, ...]) -> list[str]:
    out = [
        f"| step ({ours} / anchor) | " + " | ".join(anchors) + " |",
        "| --- |" + " ---: |" * len(anchors),
    ]
    mine = {a: _counterpart(rows, ours, a) for a in anchors}
    for step in STEPS:
        for key, label in (("wall_s", "wall"), ("cpu_s", "CPU")):
            cells = [
                _ratio(_get(rows, step, mine[a], key), _get(rows, step, a, key)) for a in anchors
            ]
            out.append(f"| {step}, {label} | " + " | ".join(cells) + " |")
    cells = [_ratio(_stored_after(rows, mine[a]), _stored_after(rows, a)) for a in anchors]
    out.append("| stored bytes after 3 backups | " + " | ".join(cells) + " |")
    return out


def targets(rows: Rows, meta: dict[str, Any]) -> list[str]:
    """The issue's targets, each checked against this run."""

    def w(step: str, tool: str) -> float | None:
        return _get(rows, step, tool)

    def check(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "**not met**")

    def lt(a: float | None, *bs: float | None) -> bool | None:
        if a is None or any(b is None for b in bs):
            return None
        return all(a < b for b in bs if b is not None)

    pvc = _counterpart(rows, OURS, "tar --zstd")
    first = (w("first backup", OURS), w("first backup", "restic"), w("first backup", "tar --zstd"))
    second = (
        w("second backup", OURS),
        w("second backup", "tar -czf"),
        w("second backup", "restic"),
    )
    unchanged = w("unchanged", OURS)
    restore = (w("restore", OURS), w("restore", "tar --zstd"), w("restore", "restic"))
    if pvc != OURS:  # the same data as the PVC image reads
        first_pvc, restore_pvc = w("first backup", pvc), w("restore", pvc)
        first_ok = (
            None
            if None in (first_pvc, first[0])
            else (lt(first[0], first[1]) and lt(first_pvc, first[2]))
        )
        restore_ok = (
            None
            if None in (restore_pvc, restore[0])
            else (lt(restore[0], restore[2]) and lt(restore_pvc, restore[1]))
        )
    else:
        first_ok, restore_ok = lt(*first), lt(*restore)
    stored = (_stored_after(rows, OURS), _stored_after(rows, "restic"))
    rss = [r["rss_mib"] for r in rows if r["tool"].startswith(OURS) and r["rss_mib"] is not None]
    peak = max(rss) if rss else None
    tgz = second[1] / 20 if second[1] is not None else None
    stored_ok = None if stored[0] is None or stored[1] is None else stored[0] <= stored[1]
    lines = [
        "| target | measured (s, MiB) | result |",
        "| --- | --- | --- |",
        f"| first backup faster than restic and tar --zstd | {_fmt(first[0])} vs "
        f"{_fmt(first[1])} / {_fmt(first[2])} | {check(first_ok)} |",
        f"| second backup at most 1/20 of tar -czf, faster than restic | {_fmt(second[0])}"
        f" vs {_fmt(tgz)} / {_fmt(second[2])} | {check(lt(second[0], tgz, second[2]))} |",
        f"| unchanged home under 2 s | {_fmt(unchanged)} | {check(lt(unchanged, 2.0))} |",
        f"| restore faster than tar --zstd -x and restic restore | {_fmt(restore[0])} vs "
        f"{_fmt(restore[1])} / {_fmt(restore[2])} | {check(restore_ok)} |",
        f"| stored bytes no more than restic's | "
        f"{_fmt(None if stored[0] is None else stored[0] / MIB, 1)} vs "
        f"{_fmt(None if stored[1] is None else stored[1] / MIB, 1)} | "
        f"{check(stored_ok)} |",
    ]
    if meta["size"] == "many-files":
        lines.append(
            f"| peak memory under 500 MB on the 1M-file tree | {_fmt(peak, 1)} | "
            f"{check(None if peak is None else peak * MIB < 500e6)} |"
        )
    else:
        lines.append(
            f"| peak memory under 500 MB on the 1M-file tree | {_fmt(peak, 1)} on "
            f"this tree | n/a (run --size many-files) |"
        )
    return lines


def chart(path: Path, rows: Rows, title: str) -> bool:
    """Wall time per step and stored bytes, one bar per tool; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    tools = list(dict.fromkeys(r["tool"] for r in rows))
    fig, axes = plt.subplots(1, 5, figsize=(20, 4.8))
    colors = [f"C{i}" for i in range(len(tools))]
    panels = [(step, "wall_s", "seconds") for step in STEPS] + [("unchanged", "stored", "MiB")]
    for ax, (step, key, unit) in zip(axes, panels, strict=True):
        values = []
        for t in tools:
            v = _get(rows, step, t, key)
            values.append(0.0 if v is None else (v / MIB if key == "stored" else v))
        ax.bar(range(len(tools)), values, color=colors)
        ax.set_xticks(range(len(tools)), tools, rotation=35, ha="right", fontsize=8)
        ax.set_title("stored after 3 backups" if key == "stored" else step)
        ax.set_ylabel(unit)
        for i, v in enumerate(values):
            ax.annotate(f"{v:.3g}" if v else "n/a", (i, v), ha="center", va="bottom", fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def write_report(out: Path, meta: dict[str, Any], rows: Rows) -> None:
    tree, changed = meta["tree"], meta["changed"] or {}
    max_load = max((float(r.get("load") or 0.0) for r in rows), default=0.0)
    png = out.with_suffix(".png")
    has_chart = chart(
        png, rows, f"{meta['size']} tree: {tree['files']} files, {tree['bytes'] / MIB:.0f} MiB"
    )
    s3 = [t for t in ("jenkins-backup S3", "restic S3") if any(r["tool"] == t for r in rows)]
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{meta['command']}` on {meta['date']}; {meta['machine']}. "
        "Every row is one process tree timed by `wait4`: wall time, CPU time (user+sys of the "
        "process and the children it reaped: gzip, zstd), peak RSS of the largest single "
        "process.",
        "",
        f"Tree: `tools/homegen.py --size {meta['size']} --seed {meta['seed']}`: "
        f"{tree['files']} files, {tree['symlinks']} symlinks, {tree['bytes'] / MIB:.0f} MiB "
        f"({tree['jobs']} jobs, {tree['builds']} builds; generated in {tree['seconds']:.1f} s). "
        f"Scope `jobs` (jobs/ without workspaces): {meta['scope_jobs'][0]} files, "
        f"{meta['scope_jobs'][1] / MIB:.0f} MiB. Before the second backup, "
        f"{changed.get('builds', 0)} jobs ({meta['fraction']:.0%}) got a new build "
        f"({changed.get('files', 0)} files, {changed.get('bytes', 0) / MIB:.1f} MiB) and "
        f"{changed.get('removed_builds', 0)} old builds were discarded.",
        "",
        "Page cache dropped before every step: "
        + ("yes (`/proc/sys/vm/drop_caches`)." if meta["drop_caches"] else "no (not allowed)."),
        "Versions: " + "; ".join(dict.fromkeys(v for v in meta["versions"].values() if v)) + ".",
        "Load: the CPUs are shared with whatever else runs; the `load` column is the 1-minute "
        f"load average as each step started (up to {max_load:.1f} in this run): wall times above "
        f"the CPU count's worth of load are inflated, CPU times much less so.",
        "",
        "## Results",
        "",
        *results_table(rows),
        "",
        "## jenkins-backup relative to the anchors (below 1: jenkins-backup is faster/smaller)",
        "",
        *ratio_table(rows, OURS, ANCHORS),
        "",
    ]
    if s3:
        lines += [
            "S3 (SeaweedFS on loopback):",
            "",
            *ratio_table(rows, "jenkins-backup S3", ("restic S3",)),
            "",
        ]
    lines += ["## Targets (issue 6)", "", *targets(rows, meta), ""]
    if has_chart:
        lines += [f"![benchmark chart]({png.name})", ""]
    lines += [
        "## Notes",
        "",
        "- Steps: backup 1 of the fresh tree; backup 2 after new builds; backup 3 of the "
        "unchanged home; restore of backup 3 into an empty directory, then a check that the "
        "restored files (count and bytes) match the scope.",
        "- `tar -czf` is the documented S3 example without its `aws s3 cp` upload; "
        "`tar --zstd` is the PVC image's command, which also leaves out the top-level "
        "`jobs/<job>/config.xml` (scope `history`), while jenkins-backup runs with scope "
        "`jobs` and backs those files up: slightly more data than `tar --zstd` reads. Both tar "
        "anchors write a full archive every time, so their stored bytes add up.",
        "- restic runs from JENKINS_HOME on `jobs` with `--compression auto`, "
        "`--exclude workspace --exclude 'workspace@*'`, its cache inside the work directory, "
        "and finds its parent snapshot by host and path, as jenkins-backup uses its previous "
        "backup.",
        "- Stored bytes: apparent size of the repository directory or archives (objects "
        "listed in the bucket for S3), after each backup.",
    ]
    out.write_text("\n".join(lines) + "\n")
