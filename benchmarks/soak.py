"""Reliability soak: pynsbind under load and faults, checking that nothing leaks.

  python benchmarks/soak.py [--spawns N] [--threads T] [--per-thread M]
                            [--kill-every-op] [--json OUT]

Phases (each prints one line and a verdict; the exit status is 1 if any failed):

1. sequential: N spawns in a row (varying specs, so the plan cache turns over);
   the caller's fds, mounts, pynsbind cgroups, children and zombies must not grow,
   and its RSS must settle (growth after the warm-up under a few MiB);
2. threads: T threads spawning M containers each, with two threads of
   GIL-free C work alive; every container must succeed, nothing may leak;
3. kill at each stage: a spawner process is SIGKILLed while its child stands at
   each step of the plan (a sync point is inserted before the op, with a parent
   action that says where it is and waits); the child must go (it sees the
   socket close), and ``pynsbind.cleanup()`` must leave no process, cgroup or
   mount of it; also the spawner killed after the spawn, with a container that
   lives in a pynsbind cgroup (cleanup kills it) and one with die_with_parent;
4. die with parent: containers of a killed spawner are gone.

The short version runs in CI (tests/test_reliability.py); the full one by hand.
Needs root, a static busybox and gcc (for the probe).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # what the tests share with the benchmarks: tests/helpers.py

from tests.helpers import (  # noqa: E402
    Busy,
    Unavailable,
    build_probe,
    children,
    find_busybox,
    make_rootfs,
    mount_table,
    pynsbind_cgroups,
    wait_gone,
)

PR_SET_CHILD_SUBREAPER = 36


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def snapshot() -> dict[str, Any]:
    """The caller's fds, mounts, children and zombies, and the pynsbind cgroups
    of this process and its descendants (those of other processes on the
    machine come and go: tests.helpers.pynsbind_cgroups leaves them out)."""
    return {
        "fds": sorted(int(x) for x in os.listdir("/proc/self/fd")),
        "mounts": sorted(mount_table()),
        "cgroups": sorted(pynsbind_cgroups()),
        "children": sorted(children()),
        "zombies": zombies(),
    }


def zombies() -> list[int]:
    """Zombies this process should reap (its children, and the orphans of the
    killed spawners, which come to it as their subreaper); other processes on
    the machine have zombies of their own."""
    out = []
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if state == "Z" and ppid == me:
                out.append(int(pid))
    return out


def diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key in a:
        if a[key] != b[key]:
            out[key] = {
                "gone": sorted(set(a[key]) - set(b[key])),
                "new": sorted(set(b[key]) - set(a[key])),
            }
    return out


@contextlib.contextmanager
def rootfs() -> Iterator[str]:
    """The tests' root filesystem (tests.helpers.make_rootfs): busybox, the probe."""
    busybox = find_busybox()
    if busybox is None:
        raise SystemExit("soak: needs a static busybox (Debian: busybox-static)")
    try:
        probe = build_probe()
    except Unavailable as exc:
        raise SystemExit(f"soak: {exc}") from None
    top = Path(tempfile.mkdtemp(prefix="pynsbind-soak-"))
    os.chmod(top, 0o755)
    try:
        yield str(make_rootfs(top / "root", busybox, probe=probe))
    finally:
        shutil.rmtree(top, ignore_errors=True)


# ---- phases ------------------------------------------------------------------------


def phase_sequential(root: str, n: int) -> dict[str, Any]:
    import pynsbind
    from pynsbind import Mount, Spec

    base = Spec(
        args=["/bin/true"], rootfs=root, mounts=[Mount.proc()], masked_paths=(), readonly_paths=()
    )
    pynsbind.testing.sealed_init_fd()

    def one(i: int) -> None:
        # 400 distinct specs: the plan cache (256) turns over
        spec = base.replace(args=["/bin/sh", "-c", f"exit {i % 7}"], hostname=f"h{i % 400}")
        rc = pynsbind.run(spec=spec).returncode
        if rc != i % 7:
            raise AssertionError(f"spawn {i}: returncode {rc}")

    warm = min(500, n // 4)
    for i in range(warm):
        one(i)
    before, rss0 = snapshot(), rss_kib()
    t0 = time.perf_counter()
    for i in range(warm, n):
        one(i)
    elapsed = time.perf_counter() - t0
    after, rss1 = snapshot(), rss_kib()
    leaks = diff(before, after)
    growth = rss1 - rss0
    ok = not leaks and growth < 4096
    return {
        "phase": "sequential",
        "spawns": n,
        "per_s": round((n - warm) / elapsed, 1),
        "rss_kib_before": rss0,
        "rss_kib_after": rss1,
        "rss_growth_kib": growth,
        "leaks": leaks,
        "ok": ok,
    }


def phase_threads(root: str, threads: int, per_thread: int) -> dict[str, Any]:
    import pynsbind
    from pynsbind import Mount, Spec

    spec = Spec(
        args=["/bin/echo", "x"],
        rootfs=root,
        mounts=[Mount.proc()],
        masked_paths=(),
        readonly_paths=(),
    )
    errors: list[str] = []
    done = [0] * threads
    before = snapshot()

    def worker(k: int) -> None:
        for _ in range(per_thread):
            try:
                res = pynsbind.run(spec=spec, capture_output=True, timeout=120)
                if res.returncode != 0 or res.stdout != b"x\n":
                    errors.append(f"thread {k}: {res}")
                done[k] += 1
            except Exception as exc:
                errors.append(f"thread {k}: {exc!r}")

    t0 = time.perf_counter()
    with Busy():
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=1800)
        hung = sum(t.is_alive() for t in ts)
    elapsed = time.perf_counter() - t0
    leaks = diff(before, snapshot())
    ok = not errors and not hung and not leaks and sum(done) == threads * per_thread
    return {
        "phase": "threads",
        "threads": threads,
        "per_thread": per_thread,
        "done": sum(done),
        "per_s": round(sum(done) / elapsed, 1),
        "errors": errors[:5],
        "hung": hung,
        "leaks": leaks,
        "ok": ok,
    }


SPAWNER = r"""
import os, sys, json
import pynsbind
from pynsbind import Spec, Mount
from pynsbind.testing import Pact, compile_plan, lib, ops, prepare_cgroup, run_plan
root, mark, index, variant = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
fields = json.loads(sys.argv[5])
if "resources" in fields:
    fields["resources"] = pynsbind.cgroups.Resources(**fields["resources"])
spec = Spec(args=["/bin/probe", "sleep", "120"], rootfs=root, **fields)
plan = compile_plan(spec, pynsbind.features())
if variant == "stall":
    # a sync point before op `index`: the parent action says where, then waits
    step = 1000
    plan.ops.insert(index, ops.sync(step, "stall"))
    plan.pacts.append(Pact(step, lib.NSB_PACT_HELPER, "stall",
        argv=["/bin/sh", "-c", 'echo "$1 $$" > "$0"; exec sleep 120', mark, "PID"], pid_arg=4))
cg = prepare_cgroup(spec.normalized, plan)
extra = dict(cg.slots) if cg is not None else {}
null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
res = run_plan(plan, [null, null, null], extra)
with open(mark, "w") as f:
    f.write(f"{res.pid} 0")
import time
time.sleep(120)
"""


def _wait_for(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            text = path.read_text().strip()
            if text:
                return text
        time.sleep(0.01)
    raise TimeoutError(f"nothing in {path}")


def _reap_orphans() -> None:
    # orphans of the killed spawners come to us (child subreaper)
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def phase_kill(root: str, every_op: bool, with_cgroup: bool) -> dict[str, Any]:
    import pynsbind
    from pynsbind import Spec
    from pynsbind.testing import compile_plan

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    fields: dict[str, Any] = {}
    if with_cgroup:
        fields["resources"] = {"pids_max": 64}
    spec_fields = dict(fields)
    if "resources" in spec_fields:
        spec_fields["resources"] = pynsbind.cgroups.Resources(**spec_fields["resources"])
    plan = compile_plan(
        Spec(args=["/bin/probe", "sleep", "120"], rootfs=root, **spec_fields), pynsbind.features()
    )
    nops = len(plan.ops)
    indices = (
        list(range(nops)) if every_op else sorted({0, 1, nops // 3, nops // 2, nops - 2, nops - 1})
    )
    before = snapshot()
    problems: list[str] = []
    runs = 0
    tmp = Path(tempfile.mkdtemp(prefix="pynsbind-kill-"))
    try:
        cases = [("stall", i) for i in indices] + [("after", -1)]
        for variant, index in cases:
            for die in (False, True) if variant == "after" else (False,):
                mark = tmp / f"{variant}-{index}-{die}"
                f = dict(fields, die_with_parent=die)
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        SPAWNER,
                        root,
                        str(mark),
                        str(index),
                        variant,
                        json.dumps(f),
                    ]
                )
                try:
                    where, helper = (int(x) for x in _wait_for(mark).split())
                except TimeoutError:
                    proc.kill()
                    proc.wait()
                    problems.append(f"{variant} {index}: the spawner never got there")
                    continue
                proc.kill()
                proc.wait()
                runs += 1
                if helper:
                    os.kill(helper, signal.SIGKILL)  # the test's own helper, not pynsbind's
                # at a sync point the child sees the socket close and goes; a
                # container with die_with_parent goes with its spawner
                if (variant == "stall" or die) and not wait_gone(where, 10):
                    problems.append(
                        f"{variant} before op {index + 1}, die={die}: outlived its spawner"
                    )
                if variant == "after" and not die and not with_cgroup:
                    # a container with no cgroup of pynsbind's and no die_with_parent
                    # outlives its spawner by design, like a subprocess child; cleanup()
                    # cannot tell it from any other process
                    if wait_gone(where, 0.2):
                        problems.append("a container without die_with_parent died with its spawner")
                    os.kill(where, signal.SIGKILL)
                    wait_gone(where, 10)
                pynsbind.cleanup()
                if not wait_gone(where, 5):
                    problems.append(
                        f"{variant} {index} die={die}: pid {where} still there after cleanup()"
                    )
                _reap_orphans()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        _reap_orphans()
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    leaks = diff(before, snapshot())
    return {
        "phase": "kill",
        "cgroup": with_cgroup,
        "ops": nops,
        "stalls": len(indices),
        "runs": runs,
        "problems": problems,
        "leaks": leaks,
        "ok": not problems and not leaks,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spawns", type=int, default=10000)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--per-thread", type=int, default=200)
    p.add_argument("--kill-every-op", action="store_true", help="stall and kill before every op")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("soak: needs root")
    results = []
    with rootfs() as root:
        for phase in (
            lambda: phase_sequential(root, args.spawns),
            lambda: phase_threads(root, args.threads, args.per_thread),
            lambda: phase_kill(root, args.kill_every_op, with_cgroup=False),
            lambda: phase_kill(root, args.kill_every_op, with_cgroup=True),
        ):
            res = phase()
            results.append(res)
            print(json.dumps(res), flush=True)
    ok = all(r["ok"] for r in results)  # each phase compares zombies before and after
    summary = {"ok": ok}
    print(json.dumps(summary))
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, **summary}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
