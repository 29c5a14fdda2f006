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
    "CONTAINER_SOURCES",
    "P_ARGV",
    "P_BYTES",
    "P_INT32",
    "P_NONE",
    "P_UINT32",
    "SOURCES",
    "Kept",
    "KeptContainer",
    "container_key",
    "decode",
    "encode",
    "encode_container",
    "exit_report",
    "holds",
    "init_fd",
    "installed_init",
    "key",
    "lay_out",
    "lib_path",
    "load",
    "replayable",
    "source_conditions",
    "spawn",
    "store",
    "store_container",
    "wait",
    "wipes_fit",
    "with_command",
    "without_command",
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


# ---- kept plans ------------------------------------------------------------------

#: the package's files whose code makes a sandbox's plan (with the engine and
#: the init): a kept plan runs only while each is the file it was
SOURCES = (
    "_cli_sandbox.py",
    "sandbox.py",
    "process.py",
    "_plan.py",
    "_ops.py",
    "_features.py",
    "spec.py",
    "devices.py",
    "seccomp.py",
    "_seccomp_default.py",
    "flags.py",
    "_replay.py",
)
_MAGIC = b"NSBPLAN1"


class Kept:
    """A plan kept for a command line: ``data`` without its command (see
    :func:`without_command`), the ``conditions`` under which it holds (each
    ``("env", NAME, VALUE or None)``, ``("lstat" or "stat", PATH, MODE)``, or
    ``("file", PATH, (MODE, SIZE, MTIME_NS, INODE))``), whether the command's
    stdin is the caller's (``inherit_stdin``; else /dev/null) and the path of
    the init it runs through.  pynsbind-run's launcher (csrc/launcher.c) reads
    the same file: see :func:`encode` for its layout."""

    __slots__ = ("conditions", "data", "inherit_stdin", "init")

    def __init__(
        self,
        data: PlanData,
        conditions: list[tuple[str, str, Any]],
        inherit_stdin: bool,
        init: str,
    ) -> None:
        self.data, self.conditions = data, conditions
        self.inherit_stdin, self.init = inherit_stdin, init


def key(prefix: Sequence[str], command: str) -> bytes | None:
    """The key of the plan of ``pynsbind-run sandbox PREFIX COMMAND...`` (PREFIX:
    the words before the command, its ``--`` included): those words, whether
    the command is a path (a name is looked up in PATH), and the caller's
    uid, gid and working directory, with this version and this boot; None
    when they cannot be told."""
    head = _key_head(b"pynsbind sandbox plan")
    if head is None:
        return None
    head.append(b"path" if "/" in command else b"name")
    return b"\0".join([*head, *(os.fsencode(w) for w in prefix)])


def _key_head(magic: bytes) -> list[bytes] | None:
    """The words every key begins with: ``magic``, this version, the ABI,
    the boot id, the caller's uid, gid and working directory (csrc/launcher.c
    key_head); None when they cannot be told."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as f:
            boot = f.read().strip()
        cwd = os.getcwd()
    except OSError:
        return None
    return [
        magic,
        __version__.encode(),
        str(lib.NSB_ABI_VERSION).encode(),
        boot,
        str(os.geteuid()).encode(),
        str(os.getegid()).encode(),
        os.fsencode(cwd),
    ]


def source_conditions(extra: Sequence[str] = ()) -> list[tuple[str, str, Any]]:
    """The conditions that the package's code (SOURCES, and the files
    ``extra``), engine and init be what they are now."""
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [os.path.join(here, name) for name in (*SOURCES, *extra)]
    paths += [installed_init(), os.path.abspath(lib_path())]
    out: list[tuple[str, str, Any]] = []
    for path in paths:
        st = os.stat(path)
        out.append(("file", path, (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino)))
    return out


def lib_path() -> str:
    """The file of the compiled module pynsbind._native."""
    import sys

    path = sys.modules["pynsbind._native"].__file__
    assert path is not None
    return path


def holds(condition: tuple[str, str, Any]) -> bool:
    """Whether a condition of a kept plan holds now."""
    kind, name, want = condition
    if kind == "env":
        return bool(os.environ.get(name) == want)
    try:
        st = os.lstat(name) if kind == "lstat" else os.stat(name)
    except (OSError, ValueError):  # (ValueError: a NUL in the name)
        return False
    if kind == "file":
        return (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino) == tuple(want)
    return bool(st.st_mode == want)


def encode(kept: Kept) -> bytes:
    """The file of a kept plan, little-endian throughout: the magic
    ``NSBPLAN1``; u8 inherit_stdin; str init; u32 count and the conditions
    (u8 kind ``e``, ``l``, ``s`` or ``f``; str name; then for ``e`` u8 set
    and str value, for ``l`` and ``s`` u32 mode, for ``f`` u32 mode, u64
    size, i64 mtime_ns, u64 inode); u32 flags, u64 clone_flags, i32
    cgroup_slot, i32 nregs; u32 count and the ops (u32 kind, u32 flags, i32
    fd, i32 reg, i32 out, u64 a, b, c; ostr s1, s2, s3; u8 ptype and p: ostr
    for bytes, olist for argv, u32 count and u32 items for ints; olist env);
    u32 count and the pacts (u32 step, u32 kind, i32 fd, i32 pid_arg; ostr
    name, ostr data, olist argv).  A str is u32 length, the bytes and a NUL;
    an ostr u32 length + 1 (0: NULL), the bytes and a NUL; an olist u32
    count + 1 (0: NULL) and the strs."""
    import struct

    out = [_MAGIC, bytes([int(kept.inherit_stdin)]), _str(kept.init)]
    out.append(struct.pack("<I", len(kept.conditions)))
    for what, name, want in kept.conditions:
        out.append({"env": b"e", "lstat": b"l", "stat": b"s", "file": b"f"}[what])
        out.append(_str(name))
        if what == "env":
            out.append(b"\0" + _str("") if want is None else b"\1" + _str(want))
        elif what == "file":
            out.append(struct.pack("<IQqQ", *want))
        else:
            out.append(struct.pack("<I", want))
    flags, clone_flags, cgroup_slot, nregs, ops, pacts, _ = kept.data
    out.append(struct.pack("<IQiiI", flags, clone_flags, cgroup_slot, nregs, len(ops)))
    for kind, oflags, fd, reg, opout, a, b, c, s1, s2, s3, ptype, p, env in ops:
        out.append(struct.pack("<IIiiiQQQ", kind, oflags, fd, reg, opout, a, b, c))
        out += [_ostr(s1), _ostr(s2), _ostr(s3), bytes([ptype])]
        if ptype == P_BYTES:
            out.append(_ostr(p))
        elif ptype == P_ARGV:
            out.append(_olist(p))
        elif ptype in (P_INT32, P_UINT32):
            out.append(struct.pack(f"<I{len(p)}I", len(p), *(v & 0xFFFFFFFF for v in p)))
        out.append(_olist(env))
    out.append(struct.pack("<I", len(pacts)))
    for step, pkind, pfd, pid_arg, pname, blob, argv in pacts:
        out.append(struct.pack("<IIii", step, pkind, pfd, pid_arg))
        out += [_ostr(pname), _ostr(blob), _olist(argv)]
    return b"".join(out)


def _str(s: str | bytes) -> bytes:
    raw = os.fsencode(s) if isinstance(s, str) else s
    return len(raw).to_bytes(4, "little") + raw + b"\0"


def _ostr(s: str | bytes | None) -> bytes:
    if s is None:
        return b"\0\0\0\0"
    raw = os.fsencode(s) if isinstance(s, str) else s
    return (len(raw) + 1).to_bytes(4, "little") + raw + b"\0"


def _olist(items: Sequence[str] | None) -> bytes:
    if items is None:
        return b"\0\0\0\0"
    return (len(items) + 1).to_bytes(4, "little") + b"".join(_str(i) for i in items)


class _Reader:
    """What decode() reads: raises ValueError on a short or malformed file."""

    def __init__(self, raw: bytes) -> None:
        self.raw, self.at = raw, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.raw):
            raise ValueError("truncated")
        out = self.raw[self.at : self.at + n]
        self.at += n
        return out

    def u(self, size: int, signed: bool = False) -> int:
        return int.from_bytes(self.take(size), "little", signed=signed)

    def str_(self) -> bytes:
        return self.nul(self.take(self.u(4)))

    def ostr(self) -> bytes | None:
        n = self.u(4)
        return None if n == 0 else self.nul(self.take(n - 1))

    def nul(self, raw: bytes) -> bytes:
        if self.take(1) != b"\0":
            raise ValueError("a string without its NUL")
        return raw

    def olist(self) -> list[str] | None:
        n = self.u(4)
        return None if n == 0 else [os.fsdecode(self.str_()) for _ in range(n - 1)]


def decode(raw: bytes) -> Kept | None:
    """A kept plan from its file (see :func:`encode`); None when malformed."""
    r = _Reader(raw)
    try:
        if r.take(8) != _MAGIC:
            return None
        inherit = bool(r.u(1))
        init = os.fsdecode(r.str_())
        conditions: list[tuple[str, str, Any]] = []
        for _ in range(r.u(4)):
            what = {b"e": "env", b"l": "lstat", b"s": "stat", b"f": "file"}[r.take(1)]
            name = os.fsdecode(r.str_())
            want: Any
            if what == "env":
                present = r.u(1)
                value = os.fsdecode(r.str_())
                want = value if present else None
            elif what == "file":
                want = (r.u(4), r.u(8), r.u(8, True), r.u(8))
            else:
                want = r.u(4)
            conditions.append((what, name, want))
        flags, clone_flags, cgroup_slot, nregs = r.u(4), r.u(8), r.u(4, True), r.u(4, True)
        ops: list[OpData] = []
        for _ in range(r.u(4)):
            kind, oflags = r.u(4), r.u(4)
            fd, reg, opout = r.u(4, True), r.u(4, True), r.u(4, True)
            a, b, c = r.u(8), r.u(8), r.u(8)
            s1, s2, s3 = (r.ostr() for _ in range(3))
            ptype = r.u(1)
            p: Any = None
            if ptype == P_BYTES:
                p = r.ostr()
            elif ptype == P_ARGV:
                p = r.olist()
            elif ptype in (P_INT32, P_UINT32):
                p = [r.u(4, ptype == P_INT32) for _ in range(r.u(4))]
            elif ptype != P_NONE:
                return None
            env = r.olist()
            strs = [None if x is None else os.fsdecode(x) for x in (s1, s2, s3)]
            ops.append((kind, oflags, fd, reg, opout, a, b, c, *strs, ptype, p, env))
        pacts: list[PactData] = []
        for _ in range(r.u(4)):
            step, pkind, pfd, pid_arg = r.u(4), r.u(4), r.u(4, True), r.u(4, True)
            pname = r.ostr()
            blob = r.ostr()
            pacts.append(
                (
                    step,
                    pkind,
                    pfd,
                    pid_arg,
                    None if pname is None else os.fsdecode(pname),
                    blob,
                    r.olist(),
                )
            )
        if r.at != len(raw) or not replayable(ops, pacts):
            return None
    except (ValueError, KeyError):
        return None
    data = (flags, clone_flags, cgroup_slot, nregs, ops, pacts, list(REPLAY_SLOTS))
    return Kept(data, conditions, inherit, init)


def load(k: bytes) -> Kept | None:
    """The plan kept under key ``k``, if there is one and its conditions hold."""
    raw = _diskcache.read(_CACHE, k)
    kept = None if raw is None else decode(raw)
    if kept is None or not all(holds(c) for c in kept.conditions):
        return None
    return kept


def store(k: bytes, kept: Kept) -> None:
    """Keep a plan (its conditions must hold: nothing checks them here)."""
    import struct

    try:
        raw = encode(kept)
    except (struct.error, OverflowError):  # a value out of its field's range
        return
    _diskcache.write(_CACHE, k, raw, max_files=_MAX_FILES)


def without_command(data: PlanData, args: Sequence[str]) -> PlanData | None:
    """``data`` with its command ``args`` taken out (:func:`with_command` puts
    another in), or None when the plan cannot be replayed: fd slots other than
    stdio and the init, a hook of the caller's, a terminal, a gate or a notify
    listener (what the spawning Process would have to hold), or the command
    found anywhere but the exec's argv and name."""
    _, _, _, _, ops, pacts, slots = data
    if slots != REPLAY_SLOTS or not replayable(ops, pacts):
        return None
    n = len(args)
    out = []
    for op in ops:
        kind, s1, ptype, p = op[0], op[8], op[11], op[12]
        if kind == lib.NSB_OP_FINDEXEC:
            if s1 != args[0]:
                return None
            op = (*op[:8], None, *op[9:])
        elif kind == lib.NSB_OP_EXEC:
            if s1 != args[0] or ptype != P_ARGV or list(p[len(p) - n :]) != list(args):
                return None
            op = (*op[:8], None, op[9], op[10], ptype, list(p[: len(p) - n]), op[13])
        out.append(op)
    return (*data[:4], out, pacts, slots)


def replayable(ops: Sequence[OpData], pacts: Sequence[PactData], *, gated: bool = False) -> bool:
    """Whether a plan can run without the Process that spawn() makes: one exec
    (with an argv), no hook of the caller's, no terminal, gate or wipe (but
    with ``gated``: an OCI container's gate, which its own start opens, and
    the wipes of :func:`wipes_fit`) or notify listener (what that Process
    would hold).  csrc/launcher.c checks the same."""
    if any(p[1] == lib.NSB_PACT_HOOK for p in pacts):
        return False
    execs = 0
    for op in ops:
        kind = op[0]
        if kind == lib.NSB_OP_TERMINAL or (
            kind in (lib.NSB_OP_GATE, lib.NSB_OP_WIPE) and not gated
        ):
            return False
        if kind == lib.NSB_OP_SECCOMP and op[6] & lib.SECCOMP_FILTER_FLAG_NEW_LISTENER:
            return False
        if kind == lib.NSB_OP_EXEC:
            execs += 1 if op[11] == P_ARGV and op[12] is not None else 2
    return execs == 1


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
    return exit_report(sync_fd, rc)


def exit_report(sync_fd: int, rc: int) -> int:
    """The command's returncode as the init relays it on the sync socket
    (NSB_MSG_EXIT), once the init has exited with ``rc``; ``rc`` when it sent
    none (or there is no socket: sync_fd < 0)."""
    if sync_fd < 0:
        return rc
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


# ---- kept containers (pynsbind-run create and run) --------------------------------

#: the package's files whose code makes an OCI container's plan and its state,
#: with SOURCES
CONTAINER_SOURCES = (
    "container.py",
    "oci.py",
    "_cli_runtime.py",
    "resources.py",
    "_container_cgroup.py",
    "cgroups/__init__.py",
    "cgroups/_program.py",
    "cgroups/_common.py",
    "cgroups/_detect.py",
    "cgroups/_v1.py",
    "cgroups/_v2.py",
)
_CONTAINER_MAGIC = b"NSBOCI01"
#: what an fd slot of a kept container holds (the launcher opens each)
SLOT_KINDS = {"stdin": b"0", "stdout": b"1", "stderr": b"2", "init": b"i", "gate": b"g"}


def container_key(root: str | None, bundle: str | None) -> bytes | None:
    """The key of the container plan of ``pynsbind-run [--root ROOT] create|run
    [--bundle BUNDLE] ID``: the values of those two options as given ("" when
    absent), the caller's uid, gid and working directory, this version and
    this boot (the ID is no part of it); None when they cannot be told."""
    head = _key_head(b"pynsbind container plan")
    if head is None:
        return None
    return b"\0".join([*head, os.fsencode(root or ""), os.fsencode(bundle or "")])


class KeptContainer:
    """What the launcher needs to create an OCI container without Python: its
    plan (``kept``: with the gate, the command in it), ``config`` (the bytes
    of the bundle's config.json it was made from, at ``config_path``: the
    launcher runs it only while the file holds them, and copies them into the
    container's directory), ``root`` (the absolute state root), ``state`` (the
    members of state.json that are the same for every container of the plan,
    as JSON text without braces), the cgroup (``cgroup``: its path, relative
    to each hierarchy, with the container's id appended when ``cgroup_id``;
    "" for none; ``hierarchies``: each hierarchy's base directory, the writes
    into the new directory and the device program attached to it, or None:
    pynsbind.cgroups.creation_writes) and what each fd slot of the plan holds
    (``slots``: a kind of SLOT_KINDS, or ``d`` (a cgroup directory, for
    CLONE_INTO_CGROUP) or ``p`` (a cgroup.procs) with the index of its
    hierarchy)."""

    __slots__ = (
        "cgroup",
        "cgroup_id",
        "config",
        "config_path",
        "hierarchies",
        "kept",
        "root",
        "slots",
        "state",
    )

    def __init__(
        self,
        kept: Kept,
        config_path: str,
        config: bytes,
        root: str,
        state: str,
        cgroup: str,
        cgroup_id: bool,
        hierarchies: list[tuple[str, list[tuple[str, str]], bytes | None]],
        slots: list[tuple[bytes, int]],
    ) -> None:
        self.kept, self.config_path, self.config, self.root = kept, config_path, config, root
        self.state, self.cgroup, self.cgroup_id = state, cgroup, cgroup_id
        self.hierarchies, self.slots = hierarchies, slots


def encode_container(kc: KeptContainer) -> bytes:
    """The file of a kept container: the magic ``NSBOCI01``; str config_path,
    str config, str root, str state, str cgroup, u8 cgroup_id; u32 count and
    the hierarchies (str base; u32 count and the writes: str file, str value;
    str program, the device program's instructions, empty for none);
    u32 count and the slots (u8 kind, i32 hierarchy); then the plan's own
    file (:func:`encode`)."""
    import struct

    out = [_CONTAINER_MAGIC, _str(kc.config_path), _str(kc.config), _str(kc.root)]
    out += [_str(kc.state), _str(kc.cgroup), bytes([int(kc.cgroup_id)])]
    out.append(struct.pack("<I", len(kc.hierarchies)))
    for base, writes, program in kc.hierarchies:
        out += [_str(base), struct.pack("<I", len(writes))]
        for name, value in writes:
            out += [_str(name), _str(value)]
        out.append(_str(program or b""))
    out.append(struct.pack("<I", len(kc.slots)))
    for kind, index in kc.slots:
        out.append(kind + struct.pack("<i", index))
    out.append(encode(kc.kept))
    return b"".join(out)


def wipes_fit(ops: Sequence[OpData]) -> bool:
    """Whether the plan's wipes (a gated process zeroes its copy of the
    caller's argv and environ) are none, or this process's argv then its
    environ: the launcher, which keeps the plan for any process, puts its own
    in their place (fields 48-51 of /proc/self/stat)."""
    wipes = [(op[5], op[6]) for op in ops if op[0] == lib.NSB_OP_WIPE]
    if not wipes:
        return True
    try:
        with open("/proc/self/stat", "rb") as f:
            data = f.read()
        a0, a1, e0, e1 = (int(x) for x in data[data.rindex(b")") + 2 :].split()[45:49])
    except (OSError, ValueError):
        return False
    return wipes == [(a0, a1), (e0, e1)]


def store_container(k: bytes, kc: KeptContainer) -> None:
    """Keep a container's plan (its conditions must hold: nothing checks them)."""
    import struct

    try:
        raw = encode_container(kc)
    except (struct.error, OverflowError):
        return
    _diskcache.write(_CACHE, k, raw, max_files=_MAX_FILES)
