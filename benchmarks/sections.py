#!/usr/bin/env python3
"""The sections of the suite (benchmarks/bench.py): each a function of the
Suite returning its part of the JSON.  See benchmarks/README.md for what each
measures and how.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/helpers.py
sys.path.insert(0, str(HERE))

import bench_spawn  # noqa: E402
from benchlib import (  # noqa: E402
    Failed,
    cgroup_dirs,
    maxrss_of,
    timed,
    wait_gone,
)
from suite import (  # noqa: E402
    FIFTY,
    PYNSBIND,
    SLEEP,
    Cli,
    Line,
    Step,
    Suite,
    pids_dir,
    rounds,
    short,
    table_rows,
    wait_count,
    wait_exec,
)

# ---- sections ----------------------------------------------------------------------------


def section_start(suite: Suite) -> dict[str, Any]:
    """bench_spawn.py's benchmark, with the suite's runtimes."""
    n = suite.args.n or (3 if suite.quick else 300)
    bench = bench_spawn.Bench(n, suite.quick, suite.log, runtimes=suite.args.runtimes)
    try:
        bench.setup()
        bench.measure()
        bench.measure_throughput()
    finally:
        bench.close()
    res = bench.results()
    res["table"] = bench_spawn.format_table(res)
    return res


def section_stop(suite: Suite) -> dict[str, Any]:
    """Stop one container: from the stop request to the container reaped and
    its cgroup gone, for a sleep as PID 1 and for 50 processes."""
    import pynsbind
    from pynsbind.lowlevel import pidfd_send_signal

    count = 2 if suite.quick else 30
    groups: dict[str, Any] = {}
    cases = [("sleep as PID 1", SLEEP, 1, "sleep")]
    if suite.work:
        cases.append(("50 processes", FIFTY, 50, "work"))
    for gname, args, procs, comm in cases:
        spec = suite.spec(args)
        lines: list[Line] = []

        def ready_pynsbind(spec: Any = spec, procs: int = procs, comm: str = comm) -> Any:
            proc = pynsbind.spawn(spec)
            suite.procs.append(proc)
            wait_exec(proc.pid, comm)
            wait_count(pids_dir(proc.cgroup.dirs), procs)
            return proc

        def stop_pynsbind(ready: Callable[[], Any] = ready_pynsbind) -> float:
            proc = ready()
            dirs = list(proc.cgroup.dirs.values())
            t0 = time.perf_counter_ns()
            proc.kill()
            proc.wait()
            wait_gone(dirs)
            dt = time.perf_counter_ns() - t0
            suite.procs.remove(proc)
            return dt

        def stop_floor(ready: Callable[[], Any] = ready_pynsbind) -> float:
            proc = ready()
            dirs = list(proc.cgroup.dirs.values())
            t0 = time.perf_counter_ns()
            pidfd_send_signal(proc.pidfd, signal.SIGKILL)
            os.waitid(os.P_PIDFD, proc.pidfd, os.WEXITED | os.WNOWAIT)
            for d in dirs:
                while True:
                    try:
                        os.rmdir(d)
                        break
                    except FileNotFoundError:
                        break
                    except OSError as exc:
                        if exc.errno != 16:  # EBUSY: the last task is still leaving
                            raise
            dt = time.perf_counter_ns() - t0
            proc.wait()  # pynsbind reaps it (its cgroup is gone already)
            suite.procs.remove(proc)
            return dt

        lines.append(
            Step(
                "floor: pidfd kill + waitid + rmdir",
                "floor",
                "the same pynsbind container stopped with bare system calls from Python: "
                "pidfd_send_signal(SIGKILL), waitid, rmdir of each cgroup directory",
                step=stop_floor,
            )
        )
        lines.append(
            Step(
                PYNSBIND,
                "contender",
                "Process.kill() + Process.wait() (which removes the container's cgroup)",
                step=stop_pynsbind,
            )
        )
        for cli in suite.clis:
            bundle = cli.bundle(f"stop-{procs}", args, cli.cgroup(f"stop-{procs}"), limits=True)
            dirs = cgroup_dirs(cli.cgroup(f"stop-{procs}"))

            def stop_cli(
                cli: Cli = cli,
                bundle: str = bundle,
                dirs: list[str] = dirs,
                procs: int = procs,
                comm: str = comm,
            ) -> float:
                cid = suite.cid()
                pid = cli.start(bundle, cid)
                wait_exec(pid, comm)
                wait_count(pids_dir(dirs), procs)
                dt: int = cli.call("stop", cid=cid, pid=pid, rel=cli.cgroup(f"stop-{procs}"))
                cli.stopped(cid)
                return dt

            lines.append(
                Step(
                    cli.name,
                    "contender",
                    f"{cli.rt.exe} kill ID KILL, wait for the process, {cli.rt.exe} delete ID, "
                    "cgroup directories gone",
                    step=stop_cli,
                )
            )
        lines += suite.skipped_lines()
        rounds(lines, count, suite.log, f"stop, {gname}")
        groups[gname] = {"rows": table_rows(lines, lines[0].name), "processes": procs}
    return {
        "what": "stop: from the stop request to the container reaped and its cgroup gone",
        "unit": "ms",
        "base": "floor: pidfd kill + waitid + rmdir",
        "rounds": count,
        "groups": groups,
    }


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            out[key] = int(parts[0]) * (1024 if len(parts) > 1 else 1)
    return out


def used(m: dict[str, int]) -> int:
    """Memory in use, as free(1) counts it: total - free - buffers - cache."""
    return m["MemTotal"] - m["MemFree"] - m["Buffers"] - m["Cached"] - m["SReclaimable"]


KERNEL_KEYS = ("SUnreclaim", "KernelStack", "PageTables", "Slab")


def cgroup_memory(dirs: Sequence[str]) -> dict[str, int]:
    """Memory charged to cgroups, summed: usage, kernel, user (v1: usage_in_bytes
    and kmem.usage_in_bytes; v2: memory.current and memory.stat's kernel)."""
    usage = kernel = 0
    for d in dirs:
        try:
            if os.path.exists(f"{d}/memory.usage_in_bytes"):
                usage += int(Path(f"{d}/memory.usage_in_bytes").read_text())
                kernel += int(Path(f"{d}/memory.kmem.usage_in_bytes").read_text())
            else:
                usage += int(Path(f"{d}/memory.current").read_text())
                for line in Path(f"{d}/memory.stat").read_text().splitlines():
                    k, v = line.split()
                    if k == "kernel":
                        kernel += int(v)
        except (OSError, ValueError):
            continue
    return {"usage": usage, "kernel": kernel, "user": usage - kernel}


def memory_dir(dirs: dict[str, str] | list[str]) -> str | None:
    items = list(dirs.values()) if isinstance(dirs, dict) else list(dirs)
    for d in items:
        if "/memory/" in d or os.path.exists(f"{d}/memory.current"):
            return d
    return None


def caller() -> tuple[int, int]:
    """This process's open fds and resident memory (bytes)."""
    gc.collect()
    fds = len(os.listdir("/proc/self/fd"))
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return fds, int(line.split()[1]) * 1024
    return fds, 0


def settle(pids: Sequence[int]) -> None:
    for pid in pids:
        wait_exec(pid)
    time.sleep(0.5)


def section_density(suite: Suite) -> dict[str, Any]:
    """N idle containers at once, per contender, one contender at a time."""
    import pynsbind

    cap = suite.args.density_max
    levels: list[tuple[str, int, bool]] = (
        [("5", 5, False), ("10", 10, False)]
        if suite.quick
        else [("100", 100, False), ("1000", 1000, False)]
    )
    if cap:
        levels.append((f"max (cap {cap})", cap, True))
    reserve = meminfo()["MemTotal"] // 4  # never take the machine below a quarter free
    spec = suite.spec(SLEEP)
    results: dict[str, Any] = {}

    def pynsbind_level(n: int, until_full: bool) -> dict[str, Any]:
        fds0, rss0 = caller()
        m0 = meminfo()
        procs: list[Any] = []
        error = ""
        t0 = time.perf_counter_ns()
        for i in range(n):
            if until_full and meminfo()["MemAvailable"] < reserve:
                error = "stopped at the memory reserve (a quarter of the machine)"
                break
            try:
                procs.append(pynsbind.spawn(spec))
            except OSError as exc:  # the first failure ends the level (the max one's way)
                error = f"spawn {i + 1}: {exc}"
                break
            suite.procs.append(procs[-1])
        t_start = time.perf_counter_ns() - t0
        settle([p.pid for p in procs])
        m1 = meminfo()
        fds1, rss1 = caller()
        mem = [memory_dir(p.cgroup.dirs) for p in procs]
        cg = cgroup_memory([d for d in mem if d])
        all_dirs = [d for p in procs for d in p.cgroup.dirs.values()]
        t0 = time.perf_counter_ns()
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
        wait_gone(all_dirs, limit=120)
        t_stop = time.perf_counter_ns() - t0
        for p in procs:
            suite.procs.remove(p)
        return summary_density(
            len(procs), n, error, t_start, t_stop, m0, m1, cg, (fds1 - fds0, rss1 - rss0)
        )

    def cli_level(cli: Cli, n: int, until_full: bool) -> dict[str, Any]:
        fds0, rss0 = caller()
        m0 = meminfo()
        jobs, rels = [], []
        for i in range(n):
            rel = cli.cgroup(f"d{i}")
            rels.append(rel)
            jobs.append([cli.bundle(f"d{i}", SLEEP, rel, limits=True), suite.cid()])
        state_before = du(cli.state)
        # in chunks, so that the memory reserve is looked at as it goes
        times: list[int] = []
        pids: list[int] = []
        ids: list[str] = []
        error = ""
        chunk = 50
        t0 = time.perf_counter_ns()
        for at in range(0, n, chunk):
            if until_full and meminfo()["MemAvailable"] < reserve:
                error = "stopped at the memory reserve (a quarter of the machine)"
                break
            part = jobs[at : at + chunk]
            out = cli.call("start_detached", jobs=part, keep_going=True)
            times += out["times"]
            pids += out["pids"]
            for (_, cid), pid in zip(part, out["pids"], strict=False):
                ids.append(cid)
                cli.live[cid] = pid
            if out["error"]:
                error = out["error"]
                break
        t_start = time.perf_counter_ns() - t0
        settle(pids)
        m1 = meminfo()
        fds1, rss1 = caller()
        state = du(cli.state) - state_before
        started = rels[: len(ids)]
        mem = [memory_dir(cgroup_dirs(rel)) for rel in started]
        cg = cgroup_memory([d for d in mem if d])
        t_stop = cli.call("stop_all", ids=ids, pids=pids, rels=started)
        for cid in ids:
            cli.stopped(cid)
        out = summary_density(
            len(ids), n, error, t_start, t_stop, m0, m1, cg, (fds1 - fds0, rss1 - rss0)
        )
        out["state_bytes_per_container"] = state / max(1, len(ids))
        return out

    for label, n, until_full in levels:
        contenders: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            (PYNSBIND, functools.partial(pynsbind_level, n, until_full))
        ]
        for cli in suite.clis:
            contenders.append((cli.name, functools.partial(cli_level, cli, n, until_full)))
        # a new order at each level
        shift = len(results) % len(contenders)
        level: dict[str, Any] = {}
        for name, fn in contenders[shift:] + contenders[:shift]:
            suite.log(f"density {label}: {name}, {n} containers")
            try:
                level[name] = fn()
            except (Failed, OSError) as exc:
                level[name] = {"error": str(exc), "containers": 0, "asked": n}
                suite.log(f"density {label}: {name} failed: {exc}")
            r = level[name]
            if "host_bytes_per_container" in r:
                suite.log(
                    f"density {label}: {name}: {r['containers']} containers, "
                    f"{r['host_bytes_per_container'] / 1024:.0f} KiB each on the host, "
                    f"start all {r['start_all_ns'] / 1e9:.2f} s, stop all {r['stop_all_ns'] / 1e9:.2f} s"
                )
        for rt_label, why in suite.skipped.items():
            if rt_label != "bwrap":
                level[short(rt_label)] = {"skipped": why, "containers": 0, "asked": n}
        results[label] = level
    return {
        "what": "N idle containers (each a sleep in its own cgroup, with a memory and a pids "
        "limit) kept alive at once",
        "levels": results,
    }


def du(path: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def summary_density(
    count: int,
    asked: int,
    error: str,
    t_start: int,
    t_stop: int,
    m0: dict[str, int],
    m1: dict[str, int],
    cg: dict[str, int],
    caller_delta: tuple[int, int],
) -> dict[str, Any]:
    k = max(1, count)
    return {
        "asked": asked,
        "containers": count,
        "error": error,
        "start_all_ns": t_start,
        "stop_all_ns": t_stop,
        "start_per_container_ns": t_start / k,
        "host_bytes_per_container": (used(m1) - used(m0)) / k,
        "host_kernel_bytes_per_container": {key: (m1[key] - m0[key]) / k for key in KERNEL_KEYS},
        "host_user_bytes_per_container": (m1["AnonPages"] - m0["AnonPages"]) / k,
        "cgroup_bytes_per_container": {key: v / k for key, v in cg.items()},
        "caller_fds_per_container": caller_delta[0] / k,
        "caller_rss_bytes_per_container": caller_delta[1] / k,
    }


def section_overhead(suite: Suite) -> dict[str, Any]:
    """A CPU-bound and a system-call-heavy program inside each container and on the host."""
    import pynsbind

    if suite.work is None:
        return {"skipped": "benchmarks/work.c could not be built (gcc, static libc)"}
    count = 2 if suite.quick else 10
    sizes = {
        "cpu": 1_000_000 if suite.quick else 50_000_000,
        "sys": 1_000 if suite.quick else 50_000,
    }
    groups: dict[str, Any] = {}
    for kind, size in sizes.items():
        args = ("/bin/work", kind, str(size))
        lines: list[Line] = []

        def parse(out: str) -> float:
            return float(out.split()[0])

        def host(args: Sequence[str] = args) -> float:
            assert suite.work is not None
            out = subprocess.run(
                [suite.work, *args[1:]], capture_output=True, text=True, check=True
            )
            return parse(out.stdout)

        def ours(spec: Any) -> float:
            res = pynsbind.run(spec=spec, capture_output=True, text=True)
            if res.returncode:
                raise Failed(f"pynsbind.run: exit status {res.returncode}: {res.stderr}")
            assert isinstance(res.stdout, str)
            return parse(res.stdout)

        lines.append(Step("host", "floor", "the program run on the host", step=host))
        lines.append(
            Step(
                PYNSBIND,
                "contender",
                "pynsbind.run, the profile (seccomp unconfined)",
                step=functools.partial(ours, suite.spec(args, limits=False)),
            )
        )
        lines.append(
            Step(
                "pynsbind, default seccomp",
                "reference",
                "the same with pynsbind's default seccomp profile",
                step=functools.partial(ours, suite.spec(args, limits=False, seccomp="default")),
            )
        )
        for cli in suite.clis:
            b = cli.bundle(f"work-{kind}", args, cli.cgroup(f"work-{kind}"))

            def run_cli(cli: Cli = cli, b: str = b) -> float:
                return parse(cli.call("output", bundle=b, cid=suite.cid()))

            lines.append(Step(cli.name, "contender", f"{cli.rt.exe} run", step=run_cli))
        bwrap = shutil.which("bwrap")
        if bwrap:
            argv = [
                bwrap,
                *bench_spawn.BWRAP_FLAGS,
                "--bind",
                str(suite.rootfs),
                "/",
                "--proc",
                "/proc",
                *args,
            ]

            def run_bwrap(argv: list[str] = argv) -> float:
                return parse(
                    subprocess.run(argv, capture_output=True, text=True, check=True).stdout
                )

            lines.append(Step("bwrap", "contender", "bwrap", step=run_bwrap))
        lines += suite.skipped_lines()
        rounds(lines, count, suite.log, f"overhead, {kind}")
        groups[f"{kind}: {' '.join(args[1:])}"] = {"rows": table_rows(lines, "host")}
    return {
        "what": "the work's own time (measured by the program around its loop), in and out of containers",
        "unit": "ms",
        "base": "host",
        "rounds": count,
        "groups": groups,
    }


def section_exec(suite: Suite) -> dict[str, Any]:
    """/bin/true executed into a running container."""
    count = 3 if suite.quick else 20
    per = 2 if suite.quick else 10
    spec = suite.spec(SLEEP)
    import pynsbind

    lines: list[Line] = []
    proc = pynsbind.spawn(spec)
    suite.procs.append(proc)
    wait_exec(proc.pid)

    def ours() -> float:
        t0 = time.perf_counter_ns()
        rc = proc.exec(["/bin/true"]).wait()
        dt = time.perf_counter_ns() - t0
        if rc != 0:
            raise Failed(f"exec: exit status {rc}")
        return dt

    lines.append(
        Step(
            PYNSBIND,
            "contender",
            "Process.exec(['/bin/true']).wait(): every namespace "
            "joined through the pidfd, sealed init",
            step=ours,
        )
    )
    if shutil.which("nsenter"):
        argv = ["nsenter", "--target", str(proc.pid), "--all", "/bin/true"]
        lines.append(
            Step(
                "ref: nsenter --all",
                "reference",
                "util-linux nsenter into the pynsbind container (no capability, cgroup or "
                "seccomp work, not sealed)",
                step=lambda: float(timed(argv)),
            )
        )
    running: list[tuple[Cli, str]] = []
    for cli in suite.clis:
        b = cli.bundle("exec", SLEEP, cli.cgroup("exec"), limits=True)
        cid = suite.cid()
        try:
            pid = cli.start(b, cid)
            wait_exec(pid)
        except Failed as exc:
            lines.append(Line(cli.name, "contender", "", reason=str(exc)))
            continue
        running.append((cli, cid))

        def cli_exec(cli: Cli = cli, cid: str = cid) -> float:
            times: list[int] = cli.call("exec_times", cid=cid, k=1)
            return float(times[0])

        lines.append(
            Step(
                cli.name,
                "contender",
                f"{cli.rt.exe} exec ID /bin/true",
                step=cli_exec,
            )
        )
    try:
        lines += suite.skipped_lines()
        rounds(lines, count * per, suite.log, "exec")
    finally:
        proc.kill()
        proc.wait()
        suite.procs.remove(proc)
        for cli, _ in running:
            cli.cleanup()
    return {
        "what": "exec of /bin/true into a running container (a sleep), to its exit",
        "unit": "ms",
        "base": PYNSBIND,
        "rounds": count * per,
        "groups": {"exec": {"rows": table_rows(lines, PYNSBIND)}},
    }


def section_cgroup(suite: Suite) -> dict[str, Any]:
    import bench_cgroup

    res = bench_cgroup.measure(20 if suite.quick else 500, suite.log)
    lines = [
        Line(
            "C floor (cg_floor.c)",
            "floor",
            "the same system calls from a C loop",
            times=res.pop("floor_ns"),
        ),
        Line(
            "pynsbind Cgroup",
            "contender",
            "Cgroup.create(None, resources) + add + move back + delete",
            times=res.pop("pynsbind_ns"),
        ),
    ]
    res.update(
        {
            "what": "the cgroup work of one container: create with limits (memory, swap, pids, "
            "CPU weight and quota) in every hierarchy, attach, detach, delete",
            "unit": "us",
            "base": lines[0].name,
            "groups": {"cgroup": {"rows": table_rows(lines, lines[0].name)}},
        }
    )
    return res


def section_import(suite: Suite) -> dict[str, Any]:
    import bench_import

    n = 3 if suite.quick else 30
    with tempfile.TemporaryDirectory(prefix="pynsbind-bench-import-") as tmp:
        if suite.quick:
            py, how = sys.executable, "this interpreter (an editable install: quick mode)"
        else:
            suite.log("import: a regular install into a temporary venv (pip install .)")
            py, how = str(bench_import.regular_install(Path(tmp) / "venv")), "a regular install"
        res = bench_import.measure(py, n, rounds=min(n, 6))
    res["install"] = how
    res["table"] = bench_import.format_table(res)
    return res


def section_rss(suite: Suite) -> dict[str, Any]:
    """Peak RSS of one run of each runtime (wait4's ru_maxrss)."""
    count = 1 if suite.quick else 5
    work = suite.work
    if work is None:
        return {"skipped": "benchmarks/work.c (the launcher that reads the peak RSS) did not build"}
    script = suite.tmp / "one_run.py"
    script.write_text(
        "import os, sys\nsys.path[:0] = " + repr([str(HERE.parent), str(HERE)]) + "\n"
        "import pynsbind\nfrom pynsbind import Mount, Namespace, Spec\n"
        "ns = Namespace.PID | Namespace.MNT | Namespace.UTS | Namespace.IPC | Namespace.NET "
        "| Namespace.CGROUP\n"
        f"spec = Spec(args=['/bin/true'], rootfs={str(suite.rootfs)!r}, namespaces=ns, "
        "mounts=[Mount.proc()], masked_paths=(), readonly_paths=(), env={'PATH': '/bin'}, "
        "seccomp='unconfined')\n"
        "if sys.argv[1:] == ['run']:\n"
        f"    with open({str(suite.spawners)!r}, 'a') as f:\n"
        "        f.write(f'{os.getpid()}\\n')\n"
        "    sys.exit(pynsbind.run(spec=spec).returncode)\n"
    )
    lines: list[Line] = []
    if suite.floor:
        argv = [suite.floor, str(suite.rootfs), "1"]
        lines.append(
            Step("C floor", "floor", "floor ROOTFS 1", step=lambda: float(maxrss_of(argv, work)))
        )
    run = [sys.executable, str(script), "run"]
    lines.append(
        Step(
            PYNSBIND,
            "contender",
            "python: import pynsbind, pynsbind.run(spec) (the interpreter included)",
            step=lambda: float(maxrss_of(run, work)),
        )
    )
    imp = [sys.executable, str(script)]
    lines.append(
        Step(
            "ref: python, import pynsbind and build the Spec",
            "reference",
            "the same script without the run: what the interpreter itself holds",
            step=lambda: float(maxrss_of(imp, work)),
        )
    )
    for cli in suite.clis:
        if cli.rt.start != "run":  # its peak is its run's: one command, one process
            lines.append(Line(cli.name, "contender", "", reason="measured on 'run' lines only"))
            continue
        b = cli.bundle("rss", ("/bin/true",), cli.cgroup("rss"))

        def rss_cli(cli: Cli = cli, b: str = b) -> float:
            return float(cli.call("maxrss", bundle=b, cid=suite.cid(), launcher=work))

        lines.append(Step(cli.name, "contender", f"{cli.rt.exe} run", step=rss_cli))
    bwrap = shutil.which("bwrap")
    if bwrap:
        argv_b = [
            bwrap,
            *bench_spawn.BWRAP_FLAGS,
            "--bind",
            str(suite.rootfs),
            "/",
            "--proc",
            "/proc",
            "/bin/true",
        ]
        lines.append(
            Step("bwrap", "contender", "bwrap", step=lambda: float(maxrss_of(argv_b, work)))
        )
    lines += suite.skipped_lines()
    rounds(lines, count, suite.log, "peak RSS")
    return {
        "what": "peak RSS of one run of one /bin/true container (wait4 ru_maxrss: the process and "
        "the descendants it waited for)",
        "unit": "KiB",
        "base": lines[0].name,
        "rounds": count,
        "groups": {"peak RSS": {"rows": table_rows(lines, lines[0].name)}},
    }


def section_namespaces(suite: Suite) -> dict[str, Any]:
    """pynsbind.run of the host's /bin/true with exactly one namespace kind, and none."""
    import pynsbind
    from pynsbind import Namespace, Spec

    count = 3 if suite.quick else 20
    per = 2 if suite.quick else 10
    lines: list[Line] = []
    for kind in [Namespace(0), *Namespace]:
        name = "none" if not kind else (kind.name or str(kind)).lower()
        spec = Spec(args=["/bin/true"], namespaces=kind, seccomp="unconfined")

        def one(spec: Any = spec) -> float:
            t0 = time.perf_counter_ns()
            rc = pynsbind.run(spec=spec).returncode
            dt = time.perf_counter_ns() - t0
            if rc:
                raise Failed(f"exit status {rc}")
            return dt

        try:
            one()
        except (OSError, Failed) as exc:
            lines.append(Line(name, "contender", "", reason=str(exc)))
            continue
        lines.append(
            Step(
                name,
                "floor" if not kind else "contender",
                f"Spec(args=['/bin/true'], namespaces={kind!r}, seccomp='unconfined')",
                step=one,
            )
        )
    rounds(lines, count * per, suite.log, "namespaces")
    return {
        "what": "pynsbind.run of the host's /bin/true with exactly one new namespace of each kind, "
        "against none (no rootfs: the host's filesystem)",
        "unit": "ms",
        "base": "none",
        "rounds": count * per,
        "groups": {"one namespace kind": {"rows": table_rows(lines, "none")}},
    }


#: the sections, in the order they run
SECTIONS: dict[str, Callable[[Suite], dict[str, Any]]] = {
    "start": section_start,
    "stop": section_stop,
    "density": section_density,
    "overhead": section_overhead,
    "exec": section_exec,
    "cgroup": section_cgroup,
    "import": section_import,
    "rss": section_rss,
    "namespaces": section_namespaces,
}
