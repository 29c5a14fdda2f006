"""The container model: :class:`Spec` and the pieces it is made of.

A Spec is a frozen dataclass with keyword-only fields, validated and normalised
when it is built: any problem raises :class:`~pynsbind.errors.SpecError` naming
the field.  Specs are hashable, which lets the plan compiler cache their plans.
Nothing here touches the kernel; checks that need the filesystem (does the rootfs
exist?) happen when a spec is compiled into a plan, still before any clone.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import resource
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

from pynsbind.errors import SpecError
from pynsbind.flags import Capability, Namespace

if TYPE_CHECKING:
    from pynsbind.cgroups import Cgroup, Resources
    from pynsbind.seccomp import SeccompProfile

__all__ = [
    "DEFAULT_CAPABILITIES",
    "DEFAULT_DEVICES",
    "DEFAULT_MASKED_PATHS",
    "DEFAULT_PATH",
    "DEFAULT_READONLY_PATHS",
    "Device",
    "IdMap",
    "Mount",
    "Spec",
    "default_mounts",
    "default_namespaces",
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
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Device:
    """A device node in the container's minimal /dev."""

    path: str
    type: Literal["c", "b"] = "c"
    major: int = 0
    minor: int = 0
    mode: int = 0o666

    def __post_init__(self) -> None:
        path = _abspath(self.path, "Device.path")
        if not path.startswith("/dev/") or path.count("/") < 2:
            raise SpecError("Device.path", f"a device lives under /dev/, not {self.path!r}")
        object.__setattr__(self, "path", path)
        if self.type not in ("c", "b"):
            raise SpecError("Device.type", f"'c' or 'b', not {self.type!r}")
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

MountKind = Literal[
    "bind", "tmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup", "overlay", "dev"
]


@dataclass(frozen=True)
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

    def __post_init__(self) -> None:
        if self.kind not in MountKind.__args__:  # type: ignore[attr-defined]
            raise SpecError("Mount.kind", f"unknown kind {self.kind!r}")
        object.__setattr__(self, "target", _abspath(self.target, f"Mount({self.kind}).target"))
        if self.kind == "bind":
            if self.source is None:
                raise SpecError("Mount(bind).source", "a bind mount needs a source")
            object.__setattr__(self, "source", _hostpath(self.source, "Mount(bind).source"))
        elif self.source is not None:
            object.__setattr__(self, "source", _text(self.source, f"Mount({self.kind}).source"))
        for flag in ("readonly", "nosuid", "nodev", "noexec", "recursive"):
            _bool(getattr(self, flag), f"Mount({self.kind}).{flag}")
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
    ) -> Mount:
        """Bind the host path ``source`` at ``target`` (default: the same path)."""
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
    ) -> Mount:
        """A tmpfs; ``size`` in bytes or as tmpfs reads it (``"64m"``)."""
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


# ---- the spec ------------------------------------------------------------------


def _pairs(value: object) -> object:
    """A normalised field (a tuple of pairs) read back as the mapping it came from."""
    if isinstance(value, tuple) and all(isinstance(i, tuple) and len(i) == 2 for i in value):
        return dict(value)
    return value


def _freeze_env(value: object) -> tuple[tuple[str, str], ...]:
    value = _pairs(value)
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


def _freeze_rlimits(value: object) -> tuple[tuple[int, int, int], ...]:
    if isinstance(value, tuple) and all(isinstance(i, tuple) and len(i) == 3 for i in value):
        value = {res: (soft, hard) for res, soft, hard in value}
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
        out[res] = (res, soft, hard)
    return tuple(sorted(out.values()))


def _freeze_join(value: object) -> tuple[tuple[Namespace, str | int | object], ...]:
    value = _pairs(value)
    if not isinstance(value, Mapping):
        raise SpecError("join", "expected a mapping of Namespace to path, fd or Process")
    out: list[tuple[Namespace, Any]] = []
    seen = Namespace(0)
    for kinds, target in value.items():
        if not isinstance(kinds, Namespace) or not kinds:
            raise SpecError("join", f"keys are Namespace flags, not {kinds!r}")
        if seen & kinds:
            raise SpecError("join", f"{kinds!r} is joined twice")
        seen |= kinds
        if isinstance(target, bool):
            raise SpecError("join", f"{kinds!r}: expected a path, fd or Process, not bool")
        if isinstance(target, int):
            if target < 0:
                raise SpecError("join", f"{kinds!r}: bad fd {target}")
            out.append((kinds, target))
        elif isinstance(target, (str, bytes, os.PathLike)):
            if len(kinds) != 1:  # type: ignore[arg-type]
                raise SpecError(
                    "join",
                    f"{kinds!r}: a path names one namespace; use a pidfd or Process for several",
                )
            out.append((kinds, _hostpath(target, f"join[{kinds!r}]")))
        elif hasattr(target, "pidfd") and hasattr(target, "pid"):
            out.append((kinds, target))
        else:
            raise SpecError("join", f"{kinds!r}: expected a path, fd or Process, not {target!r}")
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class Spec:
    """Everything about one container.  See docs/api.md for each field."""

    args: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: str = "/"
    rootfs: str | None = None
    hostname: str | None = None
    domainname: str | None = None
    namespaces: Namespace | None = None
    join: Mapping[Namespace, Any] = field(default_factory=dict)
    uid_map: Sequence[IdMap] | None = None
    gid_map: Sequence[IdMap] | None = None
    user: int | tuple[int, int] = 0
    groups: Sequence[int] = ()
    umask: int = 0o022
    mounts: Sequence[Mount] | None = None
    readonly_rootfs: bool | None = None
    masked_paths: Sequence[str] | None = None
    readonly_paths: Sequence[str] | None = None
    devices: Sequence[Device] | None = None
    rlimits: Mapping[str | int, int | tuple[int, int]] = field(default_factory=dict)
    capabilities: Iterable[Capability] | None = None
    no_new_privs: bool = True
    oom_score_adj: int | None = None
    pass_fds: Sequence[int] = ()
    die_with_parent: bool = False
    resources: Resources | None = None
    cgroup: Cgroup | str | None = None
    init: bool = False
    seccomp: SeccompProfile | bytes | str | None = "default"
    time_offsets: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        put = self._put
        # the command
        args = tuple(_text(a, f"args[{i}]") for i, a in enumerate(_seq(self.args, "args")))
        if not args:
            raise SpecError("args", "needs at least the command")
        put("args", args)
        put("env", (("PATH", DEFAULT_PATH),) if self.env is None else _freeze_env(self.env))
        put("cwd", _abspath(self.cwd, "cwd"))
        put("rootfs", None if self.rootfs is None else _hostpath(self.rootfs, "rootfs"))
        # namespaces
        ns = default_namespaces() if self.namespaces is None else self.namespaces
        if not isinstance(ns, Namespace):
            raise SpecError("namespaces", f"expected Namespace flags, got {ns!r}")
        join = _freeze_join(self.join)
        joined = Namespace(0)
        for kinds, _ in join:
            joined |= kinds
        if ns & joined:
            raise SpecError("namespaces", f"{ns & joined!r} is both created and joined")
        put("namespaces", ns)
        put("join", join)
        for name in ("hostname", "domainname"):
            value = getattr(self, name)
            if value is None:
                continue
            text = _text(value, name)
            if name == "hostname" and not all(_HOSTNAME_RE.match(p) for p in text.split(".")):
                raise SpecError(name, f"{text!r} is not a valid host name")
            if len(os.fsencode(text)) > 64:
                raise SpecError(name, f"{text!r} is longer than 64 bytes")
            if not ns & Namespace.UTS:
                raise SpecError(name, "setting it needs a new UTS namespace (Namespace.UTS)")
            put(name, text)
        # identity
        user = self.user
        if isinstance(user, int) and not isinstance(user, bool):
            uid = gid = user
        elif isinstance(user, tuple) and len(user) == 2:
            uid, gid = user
        else:
            raise SpecError("user", f"expected uid or (uid, gid), got {user!r}")
        put("user", (_int(uid, "user uid", 0, _ID_MAX), _int(gid, "user gid", 0, _ID_MAX)))
        groups = tuple(_int(g, "groups", 0, _ID_MAX) for g in _seq(self.groups, "groups"))
        if len(groups) > _NGROUPS_MAX:
            raise SpecError(
                "groups", f"{len(groups)} groups; the kernel takes at most {_NGROUPS_MAX}"
            )
        put("groups", groups)
        for name in ("uid_map", "gid_map"):
            value = getattr(self, name)
            if value is None:
                continue
            if not ns & Namespace.USER:
                raise SpecError(name, "id maps need a new user namespace (Namespace.USER)")
            maps = _freeze_maps(value, name)
            if not maps:
                raise SpecError(name, "must not be empty")
            put(name, maps)
        put("umask", _int(self.umask, "umask", 0, 0o777))
        # filesystem
        if self.mounts is not None:
            mounts = _seq(self.mounts, "mounts")
            for m in mounts:
                if not isinstance(m, Mount):
                    raise SpecError("mounts", f"expected Mount, got {m!r}")
            put("mounts", tuple(mounts))
        # the host's own root is read-only unless asked; a rootfs of the spec's is
        # writable unless asked
        # None (the default): the host's own root is read-only, a rootfs of the
        # spec's writable; see root_readonly
        asked_ro = (
            None if self.readonly_rootfs is None else _bool(self.readonly_rootfs, "readonly_rootfs")
        )
        for name in ("masked_paths", "readonly_paths"):
            value = getattr(self, name)
            if value is not None:
                put(name, tuple(_abspath(p, name) for p in _seq(value, name)))
        if self.devices is not None:
            devs = _seq(self.devices, "devices")
            for d in devs:
                if not isinstance(d, Device):
                    raise SpecError("devices", f"expected Device, got {d!r}")
            put("devices", tuple(devs))
        if not ns & Namespace.MNT:
            for name in ("rootfs", "mounts", "masked_paths", "readonly_paths", "devices"):
                if getattr(self, name):
                    raise SpecError(name, "needs a new mount namespace (Namespace.MNT)")
            if asked_ro:
                raise SpecError("readonly_rootfs", "needs a new mount namespace (Namespace.MNT)")
        # process
        put("rlimits", _freeze_rlimits(self.rlimits))
        _check_exec_size(args, self.env_pairs, self.rlimit_triples)
        if self.capabilities is not None:
            caps = []
            for c in _seq(self.capabilities, "capabilities"):
                if isinstance(c, str):
                    name = c.upper().removeprefix("CAP_")
                    if name not in Capability.__members__:
                        raise SpecError("capabilities", f"unknown capability {c!r}")
                    caps.append(Capability[name])
                else:
                    try:
                        caps.append(Capability(_int(c, "capabilities", 0, 63)))
                    except ValueError:
                        raise SpecError("capabilities", f"unknown capability {c!r}") from None
            put("capabilities", frozenset(caps))
        put("no_new_privs", _bool(self.no_new_privs, "no_new_privs"))
        if self.oom_score_adj is not None:
            put("oom_score_adj", _int(self.oom_score_adj, "oom_score_adj", -1000, 1000))
        fds = tuple(_int(fd, "pass_fds", 3, 2**31 - 1) for fd in _seq(self.pass_fds, "pass_fds"))
        if len(set(fds)) > _MAX_PASS_FDS:
            raise SpecError(
                "pass_fds", f"{len(set(fds))} fds; a container is given at most {_MAX_PASS_FDS}"
            )
        put("pass_fds", tuple(sorted(set(fds))))
        put("die_with_parent", _bool(self.die_with_parent, "die_with_parent"))
        put("init", _bool(self.init, "init"))
        _check_seccomp(self.seccomp)
        if isinstance(self.seccomp, bytes) and len(self.seccomp) // 8 > _BPF_MAXINSNS:
            raise SpecError(
                "seccomp",
                f"the program has {len(self.seccomp) // 8} instructions; "
                f"the kernel takes at most {_BPF_MAXINSNS}",
            )
        offsets = {}
        time_offsets = _pairs(self.time_offsets)
        if not isinstance(time_offsets, Mapping):
            raise SpecError("time_offsets", "expected a mapping of clock name to seconds")
        for clock, secs in time_offsets.items():
            if clock not in ("monotonic", "boottime"):
                raise SpecError("time_offsets", f"'monotonic' or 'boottime', not {clock!r}")
            offsets[clock] = _int(secs, f"time_offsets[{clock!r}]", -(2**40), 2**40)
        if offsets and not ns & Namespace.TIME:
            raise SpecError("time_offsets", "needs a new time namespace (Namespace.TIME)")
        put("time_offsets", tuple(sorted(offsets.items())))
        # cgroups
        if self.resources is not None or self.cgroup is not None:
            from pynsbind.cgroups._spawn import _check_spec_fields

            _check_spec_fields(self)

    def _put(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    # -- the normalised fields, typed (used by the plan compiler) --

    @property
    def ns(self) -> Namespace:
        """The namespaces to create (never None once built)."""
        return cast("Namespace", self.namespaces)

    @property
    def uid(self) -> int:
        return cast("tuple[int, int]", self.user)[0]

    @property
    def gid(self) -> int:
        return cast("tuple[int, int]", self.user)[1]

    @property
    def env_pairs(self) -> tuple[tuple[str, str], ...]:
        return cast("tuple[tuple[str, str], ...]", self.env)

    @property
    def environ(self) -> dict[str, str]:
        return dict(self.env_pairs)

    @property
    def join_pairs(self) -> tuple[tuple[Namespace, Any], ...]:
        return cast("tuple[tuple[Namespace, Any], ...]", self.join)

    @property
    def joined(self) -> Namespace:
        """Every namespace kind joined."""
        out = Namespace(0)
        for kinds, _ in self.join_pairs:
            out |= kinds
        return out

    @property
    def rlimit_triples(self) -> tuple[tuple[int, int, int], ...]:
        """(resource, soft, hard), sorted by resource."""
        return cast("tuple[tuple[int, int, int], ...]", self.rlimits)

    @property
    def offset_pairs(self) -> tuple[tuple[str, int], ...]:
        return cast("tuple[tuple[str, int], ...]", self.time_offsets)

    @property
    def group_ids(self) -> tuple[int, ...]:
        return tuple(self.groups)

    @property
    def root_readonly(self) -> bool:
        """Whether the container's root is read-only: ``readonly_rootfs``, or by
        default the host's own root (``rootfs=None``) is and a rootfs is not."""
        if self.readonly_rootfs is None:
            return self.rootfs is None
        return bool(self.readonly_rootfs)

    @property
    def effective_mounts(self) -> tuple[Mount, ...]:
        return default_mounts() if self.mounts is None else tuple(self.mounts)

    @property
    def effective_capabilities(self) -> frozenset[Capability]:
        if self.capabilities is None:
            return DEFAULT_CAPABILITIES
        return frozenset(self.capabilities)

    def replace(self, **changes: Any) -> Spec:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
