#!/usr/bin/env python3
"""The pieces of the suite (benchmarks/bench.py) its sections share: the lines of
a table and their interleaved rounds, the suite's state (its temp dir, rootfs,
OCI runtimes and what must be cleaned), the profile as a pynsbind Spec.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/helpers.py
sys.path.insert(0, str(HERE))

import bench_spawn  # noqa: E402
from benchlib import (  # noqa: E402
    UNIFIED,
    CliOps,
    Failed,
    Helper,
    OciRuntime,
    Runner,
    runtime_dict,
    summarize,
    version,
    write_bundle,
)

from tests.helpers import (  # noqa: E402
    build_static,
    find_busybox,
    make_rootfs,
    pynsbind_cgroups,
    remove_cgroups,
)

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
            self.versions[rt.exe] = version([rt.which() or rt.exe, "--version"])
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
