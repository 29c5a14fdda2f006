"""pynsbind-run sandbox against bubblewrap, from the shell, in a regular install.

    .venv/bin/python benchmarks/bench_cli.py [--python PY] [-n N] [--json OUT]

What a person pays to run a command in a sandbox: one whole command line each,
started from the outside (``time.perf_counter_ns`` around ``subprocess.run``):

- ``bwrap``: ``bwrap --ro-bind / / --proc /proc --dev /dev --tmpfs /tmp
  --unshare-all /bin/true``;
- ``pynsbind-run sandbox``: ``pynsbind-run sandbox -- /bin/true`` (the host's root
  read-only, its own /proc, /dev, /tmp, /run and /var/tmp, every namespace, the
  default seccomp profile, an init at PID 1), as it runs every time but the
  first: its plan kept, pynsbind-run (the C launcher) spawns it without Python;
- ``pynsbind-run sandbox, no kept plan``: the same with
  ``PYNSBIND_PLANS_CACHE=0`` (through ``env``), what the first run of a set of
  options costs: Python checks the options, builds the spec, compiles the plan;
- references: ``python -I -c pass`` (the interpreter alone: what any Python
  command line pays first) and ``/bin/true`` (no sandbox at all).

The lines run in interleaved rounds, a new order each round, after a warm-up
(which also fills the seccomp cache, as any earlier run would have).  The table
gives each line's median, and its ratio to bwrap's: of the medians, and paired
(the median of each round's ratio of medians, where drift cancels out).

Without ``--python`` the package is installed (``pip install .``, a regular
install) into a temporary venv first: an editable install's finder imports
modules of its own before the package does (the benchmark refuses one unless
given ``--allow-editable``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def regular_install(where: Path) -> Path:
    """A venv with pynsbind installed from the checkout (pip install ., not -e)."""
    import venv

    venv.create(where, with_pip=True)
    py = where / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "-q", str(ROOT)], check=True, cwd=where)
    return py


def is_editable(py: str) -> bool:
    code = "import pynsbind, sys; print('site-packages' not in (pynsbind.__file__ or ''))"
    out = subprocess.run([py, "-I", "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


BWRAP = [
    "bwrap",
    "--ro-bind",
    "/",
    "/",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",
    "--unshare-all",
    "/bin/true",
]


def lines(py: str) -> list[tuple[str, str, list[str]]]:
    """(name, kind, argv); bwrap first: the others are measured against it."""
    cli = str(Path(py).parent / "pynsbind-run")
    return [
        ("bwrap", "contender", BWRAP),
        ("pynsbind-run sandbox", "contender", [cli, "sandbox", "--", "/bin/true"]),
        (
            "pynsbind-run, no kept plan",
            "contender",
            ["env", "PYNSBIND_PLANS_CACHE=0", cli, "sandbox", "--", "/bin/true"],
        ),
        ("ref: python -I -c pass", "reference", [py, "-I", "-c", "pass"]),
        ("ref: /bin/true", "reference", ["/bin/true"]),
    ]


#: runs that failed and were run again, by program (a shared machine's mounts
#: come and go: bwrap binds the whole tree and fails on one that goes meanwhile)
RETRIED: dict[str, int] = {}


def _time(argv: list[str], tries: int = 3) -> int:
    for attempt in range(tries):
        t0 = time.perf_counter_ns()
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True)
        took = time.perf_counter_ns() - t0
        if res.returncode == 0:
            return took
        if attempt < tries - 1:
            RETRIED[argv[0]] = RETRIED.get(argv[0], 0) + 1
    raise RuntimeError(f"{argv[0]} failed ({res.returncode}): {res.stderr.decode()[-400:]}")


def measure(py: str, n: int, rounds: int) -> dict[str, Any]:
    todo = [row for row in lines(py) if shutil.which(row[2][0]) or os.path.exists(row[2][0])]
    skipped = {name: f"{argv[0]} is not installed" for name, _, argv in lines(py)}
    for name, _, _ in todo:
        skipped.pop(name)
    per_round = max(1, n // rounds)
    times: dict[str, list[int]] = {name: [] for name, _, _ in todo}
    by_round: list[dict[str, list[int]]] = []
    for _, _, argv in todo:  # warm the page cache, the .pyc files, the seccomp cache
        for _ in range(3):
            _time(argv)
    for _ in range(rounds):
        order = list(todo)
        random.shuffle(order)
        this: dict[str, list[int]] = {name: [] for name, _, _ in todo}
        for name, _, argv in order:
            for _ in range(per_round):
                t = _time(argv)
                times[name].append(t)
                this[name].append(t)
        by_round.append(this)
    base = "bwrap" if "bwrap" in times else None
    rows = []
    for name, kind, argv in lines(py):
        if name in skipped:
            rows.append({"name": name, "kind": kind, "argv": argv, "skipped": skipped[name]})
            continue
        med = statistics.median(times[name])
        row: dict[str, Any] = {
            "name": name,
            "kind": kind,
            "argv": argv,
            "count": len(times[name]),
            "median_ns": med,
            "min_ns": min(times[name]),
            "p90_ns": sorted(times[name])[max(0, round(0.9 * len(times[name])) - 1)],
            "times_ns": times[name],
        }
        if base is not None:
            row["vs_bwrap"] = med / statistics.median(times[base])
            row["paired_vs_bwrap"] = statistics.median(
                statistics.median(r[name]) / statistics.median(r[base]) for r in by_round
            )
        rows.append(row)
    return {
        "python": py,
        "n": n,
        "rounds": rounds,
        "euid": os.geteuid(),
        "load_average": os.getloadavg(),
        "kernel": os.uname().release,
        "retried": dict(RETRIED),
        "rows": rows,
    }


def format_table(res: dict[str, Any]) -> str:
    who = "root" if res["euid"] == 0 else f"uid {res['euid']}"
    out = [
        f"command-line sandbox, /bin/true ({res['python']}, as {who}, "
        f"{res['rounds']} interleaved rounds, load average "
        + " ".join(f"{x:.2f}" for x in res["load_average"])
        + ")",
        f"{'line':<28} {'median ms':>10} {'p90 ms':>8} {'vs bwrap':>9} {'paired':>7}",
    ]
    for r in res["rows"]:
        if "skipped" in r:
            out.append(f"{r['name']:<28} skipped: {r['skipped']}")
            continue
        ratio = f"{r['vs_bwrap']:.2f}x" if "vs_bwrap" in r else "-"
        paired = f"{r['paired_vs_bwrap']:.2f}x" if "paired_vs_bwrap" in r else "-"
        out.append(
            f"{r['name']:<28} {r['median_ns'] / 1e6:>10.2f} {r['p90_ns'] / 1e6:>8.2f} "
            f"{ratio:>9} {paired:>7}"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", help="an interpreter with pynsbind installed (regular install)")
    ap.add_argument("--allow-editable", action="store_true", help="measure an editable install")
    ap.add_argument("-n", type=int, default=60, help="runs per line (default 60)")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pynsbind-bench-cli-") as tmp:
        os.chmod(tmp, 0o755)
        py = args.python or str(regular_install(Path(tmp) / "venv"))
        if is_editable(py) and not args.allow_editable:
            print(
                f"{py}: pynsbind is an editable install, whose finder hides import costs; "
                "give a regular install (or none: one is made), or --allow-editable",
                file=sys.stderr,
            )
            return 2
        res = measure(py, args.n, rounds=min(args.n, 10))
    print(format_table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
