"""pynsbind.Resources: the limits of a cgroup, after the OCI ``linux.resources`` model.

Part of the model layer (with pynsbind.spec and pynsbind.devices): data and its
validation, no system call; pynsbind.cgroups applies it.

Field names follow cgroup v2 (``memory_max``, ``cpu_weight``, ``pids_max``...) and
so do their meanings; the v1 writer converts where v1 differs (docs/cgroups.md has
the formulas and where they come from).  Values are validated and normalised when a
Resources is built: sizes become ints, ``"max"`` stays ``"max"`` (no limit), and
mappings become sorted tuples of pairs so that a Resources is hashable (a Spec that
holds one is cached by its hash).  A wrong value raises
:class:`~pynsbind.errors.SpecError` (a ``ValueError``) naming the field.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence

from pynsbind._record import fields, record
from pynsbind._regex import regex
from pynsbind.devices import DeviceRule, normalize_rules
from pynsbind.errors import SpecError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any, Literal

    Max = Literal["max"]
    Limit = int | Max
    SizeArg = int | str | None


__all__ = [
    "IO_KEYS",
    "Resources",
    "blkio_weight_to_io_weight",
    "format_cpuset",
    "hugepage_name",
    "io_weight_to_blkio_weight",
    "normalize_cgroup_path",
    "parse_cpuset",
    "parse_size",
    "shares_to_weight",
    "weight_to_shares",
]


#: the keys of one device's io_max entry, as io.max names them
IO_KEYS = ("rbps", "wbps", "riops", "wiops")

_SIZE_RE = r"^(\d+)\s*([kmgtpe]?)(?:i?b)?$"
_UNITS = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}
_DEVICE_RE = r"^(\d+):(\d+)$"
_UNIFIED_KEY_RE = r"^[a-z][a-z0-9_]*\.[a-z0-9_.]+$"
_PAGE_RE = r"^(\d+)\s*([kmg])i?b?$"
_LIMIT_MAX = 2**63 - 1
_NAME_MAX = 255  # a cgroup's directory name


def parse_cpuset(text: str, where: str = "cpuset") -> frozenset[int]:
    """``0-3,8,10-11`` as a set of numbers; ValueError naming ``where`` when bad."""
    out: set[int] = set()
    text = text.strip()
    if not text:
        return frozenset()
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"{where}: cannot parse {text!r} as a list such as '0-3,8'")
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a or b > 65535:
            raise ValueError(f"{where}: bad range {part.strip()!r} in {text!r}")
        out.update(range(a, b + 1))
    return frozenset(out)


def hugepage_name(size: int) -> str:
    """The kernel's name of a huge page size in bytes: 2097152 -> ``2MB``."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size}B"


def _err(name: str, message: str) -> SpecError:
    return SpecError(f"resources.{name}", message)


def parse_size(value: object, name: str = "size", *, minimum: int = 0) -> Limit:
    """Bytes from an int or a string such as ``"64M"``, ``"1g"``, ``"512KiB"``
    (binary units); ``"max"`` means no limit.  SpecError naming ``name`` when bad."""
    if isinstance(value, bool):
        raise _err(name, f"expected a size, got {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        text = value.strip()
        if text == "max":
            return "max"
        m = regex(_SIZE_RE, ignore_case=True).match(text)
        if m is None:
            raise _err(
                name,
                f"cannot parse {value!r} as a size "
                "(use bytes, a unit K, M, G, T, P or E, or 'max')",
            )
        size = int(m.group(1)) << _UNITS[m.group(2).lower()]
    else:
        raise _err(
            name,
            f"expected an int or a string such as '64M', got {type(value).__name__}: {value!r}",
        )
    if size < minimum:
        if size < 0:
            raise _err(name, f"{value!r} is negative (use 'max' for no limit)")
        raise _err(name, f"{value!r} is below the minimum of {minimum}")
    if size > _LIMIT_MAX:
        raise _err(name, f"{value!r} is too large")
    return size


def _count(value: object, name: str, lo: int, hi: int, *, allow_max: bool = False) -> Limit:
    if allow_max and value == "max":
        return "max"
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        extra = " or 'max'" if allow_max else ""
        raise _err(name, f"expected an int{extra}, got {type(value).__name__}: {value!r}")
    if value < 0 and allow_max:
        raise _err(name, f"{value} is negative (use 'max' for no limit)")
    if not lo <= value <= hi:
        raise _err(name, f"{value} is out of range ({lo}..{hi})")
    return value


def _cpuset(value: object, name: str) -> str:
    if isinstance(value, (set, frozenset, list, tuple)):
        items = sorted(value)
        if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in items):
            raise _err(name, f"expected numbers, got {value!r}")
        nums = frozenset(items)
    elif isinstance(value, str):
        try:
            nums = parse_cpuset(value, f"resources.{name}")
        except ValueError as exc:
            raise SpecError(f"resources.{name}", str(exc).split(": ", 1)[1]) from None
    else:
        raise _err(name, f"expected a string such as '0-3,8' or a set of numbers, got {value!r}")
    if not nums:
        raise _err(name, "must not be empty")
    return format_cpuset(nums)


def format_cpuset(nums: Iterable[int]) -> str:
    """{0, 1, 2, 5} -> ``0-2,5``."""
    out: list[str] = []
    run: list[int] = []
    for n in sorted(nums):
        if run and n == run[-1] + 1:
            run.append(n)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [n]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def _pairs(value: object) -> object:
    if isinstance(value, tuple) and all(isinstance(i, tuple) and len(i) == 2 for i in value):
        return dict(value)
    return value


def _device(key: object, name: str) -> str:
    if isinstance(key, tuple) and len(key) == 2:
        key = f"{key[0]}:{key[1]}"
    if not isinstance(key, str) or regex(_DEVICE_RE).match(key.strip()) is None:
        raise _err(name, f"a device is 'MAJOR:MINOR' or (major, minor), not {key!r}")
    major, minor = (int(x) for x in key.strip().split(":"))
    return f"{major}:{minor}"


def _page_size(key: object, name: str) -> str:
    if (
        not isinstance(key, str)
        or (m := regex(_PAGE_RE, ignore_case=True).match(key.strip())) is None
    ):
        raise _err(name, f"a huge page size is such as '2MB' or '1GB', not {key!r}")
    size = int(m.group(1)) << {"k": 10, "m": 20, "g": 30}[m.group(2).lower()]
    if size <= 0:
        raise _err(name, f"bad huge page size {key!r}")
    return hugepage_name(size)


# ---- conversions between v1 and v2 ------------------------------------------------


def shares_to_weight(shares: int) -> int:
    """cgroup v1 ``cpu.shares`` (2..262144, default 1024) to v2 ``cpu.weight``
    (1..10000, default 100), as runc >= 1.3.2 and crun >= 1.23 convert it: with
    l = log2(shares), weight = ceil(10 ** ((l*l + 125*l) / 612 - 7/34)), a
    quadratic in l through (2, 1), (1024, 100) and (262144, 10000)."""
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    lg = math.log2(shares)
    weight: int = math.ceil(math.pow(10.0, (lg * lg + 125 * lg) / 612.0 - 7.0 / 34.0))
    return weight


def weight_to_shares(weight: int) -> int:
    """The inverse of :func:`shares_to_weight`, for v1 hosts: solve the quadratic
    for l and round 2**l.  1 -> 2, 100 -> 1024, 10000 -> 262144."""
    if weight <= 1:
        return 2
    if weight >= 10000:
        return 262144
    c = 612.0 * (math.log10(weight) + 7.0 / 34.0)
    lg = (-125.0 + math.sqrt(125.0 * 125.0 + 4.0 * c)) / 2.0
    shares: int = round(math.pow(2.0, lg))
    return max(2, min(262144, shares))


def blkio_weight_to_io_weight(weight: int) -> int:
    """v1 ``blkio.weight`` (10..1000) to v2 ``io.weight`` (1..10000), linearly, as
    runc and crun do: 1 + (w - 10) * 9999 / 990."""
    return 1 + (max(10, min(1000, weight)) - 10) * 9999 // 990


def io_weight_to_blkio_weight(weight: int) -> int:
    """The inverse: v2 ``io.weight`` to v1 ``blkio.weight``: 10 + (w - 1) * 990 / 9999."""
    return 10 + (max(1, min(10000, weight)) - 1) * 990 // 9999


def normalize_cgroup_path(path: object) -> str:
    """A cgroup path relative to the root of each hierarchy: ``"/a//b/"`` ->
    ``"a/b"``.  ValueError when it is empty, holds ``..`` (it would leave the
    root) or a name the kernel cannot take."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"a cgroup path is a string, not {type(path).__name__}: {path!r}")
    if "\0" in path:
        raise ValueError(f"cgroup path {path!r} contains a NUL byte")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(
            f"cgroup path {path!r} contains '..': it would leave the root of the hierarchy"
        )
    if not parts:
        raise ValueError(f"cgroup path {path!r} names the root of the hierarchy")
    for p in parts:
        if len(os.fsencode(p)) > _NAME_MAX:
            raise ValueError(
                f"cgroup path {path!r}: {p[:20]!r}... is longer than {_NAME_MAX} bytes"
            )
        if p.startswith("cgroup.") or "\n" in p:
            raise ValueError(f"cgroup path {path!r}: {p!r} is not a valid cgroup name")
    return "/".join(parts)


# ---- the model -------------------------------------------------------------------


@record(frozen=True, kw_only=True)
class Resources:
    """Limits for a cgroup; every field is optional (None: not set).

    - ``memory_max``: the memory limit (v2 memory.max, v1 memory.limit_in_bytes)
    - ``memory_reservation``: the soft limit (v2 memory.low, v1 memory.soft_limit_in_bytes)
    - ``memory_swap_max``: swap allowed *besides* memory (v2 memory.swap.max; v1
      memory.memsw.limit_in_bytes = memory_max + memory_swap_max)
    - ``memory_oom_kill_disable``: the OOM killer leaves the cgroup's tasks alone
      (they wait for memory instead; v1 memory.oom_control; cgroup v2 has no
      such switch: SpecError there)
    - ``memory_swappiness`` (0..100): v1 memory.swappiness (none on cgroup v2:
      SpecError there)
    - ``cpu_weight`` (1..10000, v1: converted to cpu.shares), or ``cpu_shares``
      (2..262144: v1's own cpu.shares, written as given there and converted to
      cpu.weight on v2; what OCI configs give), ``cpu_quota`` and
      ``cpu_period`` in microseconds (v2 cpu.max, v1 cpu.cfs_quota_us/period_us)
    - ``cpus``, ``mems``: cpuset lists such as ``"0-1"``
    - ``pids_max``: the number of tasks
    - ``io_weight`` (1..10000), ``io_max``: ``{"8:0": {"rbps": "10M", "wiops": 100}}``
    - ``hugetlb``: ``{"2MB": "64M"}``
    - ``unified``: raw cgroup v2 files, ``{"memory.high": "48M"}``
    - ``devices``: device rules, a sequence of
      :class:`~pynsbind.devices.DeviceRule` or OCI entries
      (``{"allow": False, "access": "rwm"}``), applied in order (v1 devices
      controller, or a BPF program on cgroup v2; docs/cgroups.md)

    Sizes take ints (bytes) or strings such as ``"64M"``; ``"max"`` is no limit.
    """

    memory_max: SizeArg = None
    memory_reservation: SizeArg = None
    memory_swap_max: SizeArg = None
    memory_oom_kill_disable: bool = False
    memory_swappiness: int | None = None
    cpu_weight: int | None = None
    cpu_shares: int | None = None
    cpu_quota: int | str | None = None
    cpu_period: int | None = None
    cpus: str | None = None
    mems: str | None = None
    pids_max: int | str | None = None
    io_weight: int | None = None
    io_max: Any = None
    hugetlb: Any = None
    unified: Any = None
    devices: Sequence[DeviceRule | Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        put = self._put
        if self.memory_max is not None:
            put("memory_max", parse_size(self.memory_max, "memory_max", minimum=1))
        if self.memory_reservation is not None:
            put("memory_reservation", parse_size(self.memory_reservation, "memory_reservation"))
        if self.memory_swap_max is not None:
            put("memory_swap_max", parse_size(self.memory_swap_max, "memory_swap_max"))
        oom_off = self.memory_oom_kill_disable
        if not isinstance(oom_off, bool):
            raise _err("memory_oom_kill_disable", f"expected True or False, got {oom_off!r}")
        if self.memory_swappiness is not None:
            put(
                "memory_swappiness",
                _count(self.memory_swappiness, "memory_swappiness", 0, 100),
            )
        if self.cpu_weight is not None:
            put("cpu_weight", _count(self.cpu_weight, "cpu_weight", 1, 10000))
        if self.cpu_shares is not None:
            if self.cpu_weight is not None:
                raise _err("cpu_shares", "give cpu_weight or cpu_shares, not both")
            put("cpu_shares", _count(self.cpu_shares, "cpu_shares", 2, 262144))
        if self.cpu_quota is not None:
            put("cpu_quota", _count(self.cpu_quota, "cpu_quota", 1000, _LIMIT_MAX, allow_max=True))
        if self.cpu_period is not None:
            put("cpu_period", _count(self.cpu_period, "cpu_period", 1000, 1_000_000))
        if self.cpus is not None:
            put("cpus", _cpuset(self.cpus, "cpus"))
        if self.mems is not None:
            put("mems", _cpuset(self.mems, "mems"))
        if self.pids_max is not None:
            put("pids_max", _count(self.pids_max, "pids_max", 1, _LIMIT_MAX, allow_max=True))
        if self.io_weight is not None:
            put("io_weight", _count(self.io_weight, "io_weight", 1, 10000))
        if self.io_max is not None:
            put("io_max", self._io_max(self.io_max))
        if self.hugetlb is not None:
            put("hugetlb", self._hugetlb(self.hugetlb))
        if self.unified is not None:
            put("unified", self._unified(self.unified))
        if self.devices is not None:
            put("devices", normalize_rules(self.devices, "resources.devices"))

    def _put(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def __hash__(self) -> int:
        # hashed on every cgroup made with it (the compiled writes are cached by
        # it): computed once
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(tuple(getattr(self, f.name) for f in fields(self)))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __getstate__(self) -> dict[str, Any]:
        # a hash is only good in the process that computed it (str hashes are salted)
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    @staticmethod
    def _io_max(value: object) -> tuple[tuple[str, tuple[tuple[str, Limit], ...]], ...]:
        value = _pairs(value)
        if not isinstance(value, Mapping):
            raise _err("io_max", f"expected a mapping of device to limits, got {value!r}")
        out = {}
        for dev, limits in value.items():
            device = _device(dev, "io_max")
            limits = _pairs(limits)
            if not isinstance(limits, Mapping) or not limits:
                raise _err("io_max", f"{device}: expected a mapping such as {{'rbps': '10M'}}")
            entry = []
            for k, v in limits.items():
                if k not in IO_KEYS:
                    raise _err(
                        "io_max", f"{device}: unknown key {k!r} (one of {', '.join(IO_KEYS)})"
                    )
                where = f"io_max[{device}].{k}"
                entry.append(
                    (
                        k,
                        parse_size(v, where, minimum=1)
                        if k.endswith("bps")
                        else _count(v, where, 1, _LIMIT_MAX, allow_max=True),
                    )
                )
            out[device] = tuple(sorted(entry, key=lambda kv: IO_KEYS.index(kv[0])))
        return tuple(sorted(out.items()))

    @staticmethod
    def _hugetlb(value: object) -> tuple[tuple[str, Limit], ...]:
        value = _pairs(value)
        if not isinstance(value, Mapping):
            raise _err("hugetlb", f"expected a mapping of page size to limit, got {value!r}")
        out = {}
        for size, limit in value.items():
            page = _page_size(size, "hugetlb")
            out[page] = parse_size(limit, f"hugetlb[{page}]")
        return tuple(sorted(out.items()))

    @staticmethod
    def _unified(value: object) -> tuple[tuple[str, str], ...]:
        value = _pairs(value)
        if not isinstance(value, Mapping):
            raise _err("unified", f"expected a mapping of cgroup v2 file to value, got {value!r}")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or regex(_UNIFIED_KEY_RE).match(k) is None:
                raise _err("unified", f"{k!r} is not a cgroup v2 file name such as 'memory.high'")
            if k.startswith("cgroup."):
                raise _err("unified", f"{k!r}: core cgroup files are not limits")
            if isinstance(v, int) and not isinstance(v, bool):
                v = str(v)
            if not isinstance(v, str) or "\0" in v:
                raise _err("unified", f"{k}: expected a string value, got {v!r}")
            out[k] = v
        return tuple(sorted(out.items()))

    # -- reading --

    @property
    def device_rules(self) -> tuple[DeviceRule, ...] | None:
        """``devices`` as it is kept: a tuple of DeviceRule (or None)."""
        return self.devices  # type: ignore[return-value]

    def controllers(self) -> frozenset[str]:
        """The controllers these limits need, by their v2 names (``io``, not ``blkio``)."""
        need = set()
        if (
            self.memory_max is not None
            or self.memory_reservation is not None
            or self.memory_swap_max is not None
            or self.memory_oom_kill_disable
            or self.memory_swappiness is not None
        ):
            need.add("memory")
        if any(
            v is not None
            for v in (self.cpu_weight, self.cpu_shares, self.cpu_quota, self.cpu_period)
        ):
            need.add("cpu")
        if self.cpus is not None or self.mems is not None:
            need.add("cpuset")
        if self.pids_max is not None:
            need.add("pids")
        if self.io_weight is not None or self.io_max:
            need.add("io")
        if self.hugetlb:
            need.add("hugetlb")
        for key, _ in self.unified or ():
            need.add(key.split(".", 1)[0])
        if self.devices is not None:
            need.add("devices")
        return frozenset(need)

    # -- OCI --

    @classmethod
    def from_oci(cls, resources: Mapping[str, Any]) -> Resources:
        """Read the OCI runtime-spec ``linux.resources`` object (a parsed JSON mapping).

        OCI speaks cgroup v1: ``cpu.shares`` becomes ``cpu_shares`` (on v2,
        cpu.weight through :func:`shares_to_weight`), ``memory.swap`` (memory plus swap) becomes
        ``memory_swap_max = swap - limit`` as runc does, ``blockIO.weight``
        becomes ``io_weight`` through :func:`blkio_weight_to_io_weight`, -1 means
        no limit and 0 means unset where runc reads it so.  ``devices`` becomes
        ``devices`` as listed (runc appends its default allow rules after the
        list; pynsbind leaves that to the caller: DEFAULT_DEVICE_RULES); an
        absent or empty list leaves it unset.  The deprecated ``memory.kernel``
        and ``memory.kernelTCP`` are ignored; what
        pynsbind cannot apply (real-time CPU time, per-device weights, network,
        rdma) raises SpecError when set."""
        if not isinstance(resources, Mapping):
            raise _err(
                "oci", f"expected a mapping (linux.resources), got {type(resources).__name__}"
            )
        kw: dict[str, Any] = {}
        unknown = set(resources) - {
            "memory",
            "cpu",
            "pids",
            "blockIO",
            "hugepageLimits",
            "unified",
            "devices",
            "network",
            "rdma",
        }
        if unknown:
            raise _err("oci", f"unknown keys {sorted(unknown)}")
        for key in ("network", "rdma"):
            if resources.get(key):
                raise _err(f"oci.{key}", "is not supported by pynsbind")
        mem = _section(resources, "memory")
        limit = _oci_int(mem, "limit", "memory")
        if limit not in (None, 0):
            kw["memory_max"] = "max" if limit == -1 else limit
        reservation = _oci_int(mem, "reservation", "memory")
        if reservation not in (None, 0):
            kw["memory_reservation"] = "max" if reservation == -1 else reservation
        swap = _oci_int(mem, "swap", "memory")
        if swap not in (None, 0) or limit == -1:
            kw["memory_swap_max"] = _oci_swap(swap or 0, limit or 0)
        if mem.get("disableOOMKiller"):
            kw["memory_oom_kill_disable"] = True
        swappiness = _oci_int(mem, "swappiness", "memory")
        if swappiness not in (None, -1):
            # runc: above 100 is an error (a uint64 -1 comes as 2**64-1: unset)
            if swappiness == 2**64 - 1:
                swappiness = None
            elif swappiness > 100:
                raise _err("oci.memory.swappiness", f"{swappiness} is above 100")
            kw["memory_swappiness"] = swappiness
        cpu = _section(resources, "cpu")
        shares = _oci_int(cpu, "shares", "cpu")
        if shares:
            kw["cpu_shares"] = max(2, min(262144, shares))
        quota = _oci_int(cpu, "quota", "cpu")
        if quota not in (None, 0):
            kw["cpu_quota"] = "max" if quota < 0 else quota
        period = _oci_int(cpu, "period", "cpu")
        if period:
            kw["cpu_period"] = period
        for key in ("realtimeRuntime", "realtimePeriod", "idle", "burst"):
            if cpu.get(key):
                raise _err(f"oci.cpu.{key}", "is not supported by pynsbind")
        for key in ("cpus", "mems"):
            if cpu.get(key):
                kw[key] = cpu[key]
        pids = _section(resources, "pids")
        plimit = _oci_int(pids, "limit", "pids")
        if plimit not in (None, 0):
            kw["pids_max"] = "max" if plimit < 0 else plimit
        bio = _section(resources, "blockIO")
        weight = _oci_int(bio, "weight", "blockIO")
        if weight:
            if not 10 <= weight <= 1000:
                raise _err("oci.blockIO.weight", f"{weight} is out of range (10..1000)")
            kw["io_weight"] = blkio_weight_to_io_weight(weight)
        if bio.get("weightDevice"):
            raise _err("oci.blockIO.weightDevice", "is not supported by pynsbind")
        io_max: dict[str, dict[str, int]] = {}
        for okey, ikey in (
            ("throttleReadBpsDevice", "rbps"),
            ("throttleWriteBpsDevice", "wbps"),
            ("throttleReadIOPSDevice", "riops"),
            ("throttleWriteIOPSDevice", "wiops"),
        ):
            for entry in bio.get(okey) or ():
                if not isinstance(entry, Mapping):
                    raise _err(
                        f"oci.blockIO.{okey}", f"expected {{major, minor, rate}}, got {entry!r}"
                    )
                try:
                    dev = f"{int(entry['major'])}:{int(entry['minor'])}"
                    rate = int(entry["rate"])
                except (KeyError, TypeError, ValueError):
                    raise _err(
                        f"oci.blockIO.{okey}", f"expected {{major, minor, rate}}, got {entry!r}"
                    ) from None
                if rate:
                    io_max.setdefault(dev, {})[ikey] = rate
        if io_max:
            kw["io_max"] = io_max
        huge = {}
        for entry in resources.get("hugepageLimits") or ():
            if not isinstance(entry, Mapping) or "pageSize" not in entry or "limit" not in entry:
                raise _err("oci.hugepageLimits", f"expected {{pageSize, limit}}, got {entry!r}")
            huge[entry["pageSize"]] = entry["limit"]
        if huge:
            kw["hugetlb"] = huge
        if resources.get("unified"):
            kw["unified"] = dict(resources["unified"])
        devices = resources.get("devices")
        if devices is not None and not isinstance(devices, (list, tuple)):
            raise _err("oci.devices", f"expected an array, got {devices!r}")
        if devices:
            kw["devices"] = normalize_rules(devices, "resources.oci.devices")
        return cls(**kw)


def _section(resources: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = resources.get(key) or {}
    if not isinstance(value, Mapping):
        raise _err(f"oci.{key}", f"expected an object, got {value!r}")
    return value


def _oci_int(section: Mapping[str, Any], key: str, where: str) -> int | None:
    value = section.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _err(f"oci.{where}.{key}", f"expected an integer, got {value!r}")
    if value < -1:
        raise _err(f"oci.{where}.{key}", f"{value} is negative")
    return value


def _oci_swap(swap: int, limit: int) -> Limit:
    """OCI memory.swap (memory + swap) to swap alone, as runc's
    ConvertMemorySwapToCgroupV2Value does."""
    if limit == -1 and swap == 0:
        return "max"  # unlimited memory and no swap given: unlimited both
    if swap == -1:
        return "max"
    if limit == -1:
        return swap
    if limit == 0:
        raise _err("oci.memory.swap", "a swap limit needs a memory limit")
    if swap < limit:
        raise _err("oci.memory.swap", f"memory+swap {swap} is below the memory limit {limit}")
    return swap - limit
