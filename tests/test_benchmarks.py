"""Smoke tests of benchmarks/bench_spawn.py: it runs, every installed contender
really runs its containers, the table and the JSON are well formed, and nothing
is left behind.  No timing is asserted: speed is for the benchmark to report."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import pynsbind_cgroups

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench_spawn.py"

CONTENDERS = ("C floor", "pynsbind.run", "crun run", "runc run", "bwrap")
PEER_TOOL = {"crun run": "crun", "runc run": "runc", "bwrap": "bwrap"}
STATS = ("count", "median_ns", "mean_ns", "p90_ns", "min_ns", "max_ns")


@pytest.mark.root
@pytest.mark.slow
def test_bench_spawn_quick_json(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    proc = subprocess.Popen(
        [sys.executable, str(BENCH), "--quick", "-n", "3", "--json", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    res = json.loads(out.read_text())

    rows = {r["name"]: r for r in res["rows"]}
    if "busybox" in rows["pynsbind.run"].get("skipped", ""):
        pytest.skip(rows["pynsbind.run"]["skipped"])
    assert res["n"] == 3
    assert res["quick"] is True
    assert res["rounds"] * res["round_size"] >= 3
    assert set(CONTENDERS) <= set(rows)
    assert rows["ref: subprocess.run(['/bin/true'])"]["kind"] == "reference"
    assert rows["ref: subprocess.run(['/bin/true'])"]["available"]
    if rows["C floor"]["available"]:
        assert rows["ref: C floor + lo up"]["available"]

    # every contender that can run here did run, and says what it measured
    expect = {"C floor": shutil.which("gcc") is not None, "pynsbind.run": True}
    expect.update({name: shutil.which(tool) is not None for name, tool in PEER_TOOL.items()})
    for name, available in expect.items():
        row = rows[name]
        assert row["kind"] == "contender"
        assert row["available"] is available, (name, row.get("skipped"))
        if not available:
            assert row["skipped"], name
            continue
        assert row["count"] == 3, name
        assert len(row["times_ns"]) == 3, name
        for key in STATS:
            assert isinstance(row[key], (int, float)), (name, key)
            assert math.isfinite(row[key]), (name, key)
            assert row[key] > 0, (name, key)
        assert row["min_ns"] <= row["median_ns"] <= row["max_ns"], name
        assert row["min_ns"] <= row["p90_ns"] <= row["max_ns"], name
    floor, ours = rows["C floor"], rows["pynsbind.run"]
    assert ours["vs_pynsbind"] == pytest.approx(1.0)
    if floor["available"]:
        assert floor["vs_floor"] == pytest.approx(1.0)
        assert ours["vs_floor"] == pytest.approx(ours["median_ns"] / floor["median_ns"])

    # the targets, each with a ratio where both sides ran
    targets = {t["what"]: t for t in res["targets"]}
    assert set(targets) == {
        "pynsbind.run / C floor + sealed exec + device cgroup",
        "pynsbind.run / C floor",
        "pynsbind.run / C floor + lo up",
        "crun run / pynsbind.run",
        "runc run / pynsbind.run",
    }
    for what, t in targets.items():
        num, den = (s.strip() for s in what.split("/"))
        den = {"C floor + lo up": "ref: C floor + lo up"}.get(den, den)
        both = rows[num]["available"] and rows[den]["available"]
        assert (t["ratio"] is not None) is both, what
        assert (t["met"] is not None) is both, what
        assert (t["paired_ratio"] is not None) is both, what
        if both:
            assert t["ratio"] == pytest.approx(rows[num]["median_ns"] / rows[den]["median_ns"])

    # throughput at 1, 2 and 8 spawners, for pynsbind (and the floor with gcc)
    tp = res["throughput_per_s"]
    assert "pynsbind.run, threads in one process" in tp
    for name, by in tp.items():
        assert set(by) == {"1", "2", "8"}, name
        assert all(v is not None and v > 0 for v in by.values()), (name, by)

    # the table on stdout names each line; skipped ones say why
    for name, row in rows.items():
        line = next((ln for ln in stdout.splitlines() if ln.startswith(name)), None)
        assert line is not None, name
        assert ("skipped:" in line) is (not row["available"]), line
    assert "throughput (containers/s)" in stdout
    assert any(ln.startswith("targets ") for ln in stdout.splitlines())

    # nothing left behind: cgroups, runtime state, temp dirs
    assert res["left_behind"] == []
    assert pynsbind_cgroups(pid=proc.pid) == set()  # its own, and those of its containers
    assert Path(res["workdir"]).name.startswith("pynsbind-bench-")
    assert not Path(res["workdir"]).exists()


@pytest.mark.slow
def test_bench_spawn_needs_root() -> None:
    """Without root the benchmark says so and exits 2 (run as nobody)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the benchmark as another user")
    res = subprocess.run(
        [
            "setpriv",
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            sys.executable,
            str(BENCH),
            "--quick",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if res.returncode == 126 or "Permission denied" in res.stderr:
        pytest.skip(f"nobody cannot run {sys.executable} here")
    assert res.returncode == 2, res.stderr
    assert "needs root" in res.stderr
    assert res.stdout == ""


def test_bench_import_reports_every_line_and_what_import_pynsbind_brings(
    tmp_path: Path,
) -> None:
    out = tmp_path / "import.json"
    bench = ROOT / "benchmarks" / "bench_import.py"
    py = sys.executable
    # this venv's install is editable: refused unless asked for
    refused = subprocess.run(
        [py, str(bench), "--python", py, "-n", "1"], capture_output=True, text=True
    )
    assert refused.returncode == 2 and "editable" in refused.stderr
    res = subprocess.run(
        [py, str(bench), "--python", py, "--allow-editable", "-n", "2", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    rows = {r["name"]: r for r in data["rows"]}
    assert {"import pynsbind", "pynsbind.run (the process layer, the engine)"} <= set(rows)
    assert all(r["count"] == 2 and r["median_ns"] > 0 for r in rows.values())
    # importing the package imports nothing else (the names load on first use)
    assert rows["import pynsbind"]["module_names"] == ["pynsbind", "pynsbind._version"]
    assert (
        "pynsbind._native" in rows["pynsbind.run (the process layer, the engine)"]["module_names"]
    )
    assert "import pynsbind" in res.stdout


@pytest.mark.root
def test_bench_cli_runs_every_line_and_reports_ratios(tmp_path: Path) -> None:
    """benchmarks/bench_cli.py: pynsbind-run sandbox and bwrap (when installed)
    each really run /bin/true (a failure stops the benchmark); the JSON has a
    ratio to bwrap for every line that ran."""
    out = tmp_path / "cli.json"
    bench = ROOT / "benchmarks" / "bench_cli.py"
    py = sys.executable
    refused = subprocess.run(
        [py, str(bench), "--python", py, "-n", "1"], capture_output=True, text=True
    )
    assert refused.returncode == 2 and "editable" in refused.stderr
    res = subprocess.run(
        [py, str(bench), "--python", py, "--allow-editable", "-n", "2", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["pynsbind-run sandbox"]["count"] == 2
    assert rows["pynsbind-run sandbox"]["argv"][-2:] == ["--", "/bin/true"]
    if shutil.which("bwrap") is None:
        assert "skipped" in rows["bwrap"]
        return
    for row in rows.values():
        assert row["median_ns"] > 0 and row["vs_bwrap"] > 0 and row["paired_vs_bwrap"] > 0
    assert rows["bwrap"]["vs_bwrap"] == 1.0
    assert "vs bwrap" in res.stdout
