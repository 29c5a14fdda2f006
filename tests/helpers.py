"""What the tests and the benchmarks share (a plain module: no fixtures here).

- sizes: :func:`examples`, the hypothesis and race loop sizes of the profile;
- files: :func:`is_static_elf`, :func:`find_busybox`, :func:`build_static` and
  :func:`build_probe` (compiled once, cached by the hash of the source),
  :func:`make_rootfs` (busybox, its applets, the probe, /etc);
- the host: :class:`HostState` (a snapshot of what a spawn must leave as it
  was) and its parts: :func:`host_ns`, :func:`children`, :func:`mount_table`,
  :func:`mounts`, :func:`status_field`, :func:`loop_device`; the cgroups pynsbind made
  (:func:`pynsbind_cgroups`, the one leftover scan) and their removal
  (:func:`rmdir_wait`, :func:`remove_cgroups`);
- running code in a forked child, as any user: :func:`in_child`,
  :func:`run_child`, :func:`checkpoint`, :func:`become`;
- waiting without asserting a time: :func:`wait_for`, :func:`wait_gone`;
- load: :class:`Busy`, threads that work in C with the GIL released.

Nothing here imports pytest or pynsbind at module level: the benchmarks import
this module as ``tests.helpers`` from the checkout.  What is missing on this
machine raises :class:`Unavailable`; the fixtures turn it into a skip.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import pickle
import select
import shutil
import signal
import struct
import subprocess
import threading
import time
import traceback
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


class Unavailable(Exception):
    """Something a test or a benchmark needs is missing on this machine (the
    message says what); the fixtures skip with it."""


# ---- sizes --------------------------------------------------------------------------

#: the hypothesis profile (tests/conftest.py registers ``ci`` and ``deep``)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")


def examples(n: int) -> int:
    """max_examples for a slow property, or the rounds of a race: n in the ci
    profile, 24 times n in deep."""
    return n * 24 if PROFILE == "deep" else n


# ---- files: static binaries and root filesystems ------------------------------------


def is_static_elf(path: str) -> bool:
    """True for an ELF executable without an interpreter (PT_INTERP)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:
                return False
            (phoff,) = struct.unpack_from("<Q", head, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))


def find_busybox() -> str | None:
    """The real path of a static busybox (on $PATH or /bin/busybox), or None."""
    for cand in (shutil.which("busybox"), "/bin/busybox"):
        if cand and is_static_elf(os.path.realpath(cand)):
            return os.path.realpath(cand)
    return None


def cache_dir() -> Path:
    """Where compiled helpers are kept between runs ($PYNSBIND_TEST_CACHE)."""
    cache = Path(os.environ.get("PYNSBIND_TEST_CACHE", "/tmp/pynsbind-test-cache"))
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def build_static(name: str, source: Path | str, flags: Sequence[str] = ()) -> str:
    """A C program compiled with ``cc -static -O2 FLAGS``: source is a file, or
    the text of one.  Cached by the hash of the source and the flags; raises
    Unavailable without a compiler or when it does not build."""
    text = source.read_bytes() if isinstance(source, Path) else source.encode()
    digest = hashlib.sha256(text + "\0".join(flags).encode()).hexdigest()[:16]
    cache = cache_dir()
    out = cache / f"{name}-{digest}"
    if out.exists():
        return str(out)
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise Unavailable(f"no C compiler to build {name}")
    tmp = cache / f"{name}-{digest}.{os.getpid()}"
    if isinstance(source, Path):
        src = source
    else:
        src = cache / f"{name}-{digest}.{os.getpid()}.c"
        src.write_text(source)
    try:
        res = subprocess.run(
            [cc, "-static", "-O2", *flags, "-o", str(tmp), str(src)],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        if src != source:
            src.unlink()
    if res.returncode != 0:
        raise Unavailable(f"cannot build {name}: {res.stderr.strip()[-300:]}")
    os.replace(tmp, out)
    return str(out)


def build_probe() -> str:
    """tests/probe.c, the tests' static probe, compiled."""
    return build_static("probe", HERE / "probe.c")


#: the busybox applets of the tests' root filesystem
BUSYBOX_APPLETS = (
    "sh ls cat echo id hostname ps mount sleep true false kill mkdir touch env pwd "
    "readlink stat grep wc head tail ip cp rm ln test"
).split()
#: its directories
ROOTFS_DIRS = ("bin", "etc", "proc", "dev", "sys", "tmp", "root", "home", "run")


def make_rootfs(
    root: Path,
    busybox: str,
    *,
    probe: str | None = None,
    applets: Sequence[str] = BUSYBOX_APPLETS,
    dirs: Sequence[str] = ROOTFS_DIRS,
    users: bool = True,
) -> Path:
    """A root filesystem at root (made here): static busybox as /bin/busybox
    with its applets, the probe as /bin/probe, the directories (a /tmp is
    sticky and world-writable), /etc/passwd and /etc/group (users).  Every
    directory is 0755, so that containers whose root is an unprivileged host
    uid (user namespaces) can reach it, if its parents can be traversed."""
    root.mkdir(parents=True)
    for d in dirs:
        (root / d).mkdir()
    shutil.copy(busybox, root / "bin" / "busybox")
    for applet in applets:
        os.symlink("busybox", root / "bin" / applet)
    if probe is not None:
        shutil.copy(probe, root / "bin" / "probe")
    if users:
        (root / "etc" / "passwd").write_text(
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        )
        (root / "etc" / "group").write_text("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")
    for p in (root, *(root / d for d in dirs)):
        os.chmod(p, 0o1777 if p.name == "tmp" else 0o755)
    return root


# ---- the host: what a spawn must leave as it was --------------------------------------


def host_ns(kind: str, pid: int | str = "self") -> str:
    """The namespace of a kind of a process, as ``kind:[inode]``."""
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def children(pid: int | str = "self") -> set[int]:
    """The children of a process (of all its threads)."""
    kids: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for task in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
        except OSError:
            continue
        kids.update(int(x) for x in text.split())
    return kids


def mount_table(pid: int | str = "self") -> tuple[str, ...]:
    """The mount table of a process as HostState compares it: per mount, its
    mount point and what follows the `` - `` of its mountinfo line (filesystem,
    source, super options); mount ids and propagation are left out."""
    return tuple(
        " ".join(line.split()[4:5] + line.split(" - ")[1:])
        for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    )


def mounts(pid: int | str = "self") -> dict[str, dict[str, Any]]:
    """Mount point -> its fields, from /proc/PID/mountinfo (the last mount wins)."""
    out: dict[str, dict[str, Any]] = {}
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        f, r = left.split(), right.split()
        out[f[4]] = {
            "id": int(f[0]),
            "opts": set(f[5].split(",")),
            "optional": f[6:],
            "fstype": r[0],
            "source": r[1],
            "super": set(r[2].split(",")),
        }
    return out


def status_field(name: str, pid: int | str = "self", *, text: str | None = None) -> str:
    """A field of /proc/PID/status (or of text, a copy of such a file)."""
    if text is None:
        text = Path(f"/proc/{pid}/status").read_text()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    raise KeyError(name)


def wait_status(pid: int) -> int:
    """waitpid(pid): the wait status."""
    _, status = os.waitpid(pid, 0)
    return status


def fd_is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError as exc:
        if exc.errno == errno.EBADF:
            return False
        raise
    return True


@contextlib.contextmanager
def loop_device(backing: Path) -> Iterator[tuple[str, int, int]]:
    """A loop device over the file backing: (device path, major, minor);
    detached afterwards.  Without losetup, or when no loop device can be set
    up (a host without udev has none until the module is loaded: modprobe is
    tried), Unavailable."""
    if shutil.which("losetup") is None:
        raise Unavailable("needs losetup (util-linux)")
    setup = ["losetup", "-f", "--show", str(backing)]
    res = subprocess.run(setup, capture_output=True, text=True, check=False)
    if res.returncode != 0 and shutil.which("modprobe"):
        subprocess.run(["modprobe", "loop"], capture_output=True, check=False)
        res = subprocess.run(setup, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise Unavailable(f"cannot set up a loop device: {res.stderr.strip()}")
    dev = res.stdout.strip()
    detach = ["losetup", "-d", dev]
    try:
        rdev = os.stat(dev).st_rdev
        yield dev, os.major(rdev), os.minor(rdev)
    except BaseException:
        subprocess.run(detach, check=False)
        raise
    subprocess.run(detach, check=True)  # a loop device left attached is a leak


# ---- cgroups ----------------------------------------------------------------------------

CGROUP_ROOT = "/sys/fs/cgroup"


def cgroup_roots() -> list[str]:
    """Where a hierarchy may have its root: /sys/fs/cgroup (cgroup v2 alone) and
    each directory in it (cgroup v1, and the cgroup2 of a hybrid layout)."""
    try:
        names = sorted(os.listdir(CGROUP_ROOT))
    except OSError:
        return []
    return [CGROUP_ROOT] + [os.path.join(CGROUP_ROOT, n) for n in names]


def _names_pid(component: str, pid: int) -> bool:
    return f"-{pid}-" in component or component.endswith(f"-{pid}")


def _start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat: the start time in clock ticks after boot."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def _maker(component: str) -> int | None:
    """The pid a cgroup's name carries: its first all-digit part after the first
    (``pynsbind-c-PID-START-N``, ``pynsbind-bench-PID``, ``test-PID-N``...)."""
    for part in component.split("-")[1:]:
        if part.isdigit():
            return int(part)
    return None


def _made_by_another(component: str) -> bool:
    """A cgroup whose name carries the pid of a process that is neither this one
    nor one of its descendants: another test run or benchmark on the same
    machine, whose cgroups come and go as they please.  That is a fresh name
    (``pynsbind-c-PID-START-N``) whose maker started before this process (START),
    or a pid that is alive and not of this process's tree; a dead maker's cgroup
    is a leak, whoever it was."""
    pid = _maker(component)
    if pid is None or pid <= 1:  # no pid, or not one a test run has
        return False
    me = os.getpid()
    parts = component.split("-")
    if component.startswith("pynsbind-c-") and len(parts) == 5 and parts[3].isdigit():
        mine = _start_time(me)
        if pid != me and mine is not None and int(parts[3]) < mine:
            return True
    first = True
    while pid > 1:
        if pid == me:
            return False
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False  # its maker is dead: a leak, whoever it was
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if first and state in ("Z", "X"):
            return False  # dead too, not reaped yet
        first = False
        pid = int(ppid)
    return True


def pynsbind_cgroups(
    *, pid: int | None = None, prefix: str = "pynsbind", others: set[str] | None = None
) -> set[str]:
    """The leftover scan: every cgroup directory whose name at the root of a
    hierarchy starts with prefix (pynsbind makes its cgroups there, and the
    tests and benchmarks name theirs so), and every directory beneath.

    With pid: only those of that process (a component of the path names it:
    ``-PID-`` or a trailing ``-PID``).  Without: all but those of other
    processes and what is beneath them (see _made_by_another); the set
    ``others``, if given, gets the directories so left out."""
    found: set[str] = set()
    for top in cgroup_roots():
        try:
            entries = os.listdir(top)
        except OSError:
            continue
        for entry in entries:
            if not entry.startswith(prefix):
                continue
            if pid is None and _made_by_another(entry):
                if others is not None:
                    others.add(os.path.join(top, entry))
                continue
            for dirpath, dirnames, _ in os.walk(os.path.join(top, entry)):
                if pid is None:
                    theirs = [d for d in dirnames if _made_by_another(d)]
                    if others is not None:
                        others.update(os.path.join(dirpath, d) for d in theirs)
                    dirnames[:] = [d for d in dirnames if d not in theirs]
                rel = os.path.relpath(dirpath, top).split(os.sep)
                if pid is None or any(_names_pid(c, pid) for c in rel):
                    found.add(dirpath)
    return found


def rmdir_wait(path: str, tries: int = 200) -> bool:
    """rmdir a cgroup directory, trying again while the kernel still counts a
    task that has just exited in it (EBUSY), up to ``tries`` times 10 ms; True
    once it is gone (or was never there)."""
    for _ in range(tries):
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            time.sleep(0.01)
    return not os.path.exists(path)


def remove_cgroups(dirs: Iterable[str], *, kill: bool = False) -> list[str]:
    """Remove cgroup directories, the deepest first (with kill, SIGKILL the
    processes in each first); what could not be removed."""
    left = []
    for d in sorted(dirs, key=lambda d: (-d.count("/"), d)):
        if kill:
            with contextlib.suppress(OSError), open(d + "/cgroup.procs") as f:
                for p in f.read().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(p), signal.SIGKILL)
        if not rmdir_wait(d):
            left.append(d)
    return left


# ---- the host state ---------------------------------------------------------------------


@dataclass(frozen=True)
class HostState:
    """What a spawn must leave as it was: the caller's mount table, fds,
    children and pynsbind cgroups; the host's hostname, domain name and network
    interfaces.  ``before.diff(HostState.now()) == {}`` says nothing changed."""

    mountinfo: tuple[str, ...]
    fds: frozenset[int]
    children: frozenset[int]
    cgroups: frozenset[str]
    hostname: str
    domainname: str
    ifaces: frozenset[str]
    #: the cgroups left out as another process's (pynsbind_cgroups' others)
    others: frozenset[str] = frozenset()

    @classmethod
    def now(cls) -> HostState:
        others: set[str] = set()
        cgroups = pynsbind_cgroups(others=others)
        return cls(
            mountinfo=mount_table(),
            fds=frozenset(int(x) for x in os.listdir("/proc/self/fd")),
            children=frozenset(children()),
            cgroups=frozenset(cgroups),
            hostname=os.uname().nodename,
            domainname=Path("/proc/sys/kernel/domainname").read_text().strip(),
            ifaces=frozenset(os.listdir("/sys/class/net")),
            others=frozenset(others),
        )

    def diff(self, other: HostState) -> dict[str, Any]:
        """What changed from self to other: {} when nothing did (children that
        went away do not count)."""
        out: dict[str, Any] = {}
        if self.mountinfo != other.mountinfo:
            out["mounts"] = sorted(set(other.mountinfo) ^ set(self.mountinfo))
        if other.fds != self.fds:
            out["fds"] = sorted(other.fds - self.fds), sorted(self.fds - other.fds)
        if other.children - self.children:
            out["children"] = sorted(other.children - self.children)
        # a cgroup another process had when either snapshot was taken stays its
        # own when that process has died by the other snapshot
        theirs = self.others | other.others
        cgroups = {
            c
            for c in other.cgroups ^ self.cgroups
            if not any(c == t or c.startswith(t + "/") for t in theirs)
        }
        if cgroups:
            out["cgroups"] = sorted(cgroups)
        for name in ("hostname", "domainname", "ifaces"):
            if getattr(other, name) != getattr(self, name):
                out[name] = (getattr(self, name), getattr(other, name))
        return out

    def own(self, tmp_base: str) -> dict[str, Any]:
        """This state narrowed to what this process alone can change while other
        test runs mount and make cgroups on the same machine: the mounts under
        tmp_base, the host's root mount (with its propagation, read now), fds,
        children, cgroups named ``pynsbind-test-PID``, hostname, domain name."""
        mark = f"pynsbind-test-{os.getpid()}"
        return {
            "mounts": sorted(m for m in self.mountinfo if m.split()[0].startswith(tmp_base)),
            "root": _root_mount_line(),
            "fds": self.fds,
            "children": self.children,
            "cgroups": sorted(c for c in self.cgroups if mark in c),
            "hostname": self.hostname,
            "domainname": self.domainname,
        }


def _root_mount_line() -> str:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if line.split()[4] == "/":
            return line
    return ""


# ---- running code in a child ------------------------------------------------------------

_PR_SET_DUMPABLE = 4
_libc = ctypes.CDLL(None, use_errno=True)


def become(uid: int | None, gid: int | None = None, groups: Sequence[int] = ()) -> None:
    """Make this (forked) process uid and gid (gid: uid's number if None) in its
    real, effective and saved ids, with these supplementary groups; then
    dumpable again: a setuid makes a process non-dumpable (its /proc files, and
    those of a CLONE_VM child, become root's), and an unprivileged process that
    never changed ids is dumpable."""
    if gid is None:
        gid = uid
    os.setgroups(list(groups))
    if gid is not None:
        os.setresgid(gid, gid, gid)
    if uid is not None:
        os.setresuid(uid, uid, uid)
    if _libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"prctl(PR_SET_DUMPABLE): {os.strerror(e)}")


#: in a child of run_child: its (up, down) pipe ends to the parent
_CHANNEL: tuple[int, int] | None = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes | None:
    """size bytes; None at end of file; TimeoutError past the deadline."""
    chunks, left = [], size
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError
        chunk = os.read(fd, left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _send(fd: int, obj: object) -> None:
    data = pickle.dumps(obj)
    _write_all(fd, struct.pack("!I", len(data)) + data)


def _recv(fd: int, deadline: float | None) -> Any:
    head = _read_exact(fd, 4, deadline)
    if head is None:
        return None
    data = _read_exact(fd, struct.unpack("!I", head)[0], deadline)
    return None if data is None else pickle.loads(data)


def checkpoint(value: object = None) -> None:
    """In a child of :func:`in_child`: hand value to the parent's ``during`` and
    wait until the parent has looked."""
    assert _CHANNEL is not None, "checkpoint() outside in_child()"
    up, down = _CHANNEL
    _send(up, ("checkpoint", value))
    if os.read(down, 1) != b"g":
        os._exit(1)


@dataclass(frozen=True)
class Outcome:
    """How a child of :func:`run_child` ended: its wait status, and its answer:
    fn's result (value) or the exception fn raised (error), or neither when it
    died without answering (answered is False)."""

    status: int
    answered: bool
    value: Any = None
    error: BaseException | None = None


def _answer(fn: Callable[[], Any], up: int) -> None:
    try:
        msg: tuple[Any, ...] = ("ok", fn())
    except BaseException as exc:
        msg = ("err", exc, traceback.format_exc())
    try:
        _send(up, msg)
    except Exception as exc:
        if msg[0] == "ok":
            err: BaseException = RuntimeError(f"unpicklable result: {exc!r}")
        else:  # an exception that does not pickle: its type and text
            err = RuntimeError(f"{type(msg[1]).__name__}: {msg[1]}")
        _send(up, ("err", err, msg[2] if len(msg) > 2 else ""))


def run_child(
    fn: Callable[[], Any],
    *,
    uid: int | None = None,
    gid: int | None = None,
    groups: Sequence[int] = (),
    setsid: bool = False,
    timeout: float | None = 300.0,
    during: Callable[[int, Any], None] | None = None,
    fork: Callable[[], int | tuple[int, int]] = os.fork,
) -> Outcome:
    """Run fn() in a child made by ``fork`` (os.fork, or a clone that returns
    (pid, pidfd)); its answer comes back pickled through a pipe and the child
    leaves with os._exit, so that nothing it changes reaches this process.

    In the child, before fn: a new session (setsid), then the ids of
    :func:`become` (when uid or gid is given).  At each ``checkpoint(value)`` of
    the child, ``during(pid, value)`` runs here while the child waits (an
    exception there is raised once the child is done).  ``timeout`` detects a
    hang, it measures nothing: past it the child is killed and AssertionError
    raised."""
    global _CHANNEL
    up_r, up_w = os.pipe()
    down_r, down_w = os.pipe()
    res = fork()
    pid = res[0] if isinstance(res, tuple) else res
    if pid == 0:
        code = 0
        try:
            os.close(up_r)
            os.close(down_w)
            _CHANNEL = (up_w, down_r)
            if setsid:
                os.setsid()
            if uid is not None or gid is not None:
                become(uid, gid, groups)
            _answer(fn, up_w)
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    if isinstance(res, tuple):
        os.close(res[1])
    os.close(up_w)
    os.close(down_r)
    deadline = None if timeout is None else time.monotonic() + timeout
    failure: BaseException | None = None
    msg = None
    hung = False
    try:
        while True:
            try:
                msg = _recv(up_r, deadline)
            except TimeoutError:
                hung = True
                os.kill(pid, signal.SIGKILL)
                msg = None
                break
            if msg is None or msg[0] != "checkpoint":
                break
            try:
                if during is not None and failure is None:
                    during(pid, msg[1])
            except BaseException as exc:
                failure = exc
            os.write(down_w, b"g")
    finally:
        os.close(up_r)
        os.close(down_w)
        status = wait_status(pid)
    if hung:
        raise AssertionError(f"the child hung: killed after {timeout} s")
    if failure is not None:
        raise failure
    if msg is None:
        return Outcome(status, False)
    if msg[0] == "err":
        exc = msg[1]
        if msg[2] and hasattr(exc, "add_note"):  # Python 3.11
            who = "" if uid is None else f" (uid {uid})"
            exc.add_note(f"in the child{who}:\n{msg[2]}")
        return Outcome(status, True, error=exc)
    return Outcome(status, True, value=msg[1])


def in_child(
    fn: Callable[[], Any],
    *,
    uid: int | None = None,
    gid: int | None = None,
    groups: Sequence[int] = (),
    setsid: bool = False,
    timeout: float | None = 300.0,
    during: Callable[[int, Any], None] | None = None,
    fork: Callable[[], int | tuple[int, int]] = os.fork,
) -> Any:
    """fn() in a forked child (see :func:`run_child`): its result, or its
    exception raised here (with the child's traceback as a note);
    AssertionError if it died without answering."""
    out = run_child(
        fn,
        uid=uid,
        gid=gid,
        groups=groups,
        setsid=setsid,
        timeout=timeout,
        during=during,
        fork=fork,
    )
    if not out.answered:
        raise AssertionError(f"the child died without an answer: wait status {out.status:#x}")
    if out.error is not None:
        raise out.error
    return out.value


# ---- waiting (failure detectors, not timings) ---------------------------------------------


def wait_for(pred: Callable[[], bool], limit: float = 20.0) -> bool:
    """Poll pred until it holds; False at the limit (a failure detector)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def wait_gone(pid: int, limit: float = 20.0) -> bool:
    """Wait until a process that is not our child has exited; False at the limit
    (a failure detector, not a timing assertion)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], limit)
        return bool(ready)
    finally:
        os.close(fd)


def kill_pid(pid: int) -> None:
    """SIGKILL a process that is not our child (through a pidfd: no pid reuse)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        signal.pidfd_send_signal(fd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---- load -------------------------------------------------------------------------------


class Busy:
    """numpy-style workers: threads that spend their time in C with the GIL
    released (hashing and compressing large buffers), allocating as they go."""

    def __init__(self, n: int = 2) -> None:
        self.stop = threading.Event()
        self.rounds = 0
        self.threads = [threading.Thread(target=self.work, daemon=True) for _ in range(n)]

    def work(self) -> None:
        buf = os.urandom(1 << 20)
        while not self.stop.is_set():
            hashlib.sha256(buf * 4).digest()
            zlib.compress(buf, 1)
            self.rounds += 1

    def __enter__(self) -> Busy:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()
