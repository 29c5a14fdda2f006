"""Which cgroup layout a host has, and where pynsbind may put its cgroups.

:func:`mode` names the layout from the filesystem types of the mounts.
:func:`detect` describes the host in full, as a :class:`Host`: every hierarchy
(the cgroup2 tree and each cgroup v1 hierarchy with controllers), the directory
pynsbind treats as the root of each (the mount point, or the delegated subtree of
an unprivileged caller), the caller's own cgroups, and the CPUs, memory nodes and
huge page sizes that exist.  Everything is read from paths given as arguments, so
the tests describe a fake host in a temporary directory.
"""

from __future__ import annotations

import functools
import os

from pynsbind._mountinfo import cgroup_layout, layout_of
from pynsbind._mountinfo import mounts as _mounts
from pynsbind._record import field, record
from pynsbind.resources import hugepage_name, parse_cpuset

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Literal

    Layout = Literal["unified", "hybrid", "legacy", "none"]


__all__ = [
    "Hierarchy",
    "Host",
    "detect",
    "mode",
    "parse_cpuset",
    "parse_mountinfo",
    "parse_proc_cgroup",
]


#: cgroup v1 controllers pynsbind knows how to use or must follow the container into
V1_CONTROLLERS = frozenset(
    [
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "devices",
        "freezer",
        "blkio",
        "pids",
        "hugetlb",
        "net_cls",
        "net_prio",
        "perf_event",
        "rdma",
        "misc",
    ]
)


def parse_mountinfo(text: str) -> list[tuple[str, str, str]]:
    """(mount point, filesystem type, super options) of each line of mountinfo."""
    return [(point, fstype, opts) for _, point, fstype, opts in _mounts(text)]


def mode(root: str = "/sys/fs/cgroup", mountinfo: str = "/proc/self/mountinfo") -> Layout:
    """``unified`` (cgroup2 at root), ``hybrid`` (v1 hierarchies under root and a
    cgroup2 beside them), ``legacy`` (v1 only) or ``none``."""
    return cgroup_layout(root, mountinfo)


def _layout(mounts: list[tuple[str, str, str]], root: str) -> Layout:
    return layout_of(mounts, root)


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/PID/cgroup as {hierarchy key: path}: ``""`` for the cgroup2 line,
    else the comma-separated controller list (``cpu,cpuacct``, ``name=systemd``)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            out[parts[1]] = parts[2]
    return out


@record(frozen=True)
class Hierarchy:
    """One cgroup hierarchy: the cgroup2 tree (``name == "unified"``) or a v1 one
    (``name`` is its controller list, ``cpu`` or ``cpu,cpuacct``)."""

    name: str
    version: int
    mount: str
    #: the directory pynsbind paths start from: the mount point, or a delegated subtree
    base: str
    #: v1: the controllers bound to it; v2: those listed in the base's cgroup.controllers
    controllers: frozenset[str]
    #: the caller's own cgroup, relative to ``base`` ("" when it is the base itself,
    #: None when the caller is outside the base)
    own: str | None = None

    def dir(self, path: str) -> str:
        """The directory of the cgroup ``path`` (relative) in this hierarchy."""
        return f"{self.base}/{path}" if path else self.base


@record(frozen=True)
class Host:
    """A host's cgroups as pynsbind sees them (see :func:`detect`)."""

    mode: Layout
    hierarchies: tuple[Hierarchy, ...] = ()
    #: why pynsbind cannot make cgroups here (no delegation, no cgroups), or None
    problem: str | None = None
    cpus: frozenset[int] = field(default_factory=frozenset)
    mems: frozenset[int] = field(default_factory=frozenset)
    #: huge page sizes as the kernel names them in hugetlb files ("2MB", "1GB")
    hugepage_sizes: frozenset[str] = field(default_factory=frozenset)
    #: where to look up block devices (/sys/dev/block/MAJ:MIN)
    sys: str = "/sys"
    rootless: bool = False

    def __hash__(self) -> int:
        # hashed on every compile_program() lookup: computed once
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.mode, self.hierarchies, self.problem, self.cpus, self.mems))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __getstate__(self) -> dict[str, object]:
        # caches stay behind: a hash is only good in its process, C arrays in none
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    @property
    def v2(self) -> Hierarchy | None:
        for h in self.hierarchies:
            if h.version == 2:
                return h
        return None

    def v1(self, controller: str) -> Hierarchy | None:
        for h in self.hierarchies:
            if h.version == 1 and controller in h.controllers:
                return h
        return None

    def home(self, controller: str) -> Hierarchy | None:
        """Where ``controller`` lives: its v1 hierarchy, else the cgroup2 tree if it
        is available there, else None.  (A controller bound to a v1 hierarchy is
        never available on cgroup2 at the same time.)  ``io`` and ``blkio`` name
        the same controller."""
        v1name = "blkio" if controller == "io" else controller
        h = self.v1(v1name)
        if h is not None:
            return h
        v2 = self.v2
        v2name = "io" if controller == "blkio" else controller
        if v2 is not None and v2name in v2.controllers:
            return v2
        return None

    def devices_home(self) -> Hierarchy | None:
        """Where device rules are enforced: the v1 devices hierarchy, else the
        cgroup2 tree (by a BPF program: cgroup v2 has no devices controller),
        else None."""
        return self.v1("devices") or self.v2

    def check(self) -> None:
        """Raise PermissionError (or OSError) saying why cgroups cannot be made here."""
        if self.problem is not None:
            raise PermissionError(13, self.problem)
        if not self.hierarchies:
            raise OSError(2, "this host has no cgroup hierarchies mounted under /sys/fs/cgroup")


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _writable(path: str) -> bool:
    return os.access(path, os.W_OK, effective_ids=os.access in os.supports_effective_ids)


def _relative(own: str | None, mount_root: str) -> str | None:
    """The caller's cgroup path (from /proc/self/cgroup) relative to a mount whose
    own root is ``mount_root``; None when outside it."""
    if own is None:
        return None
    own = own.strip("/")
    mount_root = mount_root.strip("/")
    if not mount_root:
        return own
    if own == mount_root:
        return ""
    if own.startswith(mount_root + "/"):
        return own[len(mount_root) + 1 :]
    return None


def _delegated_base(mount: str, own: str | None) -> tuple[str, str] | None:
    """The top of the writable subtree that holds the caller's own cgroup: (base
    directory, the caller's cgroup relative to it), or None."""
    if own is None:
        return None
    parts = [p for p in own.split("/") if p]
    best: tuple[str, str] | None = None
    # walk up from the caller's cgroup while the directories are delegated to us
    for depth in range(len(parts), 0, -1):
        d = mount + "/" + "/".join(parts[:depth])
        if not (
            _writable(d)
            and _writable(d + "/cgroup.procs")
            and _writable(d + "/cgroup.subtree_control")
        ):
            break
        best = (d, "/".join(parts[depth:]))
    return best


def _hugepage_sizes(sys: str) -> frozenset[str]:
    out = set()
    try:
        entries = os.listdir(f"{sys}/kernel/mm/hugepages")
    except OSError:
        return frozenset()
    for e in entries:
        if e.startswith("hugepages-") and e.endswith("kB") and e[10:-2].isdigit():
            out.add(hugepage_name(int(e[10:-2]) * 1024))
    return frozenset(out)


def detect(
    root: str = "/sys/fs/cgroup",
    mountinfo: str = "/proc/self/mountinfo",
    self_cgroup: str = "/proc/self/cgroup",
    sys: str = "/sys",
) -> Host:
    """Describe the host's cgroups (not cached; see :func:`host` for the cached one)."""
    text = _read(mountinfo)
    if text is None:
        return Host("none", problem=f"cannot read {mountinfo}")
    mounts = _mounts(text)
    layout = _layout([(p, t, o) for _, p, t, o in mounts], root)
    own_all = parse_proc_cgroup(_read(self_cgroup) or "")
    root = root.rstrip("/") or "/"
    cpus = _safe_cpuset(_read(f"{sys}/devices/system/cpu/online"), {0})
    mems = _safe_cpuset(_read(f"{sys}/devices/system/node/online"), {0})
    host_kw = {
        "cpus": cpus,
        "mems": mems,
        "hugepage_sizes": _hugepage_sizes(sys),
        "sys": sys,
    }
    hierarchies: list[Hierarchy] = []
    problems: list[str] = []
    rootless = False
    seen: set[frozenset[str]] = set()
    for mroot, point, fstype, opts in mounts:
        if not (point == root or point.startswith(root + "/")):
            continue
        if fstype == "cgroup2":
            if any(h.version == 2 for h in hierarchies):
                continue
            own = _relative(own_all.get(""), mroot)
            base, own_rel = point, own
            if not _writable(point + "/cgroup.procs"):
                rootless = True
                found = _delegated_base(point, own)
                if found is None:
                    problems.append(
                        f"no delegated cgroup v2 subtree for uid {os.geteuid()}: neither the "
                        f"root of {point} nor this process's own cgroup "
                        f"(/{own or ''}) is writable; run under a delegated cgroup such as "
                        "`systemd-run --user --scope -p Delegate=yes`, or as root"
                    )
                    continue
                base, own_rel = found
                if own_rel == "":
                    problems.append(
                        f"the delegated cgroup {base} holds this process itself: the kernel "
                        "allows no child cgroup with controllers next to a process (the "
                        "no-internal-processes rule); move this process into a leaf "
                        f"cgroup below {base} first"
                    )
                    continue
            ctrls = frozenset((_read(base + "/cgroup.controllers") or "").split())
            hierarchies.insert(0, Hierarchy("unified", 2, point, base, ctrls, own_rel))
        elif fstype == "cgroup":
            ctrls = frozenset(o for o in opts.split(",") if o in V1_CONTROLLERS)
            if not ctrls or ctrls in seen:
                continue  # a named hierarchy (name=systemd) or a second mount of one
            seen.add(ctrls)
            key = next((k for k in own_all if k and frozenset(k.split(",")) & ctrls), None)
            own = _relative(own_all.get(key) if key is not None else None, mroot)
            if not _writable(point + "/cgroup.procs"):
                rootless = True
                problems.append(
                    f"the cgroup v1 hierarchy {point} is not writable by uid {os.geteuid()}: "
                    "cgroup v1 is never delegated to unprivileged users; run as root, or on "
                    "a cgroup v2 host with a delegated subtree"
                )
                continue
            name = ",".join(sorted(ctrls))
            hierarchies.append(Hierarchy(name, 1, point, point, ctrls, own))
    v2 = [h for h in hierarchies if h.version == 2]
    v1 = sorted((h for h in hierarchies if h.version == 1), key=lambda h: h.name)
    return Host(
        layout,
        tuple(v2 + v1),
        problem="; ".join(problems) if problems else None,
        rootless=rootless,
        **host_kw,  # type: ignore[arg-type]
    )


def _safe_cpuset(text: str | None, default: set[int]) -> frozenset[int]:
    if text is None:
        return frozenset(default)
    try:
        return parse_cpuset(text)
    except ValueError:
        return frozenset(default)


@functools.cache
def _host_cached(euid: int) -> Host:
    return detect()


def host() -> Host:
    """This host, detected once per process (and effective uid)."""
    return _host_cached(os.geteuid())
