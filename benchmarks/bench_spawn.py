#!/usr/bin/env python3
"""The spawn benchmark: one container profile, run N times by every contender.

    python benchmarks/bench_spawn.py [-n N] [--quick] [--json OUT.json]

The profile: /bin/true (static busybox) in new pid, mount, uts, ipc, net and
cgroup namespaces, the rootfs bound onto itself, proc mounted, pivot_root.  The
contenders, in interleaved rounds so that drift hits everyone alike:

- the C floor (benchmarks/floor.c): clone3 and the few syscalls above, nothing
  more; it times its own loop;
- pynsbind.run() from this Python process;
- ``crun run``, ``runc run`` and ``bwrap``, each timed per invocation with
  subprocess.run from Python;
- reference lines: a bare subprocess.run(['/bin/true']), the cost of launching a
  process from Python at all.

Then the throughput (containers/s) of pynsbind with 1, 2 and 8 spawner threads
in one process, and of the C floor as 1, 2 and 8 processes.  Results are
medians and ratios; see benchmarks/README.md for what each line means and the
fairness notes.  Needs root.  A missing peer is skipped with the reason.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # what the tests share with the benchmarks: tests/helpers.py

from tests.helpers import (  # noqa: E402
    find_busybox,
    make_rootfs,
    pynsbind_cgroups,
    remove_cgroups,
)

CGROUP_ROOT = Path("/sys/fs/cgroup")
UNIFIED = CGROUP_ROOT / "unified"

#: pynsbind's default capability set (pynsbind.spec.DEFAULT_CAPABILITIES, runc's
#: and Docker's default); crun and runc get the same in their config.json.
DEFAULT_CAPS = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
)
OCI_NAMESPACES = ("pid", "mount", "uts", "ipc", "network", "cgroup")
BWRAP_FLAGS = (
    "--unshare-pid",
    "--unshare-uts",
    "--unshare-ipc",
    "--unshare-net",
    "--unshare-cgroup",
)
THREADS = (1, 2, 8)

FLOOR = "C floor"
FLOOR_LO = "ref: C floor + lo up"
FLOOR_SEALED = "C floor + sealed exec + device cgroup"
PYNSBIND = "pynsbind.run"
PYNSBIND_DEFAULT = "pynsbind.run, default spec"
TP_PYNSBIND = "pynsbind.run, threads in one process"
TP_FLOOR = "C floor, processes in parallel"


# ---- statistics ------------------------------------------------------------------


def percentile(sorted_ns: Sequence[int], q: float) -> int:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(q * len(sorted_ns)))
    return sorted_ns[rank - 1]


def summarize(times: Sequence[int]) -> dict[str, float]:
    s = sorted(times)
    return {
        "count": len(s),
        "median_ns": float(statistics.median(s)),
        "mean_ns": float(statistics.fmean(s)),
        "p90_ns": float(percentile(s, 0.9)),
        "min_ns": float(s[0]),
        "max_ns": float(s[-1]),
    }


# ---- the C floor ---------------------------------------------------


def build_floor(tmp: Path) -> tuple[str | None, str]:
    """Compile floor.c with gcc -O2; (path, "") or (None, why not)."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return None, "no C compiler (gcc) to build benchmarks/floor.c"
    out = tmp / "floor"
    res = subprocess.run(
        [cc, "-O2", "-Wall", "-Wextra", "-o", str(out), str(HERE / "floor.c")],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        return None, f"cannot build floor.c: {res.stderr.strip()[-300:]}"
    return str(out), ""


# ---- contenders -------------------------------------------------------------------


class Failed(Exception):
    """A contender did not run its container (it is dropped from the table)."""


@dataclass
class Row:
    """One line of the table: a contender or a reference."""

    name: str
    kind: str  # "contender" or "reference"
    what: str
    available: bool = True
    reason: str = ""
    times: list[int] = field(default_factory=list)
    batch: Callable[[int], list[int]] | None = None

    def skip(self, reason: str) -> None:
        self.available = False
        self.reason = reason
        self.times = []


def _timed(argv: Sequence[str]) -> int:
    t0 = time.perf_counter_ns()
    res = subprocess.run(argv)
    dt = time.perf_counter_ns() - t0
    if res.returncode != 0:
        raise Failed(f"{argv[0]} exited with status {res.returncode}")
    return dt


def check_command(argv: Sequence[str]) -> str:
    """Run once with output captured; "" when it exits 0, else why not."""
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{argv[0]}: {exc}"
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or [""]
        return f"exit status {res.returncode}: {tail[0][:200]}"
    return ""


class Helper:
    """A long-lived Python process in a private mount namespace where the
    cgroup2 mount of a hybrid host is unmounted (crun 1.8 refuses hybrid
    layouts).  It times commands with subprocess.run exactly as this process
    does, so crun pays no per-call unshare wrapper."""

    def __init__(self, unmount_unified: bool) -> None:
        me = [sys.executable, str(Path(__file__).resolve()), "--helper"]
        if unmount_unified:
            argv = [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                f'umount {UNIFIED} && exec "$0" "$@"',
                *me,
            ]
        else:
            argv = me
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        ready = self._recv()
        if not ready.get("ready"):
            raise Failed(f"the helper did not start: {ready}")

    def _recv(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise Failed(f"the helper exited (status {self.proc.wait()})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = self._recv()
        if reply.get("error"):
            raise Failed(reply["error"])
        return reply

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def helper_main() -> int:
    """The --helper side: read {"argvs": [...], "check": bool} lines, run each
    argv with subprocess.run, answer with the times.  Protocol on dups of fds
    0 and 1; the commands get /dev/null and stderr."""
    proto_in = os.fdopen(os.dup(0), "r")
    proto_out = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)

    def send(obj: dict[str, Any]) -> None:
        proto_out.write(json.dumps(obj) + "\n")
        proto_out.flush()

    send({"ready": True})
    for line in proto_in:
        req = json.loads(line)
        try:
            if req.get("check"):
                send({"why": check_command(req["argvs"][0])})
            else:
                send({"times": [_timed(argv) for argv in req["argvs"]]})
        except Failed as exc:
            send({"error": str(exc)})
    return 0


class Bench:
    """Owns the temp dir, the contenders and everything that must be cleaned."""

    def __init__(self, n: int, quick: bool, log: Callable[[str], None]) -> None:
        self.n = n
        self.quick = quick
        self.log = log
        self.tmp = Path(tempfile.mkdtemp(prefix="pynsbind-bench-"))
        self.prefix = f"pynsbind-bench-{os.getpid()}"
        self.helper: Helper | None = None
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.versions: dict[str, str] = {}
        self.throughput: dict[str, dict[str, float | None]] = {}
        self.throughput_samples: dict[str, dict[str, list[float]]] = {}
        self.rootfs: Path | None = None
        self.floor: str | None = None
        self.spec: Any = None
        self.default_spec: Any = None
        self.ids = 0
        self.left_behind: list[str] = []
        self.round_sizes: list[int] = []
        self.load_before = loadavg()
        self.load_after = ""

    # -- setup --

    def setup(self) -> None:
        busybox = find_busybox()
        no_rootfs = "" if busybox else "no static busybox for the rootfs (Debian: busybox-static)"
        if busybox:
            # /bin/busybox, /bin/true, /proc and an empty /dev (crun fails without one)
            self.rootfs = make_rootfs(
                self.tmp / "rootfs",
                busybox,
                applets=("true",),
                dirs=("bin", "proc", "dev"),
                users=False,
            )
        self.add(
            FLOOR,
            "contender",
            "C: clone3 + bind + proc + pivot_root + exec, timed in C",
            no_rootfs or self.setup_floor,
            self.floor_batch,
        )
        if self.floor is not None:
            self.add(
                FLOOR_LO,
                "reference",
                "the C floor, also bringing lo up as every other contender does",
                check_command([self.floor, str(self.rootfs), "1", "lo"]),
                functools.partial(self.floor_batch, lo=True),
            )
            self.add(
                FLOOR_SEALED,
                "contender",
                "the C floor, also doing what pynsbind always does: exec through a sealed "
                "memfd copy of its init, a v1 devices cgroup per container",
                self.setup_floor_sealed,
                functools.partial(self.floor_batch, sealed=True),
            )
        self.add(
            PYNSBIND,
            "contender",
            "pynsbind.run(spec=...) in this process (the profile, seccomp unconfined)",
            no_rootfs or self.setup_pynsbind,
            self.pynsbind_batch,
        )
        if self.spec is not None:
            self.add(
                PYNSBIND_DEFAULT,
                "reference",
                "pynsbind.run(args, rootfs=...) with every default: the default seccomp "
                "profile, proc, /dev, sysfs, masked and read-only paths",
                "",
                functools.partial(self.pynsbind_batch, default=True),
            )
        self.add(
            "crun run",
            "contender",
            "subprocess.run(['crun', 'run', ...]) in a private-mount-ns helper",
            no_rootfs or (lambda: self.setup_oci("crun")),
            None,
        )
        self.add(
            "runc run",
            "contender",
            "subprocess.run(['runc', 'run', ...])",
            no_rootfs or (lambda: self.setup_oci("runc")),
            None,
        )
        self.add(
            "bwrap",
            "contender",
            "subprocess.run(['bwrap', ...])",
            no_rootfs or self.setup_bwrap,
            None,
        )
        self.add(
            "ref: subprocess.run(['/bin/true'])",
            "reference",
            "no container: what launching any process from Python costs",
            self.setup_true,
            None,
        )
        crun = self.row("crun run")
        if crun.available and self.helper is not None:
            self.add(
                "ref: the same, in crun's helper",
                "reference",
                "subprocess.run(['/bin/true']) from the helper that times crun",
                "",
                self.helper_true_batch,
            )
        if os.path.ismount(UNIFIED) and shutil.which("unshare"):
            wrap = [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                f"umount {UNIFIED} && exec /bin/true",
            ]
            self.add(
                "ref: unshare -m + umount wrapper",
                "reference",
                "what a per-call wrapper would add to crun (not in crun's line)",
                check_command(wrap),
                lambda k: [_timed(wrap) for _ in range(k)],
            )

    def add(
        self,
        name: str,
        kind: str,
        what: str,
        setup: str | Callable[[], Any],
        batch: Callable[[int], list[int]] | None,
    ) -> None:
        row = Row(name, kind, what, batch=batch)
        self.rows.append(row)
        try:
            why = setup if isinstance(setup, str) else setup()
        except Failed as exc:
            why = str(exc)
        if isinstance(why, tuple):  # (batch, "") from the setups that make one
            row.batch, why = why
        if why:
            row.skip(why)
            self.log(f"skip {name}: {why}")

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.name == name)

    def setup_floor(self) -> str:
        self.floor, why = build_floor(self.tmp)
        if self.floor is None:
            return why
        return check_command([self.floor, str(self.rootfs), "1"])

    def init_path(self) -> str | None:
        try:
            import importlib.util

            found = importlib.util.find_spec("pynsbind._nsbinit")
        except ImportError:
            return None
        return None if found is None else found.origin

    def setup_floor_sealed(self) -> str:
        init = self.init_path()
        if init is None:
            return "pynsbind's init (pynsbind/_nsbinit) is not installed"
        assert self.floor is not None
        return check_command([self.floor, str(self.rootfs), "1", f"sealed={init}", "devices"])

    def setup_pynsbind(self) -> str:
        try:
            import pynsbind
            from pynsbind import Mount, Namespace, Spec
        except ImportError as exc:
            return f"pynsbind is not importable ({exc}); pip install -e ."
        ns = (
            Namespace.PID
            | Namespace.MNT
            | Namespace.UTS
            | Namespace.IPC
            | Namespace.NET
            | Namespace.CGROUP
        )
        self.spec = Spec(
            args=["/bin/true"],
            rootfs=str(self.rootfs),
            namespaces=ns,
            mounts=[Mount.proc()],
            masked_paths=(),
            readonly_paths=(),
            env={"PATH": "/bin"},
            seccomp="unconfined",
        )
        self.default_spec = Spec(args=["/bin/true"], rootfs=str(self.rootfs))
        from pynsbind.spec import DEFAULT_CAPABILITIES

        if sorted(c.name for c in DEFAULT_CAPABILITIES) != sorted(DEFAULT_CAPS):
            self.notes.append(
                "pynsbind's default capabilities differ from the set given to crun and runc"
            )
        try:
            res = pynsbind.run(spec=self.spec, capture_output=True)
        except OSError as exc:
            return f"pynsbind.run failed: {exc}"
        if res.returncode != 0:
            return f"pynsbind.run: exit status {res.returncode}: {res.stderr!r}"
        self.versions["pynsbind"] = pynsbind.__version__
        return ""

    def oci_config(self, rootfs: Path, runtime: str) -> dict[str, Any]:
        caps = [f"CAP_{c}" for c in DEFAULT_CAPS]
        return {
            "ociVersion": "1.0.2",
            "process": {
                "terminal": False,
                "user": {"uid": 0, "gid": 0},
                "args": ["/bin/true"],
                "env": ["PATH=/bin"],
                "cwd": "/",
                "capabilities": {
                    k: caps for k in ("bounding", "effective", "permitted", "inheritable")
                },
                "noNewPrivileges": True,
            },
            "root": {"path": str(rootfs), "readonly": False},
            "mounts": [
                {
                    "destination": "/proc",
                    "type": "proc",
                    "source": "proc",
                    "options": ["nosuid", "nodev", "noexec"],
                }
            ],
            "linux": {
                "namespaces": [{"type": t} for t in OCI_NAMESPACES],
                # absolute: under our own prefix at the top of each hierarchy,
                # never relative to the cgroup this process sits in
                "cgroupsPath": f"/{self.prefix}/{runtime}",
            },
        }

    def setup_oci(self, runtime: str) -> tuple[Callable[[int], list[int]], str] | str:
        exe = shutil.which(runtime)
        if exe is None:
            return f"{runtime} is not installed (Debian: apt-get install {runtime})"
        self.versions[runtime] = _version([exe, "--version"])
        assert self.rootfs is not None
        bundle = self.tmp / runtime
        bundle.mkdir()
        # its own copy of the rootfs: the runtimes create /dev nodes in it
        rootfs = shutil.copytree(self.rootfs, bundle / "rootfs", symlinks=True)
        (bundle / "config.json").write_text(json.dumps(self.oci_config(Path(rootfs), runtime)))
        state = self.tmp / f"state-{runtime}"
        state.mkdir()

        def argv() -> list[str]:
            self.ids += 1
            return [
                exe,
                "--root",
                str(state),
                "run",
                "--bundle",
                str(bundle),
                f"pnb-{os.getpid()}-{runtime}-{self.ids}",
            ]

        if runtime == "crun":
            hybrid = os.path.ismount(UNIFIED)
            if hybrid and shutil.which("unshare") is None:
                return "crun needs a private mount namespace here and unshare is missing"
            try:
                self.helper = Helper(unmount_unified=hybrid)
            except (OSError, Failed) as exc:
                return f"cannot start crun's helper: {exc}"
            if hybrid:
                self.notes.append(
                    "crun 1.8 refuses this hybrid cgroup layout: it runs from a helper "
                    f"process in a private mount namespace where {UNIFIED} is unmounted "
                    "(crun then uses the v1 hierarchies, like runc); the helper times each "
                    "crun run with subprocess.run, so no wrapper cost is in crun's line"
                )
            helper = self.helper
            why = str(helper.call({"argvs": [argv()], "check": True})["why"])

            def batch(k: int) -> list[int]:
                times: list[int] = helper.call({"argvs": [argv() for _ in range(k)]})["times"]
                return times

            return batch, why
        why = check_command(argv())
        return (lambda k: [_timed(argv()) for _ in range(k)]), why

    def setup_bwrap(self) -> tuple[Callable[[int], list[int]], str] | str:
        exe = shutil.which("bwrap")
        if exe is None:
            return "bwrap is not installed (Debian: apt-get install bubblewrap)"
        self.versions["bwrap"] = _version([exe, "--version"])
        argv = [exe, *BWRAP_FLAGS, "--bind", str(self.rootfs), "/", "--proc", "/proc", "/bin/true"]
        return (lambda k: [_timed(argv) for _ in range(k)]), check_command(argv)

    def setup_true(self) -> tuple[Callable[[int], list[int]], str]:
        argv = ["/bin/true"]
        return (lambda k: [_timed(argv) for _ in range(k)]), check_command(argv)

    def helper_true_batch(self, k: int) -> list[int]:
        assert self.helper is not None
        times: list[int] = self.helper.call({"argvs": [["/bin/true"]] * k})["times"]
        return times

    # -- the runs --

    def floor_batch(self, k: int, lo: bool = False, sealed: bool = False) -> list[int]:
        assert self.floor is not None
        argv = [self.floor, str(self.rootfs), str(k), "each"] + (["lo"] if lo else [])
        if sealed:
            argv += ["lo", f"sealed={self.init_path()}", "devices"]
        res = subprocess.run(argv, capture_output=True, text=True)
        if res.returncode != 0:
            raise Failed(f"floor exited with status {res.returncode}: {res.stderr.strip()}")
        return [int(x) for x in res.stdout.split("\n")[1:] if x]

    def pynsbind_batch(self, k: int, default: bool = False) -> list[int]:
        import pynsbind

        run, spec = pynsbind.run, self.default_spec if default else self.spec
        times = []
        for _ in range(k):
            t0 = time.perf_counter_ns()
            res = run(spec=spec)
            times.append(time.perf_counter_ns() - t0)
            if res.returncode != 0:
                raise Failed(f"pynsbind.run: exit status {res.returncode}")
        return times

    def rounds(self) -> tuple[int, int]:
        size = max(1, min(25, self.n // 10))
        return math.ceil(self.n / size), size

    def measure(self) -> None:
        live = [r for r in self.rows if r.available]
        warm = 1 if self.quick else 5
        for r in live:
            self.run_batch(r, warm, keep=False)
        count, size = self.rounds()
        self.log(f"{count} rounds of {size} containers per contender")
        for i in range(count):
            k = min(size, self.n - i * size)
            self.round_sizes.append(k)
            shift = i % len(live) if live else 0
            for r in live[shift:] + live[:shift]:  # a new order each round
                if r.available:
                    self.run_batch(r, k, keep=True)
            self.log(f"round {i + 1}/{count} done")

    def run_batch(self, row: Row, k: int, keep: bool) -> None:
        assert row.batch is not None
        try:
            times = row.batch(k)
        except (Failed, OSError) as exc:
            row.skip(f"failed while timing: {exc}")
            self.log(f"drop {row.name}: {row.reason}")
            return
        if len(times) != k:
            row.skip(f"returned {len(times)} times for {k} containers")
            return
        if keep:
            row.times.extend(times)

    def throughput_total(self) -> int:
        """Containers per throughput run (a multiple of 8: split evenly)."""
        return 16 if self.quick else max(64, 8 * math.ceil(self.n / 8))

    def measure_throughput(self) -> None:
        """Each level alternates pynsbind and the floor, repeated; the median
        of the repetitions is reported, every repetition kept in the JSON."""
        total = self.throughput_total()
        runs: list[tuple[str, Callable[[int, int], float]]] = []
        if self.row(PYNSBIND).available:
            runs.append((TP_PYNSBIND, self.pynsbind_threads))
        if self.row(FLOOR).available:
            runs.append((TP_FLOOR, self.floor_procs))
        samples: dict[str, dict[str, list[float]]] = {
            n: {str(t): [] for t in THREADS} for n, _ in runs
        }
        failed: set[tuple[str, int]] = set()
        for rep in range(1 if self.quick else 3):
            for t in THREADS:
                for name, fn in runs:
                    if (name, t) in failed:
                        continue
                    try:
                        samples[name][str(t)].append(fn(t, total))
                    except (Failed, OSError) as exc:
                        self.log(f"throughput of {name} with {t} at once failed: {exc}")
                        failed.add((name, t))
            self.log(f"throughput repetition {rep + 1} done")
        for name, _ in runs:
            self.throughput[name] = {
                t: (None if (name, int(t)) in failed else statistics.median(v))
                for t, v in samples[name].items()
            }
        self.throughput_samples = samples

    def pynsbind_threads(self, threads: int, total: int) -> float:
        import pynsbind

        per = total // threads
        errors: list[str] = []
        start = threading.Barrier(threads + 1)

        def work() -> None:
            start.wait()
            for _ in range(per):
                try:
                    rc = pynsbind.run(spec=self.spec).returncode
                except OSError as exc:
                    errors.append(str(exc))
                    return
                if rc != 0:
                    errors.append(f"exit status {rc}")
                    return

        pool = [threading.Thread(target=work) for _ in range(threads)]
        for th in pool:
            th.start()
        start.wait()
        t0 = time.perf_counter_ns()
        for th in pool:
            th.join()
        dt = time.perf_counter_ns() - t0
        if errors:
            raise Failed(f"pynsbind with {threads} threads: {errors[0]}")
        return per * threads / (dt / 1e9)

    def floor_procs(self, procs: int, total: int) -> float:
        assert self.floor is not None
        per = total // procs
        t0 = time.perf_counter_ns()
        pool = [
            subprocess.Popen([self.floor, str(self.rootfs), str(per)], stdout=subprocess.DEVNULL)
            for _ in range(procs)
        ]
        rcs = [p.wait() for p in pool]
        dt = time.perf_counter_ns() - t0
        if any(rcs):
            raise Failed(f"floor with {procs} processes: exit statuses {rcs}")
        return per * procs / (dt / 1e9)

    # -- cleanup --

    def close(self) -> None:
        self.load_after = loadavg()
        if self.helper is not None:
            self.helper.close()
            self.helper = None
        # the cgroups crun and runc made under our prefix, deepest first
        self.left_behind = remove_cgroups(
            pynsbind_cgroups(pid=os.getpid(), prefix="pynsbind-bench-")
        )
        for runtime in ("crun", "runc"):
            state = self.tmp / f"state-{runtime}"
            if state.is_dir() and any(state.iterdir()):
                self.left_behind.append(f"{runtime} state: {sorted(os.listdir(state))}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.left_behind:
            self.log(f"could not remove: {self.left_behind}")

    # -- results --

    def results(self) -> dict[str, Any]:
        stats = {r.name: summarize(r.times) for r in self.rows if r.available and r.times}
        floor = stats.get(FLOOR, {}).get("median_ns")
        ours = stats.get(PYNSBIND, {}).get("median_ns")
        rows = []
        for r in self.rows:
            entry: dict[str, Any] = {
                "name": r.name,
                "kind": r.kind,
                "what": r.what,
                "available": r.available and r.name in stats,
            }
            if r.name in stats:
                s = stats[r.name]
                entry.update(s)
                entry["times_ns"] = r.times
                entry["vs_floor"] = s["median_ns"] / floor if floor else None
                entry["vs_pynsbind"] = s["median_ns"] / ours if ours else None
            else:
                entry["skipped"] = r.reason or "no times"
            rows.append(entry)

        def ratio(a: str, b: str) -> float | None:
            x, y = stats.get(a, {}).get("median_ns"), stats.get(b, {}).get("median_ns")
            return x / y if x and y else None

        def by_round(name: str) -> list[list[int]] | None:
            times = self.row(name).times
            if not times or len(times) != sum(self.round_sizes):
                return None
            out, at = [], 0
            for k in self.round_sizes:
                out.append(times[at : at + k])
                at += k
            return out

        def paired(a: str, b: str) -> float | None:
            """The median over the rounds of each round's ratio of medians: the
            two sides ran seconds apart, so slow drift cancels out."""
            ra, rb = by_round(a), by_round(b)
            if ra is None or rb is None:
                return None
            return float(
                statistics.median(
                    statistics.median(x) / statistics.median(y) for x, y in zip(ra, rb, strict=True)
                )
            )

        def target(a: str, b: str, op: str, limit: float, note: str = "") -> dict[str, Any]:
            value = ratio(a, b)
            met = None if value is None else (value <= limit if op == "<=" else value >= limit)
            what = f"{a} / {b.removeprefix('ref: ')}"
            return {
                "what": what,
                "ratio": value,
                "paired_ratio": paired(a, b),
                "target": f"{op} {limit:g}",
                "met": met,
                "note": note,
            }

        targets = [
            target(
                PYNSBIND,
                FLOOR_SEALED,
                "<=",
                1.3,
                "the floor doing what pynsbind cannot leave out: lo up, the sealed exec, "
                "a device cgroup",
            ),
            target(PYNSBIND, FLOOR, "<=", 1.3, "against the bare floor"),
            target(
                PYNSBIND,
                FLOOR_LO,
                "<=",
                1.3,
                "for comparison: the floor doing the same lo up as pynsbind",
            ),
            target("crun run", PYNSBIND, ">=", 3),
            target("runc run", PYNSBIND, ">=", 10),
        ]
        count, size = self.rounds()
        return {
            "benchmark": "spawn",
            "profile": {
                "command": "/bin/true (static busybox)",
                "namespaces": list(OCI_NAMESPACES),
                "mounts": ["rootfs bound onto itself", "proc on /proc"],
                "capabilities": "pynsbind default (14, runc/Docker's set); same for crun/runc",
                "no_new_privs": True,
                "seccomp": "none (pynsbind: seccomp='unconfined'; the default spec's line has it)",
            },
            "n": self.n,
            "quick": self.quick,
            "rounds": count,
            "round_size": size,
            "machine": {
                "cpus": os.cpu_count(),
                "kernel": platform.release(),
                "python": platform.python_version(),
                "hybrid_cgroups": os.path.ismount(UNIFIED),
                "loadavg_before": self.load_before,
                "loadavg_after": self.load_after,
            },
            "versions": self.versions,
            "rows": rows,
            "throughput_per_s": self.throughput,
            "throughput_containers": self.throughput_total(),
            "throughput_samples": self.throughput_samples,
            "targets": targets,
            "notes": self.notes + NOTES,
            "workdir": str(self.tmp),
            "left_behind": self.left_behind,
        }


NOTES = [
    "the C floor times its own clone3..waitpid loop; every other line is timed from "
    "this Python process around one call",
    "the C floor does not bring lo up, set capabilities, no_new_privs or the "
    "supplementary groups; pynsbind, crun, runc and bwrap all bring lo up (the "
    "'C floor + lo up' line is the floor doing that too)",
    "pynsbind always execs through a sealed memfd copy of its init, starts a new session "
    "and session keyring, makes every mount but devpts nodev, and places the container "
    "in a device cgroup (v1 devices here); 'C floor + sealed exec + device cgroup' is "
    "the floor doing lo up, the sealed exec and the device cgroup the same way",
    "crun and runc also create a cgroup per container in every v1 hierarchy (their "
    "cgroupsPath), create default /dev nodes in the rootfs and write state files under "
    "--root; no seccomp, no masked or read-only paths, the same 14 capabilities and "
    "no_new_privs as pynsbind",
    "bwrap forks twice (a pid-1 reaper, then the command), mounts a tmpfs as a staging "
    "root and pivots twice, binds /proc/irq and /proc/bus read-only under its proc, sets "
    "no_new_privs; run by root, the command keeps root's capabilities",
]


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages: was anything else running?"""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (out.strip().splitlines() or ["?"])[0]


# ---- output -----------------------------------------------------------------------


def _ms(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.3f}"


def _x(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def format_table(res: dict[str, Any]) -> str:
    W = 44  # the width of the name column
    out = [
        f"spawn benchmark: {res['n']} containers per line, {res['rounds']} interleaved "
        f"rounds of {res['round_size']}; /bin/true in new pid, mount, uts, ipc, net and "
        f"cgroup namespaces, rootfs bound, proc mounted, pivot_root",
        f"machine: {res['machine']['cpus']} cpus, kernel {res['machine']['kernel']}, "
        f"python {res['machine']['python']}, load average {res['machine']['loadavg_before']} "
        f"before, {res['machine']['loadavg_after']} after",
        "",
        f"{'':{W}} {'median':>8} {'mean':>8} {'p90':>8} {'vs':>8} {'vs':>9}",
        f"{'per container (ms)':{W}} {'':>8} {'':>8} {'':>8} {'floor':>8} {'pynsbind':>9}",
    ]
    for r in res["rows"]:
        if r["available"]:
            out.append(
                f"{r['name']:{W}} {_ms(r['median_ns']):>8} {_ms(r['mean_ns']):>8} "
                f"{_ms(r['p90_ns']):>8} {_x(r['vs_floor']):>8} {_x(r['vs_pynsbind']):>9}"
            )
        else:
            out.append(f"{r['name']:{W}} skipped: {r['skipped']}")
    if res["throughput_per_s"]:
        out += [
            "",
            f"{'throughput (containers/s)':{W}}"
            + "".join(f" {str(t) + ' at once':>10}" for t in THREADS),
        ]
        for name, by in res["throughput_per_s"].items():
            cells = "".join(
                f" {('-' if by.get(str(t)) is None else f'{by[str(t)]:.0f}'):>10}" for t in THREADS
            )
            out.append(f"{name:{W}}{cells}")
    out += ["", f"{'targets':36} {'ratio':>8} {'paired':>8}"]
    for t in res["targets"]:
        verdict = {None: "n/a", True: "met", False: "MISSED"}[t["met"]]
        note = f"  ({t['note']})" if t["note"] else ""
        out.append(
            f"  {t['what']:34} {_x(t['ratio']):>8} {_x(t['paired_ratio']):>8}  "
            f"target {t['target']:6} {verdict}{note}"
        )
    out.append(
        "  ratio: of the medians, what a target is judged on; paired: the median of "
        "the per-round ratios of medians"
    )
    out += ["", "notes"] + [f"  - {n}" for n in res["notes"]]
    if res["left_behind"]:
        out.append(f"left behind: {res['left_behind']}")
    return "\n".join(out)


# ---- main -------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "-n", type=int, default=None, help="containers per contender (default 300, 20 with --quick)"
    )
    ap.add_argument(
        "--quick", action="store_true", help="few containers, one warm-up, small throughput runs"
    )
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON to OUT")
    ap.add_argument("--helper", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.helper:
        return helper_main()
    if os.geteuid() != 0:
        print(
            "bench_spawn.py needs root: it creates namespaces, mounts and cgroups (run it as root)",
            file=sys.stderr,
        )
        return 2
    n = args.n if args.n is not None else (20 if args.quick else 300)
    if n < 1:
        ap.error(f"-n must be at least 1, not {n}")

    def log(msg: str) -> None:
        print(f"bench_spawn: {msg}", file=sys.stderr, flush=True)

    bench = Bench(n, args.quick, log)
    try:
        bench.setup()
        bench.measure()
        bench.measure_throughput()
    finally:
        bench.close()
    res = bench.results()
    print(format_table(res), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
