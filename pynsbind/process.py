"""run(), spawn() and Process: the subprocess-shaped API over the spawn engine."""

from __future__ import annotations

import errno
import itertools
import os
import select
import signal
import stat
import threading
import time

from pynsbind import _plan, _replay
from pynsbind._features import features
from pynsbind._ffi import ffi, lib
from pynsbind._ops import OpFlag, OpKind, PlanFlag
from pynsbind._record import record
from pynsbind.errors import SpawnError, SpecError, strerror
from pynsbind.flags import Namespace
from pynsbind.spec import Spec

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Sequence
    from typing import IO, Any

    from pynsbind._replay import PlanData
    from pynsbind.cgroups import Cgroup

__all__ = [
    "DEVNULL",
    "PIPE",
    "STDOUT",
    "CompletedContainer",
    "Process",
    "explain",
    "run",
    "spawn",
    "start_gate",
]

# subprocess's values (subprocess itself is loaded only to raise its exceptions:
# it is not free to import)
PIPE = -1
STDOUT = -2
DEVNULL = -3


def _timeout_expired() -> type[subprocess.TimeoutExpired]:
    """subprocess.TimeoutExpired, what a wait that times out raises."""
    import subprocess

    return subprocess.TimeoutExpired


_STAGES = {
    lib.NSB_STAGE_PARENT: "parent",
    lib.NSB_STAGE_PACT: "parent action",
    lib.NSB_STAGE_HELPER: "helper",
    lib.NSB_STAGE_CHILD: "child",
    lib.NSB_STAGE_INIT: "init",
    lib.NSB_STAGE_STOPPED: "stopped",
}


# ---- plans, cached per spec ----------------------------------------------------

_plan_cache: dict[tuple[Spec, _plan.Options, bool], _plan.Plan] = {}
_plan_lock = threading.Lock()
_PLAN_CACHE_MAX = 256


def _get_plan(spec: Spec, opts: _plan.Options, gated: bool = False) -> _plan.Plan:
    key = (spec, opts, gated)
    plan = _plan_cache.get(key)
    if plan is None:
        plan = _plan.compile_plan(spec, features(), opts, gated=gated)
        plan.c_plan()
        with _plan_lock:
            if len(_plan_cache) >= _PLAN_CACHE_MAX:
                _plan_cache.pop(next(iter(_plan_cache)))
            _plan_cache[key] = plan
    return plan


_init_lock = threading.Lock()


def _init_exe_fd() -> int:
    """The sealed in-memory copy of the container init (pynsbind._replay.init_fd)."""
    with _init_lock:
        try:
            return _replay.init_fd()
        except FileNotFoundError:
            raise SpecError(
                "init", "the container init (pynsbind._nsbinit) is not installed"
            ) from None
        except OSError as exc:
            raise SpawnError(
                exc.errno or errno.EACCES,
                f"memfd_create for the sealed init: {strerror(exc.errno or 0)} "
                "(vm.memfd_noexec = 2 forbids executable memfds; pynsbind needs them)",
                stage="parent",
                step="init",
            ) from None


# ---- the setup hook ------------------------------------------------------------------


class _HookCall:
    """One spawn's hook, and what it raised."""

    __slots__ = ("error", "hook")

    def __init__(self, hook: Any) -> None:
        self.hook = hook
        self.error: BaseException | None = None


#: the spawns in progress whose plans have a hook, by key (what nsb_spawn hands
#: back to nsb_hook_call): a thread that spawns has one entry at a time, a hook
#: that spawns nests another
_hook_calls: dict[int, _HookCall] = {}
_hook_keys = itertools.count(1)  # (next() on it is atomic under the GIL)


@ffi.def_extern(name="nsb_hook_call")  # type: ignore[untyped-decorator]
def _run_hook(key: int, pact: int, pid: int) -> int:
    """The C engine's nsb_hook_call (NSB_PACT_HOOK), in the spawning thread with
    the GIL, while the child waits at its sync step: run the spawn's hook with
    the child's pid; 1 when it returned, 0 when it raised (kept for the spawn
    to raise)."""
    call = _hook_calls.get(key)
    if call is None:
        return 0
    try:
        call.hook(pid)
    except BaseException as exc:  # any of them fails the spawn, and is raised there
        call.error = exc
        return 0
    return 1


# ---- the start gate ------------------------------------------------------------------

_GATE_OPEN = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class _Gate:
    """The FIFO of ``spawn(..., gate=PATH)``.  spawn makes it (mkfifo: nothing may
    be at PATH, not even a symlink), opens it read-write for the child (which
    waits for a byte on it), and keeps a writer for :meth:`Process.start`; the
    Process removes it when reaped, if it is still there and still this FIFO."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.child = self.writer = -1
        self.ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the FIFO made
        try:
            os.mkfifo(path, 0o600)
        except FileExistsError:
            raise SpecError(
                "gate", f"{path!r} exists already: spawn makes the gate, nothing may be there"
            ) from None
        except OSError as exc:
            raise SpecError("gate", f"{path!r}: {strerror(exc.errno or 0)}") from None
        try:
            # non-blocking: whatever may have been swapped in for the FIFO
            # meanwhile (the directory is the caller's), the open cannot hang
            try:
                made = os.lstat(path)
                if stat.S_ISFIFO(made.st_mode) and made.st_uid == os.geteuid():
                    self.ident = (made.st_dev, made.st_ino)
                self.child = os.open(path, os.O_RDWR | _GATE_OPEN)
            except OSError as exc:
                raise SpecError(
                    "gate",
                    f"{path!r} was replaced while spawn made it: {strerror(exc.errno or 0)}",
                ) from None
            st = os.fstat(self.child)
            if self.ident is None or (st.st_dev, st.st_ino) != self.ident:
                raise SpecError("gate", f"{path!r} was replaced while spawn made it")
            os.fchmod(self.child, 0o600)  # whatever the umask took
            os.set_blocking(self.child, True)  # the child's read waits
            # the same FIFO again, through the fd: no path
            self.writer = os.open(f"/proc/self/fd/{self.child}", os.O_WRONLY | os.O_CLOEXEC)
        except BaseException:
            self.close()
            raise

    def close_child(self) -> None:
        if self.child >= 0:
            fd, self.child = self.child, -1
            os.close(fd)

    def close(self) -> None:
        """Close both ends; remove the FIFO if it is still this one."""
        self.close_child()
        if self.writer >= 0:
            fd, self.writer = self.writer, -1
            os.close(fd)
        _unlink_gate(self.path, self.ident)


def _unlink_gate(path: str, ident: tuple[int, int] | None) -> None:
    try:
        st = os.lstat(path)
        if ident is not None and (st.st_dev, st.st_ino) == ident:
            os.unlink(path)
    except OSError:
        pass  # gone already (start_gate removes it)


def start_gate(path: str | os.PathLike[str], *, timeout: float | None = None) -> None:
    """Start the container that ``spawn(spec, start=False, gate=PATH)`` made, from
    any process that can open PATH (the FIFO is mode 0600: its owner, or root):
    write one byte into it, wait until the container's first process has taken
    it and closed the gate (it execs its command next), and remove the FIFO.

    The exec's own errors cannot be reported here (the spawn already checked that
    the command exists); the process that spawned it, if alive, sees them.
    ``FileNotFoundError``: no gate there (started already, or never made);
    ``ProcessLookupError``: a gate nobody waits at (the container has exited);
    ``TimeoutError`` after ``timeout`` seconds (the byte is not taken back: the
    container starts when it gets to it)."""
    where = os.fspath(path)
    try:
        st = os.lstat(where)
    except FileNotFoundError:
        raise FileNotFoundError(
            errno.ENOENT, f"no gate at {where!r} (started already, or never made)"
        ) from None
    if not stat.S_ISFIFO(st.st_mode):
        raise SpecError("gate", f"{where!r} is not a gate (a FIFO made by spawn)")
    try:
        fd = os.open(where, os.O_WRONLY | _GATE_OPEN)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # no reader
            raise ProcessLookupError(
                errno.ESRCH, f"no container waits at the gate {where!r} (it has exited)"
            ) from None
        raise
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            raise SpecError("gate", f"{where!r} was replaced while start_gate opened it")
        try:
            os.write(fd, b"\0")
        except BrokenPipeError:
            raise ProcessLookupError(
                errno.ESRCH, f"no container waits at the gate {where!r} (it has exited)"
            ) from None
        # the waiting process reads the byte and closes the FIFO, then execs; or
        # it died: either way the FIFO has no reader left (POLLERR on our end)
        poller = select.poll()
        poller.register(fd, 0)
        ms = None if timeout is None else max(0, int(timeout * 1000))
        while not poller.poll(ms):
            if ms is not None:
                raise TimeoutError(
                    errno.ETIMEDOUT, f"the container at the gate {where!r} did not start"
                )
        _unlink_gate(where, (st.st_dev, st.st_ino))
    finally:
        os.close(fd)


# ---- stdio -----------------------------------------------------------------------


class _Stdio:
    """subprocess-style stdio arguments turned into child fds and parent files."""

    def __init__(self, stdin: Any, stdout: Any, stderr: Any) -> None:
        self.child = [-1, -1, -1]
        self.parent: list[IO[bytes] | None] = [None, None, None]
        self.close_after: list[int] = []
        self._devnull = -1
        try:
            for i, arg in enumerate((stdin, stdout, stderr)):
                self._one(i, arg)
        except BaseException:
            self.close_child()
            for f in self.parent:
                if f is not None:
                    f.close()
            raise

    def _one(self, i: int, arg: Any) -> None:
        name = ("stdin", "stdout", "stderr")[i]
        if arg is None:
            return
        if arg == PIPE and isinstance(arg, int):
            r, w = os.pipe2(os.O_CLOEXEC)
            if i == 0:
                self.child[0] = r
                self.close_after.append(r)
                self.parent[0] = open(w, "wb")  # noqa: SIM115 - the caller owns it
            else:
                self.child[i] = w
                self.close_after.append(w)
                self.parent[i] = open(r, "rb")  # noqa: SIM115 - the caller owns it
        elif arg == DEVNULL and isinstance(arg, int):
            if self._devnull < 0:
                self._devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                self.close_after.append(self._devnull)
            self.child[i] = self._devnull
        elif arg == STDOUT and isinstance(arg, int):
            if i != 2:
                raise SpecError(name, "STDOUT is only for stderr")
            self.child[2] = self.child[1] if self.child[1] >= 0 else 1
        elif isinstance(arg, int) and not isinstance(arg, bool):
            if arg < 0:
                raise SpecError(name, f"bad file descriptor {arg}")
            self.child[i] = arg
        elif hasattr(arg, "fileno"):
            self.child[i] = arg.fileno()
        else:
            raise SpecError(name, f"expected None, PIPE, DEVNULL, an fd or a file, not {arg!r}")

    def close_child(self) -> None:
        for fd in self.close_after:
            try:
                os.close(fd)
            except OSError:
                pass
        self.close_after = []


# ---- the spawn -----------------------------------------------------------------


def _error(plan: _plan.Plan, res: Any, hook_error: BaseException | None = None) -> SpawnError:
    stage, index, err = res.stage, res.op, res.err
    where = _STAGES.get(stage, "spawn")
    n = len(plan.ops)
    if stage in (lib.NSB_STAGE_CHILD, lib.NSB_STAGE_INIT) and 0 <= index < n:
        op = plan.ops[index]
        if op.kind in (OpKind.EXEC, OpKind.FINDEXEC) and err in (errno.ENOENT, errno.ENOTDIR):
            # runc's words (callers such as podman read them: exit status 127)
            where_exec = (
                " in $PATH" if op.flags & OpFlag.SEARCH_PATH else " (no such file or directory)"
            )
            msg = f"{op.desc}: executable file not found{where_exec} (op {index + 1} of {n})"
            err = errno.ENOENT
        elif stage == lib.NSB_STAGE_INIT and err == errno.ECHILD:
            msg = f"{op.desc}: the init died before running the command (op {index + 1} of {n})"
        else:
            msg = f"{op.desc}: {strerror(err)} (op {index + 1} of {n})"
        return SpawnError(err, msg, stage=where, op=index + 1, op_count=n, step=op.desc)
    if stage == lib.NSB_STAGE_INIT:
        return SpawnError(err, f"the container init failed: {strerror(err)}", stage=where)
    if stage == lib.NSB_STAGE_STOPPED:
        return SpawnError(
            errno.EINTR,
            "the process being set up was stopped (SIGSTOP) by something in the namespaces it "
            "joined; it was killed",
            stage="stopped",
            step="setup",
        )
    if (
        stage == lib.NSB_STAGE_PACT
        and 0 <= index < len(plan.pacts)
        and plan.pacts[index].kind == lib.NSB_PACT_HOOK
    ):
        desc = plan.pacts[index].desc
        why = (
            f"{type(hook_error).__name__}: {hook_error}"
            if hook_error is not None
            else "it did not run (pynsbind.process's callback is not attached)"
        )
        return SpawnError(errno.ECANCELED, f"{desc}: {why}", stage="hook", step=desc)
    if stage == lib.NSB_STAGE_PACT and 0 <= index < len(plan.pacts):
        desc = plan.pacts[index].desc
        hint = ""
        if err == errno.EACCES and os.geteuid() != 0:
            hint = " (its /proc files belong to root while this process is not dumpable)"
        elif err == errno.EINVAL and plan.pacts[index].kind == lib.NSB_PACT_IDMAP_TREE:
            hint = " (a filesystem that cannot be idmapped, or a mount of another namespace?)"
        return SpawnError(
            err, f"{desc} for the new process: {strerror(err)}{hint}", stage=where, step=desc
        )
    if stage == lib.NSB_STAGE_HELPER and 0 <= index < len(plan.pacts):
        desc = plan.pacts[index].desc
        status = os.waitstatus_to_exitcode(err) if err > 0 else err
        return SpawnError(
            errno.EPERM, f"{desc} failed (exit status {status})", stage=where, step=desc
        )
    flags = Namespace(plan.clone_flags & Namespace.all())
    return SpawnError(err, f"clone with {flags!r}: {strerror(err)}", stage=where, step="clone")


def _run_engine(plan: _plan.Plan, table: list[int]) -> Any:
    res = ffi.new("struct nsb_result *")
    fds = ffi.new("int32_t[]", table)
    hook = plan.spec.normalized.hook
    call, key = None, 0
    if hook is not None:
        call, key = _HookCall(hook), next(_hook_keys)
        _hook_calls[key] = call
    try:
        failed = lib.nsb_spawn(plan.c_plan(), fds, len(table), key, res) < 0
    finally:
        if call is not None:
            del _hook_calls[key]
    if failed:
        cause = None if call is None else call.error
        if cause is not None and not isinstance(cause, Exception):
            raise cause  # KeyboardInterrupt, SystemExit: the spawn is undone already
        raise _error(plan, res, cause) from cause
    return res


def _fd_table(plan: _plan.Plan, child_stdio: list[int], extra: dict[str, int]) -> list[int]:
    table = list(child_stdio)
    for name in plan.slots[3:]:
        if name == "init":
            table.append(_init_exe_fd())
        else:
            table.append(extra[name])
    return table


def _extra_slots(spec: Spec) -> dict[str, int]:
    extra: dict[str, int] = {}
    for kinds, target in spec.normalized.joins:
        if isinstance(target, str):
            continue
        name = "join:" + "+".join(k.proc_name for k in Namespace if k & kinds)
        if isinstance(target, int):
            extra[name] = target
        else:
            fd = target.pidfd
            if fd is None or fd < 0:
                raise SpecError("join", f"{target!r} has no pidfd (it has exited?)")
            extra[name] = fd
    return extra


def spawn(
    spec: Spec,
    *,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    start: bool = True,
    gate: str | os.PathLike[str] | None = None,
) -> Process:
    """Start a container.  stdin/stdout/stderr take what subprocess takes: None
    (inherit), PIPE, DEVNULL, STDOUT (stderr only), an fd or a file object.

    ``start=False`` creates it without starting it: the call returns once
    everything but the exec of the command is done, and :meth:`Process.start`
    (or, with ``gate=PATH``, :func:`start_gate` from any process) lets it run."""
    return spawn_with(
        spec,
        _plan.Options(),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        start=start,
        gate=gate,
    )


def plan_data(spec: Spec, *, gated: bool = False) -> PlanData:
    """The plan spawn(spec) runs (``gated``: spawn(spec, start=False, gate=...)),
    as plain data (see pynsbind._replay): what a command line keeps to start
    the same container again without compiling it."""
    if not isinstance(spec, Spec):
        raise TypeError(f"plan_data() takes a Spec, not {type(spec).__name__}")
    return _get_plan(spec, _plan.Options(), gated=gated).data()


def explain(spec: Spec) -> str:
    """What spawning ``spec`` would do, as text: the namespaces the clone makes,
    where the cgroup is, then the steps of the cloned child in order, numbered as
    :class:`SpawnError` numbers them (``op 12 of 40``), with what the parent does
    at each sync point.  Checks the spec as spawn() would (SpecError), makes
    nothing, starts nothing.  The text is for people: its form may change."""
    if not isinstance(spec, Spec):
        raise TypeError(f"explain() takes a Spec, not {type(spec).__name__}")
    return _get_plan(spec, _plan.Options()).dump()


def _notifies(plan: _plan.Plan) -> bool:
    """The plan's seccomp filter has a notify listener."""
    flag = lib.SECCOMP_FILTER_FLAG_NEW_LISTENER
    return any(op.kind == OpKind.SECCOMP and op.b & flag for op in plan.ops)


def spawn_with(
    spec: Spec,
    options: _plan.Options,
    *,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    start: bool = True,
    gate: str | os.PathLike[str] | None = None,
) -> Process:
    """spawn() with engine options (the fallbacks: pynsbind.testing.Options)."""
    if not isinstance(spec, Spec):
        raise TypeError(f"spawn() takes a Spec, not {type(spec).__name__}")
    if spec.normalized.terminal:
        for name, arg in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
            if arg is not None:
                raise SpecError(
                    name,
                    "a container with terminal=True has its terminal as stdin, stdout and "
                    "stderr: give None (Process.terminal is the other end)",
                )
    if gate is not None and start:
        raise SpecError(
            "gate", "a gate is for a container created without starting it: give start=False"
        )
    _reap_active()
    plan = _get_plan(spec, options, gated=not start)
    if gate is not None and _notifies(plan):
        raise SpecError(
            "gate",
            "a seccomp profile with SCMP_ACT_NOTIFY rules notifies the engine's own calls at "
            "the gate, which the spawning process answers and may not be there to: create it "
            "with start=False and no gate, and start it with Process.start()",
        )

    for fd in spec.normalized.pass_fds:
        try:
            os.fstat(fd)
        except OSError as exc:
            raise SpecError("pass_fds", f"fd {fd}: {strerror(exc.errno or 0)}") from None
    fifo = None if gate is None else _Gate(os.fspath(gate))
    cg = None
    try:
        stdio = _Stdio(stdin, stdout, stderr)
    except BaseException:
        if fifo is not None:
            fifo.close()
        raise
    try:
        if plan.cgroup_host is not None:
            from pynsbind import _container_cgroup  # (pynsbind.cgroups: only now)

            cg = _container_cgroup.prepare(spec.normalized, plan)
        extra = _extra_slots(spec)
        if cg is not None:
            extra.update(cg.slots)
        if not start:
            extra["gate"] = -1 if fifo is None else fifo.child
        table = _fd_table(plan, stdio.child, extra)
        res = _run_engine(plan, table)
    except BaseException:
        for f in stdio.parent:
            if f is not None:
                f.close()
        if cg is not None:
            cg.abandon()
        if fifo is not None:
            fifo.close()
        raise
    finally:
        stdio.close_child()
        if cg is not None:
            cg.close_slots()
        if fifo is not None:
            fifo.close_child()  # the child has its own
    proc = Process._start(
        spec,
        int(res.pid),
        int(res.pidfd),
        int(res.sync_fd),
        stdio.parent,
        cg,
        int(res.listener_fd),
        bytes(ffi.buffer(res.pending)) if res.has_pending else None,
    )
    proc._setup_lifecycle(plan, int(res.terminal_fd), not start, fifo)
    return proc


# ---- Process -----------------------------------------------------------------------

_active: list[Process] = []
_active_lock = threading.Lock()


def _reap_active() -> None:
    """Reap the containers whose Process objects were dropped while running."""
    if not _active:
        return
    with _active_lock:
        for proc in list(_active):
            if proc._reap(block=False) is not None:
                _active.remove(proc)


class Process:
    """A running (or finished) container process.  Made by :func:`spawn`; there is
    no public constructor.

    ``pid`` is in the caller's pid namespace; ``pidfd`` (where the kernel has them)
    refers to this process only and is closed once it is reaped.  ``returncode``
    follows subprocess: None while running, the exit status, or ``-N`` for a
    signal N.  Used as a context manager, it kills and reaps on exit.

    ``terminal`` is the master of the container's pseudo-terminal
    (``Spec(terminal=True)``), an unbuffered binary file, else None: like the
    ``PIPE`` files it stays open after the container is reaped (what it wrote
    can still be read; a read then ends with ``OSError(EIO)``, Linux's way of
    saying the slave side is gone) and is closed by ``with``'s exit, or by its
    ``close()``."""

    args: tuple[str, ...]
    spec: Spec
    pid: int
    pidfd: int
    returncode: int | None
    stdin: IO[bytes] | None
    stdout: IO[bytes] | None
    stderr: IO[bytes] | None
    terminal: IO[bytes] | None
    _sync_fd: int
    _listener: int
    _pending: bytes | None
    _fds: list[int]
    _cg: Any
    _lock: threading.Lock
    _output: dict[int, list[bytes]] | None
    _input_offset: int
    _gated_plan: _plan.Plan | None
    _created: bool
    _gate: _Gate | None
    _released: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("Process objects are made by pynsbind.spawn()")

    @classmethod
    def _start(
        cls,
        spec: Spec,
        pid: int,
        pidfd: int,
        sync_fd: int,
        parent: list[IO[bytes] | None],
        cg: Any,
        listener: int = -1,
        pending: bytes | None = None,
    ) -> Process:
        self = object.__new__(cls)
        self.spec = spec
        self.args = spec.normalized.args
        self.pid = pid
        self.pidfd = pidfd
        self._sync_fd = sync_fd
        self._listener = listener
        self._pending = pending
        self.returncode = None
        self.stdin, self.stdout, self.stderr = parent
        self._fds = [-1 if f is None else f.fileno() for f in parent]
        self._cg = cg
        self._lock = threading.Lock()
        self._output = None
        self._input_offset = 0
        self.terminal = None
        self._gated_plan = None
        self._created = False
        self._gate = None
        self._released = False
        return self

    def _setup_lifecycle(
        self, plan: _plan.Plan, terminal: int, created: bool, gate: _Gate | None
    ) -> None:
        """The terminal's master (owned from now on), and a container created
        without starting: its plan (for start()) and its gate."""
        if terminal >= 0:
            self.terminal = open(terminal, "r+b", buffering=0)  # noqa: SIM115 - the caller owns it
        if created:
            self._gated_plan = plan
            self._created = True
            self._gate = gate

    # -- state --

    def __repr__(self) -> str:
        state = "created" if self._created else "running"
        if self.returncode is not None:
            state = f"returncode={self.returncode}"
        return f"<pynsbind.Process pid={self.pid} {state} args={list(self.args)!r}>"

    def _reap(self, block: bool) -> int | None:
        """Reap if exited (or wait when block); returns the returncode or None."""
        if self.returncode is not None:
            return self.returncode
        if self._released:
            raise ValueError(f"{self!r} was released: its parent or a subreaper reaps it")
        if block:
            self._lock.acquire()
        elif not self._lock.acquire(blocking=False):
            return None
        try:
            if self._reaped():  # by another thread, while this one waited for the lock
                return self.returncode
            flags = 0 if block else os.WNOHANG
            try:
                if self.pidfd >= 0:
                    info = os.waitid(os.P_PIDFD, self.pidfd, os.WEXITED | flags)
                    if info is None:
                        return None
                    code = info.si_status
                    rc = code if info.si_code == os.CLD_EXITED else -code
                else:
                    pid, status = os.waitpid(self.pid, flags)
                    if pid == 0:
                        return None
                    rc = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                rc = 255  # reaped elsewhere (a SIGCHLD handler set to SIG_IGN, say)
            rc = self._init_report(rc)
            self._finish(rc)
            return rc
        finally:
            self._lock.release()

    def _init_report(self, rc: int) -> int:
        """With init=True the init relays the command's own wait status."""
        return _replay.exit_report(self._sync_fd, rc)

    def _close_handles(self) -> None:
        """Close this object's pidfd, sync socket and notify listener."""
        for attr in ("pidfd", "_sync_fd", "_listener"):
            fd = getattr(self, attr)
            if fd >= 0:
                setattr(self, attr, -1)
                os.close(fd)

    def _finish(self, rc: int) -> None:
        self.returncode = rc
        self._created = False
        self._close_handles()
        if self._gate is not None:
            gate, self._gate = self._gate, None
            gate.close()
        if self._cg is not None:
            cg, self._cg = self._cg, None
            cg.release()

    def release(self) -> Cgroup | None:
        """Let the process go: this object closes what it holds of it (its
        pidfd, the sync socket, a notify listener; a gate's own fds, leaving the
        FIFO for :func:`start_gate`) and never reaps it.  Its parent (this
        process) must, or, once this process exits, the nearest subreaper
        (conmon, containerd's shim) or init: what an OCI runtime's ``create`` and
        ``exec --detach`` leave to their caller.  The pipes and the terminal
        stay the caller's to close.  Returns the cgroup pynsbind made for the
        container (``resources`` without ``cgroup``, or the device rules'),
        now the caller's to delete once the container is gone; None when there
        is none, or it is the caller's own.  ``returncode`` stays None; poll()
        and wait() raise ValueError from now on."""
        with self._lock:
            if self.returncode is not None or self._released:
                return None
            self._released = True
            self._close_handles()
            if self._gate is not None:
                gate, self._gate = self._gate, None
                gate.close_child()
                if gate.writer >= 0:
                    fd, gate.writer = gate.writer, -1
                    os.close(fd)
            cg, self._cg = self._cg, None
            return None if cg is None else cg.hand_over()

    # -- create, then start --

    def start(self) -> None:
        """Let a container created by ``spawn(..., start=False)`` exec its command.

        Returns once the command runs (with ``Spec(init=True)``: once the init
        has it running).  An exec that fails raises :class:`SpawnError`, as
        spawn() does, once the container is killed and reaped (its
        ``returncode`` set, its pipes and terminal closed, its cgroup removed).
        With ``gate=PATH`` this writes into the gate itself (a start by
        :func:`start_gate` from elsewhere may have come first: then this only
        waits for the exec's outcome).  ``ValueError`` for a container started
        already; ``ProcessLookupError`` for one that has exited."""
        with self._lock:
            if self.returncode is not None:
                raise ProcessLookupError(errno.ESRCH, f"{self!r} has exited")
            if not self._created or self._gated_plan is None:
                raise ValueError(f"{self!r} is started already")
            self._created = False
            plan = self._gated_plan
            go = self._gate is None
            if self._gate is not None:
                try:
                    os.write(self._gate.writer, b"\0")
                except BrokenPipeError:
                    pass  # nobody waits at the gate: started from elsewhere, or dead
            res = ffi.new("struct nsb_result *")
            failed = (
                lib.nsb_start(
                    plan.c_plan(),
                    _init_exe_fd(),
                    self.pid,
                    self._sync_fd,
                    self._listener,
                    int(go),
                    res,
                )
                < 0
            )
            if not failed:
                if res.has_pending:
                    self._pending = bytes(ffi.buffer(res.pending))
                if not plan.flags & PlanFlag.KEEP_SYNC and self._sync_fd >= 0:
                    fd, self._sync_fd = self._sync_fd, -1
                    os.close(fd)  # the command runs: no more news on it
                return
        # the engine killed it: reap it and let go of everything, as spawn() would
        error = _error(plan, res)
        self.wait()
        self._close_io()
        raise error

    # -- the terminal --

    def resize(self, rows: int, cols: int) -> None:
        """Set the window size of the container's terminal (TIOCSWINSZ on its
        master): the foreground process group inside gets SIGWINCH."""
        if self.terminal is None or self.terminal.closed:
            raise ValueError(f"{self!r} has no terminal (Spec(terminal=True))")
        for name, value in (("rows", rows), ("cols", cols)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 65535:
                raise ValueError(f"{name} must be an int from 1 to 65535, not {value!r}")
        import fcntl
        import struct
        import termios

        fcntl.ioctl(self.terminal.fileno(), termios.TIOCSWINSZ, struct.pack("4H", rows, cols, 0, 0))

    @property
    def seccomp_listener(self) -> int | None:
        """The notify listener of the container's seccomp filter (a profile with
        ``SCMP_ACT_NOTIFY`` rules), while it runs; else None.  Answer it with
        :meth:`serve_seccomp`, or with :mod:`pynsbind.seccomp`'s functions."""
        return self._listener if self._listener >= 0 else None

    async def serve_seccomp(self, handler: Any) -> None:
        """Answer the container's seccomp notifications with ``handler`` (a
        function or coroutine function taking a
        :class:`~pynsbind.seccomp.Notification` and returning a
        :class:`~pynsbind.seccomp.Response`), from the running asyncio loop,
        until every process under the filter has exited."""
        if self._listener < 0:
            raise ValueError(f"{self!r} has no seccomp listener (no SCMP_ACT_NOTIFY rule)")
        from pynsbind.seccomp import notification_from_bytes, serve

        # the command's first notification, when it reached the spawn engine first
        pending = [] if self._pending is None else [notification_from_bytes(self._pending)]
        self._pending = None
        # a duplicate for the loop: reaping the container closes self._listener
        fd = os.dup(self._listener)
        try:
            await serve(fd, handler, pending)
        finally:
            os.close(fd)

    @property
    def cgroup(self) -> Any:
        """The container's :class:`~pynsbind.cgroups.Cgroup` while it runs, when the
        spec has ``resources`` or ``cgroup``; else None (a container that asked for
        neither still sits in a cgroup of pynsbind's, for its device rules alone)."""
        if self._cg is None or self._cg.devices_only:
            return None
        return self._cg.cgroup

    def _reaped(self) -> bool:
        return self.returncode is not None

    def poll(self) -> int | None:
        return self._reap(block=False)

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        if timeout is None:
            rc = self._reap(block=True)
            assert rc is not None
            return rc
        deadline = time.monotonic() + timeout
        while True:
            rc = self._reap(block=False)
            if rc is not None:
                return rc
            left = deadline - time.monotonic()
            if left <= 0:
                raise _timeout_expired()(list(self.args), timeout)
            self._sleep_until_exit(left)

    def _sleep_until_exit(self, limit: float) -> None:
        fd = self.pidfd
        if fd >= 0:
            try:
                select.select([fd], [], [], limit)
                return
            except (OSError, ValueError):
                pass  # closed by a concurrent reap
        time.sleep(min(limit, 0.005))

    async def wait_async(self) -> int:
        """Wait without blocking the event loop (asyncio, the pidfd as a reader)."""
        if self.returncode is not None:
            return self.returncode
        import asyncio  # here: it costs ~10 ms to import

        loop = asyncio.get_running_loop()
        if self.pidfd >= 0:
            # a duplicate for the loop: reaping closes self.pidfd
            fd = os.dup(self.pidfd)
            exited = asyncio.Event()
            loop.add_reader(fd, exited.set)
            try:
                while (rc := self._reap(block=False)) is None:
                    await exited.wait()
                    exited.clear()
            finally:
                loop.remove_reader(fd)
                os.close(fd)
            return rc
        delay = 0.001
        while (rc := self._reap(block=False)) is None:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        return rc

    # -- signals --

    def send_signal(self, sig: int) -> None:
        """Signal the container's process (the pidfd makes this race-free)."""
        if self.returncode is not None or self.poll() is not None:
            return
        with self._lock:
            if self._reaped():
                return
            try:
                if self.pidfd >= 0:
                    from pynsbind.lowlevel import pidfd_send_signal

                    pidfd_send_signal(self.pidfd, sig)
                else:
                    os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        """SIGTERM.  A command that is PID 1 of its namespace ignores it unless it
        handles it; ``Spec(init=True)`` puts an init in front that forwards it."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    # -- io --

    def communicate(
        self, input: bytes | None = None, timeout: float | None = None
    ) -> tuple[bytes | None, bytes | None]:
        """Send input, read stdout and stderr to the end, wait; like Popen's."""
        if input is not None and self.stdin is None:
            raise ValueError("communicate(input=...) needs stdin=PIPE")
        if self._output is None:
            self._output = {}
            if self.stdin is not None and input is None:
                self.stdin.close()
        deadline = None if timeout is None else time.monotonic() + timeout
        streams = [f for f in (self.stdout, self.stderr) if f is not None and not f.closed]
        import selectors  # (here: only communicate() needs it)

        with selectors.DefaultSelector() as sel:
            if self.stdin is not None and not self.stdin.closed and input is not None:
                sel.register(self.stdin, selectors.EVENT_WRITE)
            for f in streams:
                sel.register(f, selectors.EVENT_READ)
                self._output.setdefault(f.fileno(), [])
            view = memoryview(input or b"")
            while sel.get_map():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise self._timeout(timeout)
                for key, _ in sel.select(left):
                    fileobj = key.fileobj
                    if fileobj is self.stdin:
                        assert self.stdin is not None
                        chunk = view[self._input_offset : self._input_offset + 65536]
                        try:
                            self._input_offset += os.write(self.stdin.fileno(), chunk)
                        except BrokenPipeError:
                            self._input_offset = len(view)
                        if self._input_offset >= len(view):
                            sel.unregister(fileobj)
                            self.stdin.close()
                    else:
                        fd = key.fd
                        data = os.read(fd, 65536)
                        if not data:
                            sel.unregister(fileobj)
                            assert hasattr(fileobj, "close")
                            fileobj.close()
                        else:
                            self._output[fd].append(data)
        out, err = self._partial()
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            self.wait(left)
        except _timeout_expired():
            raise self._timeout(timeout) from None
        return out, err

    def _collect(self, which: int) -> bytes | None:
        fd = self._fds[which]
        if fd < 0 or self._output is None:
            return None
        return b"".join(self._output.get(fd, []))

    def _partial(self) -> tuple[bytes | None, bytes | None]:
        return self._collect(1), self._collect(2)

    def _timeout(self, timeout: float | None) -> subprocess.TimeoutExpired:
        return _timeout_expired()(list(self.args), timeout or 0.0)

    # -- more processes in the container --

    def exec(
        self,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        user: int | tuple[int, int] | None = None,
        stdin: Any = None,
        stdout: Any = None,
        stderr: Any = None,
    ) -> Process:
        """Run another command in this running container: all its namespaces are
        entered at once through its pidfd, with its root; env, cwd and user
        default to the container's; its capabilities (or capability sets),
        no_new_privs, rlimits, groups, personality, seccomp filter and cgroup are
        the container's.

        The new process never shares memory with the caller once it is visible
        in the container: it is cloned like fork, non-dumpable, holds none of the
        caller's fds, and is exec'd through the sealed init."""
        if self.returncode is not None or self.pidfd < 0:
            raise ProcessLookupError(f"{self!r} is not running")
        base = self.spec.normalized
        kinds = base.namespaces | base.joined
        if not kinds:
            raise SpecError("exec", "the container shares every namespace with the host")
        spec = Spec(
            args=args,
            env=base.environ if env is None else env,
            cwd=base.cwd if cwd is None else cwd,
            namespaces=Namespace(0),
            join={kinds: self},
            user=(base.uid, base.gid) if user is None else user,
            groups=base.groups,
            umask=base.umask,
            capabilities=base.capabilities,
            capability_sets=base.capability_sets,
            personality=base.personality,
            no_new_privs=base.no_new_privs,
            rlimits={r.resource: (r.soft, r.hard) for r in base.rlimits},
            seccomp=base.seccomp,
            oom_score_adj=base.oom_score_adj,
            cgroup=None if self._cg is None else self._cg.cgroup,
        )
        return spawn(spec, stdin=stdin, stdout=stdout, stderr=stderr)

    # -- context manager and cleanup --

    def __enter__(self) -> Process:
        return self

    def _close_io(self) -> None:
        for f in (self.stdin, self.stdout, self.stderr, self.terminal):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass

    def __exit__(self, *exc: object) -> None:
        self._close_io()
        if self.returncode is None:
            self.kill()
            self.wait()

    def __del__(self) -> None:
        if getattr(self, "_released", True):
            return
        running = getattr(self, "returncode", 0) is None and hasattr(self, "_lock")
        if running and getattr(self, "_created", False) and self._gate is None:
            # created, never started, and nobody else can start it: gone with
            # this object (one with a gate waits for whoever opens it)
            self.kill()
        if running and self.poll() is None:
            with _active_lock:
                _active.append(self)


@record(frozen=True)
class CompletedContainer:
    """What :func:`run` returns, like ``subprocess.CompletedProcess``."""

    args: tuple[str, ...]
    returncode: int
    stdout: bytes | str | None = None
    stderr: bytes | str | None = None

    def check_returncode(self) -> None:
        if self.returncode:
            import subprocess

            raise subprocess.CalledProcessError(
                self.returncode, list(self.args), self.stdout, self.stderr
            )


def run(
    args: Sequence[str] | None = None,
    *,
    spec: Spec | None = None,
    input: bytes | str | None = None,
    capture_output: bool = False,
    timeout: float | None = None,
    check: bool = False,
    text: bool = False,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    **fields: Any,
) -> CompletedContainer:
    """Run a container to completion, like ``subprocess.run``.

    Either give ``args`` and any Spec fields as keywords
    (``run(["hostname"], hostname="box")``), or a whole ``spec=``; both at once
    replace those fields of the spec."""
    if spec is None:
        if args is None:
            raise SpecError("args", "run() needs args or spec")
        spec = Spec(args=args, **fields)
    elif args is not None or fields:
        if not isinstance(spec, Spec):
            raise TypeError(f"spec must be a Spec, not {type(spec).__name__}")
        if args is not None:
            fields["args"] = args
        spec = spec.replace(**fields)
    if input is not None:
        if stdin is not None:
            raise ValueError("stdin and input cannot both be given")
        stdin = PIPE
        if isinstance(input, str):
            input = input.encode()
    if capture_output:
        if stdout is not None or stderr is not None:
            raise ValueError("stdout and stderr cannot be given with capture_output")
        stdout = stderr = PIPE
    if spec.normalized.terminal:
        raise SpecError(
            "terminal",
            "run() does not drive a terminal (what the container writes there would fill "
            "it and stop it): spawn() it and use Process.terminal",
        )
    proc = spawn(spec, stdin=stdin, stdout=stdout, stderr=stderr)
    with proc:
        try:
            if proc.stdin is None and proc.stdout is None and proc.stderr is None:
                out: bytes | None = None
                err: bytes | None = None
                proc.wait(timeout)
            else:
                out, err = proc.communicate(input, timeout)
        except _timeout_expired() as exc:
            proc.kill()
            proc.wait()
            exc.output, exc.stderr = proc._partial()
            raise
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    rc = proc.returncode
    assert rc is not None
    result_out: bytes | str | None = out
    result_err: bytes | str | None = err
    if text:
        result_out = None if out is None else out.decode()
        result_err = None if err is None else err.decode()
    done = CompletedContainer(spec.normalized.args, rc, result_out, result_err)
    if check:
        done.check_returncode()
    return done
