"""cgroup v1: the files each limit goes to (converted from the v2 model), stats,
the freezer and OOM notification.

Conversions (docs/cgroups.md has the sources):

- ``cpu_weight`` -> ``cpu.shares`` by :func:`~pynsbind.resources.weight_to_shares`
  (``cpu_shares`` as it is);
- ``memory_swap_max`` (swap alone) -> ``memory.memsw.limit_in_bytes`` = memory_max +
  memory_swap_max, after ``memory.limit_in_bytes`` (memsw must stay >= the limit);
- ``io_weight`` -> ``blkio.weight`` (or ``blkio.bfq.weight``) by
  :func:`~pynsbind.resources.io_weight_to_blkio_weight`;
- ``"max"`` -> ``-1`` (``0`` for the blkio throttles, where 0 lifts a limit).
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
from pynsbind.errors import SpecError
from pynsbind.resources import io_weight_to_blkio_weight, weight_to_shares

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from pynsbind.resources import Resources

__all__ = ["freeze", "writes"]

Choice = tuple[tuple[str, str], ...]
_THROTTLE = {
    "rbps": "blkio.throttle.read_bps_device",
    "wbps": "blkio.throttle.write_bps_device",
    "riops": "blkio.throttle.read_iops_device",
    "wiops": "blkio.throttle.write_iops_device",
}
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _v(value: int | str, unlimited: str = "-1") -> str:
    return unlimited if value == "max" else str(value)


def memsw(res: Resources) -> str | None:
    """memory.memsw.limit_in_bytes for these limits, or None (not set)."""
    if res.memory_swap_max is None:
        return None
    if res.memory_max is None:
        raise SpecError(
            "resources.memory_swap_max",
            "on cgroup v1 a swap limit needs memory_max (v1 limits memory plus swap)",
        )
    if res.memory_max == "max" or res.memory_swap_max == "max":
        return "-1"
    return str(int(res.memory_max) + int(res.memory_swap_max))


def writes(
    res: Resources, controllers: frozenset[str]
) -> tuple[list[tuple[str, str]], list[Choice]]:
    """The (file, value) writes for a v1 hierarchy bound to ``controllers``, in
    order, and those whose file depends on the kernel."""
    kvs: list[tuple[str, str]] = []
    choices: list[Choice] = []
    if "memory" in controllers:
        if res.memory_max is not None:
            kvs.append(("memory.limit_in_bytes", _v(res.memory_max)))
        sw = memsw(res)
        if sw is not None:
            kvs.append(("memory.memsw.limit_in_bytes", sw))
        if res.memory_reservation is not None:
            kvs.append(("memory.soft_limit_in_bytes", _v(res.memory_reservation)))
        if res.memory_oom_kill_disable:
            kvs.append(("memory.oom_control", "1"))
        if res.memory_swappiness is not None:
            kvs.append(("memory.swappiness", str(res.memory_swappiness)))
    if "cpu" in controllers:
        if res.cpu_weight is not None:
            kvs.append(("cpu.shares", str(weight_to_shares(res.cpu_weight))))
        if res.cpu_shares is not None:
            kvs.append(("cpu.shares", str(res.cpu_shares)))
        if res.cpu_period is not None:
            kvs.append(("cpu.cfs_period_us", str(res.cpu_period)))
        if res.cpu_quota is not None:
            kvs.append(("cpu.cfs_quota_us", _v(res.cpu_quota)))
    if "cpuset" in controllers:
        if res.cpus is not None:
            kvs.append(("cpuset.cpus", res.cpus))
        if res.mems is not None:
            kvs.append(("cpuset.mems", res.mems))
    if "pids" in controllers and res.pids_max is not None:
        kvs.append(("pids.max", "max" if res.pids_max == "max" else str(res.pids_max)))
    if "blkio" in controllers:
        if res.io_weight is not None:
            w = io_weight_to_blkio_weight(res.io_weight)
            choices.append((("blkio.weight", str(w)), ("blkio.bfq.weight", str(w))))
        for device, limits in res.io_max or ():
            for key, value in limits:
                kvs.append((_THROTTLE[key], f"{device} {_v(value, '0')}"))
    if "hugetlb" in controllers:
        for page, limit in res.hugetlb or ():
            kvs.append((f"hugetlb.{page}.limit_in_bytes", _v(limit)))
    return kvs, choices


def memory_order(directory: str, kvs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """For an update: the kernel wants memsw >= limit after every write, so raise
    memsw first when the new one is above the current limit (runc does the same)."""
    keys = [k for k, _ in kvs]
    if "memory.limit_in_bytes" not in keys or "memory.memsw.limit_in_bytes" not in keys:
        return kvs
    new_sw = dict(kvs)["memory.memsw.limit_in_bytes"]
    current = read_int(directory + "/memory.limit_in_bytes")
    if new_sw == "-1" or (current is not None and current < int(new_sw)):
        sw = ("memory.memsw.limit_in_bytes", new_sw)
        rest = [kv for kv in kvs if kv[0] != sw[0]]
        return [sw, *rest]
    return kvs


def cpuset_defaults(parent: str, kvs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A new v1 cpuset cgroup starts with no CPUs and no memory nodes, and takes
    no process until it has both: copy the parent's where the limits give none."""
    have = {k for k, _ in kvs}
    extra = []
    for key in ("cpuset.cpus", "cpuset.mems"):
        if key not in have:
            value = (read_text(f"{parent}/{key}") or "").strip()
            if value:
                extra.append((key, value))
    return extra + kvs


# ---- the freezer -----------------------------------------------------------------


def state(directory: str) -> str:
    return (read_text(directory + "/freezer.state") or "").strip()


def freeze(directory: str, frozen: bool, timeout: float) -> None:
    """freezer.state: write FROZEN (or THAWED) and wait for it; a cgroup reads
    FREEZING while some task has not stopped yet, so write again until done."""
    want = "FROZEN" if frozen else "THAWED"
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        write_file(directory + "/freezer.state", want)
        if state(directory) == want:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{want.lower()} {directory}: not done after {timeout}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


# ---- stats ---------------------------------------------------------------------------


def memory_stats(directory: str) -> MemoryStats:
    oom = read_kv(directory + "/memory.oom_control") or {}
    return MemoryStats(
        current=read_int(directory + "/memory.usage_in_bytes"),
        peak=read_int(directory + "/memory.max_usage_in_bytes"),
        limit=read_int(directory + "/memory.limit_in_bytes"),
        swap_current=None,
        max_events=read_int(directory + "/memory.failcnt"),
        oom=None,
        oom_kill=oom.get("oom_kill"),
    )


def cpu_stats(cpu_dir: str | None, cpuacct_dir: str | None) -> CpuStats:
    usage = user = system = None
    if cpuacct_dir is not None:
        ns = read_int(cpuacct_dir + "/cpuacct.usage")
        usage = None if ns is None else ns // 1000
        st = read_kv(cpuacct_dir + "/cpuacct.stat") or {}
        if "user" in st:
            user = st["user"] * 1_000_000 // _CLK_TCK
        if "system" in st:
            system = st["system"] * 1_000_000 // _CLK_TCK
    st = (read_kv(cpu_dir + "/cpu.stat") if cpu_dir is not None else None) or {}
    throttled = st.get("throttled_time")
    return CpuStats(
        usage_usec=usage,
        user_usec=user,
        system_usec=system,
        nr_periods=st.get("nr_periods"),
        nr_throttled=st.get("nr_throttled"),
        throttled_usec=None if throttled is None else throttled // 1000,
    )


def pids_stats(directory: str) -> PidsStats:
    ev = read_kv(directory + "/pids.events") or {}
    return PidsStats(
        current=read_int(directory + "/pids.current"),
        limit=read_int(directory + "/pids.max"),
        max_events=ev.get("max"),
    )


def io_stats(directory: str) -> tuple[IoDeviceStats, ...]:
    acc: dict[str, dict[str, int]] = {}
    for fname, unit in (
        ("blkio.throttle.io_service_bytes", "bytes"),
        ("blkio.throttle.io_serviced", "ios"),
    ):
        for line in (read_text(f"{directory}/{fname}") or "").splitlines():
            parts = line.split()
            if len(parts) != 3 or not parts[2].isdigit():
                continue
            device, op, value = parts
            if op in ("Read", "Write"):
                key = ("r" if op == "Read" else "w") + unit
                acc.setdefault(device, {})[key] = int(value)
    return tuple(IoDeviceStats(dev, **vals) for dev, vals in sorted(acc.items()))
