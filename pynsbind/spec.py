"""The container model: :class:`Spec` and the pieces it is made of.

A Spec is a frozen record (pynsbind._record: a dataclass to the dataclasses
module) with keyword-only fields, validated and normalised when it is built: any
problem raises :class:`~pynsbind.errors.SpecError` naming the field.  Specs are
hashable, which lets the plan compiler cache their plans.
Nothing here touches the kernel; checks that need the filesystem (does the rootfs
exist?) happen when a spec is compiled into a plan, still before any clone.
"""

from __future__ import annotations

import collections
import functools
import itertools
import os
import resource
from collections.abc import Iterable, Mapping, Sequence

from pynsbind._record import field, record, replace
from pynsbind.errors import SpecError
from pynsbind.flags import (
    PERSONALITY_DOMAIN_MASK,
    Capability,
    Namespace,
    Personality,
    describe_namespaces,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Literal, NamedTuple

    from pynsbind._spec_types import CgroupRef, JoinTarget, MountKind
    from pynsbind.resources import Resources
    from pynsbind.seccomp import SeccompProfile

_TYPING_ONLY = ("CgroupRef", "JoinTarget", "MountKind")


def __getattr__(name: str) -> Any:
    """The typing-only names (pynsbind._spec_types), loaded when asked for."""
    if name in _TYPING_ONLY:
        from pynsbind import _spec_types

        return getattr(_spec_types, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_CAPABILITIES",
    "DEFAULT_DEVICES",
    "DEFAULT_MASKED_PATHS",
    "DEFAULT_PATH",
    "DEFAULT_READONLY_PATHS",
    "MOUNT_KINDS",
    "ROOTFS_PROPAGATIONS",
    "CapabilitySets",
    "CgroupRef",
    "Device",
    "IdMap",
    "Join",
    "JoinTarget",
    "Mount",
    "MountKind",
    "NormalizedSpec",
    "Overlay",
    "Rlimit",
    "Spec",
    "default_mounts",
    "default_namespaces",
    "sysctl_namespace",
    "sysctl_path",
]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: What runc gives a container by default.
DEFAULT_CAPABILITIES: frozenset[Capability] = frozenset(
    Capability[name]
    for name in (
        "CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP "
        "NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE"
    ).split()
)

#: runc's defaults, plus powercap (energy counters are a side channel).
DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
DEFAULT_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

_PROPAGATIONS = ("private", "slave", "shared", "unbindable")
_ATIMES = (None, "relatime", "noatime", "strictatime")
#: what Spec.rootfs_propagation takes (OCI linux.rootfsPropagation, with runc's
#: recursive forms)
ROOTFS_PROPAGATIONS = (
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
)
#: the sysctls of the IPC namespace besides fs.mqueue.* (as runc lists them)
_IPC_SYSCTLS = frozenset(
    (
        "kernel.msgmax kernel.msgmnb kernel.msgmni kernel.sem kernel.shmall kernel.shmmax "
        "kernel.shmmni kernel.shm_rmid_forced"
    ).split()
)
_SYSCTL_VALUE_MAX = 4095  # what one write of a /proc/sys file takes (a page, with its NUL)
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def _host_label(label: str) -> bool:
    """A label of a host name (RFC 1123): 1 to 63 letters, digits and inner
    hyphens."""
    return (
        0 < len(label) <= 63
        and label[0] in _ALNUM
        and label[-1] in _ALNUM
        and all(c in _ALNUM or c == "-" for c in label)
    )


_RLIMIT_NAMES = {
    name[len("RLIMIT_") :]: getattr(resource, name)
    for name in dir(resource)
    if name.startswith("RLIMIT_")
}
_ID_MAX = 2**32 - 2  # (uid_t)-1 is "no id"
_NGROUPS_MAX = 65536
_MAX_PASS_FDS = 1024  # NSB_MAX_FDS: what the child's fd op keeps
_BPF_MAXINSNS = 4096
_MAX_ARG_STRLEN = 32 * 4096  # one argv or envp string, with its NUL
_STK_LIM = 8 << 20


def default_namespaces() -> Namespace:
    """pid, mount, uts, ipc, net and cgroup namespaces, plus user when not root."""
    ns = Namespace.PID | Namespace.MNT | Namespace.UTS | Namespace.IPC | Namespace.NET
    ns |= Namespace.CGROUP
    if os.geteuid() != 0:
        ns |= Namespace.USER
    return ns


# ---- validation helpers ------------------------------------------------------


def _text(value: object, where: str, *, allow_empty: bool = False) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bytes):
        try:
            value = os.fsdecode(value)
        except UnicodeDecodeError as exc:  # pragma: no cover - fsdecode surrogateescapes
            raise SpecError(where, f"cannot decode {value!r}") from exc
    if not isinstance(value, str):
        raise SpecError(where, f"expected a string, got {type(value).__name__}: {value!r}")
    if "\0" in value:
        raise SpecError(where, f"contains a NUL byte: {value!r}")
    if not allow_empty and not value:
        raise SpecError(where, "must not be empty")
    try:
        os.fsencode(value)
    except UnicodeEncodeError as exc:
        raise SpecError(where, f"cannot be encoded for the kernel: {value!r}") from exc
    return value


def _abspath(value: object, where: str) -> str:
    path = _text(value, where)
    if not path.startswith("/"):
        raise SpecError(where, f"must be an absolute path inside the container, not {path!r}")
    if len(os.fsencode(path)) >= 4096:
        raise SpecError(where, "is longer than PATH_MAX")
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise SpecError(where, f"must not contain '..': {path!r}")
    return "/" + "/".join(parts)


def _hostpath(value: object, where: str) -> str:
    path = _text(value, where)
    if len(os.fsencode(path)) >= 4096:
        raise SpecError(where, "is longer than PATH_MAX")
    return os.path.abspath(path)


def _int(value: object, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(where, f"expected an int, got {type(value).__name__}: {value!r}")
    if not lo <= value <= hi:
        raise SpecError(where, f"{value} is out of range ({lo}..{hi})")
    return int(value)


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(where, f"expected a bool, got {type(value).__name__}: {value!r}")
    return value


def _seq(value: object, where: str) -> list[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise SpecError(where, f"expected a sequence, got {type(value).__name__}: {value!r}")
    return list(value)


def _check_seccomp(value: object) -> None:
    """``"default"``, ``"unconfined"`` (or None), a SeccompProfile, or a classic
    BPF program as bytes."""
    if value is None or value in ("default", "unconfined"):
        return
    if isinstance(value, bytes):
        if not value or len(value) % 8:
            raise SpecError(
                "seccomp", "expected a classic BPF program as bytes (8 per instruction)"
            )
        if len(value) // 8 > _BPF_MAXINSNS:
            raise SpecError(
                "seccomp",
                f"the program has {len(value) // 8} instructions; "
                f"the kernel takes at most {_BPF_MAXINSNS}",
            )
        return
    if isinstance(value, str):
        raise SpecError(
            "seccomp", f"'default', 'unconfined', a SeccompProfile or bytes, not {value!r}"
        )
    from pynsbind.seccomp import SeccompProfile

    if not isinstance(value, SeccompProfile):
        raise SpecError(
            "seccomp",
            f"expected 'default', 'unconfined', a SeccompProfile or bytes, "
            f"got {type(value).__name__}: {value!r}",
        )


def _check_exec_size(
    args: tuple[str, ...],
    env: tuple[tuple[str, str], ...],
    rlimits: tuple[tuple[int, int, int], ...],
) -> None:
    """What execve will take, checked now rather than after the clone: each
    string under MAX_ARG_STRLEN, and argv plus env within a quarter of the stack
    limit the container starts with (at most 6 MiB), as the kernel counts."""
    for i, a in enumerate(args):
        if len(os.fsencode(a)) + 1 > _MAX_ARG_STRLEN:
            raise SpecError(
                "args", f"args[{i}] is longer than {_MAX_ARG_STRLEN - 1} bytes (MAX_ARG_STRLEN)"
            )
    for k, v in env:
        if len(os.fsencode(k)) + len(os.fsencode(v)) + 2 > _MAX_ARG_STRLEN:
            raise SpecError(
                "env", f"{k!r} is longer than {_MAX_ARG_STRLEN - 1} bytes (MAX_ARG_STRLEN)"
            )
    stack = next((soft for res, soft, _ in rlimits if res == resource.RLIMIT_STACK), None)
    if stack is None:
        stack = resource.getrlimit(resource.RLIMIT_STACK)[0]
    limit = _STK_LIM // 4 * 3
    if 0 <= stack < 2**63:
        limit = min(limit, stack // 4)
    limit = max(limit, _MAX_ARG_STRLEN)
    # the sealed exec adds five short arguments of its own
    argv = sum(len(os.fsencode(a)) + 1 for a in args) + 64 + 8 * (len(args) + 6)
    envp = sum(len(os.fsencode(k)) + len(os.fsencode(v)) + 2 for k, v in env) + 8 * (len(env) + 1)
    if argv + envp > limit:
        raise SpecError(
            "args" if argv >= envp else "env",
            f"argv ({argv} bytes) and env ({envp} bytes) are more than exec takes here "
            f"({limit} bytes: a quarter of the stack limit, at most 6 MiB)",
        )


# ---- pieces --------------------------------------------------------------------


@record(frozen=True)
class IdMap:
    """One line of a uid or gid map: ``count`` ids from ``inside`` (in the
    container) map to ids from ``outside`` (in the caller's user namespace)."""

    inside: int
    outside: int
    count: int = 1

    def __post_init__(self) -> None:
        _int(self.inside, "IdMap.inside", 0, _ID_MAX)
        _int(self.outside, "IdMap.outside", 0, _ID_MAX)
        _int(self.count, "IdMap.count", 1, _ID_MAX + 1)
        if self.inside + self.count - 1 > _ID_MAX or self.outside + self.count - 1 > _ID_MAX:
            raise SpecError("IdMap", f"{self} runs past the largest id")

    def covers(self, inside: int) -> bool:
        return self.inside <= inside < self.inside + self.count


@record(frozen=True)
class Device:
    """A device node in the container's minimal /dev: ``c`` (character),
    ``b`` (block) or ``p`` (a FIFO: its major and minor are not used)."""

    path: str
    type: Literal["c", "b", "p"] = "c"
    major: int = 0
    minor: int = 0
    mode: int = 0o666

    def __post_init__(self) -> None:
        path = _abspath(self.path, "Device.path")
        if not path.startswith("/dev/") or path.count("/") < 2:
            raise SpecError("Device.path", f"a device lives under /dev/, not {self.path!r}")
        object.__setattr__(self, "path", path)
        if self.type not in ("c", "b", "p"):
            raise SpecError("Device.type", f"'c', 'b' or 'p', not {self.type!r}")
        _int(self.major, "Device.major", 0, 2**12 - 1)
        _int(self.minor, "Device.minor", 0, 2**20 - 1)
        _int(self.mode, "Device.mode", 0, 0o7777)


#: null, zero, full, random, urandom and tty, as every runtime gives them.
DEFAULT_DEVICES: tuple[Device, ...] = (
    Device("/dev/null", "c", 1, 3),
    Device("/dev/zero", "c", 1, 5),
    Device("/dev/full", "c", 1, 7),
    Device("/dev/random", "c", 1, 8),
    Device("/dev/urandom", "c", 1, 9),
    Device("/dev/tty", "c", 5, 0),
)

_CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


@record(frozen=True, kw_only=True)
class CapabilitySets:
    """The five capability sets of the container's process, each given (OCI
    ``process.capabilities``), instead of the rule ``Spec.capabilities``
    applies.  Each takes capabilities by name (``"CHOWN"``, ``"CAP_CHOWN"``), by
    number or as :class:`Capability`; each is kept as a frozenset.

    They are checked with the kernel's rules: the effective and the ambient
    sets lie within the permitted set, and the ambient set within the
    inheritable set too.  What the command runs with is what execve makes of
    them (capabilities(7)): a process of uid 0 gets its bounding and
    inheritable sets as permitted and effective (cut to the permitted set under
    no_new_privs), another user its ambient set."""

    bounding: frozenset[Capability] = frozenset()
    effective: frozenset[Capability] = frozenset()
    permitted: frozenset[Capability] = frozenset()
    inheritable: frozenset[Capability] = frozenset()
    ambient: frozenset[Capability] = frozenset()

    def __post_init__(self) -> None:
        for name in _CAP_SETS:
            value = _capability_set(getattr(self, name), f"capability_sets.{name}")
            object.__setattr__(self, name, value)
        for name, within, why in (
            ("effective", "permitted", "capset keeps the effective set within the permitted set"),
            ("ambient", "permitted", "an ambient capability must be permitted"),
            ("ambient", "inheritable", "an ambient capability must be inheritable"),
        ):
            extra = getattr(self, name) - getattr(self, within)
            if extra:
                cap = min(extra)
                raise SpecError(
                    f"capability_sets.{name}",
                    f"CAP_{cap.name} is not in the {within} set ({why})",
                )


#: the kinds of Mount (MountKind, at run time)
MOUNT_KINDS = ("bind", "tmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup", "overlay", "dev")


@record(frozen=True)
class Mount:
    """A mount in the container.  Build them with the class methods:
    ``Mount.bind``, ``Mount.tmpfs``, ``Mount.proc``, ``Mount.sysfs``,
    ``Mount.devpts``, ``Mount.mqueue``, ``Mount.cgroup``, ``Mount.overlay`` and
    ``Mount.dev`` (a minimal /dev: a tmpfs with the spec's devices, devpts, shm
    and mqueue)."""

    kind: MountKind
    target: str
    source: str | None = None
    readonly: bool = False
    nosuid: bool = False
    nodev: bool = False
    noexec: bool = False
    recursive: bool = True
    propagation: str | None = None
    options: tuple[tuple[str, str | None], ...] = ()
    #: the access-time mode: None (the kernel's default, relatime), "relatime",
    #: "noatime" or "strictatime"
    atime: str | None = None
    nodiratime: bool = False
    nosymfollow: bool = False
    #: tmpfs only: the content of the directory it covers copied into it
    #: (OCI's "tmpcopyup")
    copy_up: bool = False
    #: bind only: an idmapped mount through the container's user namespace (podman's
    #: ``:idmap``): the container's ids read and write the files as the same ids on
    #: disk (its root as the host's root); made by the caller, who must be root
    idmap: bool = False

    def __post_init__(self) -> None:
        if self.kind not in MOUNT_KINDS:
            raise SpecError("Mount.kind", f"unknown kind {self.kind!r}")
        object.__setattr__(self, "target", _abspath(self.target, f"Mount({self.kind}).target"))
        if self.kind == "bind":
            if self.source is None:
                raise SpecError("Mount(bind).source", "a bind mount needs a source")
            object.__setattr__(self, "source", _hostpath(self.source, "Mount(bind).source"))
        elif self.source is not None:
            object.__setattr__(self, "source", _text(self.source, f"Mount({self.kind}).source"))
        for flag in ("readonly", "nosuid", "nodev", "noexec", "recursive", "idmap"):
            _bool(getattr(self, flag), f"Mount({self.kind}).{flag}")
        for flag in ("nodiratime", "nosymfollow", "copy_up"):
            _bool(getattr(self, flag), f"Mount({self.kind}).{flag}")
        if self.atime not in _ATIMES:
            raise SpecError(
                f"Mount({self.kind}).atime",
                f"None, 'relatime', 'noatime' or 'strictatime', not {self.atime!r}",
            )
        if self.copy_up and self.kind != "tmpfs":
            raise SpecError(f"Mount({self.kind}).copy_up", "only a tmpfs copies up what it covers")
        if self.idmap and self.kind != "bind":
            raise SpecError(f"Mount({self.kind}).idmap", "only a bind mount can be idmapped")
        if self.propagation is not None and self.propagation not in _PROPAGATIONS:
            raise SpecError(
                f"Mount({self.kind}).propagation",
                f"one of {', '.join(_PROPAGATIONS)}, not {self.propagation!r}",
            )
        opts = []
        for item in _seq(self.options, f"Mount({self.kind}).options"):
            if not isinstance(item, tuple) or len(item) != 2:
                raise SpecError(f"Mount({self.kind}).options", f"expected (key, value): {item!r}")
            key = _text(item[0], f"Mount({self.kind}).options key")
            if "," in key or "=" in key:
                raise SpecError(f"Mount({self.kind}).options", f"bad option name {key!r}")
            value = (
                None
                if item[1] is None
                else _text(item[1], f"Mount({self.kind}).options[{key}]", allow_empty=True)
            )
            opts.append((key, value))
        object.__setattr__(self, "options", tuple(opts))

    # -- constructors --

    @classmethod
    def bind(
        cls,
        source: str | os.PathLike[str],
        target: str | None = None,
        *,
        readonly: bool = False,
        recursive: bool = True,
        nosuid: bool = False,
        nodev: bool = False,
        noexec: bool = False,
        propagation: str | None = None,
        idmap: bool = False,
    ) -> Mount:
        """Bind the host path ``source`` at ``target`` (default: the same path);
        ``idmap``: through the container's user namespace (see :attr:`idmap`)."""
        src = os.fspath(source)
        return cls(
            "bind",
            target if target is not None else src,
            source=src,
            readonly=readonly,
            recursive=recursive,
            nosuid=nosuid,
            nodev=nodev,
            noexec=noexec,
            propagation=propagation,
            idmap=idmap,
        )

    @classmethod
    def tmpfs(
        cls,
        target: str,
        *,
        size: int | str | None = None,
        mode: int | None = None,
        readonly: bool = False,
        nosuid: bool = True,
        nodev: bool = True,
        noexec: bool = False,
        options: Mapping[str, str | None] | None = None,
        copy_up: bool = False,
    ) -> Mount:
        """A tmpfs; ``size`` in bytes or as tmpfs reads it (``"64m"``).  With
        ``copy_up`` it starts with a copy of the directory it covers (files,
        directories, symlinks, device nodes, FIFOs; their modes, owners and
        times; not extended attributes, and hard links become copies)."""
        opts: dict[str, str | None] = dict(options or {})
        if size is not None:
            opts["size"] = str(
                _int(size, "Mount.tmpfs size", 1, 2**62)
                if isinstance(size, int)
                else _text(size, "Mount.tmpfs size")
            )
        if mode is not None:
            opts["mode"] = f"{_int(mode, 'Mount.tmpfs mode', 0, 0o7777):o}"
        return cls(
            "tmpfs",
            target,
            source="tmpfs",
            readonly=readonly,
            nosuid=nosuid,
            nodev=nodev,
            noexec=noexec,
            options=tuple(opts.items()),
            copy_up=copy_up,
        )

    @classmethod
    def proc(cls, target: str = "/proc") -> Mount:
        return cls("proc", target, source="proc", nosuid=True, nodev=True, noexec=True)

    @classmethod
    def sysfs(cls, target: str = "/sys", *, readonly: bool = True) -> Mount:
        return cls(
            "sysfs", target, source="sysfs", readonly=readonly, nosuid=True, nodev=True, noexec=True
        )

    @classmethod
    def devpts(cls, target: str = "/dev/pts") -> Mount:
        return cls(
            "devpts",
            target,
            source="devpts",
            nosuid=True,
            noexec=True,
            options=(("newinstance", None), ("ptmxmode", "0666"), ("mode", "0620")),
        )

    @classmethod
    def mqueue(cls, target: str = "/dev/mqueue") -> Mount:
        return cls("mqueue", target, source="mqueue", nosuid=True, nodev=True, noexec=True)

    @classmethod
    def cgroup(cls, target: str = "/sys/fs/cgroup", *, readonly: bool = True) -> Mount:
        """cgroup2, showing the container's own cgroup (with a cgroup namespace)."""
        return cls(
            "cgroup",
            target,
            source="cgroup2",
            readonly=readonly,
            nosuid=True,
            nodev=True,
            noexec=True,
        )

    @classmethod
    def overlay(
        cls,
        target: str,
        lower: Sequence[str | os.PathLike[str]],
        upper: str | os.PathLike[str] | None = None,
        work: str | os.PathLike[str] | None = None,
        *,
        readonly: bool = False,
    ) -> Mount:
        """An overlay of host directories: ``lower`` (first is topmost), and an
        ``upper`` plus ``work`` pair for a writable one."""
        lowers = [_hostpath(p, "Mount.overlay lower") for p in _seq(lower, "Mount.overlay lower")]
        if not lowers:
            raise SpecError("Mount.overlay lower", "needs at least one directory")
        if any(":" in p or "," in p for p in lowers):
            raise SpecError("Mount.overlay lower", "paths must not contain ':' or ','")
        opts: list[tuple[str, str | None]] = [("lowerdir", ":".join(lowers))]
        if (upper is None) != (work is None):
            raise SpecError("Mount.overlay", "upper and work go together")
        if upper is not None and work is not None:
            opts.append(("upperdir", _hostpath(upper, "Mount.overlay upper")))
            opts.append(("workdir", _hostpath(work, "Mount.overlay work")))
        return cls("overlay", target, source="overlay", readonly=readonly, options=tuple(opts))

    @classmethod
    def dev(cls, target: str = "/dev") -> Mount:
        """A minimal /dev: tmpfs, the spec's devices, the usual symlinks, devpts,
        a tmpfs on /dev/shm and mqueue on /dev/mqueue."""
        return cls("dev", target, source="tmpfs", nosuid=True, options=(("mode", "755"),))


def default_mounts() -> tuple[Mount, ...]:
    """proc, a minimal /dev and a read-only sysfs."""
    return (Mount.proc(), Mount.dev(), Mount.sysfs())


@record(frozen=True)
class Overlay:
    """A writable overlay over the container's root (the host's ``/``, or the
    spec's ``rootfs``), which stays as it is: the container's writes go to a
    tmpfs of its own that vanishes with it, or to ``upper``, a host directory
    kept afterwards (its ``upper`` and ``work`` directories are made there).

    ``size``: the tmpfs's (``"1g"``, bytes); ``idmap``: the lower layer (and
    ``upper``) are idmapped through the container's user namespace, so that its
    root owns the host root's files in its view (and may change them, in the
    overlay); needed over the host's root in a user namespace, and only root can
    make idmapped mounts.  Needs the new mount API (Linux 5.12)."""

    upper: str | None = None
    size: int | str | None = None
    idmap: bool = False

    def __post_init__(self) -> None:
        if self.upper is not None:
            object.__setattr__(self, "upper", _hostpath(self.upper, "overlay.upper"))
        if self.size is not None:
            object.__setattr__(
                self,
                "size",
                str(_int(self.size, "overlay.size", 1, 2**62))
                if isinstance(self.size, int)
                else _text(self.size, "overlay.size"),
            )
        _bool(self.idmap, "overlay.idmap")


# ---- the spec ------------------------------------------------------------------


def _freeze_env(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise SpecError("env", f"expected a mapping, got {type(value).__name__}")
    out = []
    for k, v in value.items():
        key = _text(k, "env key")
        if "=" in key:
            raise SpecError("env", f"a variable name must not contain '=': {key!r}")
        out.append((key, _text(v, f"env[{key!r}]", allow_empty=True)))
    return tuple(out)


def _freeze_maps(value: object, where: str) -> tuple[IdMap, ...]:
    maps = []
    for item in _seq(value, where):
        if isinstance(item, IdMap):
            maps.append(item)
        elif isinstance(item, tuple) and len(item) == 3:
            try:
                maps.append(IdMap(*item))
            except SpecError as exc:
                raise SpecError(where, str(exc)) from None
        else:
            raise SpecError(where, f"expected IdMap or (inside, outside, count): {item!r}")
    if not maps:
        raise SpecError(where, "must not be empty")
    if len(maps) > 340:
        raise SpecError(where, "the kernel takes at most 340 lines")
    text = sum(len(f"{m.inside} {m.outside} {m.count}\n") for m in maps)
    if text > 4096:
        raise SpecError(
            where, f"the map is {text} bytes as text; the kernel takes at most 4096 in one write"
        )
    spans = sorted((m.inside, m.inside + m.count) for m in maps)
    outs = sorted((m.outside, m.outside + m.count) for m in maps)
    for a, b in (*itertools.pairwise(spans), *itertools.pairwise(outs)):
        if b[0] < a[1]:
            raise SpecError(where, "lines overlap")
    return tuple(maps)


if TYPE_CHECKING:

    class Rlimit(NamedTuple):
        resource: int
        soft: int
        hard: int

    class Join(NamedTuple):
        kinds: Namespace
        target: JoinTarget

else:  # the same named tuples without typing (which is not free to import)
    Rlimit = collections.namedtuple("Rlimit", ["resource", "soft", "hard"])
    Join = collections.namedtuple("Join", ["kinds", "target"])
Rlimit.__doc__ = """One resource limit: ``resource`` (an ``RLIMIT_*`` number), ``soft``
and ``hard`` (2**64 - 1 is unlimited)."""
Join.__doc__ = """Namespaces to join: ``kinds`` (one or several ``Namespace`` flags)
through ``target``."""


def _freeze_rlimits(value: object) -> tuple[Rlimit, ...]:
    if not isinstance(value, Mapping):
        raise SpecError("rlimits", f"expected a mapping, got {type(value).__name__}")
    out = {}
    for k, v in value.items():
        if isinstance(k, str):
            name = k.upper().removeprefix("RLIMIT_")
            if name not in _RLIMIT_NAMES:
                raise SpecError("rlimits", f"unknown limit {k!r}")
            res = _RLIMIT_NAMES[name]
        else:
            res = _int(k, "rlimits key", 0, 63)
        if isinstance(v, tuple) and len(v) == 2:
            soft, hard = v
        else:
            soft = hard = v
        inf = resource.RLIM_INFINITY
        soft = _int(soft, f"rlimits[{k!r}] soft", -1, 2**64 - 1)
        hard = _int(hard, f"rlimits[{k!r}] hard", -1, 2**64 - 1)
        soft = 2**64 - 1 if soft in (-1, inf) else soft
        hard = 2**64 - 1 if hard in (-1, inf) else hard
        if soft > hard:
            raise SpecError("rlimits", f"{k!r}: soft limit {soft} is above the hard limit {hard}")
        out[res] = Rlimit(res, soft, hard)
    return tuple(sorted(out.values()))


def _freeze_join(value: object) -> tuple[Join, ...]:
    if not isinstance(value, Mapping):
        raise SpecError("join", "expected a mapping of Namespace to path, fd or Process")
    out: list[Join] = []
    seen = Namespace(0)
    for kinds, target in value.items():
        if not isinstance(kinds, Namespace) or not kinds:
            raise SpecError("join", f"keys are Namespace flags, not {kinds!r}")
        which = describe_namespaces(kinds)
        if seen & kinds:
            raise SpecError("join", f"{which} is joined twice")
        seen |= kinds
        if isinstance(target, bool):
            raise SpecError("join", f"{which}: expected a path, fd or Process, not bool")
        if isinstance(target, int):
            if target < 0:
                raise SpecError("join", f"{which}: bad fd {target}")
            out.append(Join(kinds, target))
        elif isinstance(target, (str, bytes, os.PathLike)):
            if len(kinds) != 1:  # type: ignore[arg-type]
                raise SpecError(
                    "join",
                    f"{which}: a path names one namespace; use a pidfd or Process for several",
                )
            out.append(Join(kinds, _hostpath(target, f"join[{which}]")))
        elif hasattr(target, "pidfd") and hasattr(target, "pid"):
            out.append(Join(kinds, target))
        else:
            raise SpecError("join", f"{which}: expected a path, fd or Process, not {target!r}")
    return tuple(out)


# ---- the spec ------------------------------------------------------------------


@record(frozen=True, kw_only=True, eq=False)
class Spec:
    """Everything about one container, as the caller gives it (see docs/api.md
    for each field).

    A Spec is checked when it is built (``SpecError`` names the field) and keeps
    its fields as given; :attr:`normalized` is the checked, canonical form the
    engine reads, built once.  Specs compare and hash by that form, so that
    ``env={"A": "1"}`` and ``env=(("A", "1"),)`` make one spec (and one cached
    plan)."""

    args: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: str = "/"
    rootfs: str | os.PathLike[str] | None = None
    hostname: str | None = None
    domainname: str | None = None
    namespaces: Namespace | None = None
    join: Mapping[Namespace, JoinTarget] = field(default_factory=dict)
    uid_map: Sequence[IdMap | tuple[int, int, int]] | None = None
    gid_map: Sequence[IdMap | tuple[int, int, int]] | None = None
    user: int | tuple[int, int] = 0
    groups: Sequence[int] = ()
    umask: int = 0o022
    mounts: Sequence[Mount] | None = None
    readonly_rootfs: bool | None = None
    masked_paths: Sequence[str] | None = None
    readonly_paths: Sequence[str] | None = None
    devices: Sequence[Device] | None = None
    rlimits: Mapping[str | int, int | tuple[int, int]] = field(default_factory=dict)
    capabilities: Iterable[Capability | str | int] | None = None
    no_new_privs: bool = True
    oom_score_adj: int | None = None
    pass_fds: Sequence[int] = ()
    die_with_parent: bool = False
    resources: Resources | None = None
    cgroup: CgroupRef | str | None = None
    init: bool = False
    seccomp: SeccompProfile | bytes | str | None = "default"
    time_offsets: Mapping[str, int] = field(default_factory=dict)
    terminal: bool = False
    console_size: tuple[int, int] | None = None
    hook: Callable[[int], None] | None = None
    # -- what OCI configs need besides (pynsbind.oci maps config.json onto them) --
    sysctl: Mapping[str, str] = field(default_factory=dict)
    capability_sets: CapabilitySets | None = None
    personality: int | None = None
    rootfs_propagation: str | None = None
    #: a writable overlay over the root (see Overlay); None: the root as it is
    overlay: Overlay | None = None

    def __post_init__(self) -> None:
        self.normalized  # noqa: B018 - checked now, so that a bad spec fails where it is built

    @functools.cached_property
    def normalized(self) -> NormalizedSpec:
        """The checked, canonical form of this spec (built once)."""
        return _normalize(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Spec):
            return NotImplemented
        return self.normalized == other.normalized

    def __hash__(self) -> int:
        return hash(self.normalized)

    def __getstate__(self) -> dict[str, Any]:
        # the normalized form is rebuilt where the spec is unpickled
        return {k: v for k, v in self.__dict__.items() if k != "normalized"}

    def replace(self, **changes: Any) -> Spec:
        """A copy with some fields changed (checked again)."""
        return replace(self, **changes)


@record(frozen=True)
class NormalizedSpec:
    """A spec checked and in canonical form: every default resolved, mappings as
    sorted tuples, paths normalised; what the plan compiler reads."""

    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    cwd: str
    rootfs: str | None
    hostname: str | None
    domainname: str | None
    namespaces: Namespace
    joins: tuple[Join, ...]
    uid: int
    gid: int
    groups: tuple[int, ...]
    uid_map: tuple[IdMap, ...] | None
    gid_map: tuple[IdMap, ...] | None
    umask: int
    mounts: tuple[Mount, ...]
    readonly_rootfs: bool
    #: None: the defaults (DEFAULT_MASKED_PATHS / DEFAULT_READONLY_PATHS)
    masked_paths: tuple[str, ...] | None
    readonly_paths: tuple[str, ...] | None
    devices: tuple[Device, ...]
    rlimits: tuple[Rlimit, ...]
    #: None: the defaults (DEFAULT_CAPABILITIES, and none granted to a non-root user)
    capabilities: frozenset[Capability] | None
    no_new_privs: bool
    oom_score_adj: int | None
    pass_fds: tuple[int, ...]
    die_with_parent: bool
    resources: Resources | None
    cgroup: CgroupRef | str | None
    init: bool
    seccomp: SeccompProfile | bytes | Literal["default", "unconfined"]
    time_offsets: tuple[tuple[str, int], ...]
    #: the container's stdio is a new pty (its devpts's, or the host's /dev/ptmx
    #: without a mount namespace): ``devpts`` is its ptmx
    terminal: bool
    console_size: tuple[int, int] | None
    ptmx: str | None
    hook: Callable[[int], None] | None
    #: (key, value), keys in their dotted form (sysctl_path gives the file), sorted
    sysctl: tuple[tuple[str, str], ...]
    capability_sets: CapabilitySets | None
    personality: int | None
    rootfs_propagation: str | None
    overlay: Overlay | None = None

    @property
    def joined(self) -> Namespace:
        """Every namespace kind joined."""
        out = Namespace(0)
        for j in self.joins:
            out |= j.kinds
        return out

    @property
    def environ(self) -> dict[str, str]:
        return dict(self.env)

    @property
    def bounding_capabilities(self) -> frozenset[Capability]:
        """The bounding set: capability_sets.bounding, the spec's capabilities, or
        the default set."""
        if self.capability_sets is not None:
            return self.capability_sets.bounding
        return DEFAULT_CAPABILITIES if self.capabilities is None else self.capabilities


# ---- checking a spec, topic by topic ------------------------------------------------


def _normalize(spec: Spec) -> NormalizedSpec:
    command = _command(spec)
    namespaces = _namespaces(spec)
    ns = namespaces["namespaces"]
    identity = _identity(spec, ns)
    filesystem = _filesystem(spec, ns)
    process = _process(spec)
    placement = _placement(spec)
    time_offsets = _time_offsets(spec, ns)
    joined = Namespace(0)
    for j in namespaces["joins"]:
        joined |= j.kinds
    lifecycle = _lifecycle(spec, ns, joined, filesystem["mounts"])
    oci = _oci_fields(spec, ns, namespaces["joins"], namespaces["domainname"])
    _check_exec_size(command["args"], command["env"], process["rlimits"])
    return NormalizedSpec(
        **command,
        **namespaces,
        **identity,
        **filesystem,
        **process,
        **placement,
        time_offsets=time_offsets,
        **lifecycle,
        **oci,
    )


def _command(spec: Spec) -> dict[str, Any]:
    args = tuple(_text(a, f"args[{i}]") for i, a in enumerate(_seq(spec.args, "args")))
    if not args:
        raise SpecError("args", "needs at least the command")
    env = (("PATH", DEFAULT_PATH),) if spec.env is None else _freeze_env(spec.env)
    return {"args": args, "env": env, "cwd": _abspath(spec.cwd, "cwd")}


def _namespaces(spec: Spec) -> dict[str, Any]:
    ns = default_namespaces() if spec.namespaces is None else spec.namespaces
    if not isinstance(ns, Namespace):
        raise SpecError("namespaces", f"expected Namespace flags, got {ns!r}")
    joins = _freeze_join(spec.join)
    joined = Namespace(0)
    for j in joins:
        joined |= j.kinds
    if ns & joined:
        both = describe_namespaces(ns & joined)
        raise SpecError("namespaces", f"{both} is both created and joined")
    names: dict[str, str | None] = {}
    for name in ("hostname", "domainname"):
        value = getattr(spec, name)
        names[name] = None
        if value is None:
            continue
        text = _text(value, name)
        if name == "hostname" and not all(_host_label(p) for p in text.split(".")):
            raise SpecError(name, f"{text!r} is not a valid host name")
        if len(os.fsencode(text)) > 64:
            raise SpecError(name, f"{text!r} is longer than 64 bytes")
        if not (ns | joined) & Namespace.UTS:
            raise SpecError(
                name, "setting it needs a UTS namespace, created or joined (Namespace.UTS)"
            )
        names[name] = text
    return {"namespaces": ns, "joins": joins, **names}


def _identity(spec: Spec, ns: Namespace) -> dict[str, Any]:
    user = spec.user
    if isinstance(user, int) and not isinstance(user, bool):
        uid = gid = user
    elif isinstance(user, tuple) and len(user) == 2:
        uid, gid = user
    else:
        raise SpecError("user", f"expected uid or (uid, gid), got {user!r}")
    groups = tuple(_int(g, "groups", 0, _ID_MAX) for g in _seq(spec.groups, "groups"))
    if len(groups) > _NGROUPS_MAX:
        raise SpecError("groups", f"{len(groups)} groups; the kernel takes at most {_NGROUPS_MAX}")
    maps: dict[str, tuple[IdMap, ...] | None] = {}
    for name in ("uid_map", "gid_map"):
        value = getattr(spec, name)
        maps[name] = None
        if value is None:
            continue
        if not ns & Namespace.USER:
            raise SpecError(name, "id maps need a new user namespace (Namespace.USER)")
        maps[name] = _freeze_maps(value, name)
    return {
        "uid": _int(uid, "user uid", 0, _ID_MAX),
        "gid": _int(gid, "user gid", 0, _ID_MAX),
        "groups": groups,
        **maps,
        "umask": _int(spec.umask, "umask", 0, 0o777),
    }


def _filesystem(spec: Spec, ns: Namespace) -> dict[str, Any]:
    rootfs = None if spec.rootfs is None else _hostpath(spec.rootfs, "rootfs")
    mounts = default_mounts()
    if spec.mounts is not None:
        mounts = tuple(_seq(spec.mounts, "mounts"))
        for m in mounts:
            if not isinstance(m, Mount):
                raise SpecError("mounts", f"expected Mount, got {m!r}")
    # None (the default): the host's own root is read-only, a rootfs of the
    # spec's writable
    asked_ro = (
        None if spec.readonly_rootfs is None else _bool(spec.readonly_rootfs, "readonly_rootfs")
    )
    paths: dict[str, tuple[str, ...] | None] = {}
    for name in ("masked_paths", "readonly_paths"):
        value = getattr(spec, name)
        paths[name] = None if value is None else tuple(_abspath(p, name) for p in _seq(value, name))
    devices = DEFAULT_DEVICES
    if spec.devices is not None:
        devices = tuple(_seq(spec.devices, "devices"))
        for d in devices:
            if not isinstance(d, Device):
                raise SpecError("devices", f"expected Device, got {d!r}")
    overlay = spec.overlay
    if overlay is not None:
        if not isinstance(overlay, Overlay):
            raise SpecError("overlay", f"expected a pynsbind.spec.Overlay, got {overlay!r}")
        if asked_ro:
            raise SpecError("readonly_rootfs", "an overlay root is writable: not both")
        asked_ro = False
    if not ns & Namespace.MNT:
        for name in ("rootfs", "mounts", "masked_paths", "readonly_paths", "devices", "overlay"):
            if getattr(spec, name):
                raise SpecError(name, "needs a new mount namespace (Namespace.MNT)")
        if asked_ro:
            raise SpecError("readonly_rootfs", "needs a new mount namespace (Namespace.MNT)")
        asked_ro = False
    for m in mounts:
        if m.idmap and not ns & Namespace.USER:
            raise SpecError(
                "mounts", f"the idmapped mount of {m.source} needs a new user namespace"
            )
    if overlay is not None and overlay.idmap and not ns & Namespace.USER:
        raise SpecError("overlay", "an idmapped overlay needs a new user namespace")
    return {
        "rootfs": rootfs,
        "mounts": mounts,
        "readonly_rootfs": rootfs is None if asked_ro is None else asked_ro,
        **paths,
        "devices": devices,
        "overlay": overlay,
    }


def _capability_set(value: object, where: str) -> frozenset[Capability]:
    """Capabilities given as names (``"CHOWN"``, ``"CAP_CHOWN"``), numbers or
    Capability members, as a frozenset."""
    found = []
    for c in _seq(value, where):
        if isinstance(c, str):
            name = c.upper().removeprefix("CAP_")
            if name not in Capability.__members__:
                raise SpecError(where, f"unknown capability {c!r}")
            found.append(Capability[name])
        else:
            try:
                found.append(Capability(_int(c, where, 0, 63)))
            except ValueError:
                raise SpecError(where, f"unknown capability {c!r}") from None
    return frozenset(found)


def _process(spec: Spec) -> dict[str, Any]:
    caps = None
    if spec.capabilities is not None:
        caps = _capability_set(spec.capabilities, "capabilities")
    fds = tuple(_int(fd, "pass_fds", 3, 2**31 - 1) for fd in _seq(spec.pass_fds, "pass_fds"))
    if len(set(fds)) > _MAX_PASS_FDS:
        raise SpecError(
            "pass_fds", f"{len(set(fds))} fds; a container is given at most {_MAX_PASS_FDS}"
        )
    _check_seccomp(spec.seccomp)
    return {
        "rlimits": _freeze_rlimits(spec.rlimits),
        "capabilities": caps,
        "no_new_privs": _bool(spec.no_new_privs, "no_new_privs"),
        "oom_score_adj": None
        if spec.oom_score_adj is None
        else _int(spec.oom_score_adj, "oom_score_adj", -1000, 1000),
        "pass_fds": tuple(sorted(set(fds))),
        "die_with_parent": _bool(spec.die_with_parent, "die_with_parent"),
        "init": _bool(spec.init, "init"),
        "seccomp": "unconfined" if spec.seccomp is None else spec.seccomp,
    }


def _placement(spec: Spec) -> dict[str, Any]:
    res = spec.resources
    if res is not None:
        from pynsbind.resources import Resources

        if not isinstance(res, Resources):
            raise SpecError(
                "resources",
                f"expected a pynsbind.Resources, got {type(res).__name__}: {res!r}",
            )
    cg = spec.cgroup
    if isinstance(cg, (str, os.PathLike)):
        from pynsbind.resources import normalize_cgroup_path

        try:
            cg = normalize_cgroup_path(cg)
        except (TypeError, ValueError) as exc:
            raise SpecError("cgroup", str(exc)) from None
    elif cg is not None and not (hasattr(cg, "path") and hasattr(cg, "host")):
        # a pynsbind.cgroups.Cgroup (checked as such by the plan compiler)
        raise SpecError("cgroup", f"expected a Cgroup or a path, got {type(cg).__name__}: {cg!r}")
    return {"resources": res, "cgroup": cg}


def _time_offsets(spec: Spec, ns: Namespace) -> tuple[tuple[str, int], ...]:
    if not isinstance(spec.time_offsets, Mapping):
        raise SpecError("time_offsets", "expected a mapping of clock name to seconds")
    offsets = {}
    for clock, secs in spec.time_offsets.items():
        if clock not in ("monotonic", "boottime"):
            raise SpecError("time_offsets", f"'monotonic' or 'boottime', not {clock!r}")
        offsets[clock] = _int(secs, f"time_offsets[{clock!r}]", -(2**40), 2**40)
    if offsets and not ns & Namespace.TIME:
        raise SpecError("time_offsets", "needs a new time namespace (Namespace.TIME)")
    return tuple(sorted(offsets.items()))


def _lifecycle(
    spec: Spec, ns: Namespace, joined: Namespace, mounts: tuple[Mount, ...]
) -> dict[str, Any]:
    """The terminal and the setup hook."""
    terminal = _bool(spec.terminal, "terminal")
    size = spec.console_size
    if size is not None:
        if not terminal:
            raise SpecError("console_size", "needs terminal=True")
        if not isinstance(size, tuple) or len(size) != 2:
            raise SpecError("console_size", f"expected (rows, columns), got {size!r}")
        size = (
            _int(size[0], "console_size rows", 1, 65535),
            _int(size[1], "console_size columns", 1, 65535),
        )
    ptmx = None
    if terminal:
        if ns & Namespace.MNT:
            # the container's own devpts: the last one mounted (a later mount on
            # the same place hides an earlier one)
            for m in mounts:
                if m.kind == "devpts":
                    ptmx = m.target.rstrip("/") + "/ptmx"
                elif m.kind == "dev":
                    ptmx = m.target.rstrip("/") + "/pts/ptmx"
            if ptmx is None:
                raise SpecError(
                    "terminal",
                    "the container has no devpts to make its terminal in: add Mount.dev() "
                    "or Mount.devpts() to mounts",
                )
        elif joined & Namespace.MNT:
            # a container's mount namespace joined (exec): its own devpts, where
            # runtimes mount it (its /dev/ptmx is often a symlink to this one,
            # which the engine does not follow)
            ptmx = "/dev/pts/ptmx"
        else:
            ptmx = "/dev/ptmx"  # no mount namespace: the host's /dev is the container's
    if spec.hook is not None and not callable(spec.hook):
        raise SpecError(
            "hook", f"expected a callable taking the pid, got {type(spec.hook).__name__}"
        )
    return {"terminal": terminal, "console_size": size, "ptmx": ptmx, "hook": spec.hook}


# ---- what OCI configs need besides --------------------------------------------------


def sysctl_path(key: str) -> str:
    """The file of a sysctl under /proc: ``net.ipv4.ip_forward`` ->
    ``sys/net/ipv4/ip_forward``.  ``key`` is in the dotted form (a ``/`` stands
    for a dot inside a name: ``net.ipv4.conf.eth0/100.rp_filter``)."""
    return "sys/" + "/".join(part.replace("/", ".") for part in key.split("."))


def sysctl_namespace(key: str) -> Namespace:
    """The namespace a sysctl belongs to (what runc allows: the IPC, network,
    UTS and user namespaces' own); SpecError naming the key for any other,
    which would change the whole host."""
    if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
        return Namespace.IPC
    if key.startswith("net."):
        return Namespace.NET
    if key == "kernel.domainname":
        return Namespace.UTS
    if key == "kernel.hostname":
        raise SpecError("sysctl", f"{key!r} would set the host name: use the hostname field")
    if key.startswith("user."):
        return Namespace.USER
    raise SpecError(
        "sysctl",
        f"{key!r} is not namespaced: it would change the whole host (the namespaced ones are "
        "kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*, kernel.domainname and user.*)",
    )


def _sysctl_key(value: object) -> str:
    """A sysctl key in its dotted form; a key whose first separator is ``/``
    (``net/ipv4/conf/eth0.100/rp_filter``) has its ``/`` and ``.`` swapped, as
    sysctl(8) reads it."""
    key = _text(value, "sysctl key")
    first = min((i for i in (key.find("."), key.find("/")) if i >= 0), default=-1)
    if first >= 0 and key[first] == "/":
        key = key.translate(str.maketrans("./", "/."))
    parts = key.split(".")
    if len(parts) < 2 or any(p in ("", "/", "..") for p in parts):
        raise SpecError("sysctl", f"{value!r} is not a sysctl name such as 'net.ipv4.ip_forward'")
    for part in parts:
        names = part.split("/")
        if any(n in ("", ".", "..") for n in names) or any(
            c.isspace() or not c.isprintable() for c in part
        ):
            raise SpecError(
                "sysctl", f"{value!r} is not a sysctl name such as 'net.ipv4.ip_forward'"
            )
    return key


_PERSONALITY_FLAGS = 0
for _flag in Personality:
    if _flag.value & ~PERSONALITY_DOMAIN_MASK:
        _PERSONALITY_FLAGS |= _flag.value


def _oci_fields(
    spec: Spec, ns: Namespace, joins: tuple[Join, ...], domainname: str | None
) -> dict[str, Any]:
    joined = Namespace(0)
    for j in joins:
        joined |= j.kinds
    if not isinstance(spec.sysctl, Mapping):
        raise SpecError("sysctl", "expected a mapping of sysctl name to value")
    sysctl: dict[str, str] = {}
    for k, v in spec.sysctl.items():
        key = _sysctl_key(k)
        if key in sysctl:
            raise SpecError("sysctl", f"{k!r} is given twice")
        value = _text(v, f"sysctl[{key!r}]", allow_empty=True)
        if len(os.fsencode(value)) > _SYSCTL_VALUE_MAX:
            raise SpecError(
                f"sysctl[{key!r}]", f"the value is longer than {_SYSCTL_VALUE_MAX} bytes"
            )
        kind = sysctl_namespace(key)
        if not (ns | joined) & kind:
            raise SpecError(
                "sysctl",
                f"{key!r} needs a {kind.proc_name} namespace of the container's own "
                f"(Namespace.{kind.name}, created or joined); else it would change the host's",
            )
        if key == "kernel.domainname" and domainname is not None:
            raise SpecError("sysctl", "'kernel.domainname' and the domainname field both set it")
        sysctl[key] = value
    if sysctl and not ns & Namespace.MNT:
        raise SpecError(
            "sysctl", "is written through the container's own /proc: it needs Namespace.MNT"
        )
    sets = spec.capability_sets
    if sets is not None:
        if not isinstance(sets, CapabilitySets):
            raise SpecError(
                "capability_sets",
                f"expected a CapabilitySets, got {type(sets).__name__}: {sets!r}",
            )
        if spec.capabilities is not None:
            raise SpecError(
                "capability_sets",
                "give capabilities (pynsbind's rule) or capability_sets (each set), not both",
            )
    persona = spec.personality
    if persona is not None:
        persona = _int(persona, "personality", 0, 2**32 - 2)
        domain = persona & PERSONALITY_DOMAIN_MASK
        if domain not in (Personality.LINUX, Personality.LINUX32):
            raise SpecError(
                "personality",
                f"the execution domain {domain:#x} is neither LINUX (0) nor LINUX32 (0x8)",
            )
        unknown = persona & ~PERSONALITY_DOMAIN_MASK & ~_PERSONALITY_FLAGS
        if unknown:
            raise SpecError("personality", f"unknown flags {unknown:#x}")
    prop = spec.rootfs_propagation
    if prop is not None:
        if prop not in ROOTFS_PROPAGATIONS:
            raise SpecError(
                "rootfs_propagation", f"one of {', '.join(ROOTFS_PROPAGATIONS)}, not {prop!r}"
            )
        if not ns & Namespace.MNT:
            raise SpecError("rootfs_propagation", "needs a new mount namespace (Namespace.MNT)")
    return {
        "sysctl": tuple(sorted(sysctl.items())),
        "capability_sets": sets,
        "personality": persona,
        "rootfs_propagation": prop,
    }
