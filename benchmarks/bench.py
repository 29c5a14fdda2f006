#!/usr/bin/env python3
"""The benchmark suite: pynsbind side by side with crun, runc and bubblewrap.

    sudo .venv/bin/python benchmarks/bench.py [--quick] [--out DIR] [--density-max N]

One command, one run: it installs what it compares when it is missing (crun,
runc, bubblewrap, gcc and a static busybox, from Debian's packages, as root),
then runs every section for the same container profile, the contenders of each
interleaved in rounds:

- start: bench_spawn.py (the C floor, pynsbind.run, each OCI runtime, bwrap;
  one after another, and 1, 2 and 8 spawners at once);
- stop: from the stop request to the container reaped and its cgroup gone, for
  a sleep as PID 1 and for 50 processes;
- density: N idle containers kept alive at once (100, 1,000 and as many as the
  machine holds, capped): host memory per container, the time to start and to
  stop them all, what the caller holds per container;
- overhead: a CPU-bound and a system-call-heavy program in a container against
  the same on the host;
- exec into a running container; cgroup create/limit/attach/delete
  (bench_cgroup.py); ``import pynsbind`` (bench_import.py); the peak RSS of one
  run of each runtime; the cost of each namespace kind.

It prints a table per section (medians, min and max, ratios), writes DIR/results.json,
DIR/table.txt and, with matplotlib (``pip install -e '.[bench]'``), a PNG chart
per section.  Targets are reported, never asserted.  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/helpers.py
sys.path.insert(0, str(HERE))

from benchlib import (  # noqa: E402
    OCI_RUNTIMES,
    UNIFIED,
    Failed,
    OciRuntime,
    loadavg,
    quiet,
    runtime_dict,
)
from sections import SECTIONS, meminfo  # noqa: E402
from suite import PYNSBIND, Log, Suite  # noqa: E402

from tests.helpers import (  # noqa: E402
    find_busybox,
)

#: Debian packages of the tools compared: program -> package
PACKAGES = {
    "crun": "crun",
    "runc": "runc",
    "bwrap": "bubblewrap",
    "gcc": "gcc",
    "nsenter": "util-linux",
    "unshare": "util-linux",
}

# ---- install ---------------------------------------------------------------------------


def install(log: Log, allowed: bool) -> dict[str, Any]:
    """Install from Debian's packages what is missing (as root, with apt-get)."""
    missing = sorted({pkg for exe, pkg in PACKAGES.items() if shutil.which(exe) is None})
    if find_busybox() is None:
        missing.append("busybox-static")
    out: dict[str, Any] = {"missing": missing, "installed": [], "error": ""}
    if not missing:
        return out
    if not allowed:
        out["error"] = "--no-install"
    elif os.geteuid() != 0 or shutil.which("apt-get") is None:
        out["error"] = "not root, or no apt-get"
    else:
        log(f"installing {' '.join(missing)} (apt-get)")
        os.environ["DEBIAN_FRONTEND"] = "noninteractive"
        cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
        why = quiet(["apt-get", "update", "-qq"], timeout=600) or quiet(cmd, timeout=900)
        if why:
            out["error"] = why
        else:
            out["installed"] = missing
    if out["error"]:
        log(f"not installed: {' '.join(missing)} ({out['error']})")
    return out


# ---- targets, table, charts -------------------------------------------------------------


def row_of(section: dict[str, Any], group: str, name: str) -> dict[str, Any] | None:
    rows = section.get("groups", {}).get(group, {}).get("rows", [])
    return next((r for r in rows if r["name"] == name and r["available"]), None)


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The project's targets, each with the value it is judged on and whether it
    is met (None when a side did not run)."""
    out: list[dict[str, Any]] = []
    secs = res["sections"]

    def add(what: str, value: float | None, target: str, met: bool | None, note: str = "") -> None:
        out.append({"what": what, "value": value, "target": target, "met": met, "note": note})

    start = secs.get("start")
    if start:
        for t in start["targets"]:
            if t["what"] == "pynsbind.run / C floor":
                ok = None if t["ratio"] is None else t["ratio"] <= 1.3
                add(
                    "start: pynsbind.run / C floor",
                    t["ratio"],
                    "<= 1.3x",
                    ok,
                    "ratio of the medians",
                )
        # issue 10's: pynsbind-run within 2x of crun and at least 2x faster
        # than runc, for `run` and for create + start + delete
        rows = {r["name"]: r for r in start.get("rows", []) if r.get("available")}
        crun, runc = rows.get("crun run"), rows.get("runc run")
        for line in ("pynsbind-run run", "pynsbind-run create+start"):
            ours = rows.get(line)
            v = ours["median_ns"] / crun["median_ns"] if ours and crun else None
            add(f"OCI: {line} / crun run", v, "<= 2x", None if v is None else v <= 2.0)
            v = runc["median_ns"] / ours["median_ns"] if ours and runc else None
            add(f"OCI: runc run / {line}", v, ">= 2x", None if v is None else v >= 2.0)
    rss = secs.get("rss")
    if rss:
        ours, runc = row_of(rss, "peak RSS", "pynsbind-run"), row_of(rss, "peak RSS", "runc")
        v = ours["median_ns"] / runc["median_ns"] if ours and runc else None
        add(
            "OCI: peak RSS of pynsbind-run run / runc run",
            v,
            "<= 1x",
            None if v is None else v <= 1.0,
            "the median of the runs (the first, which keeps the plan, is the Python half's)",
        )
    stop = secs.get("stop")
    if stop:
        for g in stop["groups"]:
            ours, crun = row_of(stop, g, PYNSBIND), row_of(stop, g, "crun")
            v = ours["median_ns"] / crun["median_ns"] if ours and crun else None
            add(f"stop ({g}): pynsbind / crun", v, "<= 1x", None if v is None else v <= 1.0)
    dens = secs.get("density")
    if dens:
        lv = dens["levels"].get("1000") or next(iter(dens["levels"].values()), {})
        ours, crun = lv.get(PYNSBIND, {}), lv.get("crun", {})
        a, b = ours.get("host_bytes_per_container"), crun.get("host_bytes_per_container")
        # a drop in used memory (other work on the machine freed more) measures nothing
        v = a / b if a is not None and b is not None and a > 0 and b > 0 else None
        add(
            "density: host memory per container, pynsbind / crun",
            v,
            "<= 1x",
            None if v is None else v <= 1.0,
            "/proc/meminfo, at the 1000 level (or the first level run); noisy where other "
            "work runs on the machine",
        )
        a = ours.get("cgroup_bytes_per_container", {}).get("usage")
        b = crun.get("cgroup_bytes_per_container", {}).get("usage")
        v = a / b if a and b else None
        add(
            "density: memory charged to its cgroup per container, pynsbind / crun",
            v,
            "<= 1x",
            None if v is None else v <= 1.0,
            "the same level, from the containers' memory cgroups",
        )
        c = ours.get("caller_rss_bytes_per_container")
        add(
            "density: caller's RSS per pynsbind container",
            c,
            "< 64 KiB",
            None if c is None else c < 65536,
        )
        thousand = dens["levels"].get("1000", {}).get(PYNSBIND)
        ok = (
            None
            if thousand is None
            else thousand.get("containers") == 1000 and not thousand.get("error")
        )
        add(
            "density: 1,000 pynsbind containers at once without failure",
            None if thousand is None else thousand.get("containers"),
            "1000",
            ok,
        )
    return out


def fmt_value(unit: str, ns: float | None) -> str:
    if ns is None:
        return "-"
    if unit == "ms":
        return f"{ns / 1e6:.3f}"
    if unit == "us":
        return f"{ns / 1e3:.1f}"
    if unit == "KiB":
        return f"{ns / 1024:.0f}"
    return f"{ns:.3g}"


def format_section(name: str, sec: dict[str, Any]) -> list[str]:
    W = 44
    out = [f"== {name}: {sec.get('what', '')}"]
    if "skipped" in sec:
        return [*out, f"   skipped: {sec['skipped']}"]
    if name == "start":
        return [*out, sec["table"]]
    if name == "import":
        return [*out, sec["table"], f"   ({sec['install']})"]
    if name == "density":
        out.append(
            f"{'':{W - 10}}{'containers':>10} {'host KiB':>9} {'kernel':>7} {'cgroup':>7} "
            f"{'start s':>8} {'stop s':>7} {'caller':>7} {'fds':>5}"
        )
        out.append(
            f"{'per container':{W - 10}}{'':>10} {'':>9} {'KiB':>7} {'KiB':>7} "
            f"{'(all)':>8} {'(all)':>7} {'KiB':>7} {'':>5}"
        )
        for level, by in sec["levels"].items():
            out.append(f"  N = {level}")
            for who, r in by.items():
                if "skipped" in r:
                    out.append(f"    {who:{W - 14}} skipped: {r['skipped']}")
                    continue
                if "host_bytes_per_container" not in r:
                    out.append(f"    {who:{W - 14}} failed: {r.get('error')}")
                    continue
                kern = r["host_kernel_bytes_per_container"]
                kernel = kern["SUnreclaim"] + kern["KernelStack"] + kern["PageTables"]
                out.append(
                    f"    {who:{W - 14}}{r['containers']:>10} {r['host_bytes_per_container'] / 1024:>9.0f} "
                    f"{kernel / 1024:>7.0f} {r['cgroup_bytes_per_container']['usage'] / 1024:>7.0f} "
                    f"{r['start_all_ns'] / 1e9:>8.2f} {r['stop_all_ns'] / 1e9:>7.2f} "
                    f"{r['caller_rss_bytes_per_container'] / 1024:>7.1f} {r['caller_fds_per_container']:>5.1f}"
                    + (f"  ({r['error']})" if r.get("error") else "")
                )
        out.append(
            "  host KiB: used memory (free(1)) after minus before, per container; kernel: "
            "SUnreclaim + KernelStack + PageTables of that; cgroup: the containers' memory "
            "cgroups' usage (kernel objects made by the parent are charged elsewhere); "
            "caller: the benchmark process's RSS growth and open fds per container"
        )
        return out
    unit = sec["unit"]
    for gname, g in sec["groups"].items():
        out.append(
            f"{'  ' + gname + ' (' + unit + ')':{W}} {'median':>9} {'min':>9} {'max':>9} {'vs':>7}"
        )
        out.append(f"{'':{W}} {'':>9} {'':>9} {'':>9} {'base':>7}")
        for r in g["rows"]:
            label = f"    {r['name']}" + (" [base]" if r["name"] == sec["base"] else "")
            if not r["available"]:
                out.append(f"{label:{W}} skipped: {r['skipped']}")
                continue
            vs = "-" if r.get("vs_base") is None else f"{r['vs_base']:.2f}x"
            out.append(
                f"{label:{W}} {fmt_value(unit, r['median_ns']):>9} {fmt_value(unit, r['min_ns']):>9} "
                f"{fmt_value(unit, r['max_ns']):>9} {vs:>7}"
            )
    return out


def format_all(res: dict[str, Any]) -> str:
    m = res["machine"]
    out = [
        f"pynsbind benchmark suite{' (--quick)' if res['quick'] else ''}",
        f"machine: {m['cpus']} cpus, {m['memory_gib']:.1f} GiB, kernel {m['kernel']}, python "
        f"{m['python']}, hybrid cgroups: {m['hybrid_cgroups']}, load average "
        f"{m['loadavg_before']} before, {m['loadavg_after']} after",
        "versions: " + ", ".join(f"{k} {v}" for k, v in res["versions"].items()),
        "",
    ]
    for name, why in res["contenders_skipped"].items():
        out.append(f"skipped contender {name}: {why}")
    for name, sec in res["sections"].items():
        out += [*format_section(name, sec), ""]
    out.append("targets (reported, not asserted)")
    for t in res["targets"]:
        verdict = {None: "n/a", True: "met", False: "MISSED"}[t["met"]]
        v = t["value"]
        vs = (
            "-"
            if v is None
            else (
                f"{v:.2f}x"
                if "x" in t["target"]
                else (f"{v / 1024:.1f} KiB" if "KiB" in t["target"] else f"{v:g}")
            )
        )
        note = f"  ({t['note']})" if t["note"] else ""
        out.append(f"  {t['what']:68} {vs:>10}  target {t['target']:9} {verdict}{note}")
    if res["left_behind"]:
        out.append(f"left behind: {res['left_behind']}")
    if res.get("charts_note"):
        out.append(res["charts_note"])
    return "\n".join(out)


def draw_charts(res: dict[str, Any], out: Path) -> tuple[list[str], str]:
    """One PNG per section (matplotlib); ([], why) without it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "charts skipped: matplotlib is not installed (pip install -e '.[bench]')"
    made: list[str] = []

    def bars(title: str, rows: list[dict[str, Any]], scale: float, unit: str, path: Path) -> None:
        rows = [r for r in rows if r["available"]]
        if not rows:
            return
        fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.5))
        names = [r["name"] for r in rows][::-1]
        med = [r["median_ns"] / scale for r in rows][::-1]
        lo = [(r["median_ns"] - r["min_ns"]) / scale for r in rows][::-1]
        hi = [(r["max_ns"] - r["median_ns"]) / scale for r in rows][::-1]
        colors = [
            "#d62728"
            if n.startswith("pynsbind")
            else "#7f7f7f"
            if n.startswith(("ref", "floor", "C floor", "host", "none"))
            else "#1f77b4"
            for n in names
        ]
        ax.barh(names, med, xerr=[lo, hi], color=colors, capsize=3)
        ax.set_xlabel(f"median, {unit} (bars: min to max)")
        ax.set_title(title, fontsize=10)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        made.append(str(path))

    scale = {"ms": 1e6, "us": 1e3, "KiB": 1024.0}
    for name, sec in res["sections"].items():
        if "skipped" in sec:
            continue
        if name == "start":
            rows = sec["rows"]
            bars(
                "start: one /bin/true container, run to its end", rows, 1e6, "ms", out / "start.png"
            )
            tp = sec["throughput_per_s"]
            if tp:
                fig, ax = plt.subplots(figsize=(8, 4.5))
                for line, by in tp.items():
                    xs = [int(t) for t in by if by[t] is not None]
                    ax.plot(xs, [by[str(x)] for x in xs], marker="o", label=line)
                ax.set_xscale("log", base=2)
                ax.set_xticks([1, 2, 8], ["1", "2", "8"])
                ax.set_xlabel("spawners at once")
                ax.set_ylabel("containers per second")
                ax.set_title("start: throughput", fontsize=10)
                ax.legend(fontsize=7)
                fig.tight_layout()
                fig.savefig(out / "start-throughput.png", dpi=100)
                plt.close(fig)
                made.append(str(out / "start-throughput.png"))
            continue
        if name == "import":
            rows = [dict(r, min_ns=r["median_ns"], max_ns=r["median_ns"]) for r in sec["rows"]]
            for r in rows:
                r["available"] = True
            bars("import cost (fresh interpreter)", rows, 1e6, "ms", out / "import.png")
            continue
        if name == "density":
            levels = sec["levels"]
            who = sorted(
                {
                    w
                    for lv in levels.values()
                    for w, r in lv.items()
                    if "host_bytes_per_container" in r
                }
            )
            if not who:
                continue
            fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
            width = 0.8 / max(1, len(who))
            for i, w in enumerate(who):
                xs = list(range(len(levels)))
                get = [lv.get(w, {}) for lv in levels.values()]
                axes[0].bar(
                    [x + i * width for x in xs],
                    [g.get("host_bytes_per_container", 0) / 1024 for g in get],
                    width,
                    label=w,
                )
                axes[1].bar(
                    [x + i * width for x in xs],
                    [g.get("start_all_ns", 0) / 1e9 for g in get],
                    width,
                    label=w,
                )
                axes[2].bar(
                    [x + i * width for x in xs],
                    [g.get("stop_all_ns", 0) / 1e9 for g in get],
                    width,
                    label=w,
                )
            for ax, title in zip(
                axes,
                ("host memory per container (KiB)", "start all (s)", "stop all (s)"),
                strict=True,
            ):
                ax.set_xticks(
                    [x + width * (len(who) - 1) / 2 for x in range(len(levels))],
                    [f"N={k}" for k in levels],
                    fontsize=8,
                )
                ax.set_title(title, fontsize=10)
                ax.legend(fontsize=7)
            fig.tight_layout()
            fig.savefig(out / "density.png", dpi=100)
            plt.close(fig)
            made.append(str(out / "density.png"))
            continue
        for gname, g in sec["groups"].items():
            slug = "".join(c if c.isalnum() else "-" for c in f"{name}-{gname}").strip("-")
            bars(
                f"{name}: {gname}",
                g["rows"],
                scale.get(sec["unit"], 1.0),
                sec["unit"],
                out / f"{slug}.png",
            )
    return made, f"charts: {len(made)} PNG files in {out}"


# ---- main ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="everything small (for the tests)")
    ap.add_argument(
        "--out", default="bench-results", help="where results.json, table.txt and the charts go"
    )
    ap.add_argument(
        "-n", type=int, default=None, help="containers per line in the start section (300; 3 quick)"
    )
    ap.add_argument(
        "--density-max",
        type=int,
        default=None,
        help="the cap of the 'as many as the machine holds' density level (2000; 20 quick; 0: no such level)",
    )
    ap.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"a subset of {','.join(SECTIONS)}"
    )
    ap.add_argument(
        "--no-install", action="store_true", help="do not apt-get install what is missing"
    )
    ap.add_argument(
        "--runtime",
        action="append",
        default=[],
        metavar="LABEL=EXE[:create+start]",
        help="one more OCI runtime line (benchlib.OCI_RUNTIMES holds the standing ones), e.g. "
        "'pynsbind-run run=pynsbind-run' or 'pynsbind-run create+start=pynsbind-run:create+start'",
    )
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print(
            "bench.py needs root: it creates namespaces, mounts and cgroups (run it as root)",
            file=sys.stderr,
        )
        return 2
    wanted = [s.strip() for s in args.sections.split(",") if s.strip()]
    bad = [s for s in wanted if s not in SECTIONS]
    if bad:
        ap.error(f"unknown sections {bad}: choose from {', '.join(SECTIONS)}")
    if args.density_max is None:
        args.density_max = 20 if args.quick else 2000
    args.runtimes = list(OCI_RUNTIMES)
    for entry in args.runtime:
        label, sep, rest = entry.partition("=")
        exe, _, mode = rest.partition(":")
        if not sep or not label or not exe or mode not in ("", "run", "create+start"):
            ap.error(f"--runtime {entry!r}: expected LABEL=EXE or LABEL=EXE:create+start")
        args.runtimes.append(OciRuntime(label, exe, start=mode or "run"))
    log = Log()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    installed = install(log, not args.no_install)
    # a SIGTERM cleans up like an exception: containers, cgroups, temp dirs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_before = loadavg()
    suite = Suite(args, log)
    sections: dict[str, Any] = {}
    left: list[str] = []
    try:
        suite.setup()
        for name in wanted:
            log(f"section {name}")
            t0 = time.monotonic()
            try:
                sections[name] = SECTIONS[name](suite)
            except (Failed, OSError, subprocess.SubprocessError) as exc:
                sections[name] = {"skipped": f"failed: {exc}"}
                log(f"section {name} failed: {exc}")
            sections[name]["seconds"] = time.monotonic() - t0
    finally:
        spawners = [os.getpid()]
        with contextlib.suppress(OSError):
            spawners += [int(x) for x in suite.spawners.read_text().split()]
        left = suite.close()
    res: dict[str, Any] = {
        "benchmark": "suite",
        "quick": args.quick,
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": meminfo()["MemTotal"] / 2**30,
            "kernel": platform.release(),
            "python": platform.python_version(),
            "hybrid_cgroups": os.path.ismount(UNIFIED),
            "loadavg_before": load_before,
            "loadavg_after": loadavg(),
        },
        "versions": suite.versions,
        "install": installed,
        "runtimes": [runtime_dict(rt) for rt in args.runtimes],
        "contenders_skipped": suite.skipped,
        "notes": suite.notes,
        "sections": sections,
        "workdir": str(suite.tmp),
        "pynsbind_spawners": spawners,
        "left_behind": left,
    }
    res["targets"] = targets(res)
    charts, note = draw_charts(res, out)
    res["charts"] = charts
    res["charts_note"] = note
    table = format_all(res)
    print(table, flush=True)
    (out / "table.txt").write_text(table + "\n")
    (out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    log(f"wrote {out / 'results.json'}, {out / 'table.txt'}; {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
