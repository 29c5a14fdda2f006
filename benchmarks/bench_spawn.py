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
sys.path.insert(0, str(HERE))

from benchlib import (  # noqa: E402
    DEFAULT_CAPS,
    OCI_NAMESPACES,
    OCI_RUNTIMES,
    UNIFIED,
    Failed,
    Helper,
    OciRuntime,
    Runner,
    check_command,
    loadavg,
    runtime_dict,
    summarize,
    write_bundle,
)
from benchlib import timed as _timed  # noqa: E402
from benchlib import version as _version  # noqa: E402

from tests.helpers import (  # noqa: E402
    find_busybox,
    make_rootfs,
    pynsbind_cgroups,
    remove_cgroups,
)

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
TP_CLI = "{}, commands in parallel"
HELPER_TRUE = "ref: the same, in the helper"


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


class Bench:
    """Owns the temp dir, the contenders and everything that must be cleaned."""

    def __init__(
        self,
        n: int,
        quick: bool,
        log: Callable[[str], None],
        runtimes: Sequence[OciRuntime] | None = None,
    ) -> None:
        self.n = n
        self.runtimes = list(OCI_RUNTIMES if runtimes is None else runtimes)
        #: label -> (runtime, where it runs, --root, bundle) of each OCI runtime set up
        self.oci: dict[str, tuple[OciRuntime, Runner, str, str]] = {}
        self.local = Runner()
        self.bwrap_argv: list[str] = []
        self.quick = quick
        self.log = log
        self.tmp = Path(tempfile.mkdtemp(prefix="pynsbind-bench-"))
        self.prefix = f"pynsbind-bench-{os.getpid()}"
        self.helper: Helper | None = None
        self.plain: Helper | None = None  # a helper in this mount namespace
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
        for rt in self.runtimes:
            where = " in a private-mount-ns helper" if rt.private_mount_ns else ""
            verbs = "'run'" if rt.start == "run" else "'create', 'start', ..., 'delete'"
            self.add(
                rt.label,
                "contender",
                f"subprocess.run(['{rt.exe}', {verbs}, ...]){where}",
                no_rootfs or functools.partial(self.setup_oci, rt),
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
        if self.helper is not None:
            self.add(
                HELPER_TRUE,
                "reference",
                "subprocess.run(['/bin/true']) from the helper that times "
                + ", ".join(r.label for r in self.runtimes if r.private_mount_ns),
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

    def setup_oci(self, rt: OciRuntime) -> tuple[Callable[[int], list[int]], str] | str:
        why = rt.why_missing()
        if why:
            return why
        exe = rt.which()
        assert exe is not None
        self.versions[rt.exe] = _version([exe, "--version"])
        assert self.rootfs is not None
        slug = rt.label.replace(" ", "-").replace("+", "-")
        # its own copy of the rootfs: the runtimes create /dev nodes in it
        bundle = self.make_bundle(f"{slug}", f"/{self.prefix}/{slug}")
        state = self.tmp / f"state-{slug}"
        state.mkdir()
        runner: Runner = self.local
        if rt.start != "run" and not rt.private_mount_ns:
            # create + start: the container's process is waited for by a subreaper
            if self.plain is None:
                try:
                    self.plain = Helper(unmount_unified=False)
                except (OSError, Failed) as exc:
                    return f"cannot start the helper: {exc}"
            runner = self.plain
        if rt.private_mount_ns:
            hybrid = os.path.ismount(UNIFIED)
            if self.helper is None:
                if hybrid and shutil.which("unshare") is None:
                    return f"{rt.exe} needs a private mount namespace here and unshare is missing"
                try:
                    self.helper = Helper(unmount_unified=hybrid)
                except (OSError, Failed) as exc:
                    return f"cannot start the helper: {exc}"
            runner = self.helper
            if hybrid:
                self.notes.append(
                    f"{rt.exe} runs from a helper process in a private mount namespace where "
                    f"{UNIFIED} is unmounted (crun 1.8 refuses this hybrid cgroup layout; it then "
                    "uses the v1 hierarchies, like runc); the helper times each command with "
                    "subprocess.run, so no wrapper cost is in its line"
                )
        self.oci[rt.label] = (rt, runner, str(state), str(bundle))
        spec = runtime_dict(rt)
        why = str(
            runner.call("check", rt=spec, root=str(state), bundle=str(bundle), cid=self.cid())
        )

        def batch(k: int) -> list[int]:
            ids = [self.cid() for _ in range(k)]
            times: list[int] = runner.call(
                "start_times", rt=spec, root=str(state), bundle=str(bundle), ids=ids
            )
            return times

        return batch, why

    def cid(self) -> str:
        self.ids += 1
        return f"pnb-{os.getpid()}-{self.ids}"

    def make_bundle(self, name: str, cgroups_path: str) -> Path:
        """A bundle with its own copy of the rootfs (the runtimes create /dev
        nodes in it) and config.json for the profile."""
        assert self.rootfs is not None
        bundle = self.tmp / "bundles" / name
        bundle.mkdir(parents=True)
        rootfs = shutil.copytree(self.rootfs, bundle / "rootfs", symlinks=True)
        return write_bundle(bundle, rootfs, cgroups_path)

    def setup_bwrap(self) -> tuple[Callable[[int], list[int]], str] | str:
        exe = shutil.which("bwrap")
        if exe is None:
            return "bwrap is not installed (Debian: apt-get install bubblewrap)"
        self.versions["bwrap"] = _version([exe, "--version"])
        argv = [exe, *BWRAP_FLAGS, "--bind", str(self.rootfs), "/", "--proc", "/proc", "/bin/true"]
        self.bwrap_argv = argv
        return (lambda k: [_timed(argv) for _ in range(k)]), check_command(argv)

    def setup_true(self) -> tuple[Callable[[int], list[int]], str]:
        argv = ["/bin/true"]
        return (lambda k: [_timed(argv) for _ in range(k)]), check_command(argv)

    def helper_true_batch(self, k: int) -> list[int]:
        assert self.helper is not None
        times: list[int] = self.helper.call("true_times", k=k)
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
        for label in self.oci:
            if self.row(label).available:
                runs.append((TP_CLI.format(label), functools.partial(self.oci_parallel, label)))
        if self.row("bwrap").available and self.bwrap_argv:
            runs.append((TP_CLI.format("bwrap"), self.bwrap_parallel))
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

    def oci_parallel(self, label: str, workers: int, total: int) -> float:
        """workers threads (in the runtime's runner), each running its share of
        the containers with its own bundle (its own cgroupsPath and rootfs copy)."""
        rt, runner, state, _ = self.oci[label]
        slug = label.replace(" ", "-").replace("+", "-")
        jobs = []
        for w in range(workers):
            bundle = self.tmp / "bundles" / f"{slug}-w{w}"
            if not bundle.exists():
                self.make_bundle(bundle.name, f"/{self.prefix}/{slug}-w{w}")
            jobs.append([[str(bundle), self.cid()] for _ in range(total // workers)])
        dt: int = runner.call("parallel", rt=runtime_dict(rt), root=state, jobs=jobs)
        return (total // workers) * workers / (dt / 1e9)

    def bwrap_parallel(self, workers: int, total: int) -> float:
        per = total // workers
        errors: list[str] = []
        start = threading.Barrier(workers + 1)

        def work() -> None:
            start.wait()
            for _ in range(per):
                try:
                    _timed(self.bwrap_argv)
                except (Failed, OSError) as exc:
                    errors.append(str(exc))
                    return

        pool = [threading.Thread(target=work) for _ in range(workers)]
        for th in pool:
            th.start()
        start.wait()
        t0 = time.perf_counter_ns()
        for th in pool:
            th.join()
        dt = time.perf_counter_ns() - t0
        if errors:
            raise Failed(f"bwrap with {workers} at once: {errors[0]}")
        return per * workers / (dt / 1e9)

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
        hidden: list[str] = []
        if self.helper is not None:
            try:  # what crun made where the helper's namespace has no cgroup2 mount
                hidden = self.helper.call("remove_hidden", prefix=self.prefix)
            except Failed as exc:
                hidden = [f"helper: {exc}"]
            self.helper.close()
            self.helper = None
        if self.plain is not None:
            self.plain.close()
            self.plain = None
        # the cgroups crun and runc made under our prefix, deepest first
        self.left_behind = hidden + remove_cgroups(
            pynsbind_cgroups(pid=os.getpid(), prefix="pynsbind-bench-")
        )
        for label, (_, _, state, _) in self.oci.items():
            if os.path.isdir(state) and os.listdir(state):
                self.left_behind.append(f"{label} state: {sorted(os.listdir(state))}")
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
        ]
        limits = {"crun run": 3.0, "runc run": 10.0}
        targets += [
            target(rt.label, PYNSBIND, ">=", limits[rt.label])
            for rt in self.runtimes
            if rt.label in limits
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
    args = ap.parse_args(argv)
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
