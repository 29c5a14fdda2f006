"""The cgroup work of one container, through pynsbind and through a C loop.

Per container: create a cgroup in every hierarchy with a typical set of limits
(memory, swap, pids, CPU weight and quota), attach a process, move it back out,
delete the cgroup.  pynsbind does it with ``Cgroup.create`` (one batch of
openat+write per directory, in C), ``Cgroup.add`` and ``Cgroup.delete``;
benchmarks/cg_floor.c makes the same system calls from a plan this script writes
from pynsbind's own compiled writes.  The two alternate container by container in
one run (the C loop waits on a pipe for each), so both meet the same kernel state;
the medians and their ratio are printed (no assertion: it is a measurement).

    sudo .venv/bin/python benchmarks/bench_cgroup.py [--containers N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pynsbind.cgroups import Cgroup, Resources, host
from pynsbind.testing import cgroups_v1, compile_program

if TYPE_CHECKING:
    from collections.abc import Callable

cpuset_defaults = cgroups_v1.cpuset_defaults

HERE = Path(__file__).resolve().parent

RESOURCES = Resources(
    memory_max="256M",
    memory_swap_max=0,
    pids_max=512,
    cpu_weight=100,
    cpu_quota=50000,
    cpu_period=100000,
)


def build_floor(out: Path) -> Path:
    exe = out / "cg_floor"
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        sys.exit("bench_cgroup: needs a C compiler for benchmarks/cg_floor.c")
    subprocess.run(
        [cc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(HERE / "cg_floor.c")],
        check=True,
    )
    return exe


def write_plan(path: Path, pid: int, name: str, hold: Cgroup) -> None:
    """The writes pynsbind makes for RESOURCES, per hierarchy, for the C loop."""
    h = host()
    prog = compile_program(RESOURCES, h)
    lines = [f"pid {pid}", f"name {name}"]
    for hier in h.hierarchies:
        lines.append(f"hier {hier.base} {hold.dirs[hier.name]}")
        dfd = os.open(hier.base, os.O_RDONLY | os.O_DIRECTORY)
        try:
            kvs = prog.resolved(hier, dfd)
        finally:
            os.close(dfd)
        if hier.version == 1 and "cpuset" in hier.controllers:
            kvs = cpuset_defaults(hier.base, kvs)
        lines += [f"kv {k} {v}" for k, v in kvs]
    path.write_text("\n".join(lines) + "\n")


def pynsbind_once(pid: int, hold: Cgroup) -> int:
    t0 = time.perf_counter_ns()
    cg = Cgroup.create(None, RESOURCES)
    cg.add(pid)
    hold.add(pid)
    cg.delete()
    return time.perf_counter_ns() - t0


def floor_once(floor: subprocess.Popen[str], i: int) -> int:
    assert floor.stdin is not None
    assert floor.stdout is not None
    floor.stdin.write(f"{i}\n")
    floor.stdin.flush()
    line = floor.stdout.readline()
    if not line:
        sys.exit(f"bench_cgroup: cg_floor failed (exit status {floor.wait()})")
    return int(line)


def measure(containers: int, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The two sides, alternating container by container: every container's
    nanoseconds of each, the medians and their ratio.  Its own cgroups (the
    holding cgroup, the C loop's) are under ``pynsbind-bench-PID`` in every
    hierarchy; pynsbind's are its fresh ``pynsbind-c-...`` names (what
    ``Cgroup.create(None, ...)`` makes), removed as the loop goes."""
    h = host()
    h.check()
    me = os.getpid()
    helper = subprocess.Popen(["sleep", "100000"])
    hold = Cgroup.create(f"pynsbind-bench-{me}/cg-hold")
    tmp = Path(tempfile.mkdtemp(prefix="pynsbind-bench-cg-"))
    py: list[int] = []
    c: list[int] = []
    floor = None
    try:
        hold.add(helper)
        exe = build_floor(tmp)
        write_plan(tmp / "plan", helper.pid, f"pynsbind-bench-{me}/cfloor-", hold)
        floor = subprocess.Popen(
            [str(exe), str(tmp / "plan")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for i in range(min(20, containers)):  # warm up: caches, compiled writes, page faults
            pynsbind_once(helper.pid, hold)
            floor_once(floor, i)
        for i in range(20, 20 + containers):
            if i % 2:  # alternate which goes first
                py.append(pynsbind_once(helper.pid, hold))
                c.append(floor_once(floor, i))
            else:
                c.append(floor_once(floor, i))
                py.append(pynsbind_once(helper.pid, hold))
            if log is not None and (i - 19) % 100 == 0:
                log(f"cgroup: {i - 19}/{containers}")
    finally:
        if floor is not None:
            assert floor.stdin is not None
            floor.stdin.close()
            floor.wait()
            assert floor.stdout is not None
            floor.stdout.close()
        helper.kill()
        helper.wait()
        hold.delete()
        shutil.rmtree(tmp)
    return {
        "host": h.mode,
        "hierarchies": [x.name for x in h.hierarchies],
        "containers": containers,
        "pynsbind_ns": py,
        "floor_ns": c,
        "pynsbind_median_ns": statistics.median(py),
        "floor_median_ns": statistics.median(c),
        "ratio": statistics.median(py) / statistics.median(c),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--containers", type=int, default=1000, help="containers of each")
    args = ap.parse_args()
    res = measure(args.containers)
    py, c = res["pynsbind_ns"], res["floor_ns"]
    print(
        f"host: {res['host']}, {len(res['hierarchies'])} hierarchies ({', '.join(res['hierarchies'])})"
    )
    print(f"per container: create + limits + attach + detach + delete, {len(py)} of each")
    print(
        f"  pynsbind  median {res['pynsbind_median_ns'] / 1000:8.1f} us   mean {statistics.mean(py) / 1000:8.1f} us"
    )
    print(
        f"  C floor   median {res['floor_median_ns'] / 1000:8.1f} us   mean {statistics.mean(c) / 1000:8.1f} us"
    )
    print(f"  ratio (pynsbind / C, medians): {res['ratio']:.3f}")


if __name__ == "__main__":
    main()
