"""Resources + Host -> what to write in each hierarchy, checked against the host.

A :class:`Program` is compiled once per (Resources, Host) pair and cached: its
batches are laid out as C arrays once, so creating a cgroup costs the system
calls and little else.  Every check that can fail (a controller missing, a CPU
that does not exist, a device or huge page size unknown) runs here, before any
cgroup is created.
"""

from __future__ import annotations

import functools
import os

from pynsbind._record import field, record
from pynsbind.cgroups import _bpf, _v1, _v2
from pynsbind.cgroups._common import Batch, Dirs
from pynsbind.devices import bpf_program, v1_writes
from pynsbind.errors import SpecError
from pynsbind.resources import Resources, format_cpuset

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from pynsbind.cgroups._detect import Hierarchy, Host

__all__ = ["Program", "compile_program"]

Choice = tuple[tuple[str, str], ...]

_FIELDS = {
    "memory": (
        "memory_max",
        "memory_reservation",
        "memory_swap_max",
        "memory_oom_kill_disable",
        "memory_swappiness",
    ),
    "cpu": ("cpu_weight", "cpu_shares", "cpu_quota", "cpu_period"),
    "cpuset": ("cpus", "mems"),
    "pids": ("pids_max",),
    "io": ("io_weight", "io_max"),
    "hugetlb": ("hugetlb",),
}

#: which of two candidate files exists on this kernel, found once per hierarchy
_choice_cache: dict[tuple[str, tuple[str, ...]], str] = {}


def _field(res: Resources, controller: str) -> str:
    for name in _FIELDS.get(controller, ()):
        if getattr(res, name) not in (None, False):
            return f"resources.{name}"
    return "resources.unified"


@record()
class Program:
    """The writes for one Resources on one host, per hierarchy name."""

    resources: Resources | None
    kvs: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    choices: dict[str, list[Choice]] = field(default_factory=dict)
    #: controllers the cgroup2 writes need enabled by the parent
    v2_controllers: frozenset[str] = frozenset()
    #: device rules on v1: the hierarchy whose batch starts with their writes,
    #: and how many there are
    devices_v1: str | None = None
    n_devices: int = 0
    #: device rules on cgroup v2: the program, and the hierarchy it goes to
    bpf: bytes | None = None
    bpf_hier: str | None = None
    _batches: dict[str, Batch] = field(default_factory=dict)
    _dirs: dict[str, Dirs] = field(default_factory=dict)

    def needs_parent(self, h: Hierarchy) -> bool:
        """A new v1 cpuset cgroup has no CPUs and no memory nodes, and takes no
        process until it has both: its batch copies those of its parent."""
        return h.version == 1 and "cpuset" in h.controllers

    def batch(self, h: Hierarchy, parent: str) -> Batch | None:
        """The batch for a new cgroup under ``parent`` in ``h``; None while a
        file must still be chosen in a real cgroup directory (see batch_at)."""
        if self.needs_parent(h):
            key = h.name + ":" + parent
            b = self._batches.get(key)
            if b is None:
                kvs = self._known(h)
                if kvs is None:
                    return None
                # read once and kept: forget_parent() when a write says it changed
                b = self._batches[key] = Batch(_v1.cpuset_defaults(parent, kvs))
            return b
        b = self._batches.get(h.name)
        if b is None:
            kvs = self._known(h)
            if kvs is None:
                return None
            b = self._batches[h.name] = Batch(kvs)
        return b

    def batch_at(self, h: Hierarchy, dirfd: int, parent: str) -> Batch:
        """The batch, choosing files by looking into the new cgroup ``dirfd``."""
        self.resolved(h, dirfd)
        b = self.batch(h, parent)
        assert b is not None
        return b

    def forget_parent(self, h: Hierarchy, parent: str) -> None:
        self._batches.pop(h.name + ":" + parent, None)
        self._dirs.clear()

    def dirs(self, host: Host, parent_rel: str) -> Dirs | None:
        """All hierarchies with their batches, for one nsb_cg_create call making
        a cgroup under ``parent_rel``; None while a file must still be chosen."""
        d = self._dirs.get(parent_rel)
        if d is None:
            batches = [self.batch(h, h.dir(parent_rel)) for h in host.hierarchies]
            if any(b is None for b in batches):
                return None
            progs = [-1] * len(host.hierarchies)
            if self.bpf is not None:
                fd = _bpf.cached_fd(self.bpf)
                if fd is None:
                    return None  # past the cache: the slow path loads it for this one
                progs = [fd if h.name == self.bpf_hier else -1 for h in host.hierarchies]
            d = self._dirs[parent_rel] = Dirs(
                [h.base for h in host.hierarchies],
                batches,  # type: ignore[arg-type]
                progs,
            )
        return d

    def forget_dirs(self) -> None:
        """Lay the C arrays out again (a cached program fd went stale)."""
        self._dirs.clear()

    def _known(self, h: Hierarchy) -> list[tuple[str, str]] | None:
        kvs = list(self.kvs.get(h.name, ()))
        for choice in self.choices.get(h.name, ()):
            hit = _choice_cache.get((h.name, tuple(k for k, _ in choice)))
            if hit is None:
                return None
            kvs.append((hit, dict(choice)[hit]))
        return kvs

    def resolved(self, h: Hierarchy, dirfd: int) -> list[tuple[str, str]]:
        """The writes of ``h``, with each choice of file made (see _resolve)."""
        kvs = list(self.kvs.get(h.name, ()))
        for choice in self.choices.get(h.name, ()):
            kvs.append(_resolve(h, choice, dirfd))
        return kvs


def _resolve(h: Hierarchy, choice: Choice, dirfd: int) -> tuple[str, str]:
    """The first file of ``choice`` that exists in the cgroup ``dirfd``: one
    kernel always answers the same, so the answer is kept per hierarchy."""
    names = tuple(k for k, _ in choice)
    hit = _choice_cache.get((h.name, names))
    if hit is None:
        for name in names:
            if os.access(name, os.F_OK, dir_fd=dirfd):
                hit = _choice_cache[(h.name, names)] = name
                break
        else:
            raise OSError(
                2, f"none of {', '.join(names)} exists in {h.base}: this kernel cannot set it"
            )
    return hit, dict(choice)[hit]


@functools.lru_cache(maxsize=256)
def compile_program(res: Resources | None, host: Host) -> Program:
    """Check ``res`` against ``host`` (SpecError naming the field) and lay out
    the writes of each hierarchy."""
    prog = Program(res)
    if res is None:
        return prog
    need = res.controllers()
    v2 = host.v2
    for ctrl in sorted(need):
        if ctrl in _FIELDS and host.home(ctrl) is None:
            raise SpecError(
                _field(res, ctrl),
                f"the {ctrl} controller is not available on this host ({_where(host, ctrl)})",
            )
    for key, _ in res.unified or ():
        ctrl = key.split(".", 1)[0]
        if v2 is None:
            raise SpecError("resources.unified", f"{key}: this host has no cgroup v2 ({host.mode})")
        home = host.home(ctrl)
        if home is not None and home.version == 1:
            raise SpecError(
                "resources.unified",
                f"{key}: the {ctrl} controller is bound to cgroup v1 here ({home.mount}); "
                "unified keys are cgroup v2 files",
            )
        if ctrl not in v2.controllers:
            raise SpecError(
                "resources.unified",
                f"{key}: the {ctrl} controller is not available on this host "
                f"({_where(host, ctrl)})",
            )
    dev_home = None
    if res.devices is not None:
        dev_home = host.devices_home()
        if dev_home is None:
            raise SpecError(
                "resources.devices",
                f"this host has neither a v1 devices hierarchy nor cgroup v2 ({host.mode})",
            )
        if dev_home.version == 2:
            prog.bpf, prog.bpf_hier = bpf_program(res.device_rules or ()), dev_home.name
    if res.cpus is not None:
        _subset(res.cpus, host.cpus, "cpus", "cpu")
    if res.mems is not None:
        _subset(res.mems, host.mems, "mems", "memory node")
    for page, _ in res.hugetlb or ():
        if page not in host.hugepage_sizes:
            have = ", ".join(sorted(host.hugepage_sizes)) or "none"
            raise SpecError(
                "resources.hugetlb", f"huge page size {page} does not exist (this host has {have})"
            )
    for device, _ in res.io_max or ():
        if not os.path.exists(f"{host.sys}/dev/block/{device}"):
            raise SpecError("resources.io_max", f"block device {device} does not exist")
    v2_ctrls = set()
    for h in host.hierarchies:
        if h.version == 2:
            mine = {
                c for c in need if host.home(c) is h or (c not in _FIELDS and c in h.controllers)
            }
            v2_ctrls = mine
            kvs, choices = _v2.writes(res, mine)
        else:
            kvs, choices = _v1.writes(res, h.controllers)
            if h is dev_home:
                # first: the rules hold before any process can be in the cgroup
                dev = v1_writes(res.device_rules or ())
                kvs = dev + kvs
                prog.devices_v1, prog.n_devices = h.name, len(dev)
        if kvs:
            prog.kvs[h.name] = kvs
        if choices:
            prog.choices[h.name] = choices
    prog.v2_controllers = frozenset(v2_ctrls)
    return prog


def _where(host: Host, ctrl: str) -> str:
    v2 = host.v2
    if v2 is None:
        return f"{host.mode} layout, no {ctrl} hierarchy"
    avail = " ".join(sorted(v2.controllers)) or "none"
    return f"{host.mode} layout; {v2.base}/cgroup.controllers: {avail}"


def _subset(text: str, have: frozenset[int], name: str, what: str) -> None:
    from pynsbind.resources import parse_cpuset

    want = parse_cpuset(text)
    missing = sorted(want - have)
    if missing:
        raise SpecError(
            f"resources.{name}",
            f"{what} {format_cpuset(missing)} does not exist "
            f"(this host has {format_cpuset(have) or 'none'})",
        )
