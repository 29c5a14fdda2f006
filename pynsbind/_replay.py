"""Plans as plain data: laid out for the engine, kept on disk, and spawned again
without the Python that compiled them.

A compiled plan (pynsbind._plan) is plain data: numbered ops of integers,
strings, byte strings and string arrays, the parent's actions, the names of its
fd slots.  :func:`lay_out` turns that data into the engine's ``struct
nsb_plan`` (for every spawn: pynsbind._plan lays its plans out here).  A
command line that starts the same kind of container again and again
(``pynsbind-run sandbox``) keeps the data in pynsbind._diskcache's ``plans``
cache under a key of everything that made it, and spawns from it without
importing the modules that check a spec and compile it (:func:`spawn`,
:func:`wait`): only this module and the engine.  ``PYNSBIND_PLANS_CACHE=0``
turns the cache off.

The data (``PlanData``):
``(flags, clone_flags, cgroup_slot, nregs, ops, pacts, slots)``, each op
``(kind, flags, fd, reg, out, a, b, c, s1, s2, s3, ptype, p, env)`` (``ptype``:
one of the ``P_*`` below, what ``p`` is) and each pact
``(step, kind, fd, pid_arg, name, data, argv)``.
"""

from __future__ import annotations

import os

from pynsbind import _diskcache
from pynsbind._ffi import ffi, lib
from pynsbind._version import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    OpData = tuple[
        int,
        int,
        int,
        int,
        int,
        int,
        int,
        int,
        "str | None",
        "str | None",
        "str | None",
        int,
        Any,
        "list[str] | None",
    ]
    PactData = tuple[int, int, int, int, "str | None", "bytes | None", "list[str] | None"]
    PlanData = tuple[int, int, int, int, list[OpData], list[PactData], list[str]]

__all__ = [
    "P_ARGV",
    "P_BYTES",
    "P_INT32",
    "P_NONE",
    "P_UINT32",
    "init_fd",
    "installed_init",
    "lay_out",
    "load",
    "spawn",
    "store",
    "wait",
]

#: what an op's ``p`` is
P_NONE, P_BYTES, P_ARGV, P_INT32, P_UINT32 = range(5)
#: the fd slots a replayed plan may have: stdio and the sealed init
REPLAY_SLOTS = ["stdin", "stdout", "stderr", "init"]
_CACHE = "plans"
_MAX_FILES = 256

# ---- the engine's layout -----------------------------------------------------------


def _cstr(s: str | bytes | None, keep: list[Any]) -> Any:
    if s is None:
        return ffi.NULL
    buf = ffi.new("char[]", os.fsencode(s) if isinstance(s, str) else s)
    keep.append(buf)
    return buf


def _cargv(items: Sequence[str], keep: list[Any]) -> Any:
    arr = ffi.new("char *[]", len(items) + 1)
    for i, s in enumerate(items):
        arr[i] = _cstr(s, keep)
    arr[len(items)] = ffi.NULL
    keep.append(arr)
    return arr


def lay_out(data: PlanData) -> tuple[Any, list[Any]]:
    """The ``struct nsb_plan *`` of ``data``, and what must stay alive with it."""
    flags, clone_flags, cgroup_slot, nregs, op_data, pact_data, _ = data
    keep: list[Any] = []
    ops = ffi.new("struct nsb_op[]", max(1, len(op_data)))
    keep.append(ops)
    for i, (kind, oflags, fd, reg, out, a, b, c, s1, s2, s3, ptype, p, env) in enumerate(op_data):
        o = ops[i]
        o.kind, o.flags, o.fd, o.reg, o.out, o.a, o.b, o.c = kind, oflags, fd, reg, out, a, b, c
        o.s1, o.s2, o.s3 = _cstr(s1, keep), _cstr(s2, keep), _cstr(s3, keep)
        if ptype == P_BYTES:
            o.p = _cstr(p, keep)
        elif ptype == P_ARGV:
            o.p = _cargv(p, keep)
        elif ptype in (P_INT32, P_UINT32):
            arr = ffi.new("uint32_t[]" if ptype == P_UINT32 else "int32_t[]", p or [0])
            keep.append(arr)
            o.p = arr
        if env is not None:
            o.q = _cargv(env, keep)
    pacts = ffi.new("struct nsb_pact[]", max(1, len(pact_data)))
    keep.append(pacts)
    for i, (step, kind, fd, pid_arg, name, blob, argv) in enumerate(pact_data):
        pa = pacts[i]
        pa.step, pa.kind, pa.fd, pa.pid_arg = step, kind, fd, pid_arg
        pa.name = _cstr(name, keep)
        pa.data = _cstr(blob, keep)
        pa.len = len(blob or b"")
        pa.argv = _cargv(argv, keep) if argv is not None else ffi.NULL
    cplan = ffi.new("struct nsb_plan *")
    keep.append(cplan)
    cplan.abi = lib.NSB_ABI_VERSION
    cplan.flags = flags
    cplan.clone_flags = clone_flags
    cplan.cgroup_slot = cgroup_slot
    cplan.nops = len(op_data)
    cplan.npacts = len(pact_data)
    cplan.nregs = nregs
    cplan.ops = ops
    cplan.pacts = pacts
    return cplan, keep


# ---- the sealed init ---------------------------------------------------------------

#: memfd_create's MFD_EXEC (Linux 6.3): ask for an executable memfd where the
#: host makes memfds non-executable by default (vm.memfd_noexec = 1)
_MFD_EXEC = 0x10
_init_fd: list[int] = []
_init_path: list[str] = []


def installed_init() -> str:
    """The path of pynsbind/_nsbinit, built and installed as an extension (its
    name carries the extension suffix: _nsbinit.cpython-311-x86_64-linux-gnu.so);
    FileNotFoundError when it is not there."""
    if not _init_path:
        _init_path.append(_find_init())
    return _init_path[0]


def _find_init() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    found = [n for n in os.listdir(here) if n.startswith("_nsbinit.") and n.endswith(".so")]
    if len(found) == 1:
        return os.path.join(here, found[0])  # (importlib.machinery is not free to import)
    from importlib.machinery import EXTENSION_SUFFIXES

    for suffix in EXTENSION_SUFFIXES:
        path = os.path.join(here, "_nsbinit" + suffix)
        if os.path.exists(path):
            return path
    raise FileNotFoundError("pynsbind._nsbinit")


def init_fd() -> int:
    """A sealed in-memory copy of the container init, made once per process
    (the caller holds a lock where threads may race): every container process
    is exec'd through it, so that /proc/self/exe inside a container is this
    copy, which nobody can write, and never a file of the host.  OSError from
    memfd_create (vm.memfd_noexec = 2 refuses executable memfds)."""
    if _init_fd:
        return _init_fd[0]
    import fcntl

    src = os.open(installed_init(), os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = b""
        while chunk := os.read(src, 1 << 16):
            data += chunk
    finally:
        os.close(src)
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        fd = os.memfd_create("pynsbind-init", flags | _MFD_EXEC)
    except OSError as exc:
        if exc.errno != 22:  # EINVAL: a kernel before 6.3, without MFD_EXEC
            raise
        fd = os.memfd_create("pynsbind-init", flags)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, 0o555)
        fcntl.fcntl(
            fd,
            fcntl.F_ADD_SEALS,
            fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE,
        )
    except BaseException:
        os.close(fd)
        raise
    _init_fd.append(fd)
    return fd


# ---- the cache -----------------------------------------------------------------------


def _key(parts: Sequence[object]) -> bytes | None:
    """The whole key of a plan: what the caller says made it, and what made
    the engine and the kernel it was compiled for (this build of pynsbind, this
    boot); None when those cannot be told."""
    try:
        st = os.stat(installed_init())
        with open("/proc/sys/kernel/random/boot_id", "rb") as f:
            boot = f.read().strip().decode()
    except (OSError, UnicodeDecodeError):
        return None
    build = f"{__version__} {lib.NSB_ABI_VERSION} {st.st_size} {st.st_mtime_ns} {st.st_ino}"
    return repr((build, boot, os.geteuid(), os.getegid(), *parts)).encode()


def load(parts: Sequence[object]) -> PlanData | None:
    """The plan kept under ``parts`` (with this build and boot), if any."""
    key = _key(parts)
    raw = None if key is None else _diskcache.read(_CACHE, key)
    if raw is None:
        return None
    import marshal

    try:
        data = marshal.loads(raw)
    except (ValueError, EOFError, TypeError):
        return None
    if not isinstance(data, tuple) or len(data) != 7 or data[6] != REPLAY_SLOTS:
        return None
    return data


def store(parts: Sequence[object], data: PlanData) -> None:
    """Keep ``data`` under ``parts``: a plan whose fd slots are the stdio and
    the init, with no hook of the caller's (nothing else can be replayed)."""
    if data[6] != REPLAY_SLOTS or any(p[1] == lib.NSB_PACT_HOOK for p in data[5]):
        raise ValueError("only a plan with the slots of stdio and the init, and no hook")
    key = _key(parts)
    if key is not None:
        import marshal

        _diskcache.write(_CACHE, key, marshal.dumps(data), max_files=_MAX_FILES)


def without_command(data: PlanData, args: Sequence[str]) -> PlanData | None:
    """``data`` with its command ``args`` taken out (:func:`with_command` puts
    another in), or None when the plan cannot be replayed: fd slots other than
    stdio and the init, a hook of the caller's, a terminal, a gate or a notify
    listener (what the spawning Process would have to hold), or the command
    found anywhere but the exec's argv and name."""
    _, _, _, _, ops, pacts, slots = data
    if slots != REPLAY_SLOTS or any(p[1] == lib.NSB_PACT_HOOK for p in pacts):
        return None
    n = len(args)
    out = []
    for op in ops:
        kind, s1, ptype, p = op[0], op[8], op[11], op[12]
        if kind in (lib.NSB_OP_TERMINAL, lib.NSB_OP_GATE, lib.NSB_OP_WIPE):
            return None
        if kind == lib.NSB_OP_SECCOMP and op[6] & lib.SECCOMP_FILTER_FLAG_NEW_LISTENER:
            return None
        if kind == lib.NSB_OP_FINDEXEC:
            if s1 != args[0]:
                return None
            op = (*op[:8], None, *op[9:])
        elif kind == lib.NSB_OP_EXEC:
            if s1 != args[0] or ptype != P_ARGV or list(p[len(p) - n :]) != list(args):
                return None
            op = (*op[:8], None, op[9], op[10], ptype, list(p[: len(p) - n]), op[13])
        out.append(op)
    if not any(op[0] == lib.NSB_OP_EXEC for op in out):
        return None
    return (*data[:4], out, pacts, slots)


def with_command(data: PlanData, args: Sequence[str]) -> PlanData:
    """A plan of :func:`without_command` running ``args``."""
    ops = []
    for op in data[4]:
        if op[0] == lib.NSB_OP_FINDEXEC:
            op = (*op[:8], args[0], *op[9:])
        elif op[0] == lib.NSB_OP_EXEC:
            op = (*op[:8], args[0], op[9], op[10], op[11], [*op[12], *args], op[13])
        ops.append(op)
    return (*data[:4], ops, data[5], data[6])


# ---- spawn and wait ---------------------------------------------------------------


def spawn(data: PlanData, stdio: Sequence[int]) -> tuple[int, int, int] | None:
    """Start the plan with the fds ``stdio`` as its stdin, stdout and stderr:
    ``(pid, pidfd, sync_fd)``, or None when it failed (the engine has undone
    it: nothing is left, and the command did not run)."""
    try:
        cplan, keep = lay_out(data)
        table = [*stdio, init_fd()]
    except (OSError, TypeError, ValueError, OverflowError, IndexError):
        return None  # (a plan kept by another version of this module)
    res = ffi.new("struct nsb_result *")
    fds = ffi.new("int32_t[]", table)
    if lib.nsb_spawn(cplan, fds, len(table), 0, res) < 0:
        return None
    del keep
    if res.listener_fd >= 0 or res.terminal_fd >= 0:  # pragma: no cover - never stored
        os.close(res.listener_fd if res.listener_fd >= 0 else res.terminal_fd)
    return int(res.pid), int(res.pidfd), int(res.sync_fd)


def wait(pid: int, pidfd: int, sync_fd: int) -> int:
    """Reap the process ``spawn`` started: its returncode (-N for a signal N),
    the command's own when the init relays it.  pidfd and sync_fd stay open:
    the caller closes them (once nothing may signal through the pidfd)."""
    if pidfd >= 0:
        info = os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
        assert info is not None
        rc = info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
    else:
        rc = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if sync_fd >= 0:
        size = ffi.sizeof("struct nsb_msg")
        try:
            while True:
                raw = os.read(sync_fd, size)
                if len(raw) != size:
                    break
                msg = ffi.from_buffer("struct nsb_msg *", raw)
                if msg.type == lib.NSB_MSG_EXIT:
                    return os.waitstatus_to_exitcode(int(msg.val))
        except BlockingIOError:
            pass
    return rc
