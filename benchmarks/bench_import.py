"""What importing pynsbind costs, in a regular (non-editable) install.

    .venv/bin/python benchmarks/bench_import.py [--python PY] [-n N] [--json OUT]

Each line starts a fresh interpreter (``PY -I -c CODE``) and times it from the
outside (``time.perf_counter_ns`` around the whole process); the lines run in
interleaved rounds, a new order each round.  The table gives each line's median
and its median minus the bare interpreter's: what the statement adds.  It also
counts the modules the statement imports that the bare interpreter had not.

Without ``--python`` the package is installed (``pip install .``, a regular
install) into a temporary venv first: an editable install imports ``typing``
and more from its finder before the package does, which hides their cost (the
benchmark refuses one unless given ``--allow-editable``).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: (name, statement); the first is the baseline the others are measured against
LINES: list[tuple[str, str]] = [
    ("python -I (nothing)", "pass"),
    ("import pynsbind", "import pynsbind"),
    ("pynsbind.__version__", "import pynsbind; pynsbind.__version__"),
    ("pynsbind.Spec (the model)", "import pynsbind; pynsbind.Spec"),
    ("pynsbind.run (the process layer, the engine)", "import pynsbind; pynsbind.run"),
    ("ref: import typing", "import typing"),
]

_COUNT = (
    "import sys\nbefore = set(sys.modules)\n{stmt}\n"
    "new = sorted(set(sys.modules) - before)\nprint(len(new), ' '.join(new))"
)


def regular_install(where: Path) -> Path:
    venv.create(where, with_pip=True)
    py = where / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "-q", str(ROOT)], check=True, cwd=where)
    return py


def is_editable(py: str) -> bool:
    code = "import pynsbind, sys; print('site-packages' not in (pynsbind.__file__ or ''))"
    out = subprocess.run([py, "-I", "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


def _time(py: str, stmt: str) -> int:
    t0 = time.perf_counter_ns()
    subprocess.run([py, "-I", "-c", stmt], check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter_ns() - t0


def measure(py: str, n: int, rounds: int) -> dict[str, Any]:
    per_round = max(1, n // rounds)
    times: dict[str, list[int]] = {name: [] for name, _ in LINES}
    for _name, stmt in LINES:  # warm the page cache and the .pyc files
        _time(py, stmt)
    for _ in range(rounds):
        order = list(LINES)
        random.shuffle(order)
        for name, stmt in order:
            for _ in range(per_round):
                times[name].append(_time(py, stmt))
    rows = []
    base = statistics.median(times[LINES[0][0]])
    for name, stmt in LINES:
        out = subprocess.run(
            [py, "-I", "-c", _COUNT.format(stmt=stmt)], capture_output=True, text=True, check=True
        )
        count, _, modules = out.stdout.strip().partition(" ")
        med = statistics.median(times[name])
        rows.append(
            {
                "name": name,
                "statement": stmt,
                "count": len(times[name]),
                "median_ns": med,
                "added_ns": med - base,
                "modules": int(count),
                "module_names": modules.split(),
            }
        )
    return {"python": py, "n": n, "rounds": rounds, "rows": rows}


def format_table(res: dict[str, Any]) -> str:
    lines = [
        f"import cost ({res['python']}, {res['rows'][0]['count']} runs a line)",
        f"{'line':<46} {'median ms':>10} {'added ms':>9} {'modules':>8}",
    ]
    for r in res["rows"]:
        lines.append(
            f"{r['name']:<46} {r['median_ns'] / 1e6:>10.2f} {r['added_ns'] / 1e6:>9.2f} "
            f"{r['modules']:>8}"
        )
    first = next(r for r in res["rows"] if r["statement"] == "import pynsbind")
    lines.append(f"modules `import pynsbind` brings: {' '.join(first['module_names'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", help="an interpreter with pynsbind installed (regular install)")
    ap.add_argument("--allow-editable", action="store_true", help="measure an editable install")
    ap.add_argument("-n", type=int, default=60, help="runs per line (default 60)")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pynsbind-bench-import-") as tmp:
        py = args.python or str(regular_install(Path(tmp) / "venv"))
        if is_editable(py) and not args.allow_editable:
            print(
                f"{py}: pynsbind is an editable install, whose finder hides import costs; "
                "give a regular install (or none: one is made), or --allow-editable",
                file=sys.stderr,
            )
            return 2
        res = measure(py, args.n, rounds=min(args.n, 6))
    print(format_table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
