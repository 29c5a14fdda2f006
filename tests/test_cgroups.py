"""pynsbind.cgroups on the real kernel.

Every test here is marked ``root`` and ``cgroup`` (``pytest -m cgroup`` selects
them for the pure cgroup v2 tier) and is written for any layout: it asks the
host where each controller lives instead of assuming hybrid or unified.  All
cgroups they make carry this process's pid in their name, and the
``no_leftovers`` fixture fails a test that leaves one.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import pynsbind
from pynsbind import Namespace, Resources, Spec, SpecError
from pynsbind.cgroups import AUTO_PREFIX, Cgroup, Event, cleanup, detect, host
from pynsbind.spec import default_namespaces
from pynsbind.testing import cgroup_fast_paths
from pynsbind.testing import cgroups_v1 as _v1
from pynsbind.testing import cgroups_v2 as _v2
from tests.helpers import (
    HostState,
    become,
    in_child,
    pynsbind_cgroups,
    remove_cgroups,
    wait_for,
)

pytestmark = [pytest.mark.root, pytest.mark.cgroup, pytest.mark.usefixtures("no_leftovers")]

PID = os.getpid()
_n = itertools.count(1)


@pytest.fixture
def cgpath() -> str:
    return f"pynsbind/test-{PID}-{next(_n)}"


def file_of(cg: Cgroup, controller: str, v2: str, v1: str) -> str:
    """The content of a controller's file, wherever the controller lives here."""
    home = cg.host.home(controller)
    assert home is not None, f"no {controller} controller on this host"
    with open(f"{home.dir(cg.path)}/{v2 if home.version == 2 else v1}") as f:
        return f.read().strip()


def cpu_usage(cg: Cgroup) -> int:
    usage = cg.stats().cpu.usage_usec
    assert usage is not None
    return usage


def sleepers(n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen(["sleep", "1000"]) for _ in range(n)]


# ---- limits that bite -------------------------------------------------------------------


def test_fork_bomb_stops_at_pids_limit(rootfs: str, host_unchanged: Any) -> None:
    res = pynsbind.run(
        ["/bin/probe", "forks", "100"],
        rootfs=rootfs,
        resources=Resources(pids_max=10),
        capture_output=True,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)  # type: ignore[arg-type]
    # the probe itself is one of the 10 tasks
    assert out == {"forked": 9, "errno": errno.EAGAIN}


def test_memory_hog_is_oom_killed(rootfs: str, cgpath: str) -> None:
    limit = 32 << 20
    cg = Cgroup.create(cgpath, Resources(memory_max=limit, memory_swap_max=0))
    try:

        async def main() -> tuple[list[Event], int]:
            seen: list[Event] = []
            async with cg.events() as stream:
                proc = pynsbind.spawn(
                    Spec(args=["/bin/probe", "alloc", "256"], rootfs=rootfs, cgroup=cg),
                    stdout=pynsbind.DEVNULL,
                )

                async def until_oom_kill() -> None:
                    async for ev in stream:
                        seen.append(ev)
                        if ev.kind == "oom_kill":
                            return

                await asyncio.wait_for(until_oom_kill(), 60)
                rc = await proc.wait_async()
            return seen, rc

        seen, rc = asyncio.run(main())
        assert rc == -signal.SIGKILL
        kinds = [e.kind for e in seen]
        assert "oom" in kinds, seen
        assert "oom_kill" in kinds, seen
        assert next(e for e in seen if e.kind == "oom_kill").value >= 1
        mem = cg.stats().memory
        assert mem.oom_kill is not None
        assert mem.oom_kill >= 1
        assert mem.limit == limit
        assert mem.peak is not None
        assert 0 < mem.peak <= limit
        assert cg.exists()
        assert cg.procs() == []
    finally:
        cg.delete()


def test_cpu_quota_bounds_a_busy_loop(rootfs: str, cgpath: str) -> None:
    quota, period = 20000, 100000  # a fifth of one CPU
    cg = Cgroup.create(cgpath, Resources(cpu_quota=quota, cpu_period=period))
    try:
        assert file_of(cg, "cpu", "cpu.max", "cpu.cfs_quota_us") in (
            f"{quota} {period}",
            str(quota),
        )
        if cg.host.home("cpu").version == 1:  # type: ignore[union-attr]
            assert file_of(cg, "cpu", "cpu.max", "cpu.cfs_period_us") == str(period)
        start = time.monotonic()
        res = pynsbind.run(["/bin/probe", "spin", "2"], rootfs=rootfs, cgroup=cg)
        wall_usec = (time.monotonic() - start) * 1e6
        assert res.returncode == 0
        st = cg.stats().cpu
        assert st.usage_usec is not None
        assert st.nr_throttled is not None
        # CFS bandwidth control: at most `quota` per `period` (one period of slack
        # at each end); an unlimited busy loop would use all of the wall time
        assert st.usage_usec <= quota * (wall_usec / period + 2)
        assert st.usage_usec < wall_usec / 2
        assert st.nr_throttled > 0
    finally:
        cg.delete()


def test_freeze_stops_and_thaw_resumes(rootfs: str, cgpath: str) -> None:
    cg = Cgroup.create(cgpath)
    proc = pynsbind.spawn(Spec(args=["/bin/probe", "spin", "600"], rootfs=rootfs, cgroup=cg))
    try:
        assert wait_for(lambda: cpu_usage(cg) > 20000, 30), "the busy loop did not run"
        freezers = [("cgroup", cg.freeze, cg.thaw)]
        fz = cg.host.v1("freezer")
        if fz is not None:  # a v1 freezer exists too (hybrid): check it as well
            d = fz.dir(cg.path)
            freezers.append(
                ("v1", lambda: _v1.freeze(d, True, 10), lambda: _v1.freeze(d, False, 10))
            )
        for _name, freeze, thaw in freezers:
            freeze()
            u1 = cpu_usage(cg)
            time.sleep(0.5)
            u2 = cpu_usage(cg)
            assert u2 == u1, _name  # frozen: no CPU time at all
            thaw()
            assert wait_for(lambda u2=u2: cpu_usage(cg) > u2 + 20000, 30), (
                "the thawed loop did not run"
            )
        assert not cg.frozen
    finally:
        proc.kill()
        proc.wait()
        cg.delete()


@pytest.mark.parametrize("how", ["cgroup.kill", "signals"])
def test_kill_empties_the_cgroup(
    rootfs: str, cgpath: str, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if how == "signals":  # the path for kernels without cgroup.kill (and v1)
        monkeypatch.setattr(_v2, "kill", lambda d: False)
    cg = Cgroup.create(cgpath)
    procs = sleepers(20)
    try:
        for p in procs:
            cg.add(p)
        script = "i=0; while [ $i -lt 30 ]; do sleep 1000 & i=$((i+1)); done; echo ready; wait"
        container = pynsbind.spawn(
            Spec(args=["/bin/sh", "-c", script], rootfs=rootfs, cgroup=cg), stdout=pynsbind.PIPE
        )
        assert container.stdout is not None
        assert container.stdout.readline() == b"ready\n"
        assert len(cg.procs()) == 20 + 1 + 30
        cg.kill()
        assert cg.procs() == []
        assert [p.wait() for p in procs] == [-signal.SIGKILL] * 20
        container.stdout.close()
        assert container.wait() == -signal.SIGKILL
    finally:
        for p in procs:
            p.kill()
            p.wait()
        cg.delete()


def test_delete_leaves_nothing(cgpath: str) -> None:
    cg = Cgroup.create(cgpath + "/a/b")
    for d in cg.dirs.values():  # a cgroup below it, as a container could make
        os.mkdir(d + "/inner")
    (p,) = sleepers(1)
    cg.add(p)
    killer = threading.Timer(0.3, p.kill)
    killer.start()
    cg.delete(timeout=30)  # waits for the process to leave, retrying EBUSY
    killer.join()
    assert p.wait() == -signal.SIGKILL
    top = cgpath.split("/")[0]
    for hier in cg.host.hierarchies:
        assert not os.path.exists(hier.dir(cgpath))
        assert not os.path.exists(hier.dir(cgpath + "/a/b/inner"))
        # the parents create() made went with it (unless someone else uses them)
        if os.path.isdir(hier.dir(top)):
            assert not [e for e in os.listdir(hier.dir(top)) if f"-{PID}-" in e]


def test_delete_times_out_while_busy(cgpath: str) -> None:
    cg = Cgroup.create(cgpath)
    (p,) = sleepers(1)
    try:
        cg.add(p)
        with pytest.raises(OSError, match=f"remove .*{cgpath}: still busy after 0.2s") as info:
            cg.delete(timeout=0.2)
        assert info.value.errno == errno.EBUSY
        assert str(p.pid) in str(info.value)
    finally:
        cg.kill()
        p.wait()
        cg.delete()


# ---- bad input ----------------------------------------------------------------------------


def test_bad_input_creates_nothing(rootfs: str, cgpath: str) -> None:
    before = pynsbind_cgroups(pid=PID)
    missing_cpu = max(host().cpus) + 1
    for make in (
        lambda: Resources(memory_max="12Q"),
        lambda: Resources(pids_max=-1),
        lambda: Resources(cpu_weight=0),
        lambda: Cgroup.create(cgpath, Resources(cpus=str(missing_cpu))),
        lambda: Cgroup.create(cgpath, Resources(unified={"nosuch.max": "1"})),
        lambda: Cgroup.create("../" + cgpath),
        lambda: Cgroup.create(cgpath + "/../.."),
        lambda: pynsbind.run(
            ["/bin/true"], rootfs=rootfs, resources=Resources(cpus=str(missing_cpu))
        ),
        lambda: pynsbind.run(["/bin/true"], rootfs=rootfs, cgroup="../x"),
    ):
        with pytest.raises(
            ValueError, match=r"cpu \d+ does not exist|\.\.|12Q|negative|range|nosuch"
        ):
            make()
    with pytest.raises(SpecError, match=f"resources.cpus: cpu {missing_cpu} does not exist"):
        pynsbind.run(["/bin/true"], rootfs=rootfs, resources=Resources(cpus=str(missing_cpu)))
    assert pynsbind_cgroups(pid=PID) == before


def test_existing_path_is_refused(cgpath: str) -> None:
    with (
        Cgroup.create(cgpath),
        pytest.raises(FileExistsError, match=f"cgroup {cgpath} already exists"),
    ):
        Cgroup.create(cgpath)


def test_own_subtree_is_refused() -> None:
    """Never inside the subtree that holds this process (the machine's own, such as
    memory:/process_api on the hybrid test host): refused before anything is
    written.  A child placed in a cgroup of its own shows it on any layout."""
    h = host()
    for top in {hier.own.split("/")[0] for hier in h.hierarchies if hier.own}:
        with pytest.raises(ValueError, match="subtree that holds this process"):
            Cgroup.create(f"{top}/pynsbind-{PID}")
        with pytest.raises(ValueError, match="subtree that holds this process"):
            Cgroup.open(top)
        with pytest.raises(SpecError, match=r"^cgroup: .*subtree that holds this process"):
            pynsbind.run(["/bin/true"], cgroup=f"{top}/x")
    v2 = h.v2
    assert v2 is not None
    own = f"pynsbind-own-{PID}"
    os.makedirs(f"{v2.base}/{own}/leaf")

    def attempt() -> Any:
        with open(f"{v2.base}/{own}/leaf/cgroup.procs", "w") as f:
            f.write(str(os.getpid()))
        mine = detect()
        assert mine.v2 is not None
        assert mine.v2.own == f"{own}/leaf"
        try:
            Cgroup.create(f"{own}/other", host=mine)
        except ValueError as exc:
            return str(exc)
        return "created"

    try:
        msg = in_child(attempt)
        assert f"is inside {own!r}, the subtree that holds this process" in msg
        assert not os.path.exists(f"{v2.base}/{own}/other")
    finally:
        remove_cgroups([f"{v2.base}/{own}/leaf", f"{v2.base}/{own}"])


# ---- placement through spawn --------------------------------------------------------------


def host_cgroups(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if not ctrls.startswith("name="):
                out[ctrls] = path
    return out


def test_spawn_places_the_container_and_removes_its_cgroup(
    rootfs: str, host_unchanged: Any
) -> None:
    spec = Spec(
        args=["/bin/probe", "sleep", "600"], rootfs=rootfs, resources=Resources(pids_max=50)
    )
    with pynsbind.spawn(spec, stdout=pynsbind.PIPE) as proc:
        assert proc.stdout is not None
        proc.stdout.readline()
        paths = host_cgroups(proc.pid)
        names = set(paths.values())
        assert len(names) == 1, paths  # one cgroup, the same in every hierarchy
        (name,) = names
        assert name.startswith(f"/{AUTO_PREFIX}{PID}-")
        assert len(paths) == len(host().hierarchies)
        base = host().home("pids")
        assert base is not None
        with open(base.dir(name.lstrip("/")) + "/pids.max") as f:
            assert f.read().strip() == "50"
    assert proc.returncode == -signal.SIGKILL
    for hier in host().hierarchies:
        assert not os.path.exists(hier.dir(name.lstrip("/")))


def test_the_container_never_runs_outside_its_cgroup(rootfs: str, host_unchanged: Any) -> None:
    """What the container's process reads first thing is already its cgroup, in
    every hierarchy (without a cgroup namespace, to see the full paths)."""
    ns = default_namespaces() & ~Namespace.CGROUP
    info = json.loads(
        pynsbind.run(
            ["/bin/probe", "info"],
            rootfs=rootfs,
            namespaces=ns,
            resources=Resources(pids_max=20),
            capture_output=True,
        ).stdout  # type: ignore[arg-type]
    )
    seen = {}
    for line in info["cgroup"].splitlines():
        _, ctrls, path = line.split(":", 2)
        if not ctrls.startswith("name="):
            seen[ctrls] = path
    assert len(seen) == len(host().hierarchies)
    assert all(p.startswith(f"/{AUTO_PREFIX}{PID}-") for p in seen.values()), seen


def test_caller_cgroup_is_left_alone(rootfs: str, cgpath: str, host_unchanged: Any) -> None:
    with Cgroup.create(cgpath) as cg:
        res = pynsbind.run(
            ["/bin/probe", "info"], rootfs=rootfs, cgroup=cg, resources=Resources(pids_max=33)
        )
        assert res.returncode == 0
        assert cg.exists()
        assert file_of(cg, "pids", "pids.max", "pids.max") == "33"  # applied with update()
        # a path that exists is the caller's too
        res = pynsbind.run(["/bin/true"], rootfs=rootfs, cgroup=cgpath)
        assert res.returncode == 0
        assert cg.exists()


def test_cgroup_path_made_for_the_container(rootfs: str, cgpath: str, host_unchanged: Any) -> None:
    spec = Spec(args=["/bin/probe", "sleep", "600"], rootfs=rootfs, cgroup=cgpath)
    with pynsbind.spawn(spec, stdout=pynsbind.PIPE) as proc:
        assert proc.stdout is not None
        proc.stdout.readline()
        assert set(host_cgroups(proc.pid).values()) == {"/" + cgpath}
    # pynsbind made it, so it went when the container was reaped
    for hier in host().hierarchies:
        assert not os.path.exists(hier.dir(cgpath))


def test_failed_spawn_removes_its_cgroup(rootfs: str, host_unchanged: HostState) -> None:
    before = pynsbind_cgroups(pid=PID)
    with pytest.raises(pynsbind.SpawnError, match="executable file not found"):
        pynsbind.run(["/nonexistent"], rootfs=rootfs, resources=Resources(pids_max=5))
    assert pynsbind_cgroups(pid=PID) == before
    assert host_unchanged.diff(HostState.now()) == {}


# ---- events, update, stats -------------------------------------------------------------------


def test_events_populated_and_frozen(cgpath: str) -> None:
    cg = Cgroup.create(cgpath)
    (p,) = sleepers(1)

    async def main() -> list[Event]:
        got: list[Event] = []
        stream = cg.events()

        async def until(kind: str) -> Event:
            while True:
                ev = await asyncio.wait_for(stream.__anext__(), 30)
                got.append(ev)
                if ev.kind == kind:
                    return ev

        cg.add(p)
        assert (await until("populated")).value == 1
        await asyncio.to_thread(cg.freeze)
        assert (await until("frozen")).value == 1
        await asyncio.to_thread(cg.thaw)
        assert (await until("frozen")).value == 0
        await asyncio.to_thread(cg.kill)
        assert (await until("populated")).value == 0
        await asyncio.to_thread(cg.delete)

        async def drain() -> None:
            while True:
                got.append(await asyncio.wait_for(stream.__anext__(), 30))

        with pytest.raises(StopAsyncIteration):  # the cgroup is gone: the stream ends
            await drain()
        return got

    try:
        got = asyncio.run(main())
        assert [(e.kind, e.value) for e in got if e.kind in ("populated", "frozen")] == [
            ("populated", 1),
            ("frozen", 1),
            ("frozen", 0),
            ("populated", 0),
        ]
    finally:
        p.kill()
        p.wait()
        if cg.exists():
            cg.delete()


def test_update_and_stats(cgpath: str) -> None:
    with Cgroup.create(cgpath, Resources(pids_max=10, memory_max="64M")) as cg:
        cg.update(Resources(pids_max=7, memory_max="48M"))
        assert file_of(cg, "pids", "pids.max", "pids.max") == "7"
        assert file_of(cg, "memory", "memory.max", "memory.limit_in_bytes") == str(48 << 20)
        with pytest.raises(ValueError, match="does not exist"):
            cg.update(Resources(pids_max=3, cpus=str(max(cg.host.cpus) + 1)))
        assert file_of(cg, "pids", "pids.max", "pids.max") == "7"  # checked before writing
        procs = sleepers(3)
        for p in procs:
            cg.add(p)
        st = cg.stats()
        assert st.pids.current == 3
        assert st.pids.limit == 7
        assert st.memory.limit == 48 << 20
        assert st.memory.current is not None
        assert st.cpu.usage_usec is not None
        assert cg.procs() == sorted(p.pid for p in procs)
    for p in procs:  # leaving the with block killed them
        assert p.wait() == -signal.SIGKILL


def test_oom_kill_disable_and_swappiness_where_v1_has_them(cgpath: str) -> None:
    """memory_oom_kill_disable and memory_swappiness: memory.oom_control and
    memory.swappiness on a v1 memory controller (an OCI config's
    disableOOMKiller and swappiness; runtime-tools reads them back);
    refused before anything is made where memory is on cgroup v2."""
    home = host().home("memory")
    if home is None:
        pytest.skip("no memory controller")
    res = Resources(memory_max="64M", memory_oom_kill_disable=True, memory_swappiness=7)
    if home.version == 2:
        with pytest.raises(SpecError, match="cgroup v2 cannot turn the OOM killer off"):
            Cgroup.create(cgpath, res)
        return
    with Cgroup.create(cgpath, res) as cg:
        control = Path(home.dir(cg.path), "memory.oom_control").read_text().split()
        assert control[control.index("oom_kill_disable") + 1] == "1"
        assert Path(home.dir(cg.path), "memory.swappiness").read_text().strip() == "7"


def test_hugetlb_limit(cgpath: str) -> None:
    h = host()
    if "2MB" not in h.hugepage_sizes or h.home("hugetlb") is None:
        pytest.skip("no 2MB huge pages or no hugetlb controller")
    home = h.home("hugetlb")
    assert home is not None
    before = None
    if home.version == 2:  # pynsbind enables it at the base only when a limit needs it
        with open(home.base + "/cgroup.subtree_control") as f:
            before = f.read().split()
    try:
        with Cgroup.create(cgpath, Resources(hugetlb={"2MB": "4M"})) as cg:
            name = "hugetlb.2MB.max" if home.version == 2 else "hugetlb.2MB.limit_in_bytes"
            assert file_of(cg, "hugetlb", name, name) == str(4 << 20)
    finally:
        if before is not None and "hugetlb" not in before:
            with (
                contextlib.suppress(OSError),
                open(home.base + "/cgroup.subtree_control", "w") as f,
            ):
                f.write("-hugetlb")


# ---- rootless ---------------------------------------------------------------------------------


def test_rootless_without_delegation_says_so() -> None:
    def attempt() -> Any:
        h = detect()
        try:
            Cgroup.create(f"pynsbind/rootless-{PID}", host=h)
        except PermissionError as exc:
            return str(exc)
        return "created"

    msg = in_child(attempt, uid=65534)
    if host().mode == "unified":
        assert "no delegated cgroup v2 subtree for uid 65534" in msg
    else:
        assert "cgroup v1 is never delegated to unprivileged users" in msg


def test_rootless_uses_a_delegated_subtree() -> None:
    """A cgroup2 subtree handed to uid 65534 (as systemd's Delegate=yes does): an
    unprivileged pynsbind makes its cgroups there, with limits, on a unified host;
    on a hybrid one the v1 hierarchies still say no."""
    v2 = host().v2
    assert v2 is not None
    deleg = f"{v2.base}/pynsbind-deleg-{PID}"
    leaf = deleg + "/leaf"
    os.mkdir(deleg)
    os.mkdir(leaf)
    for d in (deleg, leaf):
        for p in (
            d,
            *(f"{d}/{f}" for f in ("cgroup.procs", "cgroup.subtree_control", "cgroup.threads")),
        ):
            os.chown(p, 65534, 65534)

    def attempt() -> Any:
        with open(leaf + "/cgroup.procs", "w") as f:  # as systemd puts the service there
            f.write(str(os.getpid()))
        become(65534)
        h = detect()
        if h.problem is not None:
            return ("problem", h.problem)
        assert h.v2 is not None
        assert h.v2.base == deleg
        assert h.v2.own == "leaf"
        res = Resources(pids_max=5) if "pids" in h.v2.controllers else None
        cg = Cgroup.create(None, res, host=h)
        child = os.fork()
        if child == 0:
            time.sleep(1000)
            os._exit(0)
        try:
            cg.add(child)
            with open(f"/proc/{child}/cgroup") as f:
                where = f.read()
            pids_max = None
            if res is not None:
                with open(cg.dirs["unified"] + "/pids.max") as f:
                    pids_max = f.read().strip()
            cg.kill()
            os.waitpid(child, 0)
            cg.delete()
            return ("made", cg.path, where, pids_max, os.path.exists(cg.dirs["unified"]))
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)

    try:
        got = in_child(attempt)
        if host().mode == "unified":
            assert got[0] == "made", got
            _, path, where, pids_max, still = got
            assert path.startswith(AUTO_PREFIX)
            assert f"0::/pynsbind-deleg-{PID}/{path}" in where
            assert pids_max in (None, "5")
            assert not still
        else:
            assert got[0] == "problem"
            assert "cgroup v1 is never delegated" in got[1]
    finally:
        remove_cgroups([leaf, deleg])


# ---- cleanup ------------------------------------------------------------------------------------

_DEAD_SPAWNER = """
import os, subprocess, sys
from pynsbind.cgroups import Cgroup
auto = Cgroup.create()
marked = Cgroup.create(sys.argv[1])
quiet = subprocess.DEVNULL
p = subprocess.Popen(["sleep", "1000"], stdin=quiet, stdout=quiet, stderr=quiet)
auto.add(p)
print(auto.path, flush=True)
os._exit(0)  # dies without cleaning up
"""


def test_cleanup_removes_what_a_dead_spawner_left(cgpath: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _DEAD_SPAWNER, cgpath], capture_output=True, text=True, check=True
    )
    auto = out.stdout.strip()
    alive = Cgroup.create()  # this process is alive: its cgroup stays
    foreign = f"pynsbind-foreign-{PID}"  # not made by pynsbind: no marker, no fresh name
    h = host()
    for hier in h.hierarchies:
        os.mkdir(hier.dir(foreign))
    try:
        leftover = Cgroup.open(auto)
        assert len(leftover.procs()) == 1
        removed = cleanup()
        assert auto in removed
        assert cgpath in removed
        assert alive.path not in removed
        assert foreign not in removed
        for hier in h.hierarchies:
            assert not os.path.exists(hier.dir(auto))
            assert not os.path.exists(hier.dir(cgpath))
            assert os.path.isdir(hier.dir(foreign))
        assert alive.exists()
    finally:
        alive.delete()
        for hier in h.hierarchies:
            os.rmdir(hier.dir(foreign))


# ---- fresh cgroups: the fast path and its fallback --------------------------------------


def test_fresh_cgroups(monkeypatch: pytest.MonkeyPatch) -> None:
    from pynsbind.testing import Dirs

    res = Resources(pids_max=77)
    a = Cgroup.create(None, res)  # the general way, which lays out the fast one
    b = Cgroup.create(None, res)  # one C call
    try:
        assert a.path != b.path
        for cg in (a, b):
            assert cg.owned
            assert cg.path.startswith(f"{AUTO_PREFIX}{PID}-")
            assert file_of(cg, "pids", "pids.max", "pids.max") == "77"
            assert all(os.path.isdir(d) for d in cg.dirs.values())
    finally:
        a.delete()
        b.delete()
    # a fast path that fails half-way undoes what it made and goes the general way
    euid, h, dirs = cgroup_fast_paths()[(res, None)]
    bases = [hier.base for hier in h.hierarchies]
    bases[-1] = f"/nonexistent-{PID}"
    bogus = Dirs(bases, dirs.batches)
    monkeypatch.setitem(cgroup_fast_paths(), (res, None), (euid, h, bogus))
    c = Cgroup.create(None, res)
    try:
        assert file_of(c, "pids", "pids.max", "pids.max") == "77"
    finally:
        c.delete()
