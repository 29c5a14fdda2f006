"""pynsbind.lowlevel: typed 1:1 wrappers of the kernel calls Python's ``os`` lacks.

This is the escape hatch; :func:`pynsbind.run` and :func:`pynsbind.spawn` are the
everyday API.  Each function validates its arguments (a wrong type raises
``TypeError`` before any system call), calls the C layer with the GIL released,
and turns a failure into a plain ``OSError(errno, message)``, which Python maps to
``PermissionError``, ``FileNotFoundError`` and so on.  The message names the call
and its key arguments: ``mount('proc', '/x/proc', 'proc'): no such file or directory``.

Every constant comes from the kernel headers at build time.  Where the build's
headers lacked something, the matching ``HAS_*`` flag is false and the wrapper
raises ``NotImplementedError``.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable, Sequence
from typing import NamedTuple, NoReturn, Protocol, TypeAlias

from pynsbind._ffi import ffi, lib
from pynsbind.flags import (
    CAP_LAST_CAP,
    Capability,
    CloseRangeFlags,
    FsconfigCmd,
    FsmountFlags,
    FsopenFlags,
    FspickFlags,
    MountAttr,
    MountFlags,
    MoveMountFlags,
    Namespace,
    OpenTreeFlags,
    UmountFlags,
)
from pynsbind.flags import describe_namespaces as _ns_show

__all__ = [
    "AT_EMPTY_PATH",
    "AT_FDCWD",
    "AT_NO_AUTOMOUNT",
    "AT_RECURSIVE",
    "AT_SYMLINK_NOFOLLOW",
    "AUDIT_ARCH",
    "BPF_ABS",
    "BPF_ALU",
    "BPF_AND",
    "BPF_JA",
    "BPF_JEQ",
    "BPF_JGE",
    "BPF_JGT",
    "BPF_JMP",
    "BPF_K",
    "BPF_LD",
    "BPF_RET",
    "BPF_W",
    "CAP_LAST_CAP",
    "HAS_CLONE3",
    "HAS_CLONE_INTO_CGROUP",
    "HAS_CLOSE_RANGE",
    "HAS_MOUNT_SETATTR",
    "HAS_NEW_MOUNT_API",
    "HAS_NS_IOCTLS",
    "HAS_OPENAT2",
    "HAS_PIDFD",
    "HAS_PIDFD_GETFD",
    "HAS_TIME_NS",
    "PIDFD_NONBLOCK",
    "SECCOMP_DATA_ARCH",
    "SECCOMP_DATA_ARGS",
    "SECCOMP_DATA_NR",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_NEW_LISTENER",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_RET_ALLOW",
    "SECCOMP_RET_DATA",
    "SECCOMP_RET_ERRNO",
    "SECCOMP_RET_KILL_PROCESS",
    "SECCOMP_RET_KILL_THREAD",
    "SECCOMP_RET_LOG",
    "SECCOMP_RET_TRACE",
    "SECCOMP_RET_TRAP",
    "BpfInsn",
    "CapSets",
    "Capability",
    "CloseRangeFlags",
    "FsconfigCmd",
    "FsmountFlags",
    "FsopenFlags",
    "FspickFlags",
    "MountAttr",
    "MountFlags",
    "MoveMountFlags",
    "Namespace",
    "OpenTreeFlags",
    "UmountFlags",
    "bpf_jump",
    "bpf_stmt",
    "cap_ambient_clear_all",
    "cap_ambient_is_set",
    "cap_ambient_lower",
    "cap_ambient_raise",
    "capbset_drop",
    "capbset_read",
    "capget",
    "capset",
    "clone",
    "close_range",
    "filter_bytes",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_child_subreaper",
    "get_dumpable",
    "get_keepcaps",
    "get_name",
    "get_no_new_privs",
    "get_pdeathsig",
    "mount",
    "mount_setattr",
    "move_mount",
    "ns_get_nstype",
    "ns_get_owner_uid",
    "ns_get_parent",
    "ns_get_userns",
    "open_namespace",
    "open_tree",
    "pidfd_getfd",
    "pidfd_open",
    "pidfd_send_signal",
    "pivot_root",
    "seccomp_set_filter",
    "set_child_subreaper",
    "set_dumpable",
    "set_keepcaps",
    "set_name",
    "set_no_new_privs",
    "set_pdeathsig",
    "setdomainname",
    "sethostname",
    "setns",
    "umount2",
    "unshare",
]

HAS_CLONE3 = bool(lib.NSB_HAS_CLONE3)
HAS_CLONE_INTO_CGROUP = bool(lib.NSB_HAS_CLONE_INTO_CGROUP)
HAS_TIME_NS = bool(lib.NSB_HAS_TIME_NS)
HAS_NEW_MOUNT_API = bool(lib.NSB_HAS_NEW_MOUNT_API)
HAS_MOUNT_SETATTR = bool(lib.NSB_HAS_MOUNT_SETATTR)
HAS_PIDFD = bool(lib.NSB_HAS_PIDFD)
HAS_PIDFD_GETFD = bool(lib.NSB_HAS_PIDFD_GETFD)
HAS_CLOSE_RANGE = bool(lib.NSB_HAS_CLOSE_RANGE)
HAS_OPENAT2 = bool(lib.NSB_HAS_OPENAT2)
HAS_NS_IOCTLS = bool(lib.NSB_HAS_NS_IOCTLS)

AT_FDCWD: int = lib.AT_FDCWD
AT_RECURSIVE: int = lib.AT_RECURSIVE
AT_EMPTY_PATH: int = lib.AT_EMPTY_PATH
AT_SYMLINK_NOFOLLOW: int = lib.AT_SYMLINK_NOFOLLOW
AT_NO_AUTOMOUNT: int = lib.AT_NO_AUTOMOUNT


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


Fd: TypeAlias = "int | _HasFileno"
Path: TypeAlias = "str | bytes | os.PathLike[str] | os.PathLike[bytes]"


# ---- argument checks and errors ---------------------------------------------------


def _fd(value: object, name: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a file descriptor, not bool")
    if isinstance(value, int):
        return _in_cint(value, name)
    fileno = getattr(value, "fileno", None)
    if callable(fileno):
        result = fileno()
        if isinstance(result, int) and not isinstance(result, bool):
            return _in_cint(result, name)
    raise TypeError(f"{name} must be an int or have fileno(), not {type(value).__name__}")


def _dirfd(value: object, name: str) -> int:
    return AT_FDCWD if value is None else _fd(value, name)


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


def _in_cint(v: int, name: str) -> int:
    if not -(1 << 31) <= v < 1 << 31:
        raise ValueError(f"{name} must be between -2**31 and 2**31-1, not {v}")
    return v


def _cint(value: object, name: str) -> int:
    """An int that fits the C ``int`` of the call."""
    return _in_cint(_int(value, name), name)


def _bool(value: object, name: str) -> int:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return int(value)


def _uint(value: object, name: str, bits: int = 64) -> int:
    v = _int(value, name)
    if v < 0 or v >= 1 << bits:
        raise ValueError(f"{name} must be between 0 and 2**{bits}-1, not {v}")
    return v


def _bytes(value: object, name: str) -> bytes:
    if isinstance(value, str):
        data = os.fsencode(value)
    elif isinstance(value, bytes):
        data = value
    elif isinstance(value, os.PathLike):
        data = os.fsencode(value)
    else:
        raise TypeError(f"{name} must be str, bytes or os.PathLike, not {type(value).__name__}")
    if b"\0" in data:
        raise ValueError(f"{name} contains a NUL byte: {value!r}")
    return data


def _opt_bytes(value: object, name: str) -> bytes | None:
    return None if value is None else _bytes(value, name)


def _show(value: object) -> str:
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return repr(value)


def _c(data: bytes | None) -> object:
    return ffi.NULL if data is None else data


def _raise(call: str) -> NoReturn:
    err = ffi.errno
    raise OSError(err, f"{call}: {os.strerror(err).lower()}")


def _need(flag: bool, what: str) -> None:
    if not flag:
        raise NotImplementedError(f"{what}: this build of pynsbind has no support for it")


# ---- namespaces ------------------------------------------------------------------


def unshare(flags: int) -> None:
    """unshare(2): move this process into new namespaces (``Namespace`` flags, or
    ``CLONE_FILES``/``CLONE_FS``/``CLONE_SYSVSEM``)."""
    f = _uint(flags, "flags", 31)
    if lib.nsb_unshare(f) < 0:
        _raise(f"unshare({_ns_show(f)})")


def setns(fd: Fd, nstype: int = 0) -> None:
    """setns(2): join the namespace of a namespace fd, or several namespaces of a
    process at once from its pidfd (``nstype`` then is a set of ``Namespace``)."""
    f = _fd(fd, "fd")
    t = _uint(nstype, "nstype", 31)
    if lib.nsb_setns(f, t) < 0:
        _raise(f"setns({f}, {_ns_show(t)})")


_NS_FILES = frozenset(k.proc_name for k in Namespace) | {"pid_for_children", "time_for_children"}


def open_namespace(kind: Namespace | str, pid: int | str = "self") -> int:
    """Open ``/proc/PID/ns/KIND`` (close-on-exec) and return the fd.  ``kind`` is
    one ``Namespace`` or a file name there (``'pid_for_children'`` too)."""
    k: object = kind
    if isinstance(k, bool) or not isinstance(k, (int, str)):
        raise TypeError(f"kind must be a Namespace or a str, not {type(k).__name__}")
    if isinstance(k, str):
        name = k
    elif any(k == kind for kind in Namespace):
        name = Namespace(k).proc_name
    else:
        raise ValueError(f"kind must be a single namespace kind, not {_ns_show(k)}")
    if name not in _NS_FILES:
        raise ValueError(f"unknown namespace kind: {k!r}")
    p: object = pid
    if isinstance(p, bool) or not isinstance(p, (int, str)):
        raise TypeError(f"pid must be an int or 'self', not {type(p).__name__}")
    if isinstance(p, str) and p not in ("self", "thread-self") and not p.isdecimal():
        raise ValueError(f"pid must be a number, 'self' or 'thread-self', not {p!r}")
    try:
        return os.open(f"/proc/{p}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        err = exc.errno or 0
        raise OSError(err, f"open_namespace({name!r}, {p!r}): {os.strerror(err).lower()}") from None


def clone(
    flags: int = 0, *, pidfd: bool = False, cgroup_fd: int | None = None
) -> int | tuple[int, int]:
    """clone3(2) (or clone(2)) that behaves like :func:`os.fork`.

    Returns 0 in the child.  In the parent it returns the child's pid, or
    ``(pid, pidfd)`` when ``pidfd`` is true.  ``flags`` are ``Namespace`` flags
    (the child is born in the new namespaces: it is PID 1 with ``Namespace.PID``);
    ``cgroup_fd`` places it in a cgroup2 directory (``CLONE_INTO_CGROUP``).
    CPython's fork hooks run (``os.register_at_fork``), as for ``os.fork``.

    Like ``os.fork``, this is unsafe in a program with threads: the child holds
    one thread only, and a lock another thread held may stay locked forever.  It
    is also less safe than ``os.fork`` there, since the C library's own at-fork
    handlers do not run.  Threaded programs use :func:`pynsbind.spawn`, which never
    runs Python in the child.
    """
    f = _uint(flags, "flags")
    if f & ~Namespace.all():
        raise ValueError(f"flags: clone() takes Namespace flags only, not {_ns_show(f)}")
    cg = -1 if cgroup_fd is None else _fd(cgroup_fd, "cgroup_fd")
    if cgroup_fd is not None and cg < 0:
        raise ValueError(f"cgroup_fd must be a file descriptor >= 0, not {cg}")
    if not isinstance(pidfd, bool):
        raise TypeError(f"pidfd must be a bool, not {type(pidfd).__name__}")
    if threading.active_count() > 1:
        warnings.warn(
            "this process is multi-threaded: the child of clone() may deadlock",
            DeprecationWarning,
            stacklevel=2,
        )
    out = ffi.new("int *", -1)
    pid = lib.nsb_clone_fork(f, int(pidfd), cg, 0, out)
    if pid < 0:
        _raise(f"clone({_ns_show(f)})")
    if pid == 0:
        return 0
    return (pid, out[0]) if pidfd else pid


def _ns_ioctl(fd: Fd, request: int, what: str) -> int:
    _need(HAS_NS_IOCTLS, what)
    f = _fd(fd, "fd")
    r = lib.nsb_ioctl_ns(f, request)
    if r < 0:
        _raise(f"{what}({f})")
    return int(r)


def ns_get_userns(fd: Fd) -> int:
    """``NS_GET_USERNS``: a new fd of the user namespace that owns this namespace."""
    return _ns_ioctl(fd, lib.NS_GET_USERNS, "ioctl NS_GET_USERNS")


def ns_get_parent(fd: Fd) -> int:
    """``NS_GET_PARENT``: a new fd of the parent of a pid or user namespace."""
    return _ns_ioctl(fd, lib.NS_GET_PARENT, "ioctl NS_GET_PARENT")


def ns_get_nstype(fd: Fd) -> Namespace:
    """``NS_GET_NSTYPE``: the kind of a namespace fd."""
    return Namespace(_ns_ioctl(fd, lib.NS_GET_NSTYPE, "ioctl NS_GET_NSTYPE"))


def ns_get_owner_uid(fd: Fd) -> int:
    """``NS_GET_OWNER_UID``: the uid (in the caller's user namespace) of a user
    namespace's owner."""
    _need(HAS_NS_IOCTLS, "ioctl NS_GET_OWNER_UID")
    f = _fd(fd, "fd")
    out = ffi.new("uint32_t *")
    if lib.nsb_ns_owner_uid(f, out) < 0:
        _raise(f"ioctl NS_GET_OWNER_UID({f})")
    return int(out[0])


# ---- mounts ------------------------------------------------------------------------


def mount(
    source: Path | None,
    target: Path,
    fstype: str | bytes | None = None,
    flags: int = 0,
    data: str | bytes | None = None,
) -> None:
    """mount(2)."""
    s = _opt_bytes(source, "source")
    t = _bytes(target, "target")
    fs = _opt_bytes(fstype, "fstype")
    f = _uint(flags, "flags")
    d = _opt_bytes(data, "data")
    if lib.nsb_mount(_c(s), t, _c(fs), f, _c(d)) < 0:
        _raise(f"mount({_show(source)}, {_show(target)}, {_show(fstype)})")


def umount2(target: Path, flags: int = 0) -> None:
    """umount2(2)."""
    t = _bytes(target, "target")
    if lib.nsb_umount2(t, _uint(flags, "flags", 31)) < 0:
        _raise(f"umount2({_show(target)})")


def pivot_root(new_root: Path, put_old: Path) -> None:
    """pivot_root(2).  ``pivot_root('.', '.')`` stacks the old root under the new
    one, to be detached with ``umount2('.', UmountFlags.DETACH)``."""
    n = _bytes(new_root, "new_root")
    o = _bytes(put_old, "put_old")
    if lib.nsb_pivot_root(n, o) < 0:
        _raise(f"pivot_root({_show(new_root)}, {_show(put_old)})")


def open_tree(dfd: Fd | None, path: Path, flags: int = lib.OPEN_TREE_CLOEXEC) -> int:
    """open_tree(2): a mount fd (with ``OpenTreeFlags.CLONE``, a detached copy).
    Like fsopen/fsmount/fspick, the default flags make it close-on-exec; flags
    given replace them (add ``OpenTreeFlags.CLOEXEC`` to keep it)."""
    _need(HAS_NEW_MOUNT_API, "open_tree")
    d = _dirfd(dfd, "dfd")
    p = _bytes(path, "path")
    r = lib.nsb_open_tree(d, p, _uint(flags, "flags", 32))
    if r < 0:
        _raise(f"open_tree({_show(path)})")
    return int(r)


def move_mount(
    from_dfd: Fd | None, from_path: Path, to_dfd: Fd | None, to_path: Path, flags: int = 0
) -> None:
    """move_mount(2)."""
    _need(HAS_NEW_MOUNT_API, "move_mount")
    fd1 = _dirfd(from_dfd, "from_dfd")
    p1 = _bytes(from_path, "from_path")
    fd2 = _dirfd(to_dfd, "to_dfd")
    p2 = _bytes(to_path, "to_path")
    if lib.nsb_move_mount(fd1, p1, fd2, p2, _uint(flags, "flags", 32)) < 0:
        _raise(f"move_mount({_show(from_path)} -> {_show(to_path)})")


def fsopen(fsname: str | bytes, flags: int = lib.FSOPEN_CLOEXEC) -> int:
    """fsopen(2): a filesystem context fd."""
    _need(HAS_NEW_MOUNT_API, "fsopen")
    n = _bytes(fsname, "fsname")
    r = lib.nsb_fsopen(n, _uint(flags, "flags", 32))
    if r < 0:
        _raise(f"fsopen({_show(fsname)})")
    return int(r)


def fsconfig(
    fd: Fd,
    cmd: int,
    key: str | bytes | None = None,
    value: str | bytes | None = None,
    aux: int = 0,
) -> None:
    """fsconfig(2).  ``value`` is a string for SET_STRING/SET_PATH, raw bytes for
    SET_BINARY (``aux`` then defaults to its length), None for flags and commands."""
    _need(HAS_NEW_MOUNT_API, "fsconfig")
    f = _fd(fd, "fd")
    c = FsconfigCmd(_int(cmd, "cmd"))
    k = _opt_bytes(key, "key")
    if c == FsconfigCmd.SET_BINARY:
        if not isinstance(value, bytes):
            raise TypeError("value must be bytes for SET_BINARY")
        v: bytes | None = value
        aux = aux or len(value)
    else:
        v = _opt_bytes(value, "value")
    if lib.nsb_fsconfig(f, int(c), _c(k), _c(v), _cint(aux, "aux")) < 0:
        _raise(f"fsconfig({f}, {c.name}, {_show(key)})")


def fsmount(fd: Fd, flags: int = lib.FSMOUNT_CLOEXEC, attr_flags: int = 0) -> int:
    """fsmount(2): a detached mount fd from a created filesystem context."""
    _need(HAS_NEW_MOUNT_API, "fsmount")
    f = _fd(fd, "fd")
    r = lib.nsb_fsmount(f, _uint(flags, "flags", 32), _uint(attr_flags, "attr_flags", 32))
    if r < 0:
        _raise(f"fsmount({f})")
    return int(r)


def fspick(dfd: Fd | None, path: Path, flags: int = lib.FSPICK_CLOEXEC) -> int:
    """fspick(2): a context fd to reconfigure the filesystem mounted at path."""
    _need(HAS_NEW_MOUNT_API, "fspick")
    d = _dirfd(dfd, "dfd")
    p = _bytes(path, "path")
    r = lib.nsb_fspick(d, p, _uint(flags, "flags", 32))
    if r < 0:
        _raise(f"fspick({_show(path)})")
    return int(r)


def mount_setattr(
    dfd: Fd | None,
    path: Path,
    flags: int = 0,
    *,
    attr_set: int = 0,
    attr_clr: int = 0,
    propagation: int = 0,
    userns_fd: Fd | None = None,
) -> None:
    """mount_setattr(2).  ``flags`` takes ``AT_RECURSIVE``/``AT_EMPTY_PATH``;
    ``propagation`` is one of ``MountFlags.PRIVATE/SLAVE/SHARED/UNBINDABLE``; an
    idmapped mount needs ``MountAttr.IDMAP`` in ``attr_set`` and ``userns_fd``."""
    _need(HAS_MOUNT_SETATTR, "mount_setattr")
    d = _dirfd(dfd, "dfd")
    p = _bytes(path, "path")
    aset = _uint(attr_set, "attr_set")
    uns = 0
    if userns_fd is not None:
        uns = _fd(userns_fd, "userns_fd")
        if uns < 0:
            raise ValueError(f"userns_fd must be a file descriptor >= 0, not {uns}")
        if not aset & MountAttr.IDMAP:
            raise ValueError("userns_fd is only used with MountAttr.IDMAP in attr_set")
    elif aset & MountAttr.IDMAP:
        raise ValueError("MountAttr.IDMAP needs userns_fd")
    r = lib.nsb_mount_setattr(
        d,
        p,
        _uint(flags, "flags", 32),
        aset,
        _uint(attr_clr, "attr_clr"),
        _uint(propagation, "propagation"),
        uns,
    )
    if r < 0:
        _raise(f"mount_setattr({_show(path)})")


# ---- identity ----------------------------------------------------------------------


def sethostname(name: str | bytes) -> None:
    """sethostname(2), in the caller's UTS namespace."""
    n = _bytes(name, "name")
    if lib.nsb_sethostname(n, len(n)) < 0:
        _raise(f"sethostname({_show(name)})")


def setdomainname(name: str | bytes) -> None:
    """setdomainname(2), in the caller's UTS namespace."""
    n = _bytes(name, "name")
    if lib.nsb_setdomainname(n, len(n)) < 0:
        _raise(f"setdomainname({_show(name)})")


# ---- processes ----------------------------------------------------------------------


def pidfd_open(pid: int, flags: int = 0) -> int:
    """pidfd_open(2): a pidfd for pid (``PIDFD_NONBLOCK`` in flags)."""
    _need(HAS_PIDFD, "pidfd_open")
    p = _cint(pid, "pid")
    r = lib.nsb_pidfd_open(p, _uint(flags, "flags", 32))
    if r < 0:
        _raise(f"pidfd_open({p})")
    return int(r)


PIDFD_NONBLOCK: int = lib.PIDFD_NONBLOCK


def pidfd_send_signal(pidfd: Fd, sig: int, flags: int = 0) -> None:
    """pidfd_send_signal(2): signal exactly the process of the pidfd."""
    _need(HAS_PIDFD, "pidfd_send_signal")
    f = _fd(pidfd, "pidfd")
    s = _cint(sig, "sig")
    if lib.nsb_pidfd_send_signal(f, s, _uint(flags, "flags", 32)) < 0:
        _raise(f"pidfd_send_signal({f}, {s})")


def pidfd_getfd(pidfd: Fd, targetfd: int, flags: int = 0) -> int:
    """pidfd_getfd(2): a copy (close-on-exec) of another process's fd."""
    _need(HAS_PIDFD_GETFD, "pidfd_getfd")
    f = _fd(pidfd, "pidfd")
    t = _cint(targetfd, "targetfd")
    r = lib.nsb_pidfd_getfd(f, t, _uint(flags, "flags", 32))
    if r < 0:
        _raise(f"pidfd_getfd({f}, {t})")
    return int(r)


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    """close_range(2): close (or with ``CloseRangeFlags.CLOEXEC``, mark close-on-exec)
    every fd from first to last."""
    _need(HAS_CLOSE_RANGE, "close_range")
    lo = _uint(first, "first", 32)
    hi = _uint(last, "last", 32)
    if lib.nsb_close_range(lo, hi, _uint(flags, "flags", 32)) < 0:
        _raise(f"close_range({lo}, {hi})")


# ---- capabilities ------------------------------------------------------------------


class CapSets(NamedTuple):
    effective: frozenset[Capability]
    permitted: frozenset[Capability]
    inheritable: frozenset[Capability]


def _caps_from_mask(mask: int) -> frozenset[Capability]:
    return frozenset(c for c in Capability if mask >> int(c) & 1)


def _mask_from_caps(caps: Iterable[int], name: str) -> int:
    if isinstance(caps, (str, bytes)) or not isinstance(caps, Iterable):
        raise TypeError(f"{name} must be an iterable of Capability")
    mask = 0
    for c in caps:
        v = _int(c, name)
        if not 0 <= v < 64:
            raise ValueError(f"{name}: {v} is not a capability number")
        mask |= 1 << v
    return mask


def capget(pid: int = 0) -> CapSets:
    """capget(2): the capability sets of pid (0: this thread)."""
    p = _cint(pid, "pid")
    e, pe, i = ffi.new("uint64_t *"), ffi.new("uint64_t *"), ffi.new("uint64_t *")
    if lib.nsb_capget(p, e, pe, i) < 0:
        _raise(f"capget({p})")
    return CapSets(_caps_from_mask(e[0]), _caps_from_mask(pe[0]), _caps_from_mask(i[0]))


def capset(
    effective: Iterable[int], permitted: Iterable[int], inheritable: Iterable[int], pid: int = 0
) -> None:
    """capset(2): set this thread's capability sets."""
    e = _mask_from_caps(effective, "effective")
    pe = _mask_from_caps(permitted, "permitted")
    i = _mask_from_caps(inheritable, "inheritable")
    p = _cint(pid, "pid")
    if lib.nsb_capset(p, e, pe, i) < 0:
        _raise(f"capset({p})")


# ---- prctl ---------------------------------------------------------------------------


def _prctl(what: str, option: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0) -> int:
    r = lib.nsb_prctl(option, a2, a3, a4, a5)
    if r < 0:
        _raise(f"prctl({what})")
    return int(r)


def _prctl_get_int(what: str, option: int) -> int:
    out = ffi.new("int *")
    _prctl(what, option, int(ffi.cast("uintptr_t", out)))
    return int(out[0])


def set_pdeathsig(sig: int) -> None:
    """``PR_SET_PDEATHSIG``: the signal this process gets when its parent thread
    dies (0 for none)."""
    _prctl("PR_SET_PDEATHSIG", lib.PR_SET_PDEATHSIG, _uint(sig, "sig", 8))


def get_pdeathsig() -> int:
    return _prctl_get_int("PR_GET_PDEATHSIG", lib.PR_GET_PDEATHSIG)


def set_no_new_privs() -> None:
    """``PR_SET_NO_NEW_PRIVS``: execve can never grant privileges again (one way)."""
    _prctl("PR_SET_NO_NEW_PRIVS", lib.PR_SET_NO_NEW_PRIVS, 1)


def get_no_new_privs() -> bool:
    return bool(_prctl("PR_GET_NO_NEW_PRIVS", lib.PR_GET_NO_NEW_PRIVS))


def set_dumpable(dumpable: bool) -> None:
    _prctl("PR_SET_DUMPABLE", lib.PR_SET_DUMPABLE, _bool(dumpable, "dumpable"))


def get_dumpable() -> bool:
    return bool(_prctl("PR_GET_DUMPABLE", lib.PR_GET_DUMPABLE))


def set_name(name: str | bytes) -> None:
    """``PR_SET_NAME``: this thread's name (the kernel keeps 15 bytes)."""
    n = _bytes(name, "name")
    if lib.nsb_prctl_set_name(n) < 0:
        _raise(f"prctl(PR_SET_NAME, {_show(name)})")


def get_name() -> str:
    buf = ffi.new("char[17]")
    if lib.nsb_prctl_get_name(buf) < 0:
        _raise("prctl(PR_GET_NAME)")
    return os.fsdecode(ffi.string(buf))


def set_child_subreaper(enabled: bool) -> None:
    """``PR_SET_CHILD_SUBREAPER``: orphaned descendants are re-parented to us."""
    _prctl("PR_SET_CHILD_SUBREAPER", lib.PR_SET_CHILD_SUBREAPER, _bool(enabled, "enabled"))


def get_child_subreaper() -> bool:
    return bool(_prctl_get_int("PR_GET_CHILD_SUBREAPER", lib.PR_GET_CHILD_SUBREAPER))


def set_keepcaps(enabled: bool) -> None:
    """``PR_SET_KEEPCAPS``: keep permitted capabilities across a change of uid."""
    _prctl("PR_SET_KEEPCAPS", lib.PR_SET_KEEPCAPS, _bool(enabled, "enabled"))


def get_keepcaps() -> bool:
    return bool(_prctl("PR_GET_KEEPCAPS", lib.PR_GET_KEEPCAPS))


def capbset_read(cap: int) -> bool:
    """``PR_CAPBSET_READ``: whether cap is in this thread's bounding set."""
    return bool(_prctl("PR_CAPBSET_READ", lib.PR_CAPBSET_READ, _uint(cap, "cap", 6)))


def capbset_drop(cap: int) -> None:
    """``PR_CAPBSET_DROP``: remove cap from the bounding set (one way)."""
    c = _uint(cap, "cap", 6)
    _prctl(f"PR_CAPBSET_DROP, {c}", lib.PR_CAPBSET_DROP, c)


def cap_ambient_raise(cap: int) -> None:
    """``PR_CAP_AMBIENT_RAISE``: add cap (permitted and inheritable) to the ambient set."""
    c = _uint(cap, "cap", 6)
    _prctl(f"PR_CAP_AMBIENT_RAISE, {c}", lib.PR_CAP_AMBIENT, lib.PR_CAP_AMBIENT_RAISE, c)


def cap_ambient_lower(cap: int) -> None:
    """``PR_CAP_AMBIENT_LOWER``: remove cap from the ambient set."""
    c = _uint(cap, "cap", 6)
    _prctl(f"PR_CAP_AMBIENT_LOWER, {c}", lib.PR_CAP_AMBIENT, lib.PR_CAP_AMBIENT_LOWER, c)


def cap_ambient_is_set(cap: int) -> bool:
    return bool(
        _prctl(
            "PR_CAP_AMBIENT_IS_SET",
            lib.PR_CAP_AMBIENT,
            lib.PR_CAP_AMBIENT_IS_SET,
            _uint(cap, "cap", 6),
        )
    )


def cap_ambient_clear_all() -> None:
    _prctl("PR_CAP_AMBIENT_CLEAR_ALL", lib.PR_CAP_AMBIENT, lib.PR_CAP_AMBIENT_CLEAR_ALL)


# ---- seccomp -------------------------------------------------------------------------

SECCOMP_RET_KILL_PROCESS: int = lib.SECCOMP_RET_KILL_PROCESS
SECCOMP_RET_KILL_THREAD: int = lib.SECCOMP_RET_KILL_THREAD
SECCOMP_RET_TRAP: int = lib.SECCOMP_RET_TRAP
SECCOMP_RET_ERRNO: int = lib.SECCOMP_RET_ERRNO
SECCOMP_RET_TRACE: int = lib.SECCOMP_RET_TRACE
SECCOMP_RET_LOG: int = lib.SECCOMP_RET_LOG
SECCOMP_RET_ALLOW: int = lib.SECCOMP_RET_ALLOW
SECCOMP_RET_DATA: int = lib.SECCOMP_RET_DATA
SECCOMP_FILTER_FLAG_TSYNC: int = lib.SECCOMP_FILTER_FLAG_TSYNC
SECCOMP_FILTER_FLAG_LOG: int = lib.SECCOMP_FILTER_FLAG_LOG
SECCOMP_FILTER_FLAG_SPEC_ALLOW: int = lib.SECCOMP_FILTER_FLAG_SPEC_ALLOW
SECCOMP_FILTER_FLAG_NEW_LISTENER: int = lib.SECCOMP_FILTER_FLAG_NEW_LISTENER
BPF_LD: int = lib.BPF_LD
BPF_W: int = lib.BPF_W
BPF_ABS: int = lib.BPF_ABS
BPF_JMP: int = lib.BPF_JMP
BPF_JEQ: int = lib.BPF_JEQ
BPF_JGE: int = lib.BPF_JGE
BPF_JGT: int = lib.BPF_JGT
BPF_JA: int = lib.BPF_JA
BPF_K: int = lib.BPF_K
BPF_RET: int = lib.BPF_RET
BPF_ALU: int = lib.BPF_ALU
BPF_AND: int = lib.BPF_AND
#: ``AUDIT_ARCH_*`` of the architecture this was built for (0 if unknown).
AUDIT_ARCH: int = lib.NSB_AUDIT_ARCH
#: offsets in ``struct seccomp_data``
SECCOMP_DATA_NR: int = ffi.offsetof("struct seccomp_data", "nr")
SECCOMP_DATA_ARCH: int = ffi.offsetof("struct seccomp_data", "arch")
SECCOMP_DATA_ARGS: int = lib.NSB_SECCOMP_DATA_ARGS

#: one classic BPF instruction: (code, jt, jf, k)
BpfInsn: TypeAlias = "tuple[int, int, int, int]"


def bpf_stmt(code: int, k: int) -> BpfInsn:
    return (code, 0, 0, k)


def bpf_jump(code: int, k: int, jt: int, jf: int) -> BpfInsn:
    return (code, jt, jf, k)


def filter_bytes(program: bytes | Sequence[BpfInsn]) -> bytes:
    """A classic BPF program (bytes, or BpfInsn tuples) as the bytes the kernel
    takes, checked (8 bytes per instruction, each field in range)."""
    size = ffi.sizeof("struct sock_filter")
    if isinstance(program, bytes):
        if len(program) % size:
            raise ValueError(f"a filter is a whole number of {size}-byte instructions")
        return program
    prog: object = program
    if isinstance(prog, str) or not isinstance(prog, Sequence):
        raise TypeError("program must be bytes or a sequence of (code, jt, jf, k)")
    arr = ffi.new("struct sock_filter[]", len(program))
    for i, insn in enumerate(program):
        if not isinstance(insn, tuple) or len(insn) != 4:
            raise TypeError(f"instruction {i} must be a tuple (code, jt, jf, k), not {insn!r}")
        code, jt, jf, k = insn
        arr[i].code = _uint(code, f"instruction {i} code", 16)
        arr[i].jt = _uint(jt, f"instruction {i} jt", 8)
        arr[i].jf = _uint(jf, f"instruction {i} jf", 8)
        arr[i].k = _uint(k, f"instruction {i} k", 32)
    return bytes(ffi.buffer(arr))


def seccomp_set_filter(program: bytes | Sequence[BpfInsn], flags: int = 0) -> int:
    """seccomp(SECCOMP_SET_MODE_FILTER): load a classic BPF filter on this thread.

    The caller needs ``set_no_new_privs()`` first, or CAP_SYS_ADMIN.  Returns the
    listener fd with ``SECCOMP_FILTER_FLAG_NEW_LISTENER``, else 0."""
    data = filter_bytes(program)
    count = len(data) // ffi.sizeof("struct sock_filter")
    if not 0 < count <= lib.BPF_MAXINSNS:
        raise ValueError(f"a filter has 1 to {lib.BPF_MAXINSNS} instructions, not {count}")
    r = lib.nsb_seccomp_set_filter(_uint(flags, "flags", 32), data, count)
    if r < 0:
        _raise(f"seccomp(SECCOMP_SET_MODE_FILTER, {count} instructions)")
    return int(r)
