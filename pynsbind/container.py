"""Containers with a lifecycle kept on disk, as the OCI runtime spec defines it.

A :class:`Container` is made from an OCI bundle (``create``), started, signalled,
paused, resumed, updated and deleted, possibly each by another process (an OCI
runtime's command line is called once per operation).  Its state lives in a
directory of its own under a root (``/run/pynsbind`` by default): the state
document, the FIFO its first process waits on between create and start, and a
copy of its configuration.  Operations on one container hold a lock on that
directory, so concurrent calls are safe.

The states and the operations each allows are in :data:`ALLOWED`, one place:

    creating -> created -> running <-> paused
                   \\          |          /
                    '------> stopped <--'   -> (deleted)
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import time

from pynsbind.errors import SpawnError, SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from typing import Any

    from pynsbind.cgroups import Cgroup

__all__ = [
    "ALLOWED",
    "DEFAULT_ROOT",
    "HELD_SIGNALS",
    "Container",
    "ContainerError",
    "default_root",
    "exec_in",
    "list_containers",
]

DEFAULT_ROOT = "/run/pynsbind"

#: what each operation needs the container's status to be
ALLOWED: dict[str, frozenset[str]] = {
    "start": frozenset({"created"}),
    "kill": frozenset({"created", "running", "paused"}),
    "pause": frozenset({"running"}),
    "resume": frozenset({"paused"}),
    "exec": frozenset({"created", "running"}),
    "update": frozenset({"created", "running", "paused"}),
    "delete": frozenset({"created", "stopped"}),
    "ps": frozenset({"created", "running", "paused"}),
    "stats": frozenset({"created", "running", "paused"}),
}

_STATE = "state.json"
_GATE = "exec.fifo"
_CONFIG = "config.json"


#: the signals that end a command line by default, held while a container is
#: made (csrc/launcher_oci.c holds the same)
HELD_SIGNALS = frozenset(
    {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2}
)


def _held_signal() -> int:
    """A signal of HELD_SIGNALS pending for this thread and not ignored (an
    ignored one is dropped once unblocked), or 0."""
    for sig in sorted(signal.sigpending() & HELD_SIGNALS):
        if signal.getsignal(sig) != signal.SIG_IGN:
            return int(sig)
    return 0


class ContainerError(Exception):
    """An operation a container's state does not allow, an unknown or existing
    id, a bad root: the message is what a caller shows.  ``errno`` is set where
    the failure was the kernel's."""

    def __init__(self, message: str, err: int = 0) -> None:
        super().__init__(message)
        self.errno = err


def default_root() -> str:
    """Where states live: /run/pynsbind for root, $XDG_RUNTIME_DIR/pynsbind (or
    /tmp/pynsbind-UID) for anyone else."""
    if os.geteuid() == 0:
        return DEFAULT_ROOT
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "pynsbind")
    return f"/tmp/pynsbind-{os.geteuid()}"


def check_id(cid: str) -> str:
    """A container id as runc takes them: letters, digits, ``_+-.``, not ``.``
    or ``..``, at most 1024 bytes."""
    ok = bool(cid) and cid not in (".", "..") and len(cid) <= 1024
    ok = ok and all(c.isalnum() or c in "_+-." for c in cid) and cid.isascii()
    if not ok:
        raise ContainerError(f"invalid container id {cid!r}: use letters, digits and _+-.")
    return cid


def _start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (when the process started), or None when the
    process is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def _now() -> str:
    t = time.time()
    frac = f"{t % 1:.9f}"[1:]
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + frac + "Z"


def _write_atomic(path: str, data: bytes, mode: int = 0o600) -> None:
    """Write ``path`` whole or not at all (a temp file renamed over it).  The
    temp file's name cannot be guessed and it is made new: a pid file's
    directory may be writable by others, and nobody else's file is ever the
    one renamed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    for _ in range(8):
        tmp = f"{path}.{os.urandom(8).hex()}.tmp"
        try:
            fd = os.open(tmp, flags, mode)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, f"no temporary name for {path}", path)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.rename(tmp, path)


class _Lock:
    """flock on the container's directory: one operation at a time."""

    def __init__(self, directory: str) -> None:
        self.fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def __enter__(self) -> _Lock:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # releases the lock


class Container:
    """One container's state on disk (see the module's doc).  Get one with
    :meth:`create` or :meth:`load`; each method re-reads what it needs, so that a
    Container object stays right while other processes act on the container."""

    def __init__(self, cid: str, root: str, state: dict[str, Any]) -> None:
        self.id = cid
        self.root = root
        self._state = state

    # -- where things are --

    @property
    def dir(self) -> str:
        return os.path.join(self.root, self.id)

    @property
    def bundle(self) -> str:
        return str(self._state.get("bundle", ""))

    @property
    def pid(self) -> int:
        return int(self._state.get("pid", 0))

    @property
    def config(self) -> dict[str, Any]:
        """The configuration the container was created from (its config.json)."""
        with open(os.path.join(self.dir, _CONFIG), "rb") as f:
            data: dict[str, Any] = json.load(f)
        return data

    @property
    def annotations(self) -> dict[str, str]:
        found = self._state.get("annotations") or {}
        return dict(found)

    # -- loading --

    @classmethod
    def load(cls, cid: str, *, root: str | None = None) -> Container:
        """The container ``cid`` under ``root``; ContainerError when there is none."""
        root = root or default_root()
        check_id(cid)
        path = os.path.join(root, cid, _STATE)
        try:
            with open(path, "rb") as f:
                state = json.load(f)
        except FileNotFoundError:
            if os.path.isdir(os.path.join(root, cid)):
                return cls(cid, root, {"creating": True})
            raise ContainerError(f"container {cid} does not exist", errno.ENOENT) from None
        except (OSError, ValueError) as exc:
            raise ContainerError(f"container {cid}: unreadable state {path}: {exc}") from None
        return cls(cid, root, state)

    # -- status --

    @property
    def status(self) -> str:
        """creating, created, running, paused or stopped (read now)."""
        if self._state.get("creating"):
            return "creating"
        if not self._alive():
            return "stopped"
        if os.path.exists(os.path.join(self.dir, _GATE)):
            return "created"
        cg = self.cgroup()
        if cg is not None:
            try:
                if cg.frozen:
                    return "paused"
            except OSError:
                pass
        return "running"

    def _alive(self) -> bool:
        """Whether the first process runs: its pid and the start time create
        read (none when it had already exited then) name a live process."""
        start = self._state.get("pid_start")
        return self.pid > 0 and start is not None and _start_time(self.pid) == start

    def _require(self, operation: str) -> str:
        status = self.status
        if status not in ALLOWED[operation]:
            need = " or ".join(sorted(ALLOWED[operation]))
            raise ContainerError(
                f"cannot {operation} container {self.id}: it is {status}, not {need}"
            )
        return status

    def state(self) -> dict[str, Any]:
        """The runtime-spec state document (plus runc's rootfs, created, owner)."""
        status = self.status
        doc: dict[str, Any] = {
            "ociVersion": "1.2.0",
            "id": self.id,
            "status": status,
            "pid": self.pid if status not in ("stopped", "creating") else 0,
            "bundle": self.bundle,
            "rootfs": self._state.get("rootfs", ""),
            "created": self._state.get("created", ""),
            "owner": self._state.get("owner", ""),
        }
        if self.annotations:
            doc["annotations"] = self.annotations
        return doc

    def cgroup(self) -> Cgroup | None:
        """The container's cgroup, or None (none made, or gone)."""
        path = self._state.get("cgroup")
        if not path:
            return None
        from pynsbind.cgroups import Cgroup

        try:
            return Cgroup.open(path, callers_choice=True)
        except (OSError, ValueError):
            return None

    def lock(self) -> _Lock:
        return _Lock(self.dir)

    # -- create, start, delete --

    @classmethod
    def create(
        cls,
        cid: str,
        bundle: str,
        *,
        root: str | None = None,
        console_socket: str | None = None,
        pid_file: str | None = None,
        preserve_fds: int = 0,
        plan_key: bytes | None = None,
    ) -> Container:
        """Create the container ``cid`` from the OCI bundle ``bundle``: its
        namespaces, cgroup, mounts and first process, which waits before exec
        until :meth:`start`.  The process is a child of the caller (a subreaper
        such as conmon inherits it when the caller exits).  On any failure
        nothing is left: no state, cgroup, mount or process.  The signals of
        :data:`HELD_SIGNALS` are held in this thread meanwhile: one that came
        undoes the container (ContainerError, errno EINTR) and is delivered
        as create returns.

        ``plan_key`` (pynsbind._replay.container_key): keep what made this
        container under that key, where it can be, for pynsbind-run's launcher
        to create the next container of the same bundle without Python."""
        from pynsbind import oci

        root = os.path.abspath(root or default_root())
        check_id(cid)
        loaded = oci.load_bundle(bundle)  # SpecError naming the JSON path
        spec = loaded.spec(container_id=cid)
        if spec.terminal and console_socket is None:
            raise ContainerError(
                "process.terminal is true: a terminal needs --console-socket to be sent to"
            )
        if console_socket is not None and not spec.terminal:
            raise ContainerError("--console-socket given but process.terminal is false")
        _make_root(root)
        directory = os.path.join(root, cid)
        # the signals that end a command line are held while the container is
        # made: all of it is made, or (one came) nothing is left
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
        try:
            try:
                os.mkdir(directory, 0o700)
            except FileExistsError:
                raise ContainerError(
                    f"container with id {cid} already exists", errno.EEXIST
                ) from None
            made = _Undo()
            made.add(lambda: _remove_tree(directory))
            try:
                with _Lock(directory):
                    container, spawned = cls._create_locked(
                        cid, root, loaded, spec, made, console_socket, pid_file, preserve_fds
                    )
            except BaseException:
                made.run()
                raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        if plan_key is not None and console_socket is None and not preserve_fds:
            try:
                _keep_plan(plan_key, container, loaded, spec, spawned)
            except Exception:
                pass  # (keeping it saves time next time; it never fails a create)
        return container

    @classmethod
    def _create_locked(
        cls,
        cid: str,
        root: str,
        loaded: Any,
        spec: Any,
        made: _Undo,
        console_socket: str | None,
        pid_file: str | None,
        preserve_fds: int,
    ) -> tuple[Container, Any]:
        """create() with the lock held: the container, and the spec spawned."""
        from pynsbind import oci, process
        from pynsbind.cgroups import Cgroup

        directory = os.path.join(root, cid)
        _write_atomic(os.path.join(directory, _CONFIG), json.dumps(loaded.config).encode())
        state: dict[str, Any] = {
            "id": cid,
            "bundle": loaded.path,
            "rootfs": str(spec.rootfs or ""),
            "created": _now(),
            "owner": _owner(),
            "annotations": dict(loaded.annotations),
            "hooks": _has_hooks(loaded.hooks),
        }
        container = cls(cid, root, state)
        changes: dict[str, Any] = {}
        if isinstance(spec.cgroup, str):
            # made here and kept until delete: not marked as this process's,
            # since the container outlives this process
            try:
                cg = Cgroup.create(spec.cgroup, spec.resources, mark=False, callers_choice=True)
            except FileExistsError:
                raise ContainerError(
                    f"cgroup {spec.cgroup} exists already (linux.cgroupsPath)", errno.EEXIST
                ) from None
            except PermissionError:
                if not _cgroup_optional(loaded.config, spec.resources):
                    raise
                # rootless, as runc: no cgroup of its own, none asked for
                # by path and no limit that would need one
                cg = None
                changes.update(cgroup=None, resources=None)
            if cg is not None:
                made.add(cg.delete, first=True)
                state["cgroup"] = cg.path
                state["cgroup_dirs"] = [d for _, d in cg.hierarchy_dirs]
                changes.update(cgroup=cg, resources=None)
        hooks = loaded.hooks
        if hooks.prestart or hooks.create_runtime or hooks.create_container:
            changes["hook"] = lambda pid: _setup_hooks(container, hooks, pid)
        if preserve_fds:
            changes["pass_fds"] = tuple(range(3, 3 + preserve_fds))
        if changes:
            spec = spec.replace(**changes)
        gate = os.path.join(directory, _GATE)
        try:
            proc = process.spawn(spec, start=False, gate=gate)
        except SpecError as exc:
            raise oci.config_error(exc) from None
        made.add(proc.kill, first=True)
        state["pid"] = proc.pid
        state["pid_start"] = _start_time(proc.pid)
        if console_socket is not None:
            assert proc.terminal is not None
            _send_terminal(console_socket, proc.terminal.fileno())
            proc.terminal.close()
        _write_atomic(os.path.join(directory, _STATE), json.dumps(state).encode())
        if pid_file is not None:
            path = os.path.abspath(pid_file)
            _write_atomic(path, f"{proc.pid}".encode(), 0o644)
            made.add(lambda: os.unlink(path))
        held = _held_signal()
        if held:
            # it came while the container was made: it wins, nothing is left
            # (create's caller then gets the signal, once unblocked)
            raise ContainerError(
                f"create of container {cid} interrupted by signal {held}: nothing is left",
                errno.EINTR,
            )
        made.clear()
        proc.release()  # the container outlives this process: a subreaper reaps it
        return container, spec

    def start(self) -> None:
        """Let the created container's first process exec its command (the
        startContainer hooks first, in the container; poststart after)."""
        from pynsbind import process

        with self.lock():
            self._require("start")
            hooks = self._hooks()
            for hook in hooks.start_container:
                _run_hook_inside(self, hook)
            process.start_gate(os.path.join(self.dir, _GATE))  # (and removes it)
            for hook in hooks.poststart:
                _run_hook(self, hook, warn_only=True)

    def delete(self, *, force: bool = False) -> None:
        """Remove a stopped (or created) container: its processes, cgroup and state;
        ``force`` kills a running or paused one first.  The poststop hooks run
        last."""
        with self.lock():
            status = self.status
            if status not in ALLOWED["delete"] and not force:
                raise ContainerError(
                    f"cannot delete container {self.id} that is not stopped: {status}"
                )
            cg = self.cgroup()
            if status != "stopped" or cg is not None:
                if cg is not None:
                    if cg.frozen:
                        cg.thaw()
                    cg.kill()
                elif self._alive():
                    self._signal_first(signal.SIGKILL)
                    _wait_gone(self.pid, self._state.get("pid_start"))
            if cg is not None:
                cg.delete()
            hooks = None if self._state.get("creating") else self._hooks()
            _remove_tree(self.dir)
        if hooks is not None:
            for hook in hooks.poststop:
                _run_hook(self, hook, warn_only=True)

    def _hooks(self) -> Any:
        from pynsbind import oci

        return oci.hooks_from_config(self.config)

    # -- operations that need no new process --

    def kill(self, sig: int = signal.SIGTERM, *, all_processes: bool = False) -> None:
        """Send ``sig`` to the container's first process (or, ``all_processes``,
        to every process in its cgroup).  A paused container is thawed after a
        SIGKILL, as runc does: a v1 freezer holds even killed processes."""
        self._require("kill")
        cg = self.cgroup()
        if all_processes:
            if cg is None:
                raise ContainerError(f"container {self.id} has no cgroup to signal all of")
            for pid in cg.procs():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        else:
            self._signal_first(sig)
        if sig == signal.SIGKILL and cg is not None:
            try:
                if cg.frozen:
                    cg.thaw()
            except OSError:
                pass  # gone meanwhile

    def pidfd(self) -> int:
        """A pidfd of the container's first process, checked to be it (not a
        process that reused its pid); ContainerError when it is gone."""
        try:
            fd = os.pidfd_open(self.pid)
        except (ProcessLookupError, OSError):
            raise ContainerError(f"container {self.id} is not running", errno.ESRCH) from None
        if not self._alive():
            os.close(fd)
            raise ContainerError(f"container {self.id} is not running", errno.ESRCH)
        return fd

    def _signal_first(self, sig: int) -> None:
        """Signal the first process through a pidfd checked to be it (its pid may
        have been reused by another process since)."""
        fd = self.pidfd()
        try:
            import pynsbind.lowlevel as ll

            try:
                ll.pidfd_send_signal(fd, sig)
            except ProcessLookupError:
                raise ContainerError(f"container {self.id} is not running", errno.ESRCH) from None
        finally:
            os.close(fd)

    def pause(self) -> None:
        self._require("pause")
        cg = self.cgroup()
        if cg is None:
            raise ContainerError(f"cannot pause container {self.id}: it has no cgroup")
        cg.freeze()

    def resume(self) -> None:
        self._require("resume")
        cg = self.cgroup()
        if cg is None:
            raise ContainerError(f"cannot resume container {self.id}: it has no cgroup")
        cg.thaw()

    def processes(self) -> list[int]:
        """The host pids of the container's processes (its cgroup's)."""
        self._require("ps")
        cg = self.cgroup()
        if cg is None:
            return [self.pid]
        return sorted(cg.procs())

    def update(self, resources: Mapping[str, Any]) -> None:
        """Apply OCI ``linux.resources`` to the running container's cgroup."""
        self._require("update")
        from pynsbind.cgroups import Resources

        cg = self.cgroup()
        if cg is None:
            raise ContainerError(f"cannot update container {self.id}: it has no cgroup")
        cg.update(Resources.from_oci(dict(resources)))

    def stats(self) -> dict[str, Any]:
        """runc's ``events --stats`` data: cpu, memory, pids (and what the host has)."""
        self._require("stats")
        cg = self.cgroup()
        if cg is None:
            return {}
        st = cg.stats()

        def ns(usec: int | None) -> int:
            return (usec or 0) * 1000

        out: dict[str, Any] = {
            "cpu": {
                "usage": {
                    "total": ns(st.cpu.usage_usec),
                    "user": ns(st.cpu.user_usec),
                    "kernel": ns(st.cpu.system_usec),
                },
                "throttling": {
                    "periods": st.cpu.nr_periods or 0,
                    "throttledPeriods": st.cpu.nr_throttled or 0,
                    "throttledTime": ns(st.cpu.throttled_usec),
                },
            },
            "memory": {
                "usage": {
                    "usage": st.memory.current or 0,
                    "max": st.memory.peak or 0,
                    "limit": st.memory.limit or 0,
                    "failcnt": st.memory.max_events or 0,
                }
            },
            "pids": {"current": st.pids.current or 0, "limit": st.pids.limit or 0},
            "blkio": {
                "ioServiceBytesRecursive": [
                    {
                        "major": int(d.device.split(":")[0]),
                        "minor": int(d.device.split(":")[1]),
                        "op": op,
                        "value": value,
                    }
                    for d in st.io
                    for op, value in (("Read", d.rbytes), ("Write", d.wbytes))
                ]
            },
        }
        return out


def exec_in(
    container: Container,
    *,
    process_file: str | None = None,
    args: Sequence[str] = (),
    env: Sequence[str] = (),
    cwd: str | None = None,
    user: str | None = None,
    additional_gids: Sequence[str] = (),
    tty: bool = False,
    caps: Sequence[str] = (),
    no_new_privs: bool = False,
    detach: bool = False,
    console_socket: str | None = None,
    pid_file: str | None = None,
    preserve_fds: int = 0,
    ignore_paused: bool = False,
) -> int:
    """A new process in the container (``runc exec``): the process of
    ``process_file`` (OCI process JSON), or the container's own process with
    ``args`` and the other arguments changed.  It joins the container's
    namespaces and cgroup, and gets its capabilities, seccomp filter and
    rlimits from the process given.  With ``detach`` it is left running (a child
    of the caller) and 0 is returned; else its exit status (128+N for a signal
    N), signals to this process forwarded to it."""
    from pynsbind import oci, process

    status = container.status
    allowed = ALLOWED["exec"] | ({"paused"} if ignore_paused else set())
    if status not in allowed:
        raise ContainerError(f"cannot exec in container {container.id}: it is {status}")
    config = container.config
    if process_file is not None:
        try:
            with open(process_file, "rb") as f:
                proc_doc = json.load(f)
        except (OSError, ValueError) as exc:
            raise ContainerError(f"--process {process_file}: {exc}") from None
    else:
        if not args:
            raise ContainerError("exec: give a command (or --process FILE)")
        proc_doc = dict(config.get("process") or {})
        proc_doc["args"] = list(args)
        proc_doc["terminal"] = tty
        if env:
            proc_doc["env"] = [*(proc_doc.get("env") or []), *env]
        if cwd is not None:
            proc_doc["cwd"] = cwd
        if user is not None:
            uid, _, gid = user.partition(":")
            if not uid.isdigit() or (gid and not gid.isdigit()):
                raise ContainerError(f"exec: --user {user!r} is not UID[:GID]")
            proc_doc["user"] = {"uid": int(uid), "gid": int(gid or 0)}
        if additional_gids:
            if not all(g.isdigit() for g in additional_gids):
                raise ContainerError("exec: --additional-gids takes numbers")
            user_doc = dict(proc_doc.get("user") or {})
            user_doc["additionalGids"] = [int(g) for g in additional_gids]
            proc_doc["user"] = user_doc
        if caps:
            sets = dict(proc_doc.get("capabilities") or {})
            for key in ("bounding", "effective", "permitted", "inheritable", "ambient"):
                have = list(sets.get(key) or [])
                sets[key] = have + [c for c in caps if c not in have]
            proc_doc["capabilities"] = sets
        if no_new_privs:
            proc_doc["noNewPrivileges"] = True
    pidfd = container.pidfd()
    try:
        spec = oci.process_spec(
            proc_doc, config, pid=container.pid, pidfd=pidfd, container_id=container.id
        )
        if preserve_fds:
            spec = spec.replace(pass_fds=tuple(range(3, 3 + preserve_fds)))
        cgroup = container.cgroup()
        if cgroup is not None:
            # the container's cgroup as create made it (the caller's choice of path)
            spec = spec.replace(cgroup=cgroup, resources=None)
        if console_socket is not None and not spec.terminal:
            raise ContainerError("--console-socket given but the process has no terminal")
        proc = process.spawn(spec)
    finally:
        os.close(pidfd)
    terminal = spec.terminal
    try:
        if terminal and console_socket is not None:
            assert proc.terminal is not None
            _send_terminal(console_socket, proc.terminal.fileno())
            proc.terminal.close()
        if pid_file is not None:
            _write_atomic(os.path.abspath(pid_file), f"{proc.pid}".encode(), 0o644)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if detach:
        proc.release()  # left running: reaped by a subreaper once this process exits
        return 0
    if terminal and console_socket is None:
        return _relay_terminal(proc)
    rc = proc.wait()
    return 128 - rc if rc < 0 else rc


def _relay_terminal(proc: Any) -> int:
    """Copy between this process's stdio and the container's terminal until the
    process ends (this terminal in raw mode meanwhile)."""
    import selectors
    import termios
    import tty

    assert proc.terminal is not None
    master = proc.terminal.fileno()
    saved = None
    if os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0)
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(master, selectors.EVENT_READ)
            sel.register(0, selectors.EVENT_READ)
            while True:
                for key, _ in sel.select(0.1):
                    try:
                        data = os.read(key.fd, 65536)
                    except OSError:
                        data = b""
                    if key.fd == 0:
                        if not data:
                            sel.unregister(0)
                        else:
                            os.write(master, data)
                    elif data:
                        os.write(1, data)
                    else:
                        sel.unregister(master)
                if proc.poll() is not None and not sel.get_map().get(master):
                    break
                if proc.poll() is not None:
                    try:
                        data = os.read(master, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        break
                    os.write(1, data)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
    rc: int = proc.wait()
    return 128 - rc if rc < 0 else rc


class _Undo:
    """What a failing create must take back, in reverse order."""

    def __init__(self) -> None:
        self.steps: list[Any] = []

    def add(self, step: Any, *, first: bool = False) -> None:
        if first:
            self.steps.insert(0, step)
        else:
            self.steps.append(step)

    def clear(self) -> None:
        self.steps = []

    def run(self) -> None:
        for step in self.steps:
            try:
                step()
            except Exception:
                continue
        self.steps = []


def _has_hooks(hooks: Any) -> bool:
    return any(
        (
            hooks.prestart,
            hooks.create_runtime,
            hooks.create_container,
            hooks.start_container,
            hooks.poststart,
            hooks.poststop,
        )
    )


def _json_plain(text: str) -> bool:
    """Whether ``text`` is written in JSON as it is (the launcher writes such
    strings between quotes, unescaped)."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def _keep_plan(key: bytes, container: Container, loaded: Any, spec: Any, spawned: Any) -> None:
    """Keep what made ``container`` (pynsbind._replay.KeptContainer) under
    ``key``, when the launcher can make the next one alike: no hook, a plan it
    can replay (no terminal, no fd but stdio, the init, the gate and the
    cgroup's), a cgroup made by writes (and a device program) alone, paths it
    can write into JSON as they are.  Anything else keeps nothing."""
    from pynsbind import _replay, cgroups, process
    from pynsbind.oci import cgroup_path

    if _has_hooks(loaded.hooks) or (isinstance(spec.cgroup, str) and spawned.cgroup is None):
        return  # (a rootless container without the cgroup its config names)
    state = container._state
    data = process.plan_data(spawned, gated=True)
    _, _, _, _, ops, pacts, slots = data
    if not _replay.replayable(ops, pacts, gated=True) or not _replay.wipes_fit(ops):
        return
    rel, cgroup_id, hierarchies = "", False, []
    cg = spawned.cgroup
    names: dict[str, int] = {}
    conditions = _replay.source_conditions(_replay.CONTAINER_SOURCES)
    if cg is not None:
        h = cg.host
        rel = cg.path
        parent = rel.rpartition("/")[0]
        writes = cgroups.creation_writes(spec.resources, h, parent)
        if writes is None:
            return
        hierarchies = writes
        for i, hier in enumerate(h.hierarchies):
            names[hier.name] = i
            where = hier.dir(parent)
            conditions.append(("stat", where, os.stat(where).st_mode))
        if cgroup_path(loaded.config, container_id=None) is None:
            # the container's own cgroup, named by its id
            if not rel.endswith("/" + container.id):
                return
            rel, cgroup_id = rel[: len(rel) - len(container.id)], True
        if not all(_json_plain(b) for b, _, _ in hierarchies) or not _json_plain(rel):
            return
    kinds: list[tuple[bytes, int]] = []
    for name in slots:
        if name in _replay.SLOT_KINDS:
            kinds.append((_replay.SLOT_KINDS[name], -1))
        elif cg is not None and name in ("cgroup", "cgv2"):
            v2 = [i for i, hier in enumerate(cg.host.hierarchies) if hier.version == 2]
            if len(v2) != 1:
                return
            kinds.append((b"d" if name == "cgroup" else b"p", v2[0]))
        elif cg is not None and name.startswith("cgv1:") and name[5:] in names:
            kinds.append((b"p", names[name[5:]]))
        else:
            return
    if os.geteuid() != 0:
        conditions.append(("env", "XDG_RUNTIME_DIR", os.environ.get("XDG_RUNTIME_DIR")))
    fixed = {k: state[k] for k in ("bundle", "rootfs", "owner", "annotations", "hooks")}
    kept = _replay.Kept(data, conditions, True, _replay.installed_init())
    _replay.store_container(
        key,
        _replay.KeptContainer(
            kept,
            os.path.join(loaded.path, "config.json"),
            loaded.raw,  # (the bytes the container was made from)
            container.root,
            json.dumps(fixed)[1:-1],
            rel,
            cgroup_id,
            hierarchies,
            kinds,
        ),
    )


def _cgroup_optional(config: Any, resources: Any) -> bool:
    """Whether a container may do without the cgroup it could not make, as
    runc's rootless containers do: made by a user other than the initial user
    namespace's root, its config names no ``linux.cgroupsPath`` and asks for
    no limit but the device rules (which a user namespace holds anyway: no
    mknod, only the host's nodes this user could open already)."""
    from pynsbind.oci import cgroup_path

    if os.geteuid() == 0:
        try:
            with open("/proc/self/uid_map") as f:
                if f.read().split() == ["0", "0", "4294967295"]:
                    return False  # root of the initial user namespace
        except OSError:
            return False
    if cgroup_path(config, container_id=None) is not None:
        return False
    return resources is None or resources.controllers() <= {"devices"}


def _make_root(root: str) -> None:
    try:
        os.makedirs(root, 0o700, exist_ok=True)
    except OSError as exc:
        raise ContainerError(f"root {root}: {exc.strerror}", exc.errno or 0) from None
    st = os.stat(root)
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise ContainerError(
            f"root {root} must belong to uid {os.geteuid()} and be writable by it alone"
        )


def _remove_tree(directory: str) -> None:
    import shutil

    shutil.rmtree(directory, ignore_errors=True)


def _owner() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (KeyError, ImportError):
        return str(os.geteuid())


def _wait_gone(pid: int, start: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while _start_time(pid) == start and time.monotonic() < deadline:
        time.sleep(0.002)


def _send_terminal(path: str, master: int) -> None:
    """Send the terminal's master end to the console socket at ``path``
    (SCM_RIGHTS), as runc does for conmon and containerd's shim."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(path)
        except OSError as exc:
            raise ContainerError(f"console socket {path}: {exc.strerror}", exc.errno or 0) from None
        socket.send_fds(sock, [b"/dev/ptmx"], [master])


def _hook_state(container: Container, status: str, pid: int) -> bytes:
    doc = container.state()
    doc["status"] = status
    doc["pid"] = pid
    return json.dumps(doc).encode()


def _run_hook(
    container: Container, hook: Any, *, warn_only: bool = False, status: str = "", pid: int = 0
) -> None:
    """Run one hook in the runtime's namespaces, the state on its stdin."""
    import subprocess

    data = _hook_state(container, status or container.status, pid or container.pid)
    argv = list(hook.args) or [hook.path]
    try:
        res = subprocess.run(
            argv,
            executable=hook.path,
            input=data,
            env=dict(e.split("=", 1) for e in hook.env) if hook.env else {},
            timeout=hook.timeout,
            capture_output=True,
            check=False,
        )
        failure = None
        if res.returncode != 0:
            failure = f"exit status {res.returncode}: {res.stderr.decode(errors='replace').strip()}"
    except subprocess.TimeoutExpired:
        failure = f"timed out after {hook.timeout} seconds"
    except OSError as exc:
        failure = exc.strerror or str(exc)
    if failure is None:
        return
    message = f"hook {hook.path}: {failure}"
    if warn_only:
        import warnings

        warnings.warn(message, RuntimeWarning, stacklevel=2)
        return
    raise ContainerError(message)


def _run_hook_inside(container: Container, hook: Any, pid: int = 0) -> None:
    """Run one hook in the container's namespaces (createContainer,
    startContainer): joined through /proc/PID/ns, the state on its stdin."""
    from pynsbind import process
    from pynsbind.flags import Namespace
    from pynsbind.spec import Spec

    pid = pid or container.pid
    join = {}
    for kind in Namespace:
        path = f"/proc/{pid}/ns/{kind.proc_name}"
        try:
            if os.readlink(path) != os.readlink(f"/proc/self/ns/{kind.proc_name}"):
                join[kind] = path
        except OSError:
            continue
    spec = Spec(
        # the path is what runs: the engine takes argv[0] as the file (hook.args[0], the
        # name the hook sees, is lost)
        args=[hook.path, *hook.args[1:]],
        env=dict(e.split("=", 1) for e in hook.env) if hook.env else {},
        namespaces=Namespace(0),
        join=join,
        seccomp="unconfined",
        capabilities=None,
    )
    data = _hook_state(container, "created", pid)
    try:
        res = process.run(spec=spec, input=data, capture_output=True, timeout=hook.timeout)
    except (SpawnError, SpecError) as exc:
        raise ContainerError(f"hook {hook.path}: {exc}") from None
    except Exception as exc:
        raise ContainerError(f"hook {hook.path}: {exc}") from None
    if res.returncode != 0:
        err = res.stderr.decode(errors="replace").strip() if isinstance(res.stderr, bytes) else ""
        raise ContainerError(f"hook {hook.path}: exit status {res.returncode}: {err}")


def _setup_hooks(container: Container, hooks: Any, pid: int) -> None:
    """At the engine's setup point (namespaces and mounts made, before
    pivot_root): prestart and createRuntime hooks in the runtime's namespaces,
    createContainer hooks in the container's."""
    for hook in (*hooks.prestart, *hooks.create_runtime):
        _run_hook(container, hook, status="creating", pid=pid)
    for hook in hooks.create_container:
        _run_hook_inside(container, hook, pid)


def list_containers(root: str | None = None) -> Iterator[Container]:
    """Every container under ``root`` (sorted by id)."""
    root = root or default_root()
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return
    for name in names:
        try:
            yield Container.load(name, root=root)
        except ContainerError:
            continue
