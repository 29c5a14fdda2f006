"""cgroup v2: the files each limit goes to, stats, the freezer and events.

Limits of a controller are written where the controller lives (see
:meth:`Host.home`): this module writes those that live on the cgroup2 tree, which
is the whole story on a unified host and the unified half of a hybrid one.
"""

from __future__ import annotations

import os
import time

from pynsbind.cgroups._common import (
    CpuStats,
    IoDeviceStats,
    MemoryStats,
    PidsStats,
    read_int,
    read_kv,
    read_text,
    write_file,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from pynsbind.resources import Resources

__all__ = ["freeze", "is_frozen", "is_populated", "writes"]

#: files whose name is free in the kernel: the first that exists is written
Choice = tuple[tuple[str, str], ...]


def _v(value: int | str) -> str:
    return "max" if value == "max" else str(value)


def writes(res: Resources, controllers: set[str]) -> tuple[list[tuple[str, str]], list[Choice]]:
    """The (file, value) writes of the controllers in ``controllers`` (v2 names),
    in the order they are applied, and the writes whose file depends on the
    kernel (io.weight or io.bfq.weight)."""
    kvs: list[tuple[str, str]] = []
    choices: list[Choice] = []
    if "memory" in controllers:
        if res.memory_max is not None:
            kvs.append(("memory.max", _v(res.memory_max)))
        if res.memory_swap_max is not None:
            kvs.append(("memory.swap.max", _v(res.memory_swap_max)))
        if res.memory_reservation is not None:
            kvs.append(("memory.low", _v(res.memory_reservation)))
        if res.memory_oom_kill_disable:
            from pynsbind.errors import SpecError

            raise SpecError(
                "resources.memory_oom_kill_disable",
                "cgroup v2 cannot turn the OOM killer off (memory.oom.group is not that)",
            )
        if res.memory_swappiness is not None:
            from pynsbind.errors import SpecError

            raise SpecError("resources.memory_swappiness", "cgroup v2 has no swappiness")
    if "cpu" in controllers:
        if res.cpu_weight is not None:
            kvs.append(("cpu.weight", str(res.cpu_weight)))
        if res.cpu_shares is not None:
            from pynsbind.resources import shares_to_weight

            kvs.append(("cpu.weight", str(shares_to_weight(res.cpu_shares))))
        if res.cpu_quota is not None or res.cpu_period is not None:
            kvs.append(("cpu.max", cpu_max(res.cpu_quota, res.cpu_period)))
    if "cpuset" in controllers:
        if res.cpus is not None:
            kvs.append(("cpuset.cpus", res.cpus))
        if res.mems is not None:
            kvs.append(("cpuset.mems", res.mems))
    if "pids" in controllers and res.pids_max is not None:
        kvs.append(("pids.max", _v(res.pids_max)))
    if "io" in controllers:
        if res.io_weight is not None:
            # io.weight needs the iocost controller; bfq has its own (1..1000)
            bfq = max(1, min(1000, (res.io_weight + 9) // 10))
            choices.append(
                (("io.weight", f"default {res.io_weight}"), ("io.bfq.weight", f"default {bfq}"))
            )
        for device, limits in res.io_max or ():
            kvs.append(("io.max", device + " " + " ".join(f"{k}={_v(v)}" for k, v in limits)))
    if "hugetlb" in controllers:
        for page, limit in res.hugetlb or ():
            kvs.append((f"hugetlb.{page}.max", _v(limit)))
    for key, value in res.unified or ():
        if key.split(".", 1)[0] in controllers:
            kvs.append((key, value))
    return kvs, choices


def cpu_max(quota: int | str | None, period: int | None) -> str:
    """cpu.max: ``QUOTA PERIOD``; a quota alone keeps the period, a period alone
    lifts the quota (as runc writes it)."""
    text = "max" if quota is None else _v(quota)
    if period is not None:
        text += f" {period}"
    return text


# ---- state -------------------------------------------------------------------------


def events(directory: str) -> dict[str, int]:
    return read_kv(directory + "/cgroup.events") or {}


def is_populated(directory: str) -> bool:
    return bool(events(directory).get("populated", 0))


def is_frozen(directory: str) -> bool:
    return bool(events(directory).get("frozen", 0))


def freeze(directory: str, frozen: bool, timeout: float) -> None:
    """Write cgroup.freeze and wait until cgroup.events says it is done (the
    kernel freezes tasks as they reach the signal path: not at once)."""
    write_file(directory + "/cgroup.freeze", "1" if frozen else "0")
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while is_frozen(directory) != frozen:
        if not os.path.isdir(directory):
            raise FileNotFoundError(2, f"{directory}: the cgroup is gone", directory)
        if time.monotonic() > deadline:
            what = "freeze" if frozen else "thaw"
            raise TimeoutError(f"{what} {directory}: not done after {timeout}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def kill(directory: str) -> bool:
    """cgroup.kill (Linux 5.14): SIGKILL to every process of the subtree; False
    where the kernel has no such file."""
    try:
        write_file(directory + "/cgroup.kill", "1")
    except FileNotFoundError:
        return False
    return True


# ---- stats -------------------------------------------------------------------------


def memory_stats(directory: str) -> MemoryStats:
    ev = read_kv(directory + "/memory.events") or {}
    return MemoryStats(
        current=read_int(directory + "/memory.current"),
        peak=read_int(directory + "/memory.peak"),
        limit=read_int(directory + "/memory.max"),
        swap_current=read_int(directory + "/memory.swap.current"),
        max_events=ev.get("max"),
        oom=ev.get("oom"),
        oom_kill=ev.get("oom_kill"),
    )


def cpu_stats(directory: str) -> CpuStats:
    st = read_kv(directory + "/cpu.stat") or {}
    return CpuStats(
        usage_usec=st.get("usage_usec"),
        user_usec=st.get("user_usec"),
        system_usec=st.get("system_usec"),
        nr_periods=st.get("nr_periods"),
        nr_throttled=st.get("nr_throttled"),
        throttled_usec=st.get("throttled_usec"),
    )


def pids_stats(directory: str) -> PidsStats:
    ev = read_kv(directory + "/pids.events") or {}
    return PidsStats(
        current=read_int(directory + "/pids.current"),
        limit=read_int(directory + "/pids.max"),
        max_events=ev.get("max"),
    )


def io_stats(directory: str) -> tuple[IoDeviceStats, ...]:
    text = read_text(directory + "/io.stat") or ""
    out = []
    for line in text.splitlines():
        device, *fields = line.split()
        vals = {}
        for f in fields:
            k, _, v = f.partition("=")
            if v.isdigit():
                vals[k] = int(v)
        out.append(
            IoDeviceStats(
                device,
                rbytes=vals.get("rbytes", 0),
                wbytes=vals.get("wbytes", 0),
                rios=vals.get("rios", 0),
                wios=vals.get("wios", 0),
            )
        )
    return tuple(out)
