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
import functools
import gc
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/helpers.py
sys.path.insert(0, str(HERE))

import bench_spawn  # noqa: E402
from benchlib import (  # noqa: E402
    OCI_RUNTIMES,
    UNIFIED,
    CliOps,
    Failed,
    Helper,
    OciRuntime,
    Runner,
    cgroup_dirs,
    loadavg,
    maxrss_of,
    quiet,
    runtime_dict,
    summarize,
    timed,
    version,
    wait_gone,
    write_bundle,
)

from tests.helpers import (  # noqa: E402
    build_static,
    find_busybox,
    make_rootfs,
    pynsbind_cgroups,
    remove_cgroups,
)

SECTIONS = ("start", "stop", "density", "overhead", "exec", "cgroup", "import", "rss", "namespaces")
#: Debian packages of the tools compared: program -> package
PACKAGES = {
    "crun": "crun",
    "runc": "runc",
    "bwrap": "bubblewrap",
    "gcc": "gcc",
    "nsenter": "util-linux",
    "unshare": "util-linux",
}
SLEEP = ("/bin/sleep", "1000000")
#: 50 processes: benchmarks/work.c, and 49 children of it
FIFTY = ("/bin/work", "procs", "50")
MEMORY_LIMIT = 64 << 20
PIDS_LIMIT = 128
PYNSBIND = "pynsbind"


# ---- progress and rows -----------------------------------------------------------------


class Log:
    """Progress on stderr, with the time since the start."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, msg: str) -> None:
        print(f"bench [{time.monotonic() - self.t0:7.1f}s] {msg}", file=sys.stderr, flush=True)


@dataclass
class Line:
    """One line of a section: a contender, the section's floor or a reference."""

    name: str
    kind: str  # "contender", "floor" or "reference"
    what: str
    reason: str = ""
    times: list[float] = field(default_factory=list)

    @property
    def available(self) -> bool:
        return not self.reason

    def drop(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason


def table_rows(lines: Sequence[Line], base: str | None) -> list[dict[str, Any]]:
    """The JSON rows of a section: each line's statistics and its median's ratio
    to the base line's."""
    stats = {ln.name: summarize(ln.times) for ln in lines if ln.available and ln.times}
    ref = stats.get(base or "", {}).get("median_ns")
    rows = []
    for ln in lines:
        row: dict[str, Any] = {
            "name": ln.name,
            "kind": ln.kind,
            "what": ln.what,
            "available": ln.name in stats,
        }
        if ln.name in stats:
            row.update(stats[ln.name])
            row["samples"] = ln.times
            row["vs_base"] = stats[ln.name]["median_ns"] / ref if ref else None
        else:
            row["skipped"] = ln.reason or "no samples"
        rows.append(row)
    return rows


def rounds(lines: Sequence[Line], count: int, log: Log, label: str) -> None:
    """Interleaved rounds: each round runs every available line's step once, in
    a new order (rotated each round)."""
    for i in range(count):
        live = [ln for ln in lines if ln.available and hasattr(ln, "step")]
        shift = i % len(live) if live else 0
        for ln in live[shift:] + live[:shift]:
            try:
                ln.times.append(ln.step())  # type: ignore[attr-defined]
            except (Failed, OSError, subprocess.SubprocessError) as exc:
                ln.drop(f"failed: {exc}")
                log(f"{label}: drop {ln.name}: {exc}")
        if count <= 10 or (i + 1) % max(1, count // 10) == 0:
            log(f"{label}: round {i + 1}/{count}")


@dataclass
class Step(Line):
    """A Line whose measurement is a function of no argument returning one sample."""

    step: Callable[[], float] | None = None


# ---- the suite -----------------------------------------------------------------------


class Cli:
    """One OCI runtime on this host: its runner (here or the helper), its state
    directory, and its own copy of the rootfs."""

    def __init__(self, suite: Suite, rt: OciRuntime, runner: Runner) -> None:
        self.rt = rt
        self.suite = suite
        self.runner = runner
        self.slug = rt.label.replace(" ", "-").replace("+", "-")
        self.name = short(rt.label)
        self.state = str(suite.tmp / f"state-{self.slug}")
        os.makedirs(self.state)
        assert suite.rootfs is not None
        self.rootfs = shutil.copytree(
            suite.rootfs, suite.tmp / f"rootfs-{self.slug}", symlinks=True
        )
        self.live: dict[str, int] = {}  # id -> pid, the containers not yet deleted

    def call(self, op: str, **args: Any) -> Any:
        return self.runner.call(op, rt=runtime_dict(self.rt), root=self.state, **args)

    def cgroup(self, name: str) -> str:
        """The relative cgroup path of one of this runtime's containers."""
        return f"{self.suite.prefix}/{self.slug}-{name}"

    def bundle(self, name: str, args: Sequence[str], cgroup: str, limits: bool = False) -> str:
        res = None
        if limits:
            res = {"memory": {"limit": MEMORY_LIMIT}, "pids": {"limit": PIDS_LIMIT}}
        b = self.suite.tmp / "bundles" / self.slug / name
        write_bundle(b, self.rootfs, "/" + cgroup, args, res)
        return str(b)

    def start(self, bundle: str, cid: str) -> int:
        """A detached container; its pid."""
        out = self.call("start_detached", jobs=[[bundle, cid]])
        self.live[cid] = out["pids"][0]
        pid: int = out["pids"][0]
        return pid

    def stopped(self, cid: str) -> None:
        self.live.pop(cid, None)

    def cleanup(self) -> list[str]:
        if not self.live:
            return []
        left: list[str] = self.call("force_delete", ids=list(self.live))
        self.live.clear()
        return left


class Suite:
    """Owns the temp dir, the rootfs, the runtimes and what must be cleaned."""

    def __init__(self, args: argparse.Namespace, log: Log) -> None:
        self.args = args
        self.quick: bool = args.quick
        self.log = log
        self.tmp = Path(tempfile.mkdtemp(prefix="pynsbind-bench-"))
        os.chmod(self.tmp, 0o755)
        self.prefix = f"pynsbind-bench-{os.getpid()}"
        self.rootfs: Path | None = None
        self.work: str | None = None
        self.floor: str | None = None
        self.clis: list[Cli] = []
        self.skipped: dict[str, str] = {}
        self.helper: Helper | None = None
        self.plain: Helper | None = None
        self.procs: list[Any] = []  # pynsbind containers still running
        self.versions: dict[str, str] = {}
        self.notes: list[str] = []
        self.ids = 0
        #: the processes of the suite's other than this one that run pynsbind
        #: containers (a line of the rss section), one pid a line
        self.spawners = self.tmp / "spawners"

    def cid(self) -> str:
        self.ids += 1
        return f"pnb-{os.getpid()}-{self.ids}"

    # -- setup --

    def setup(self) -> None:
        busybox = find_busybox()
        if busybox is None:
            raise SystemExit("bench: needs a static busybox (Debian: busybox-static)")
        try:
            self.work = build_static("bench-work", HERE / "work.c")
        except Exception as exc:
            self.log(f"no overhead workload: {exc}")
        self.rootfs = make_rootfs(
            self.tmp / "rootfs",
            busybox,
            applets=("true", "sleep", "sh"),
            dirs=("bin", "proc", "dev"),
            users=False,
        )
        if self.work:
            shutil.copy(self.work, self.rootfs / "bin" / "work")
        floor, why = bench_spawn.build_floor(self.tmp)
        self.floor = floor
        if why:
            self.log(f"no C floor: {why}")
        import pynsbind

        self.versions["pynsbind"] = pynsbind.__version__
        for rt in self.args.runtimes:
            why = rt.why_missing()
            if not why:
                try:
                    runner = self.runner_for(rt)
                    cli = Cli(self, rt, runner)
                    b = cli.bundle("check", ("/bin/true",), cli.cgroup("check"))
                    why = cli.call("check", bundle=b, cid=self.cid())
                except (Failed, OSError) as exc:
                    why = str(exc)
            if why:
                self.skipped[rt.label] = why
                self.log(f"skip {rt.label}: {why}")
                continue
            self.versions[rt.exe] = version([rt.exe, "--version"])
            self.clis.append(cli)
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            self.skipped["bwrap"] = "bwrap is not installed (Debian: apt-get install bubblewrap)"
        else:
            self.versions["bwrap"] = version([bwrap, "--version"])

    def runner_for(self, rt: OciRuntime) -> Runner:
        """Every OCI runtime runs from a helper, a subreaper that waits for the
        detached containers (this process is not one: the orphans of bwrap and
        the other commands it runs must go on to be reaped by init); crun's in a
        private mount namespace."""
        if not rt.private_mount_ns:
            if self.plain is None:
                self.plain = Helper(unmount_unified=False)
            return self.plain
        if self.helper is None:
            hybrid = os.path.ismount(UNIFIED)
            if hybrid and shutil.which("unshare") is None:
                raise Failed(f"{rt.exe} needs a private mount namespace here; unshare is missing")
            self.helper = Helper(unmount_unified=hybrid)
        return self.helper

    def spec(self, args: Sequence[str], limits: bool = True, **kw: Any) -> Any:
        """The profile as a pynsbind Spec: six namespaces, the rootfs bound, proc,
        seccomp unconfined; with limits, its own cgroup with a memory and a pids
        limit (pynsbind's fresh ``pynsbind-c-...`` cgroup)."""
        from pynsbind import Mount, Namespace, Resources, Spec

        ns = (
            Namespace.PID
            | Namespace.MNT
            | Namespace.UTS
            | Namespace.IPC
            | Namespace.NET
            | Namespace.CGROUP
        )
        res = Resources(memory_max=MEMORY_LIMIT, pids_max=PIDS_LIMIT) if limits else None
        fields: dict[str, Any] = {
            "args": list(args),
            "rootfs": str(self.rootfs),
            "namespaces": ns,
            "mounts": [Mount.proc()],
            "masked_paths": (),
            "readonly_paths": (),
            "env": {"PATH": "/bin"},
            "seccomp": "unconfined",
            "resources": res,
        }
        fields.update(kw)
        return Spec(**fields)

    def skipped_lines(self) -> list[Line]:
        """A line for each OCI runtime that cannot run here, with the reason."""
        return [
            Line(short(label), "contender", "", reason=why)
            for label, why in self.skipped.items()
            if label != "bwrap"
        ]

    # -- cleanup --

    def close(self) -> list[str]:
        left: list[str] = []
        for proc in self.procs:
            with contextlib.suppress(Exception):
                proc.kill()
                proc.wait()
        self.procs.clear()
        for cli in self.clis:
            try:
                left += [f"{cli.rt.label} container {c}" for c in cli.cleanup()]
            except Failed as exc:
                left.append(f"{cli.rt.label}: {exc}")
        if self.helper is not None:
            try:
                left += self.helper.call("remove_hidden", prefix=self.prefix)
            except Failed as exc:
                left.append(f"helper: {exc}")
            self.helper.close()
            self.helper = None
        if self.plain is not None:
            self.plain.close()
            self.plain = None
        left += remove_cgroups(pynsbind_cgroups(pid=os.getpid(), prefix="pynsbind-bench-"))
        for cli in self.clis:
            if os.path.isdir(cli.state) and os.listdir(cli.state):
                left.append(f"{cli.rt.label} state: {sorted(os.listdir(cli.state))}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        return left


def short(label: str) -> str:
    """A runtime's name in the sections after start: its label less " run"."""
    return label.removesuffix(" run")


def pids_dir(dirs: dict[str, str] | list[str]) -> str:
    """The directory of a cgroup whose cgroup.procs lists its processes: the
    pids hierarchy's, else the cgroup2 one."""
    items = list(dirs.values()) if isinstance(dirs, dict) else list(dirs)
    for d in items:
        if "/pids/" in d:
            return d
    for d in items:
        if os.path.exists(os.path.join(d, "cgroup.controllers")):
            return d
    return items[0]


def wait_count(d: str, count: int, limit: float = 30.0) -> None:
    CliOps().wait_procs([d], count, limit)


def wait_exec(pid: int, comm: str = "sleep", limit: float = 30.0) -> None:
    """Wait until a process has exec'd the command (its comm), a failure detector."""
    end = time.monotonic() + limit
    while True:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == comm:
                return
        except OSError as exc:
            raise Failed(f"process {pid} is gone") from exc
        if time.monotonic() > end:
            raise Failed(f"process {pid} did not exec {comm}")
        time.sleep(0.001)


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
            except OSError as exc:
                error = f"spawn {i + 1}: {exc}"
                if not until_full:
                    break
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
        v = a / b if a is not None and b else None
        add(
            "density: host memory per container, pynsbind / crun",
            v,
            "<= 1x",
            None if v is None else v <= 1.0,
            "at the 1000 level (or the first level run)",
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
        out.append(f"  {t['what']:60} {vs:>10}  target {t['target']:9} {verdict}{note}")
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
    fns: dict[str, Callable[[Suite], dict[str, Any]]] = {
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
    try:
        suite.setup()
        for name in wanted:
            log(f"section {name}")
            t0 = time.monotonic()
            try:
                sections[name] = fns[name](suite)
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
