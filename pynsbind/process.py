"""run(), spawn() and Process: the subprocess-shaped API over the spawn engine."""

from __future__ import annotations

import errno
import os
import select
import signal
import threading
import time

from pynsbind import _plan
from pynsbind._features import features
from pynsbind._ffi import ffi, lib
from pynsbind._ops import OpFlag, OpKind
from pynsbind._record import record
from pynsbind.errors import SpawnError, SpecError, strerror
from pynsbind.flags import Namespace
from pynsbind.spec import Spec

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Sequence
    from typing import IO, Any

__all__ = [
    "DEVNULL",
    "PIPE",
    "STDOUT",
    "CompletedContainer",
    "Process",
    "explain",
    "run",
    "spawn",
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

_plan_cache: dict[tuple[Spec, _plan.Options], _plan.Plan] = {}
_plan_lock = threading.Lock()
_PLAN_CACHE_MAX = 256


def _get_plan(spec: Spec, opts: _plan.Options) -> _plan.Plan:
    key = (spec, opts)
    plan = _plan_cache.get(key)
    if plan is None:
        plan = _plan.compile_plan(spec, features(), opts)
        plan.c_plan()
        with _plan_lock:
            if len(_plan_cache) >= _PLAN_CACHE_MAX:
                _plan_cache.pop(next(iter(_plan_cache)))
            _plan_cache[key] = plan
    return plan


_init_fd = -1
_init_lock = threading.Lock()

#: memfd_create's MFD_EXEC (Linux 6.3): ask for an executable memfd where the
#: host makes memfds non-executable by default (vm.memfd_noexec = 1)
_MFD_EXEC = 0x10


def _init_exe_fd() -> int:
    """A sealed in-memory copy of the container init (pynsbind/_nsbinit), made
    once per process: every container process is exec'd through it (the init,
    or its ``--exec`` mode), so that /proc/self/exe inside a container is this
    copy, which nobody can write, and never a file of the host."""
    global _init_fd
    with _init_lock:
        if _init_fd < 0:
            path = _installed_init()
            with open(path, "rb") as f:
                data = f.read()
            _init_fd = _sealed_copy(data)
        return _init_fd


def _installed_init() -> str:
    """The path of pynsbind/_nsbinit, built and installed as an extension (its
    name carries the extension suffix: _nsbinit.cpython-311-x86_64-linux-gnu.so)."""
    here = os.path.dirname(os.path.abspath(__file__))
    found = [n for n in os.listdir(here) if n.startswith("_nsbinit.") and n.endswith(".so")]
    if len(found) == 1:
        return os.path.join(here, found[0])  # (importlib.machinery is not free to import)
    from importlib.machinery import EXTENSION_SUFFIXES

    for suffix in EXTENSION_SUFFIXES:
        path = os.path.join(here, "_nsbinit" + suffix)
        if os.path.exists(path):
            return path
    raise SpecError("init", "the container init (pynsbind._nsbinit) is not installed")


def _sealed_copy(data: bytes) -> int:
    import fcntl

    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        fd = os.memfd_create("pynsbind-init", flags | _MFD_EXEC)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: a kernel before 6.3, without MFD_EXEC
            raise SpawnError(
                exc.errno or errno.EACCES,
                f"memfd_create for the sealed init: {strerror(exc.errno or 0)} "
                "(vm.memfd_noexec = 2 forbids executable memfds; pynsbind needs them)",
                stage="parent",
                step="init",
            ) from None
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
    return fd


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


def _error(plan: _plan.Plan, res: Any) -> SpawnError:
    stage, index, err = res.stage, res.op, res.err
    where = _STAGES.get(stage, "spawn")
    n = len(plan.ops)
    if stage in (lib.NSB_STAGE_CHILD, lib.NSB_STAGE_INIT) and 0 <= index < n:
        op = plan.ops[index]
        if op.kind == OpKind.EXEC and err in (errno.ENOENT, errno.ENOTDIR):
            where_exec = " in $PATH" if op.flags & OpFlag.SEARCH_PATH else ""
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
    if stage == lib.NSB_STAGE_PACT and 0 <= index < len(plan.pacts):
        desc = plan.pacts[index].desc
        hint = ""
        if err == errno.EACCES and os.geteuid() != 0:
            hint = " (its /proc files belong to root while this process is not dumpable)"
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
    if lib.nsb_spawn(plan.c_plan(), fds, len(table), res) < 0:
        raise _error(plan, res)
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


def spawn(spec: Spec, *, stdin: Any = None, stdout: Any = None, stderr: Any = None) -> Process:
    """Start a container.  stdin/stdout/stderr take what subprocess takes: None
    (inherit), PIPE, DEVNULL, STDOUT (stderr only), an fd or a file object."""
    return spawn_with(spec, _plan.Options(), stdin=stdin, stdout=stdout, stderr=stderr)


def explain(spec: Spec) -> str:
    """What spawning ``spec`` would do, as text: the namespaces the clone makes,
    where the cgroup is, then the steps of the cloned child in order, numbered as
    :class:`SpawnError` numbers them (``op 12 of 40``), with what the parent does
    at each sync point.  Checks the spec as spawn() would (SpecError), makes
    nothing, starts nothing.  The text is for people: its form may change."""
    if not isinstance(spec, Spec):
        raise TypeError(f"explain() takes a Spec, not {type(spec).__name__}")
    return _get_plan(spec, _plan.Options()).dump()


def spawn_with(
    spec: Spec,
    options: _plan.Options,
    *,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
) -> Process:
    """spawn() with engine options (the fallbacks: pynsbind.testing.Options)."""
    if not isinstance(spec, Spec):
        raise TypeError(f"spawn() takes a Spec, not {type(spec).__name__}")
    _reap_active()
    plan = _get_plan(spec, options)

    for fd in spec.normalized.pass_fds:
        try:
            os.fstat(fd)
        except OSError as exc:
            raise SpecError("pass_fds", f"fd {fd}: {strerror(exc.errno or 0)}") from None
    stdio = _Stdio(stdin, stdout, stderr)
    cg = None
    try:
        if plan.cgroup_host is not None:
            from pynsbind import _container_cgroup  # (pynsbind.cgroups: only now)

            cg = _container_cgroup.prepare(spec.normalized, plan)
        extra = _extra_slots(spec)
        if cg is not None:
            extra.update(cg.slots)
        table = _fd_table(plan, stdio.child, extra)
        res = _run_engine(plan, table)
    except BaseException:
        for f in stdio.parent:
            if f is not None:
                f.close()
        if cg is not None:
            cg.abandon()
        raise
    finally:
        stdio.close_child()
        if cg is not None:
            cg.close_slots()
    return Process._start(
        spec,
        int(res.pid),
        int(res.pidfd),
        int(res.sync_fd),
        stdio.parent,
        cg,
        int(res.listener_fd),
        bytes(ffi.buffer(res.pending)) if res.has_pending else None,
    )


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
    signal N.  Used as a context manager, it kills and reaps on exit."""

    args: tuple[str, ...]
    spec: Spec
    pid: int
    pidfd: int
    returncode: int | None
    stdin: IO[bytes] | None
    stdout: IO[bytes] | None
    stderr: IO[bytes] | None
    _sync_fd: int
    _listener: int
    _pending: bytes | None
    _fds: list[int]
    _cg: Any
    _lock: threading.Lock
    _output: dict[int, list[bytes]] | None
    _input_offset: int

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
        return self

    # -- state --

    def __repr__(self) -> str:
        state = "running" if self.returncode is None else f"returncode={self.returncode}"
        return f"<pynsbind.Process pid={self.pid} {state} args={list(self.args)!r}>"

    def _reap(self, block: bool) -> int | None:
        """Reap if exited (or wait when block); returns the returncode or None."""
        if self.returncode is not None:
            return self.returncode
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
        if self._sync_fd < 0:
            return rc
        size = ffi.sizeof("struct nsb_msg")
        try:
            while True:
                data = os.read(self._sync_fd, size)
                if len(data) != size:
                    break
                msg = ffi.from_buffer("struct nsb_msg *", data)
                if msg.type == lib.NSB_MSG_EXIT:
                    return os.waitstatus_to_exitcode(int(msg.val))
        except BlockingIOError:
            pass
        return rc

    def _finish(self, rc: int) -> None:
        self.returncode = rc
        for attr in ("pidfd", "_sync_fd", "_listener"):
            fd = getattr(self, attr)
            if fd >= 0:
                setattr(self, attr, -1)
                os.close(fd)
        if self._cg is not None:
            cg, self._cg = self._cg, None
            cg.release()

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
        default to the container's; its capabilities, no_new_privs, rlimits,
        groups, seccomp filter and cgroup are the container's.

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

    def __exit__(self, *exc: object) -> None:
        for f in (self.stdin, self.stdout, self.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        if self.returncode is None:
            self.kill()
            self.wait()

    def __del__(self) -> None:
        running = getattr(self, "returncode", 0) is None and hasattr(self, "_lock")
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
