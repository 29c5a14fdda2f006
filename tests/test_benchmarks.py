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
from typing import Any

import pytest

from tests.helpers import HostState, find_busybox, pynsbind_cgroups, wait_for

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


# ---- the suite: benchmarks/bench.py ------------------------------------------------------

SUITE = ROOT / "benchmarks" / "bench.py"
SECTIONS = ("start", "stop", "density", "overhead", "exec", "cgroup", "import", "rss", "namespaces")
#: the OCI runtimes of the sections after start, by the program they need
CLIS = {"crun": "crun", "runc": "runc"}
MISSING = "no-such-runtime"


def _finite_stats(row: dict, where: str) -> None:
    for key in STATS:
        assert isinstance(row[key], (int, float)), (where, key)
        assert math.isfinite(row[key]) and row[key] > 0, (where, key, row[key])
    assert row["min_ns"] <= row["median_ns"] <= row["max_ns"], where
    assert len(row["samples"]) == row["count"], where


def _maker(cgroup: str) -> int | None:
    """PID of a fresh pynsbind cgroup's name (pynsbind-c-PID-START-N, at the root
    of its hierarchy), else None."""
    top = next(p for p in cgroup.split("/") if p.startswith("pynsbind"))
    parts = top.split("-")
    if top.startswith("pynsbind-c-") and len(parts) == 5 and parts[2].isdigit():
        return int(parts[2])
    return None


def _rows(section: dict, group: str) -> dict[str, dict]:
    return {r["name"]: r for r in section["groups"][group]["rows"]}


@pytest.mark.root
@pytest.mark.slow
def test_bench_suite_quick_runs_every_section_and_contender(tmp_path: Path) -> None:
    """bench.py --quick: every section ran; every contender installed here really
    ran in each (it has samples), a runtime that is not installed is a line that
    says why; the table, the JSON and the charts are well formed; nothing is
    left behind."""
    if find_busybox() is None:
        pytest.skip("needs a static busybox (Debian: busybox-static)")
    out = tmp_path / "out"
    before = HostState.now()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SUITE),
            "--quick",
            "--no-install",
            "--out",
            str(out),
            "--runtime",
            f"{MISSING} run={MISSING}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    stdout, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr[-3000:]
    res = json.loads((out / "results.json").read_text())
    assert (out / "table.txt").read_text().strip() == stdout.strip()
    assert res["quick"] is True
    assert list(res["sections"]) == list(SECTIONS)
    for name, sec in res["sections"].items():
        assert "skipped" not in sec, (name, sec.get("skipped"))
        assert f"== {name}:" in stdout, name
    present = {name: shutil.which(exe) is not None for name, exe in CLIS.items()}
    gcc = shutil.which("gcc") is not None

    # the runtime that is not installed: skipped everywhere, with the reason
    assert f"{MISSING} is not installed" in res["contenders_skipped"][f"{MISSING} run"]
    assert f"skipped contender {MISSING} run: {MISSING} is not installed" in stdout

    # start: bench_spawn's rows, its new throughput lines included
    start = {r["name"]: r for r in res["sections"]["start"]["rows"]}
    assert start[f"{MISSING} run"]["available"] is False
    assert "not installed" in start[f"{MISSING} run"]["skipped"]
    for name, tool in (("crun run", "crun"), ("runc run", "runc"), ("bwrap", "bwrap")):
        assert start[name]["available"] is (shutil.which(tool) is not None), name
    assert start["pynsbind.run"]["available"]
    tp = res["sections"]["start"]["throughput_per_s"]
    for name in ("crun run", "runc run", "bwrap"):
        assert (f"{name}, commands in parallel" in tp) is start[name]["available"], name
    for name, by in tp.items():
        assert set(by) == {"1", "2", "8"} and all(v and v > 0 for v in by.values()), name

    # the timed sections: every line that can run here has samples
    timed_sections = {
        "stop": ("sleep as PID 1", "50 processes"),
        "overhead": ("cpu: cpu 1000000", "sys: sys 1000"),
        "exec": ("exec",),
        "cgroup": ("cgroup",),
        "rss": ("peak RSS",),
        "namespaces": ("one namespace kind",),
    }
    for sname, groups in timed_sections.items():
        sec = res["sections"][sname]
        assert set(sec["groups"]) == set(groups), sname
        for g in groups:
            rows = _rows(sec, g)
            assert sec["base"] in rows and rows[sec["base"]]["available"], (sname, g)
            assert rows[sec["base"]]["vs_base"] == pytest.approx(1.0), (sname, g)
            for name, row in rows.items():
                where = f"{sname}/{g}/{name}"
                if name == MISSING:
                    assert not row["available"] and "not installed" in row["skipped"], where
                    continue
                if sname == "rss" and name.endswith("create+start"):
                    # one process's peak: run lines only
                    assert row["skipped"] == "measured on 'run' lines only", where
                    continue
                assert row["available"], (where, row.get("skipped"))
                _finite_stats(row, where)
                assert row["vs_base"] == pytest.approx(
                    row["median_ns"] / rows[sec["base"]]["median_ns"]
                ), where
            if sname in ("stop", "overhead", "exec", "rss"):
                assert rows["pynsbind"]["available"], where
                for cli, there in present.items():
                    assert cli in rows and rows[cli]["available"] is there, (sname, g, cli)
                assert MISSING in rows, (sname, g)
            if sname in ("overhead", "rss"):
                assert ("bwrap" in rows) is (shutil.which("bwrap") is not None), (sname, g)
    kinds = _rows(res["sections"]["namespaces"], "one namespace kind")
    assert set(kinds) == {"none", "user", "pid", "mnt", "net", "uts", "ipc", "cgroup", "time"}
    assert res["sections"]["stop"]["rounds"] == 2
    assert all(
        r["count"] == 2
        for r in _rows(res["sections"]["stop"], "50 processes").values()
        if r["available"]
    )

    # density: N = 5, 10 and the capped "as many as the machine holds"
    levels = res["sections"]["density"]["levels"]
    assert list(levels) == ["5", "10", "max (cap 20)"]
    for label, by in levels.items():
        asked = {"5": 5, "10": 10}.get(label, 20)
        assert by[MISSING]["skipped"], label
        for who in ("pynsbind", *(c for c, there in present.items() if there)):
            r = by[who]
            assert r["containers"] == asked and r["error"] == "", (label, who, r)
            for key in (
                "start_all_ns",
                "stop_all_ns",
                "host_bytes_per_container",
                "caller_rss_bytes_per_container",
                "caller_fds_per_container",
            ):
                assert math.isfinite(r[key]), (label, who, key)
            assert r["start_all_ns"] > 0 and r["stop_all_ns"] > 0, (label, who)
            assert r["cgroup_bytes_per_container"]["usage"] > 0, (label, who)
        assert by["pynsbind"]["caller_fds_per_container"] > 0, label  # it holds each pidfd

    # import: this interpreter in quick mode, import pynsbind brings no other module
    imp = {r["name"]: r for r in res["sections"]["import"]["rows"]}
    assert imp["import pynsbind"]["module_names"] == ["pynsbind", "pynsbind._version"]

    # targets: reported with a value where both sides ran, never asserted here
    targets = {t["what"]: t for t in res["targets"]}
    assert "start: pynsbind.run / C floor" in targets
    assert (targets["start: pynsbind.run / C floor"]["value"] is not None) is gcc
    for what, t in targets.items():
        assert (t["met"] is None) is (t["value"] is None) or "1,000" in what, what
    assert any(ln.startswith("targets (reported, not asserted)") for ln in stdout.splitlines())

    # charts: PNG files with matplotlib, a message without it
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert res["charts"] == [] and "matplotlib is not installed" in res["charts_note"]
    else:
        assert len(res["charts"]) >= len(SECTIONS)
        for chart in res["charts"]:
            assert Path(chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", chart

    # nothing left behind: cgroups (its own and its containers'), state, temp dirs
    assert res["left_behind"] == []
    assert pynsbind_cgroups(pid=proc.pid) == set()
    assert not Path(res["workdir"]).exists()
    # the host as it was.  Other test runs on this machine mount, make network
    # interfaces (podman's) and pynsbind cgroups meanwhile, and some of theirs
    # outlive their makers (a spawner SIGKILLed on purpose); so mounts count where
    # the suite makes them (its temp dirs), interfaces not at all (its containers
    # have their own), and fresh pynsbind-c-PID-... cgroups when PID is one of
    # the suite's processes that run containers (the JSON lists them)
    spawners = set(res["pynsbind_spawners"])
    assert proc.pid in spawners
    diff = before.diff(HostState.now())
    assert [m for m in diff.pop("mounts", []) if "pynsbind-bench" in m] == []
    diff.pop("ifaces", None)
    cgroups = [c for c in diff.pop("cgroups", []) if _maker(c) in spawners or _maker(c) is None]
    assert cgroups == []
    assert diff == {}


def test_oci_runtime_skipped_without_its_program_or_a_subcommand(tmp_path: Path) -> None:
    """A pluggable runtime line names why it cannot run: no such program, or a
    program without one of the verbs the suite uses (``EXE SUB --help``)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from benchlib import OCI_RUNTIMES, OciRuntime
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert [rt.exe for rt in OCI_RUNTIMES] == ["crun", "runc", "pynsbind-run", "pynsbind-run"]
    assert [rt.start for rt in OCI_RUNTIMES][2:] == ["run", "create+start"]
    missing = OciRuntime("x run", "pynsbind-no-such-runtime")
    assert missing.why_missing() == (
        "pynsbind-no-such-runtime is not installed (Debian: apt-get install "
        "pynsbind-no-such-runtime)"
    )
    # a program that knows run, state and kill but not delete (a real executable)
    fake = tmp_path / "halfrt"
    fake.write_text('#!/bin/sh\ncase "$1" in run|create|start|state|kill) exit 0;; esac\nexit 1\n')
    fake.chmod(0o755)
    half = OciRuntime("half run", str(fake))
    assert half.why_missing() == f"{fake} has no 'delete' subcommand ({fake} delete --help failed)"
    assert OciRuntime("half", str(fake), start="create+start").subcommands() == (
        "create",
        "start",
        "state",
        "kill",
        "delete",
        "exec",
    )
    for rt in OCI_RUNTIMES:
        if rt.which():  # pynsbind-run: the venv's, next to this Python
            assert rt.why_missing() == "", rt.label


# ---- benchmarks/conformance.py: runtime-tools' validation suite --------------------------

CONFORMANCE = ROOT / "benchmarks" / "conformance.py"

#: a stand-in for a validation binary: it reports where it runs, makes the
#: suite's absolute cgroup /cgrouptest, waits there to be looked at, and
#: prints TAP (2 ok, 1 not ok, 1 skip)
FAKE_TEST = """#!/bin/sh
cat /proc/self/cgroup > cgroup-inside
mkdir /sys/fs/cgroup/memory/cgrouptest
echo $$ > /sys/fs/cgroup/memory/cgrouptest/cgroup.procs
echo "$RUNTIME" > runtime-seen
echo $$ > pid
while [ ! -e looked ]; do sleep 0.05; done
echo "TAP version 13"
echo "ok 1 - first"
echo "not ok 2 - second"
echo "ok 3 # SKIP third"
echo "ok 4 - fourth"
echo "1..4"
"""


def load_conformance() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("conformance", CONFORMANCE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["conformance"] = mod  # its dataclass looks itself up there
    spec.loader.exec_module(mod)
    return mod


def test_conformance_counts_tap() -> None:
    conf = load_conformance()
    r = conf.parse_tap("t", "TAP version 13\nok 1 - a\nnot ok 2 - b\nok 3 # SKIP c\n1..3\n", 0)
    assert (r.passed, r.failed, r.skipped, r.failures) == (1, 1, 1, ["b"])
    r = conf.parse_tap("t", "failed to create the container\nexit status 1\n", 1)
    assert (r.passed, r.failed, r.skipped) == (0, 1, 0)
    assert r.failures == ["incomplete: no plan (exit status 1, 0 results)"]
    r = conf.parse_tap("t", "TAP version 13\nok 1 - a\n1..3\n", 0)
    assert (r.passed, r.failed) == (1, 1)
    assert "1 of 3 planned" in r.failures[0]
    r = conf.parse_tap("t", "TAP version 13\n1..0\n", 1)
    assert (r.passed, r.failed, r.failures) == (0, 1, ["exit status 1 without a failing result"])
    r = conf.parse_tap("t", "TAP version 13\n  ---\n  {}\n  ...\n1..0\n", 0)
    assert (r.passed, r.failed, r.skipped) == (0, 0, 0)


@pytest.mark.root
@pytest.mark.slow
def test_conformance_runs_the_suite_in_a_cgroup_of_its_own(tmp_path: Path) -> None:
    """With a fake checkout (no Go, no network): the binaries run from the
    checkout with RUNTIME set, in a cgroup namespace whose root is the script's
    own pynsbind-conformance-PID cgroup (so the suite's /cgrouptest lands
    there, as the host sees it), the TAP is counted, and nothing is left."""
    if shutil.which("runc", path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
        pytest.skip("needs runc")
    if not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("needs a cgroup v1 memory hierarchy (the script handles v1 and hybrid hosts)")
    at_root = "/sys/fs/cgroup/memory/cgrouptest"
    assert not os.path.exists(at_root)
    checkout = tmp_path / "runtime-tools"
    (checkout / "cmd" / "runtimetest").mkdir(parents=True)
    (checkout / "cmd" / "runtimetest" / "main.go").write_text("package main\n")
    (checkout / "validation" / "fake").mkdir(parents=True)
    (checkout / "validation" / "fake" / "fake.go").write_text("package main\n")
    for built in (checkout / "runtimetest", checkout / "validation" / "fake" / "fake.t"):
        built.write_text(FAKE_TEST)
        built.chmod(0o755)  # newer than its source: not rebuilt
    out = tmp_path / "out.json"
    before = pynsbind_cgroups(prefix="pynsbind-conformance")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(CONFORMANCE),
            "--checkout",
            str(checkout),
            "--runtime",
            "runc",
            "--json",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(
            lambda: (checkout / "pid").exists() and (checkout / "pid").read_text().strip() != "", 60
        )
        pid = int((checkout / "pid").read_text())
        host_view = Path(f"/proc/{pid}/cgroup").read_text()
    finally:
        (checkout / "looked").touch()
        stdout, stderr = proc.communicate(timeout=120)
        if os.path.isdir(at_root):  # the sandbox failed: undo what it let through
            os.rmdir(at_root)
            pytest.fail("the suite's /cgrouptest was made at the host's cgroup root")
    assert proc.returncode == 0, stderr
    mark = f"/pynsbind-conformance-{proc.pid}"
    lines = dict(line.split(":", 2)[1:] for line in host_view.splitlines())
    assert lines["memory"] == mark + "/cgrouptest"
    assert all(path.startswith(mark) for path in lines.values()), host_view
    inside = dict(
        line.split(":", 2)[1:] for line in (checkout / "cgroup-inside").read_text().splitlines()
    )
    assert set(inside.values()) == {"/"}  # the namespace's root
    assert (checkout / "runtime-seen").read_text().strip() == shutil.which(
        "runc", path="/usr/sbin:/usr/bin:/sbin:/bin"
    )
    res = json.loads(out.read_text())
    assert (res["passed"], res["failed"], res["skipped"]) == (2, 1, 1)
    assert res["tests"][0]["failures"] == ["second"]
    assert "fake" in stdout and "total" in stdout
    assert pynsbind_cgroups(prefix="pynsbind-conformance") == before


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
