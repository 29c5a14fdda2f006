"""The op record of a plan: ``struct nsb_op`` of csrc/nsb.h, one typed builder per
op kind.

Each builder takes the op's meaning as named, typed arguments and fills the C
record's generic fields (``fd``, ``reg``, ``out``, ``a``, ``b``, ``c``, ``s1``-``s3``,
``p``, ``q``) the way csrc/nsb.h documents for that kind; nothing else in
pynsbind writes those fields.  The plan compiler (pynsbind._plan) calls them in
the order the child runs the ops.
"""

from __future__ import annotations

import enum
import signal
import struct

from pynsbind._ffi import lib
from pynsbind._record import record
from pynsbind.flags import MountAttr, MountFlags, Namespace, describe_namespaces

__all__ = ["Op", "OpFlag", "OpKind", "PlanFlag"]


class OpKind(enum.IntEnum):
    """``NSB_OP_*``: what the child does for an op."""

    SETNS = lib.NSB_OP_SETNS
    UNSHARE = lib.NSB_OP_UNSHARE
    SYNC = lib.NSB_OP_SYNC
    FORK = lib.NSB_OP_FORK
    PDEATHSIG = lib.NSB_OP_PDEATHSIG
    MOUNT = lib.NSB_OP_MOUNT
    FSMOUNT = lib.NSB_OP_FSMOUNT
    BIND = lib.NSB_OP_BIND
    PREOPEN = lib.NSB_OP_PREOPEN
    SETATTR = lib.NSB_OP_SETATTR
    REMOUNT = lib.NSB_OP_REMOUNT
    MKDIRS = lib.NSB_OP_MKDIRS
    MKFILE = lib.NSB_OP_MKFILE
    MKNOD = lib.NSB_OP_MKNOD
    SYMLINK = lib.NSB_OP_SYMLINK
    PIVOT = lib.NSB_OP_PIVOT
    MASK = lib.NSB_OP_MASK
    ROPATH = lib.NSB_OP_ROPATH
    LOOPBACK = lib.NSB_OP_LOOPBACK
    HOSTNAME = lib.NSB_OP_HOSTNAME
    DOMAINNAME = lib.NSB_OP_DOMAINNAME
    RLIMIT = lib.NSB_OP_RLIMIT
    WRITE = lib.NSB_OP_WRITE
    KEEPCAPS = lib.NSB_OP_KEEPCAPS
    SETGROUPS = lib.NSB_OP_SETGROUPS
    SETGID = lib.NSB_OP_SETGID
    SETUID = lib.NSB_OP_SETUID
    CAPS = lib.NSB_OP_CAPS
    NNP = lib.NSB_OP_NNP
    SECCOMP = lib.NSB_OP_SECCOMP
    UMASK = lib.NSB_OP_UMASK
    CHDIR = lib.NSB_OP_CHDIR
    FDS = lib.NSB_OP_FDS
    EXEC = lib.NSB_OP_EXEC
    SETSID = lib.NSB_OP_SETSID
    DUMPABLE = lib.NSB_OP_DUMPABLE
    KEYRING = lib.NSB_OP_KEYRING
    WIPE = lib.NSB_OP_WIPE
    FINDEXEC = lib.NSB_OP_FINDEXEC
    TERMINAL = lib.NSB_OP_TERMINAL
    GATE = lib.NSB_OP_GATE
    SYSCTL = lib.NSB_OP_SYSCTL
    PERSONALITY = lib.NSB_OP_PERSONALITY
    COPYUP = lib.NSB_OP_COPYUP
    RECVFD = lib.NSB_OP_RECVFD


class OpFlag(enum.IntFlag):
    """``NSB_F_*``: how an op resolves its paths and what else it does."""

    IGNORE_ENOENT = lib.NSB_F_IGNORE_ENOENT
    RECURSIVE = lib.NSB_F_RECURSIVE
    IN_ROOT = lib.NSB_F_IN_ROOT
    FALLBACK = lib.NSB_F_FALLBACK
    SEARCH_PATH = lib.NSB_F_SEARCH_PATH
    ROOT_REG = lib.NSB_F_ROOT_REG
    SRC_IN_ROOT = lib.NSB_F_SRC_IN_ROOT
    BENEATH = lib.NSB_F_BENEATH
    KEEP_PERMITTED = lib.NSB_F_KEEP_PERMITTED
    SRC_NOSYMLINKS = lib.NSB_F_SRC_NOSYMLINKS
    LEGACY = lib.NSB_F_LEGACY


class PlanFlag(enum.IntFlag):
    """``NSB_PLAN_*``: how the parent runs the whole plan."""

    PIDFD = lib.NSB_PLAN_PIDFD
    NO_CLONE_VM = lib.NSB_PLAN_NO_CLONE_VM
    LEGACY_CLONE = lib.NSB_PLAN_LEGACY_CLONE
    KEEP_SYNC = lib.NSB_PLAN_KEEP_SYNC
    NO_OPENAT2 = lib.NSB_PLAN_NO_OPENAT2
    WATCH_STOPS = lib.NSB_PLAN_WATCH_STOPS


NO_PLAN_FLAGS = PlanFlag(0)
NONE = OpFlag(0)
NO_ATTRS = MountAttr(0)
NO_FLAGS = MountFlags(0)


@record()
class Op:
    """One step of the child: ``struct nsb_op``, with a one-line description
    used in errors (``mount proc on /proc``).  Made by the builders below."""

    kind: OpKind
    desc: str
    flags: OpFlag = NONE
    fd: int = -1  # an fd slot of the spawn
    reg: int = -1  # a register the op reads
    out: int = -1  # a register the op fills
    a: int = 0
    b: int = 0
    c: int = 0
    s1: str | None = None
    s2: str | None = None
    s3: str | None = None
    blob: bytes | None = None  # p as raw bytes (fsconfig params, a seccomp program, masks)
    argv: list[str] | None = None  # p as a NULL-terminated string array
    ints: list[int] | None = None  # p as an int array (uint32 gids / int32 fds)
    env: list[str] | None = None  # q

    @property
    def kind_name(self) -> str:
        return self.kind.name


# ---- namespaces and processes ------------------------------------------------------


def setns(kinds: Namespace, *, path: str | None = None, slot: int = -1) -> Op:
    """Join ``kinds`` through a /proc/PID/ns path or the fd in ``slot``."""
    names = "+".join(k.proc_name for k in Namespace if k & kinds)
    where = path if path is not None else "fd"
    return Op(OpKind.SETNS, f"setns {names} {where}", fd=slot, s1=path, a=int(kinds))


def unshare(kinds: Namespace, desc: str | None = None) -> Op:
    return Op(OpKind.UNSHARE, desc or f"unshare {describe_namespaces(kinds)}", a=int(kinds))


def sync(step: int, what: str) -> Op:
    """Tell the parent sync step ``step`` is reached; wait for its go."""
    return Op(OpKind.SYNC, f"sync {step}: {what}", a=step)


def recvfd(step: int, reg: int, desc: str) -> Op:
    """Sync step ``step``, answered by an fd the parent made (an idmapped tree),
    kept in register ``reg``."""
    return Op(OpKind.RECVFD, f"sync {step}: {desc}", a=step, out=reg)


def fork(desc: str) -> Op:
    """The second fork: the process that goes on is a new one (CLONE_PARENT)."""
    return Op(OpKind.FORK, desc)


def pdeathsig(sig: int) -> Op:
    name = signal.Signals(sig).name
    return Op(OpKind.PDEATHSIG, f"set the parent-death signal {name}", a=sig)


def dumpable(on: bool, desc: str) -> Op:
    return Op(OpKind.DUMPABLE, desc, a=int(on))


def wipe(start: int, end: int, what: str) -> Op:
    """Zero this process's copy of the caller's memory from ``start`` to ``end``."""
    return Op(OpKind.WIPE, f"wipe the copy of the caller's {what}", a=start, b=end)


def write(path: str, text: str, desc: str) -> Op:
    """Write ``text`` into the existing file ``path`` (from the current root)."""
    return Op(OpKind.WRITE, desc, s1=text, s2=path)


# ---- paths and mounts ---------------------------------------------------------------


def mount(
    desc: str,
    target: str,
    *,
    source: str | None = None,
    fstype: str | None = None,
    flags: MountFlags = NO_FLAGS,
    data: bytes | None = None,
    source_reg: int = -1,
    opflags: OpFlag = NONE,
) -> Op:
    """mount(2) onto ``target`` (resolved as ``opflags`` says); the source may be
    a pre-opened register (a legacy bind)."""
    return Op(
        OpKind.MOUNT,
        desc,
        s1=source,
        s2=target,
        s3=fstype,
        a=int(flags),
        blob=data,
        reg=source_reg,
        flags=opflags,
    )


def fsmount(
    desc: str,
    target: str,
    fstype: str,
    *,
    source: str | None,
    params: bytes,
    attrs: MountAttr,
    propagation: int = 0,
    opflags: OpFlag = NONE,
    out: int = -1,
) -> Op:
    """fsopen + fsconfig (``params``: 'f'/'s' records) + fsmount + move_mount;
    the mount kept in register ``out`` (0: the container's root from now on)."""
    return Op(
        OpKind.FSMOUNT,
        desc,
        s1=source,
        s2=target,
        s3=fstype,
        blob=params,
        a=int(attrs),
        c=propagation,
        flags=opflags,
        out=out,
    )


def bind(
    desc: str,
    target: str,
    *,
    source: str | None = None,
    source_reg: int = -1,
    attrs: MountAttr = NO_ATTRS,
    clear_attrs: MountAttr = NO_ATTRS,
    propagation: int = 0,
    opflags: OpFlag = NONE,
) -> Op:
    """open_tree(source, or the tree pre-opened in ``source_reg``) +
    mount_setattr (set ``attrs``, clear ``clear_attrs``) + move_mount onto
    ``target``."""
    return Op(
        OpKind.BIND,
        desc,
        s1=source,
        s2=target,
        reg=source_reg,
        a=int(attrs),
        b=int(clear_attrs),
        c=propagation,
        flags=opflags,
    )


def preopen(
    desc: str, path: str, reg: int, *, legacy: bool, in_root: bool = False, opflags: OpFlag = NONE
) -> Op:
    """Open the host's ``path`` into register ``reg`` before anything is mounted
    over it: a detached clone of its mount (``opflags``: RECURSIVE, and
    SRC_NOSYMLINKS for a path that may hold no symlink), or (legacy) an O_PATH fd;
    with ``in_root``, an O_PATH fd of the directory ``path`` inside the container
    root (what a copy-up reads once its tmpfs hides it)."""
    flags = opflags | (OpFlag.LEGACY if legacy else NONE) | (OpFlag.IN_ROOT if in_root else NONE)
    return Op(OpKind.PREOPEN, desc, s1=path, out=reg, flags=flags)


def setattr_(
    desc: str,
    target: str,
    *,
    set_attrs: MountAttr = NO_ATTRS,
    propagation: int = 0,
    opflags: OpFlag = NONE,
) -> Op:
    """mount_setattr on ``target``: add ``set_attrs``, set the propagation."""
    return Op(OpKind.SETATTR, desc, s2=target, a=int(set_attrs), c=propagation, flags=opflags)


def remount(desc: str, target: str, flags: MountFlags, *, opflags: OpFlag = NONE) -> Op:
    """Legacy: remount the bind at ``target`` adding ``flags`` (keeping the
    locked ones)."""
    return Op(OpKind.REMOUNT, desc, s2=target, a=int(flags), flags=opflags)


def mkdirs(desc: str, path: str, mode: int, *, opflags: OpFlag = NONE) -> Op:
    return Op(OpKind.MKDIRS, desc, s2=path, a=mode, flags=opflags)


def mkfile(desc: str, path: str, *, opflags: OpFlag = NONE) -> Op:
    return Op(OpKind.MKFILE, desc, s2=path, flags=opflags)


def mknod(desc: str, path: str, mode: int, dev: int, *, opflags: OpFlag = NONE) -> Op:
    return Op(OpKind.MKNOD, desc, s2=path, a=mode, b=dev, flags=opflags)


def symlink(desc: str, path: str, target: str, *, opflags: OpFlag = NONE) -> Op:
    return Op(OpKind.SYMLINK, desc, s1=target, s2=path, flags=opflags)


def pivot(root: str) -> Op:
    """pivot_root into ``root`` (MS_MOVE + chroot where it cannot be pivoted)."""
    return Op(OpKind.PIVOT, f"pivot_root to {root}", s2=root, flags=OpFlag.FALLBACK)


def guard(
    kind: OpKind,
    desc: str,
    path: str,
    *,
    base_reg: int,
    null_reg: int,
    magic: int,
    legacy: bool,
    opflags: OpFlag,
) -> Op:
    """A MASK or ROPATH op: ``path`` resolved from register ``base_reg`` as
    ``opflags`` say, checked to be on a filesystem of ``magic`` (0: any); files
    masked with the /dev/null pre-opened in ``null_reg``."""
    assert kind in (OpKind.MASK, OpKind.ROPATH)
    return Op(
        kind,
        desc,
        s2=path,
        reg=base_reg,
        b=null_reg & 0xFFFFFFFFFFFFFFFF,  # -1 (no /dev/null opened): a register no op has
        c=magic,
        flags=opflags | (OpFlag.LEGACY if legacy else NONE),
    )


# ---- identity and the process ------------------------------------------------------


def simple(kind: OpKind, desc: str) -> Op:
    """An op with no argument: LOOPBACK, KEEPCAPS, NNP, SETSID, KEYRING."""
    assert kind in (OpKind.LOOPBACK, OpKind.KEEPCAPS, OpKind.NNP, OpKind.SETSID, OpKind.KEYRING)
    return Op(kind, desc)


def name(kind: OpKind, value: str) -> Op:
    """HOSTNAME or DOMAINNAME."""
    what = "hostname" if kind == OpKind.HOSTNAME else "domain name"
    return Op(kind, f"set the {what} {value!r}", s1=value)


def rlimit(resource: int, soft: int, hard: int, desc: str) -> Op:
    return Op(OpKind.RLIMIT, desc, a=resource, b=soft, c=hard)


def setgroups(groups: list[int]) -> Op:
    return Op(
        OpKind.SETGROUPS, f"set the supplementary groups {groups}", a=len(groups), ints=groups
    )


def setid(kind: OpKind, ident: int, desc: str) -> Op:
    """SETGID or SETUID (real, effective and saved)."""
    assert kind in (OpKind.SETGID, OpKind.SETUID)
    return Op(kind, desc, a=ident)


def caps(
    desc: str,
    *,
    bounding: int,
    effective: int,
    permitted: int,
    inheritable: int,
    ambient: int,
    last_cap: int,
    keep_permitted: bool,
) -> Op:
    """The five capability sets, as masks."""
    sets = struct.pack("<5Q", bounding, effective, permitted, inheritable, ambient)
    return Op(
        OpKind.CAPS,
        desc,
        b=last_cap,
        blob=sets,
        flags=OpFlag.KEEP_PERMITTED if keep_permitted else NONE,
    )


def seccomp(desc: str, program: bytes, flags: int) -> Op:
    """Load a classic BPF filter (8 bytes per instruction) with seccomp(2) flags."""
    return Op(OpKind.SECCOMP, desc, a=len(program) // 8, b=flags, blob=program)


def personality(persona: int, desc: str) -> Op:
    """personality(2): the execution domain and its flags, kept across exec."""
    return Op(OpKind.PERSONALITY, desc, a=persona)


def sysctl(key: str, value: str, path: str, *, base_reg: int, magic: int) -> Op:
    """Write ``value`` into ``path``, a file of the proc mount in register
    ``base_reg`` resolved beneath it and checked to be on a filesystem of
    ``magic`` (proc's)."""
    return Op(
        OpKind.SYSCTL,
        f"set sysctl {key} to {value!r}",
        s1=value,
        s2=path,
        reg=base_reg,
        c=magic,
        flags=OpFlag.BENEATH,
    )


def copyup(
    desc: str, target: str, *, source_reg: int, depth: int, base_reg: int, opflags: OpFlag
) -> Op:
    """Copy the directory pre-opened in ``source_reg`` into the tmpfs at
    ``target`` (resolved as ``opflags`` say, from ``base_reg`` with BENEATH), at
    most ``depth`` directories deep."""
    return Op(OpKind.COPYUP, desc, s2=target, b=source_reg, a=depth, reg=base_reg, flags=opflags)


def umask(mask: int) -> Op:
    return Op(OpKind.UMASK, f"set umask {mask:04o}", a=mask)


def chdir(path: str) -> Op:
    return Op(OpKind.CHDIR, f"change directory to {path}", s2=path)


def fds(
    desc: str, pass_fds: list[int], *, sync_target: int, init_slot: int, gate_slot: int = -1
) -> Op:
    """stdio from slots 0-2, ``pass_fds`` kept, the sync socket moved to
    ``sync_target`` (-1: left close-on-exec), the sealed init's fd kept, the fd
    of ``gate_slot`` kept (close-on-exec) when the slot holds one, every other fd
    closed."""
    return Op(
        OpKind.FDS,
        desc,
        a=len(pass_fds),
        b=sync_target & 0xFFFFFFFFFFFFFFFF,
        c=gate_slot + 1,
        ints=pass_fds,
        fd=init_slot,
    )


def terminal(ptmx: str, size: tuple[int, int] | None) -> Op:
    """A new pty from ``ptmx``: its slave the controlling terminal and stdio,
    the window ``size`` (rows, columns); the master sent to the parent."""
    rows, cols = size or (0, 0)
    window = f", {rows}x{cols}" if size else ""
    return Op(OpKind.TERMINAL, f"make the terminal from {ptmx}{window}", s1=ptmx, a=rows, b=cols)


def gate(slot: int) -> Op:
    """Say the set-up is done, then wait: for a byte on the FIFO of fd ``slot``,
    or for the parent's go when the slot holds -1."""
    return Op(OpKind.GATE, "wait at the start gate", fd=slot)


def findexec(cmd: str, path: str, *, search: bool) -> Op:
    """What execve of ``cmd`` (searched in ``path``) would find, or its errno."""
    return Op(
        OpKind.FINDEXEC,
        f"exec {cmd!r}",
        s1=cmd,
        s2=path,
        flags=OpFlag.SEARCH_PATH if search else NONE,
    )


def exec_(
    desc: str, cmd: str, argv: list[str], env: list[str], *, init_slot: int, search: bool
) -> Op:
    """execveat of the sealed init (fd slot ``init_slot``) with ``argv``."""
    return Op(
        OpKind.EXEC,
        desc,
        fd=init_slot,
        argv=argv,
        env=env,
        s1=cmd,
        flags=OpFlag.SEARCH_PATH if search else NONE,
    )
