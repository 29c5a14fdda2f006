"""pynsbind.cgroups: cgroups on unified (v2), hybrid and legacy (v1) hosts.

- :func:`mode` names the host's layout; :func:`host` describes it (cached).
- :class:`Cgroup` creates, opens, fills, limits, watches, freezes, kills and
  removes one cgroup, which spans every hierarchy of the host (the cgroup2 tree
  and each v1 hierarchy with controllers) under the same relative path, always
  taken from the root of each hierarchy (or of the delegated subtree, for an
  unprivileged caller), never from the caller's own cgroup.
- :class:`~pynsbind.resources.Resources` (also ``pynsbind.Resources``)
  holds limits, and device rules (:class:`~pynsbind.devices.DeviceRule`,
  :data:`DEFAULT_DEVICE_RULES`); :func:`device_host` is the part of a host
  that enforces device rules alone.
- :func:`cleanup` removes what a dead spawner left behind.

``Spec(resources=..., cgroup=...)`` uses all of this through the hooks at the end
of this module (called by the spec, the plan compiler and spawn()).  See
docs/cgroups.md.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import os
import signal as _signal
import time

from pynsbind._ffi import ffi, lib
from pynsbind._record import record, replace
from pynsbind.cgroups import _bpf, _v1, _v2
from pynsbind.cgroups._common import (
    DIR_FLAGS,
    Batch,
    CpuStats,
    Dirs,
    IoDeviceStats,
    MemoryStats,
    PidsStats,
    Stats,
    batch_error,
    read_text,
    write_file,
)
from pynsbind.cgroups._detect import Hierarchy, Host, detect, host, mode
from pynsbind.cgroups._events import Event, EventStream
from pynsbind.cgroups._program import Program, compile_program
from pynsbind.devices import (
    DEFAULT_DEVICE_RULES,
    DeviceRule,
    rules_for_nodes,
    v1_update_writes,
)
from pynsbind.errors import strerror
from pynsbind.resources import Resources
from pynsbind.resources import normalize_cgroup_path as normalize

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType
    from typing import Any

__all__ = [
    "AUTO_PREFIX",
    "DEFAULT_DEVICE_RULES",
    "AttachPoint",
    "Cgroup",
    "CpuStats",
    "DeviceRule",
    "Event",
    "EventStream",
    "Hierarchy",
    "Host",
    "IoDeviceStats",
    "MemoryStats",
    "PidsStats",
    "Resources",
    "Stats",
    "attach_points",
    "check_placement",
    "check_resources",
    "cleanup",
    "creation_writes",
    "detect",
    "device_host",
    "host",
    "mode",
    "normalize",
    "open_attach_fds",
    "rules_for_nodes",
]

#: the name of the cgroups pynsbind makes for containers: AUTO_PREFIX + "PID-START-N"
AUTO_PREFIX = "pynsbind-c-"
#: the extended attribute naming the creator ("PID START") of a cgroup made at a
#: path the caller chose
MARKER = "user.pynsbind.creator"
_NAME_MAX = 255

_counter = itertools.count(1)
#: Cgroup.create(None, resources, host=...) done once the general way, by
#: (resources, the host argument): (euid, host, dirs)
_fast: dict[tuple[Resources | None, Host | None], tuple[int, Host, Dirs]] = {}
_start: tuple[int, int] = (-1, -1)


def _proc_start(pid: int | str) -> int | None:
    """Field 22 of /proc/PID/stat: the start time in clock ticks after boot."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        return int(data[data.rindex(b")") + 2 :].split()[19])
    except (ValueError, IndexError):
        return None


def _creator() -> tuple[int, int]:
    """(pid, start time) of this process (read again in a forked child)."""
    global _start
    if _start[0] < 0:
        _start = (os.getpid(), _proc_start("self") or 0)
    return _start


def _forked() -> None:
    global _start
    _start = (-1, -1)


os.register_at_fork(after_in_child=_forked)


def check_placement(h: Host, rel: str, *, callers_choice: bool = False) -> None:
    """Refuse a path inside the subtree that holds this process in any hierarchy:
    whoever put the process there (systemd, the machine's own manager) owns it.
    With ``callers_choice`` (the path was named by whoever started this process,
    as podman names an OCI runtime's ``cgroupsPath`` next to its conmon's), only
    the cgroup of this process and those above it are refused."""
    for hier in h.hierarchies:
        if not hier.own:
            continue
        if callers_choice:
            if rel == "" or hier.own == rel or hier.own.startswith(rel + "/"):
                raise ValueError(
                    f"cgroup path {rel!r} holds this process in {hier.mount} (/{hier.own}): "
                    "a container needs a cgroup of its own"
                )
            continue
        top = hier.own.split("/", 1)[0]
        if rel == top or rel.startswith(top + "/"):
            raise ValueError(
                f"cgroup path {rel!r} is inside {top!r}, the subtree that holds this process "
                f"in {hier.mount} (/{hier.own}): pynsbind never places cgroups there; use a "
                "path of your own such as 'pynsbind/NAME'"
            )


def _ensure_enabled(directory: str, controllers: frozenset[str] | set[str]) -> None:
    """Make ``controllers`` available to the children of a cgroup2 directory
    (``+ctrl`` into its cgroup.subtree_control), writing only what is missing."""
    if not controllers:
        return
    try:
        with open(directory + "/cgroup.subtree_control") as f:
            enabled = set(f.read().split())
    except OSError as exc:
        raise OSError(
            exc.errno, f"read {directory}/cgroup.subtree_control: {strerror(exc.errno or 0)}"
        ) from None
    missing = sorted(set(controllers) - enabled)
    if not missing:
        return
    try:
        write_file(directory + "/cgroup.subtree_control", " ".join("+" + c for c in missing))
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise OSError(
                exc.errno,
                f"cannot enable {' '.join(missing)} in {directory}: it holds processes "
                "(cgroup v2 allows controllers only above leaves)",
            ) from None
        raise


def _rmdir(path: str) -> int:
    """rmdir; 0 or the errno (ENOENT counts as done)."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return 0
    except OSError as exc:
        return exc.errno or errno.EIO
    return 0


def _subdirs_bottom_up(path: str) -> list[str]:
    out = []
    for dirpath, _dirnames, _ in os.walk(path, topdown=False):
        if dirpath != path:
            out.append(dirpath)
    return out


class Cgroup:
    """One cgroup, at the same relative path in every hierarchy of the host.

    Made by :meth:`create` or :meth:`open`, not by its constructor.  Objects
    compare and hash by identity.  A Cgroup made by ``create`` is *owned*: used
    as a context manager it kills what is left in it and removes it on exit; an
    opened one is left as it was."""

    path: str
    host: Host
    owned: bool
    _dirs_: tuple[tuple[Hierarchy, str], ...] | None
    _made: list[str]
    _auto: bool
    _relb: bytes
    _hd: Dirs

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("use Cgroup.create(path, resources) or Cgroup.open(path)")

    @classmethod
    def _make(cls, rel: str, h: Host, *, owned: bool, made: list[str] | None = None) -> Cgroup:
        self = object.__new__(cls)
        self.path = rel
        self.host = h
        self.owned = owned
        self._dirs_ = None
        self._made = made or []
        self._relb = os.fsencode(rel)
        self._hd = _host_dirs(h)
        return self

    @property
    def hierarchy_dirs(self) -> tuple[tuple[Hierarchy, str], ...]:
        """(hierarchy, directory) of this cgroup in each hierarchy."""
        return self._dirs

    @property
    def _dirs(self) -> tuple[tuple[Hierarchy, str], ...]:
        """(hierarchy, directory) of this cgroup in each hierarchy."""
        if self._dirs_ is None:
            self._dirs_ = tuple((hier, hier.dir(self.path)) for hier in self.host.hierarchies)
        return self._dirs_

    # -- making --

    @classmethod
    def create(
        cls,
        path: str | None = None,
        resources: Resources | None = None,
        *,
        host: Host | None = None,
        mark: bool = True,
        callers_choice: bool = False,
    ) -> Cgroup:
        """Create the cgroup ``path`` (relative to the root of each hierarchy; None:
        a fresh name ``pynsbind-c-PID-START-N``) in every hierarchy, with
        ``resources`` applied, each directory's limits in one batch of writes.
        Bad input raises ValueError (SpecError) and creates nothing; so does an
        existing path (FileExistsError).  A named cgroup is marked as this
        process's (:func:`cleanup` removes it once this process is gone) unless
        ``mark`` is false: a cgroup meant to outlive its maker, such as an OCI
        container's, which its ``delete`` removes.  ``callers_choice``: the path
        may be in the subtree that holds this process (see
        :func:`check_placement`)."""
        if path is None:
            fast = _fast.get((resources, host))
            if fast is not None and fast[0] == os.geteuid():
                # a fresh cgroup with limits already checked and laid out: one C
                # call; on any failure, undo and take the general way below
                _, h, cdirs = fast
                pid, start = _creator()
                rel = f"{AUTO_PREFIX}{pid}-{start}-{next(_counter)}"
                where = ffi.new("int[2]")
                if (
                    lib.nsb_cg_create(
                        cdirs.arr, cdirs.n, os.fsencode(rel), ffi.NULL, where, where + 1
                    )
                    == 0
                ):
                    cg = cls._make(rel, h, owned=True)
                    cg._auto = True
                    return cg
                for hier in reversed(h.hierarchies[: where[0] + (where[1] != -1)]):
                    _rmdir(hier.dir(rel))
        cg, _fds = cls._create(
            path, resources, host, keep=False, mark=mark, callers_choice=callers_choice
        )
        if path is None and cg.host.hierarchies:
            laid_out = compile_program(resources, cg.host).dirs(cg.host, "")
            if laid_out is not None:
                _fast[(resources, host)] = (os.geteuid(), cg.host, laid_out)
        return cg

    @classmethod
    def create_for_spawn(
        cls, path: str | None, resources: Resources | None, *, host: Host | None = None
    ) -> tuple[Cgroup, dict[str, int]]:
        """:meth:`create`, also returning each hierarchy's directory fd (by
        hierarchy name, close-on-exec; the caller closes them): what a spawner
        needs to place a new process (CLONE_INTO_CGROUP, cgroup.procs)."""
        return cls._create(path, resources, host, keep=True)

    @classmethod
    def _create(
        cls,
        path: str | None,
        resources: Resources | None,
        h: Host | None,
        *,
        keep: bool,
        mark: bool = True,
        callers_choice: bool = False,
    ) -> tuple[Cgroup, dict[str, int]]:
        """create(); with ``keep``, also the open directory fd of each hierarchy."""
        if resources is not None and not isinstance(resources, Resources):
            raise TypeError(
                f"resources must be a pynsbind.Resources, not {type(resources).__name__}"
            )
        h = h or host()
        if h.problem is not None or not h.hierarchies:
            h.check()
        prog = compile_program(resources, h)
        auto = path is None
        rel = "" if path is None else normalize(path)
        if not auto:
            check_placement(h, rel, callers_choice=callers_choice)
        v2 = h.v2
        if v2 is not None and prog.v2_controllers:
            _ensure_enabled(v2.base, prog.v2_controllers)
        made: list[str] = []
        created: list[str] = []
        fds: dict[str, int] = {}
        all_made = False  # the fast path made every directory (created stays empty)
        try:
            for attempt in itertools.count():
                if auto:
                    pid, start = _creator()
                    rel = f"{AUTO_PREFIX}{pid}-{start}-{next(_counter)}"
                try:
                    all_made = cls._mkdirs(h, rel, prog, created, made, fds, keep)
                    break
                except FileExistsError as exc:
                    if auto and not created and attempt < 100:
                        continue
                    raise FileExistsError(
                        errno.EEXIST, f"cgroup {rel} already exists: {exc.filename}", exc.filename
                    ) from None
            if not auto and mark:
                _mark([hier.dir(rel) for hier in h.hierarchies] + made)
        except BaseException:
            if all_made:
                created = [hier.dir(rel) for hier in h.hierarchies]
            for fd in fds.values():
                os.close(fd)
            for d in reversed(created):
                _rmdir(d)
            for d in reversed(made):
                _rmdir(d)
            raise
        cg = cls._make(rel, h, owned=True, made=made)
        cg._auto = auto
        return cg, fds

    @staticmethod
    def _mkdirs(
        h: Host,
        rel: str,
        prog: Program,
        created: list[str],
        made: list[str],
        fds: dict[str, int],
        keep: bool,
    ) -> bool:
        """mkdir + limits in every hierarchy, in one C call (nsb_cg_create); the
        slow path below handles what that call cannot: a file still to choose,
        a parent removed meanwhile, a parent's cpuset changed since it was read.
        True when the fast path made every directory (``created`` is then left
        empty: the caller works the list out only if it must roll back)."""
        parent_rel = rel.rpartition("/")[0]
        hs = h.hierarchies
        if parent_rel:
            for hier in hs:
                _make_parents(hier, parent_rel, made)
        cdirs = prog.dirs(h, parent_rel)
        if cdirs is not None:
            fdarr = ffi.new("int32_t[]", len(hs)) if keep else ffi.NULL
            where = ffi.new("int[2]")
            relb = os.fsencode(rel)
            if lib.nsb_cg_create(cdirs.arr, cdirs.n, relb, fdarr, where, where + 1) == 0:
                if keep:
                    fds.update((hier.name, fdarr[i]) for i, hier in enumerate(hs))
                return True
            err, i, k = ffi.errno, where[0], where[1]
            if keep:  # the fds C kept: those before i, and i's when it was opened
                for j in range(i + (k >= 0 or k == -3)):
                    os.close(fdarr[j])
            made_now = [hier.dir(rel) for hier in hs[: i + (k != -1)]]
            retry = (
                (k == -1 and err == errno.ENOENT and parent_rel)
                or (k >= 0 and prog.needs_parent(hs[i]))
                or (k == -3 and _stale_program(prog, cdirs.progs[i], err))
            )
            if not retry:
                created.extend(made_now)
                d = hs[i].dir(rel)
                if k == -1:
                    raise OSError(err, f"create {d}: {strerror(err)}", d)
                if k == -2:
                    raise OSError(err, f"open {d}: {strerror(err)}", d)
                if k == -3:
                    raise OSError(err, f"attach the device program to {d}: {strerror(err)}", d)
                raise batch_error(err, d, *cdirs.batches[i].kvs[k])
            for d in reversed(made_now):
                _rmdir(d)
        for hier in hs:
            Cgroup._mkdir_slow(hier, rel, parent_rel, prog, created, made, fds, keep)
        return False

    @staticmethod
    def _mkdir_slow(
        hier: Hierarchy,
        rel: str,
        parent_rel: str,
        prog: Program,
        created: list[str],
        made: list[str],
        fds: dict[str, int],
        keep: bool,
    ) -> None:
        d, parent = hier.dir(rel), hier.dir(parent_rel)
        for tries in range(3):
            try:
                os.mkdir(d, 0o755)
                break
            except FileNotFoundError:
                # a parent went away (another process removed it when empty)
                if not parent_rel or tries == 2:
                    raise
                _make_parents(hier, parent_rel, made)
        created.append(d)
        dfd = os.open(d, DIR_FLAGS)
        try:
            if prog.bpf is not None and hier.name == prog.bpf_hier:
                _bpf.attach(dfd, prog.bpf, d)
            if prog.needs_parent(hier):
                prog.forget_parent(hier, parent)  # read the parent's cpuset again
            prog.batch_at(hier, dfd, parent).run(dfd, d)
        finally:
            if keep:
                fds[hier.name] = dfd
            else:
                os.close(dfd)

    @classmethod
    def open(cls, path: str, *, host: Host | None = None, callers_choice: bool = False) -> Cgroup:
        """An existing cgroup (it must exist in every hierarchy of the host).  It
        is not owned: leaving its ``with`` block does nothing to it.
        ``callers_choice`` as for :meth:`create`."""
        h = host or _host()
        h.check()
        rel = normalize(path)
        check_placement(h, rel, callers_choice=callers_choice)
        missing = [hier.mount for hier in h.hierarchies if not os.path.isdir(hier.dir(rel))]
        if len(missing) == len(h.hierarchies):
            raise FileNotFoundError(errno.ENOENT, f"no cgroup {rel} in any hierarchy", rel)
        if missing:
            raise FileNotFoundError(
                errno.ENOENT, f"cgroup {rel} is missing from {', '.join(missing)}", rel
            )
        cg = cls._make(rel, h, owned=False)
        cg._auto = False
        return cg

    # -- reading --

    def __repr__(self) -> str:
        own = "owned" if self.owned else "not owned"
        return f"<pynsbind.cgroups.Cgroup {self.path!r} ({own}, {len(self._dirs)} hierarchies)>"

    @property
    def dirs(self) -> dict[str, str]:
        """Hierarchy name -> the directory of this cgroup in it."""
        return {hier.name: d for hier, d in self._dirs}

    @property
    def v2_dir(self) -> str | None:
        """This cgroup's directory in the cgroup2 tree, if the host has one."""
        return self._v2_dir()

    def controller_dir(self, controller: str) -> tuple[Hierarchy, str] | None:
        """The hierarchy that holds ``controller`` on this host, and this
        cgroup's directory in it (None when the host lacks the controller)."""
        return self._home_dir(controller)

    def _v2_dir(self) -> str | None:
        for hier, d in self._dirs:
            if hier.version == 2:
                return d
        return None

    def _home_dir(self, controller: str) -> tuple[Hierarchy, str] | None:
        home = self.host.home(controller)
        if home is None:
            return None
        return home, home.dir(self.path)

    def exists(self) -> bool:
        return any(os.path.isdir(d) for _, d in self._dirs)

    def procs(self, recursive: bool = True) -> list[int]:
        """The processes in this cgroup (and its descendants), in any hierarchy."""
        pids: set[int] = set()
        for _, d in self._dirs:
            dirs = [d, *_subdirs_bottom_up(d)] if recursive else [d]
            for sub in dirs:
                try:
                    with open(sub + "/cgroup.procs") as f:
                        pids.update(int(x) for x in f.read().split())
                except OSError:
                    continue
        return sorted(pids)

    def populated(self) -> bool:
        """Whether any process is in this cgroup or below."""
        v2 = self._v2_dir()
        if v2 is not None and self.host.mode == "unified":
            return _v2.is_populated(v2)
        return bool(self.procs())

    def stats(self) -> Stats:
        """Memory (current, peak, limit hits, OOM events and kills), CPU (usage,
        throttling), pids (current, limit, failed forks) and io per device."""
        mem = self._home_dir("memory")
        memory = MemoryStats()
        if mem is not None:
            memory = (_v2 if mem[0].version == 2 else _v1).memory_stats(mem[1])
        cpu_v1, acct_v1 = self.host.v1("cpu"), self.host.v1("cpuacct")
        v2 = self._v2_dir()
        if cpu_v1 is not None or acct_v1 is not None:
            cpus = _v1.cpu_stats(
                cpu_v1.dir(self.path) if cpu_v1 else None,
                acct_v1.dir(self.path) if acct_v1 else None,
            )
        elif v2 is not None:
            cpus = _v2.cpu_stats(v2)  # cpu.stat is there even without the cpu controller
        else:
            cpus = CpuStats()
        pids = self._home_dir("pids")
        pstats = PidsStats()
        if pids is not None:
            pstats = (_v2 if pids[0].version == 2 else _v1).pids_stats(pids[1])
        io = self._home_dir("io")
        iostats: tuple[IoDeviceStats, ...] = ()
        if io is not None:
            iostats = (_v2 if io[0].version == 2 else _v1).io_stats(io[1])
        return Stats(memory=memory, cpu=cpus, pids=pstats, io=iostats)

    # -- changing --

    def add(self, process: Any) -> None:
        """Move a process (a pid, or anything with a ``pid``) into this cgroup, in
        every hierarchy."""
        pid = process if type(process) is int else getattr(process, "pid", None)
        if type(pid) is not int or pid <= 0:
            raise TypeError(f"expected a pid or a process, not {process!r}")
        hd = self._hd
        failed = ffi.new("int *")
        if lib.nsb_cg_attach(hd.arr, hd.n, self._relb, pid, failed) < 0:
            err = ffi.errno
            d = self._dirs[failed[0]][1]
            raise OSError(err, f"move {pid} into {d}: {strerror(err)}", d + "/cgroup.procs")

    def update(self, resources: Resources) -> None:
        """Apply ``resources`` (checked first: bad input writes nothing).

        Device rules replace the cgroup's: on v1 from a deny-by-default list
        to another by removing and adding exceptions (no reset; what both
        allow stays allowed), otherwise by a reset and the new rules (which v1
        refuses for a cgroup with child cgroups); on cgroup v2 the new program
        takes the place of pynsbind's old one (atomically since Linux 5.6)."""
        if not isinstance(resources, Resources):
            raise TypeError(f"expected a pynsbind.Resources, not {type(resources).__name__}")
        prog = compile_program(resources, self.host)
        v2 = self.host.v2
        if v2 is not None and prog.v2_controllers:
            for anc in _ancestors(v2, self.path):
                _ensure_enabled(anc, prog.v2_controllers)
        for hier, d in self._dirs:
            bpf = prog.bpf is not None and hier.name == prog.bpf_hier
            if hier.name not in prog.kvs and hier.name not in prog.choices and not bpf:
                continue
            dfd = os.open(d, DIR_FLAGS)
            try:
                if bpf:
                    _bpf.replace(dfd, prog.bpf, d)  # type: ignore[arg-type]
                kvs = prog.resolved(hier, dfd)
                if hier.name == prog.devices_v1:
                    _update_v1_devices(d, dfd, resources, kvs[: prog.n_devices])
                    kvs = kvs[prog.n_devices :]
                if hier.version == 1:
                    kvs = _v1.memory_order(d, kvs)
                elif resources.cpu_period is not None and resources.cpu_quota is None:
                    kvs = [_keep_quota(d, kv) for kv in kvs]
                Batch(kvs).run(dfd, d)
            finally:
                os.close(dfd)

    def freeze(self, timeout: float = 10.0) -> None:
        """Stop every process of the cgroup (the v1 freezer where the host has
        one, as runc does on v1 and hybrid hosts, and cgroup.freeze where it
        has a cgroup2 directory) and wait until done."""
        self._freezer(True, timeout)

    def thaw(self, timeout: float = 10.0) -> None:
        """Let the processes run again."""
        self._freezer(False, timeout)

    @property
    def frozen(self) -> bool:
        fz = self._v1_freezer()
        if fz is not None and _v1.state(fz) == "FROZEN":
            return True
        v2 = self._v2_dir()
        return v2 is not None and _v2.is_frozen(v2)

    def _v1_freezer(self) -> str | None:
        """The v1 freezer directory of a hybrid or legacy host, where this cgroup
        has one: what runc freezes there, and what tools read (freezer.state)."""
        fz = self._home_dir("freezer")
        if fz is None or fz[0].version != 1 or not os.path.isdir(fz[1]):
            return None
        return fz[1]

    def _freezer(self, on: bool, timeout: float) -> None:
        """Freeze (or thaw) through every freezer the cgroup has: cgroup.freeze
        (cgroup.events says frozen), then the v1 one (freezer.state, as runc);
        thawed in the reverse order.  (The other order never completes: a task
        the v1 freezer holds cannot stop for cgroup.freeze.)"""
        fz, v2 = self._v1_freezer(), self._v2_dir()
        if fz is None and v2 is None:
            raise OSError(errno.ENOTSUP, "this host has no freezer (no cgroup v2, no v1 freezer)")
        if on:
            if v2 is not None:
                _v2.freeze(v2, True, timeout)
            if fz is not None:
                _v1.freeze(fz, True, timeout)
            return
        if fz is not None:
            _v1.freeze(fz, False, timeout)
        if v2 is not None:
            _v2.freeze(v2, False, timeout)

    def kill(self, signal: int = _signal.SIGKILL, timeout: float = 10.0) -> None:
        """SIGKILL every process of the cgroup and its descendants, and wait until
        it is empty: through cgroup.kill where the kernel has it, otherwise by
        signalling each process (under the freezer, so none can fork meanwhile)
        until none is left.  Another ``signal`` is sent to each process once."""
        if signal != _signal.SIGKILL:
            for pid in self.procs():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal)
            return
        v2 = self._v2_dir()
        # a v1 freezer holds even killed tasks: then signal under the freezers
        # and thaw (_kill_all), not cgroup.kill alone
        fz = self._v1_freezer()
        v1_frozen = fz is not None and _v1.state(fz) != "THAWED"
        via_kernel = not v1_frozen and v2 is not None and os.path.isdir(v2) and _v2.kill(v2)
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            pids = self.procs()
            if not pids:
                return
            if not via_kernel:
                self._kill_all(pids)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"kill {self.path}: processes {pids[:8]} remain after {timeout}s"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
            if via_kernel and delay >= 0.05:
                via_kernel = False  # v1-only members (moved by someone): signal them

    def _kill_all(self, pids: list[int]) -> None:
        """SIGKILL each process, frozen meanwhile where a freezer is at hand (so
        that none forks a child the list misses)."""
        try:
            self._freezer(True, 1.0)
            pids = self.procs()
        except (OSError, TimeoutError):
            pass  # no freezer, or a task that will not stop: signal anyway
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, _signal.SIGKILL)
        # v1 delivers the SIGKILL on thaw (v2 kills frozen tasks at once): thawed
        # even after a freeze that failed half-way, or one made by someone else
        with contextlib.suppress(OSError, TimeoutError):
            self._freezer(False, 1.0)

    def delete(self, timeout: float = 10.0) -> None:
        """Remove the cgroup (and cgroups below it) from every hierarchy, waiting
        up to ``timeout`` seconds for its processes to leave and retrying EBUSY.
        Parents that :meth:`create` made are removed too when empty."""
        hd = self._hd
        failed = ffi.new("int *")
        if lib.nsb_cg_rmdir(hd.arr, hd.n, self._relb, failed) < 0:
            err, first = ffi.errno, failed[0]
            d = self._dirs[first][1]
            if err != errno.EBUSY:
                raise OSError(err, f"remove {d}: {strerror(err)}", d)
            # processes still leaving, or cgroups below it: remove those first
            deadline = time.monotonic() + timeout
            for _, d in self._dirs[first:]:
                for sub in [*_subdirs_bottom_up(d), d]:
                    _rmdir_wait(sub, deadline, timeout)
        if self._made:
            for d in reversed(self._made):
                _rmdir(d)
            self._made = []

    def events(self, interval: float = 0.1) -> EventStream:
        """An async iterator of :class:`Event`: populated, frozen, oom and
        oom_kill changes, from now until the cgroup is removed."""
        return EventStream(self, interval)

    # -- context manager --

    def __enter__(self) -> Cgroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.owned and self.exists():
            self.kill()
            self.delete()


# ---- for spawners ------------------------------------------------------------------


@record(frozen=True)
class AttachPoint:
    """How a new process gets into a cgroup in one hierarchy: ``slot`` names the
    fd a spawner holds for it.  With ``clone_into`` (cgroup2, and clone3 with
    CLONE_INTO_CGROUP) it is the cgroup's directory, and the process is born
    there; otherwise it is the cgroup's cgroup.procs, which the spawner writes
    the process's pid into before the process runs anything of its own."""

    slot: str
    hierarchy: Hierarchy
    clone_into: bool


def attach_points(h: Host, clone_into: bool) -> list[AttachPoint]:
    """Where a spawner attaches a container to a cgroup of ``h``: one point per
    hierarchy (slots ``cgroup`` or ``cgv2`` for cgroup2, ``cgv1:NAME`` for v1)."""
    out = []
    for hier in h.hierarchies:
        if hier.version == 2:
            out.append(AttachPoint("cgroup" if clone_into else "cgv2", hier, clone_into))
        else:
            out.append(AttachPoint(f"cgv1:{hier.name}", hier, False))
    return out


def creation_writes(
    resources: Resources | None, h: Host, parent: str
) -> list[tuple[str, list[tuple[str, str]], bytes | None]] | None:
    """What :meth:`Cgroup.create` does to make a cgroup under ``parent`` (a
    path relative to the root of each hierarchy) with ``resources``, as data:
    for each hierarchy of ``h``, its base directory, the (file, value) writes
    into the new directory, in order, and the device program attached to it
    first (cgroup2: its instructions; None for none): nsb_cg_create's
    arguments.  None when the creation needs more than that: a file still to
    choose by looking into a new cgroup."""
    prog = compile_program(resources, h)
    dirs = prog.dirs(h, normalize(parent) if parent else "")
    if dirs is None:
        return None
    return [
        (hier.base, list(b.kvs), prog.bpf if fd >= 0 else None)
        for hier, b, fd in zip(h.hierarchies, dirs.batches, dirs.progs, strict=True)
    ]


def check_resources(resources: Resources | None, h: Host) -> None:
    """Check ``resources`` against ``h`` (SpecError naming the field), as
    :meth:`Cgroup.create` would, without creating anything."""
    compile_program(resources, h)


def open_attach_fds(
    cg: Cgroup, points: Iterable[AttachPoint], dirfds: dict[str, int] | None = None
) -> dict[str, int]:
    """The fds of ``points`` for ``cg``, by slot: its directory for
    CLONE_INTO_CGROUP, its cgroup.procs otherwise.  ``dirfds`` (directory fds of
    each hierarchy, by name, as :meth:`Cgroup.create_for_spawn` gives) are used
    and consumed (closed or returned).  OSError if ``cg`` lacks a hierarchy."""
    dirfds = dict(dirfds or {})
    dirs = cg.dirs
    out: dict[str, int] = {}
    try:
        for point in points:
            name = point.hierarchy.name
            if name not in dirs:
                what = "cgroup v2 directory" if point.hierarchy.version == 2 else name
                raise OSError(errno.ENOENT, f"cgroup {cg.path} has no {what}")
            dfd = dirfds.pop(name, -1)
            if point.clone_into:
                out[point.slot] = dfd if dfd >= 0 else os.open(dirs[name], DIR_FLAGS)
                continue
            try:
                out[point.slot] = os.open(
                    "cgroup.procs" if dfd >= 0 else dirs[name] + "/cgroup.procs",
                    os.O_WRONLY | os.O_CLOEXEC,
                    dir_fd=dfd if dfd >= 0 else None,
                )
            finally:
                if dfd >= 0:
                    os.close(dfd)
    except BaseException:
        for fd in out.values():
            os.close(fd)
        raise
    finally:
        for fd in dirfds.values():
            os.close(fd)
    return out


def _host() -> Host:
    return host()


@functools.lru_cache(maxsize=16)
def device_host(h: Host) -> Host | None:
    """The part of ``h`` that enforces device rules, alone: its v1 devices
    hierarchy on a legacy or hybrid host that has one, else its cgroup2 tree
    (where a BPF program does it), else None; None as well when ``h`` cannot
    make cgroups or is rootless (unprivileged users load no device programs,
    and in a user namespace the kernel refuses device nodes anyway).

    ``Cgroup.create(None, Resources(devices=rules), host=device_host(host()))``
    makes a cgroup in that one hierarchy: the cheap way to confine a container's
    devices when it needs nothing else from cgroups.  The same object comes
    back for the same host (its laid-out writes are cached with it)."""
    if h.problem is not None or h.rootless:
        return None
    home = h.devices_home()
    if home is None:
        return None
    return replace(h, hierarchies=(home,))


def _stale_program(prog: Program, fd: int, err: int) -> bool:
    """After a failed attach by fd: True (take the slow path) when the cached
    program fd is no longer ours, so that it is loaded again."""
    if prog.bpf is None or err not in (errno.EBADF, errno.EINVAL):
        return False
    if not _bpf.stale(prog.bpf, fd):
        return False
    prog.forget_dirs()
    _fast.clear()
    return True


def _update_v1_devices(
    d: str, dfd: int, resources: Resources, fresh: list[tuple[str, str]]
) -> None:
    """update(): the v1 device writes, as a transition from what the cgroup
    has (devices.list) when that avoids a reset (see v1_update_writes)."""
    current = read_text(d + "/devices.list")
    kvs = fresh if current is None else v1_update_writes(current, resources.device_rules or ())
    try:
        Batch(kvs).run(dfd, d)
    except OSError as exc:
        if (
            exc.errno == errno.EINVAL
            and (d + "/devices.") in (exc.filename or "")
            and any(v == "a" for _, v in kvs)
        ):
            raise OSError(
                exc.errno,
                f"reset the device rules of {d}: {strerror(exc.errno)} (cgroup v1 takes no "
                "reset of a cgroup that has child cgroups; update those first, or keep "
                "both the old and the new rules deny-by-default)",
                exc.filename,
            ) from None
        raise


def _host_dirs(h: Host) -> Dirs:
    """The hierarchies' base directories as a C array, kept with the host."""
    d: Dirs | None = h.__dict__.get("_cdirs")
    if d is None:
        d = Dirs([hier.base for hier in h.hierarchies])
        object.__setattr__(h, "_cdirs", d)
    return d


def _ancestors(h: Hierarchy, rel: str) -> list[str]:
    """The cgroup2 directories from the base down to the parent of ``rel``."""
    parts = rel.split("/")
    return [h.dir("/".join(parts[:i])) for i in range(len(parts))]


def _make_parents(hier: Hierarchy, parent_rel: str, made: list[str]) -> None:
    """mkdir -p the parents of a new cgroup, making each usable: on cgroup2 every
    controller it has is passed down (subtree_control), on a v1 cpuset its CPUs
    and memory nodes are copied from its own parent."""
    parts = parent_rel.split("/")
    for i in range(1, len(parts) + 1):
        d = hier.dir("/".join(parts[:i]))
        up = hier.dir("/".join(parts[: i - 1]))
        try:
            os.mkdir(d, 0o755)
            made.append(d)
            fresh = True
        except FileExistsError:
            fresh = False
        if hier.version == 2:
            ctrls = set((read_text(d + "/cgroup.controllers") or "").split())
            _ensure_enabled(d, ctrls)
        elif "cpuset" in hier.controllers:
            for key in ("cpuset.cpus", "cpuset.mems"):
                if fresh or not (read_text(f"{d}/{key}") or "").strip():
                    write_file(f"{d}/{key}", (read_text(f"{up}/{key}") or "").strip() or "\n")


def _rmdir_wait(path: str, deadline: float, timeout: float) -> None:
    delay = 0.0005
    while True:
        err = _rmdir(path)
        if not err:
            return
        if err != errno.EBUSY:
            raise OSError(err, f"remove {path}: {strerror(err)}", path)
        if time.monotonic() > deadline:
            pids = read_text(path + "/cgroup.procs")
            left = " ".join((pids or "").split()[:8])
            raise OSError(
                err,
                f"remove {path}: still busy after {timeout}s"
                + (f" (processes {left})" if left else ""),
                path,
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _keep_quota(d: str, kv: tuple[str, str]) -> tuple[str, str]:
    """cpu.max: a period alone keeps the current quota on update."""
    if kv[0] != "cpu.max":
        return kv
    current = (read_text(d + "/cpu.max") or "max").split()
    return "cpu.max", f"{current[0]} {kv[1].split()[-1]}"


def _mark(dirs: list[str]) -> None:
    """Name this process as the creator of ``dirs`` (for cleanup); best effort:
    a kernel without xattrs on cgroupfs gets no marker."""
    pid, start = _creator()
    value = f"{pid} {start}".encode()
    for d in dirs:
        with contextlib.suppress(OSError):
            os.setxattr(d, MARKER, value)


# ---- cleanup ------------------------------------------------------------------------


def _creator_dead(pid: int, start: int) -> bool:
    return _proc_start(pid) != start


def _parse_auto(name: str) -> tuple[int, int] | None:
    if not name.startswith(AUTO_PREFIX):
        return None
    parts = name[len(AUTO_PREFIX) :].split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def _marker(path: str) -> tuple[int, int] | None:
    try:
        pid, start = os.getxattr(path, MARKER).decode().split()
        return int(pid), int(start)
    except (OSError, ValueError):
        return None


def cleanup(
    *, under: tuple[str, ...] = (), host: Host | None = None, timeout: float = 10.0
) -> list[str]:
    """Remove the cgroups that pynsbind made for a process that is now dead (a
    spawner that crashed or was killed): kill what runs in them, then delete them.

    It looks at the entries named ``pynsbind*`` at the root of each hierarchy and
    below them, and below each relative path in ``under``.  A cgroup qualifies
    when its name is one of the fresh names (``pynsbind-c-PID-START-N``) or it
    carries the creator marker that :meth:`Cgroup.create` writes (the
    ``user.pynsbind.creator`` extended attribute), and the process it names (pid
    and start time) no longer exists.  Nothing else is touched.  Returns the
    relative paths removed."""
    h = host or _host()
    h.check()
    roots: set[str] = set()
    for hier in h.hierarchies:
        with contextlib.suppress(OSError):
            roots.update(e for e in os.listdir(hier.base) if e.startswith("pynsbind"))
    for extra in under:
        rel = normalize(extra)
        check_placement(h, rel)
        roots.add(rel)
    found: dict[str, tuple[int, int]] = {}
    for top in sorted(roots):
        for hier in h.hierarchies:
            base = hier.dir(top)
            if not os.path.isdir(base):
                continue
            for dirpath, _, _ in os.walk(base):
                rel = os.path.relpath(dirpath, hier.base)
                who = _parse_auto(os.path.basename(dirpath)) or _marker(dirpath)
                if who is not None and rel not in found:
                    found[rel] = who
    removed = []
    # deepest first, so that a marked parent goes after its children
    for rel in sorted(found, key=lambda r: (-r.count("/"), r)):
        pid, start = found[rel]
        if not _creator_dead(pid, start):
            continue
        cg = Cgroup._make(rel, h, owned=True)
        cg._auto = False
        with contextlib.suppress(FileNotFoundError):
            cg.kill(timeout=timeout)
        try:
            cg.delete(timeout=timeout)
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            continue  # a marked parent that still holds someone else's cgroups
        removed.append(rel)
    return removed


# What a spawner needs: AttachPoint, attach_points, open_attach_fds, Cgroup.create_for_spawn
# (the process layer uses them, in pynsbind._container_cgroup).
