"""pynsbind.lowlevel against the real kernel.

Every call that changes process state (namespaces, mounts, capabilities, prctl,
seccomp, fds) runs in a forked child (:func:`in_child`): the child reports back
through a pipe and ``os._exit``s, so the pytest process never changes.  Where the
effect could leak, the test also looks from the host side while the child is
still alive (a ``checkpoint``) and after it (the ``host_unchanged`` fixture).
"""

from __future__ import annotations

import errno
import os
import pickle
import re
import select
import signal
import socket
import stat
import struct
import threading
import traceback
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import pynsbind
from pynsbind import lowlevel as L
from pynsbind.lowlevel import (
    Capability,
    CloseRangeFlags,
    FsconfigCmd,
    FsmountFlags,
    MountAttr,
    MountFlags,
    MoveMountFlags,
    OpenTreeFlags,
    UmountFlags,
)
from pynsbind.lowlevel import Namespace as NS
from tests.conftest import HostState

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

FEATURES = pynsbind.features()

needs_new_mount_api = pytest.mark.skipif(
    not FEATURES.new_mount_api, reason="needs the new mount API (Linux 5.2)"
)
needs_mount_setattr = pytest.mark.skipif(
    not FEATURES.mount_setattr, reason="needs mount_setattr (Linux 5.12)"
)
needs_pidfd = pytest.mark.skipif(not FEATURES.pidfd, reason="needs pidfd_open (Linux 5.3)")
needs_close_range = pytest.mark.skipif(
    not FEATURES.close_range, reason="needs close_range (Linux 5.9)"
)
needs_userns = pytest.mark.skipif(not FEATURES.user_namespace, reason="needs user namespaces")

#: the message of every kernel refusal: ``call(args): lowercase strerror``
MESSAGE = re.compile(r"^[a-z_0-9 ]+\(.*\): [a-z][a-z ,/()-]*[a-z)]$")


# ---- running code in a child ------------------------------------------------------

_CHANNEL: tuple[int, int] | None = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _send(fd: int, obj: object) -> None:
    data = pickle.dumps(obj)
    _write_all(fd, struct.pack("!I", len(data)) + data)


def _recv(fd: int) -> Any:
    head = _read_exact(fd, 4)
    if head is None:
        return None
    data = _read_exact(fd, struct.unpack("!I", head)[0])
    return None if data is None else pickle.loads(data)


def checkpoint(value: object = None) -> None:
    """In a child of :func:`in_child`: hand value to the parent's ``during`` and
    wait until the parent has looked."""
    assert _CHANNEL is not None, "checkpoint() outside in_child()"
    up, down = _CHANNEL
    _send(up, ("checkpoint", value))
    if os.read(down, 1) != b"g":
        os._exit(1)


def in_child(
    fn: Callable[[], Any],
    *,
    during: Callable[[int, Any], None] | None = None,
    fork: Callable[[], int | tuple[int, int]] = os.fork,
) -> Any:
    """Run fn() in a child made by ``fork`` and return its result, or raise its
    exception here.  At each ``checkpoint(value)`` of the child, ``during(pid,
    value)`` runs here while the child waits."""
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
            try:
                msg: tuple[Any, ...] = ("ok", fn())
            except BaseException as exc:
                msg = ("err", exc, traceback.format_exc())
            try:
                _send(up_w, msg)
            except Exception as exc:
                _send(up_w, ("err", RuntimeError(f"unpicklable result: {exc!r}"), ""))
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    if isinstance(res, tuple):
        os.close(res[1])
    os.close(up_w)
    os.close(down_r)
    failure: BaseException | None = None
    result = None
    try:
        while True:
            msg = _recv(up_r)
            if msg is None or msg[0] != "checkpoint":
                result = msg
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
        _, status = os.waitpid(pid, 0)
    if failure is not None:
        raise failure
    if result is None:
        raise AssertionError(f"the child died without an answer: wait status {status:#x}")
    if result[0] == "err":
        exc = result[1]
        if result[2]:
            exc.add_note("in the child:\n" + result[2])
        raise exc
    return result[1]


def clone_with(flags: int = 0, **kwargs: Any) -> Callable[[], int | tuple[int, int]]:
    return lambda: L.clone(flags, **kwargs)


def ns_id(kind: str, pid: int | str = "self") -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def private_mount_ns() -> None:
    """A new mount namespace whose mounts never propagate back to the host."""
    L.unshare(NS.MNT)
    L.mount(None, "/", None, MountFlags.REC | MountFlags.PRIVATE)


def drop_effective(*caps: Capability) -> None:
    now = L.capget()
    L.capset(now.effective - set(caps), now.permitted, now.inheritable)


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


def status_field(name: str, pid: int | str = "self") -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    raise KeyError(name)


def status_mask(name: str, pid: int | str = "self") -> int:
    return int(status_field(name, pid), 16)


def caps_mask(caps: frozenset[Capability] | set[Capability]) -> int:
    return sum(1 << int(c) for c in caps)


def known_caps_mask() -> int:
    return caps_mask(set(Capability))


def pid_max() -> int:
    return int(Path("/proc/sys/kernel/pid_max").read_text())


def fd_is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError as exc:
        if exc.errno == errno.EBADF:
            return False
        raise
    return True


def wait_status(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return status


def hold(fn: Callable[[], Any] = lambda: None) -> Callable[[], Any]:
    """A child body: run fn, then stay alive (at a checkpoint) while the parent looks."""

    def body() -> Any:
        value = fn()
        checkpoint(value)
        return value

    return body


# ---- what the host must keep ----------------------------------------------------------


def _root_line() -> str:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if line.split()[4] == "/":
            return line
    return ""


@pytest.fixture
def host_unchanged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostState]:
    """conftest's host_unchanged, narrowed to what this test process can touch:
    other test runs on the same machine mount and make cgroups meanwhile.  It also
    watches the host's root mount (propagation) and domain name."""
    base = str(tmp_path_factory.getbasetemp())
    mark = f"pynsbind-test-{os.getpid()}"

    def mine(state: HostState) -> dict[str, Any]:
        return {
            "mounts": sorted(m for m in state.mountinfo if m.split()[0].startswith(base)),
            "root": _root_line(),
            "fds": state.fds,
            "children": state.children,
            "cgroups": sorted(c for c in state.cgroups if mark in c),
            "hostname": state.hostname,
            "domainname": Path("/proc/sys/kernel/domainname").read_text(),
        }

    before = HostState.now()
    seen = mine(before)
    yield before
    assert mine(HostState.now()) == seen


# ---- no system call on bad arguments -----------------------------------------------


class _NoCalls:
    """Stands for ``lib`` in pynsbind.lowlevel: constants pass, any call fails."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._real, name)
        if name.startswith("nsb_"):

            def refuse(*args: Any) -> Any:
                self.calls.append(name)
                raise AssertionError(f"{name} reached the C layer")

            return refuse
        return value


@pytest.fixture
def no_syscalls(monkeypatch: pytest.MonkeyPatch) -> _NoCalls:
    guard = _NoCalls(L.lib)
    monkeypatch.setattr(L, "lib", guard)

    def no_open(*args: Any, **kwargs: Any) -> int:
        guard.calls.append("os.open")
        raise AssertionError("os.open reached")

    monkeypatch.setattr(L.os, "open", no_open)
    return guard


IDMAP = MountAttr.IDMAP
SET_STRING = FsconfigCmd.SET_STRING

BAD_TYPES: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = [
    (L.unshare, ("uts",), {}),
    (L.unshare, (None,), {}),
    (L.unshare, (True,), {}),
    (L.unshare, (1.0,), {}),
    (L.setns, ("3",), {}),
    (L.setns, (True,), {}),
    (L.setns, (3, "uts"), {}),
    (L.setns, (object(), 0), {}),
    (L.open_namespace, (1.5,), {}),
    (L.open_namespace, (None,), {}),
    (L.open_namespace, (True,), {}),
    (L.open_namespace, ("uts", 1.5), {}),
    (L.open_namespace, ("uts", True), {}),
    (L.clone, ("uts",), {}),
    (L.clone, (), {"pidfd": 1}),
    (L.clone, (), {"cgroup_fd": "3"}),
    (L.clone, (), {"cgroup_fd": True}),
    (L.ns_get_userns, ("3",), {}),
    (L.ns_get_parent, (None,), {}),
    (L.ns_get_nstype, (1.5,), {}),
    (L.ns_get_owner_uid, ("x",), {}),
    (L.mount, (None, 5), {}),
    (L.mount, (3, "/x"), {}),
    (L.mount, (None, "/x", 3), {}),
    (L.mount, (None, "/x", None, "0"), {}),
    (L.mount, (None, "/x", None, 0, 5), {}),
    (L.umount2, (None,), {}),
    (L.umount2, ("/x", "1"), {}),
    (L.pivot_root, (None, "."), {}),
    (L.pivot_root, (".", 1), {}),
    (L.open_tree, ("3", "/"), {}),
    (L.open_tree, (None, 3), {}),
    (L.open_tree, (None, "/", "1"), {}),
    (L.move_mount, (None, 1, None, "/x"), {}),
    (L.move_mount, ("1", "", None, "/x"), {}),
    (L.move_mount, (None, "/a", None, "/x", 1.0), {}),
    (L.fsopen, (3,), {}),
    (L.fsopen, ("tmpfs", "1"), {}),
    (L.fsconfig, ("3", FsconfigCmd.CMD_CREATE), {}),
    (L.fsconfig, (3, "create"), {}),
    (L.fsconfig, (3, SET_STRING, 1, "x"), {}),
    (L.fsconfig, (3, SET_STRING, "size", 1), {}),
    (L.fsconfig, (3, FsconfigCmd.SET_BINARY, "k", "text"), {}),
    (L.fsconfig, (3, FsconfigCmd.SET_FD, "fd", None, "3"), {}),
    (L.fsmount, ("3",), {}),
    (L.fsmount, (3, "1"), {}),
    (L.fspick, (None, 3), {}),
    (L.fspick, ({}, "/"), {}),
    (L.mount_setattr, ("x", "/"), {}),
    (L.mount_setattr, (None, "/"), {"attr_set": "1"}),
    (L.mount_setattr, (None, "/"), {"attr_set": IDMAP, "userns_fd": "3"}),
    (L.sethostname, (5,), {}),
    (L.sethostname, (["a"],), {}),
    (L.setdomainname, (None,), {}),
    (L.pidfd_open, ("1",), {}),
    (L.pidfd_open, (1.0,), {}),
    (L.pidfd_send_signal, ("3", 9), {}),
    (L.pidfd_send_signal, (3, "9"), {}),
    (L.pidfd_getfd, (3, "1"), {}),
    (L.close_range, ("3",), {}),
    (L.close_range, (3, None), {}),
    (L.close_range, (3, 4, "1"), {}),
    (L.capget, ("0",), {}),
    (L.capset, ("abc", [], []), {}),
    (L.capset, ([], None, []), {}),
    (L.capset, ([1.5], [], []), {}),
    (L.capset, ([True], [], []), {}),
    (L.set_pdeathsig, ("9",), {}),
    (L.set_dumpable, (1,), {}),
    (L.set_dumpable, ("no",), {}),
    (L.set_child_subreaper, (None,), {}),
    (L.set_keepcaps, (1,), {}),
    (L.set_name, (5,), {}),
    (L.capbset_read, ("x",), {}),
    (L.capbset_drop, ("abc",), {}),
    (L.cap_ambient_raise, (None,), {}),
    (L.cap_ambient_lower, ("1",), {}),
    (L.cap_ambient_is_set, (1.5,), {}),
    (L.seccomp_set_filter, ("abc",), {}),
    (L.seccomp_set_filter, ([(1, 2, 3)],), {}),
    (L.seccomp_set_filter, ([[6, 0, 0, 0]],), {}),
    (L.seccomp_set_filter, ([(6, 0, 0, "0")],), {}),
    (L.seccomp_set_filter, (b"\0" * 8, "0"), {}),
]

BAD_VALUES: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = [
    # NUL bytes
    (L.mount, (None, "/x\0y"), {}),
    (L.mount, ("a\0", "/x"), {}),
    (L.mount, (None, "/x", None, 0, "size=1\0"), {}),
    (L.umount2, (b"/\0",), {}),
    (L.pivot_root, (".\0", "."), {}),
    (L.open_tree, (None, b"/\0"), {}),
    (L.move_mount, (None, "", None, "/\0"), {}),
    (L.fsopen, ("tmp\0fs",), {}),
    (L.fsconfig, (3, SET_STRING, "k\0", "v"), {}),
    (L.fspick, (None, "/\0"), {}),
    (L.mount_setattr, (None, "/\0"), {}),
    (L.sethostname, ("a\0b",), {}),
    (L.setdomainname, (b"a\0b",), {}),
    (L.set_name, ("a\0",), {}),
    # out of range
    (L.unshare, (-1,), {}),
    (L.unshare, (1 << 31,), {}),
    (L.setns, (3, -1), {}),
    (L.setns, (1 << 40, 0), {}),
    (L.clone, (-1,), {}),
    (L.clone, (1 << 64,), {}),
    (L.clone, (0x100,), {}),  # CLONE_VM: only Namespace flags
    (L.clone, (NS.UTS | 0x8000,), {}),  # CLONE_PARENT
    (L.clone, (), {"cgroup_fd": -1}),
    (L.clone, (), {"cgroup_fd": 1 << 40}),
    (L.mount, (None, "/x", None, -1), {}),
    (L.umount2, ("/x", -1), {}),
    (L.open_tree, (None, "/", -1), {}),
    (L.open_tree, (None, "/", 1 << 32), {}),
    (L.fsconfig, (3, 99), {}),
    (L.fsconfig, (3, FsconfigCmd.SET_FD, "fd", None, 1 << 40), {}),
    (L.fsmount, (1 << 40,), {}),
    (L.mount_setattr, (None, "/"), {"attr_set": IDMAP}),
    (L.mount_setattr, (None, "/"), {"userns_fd": 3}),
    (L.mount_setattr, (None, "/"), {"attr_set": IDMAP, "userns_fd": -1}),
    (L.mount_setattr, (None, "/"), {"attr_clr": -1}),
    (L.pidfd_open, (1 << 31,), {}),
    (L.pidfd_send_signal, (3, 1 << 40), {}),
    (L.pidfd_getfd, (3, -(1 << 40)), {}),
    (L.close_range, (-1,), {}),
    (L.close_range, (0, 1 << 32), {}),
    (L.capget, (1 << 40,), {}),
    (L.capset, ([64], [], []), {}),
    (L.capset, ([], [-1], []), {}),
    (L.capbset_read, (64,), {}),
    (L.capbset_read, (-1,), {}),
    (L.capbset_drop, (64,), {}),
    (L.cap_ambient_raise, (-1,), {}),
    (L.set_pdeathsig, (256,), {}),
    (L.set_pdeathsig, (-1,), {}),
    (L.open_namespace, ("bogus",), {}),
    (L.open_namespace, (NS.USER | NS.PID,), {}),
    (L.open_namespace, (0,), {}),
    (L.open_namespace, ("uts", "../1"), {}),
    (L.seccomp_set_filter, ([],), {}),
    (L.seccomp_set_filter, (b"",), {}),
    (L.seccomp_set_filter, ([(6, 0, 0, 0)] * 4097,), {}),
    (L.seccomp_set_filter, (b"\0" * 7,), {}),
    (L.seccomp_set_filter, ([(1 << 16, 0, 0, 0)],), {}),
    (L.seccomp_set_filter, ([(6, 256, 0, 0)],), {}),
    (L.seccomp_set_filter, ([(6, 0, 0, 1 << 32)],), {}),
]


def _case_id(case: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]) -> str:
    fn, args, kwargs = case
    shown = [repr(a)[:20] for a in args] + [f"{k}={v!r}"[:24] for k, v in kwargs.items()]
    return f"{fn.__name__}({', '.join(shown)})"


@pytest.mark.parametrize("case", BAD_TYPES, ids=_case_id)
def test_wrong_types_raise_type_error_before_any_call(
    case: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]], no_syscalls: _NoCalls
) -> None:
    fn, args, kwargs = case
    with pytest.raises(TypeError):
        fn(*args, **kwargs)
    assert no_syscalls.calls == []


@pytest.mark.parametrize("case", BAD_VALUES, ids=_case_id)
def test_bad_values_raise_value_error_before_any_call(
    case: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]], no_syscalls: _NoCalls
) -> None:
    fn, args, kwargs = case
    with pytest.raises(ValueError) as info:
        fn(*args, **kwargs)
    assert no_syscalls.calls == []
    assert str(info.value) == str(info.value).rstrip(".")


def test_nul_byte_message_names_the_argument(no_syscalls: _NoCalls) -> None:
    with pytest.raises(ValueError, match=r"^target contains a NUL byte: '/x\\x00y'$"):
        L.mount(None, "/x\0y")
    with pytest.raises(ValueError, match=r"^pid must be between -2\*\*31 and 2\*\*31-1"):
        L.pidfd_open(1 << 31)


HAS_CALLS: list[tuple[str, Callable[[], Any]]] = [
    ("HAS_NEW_MOUNT_API", lambda: L.open_tree(None, "/")),
    ("HAS_NEW_MOUNT_API", lambda: L.move_mount(None, "/a", None, "/b")),
    ("HAS_NEW_MOUNT_API", lambda: L.fsopen("tmpfs")),
    ("HAS_NEW_MOUNT_API", lambda: L.fsconfig(3, FsconfigCmd.CMD_CREATE)),
    ("HAS_NEW_MOUNT_API", lambda: L.fsmount(3)),
    ("HAS_NEW_MOUNT_API", lambda: L.fspick(None, "/")),
    ("HAS_MOUNT_SETATTR", lambda: L.mount_setattr(None, "/")),
    ("HAS_PIDFD", lambda: L.pidfd_open(1)),
    ("HAS_PIDFD", lambda: L.pidfd_send_signal(3, 0)),
    ("HAS_PIDFD_GETFD", lambda: L.pidfd_getfd(3, 0)),
    ("HAS_CLOSE_RANGE", lambda: L.close_range(1000)),
    ("HAS_NS_IOCTLS", lambda: L.ns_get_userns(3)),
    ("HAS_NS_IOCTLS", lambda: L.ns_get_parent(3)),
    ("HAS_NS_IOCTLS", lambda: L.ns_get_nstype(3)),
    ("HAS_NS_IOCTLS", lambda: L.ns_get_owner_uid(3)),
]


@pytest.mark.parametrize(("flag", "call"), HAS_CALLS, ids=[f for f, _ in HAS_CALLS])
def test_missing_build_support_raises_not_implemented(
    flag: str, call: Callable[[], Any], monkeypatch: pytest.MonkeyPatch, no_syscalls: _NoCalls
) -> None:
    monkeypatch.setattr(L, flag, False)
    with pytest.raises(NotImplementedError, match="this build of pynsbind has no support"):
        call()
    assert no_syscalls.calls == []


def test_has_flags_are_bools_and_agree_with_features() -> None:
    names = [n for n in L.__all__ if n.startswith("HAS_")]
    assert len(names) == 10
    for name in names:
        assert type(getattr(L, name)) is bool, name
    # a feature the kernel offers through pynsbind must have been built in
    pairs = {
        "clone3": "HAS_CLONE3",
        "clone_into_cgroup": "HAS_CLONE_INTO_CGROUP",
        "new_mount_api": "HAS_NEW_MOUNT_API",
        "mount_setattr": "HAS_MOUNT_SETATTR",
        "pidfd": "HAS_PIDFD",
        "pidfd_getfd": "HAS_PIDFD_GETFD",
        "close_range": "HAS_CLOSE_RANGE",
        "openat2": "HAS_OPENAT2",
        "time_namespace": "HAS_TIME_NS",
    }
    for feature, flag in pairs.items():
        if getattr(FEATURES, feature):
            assert getattr(L, flag), (feature, flag)


def test_flag_values_are_the_kernel_abi() -> None:
    # numbers of the Linux ABI, fixed forever: a wrong header mapping shows here
    assert (NS.MNT, NS.CGROUP, NS.UTS, NS.IPC, NS.USER, NS.PID, NS.NET) == (
        0x20000, 0x2000000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000,
    )  # fmt: skip
    if L.HAS_TIME_NS:
        assert NS.TIME == 0x80
    assert (MountFlags.RDONLY, MountFlags.BIND, MountFlags.REC, MountFlags.PRIVATE) == (
        1, 4096, 16384, 1 << 18,
    )  # fmt: skip
    assert (UmountFlags.FORCE, UmountFlags.DETACH, UmountFlags.EXPIRE) == (1, 2, 4)
    assert (MountAttr.RDONLY, MountAttr.NOSUID, MountAttr.IDMAP) == (1, 2, 0x100000)
    assert MountAttr.RELATIME == 0
    assert (Capability.CHOWN, Capability.SYS_ADMIN, Capability.NET_RAW) == (0, 21, 13)
    assert L.AT_FDCWD == -100
    assert max(Capability) == L.CAP_LAST_CAP
    assert CloseRangeFlags.CLOEXEC == 4


def test_all_lists_every_public_name() -> None:
    import types

    helpers = {"Fd", "Path", "Iterable", "NamedTuple", "NoReturn", "Protocol", "Sequence"}
    helpers |= {"TypeAlias", "annotations", "ffi", "lib"}
    public = {
        n
        for n in dir(L)
        if not n.startswith("_")
        and n not in helpers
        and not isinstance(getattr(L, n), types.ModuleType)
    }
    assert public == set(L.__all__)


def test_namespace_helpers() -> None:
    names = {kind: kind.proc_name for kind in NS}
    assert set(names.values()) == {"user", "pid", "mnt", "net", "uts", "ipc", "cgroup", "time"}
    everything = NS.all()
    for kind in NS:
        assert everything & kind == kind
    with pytest.raises(ValueError, match=re.escape("not a single namespace kind: USER|PID")):
        _ = (NS.USER | NS.PID).proc_name


# ---- the error contract ---------------------------------------------------------------


@pytest.mark.root
def test_kernel_refusal_is_a_plain_mapped_oserror(tmp_path: Path) -> None:
    missing = tmp_path / "x" / "proc"

    def body() -> None:
        private_mount_ns()
        L.mount("proc", str(missing), "proc")

    with pytest.raises(FileNotFoundError) as info:
        in_child(body)
    exc = info.value
    assert type(exc) is FileNotFoundError
    assert exc.errno == errno.ENOENT
    assert exc.strerror == f"mount('proc', '{missing}', 'proc'): no such file or directory"
    assert "mount(" in str(exc)
    assert "no such file or directory" in str(exc)
    assert MESSAGE.match(exc.strerror)


# ---- unshare ------------------------------------------------------------------------------


@pytest.mark.root
def test_unshare_uts_sets_hostname_only_in_the_child(host_unchanged: Any) -> None:
    host_name = os.uname().nodename
    host_uts = ns_id("uts")
    seen: dict[str, Any] = {}

    def body() -> tuple[str, str]:
        L.unshare(NS.UTS)
        L.sethostname("pynsbind-unshare")
        checkpoint()
        return os.uname().nodename, ns_id("uts")

    def during(pid: int, _: object) -> None:
        seen["host"] = os.uname().nodename
        seen["child_ns"] = ns_id("uts", pid)

    name, uts = in_child(body, during=during)
    assert name == "pynsbind-unshare"
    assert uts != host_uts
    assert seen == {"host": host_name, "child_ns": uts}
    assert os.uname().nodename == host_name


@pytest.mark.root
def test_unshare_several_namespaces_at_once(host_unchanged: Any) -> None:
    flags = NS.MNT | NS.UTS | NS.IPC | NS.NET | NS.CGROUP | NS.PID
    if FEATURES.time_namespace:
        flags |= NS.TIME
    kinds = ["mnt", "uts", "ipc", "net", "cgroup", "pid", "user"]
    if FEATURES.time_namespace:
        kinds.append("time")
    later = ["pid_for_children"] + (["time_for_children"] if FEATURES.time_namespace else [])
    before = {k: ns_id(k) for k in kinds + later}

    def body() -> dict[str, str]:
        L.unshare(flags)
        out = {k: ns_id(k) for k in kinds + later if k != "pid_for_children"}
        try:  # a new pid namespace has no link until its first process
            out["pid_for_children"] = ns_id("pid_for_children")
        except FileNotFoundError:
            out["pid_for_children"] = "none yet"
        return out

    after = in_child(body)
    for k in ("mnt", "uts", "ipc", "net", "cgroup", *later):
        assert after[k] != before[k], k
    # pid and time namespaces apply to the children; the user namespace was not asked
    for k in ("pid", "user") + (("time",) if FEATURES.time_namespace else ()):
        assert after[k] == before[k], k


@needs_userns
def test_unshare_user_gives_the_overflow_uid() -> None:
    overflow = int(Path("/proc/sys/kernel/overflowuid").read_text())
    host_user = ns_id("user")

    def body() -> tuple[str, int]:
        L.unshare(NS.USER)
        return ns_id("user"), os.getuid()

    user, uid = in_child(body)
    assert user != host_user
    assert uid == overflow  # no uid_map written yet


@pytest.mark.root
def test_unshare_refused_without_cap_sys_admin() -> None:
    def body() -> str:
        drop_effective(Capability.SYS_ADMIN)
        try:
            L.unshare(NS.UTS)
        finally:
            assert ns_id("uts") == host_uts
        return "unshared"

    host_uts = ns_id("uts")
    with pytest.raises(PermissionError) as info:
        in_child(body)
    assert info.value.strerror == "unshare(UTS): operation not permitted"


def test_unshare_invalid_flag_changes_nothing() -> None:
    host_uts = ns_id("uts")

    def body() -> None:
        try:
            L.unshare(NS.UTS | 0x8000)  # CLONE_PARENT is no unshare flag
        finally:
            assert ns_id("uts") == host_uts

    with pytest.raises(OSError) as info:
        in_child(body)
    assert info.value.errno == errno.EINVAL
    assert info.value.strerror == "unshare(UTS|0x8000): invalid argument"


# ---- setns and open_namespace ------------------------------------------------------


def _holder() -> dict[str, Any]:
    """In a child: new uts, ipc and net namespaces and a hostname of its own."""
    L.unshare(NS.UTS | NS.IPC | NS.NET)
    L.sethostname("pynsbind-holder")
    return {k: ns_id(k) for k in ("uts", "ipc", "net", "mnt")}


@pytest.mark.root
def test_setns_with_a_namespace_fd(host_unchanged: Any) -> None:
    results: dict[str, Any] = {}

    def during(pid: int, ids: dict[str, str]) -> None:
        fd = L.open_namespace(NS.UTS, pid)
        try:

            def joiner() -> tuple[str, str, str]:
                L.setns(fd, NS.UTS)
                return os.uname().nodename, ns_id("uts"), ns_id("ipc")

            results["joined"] = in_child(joiner)
            results["holder"] = ids
        finally:
            os.close(fd)

    in_child(hold(_holder), during=during)
    name, uts, ipc = results["joined"]
    assert name == "pynsbind-holder"
    assert uts == results["holder"]["uts"]
    assert ipc == ns_id("ipc")  # only the uts namespace was joined


@pytest.mark.root
@needs_pidfd
def test_setns_with_a_pidfd_joins_several_at_once(host_unchanged: Any) -> None:
    results: dict[str, Any] = {}

    def during(pid: int, ids: dict[str, str]) -> None:
        pidfd = L.pidfd_open(pid)
        try:

            def joiner() -> dict[str, str]:
                L.setns(pidfd, NS.UTS | NS.IPC | NS.NET)
                return {k: ns_id(k) for k in ("uts", "ipc", "net", "mnt")} | {
                    "name": os.uname().nodename
                }

            results["joined"] = in_child(joiner)
            results["holder"] = ids
        finally:
            os.close(pidfd)

    in_child(hold(_holder), during=during)
    joined, holder = results["joined"], results["holder"]
    for k in ("uts", "ipc", "net"):
        assert joined[k] == holder[k], k
    assert joined["name"] == "pynsbind-holder"


@pytest.mark.root
def test_setns_refuses_the_wrong_kind() -> None:
    def body() -> None:
        fd = L.open_namespace(NS.UTS)
        L.setns(fd, NS.IPC)

    with pytest.raises(OSError) as info:
        in_child(body)
    assert info.value.errno == errno.EINVAL
    assert re.fullmatch(r"setns\(\d+, IPC\): invalid argument", info.value.strerror)


def test_setns_bad_fd() -> None:
    def body() -> None:
        r, _ = os.pipe()
        L.setns(r, 0)

    with pytest.raises(OSError) as info:
        in_child(body)
    assert info.value.errno == errno.EINVAL
    assert re.fullmatch(r"setns\(\d+, 0\): invalid argument", info.value.strerror)
    with pytest.raises(OSError, match=r"setns\(-1, UTS\): bad file descriptor"):
        in_child(lambda: L.setns(-1, NS.UTS))


def test_open_namespace_opens_the_proc_file() -> None:
    for kind in NS:
        path = f"/proc/self/ns/{kind.proc_name}"
        if not os.path.exists(path):
            continue
        for how in (kind, int(kind), kind.proc_name):
            fd = L.open_namespace(how)
            try:
                assert os.fstat(fd).st_ino == os.stat(path).st_ino
                assert not os.get_inheritable(fd)
                if L.HAS_NS_IOCTLS:
                    assert L.ns_get_nstype(fd) == kind
            finally:
                os.close(fd)
    for name in ("pid_for_children", "time_for_children"):
        if os.path.exists(f"/proc/self/ns/{name}"):
            fd = L.open_namespace(name, os.getpid())
            try:
                assert os.fstat(fd).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino
            finally:
                os.close(fd)


@pytest.mark.root
def test_open_namespace_of_another_process() -> None:
    seen: dict[str, int] = {}

    def during(pid: int, ino: int) -> None:
        for p in (pid, str(pid)):
            fd = L.open_namespace("uts", p)
            try:
                seen[type(p).__name__] = os.fstat(fd).st_ino
            finally:
                os.close(fd)
        seen["child"] = ino

    uts_ino = hold(lambda: os.stat("/proc/self/ns/uts").st_ino)
    in_child(uts_ino, during=during, fork=clone_with(NS.UTS))
    assert seen["int"] == seen["str"] == seen["child"] != os.stat("/proc/self/ns/uts").st_ino


def test_open_namespace_missing_process() -> None:
    missing = pid_max() + 1
    with pytest.raises(FileNotFoundError) as info:
        L.open_namespace(NS.UTS, missing)
    assert info.value.strerror == f"open_namespace('uts', {missing}): no such file or directory"


# ---- clone -----------------------------------------------------------------------------


def test_clone_behaves_like_fork(host_unchanged: Any) -> None:
    r, w = os.pipe()
    pid = L.clone()
    if pid == 0:
        os.write(w, str(os.getppid()).encode())
        os._exit(7)
    os.close(w)
    try:
        assert isinstance(pid, int)
        assert pid > 0
        assert os.read(r, 64) == str(os.getpid()).encode()
    finally:
        os.close(r)
    status = wait_status(pid)
    assert os.WIFEXITED(status)
    assert os.WEXITSTATUS(status) == 7


@needs_pidfd
def test_clone_returns_a_pidfd_when_asked(host_unchanged: Any) -> None:
    r, w = os.pipe()
    res = L.clone(pidfd=True)
    if res == 0:
        os.close(w)
        os.read(r, 1)
        os._exit(5)
    os.close(r)
    assert isinstance(res, tuple)
    pid, pidfd = res
    try:
        assert not os.get_inheritable(pidfd)
        info = Path(f"/proc/self/fdinfo/{pidfd}").read_text()
        assert re.search(rf"^Pid:\s+{pid}$", info, re.M)
        assert select.select([pidfd], [], [], 0)[0] == []  # alive
        os.close(w)
        res2 = os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
        assert res2 is not None
        assert (res2.si_pid, res2.si_status) == (pid, 5)
    finally:
        os.close(pidfd)


@pytest.mark.root
def test_clone_new_pid_namespace_makes_the_child_pid_1(host_unchanged: Any) -> None:
    seen: dict[str, str] = {}

    def body() -> tuple[int, str]:
        checkpoint()
        return os.getpid(), ns_id("pid")

    def during(pid: int, _: object) -> None:
        seen["nspid"] = status_field("NSpid", pid)
        seen["pid"] = str(pid)

    pid1, pidns = in_child(body, during=during, fork=clone_with(NS.PID))
    assert pid1 == 1
    assert pidns != ns_id("pid")
    assert seen["nspid"].split() == [seen["pid"], "1"]


@pytest.mark.root
def test_clone_into_new_namespaces_leaves_the_host_alone(host_unchanged: Any) -> None:
    host = {k: ns_id(k) for k in ("uts", "mnt", "ipc")}

    def body() -> dict[str, str]:
        L.sethostname("pynsbind-clone")
        return {k: ns_id(k) for k in ("uts", "mnt", "ipc", "net")} | {"name": os.uname().nodename}

    child = in_child(body, fork=clone_with(NS.UTS | NS.MNT | NS.IPC))
    assert child["name"] == "pynsbind-clone"
    for k in host:
        assert child[k] != host[k]
    assert child["net"] == ns_id("net")


def _cgroup2_root() -> str | None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if line.partition(" - ")[2].split()[:1] == ["cgroup2"] and fields[4] in (
            "/sys/fs/cgroup",
            "/sys/fs/cgroup/unified",
        ):
            return fields[4]
    return None


@pytest.mark.root
@pytest.mark.cgroup
@pytest.mark.skipif(not FEATURES.clone_into_cgroup, reason="needs CLONE_INTO_CGROUP (5.7)")
@pytest.mark.skipif(_cgroup2_root() is None, reason="no cgroup2 hierarchy mounted")
def test_clone_into_cgroup(host_unchanged: Any) -> None:
    root = _cgroup2_root()
    assert root is not None
    name = f"pynsbind-test-{os.getpid()}"
    path = os.path.join(root, name)
    os.mkdir(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        procs: list[str] = []
        try:

            def during(pid: int, _: object) -> None:
                procs.extend(Path(path, "cgroup.procs").read_text().split())
                procs.append(f"child={pid}")

            def body() -> str:
                checkpoint()
                return Path("/proc/self/cgroup").read_text()

            text = in_child(body, during=during, fork=clone_with(cgroup_fd=fd, pidfd=True))
        finally:
            os.close(fd)
    finally:
        os.rmdir(path)
    assert f"0::/{name}" in text.splitlines()
    assert len(procs) == 2
    assert procs[1] == f"child={procs[0]}"
    assert Path("/proc/self/cgroup").read_text().find(name) == -1


@pytest.mark.root
@pytest.mark.skipif(not FEATURES.clone_into_cgroup, reason="needs CLONE_INTO_CGROUP (5.7)")
def test_clone_into_a_directory_that_is_no_cgroup(tmp_path: Path, host_unchanged: Any) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with pytest.raises(OSError) as info:
            L.clone(NS.UTS, cgroup_fd=fd)
    finally:
        os.close(fd)
    assert info.value.errno == errno.EBADF
    assert info.value.strerror == "clone(UTS): bad file descriptor"


@pytest.mark.root
def test_clone_refused_without_cap_sys_admin() -> None:
    def body() -> list[str]:
        drop_effective(Capability.SYS_ADMIN)
        try:
            L.clone(NS.UTS)
        finally:
            kids = Path(f"/proc/self/task/{os.getpid()}/children").read_text().split()
            assert kids == []
        return kids

    with pytest.raises(PermissionError) as info:
        in_child(body)
    assert info.value.strerror == "clone(UTS): operation not permitted"


def test_clone_runs_the_fork_hooks() -> None:
    """os.register_at_fork hooks run as for os.fork: in a child of the test, since
    hooks cannot be unregistered."""

    def body() -> tuple[list[str], list[str], list[str], list[str]]:
        events: list[str] = []
        os.register_at_fork(
            before=lambda: events.append("before"),
            after_in_parent=lambda: events.append("after_in_parent"),
            after_in_child=lambda: events.append("after_in_child"),
        )
        out: list[list[str]] = []
        for fork in (os.fork, L.clone):
            events.clear()
            r, w = os.pipe()
            pid = fork()
            if pid == 0:
                os.write(w, ",".join(events).encode())
                os._exit(0)
            os.close(w)
            child = os.read(r, 1024).decode().split(",")
            os.close(r)
            assert isinstance(pid, int)
            wait_status(pid)
            out += [list(events), child]
        return out[0], out[1], out[2], out[3]

    fork_parent, fork_child, clone_parent, clone_child = in_child(body)
    assert clone_parent == ["before", "after_in_parent"]
    assert clone_child == ["before", "after_in_child"]
    assert (clone_parent, clone_child) == (fork_parent, fork_child)


def test_clone_child_is_a_sane_python() -> None:
    def body() -> tuple[bool, int, int]:
        r, w = os.pipe()
        pid = L.clone()
        if pid == 0:
            ok = threading.current_thread() is threading.main_thread()
            t = threading.Thread(target=lambda: None)
            t.start()
            t.join()
            line = f"{int(ok)} {threading.active_count()} {threading.get_native_id()}"
            os.write(w, line.encode())
            os._exit(0)
        os.close(w)
        main, count, tid = os.read(r, 100).decode().split()
        assert isinstance(pid, int)
        wait_status(pid)
        return main == "1", int(count), int(tid) - pid

    main, count, tid_delta = in_child(body)
    assert main
    assert count == 1
    assert tid_delta == 0  # the child's main thread id is its pid


def test_clone_warns_in_a_threaded_process(host_unchanged: Any) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        # the child leaves inside the block: it must never run pytest's code
        with pytest.warns(DeprecationWarning, match="multi-threaded"):  # noqa: PT031
            pid = L.clone()
            if pid == 0:
                os._exit(0)
    finally:
        stop.set()
        thread.join()
    assert isinstance(pid, int)
    assert os.WEXITSTATUS(wait_status(pid)) == 0


def test_clone_does_not_warn_single_threaded(host_unchanged: Any) -> None:
    assert threading.active_count() == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pid = L.clone()
        if pid == 0:
            os._exit(0)
    assert isinstance(pid, int)
    wait_status(pid)
    assert caught == []


@needs_pidfd
def test_clone_legacy_path_of_the_c_layer(host_unchanged: Any) -> None:
    """pyfork.c falls back to clone(2): the same contract, without cgroup or time."""
    lib, ffi = L.lib, L.ffi
    out = ffi.new("int *", -1)
    pid = lib.nsb_clone_fork(0, 1, -1, 1, out)
    if pid == 0:
        os._exit(9)
    assert pid > 0
    pidfd = out[0]
    try:
        assert pidfd >= 0
        assert re.search(rf"^Pid:\s+{pid}$", Path(f"/proc/self/fdinfo/{pidfd}").read_text(), re.M)
    finally:
        os.close(pidfd)
    assert os.WEXITSTATUS(wait_status(pid)) == 9
    assert lib.nsb_clone_fork(0, 0, 3, 1, out) == -1
    assert ffi.errno == errno.EINVAL
    if L.HAS_TIME_NS:
        assert lib.nsb_clone_fork(int(NS.TIME), 0, -1, 1, out) == -1
        assert ffi.errno == errno.EINVAL


# ---- namespace ioctls -------------------------------------------------------------


def test_ns_get_userns_of_the_host() -> None:
    fd = L.open_namespace(NS.UTS)
    try:
        user = L.ns_get_userns(fd)
    finally:
        os.close(fd)
    try:
        assert os.fstat(user).st_ino == os.stat("/proc/self/ns/user").st_ino
        assert L.ns_get_nstype(user) == NS.USER
        assert not os.get_inheritable(user)
    finally:
        os.close(user)


@pytest.mark.root
def test_ns_get_userns_of_a_new_user_namespace() -> None:
    seen: dict[str, int] = {}

    def during(pid: int, user_ino: int) -> None:
        fd = L.open_namespace(NS.UTS, pid)
        try:
            owner = L.ns_get_userns(fd)
            seen["owner"] = os.fstat(owner).st_ino
            os.close(owner)
        finally:
            os.close(fd)
        seen["user"] = user_ino

    in_child(
        hold(lambda: os.stat("/proc/self/ns/user").st_ino),
        during=during,
        fork=clone_with(NS.USER | NS.UTS),
    )
    assert seen["owner"] == seen["user"] != os.stat("/proc/self/ns/user").st_ino


@pytest.mark.root
def test_ns_get_parent_of_a_child_pid_namespace() -> None:
    seen: dict[str, int] = {}

    def during(pid: int, _: object) -> None:
        fd = L.open_namespace(NS.PID, pid)
        try:
            parent = L.ns_get_parent(fd)
            seen["parent"] = os.fstat(parent).st_ino
            assert L.ns_get_nstype(parent) == NS.PID
            os.close(parent)
        finally:
            os.close(fd)

    in_child(hold(), during=during, fork=clone_with(NS.PID))
    assert seen["parent"] == os.stat("/proc/self/ns/pid").st_ino


def test_ns_get_parent_refusals() -> None:
    pid_fd = L.open_namespace(NS.PID)
    uts_fd = L.open_namespace(NS.UTS)
    try:
        if len(status_field("NSpid").split()) == 1:  # the initial pid namespace has no parent
            with pytest.raises(PermissionError) as info:
                L.ns_get_parent(pid_fd)
            assert info.value.strerror == f"ioctl NS_GET_PARENT({pid_fd}): operation not permitted"
        with pytest.raises(OSError) as info2:
            L.ns_get_parent(uts_fd)  # not a hierarchical namespace
        assert info2.value.errno == errno.EINVAL
    finally:
        os.close(pid_fd)
        os.close(uts_fd)


def test_ns_get_nstype_of_each_kind_and_of_no_namespace() -> None:
    for kind in NS:
        if not os.path.exists(f"/proc/self/ns/{kind.proc_name}"):
            continue
        with open(f"/proc/self/ns/{kind.proc_name}") as f:
            assert L.ns_get_nstype(f) == kind  # an object with fileno() is an fd
    r, w = os.pipe()
    try:
        with pytest.raises(OSError) as info:
            L.ns_get_nstype(r)
        assert info.value.errno == errno.ENOTTY
        assert info.value.strerror == (f"ioctl NS_GET_NSTYPE({r}): inappropriate ioctl for device")
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.root
@needs_userns
def test_ns_get_owner_uid() -> None:
    fd = L.open_namespace(NS.USER)
    try:
        assert L.ns_get_owner_uid(fd) == 0  # the initial user namespace
    finally:
        os.close(fd)
    seen: dict[str, int] = {}

    def body() -> None:
        os.setgroups([])
        os.setresgid(1234, 1234, 1234)
        os.setresuid(1234, 1234, 1234)
        L.unshare(NS.USER)
        checkpoint()

    def during(pid: int, _: object) -> None:
        ufd = L.open_namespace(NS.USER, pid)
        try:
            seen["owner"] = L.ns_get_owner_uid(ufd)
        finally:
            os.close(ufd)

    in_child(body, during=during)
    assert seen["owner"] == 1234
    uts = L.open_namespace(NS.UTS)
    try:
        with pytest.raises(OSError, match=r"ioctl NS_GET_OWNER_UID\(\d+\): invalid argument"):
            L.ns_get_owner_uid(uts)
    finally:
        os.close(uts)


# ---- mount and umount2 -----------------------------------------------------------------


@pytest.mark.root
def test_tmpfs_in_a_new_mount_namespace_never_shows_on_the_host(
    tmp_path: Path, host_unchanged: Any
) -> None:
    target = str(tmp_path)
    seen: dict[str, Any] = {}

    def body() -> tuple[bool, bool]:
        private_mount_ns()
        L.mount("tmpfs", target, "tmpfs", MountFlags.NOSUID | MountFlags.NODEV, "size=1m,mode=0710")
        Path(target, "inside").write_text("x")
        checkpoint()
        L.umount2(target)
        return os.path.exists(os.path.join(target, "inside")), target in mounts()

    def during(pid: int, _: object) -> None:
        seen["child"] = mounts(pid).get(target)
        seen["host"] = mounts().get(target)
        seen["host_sees_file"] = os.path.exists(os.path.join(target, "inside"))

    file_after, mounted_after = in_child(body, during=during)
    child = seen["child"]
    assert child is not None
    assert child["fstype"] == "tmpfs"
    assert {"nosuid", "nodev"} <= child["opts"]
    assert {"size=1024k", "mode=710"} <= child["super"]
    assert seen["host"] is None
    assert seen["host_sees_file"] is False
    assert (file_after, mounted_after) == (False, False)


@pytest.mark.root
def test_mount_bind_and_remount_readonly(tmp_path: Path, host_unchanged: Any) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()

    def body() -> tuple[int, str]:
        private_mount_ns()
        L.mount(src, os.fsencode(dst), None, MountFlags.BIND)  # PathLike and bytes
        L.mount(None, dst, None, MountFlags.REMOUNT | MountFlags.BIND | MountFlags.RDONLY)
        (src / "through-src").write_text("x")  # the source stays writable
        try:
            (dst / "through-dst").write_text("x")
        except OSError as exc:
            return exc.errno or 0, (dst / "through-src").read_text()
        return 0, ""

    err, seen = in_child(body)
    assert err == errno.EROFS
    assert seen == "x"
    assert not (dst / "through-src").exists()  # the host never had the bind mount


@pytest.mark.root
def test_umount2_busy_then_detach(tmp_path: Path, host_unchanged: Any) -> None:
    target = str(tmp_path)

    def body() -> tuple[str, bytes, bool]:
        private_mount_ns()
        L.mount("tmpfs", target, "tmpfs")
        Path(target, "f").write_text("kept")
        fd = os.open(os.path.join(target, "f"), os.O_RDONLY)
        os.chdir(target)
        try:
            L.umount2(target)
        except OSError as exc:
            busy = exc.strerror or ""
        else:
            busy = "unmounted"
        L.umount2(target, UmountFlags.DETACH)
        return busy, os.pread(fd, 10, 0), target in mounts()

    busy, data, still = in_child(body)
    assert busy == f"umount2('{target}'): device or resource busy"
    assert data == b"kept"  # a detached mount lives on for its open files
    assert still is False


@pytest.mark.root
def test_mount_and_umount2_refusals(tmp_path: Path) -> None:
    def body() -> list[tuple[str, int, str]]:
        private_mount_ns()
        out = []
        for call in (
            lambda: L.mount("proc", tmp_path / "missing" / "proc", "proc"),
            lambda: L.mount("none", tmp_path, "nosuchfs"),
            lambda: L.umount2(tmp_path),
        ):
            try:
                call()
            except OSError as exc:
                out.append((type(exc).__name__, exc.errno or 0, exc.strerror or ""))
        drop_effective(Capability.SYS_ADMIN)
        try:
            L.mount("tmpfs", tmp_path, "tmpfs")
        except OSError as exc:
            out.append((type(exc).__name__, exc.errno or 0, exc.strerror or ""))
        return out

    out = in_child(body)
    assert out == [
        (
            "FileNotFoundError",
            errno.ENOENT,
            f"mount('proc', '{tmp_path}/missing/proc', 'proc'): no such file or directory",
        ),
        ("OSError", errno.ENODEV, f"mount('none', '{tmp_path}', 'nosuchfs'): no such device"),
        ("OSError", errno.EINVAL, f"umount2('{tmp_path}'): invalid argument"),
        (
            "PermissionError",
            errno.EPERM,
            f"mount('tmpfs', '{tmp_path}', 'tmpfs'): operation not permitted",
        ),
    ]
    for _, _, message in out:
        assert MESSAGE.match(message), message


# ---- pivot_root --------------------------------------------------------------------------


@pytest.mark.root
@pytest.mark.parametrize("put_old", ["old", "."])
def test_pivot_root_into_a_tmpfs(tmp_path: Path, put_old: str, host_unchanged: Any) -> None:
    new_root = str(tmp_path)
    host_root = sorted(os.listdir("/"))

    def body() -> tuple[list[str], bool, str]:
        private_mount_ns()
        L.mount("tmpfs", new_root, "tmpfs")
        Path(new_root, "marker").write_text("new root")
        if put_old != ".":
            os.mkdir(os.path.join(new_root, put_old))
        os.chdir(new_root)
        L.pivot_root(".", put_old)
        if put_old == ".":
            L.umount2(".", UmountFlags.DETACH)  # the old root is stacked on "."
        else:
            L.umount2("/old", UmountFlags.DETACH)
            os.rmdir("/old")
        os.chdir("/")
        return sorted(os.listdir("/")), os.path.exists("/proc/self"), Path("/marker").read_text()

    listing, has_proc, marker = in_child(body)
    assert listing == ["marker"]
    assert has_proc is False
    assert marker == "new root"
    assert sorted(os.listdir("/")) == host_root
    assert os.listdir(new_root) == []


@pytest.mark.root
def test_pivot_root_refusals(tmp_path: Path) -> None:
    sub = tmp_path / "sub"

    def body() -> list[tuple[int, str]]:
        private_mount_ns()
        L.mount("tmpfs", tmp_path, "tmpfs")
        (sub / "old").mkdir(parents=True)
        out = []
        # sub is not a mount point; a missing new root
        for new, old in ((sub, sub / "old"), (tmp_path / "missing", tmp_path)):
            try:
                L.pivot_root(new, old)
            except OSError as exc:
                out.append((exc.errno or 0, exc.strerror or ""))
        return out

    assert in_child(body) == [
        (errno.EINVAL, f"pivot_root('{sub}', '{sub}/old'): invalid argument"),
        (
            errno.ENOENT,
            f"pivot_root('{tmp_path}/missing', '{tmp_path}'): no such file or directory",
        ),
    ]


# ---- open_tree and move_mount ---------------------------------------------------------


@pytest.mark.root
@needs_new_mount_api
def test_open_tree_clone_then_move_mount(tmp_path: Path, host_unchanged: Any) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()

    def body() -> dict[str, Any]:
        private_mount_ns()
        L.mount("tmpfs", a, "tmpfs")
        (a / "f").write_text("tree")
        fd = L.open_tree(None, a, OpenTreeFlags.CLONE | OpenTreeFlags.CLOEXEC)
        out = {
            "cloexec": not os.get_inheritable(fd),
            "detached": sorted(os.listdir(f"/proc/self/fd/{fd}")),
            "b_before": str(b) in mounts(),
        }
        L.move_mount(fd, "", None, b, MoveMountFlags.F_EMPTY_PATH)
        os.close(fd)
        out |= {"b": (b / "f").read_text(), "a_mounted": str(a) in mounts()}
        out["b_mounted"] = str(b) in mounts()
        return out

    out = in_child(body)
    assert out == {
        "cloexec": True,
        "detached": ["f"],
        "b_before": False,
        "b": "tree",
        "a_mounted": True,
        "b_mounted": True,
    }


@pytest.mark.root
@needs_new_mount_api
def test_move_mount_of_an_attached_tree_moves_it(tmp_path: Path, host_unchanged: Any) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    def body() -> tuple[bool, bool, str]:
        private_mount_ns()
        L.mount("tmpfs", tmp_path / "a", "tmpfs")
        (tmp_path / "a" / "f").write_text("moved")
        dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        fd = L.open_tree(dfd, "a")  # relative to a directory fd
        assert not os.get_inheritable(fd)  # close-on-exec by default
        L.move_mount(fd, "", dfd, "b", MoveMountFlags.F_EMPTY_PATH)
        table = mounts()
        return (
            str(tmp_path / "a") in table,
            str(tmp_path / "b") in table,
            (tmp_path / "b" / "f").read_text(),
        )

    assert in_child(body) == (False, True, "moved")


@pytest.mark.root
@needs_new_mount_api
def test_open_tree_and_move_mount_refusals(tmp_path: Path) -> None:
    def body() -> list[tuple[int, str]]:
        private_mount_ns()
        out = []
        calls: list[Callable[[], Any]] = [
            lambda: L.open_tree(None, tmp_path / "missing"),
            lambda: L.open_tree(None, tmp_path, 1 << 20),
            lambda: L.move_mount(None, tmp_path, None, tmp_path / "missing"),
        ]
        for call in calls:
            try:
                call()
            except OSError as exc:
                out.append((exc.errno or 0, exc.strerror or ""))
        return out

    assert in_child(body) == [
        (errno.ENOENT, f"open_tree('{tmp_path}/missing'): no such file or directory"),
        (errno.EINVAL, f"open_tree('{tmp_path}'): invalid argument"),
        (
            errno.ENOENT,
            f"move_mount('{tmp_path}' -> '{tmp_path}/missing'): no such file or directory",
        ),
    ]


# ---- fsopen, fsconfig, fsmount, fspick ------------------------------------------------


@pytest.mark.root
@needs_new_mount_api
def test_fsopen_fsconfig_fsmount_builds_a_mount(tmp_path: Path, host_unchanged: Any) -> None:
    target = str(tmp_path)

    def body() -> dict[str, Any]:
        private_mount_ns()
        fs = L.fsopen("tmpfs")
        L.fsconfig(fs, FsconfigCmd.SET_STRING, "size", "1m")
        L.fsconfig(fs, FsconfigCmd.SET_STRING, b"mode", b"0710")
        L.fsconfig(fs, FsconfigCmd.CMD_CREATE)
        mfd = L.fsmount(fs, FsmountFlags.CLOEXEC, MountAttr.NODEV | MountAttr.NOEXEC)
        out: dict[str, Any] = {"cloexec": [not os.get_inheritable(x) for x in (fs, mfd)]}
        L.move_mount(mfd, "", None, target, MoveMountFlags.F_EMPTY_PATH)
        out["mount"] = mounts()[target]
        out["mode"] = stat.S_IMODE(os.stat(target).st_mode)
        return out

    out = in_child(body)
    assert out["cloexec"] == [True, True]
    assert out["mount"]["fstype"] == "tmpfs"
    assert {"nodev", "noexec"} <= out["mount"]["opts"]
    assert {"size=1024k", "mode=710"} <= out["mount"]["super"]
    assert out["mode"] == 0o710


@pytest.mark.root
@needs_new_mount_api
def test_fsmount_gives_a_detached_mount_the_host_never_sees(host_unchanged: Any) -> None:
    """No new mount namespace here: a detached mount is in no namespace at all."""
    host_mounts = Path("/proc/self/mountinfo").read_text()
    seen: dict[str, Any] = {}

    def body() -> tuple[str, int]:
        fs = L.fsopen("tmpfs")
        L.fsconfig(fs, FsconfigCmd.SET_FLAG, "ro")
        L.fsconfig(fs, FsconfigCmd.CMD_CREATE)
        mfd = L.fsmount(fs)
        root = f"/proc/self/fd/{mfd}"
        try:
            os.open(os.path.join(root, "f"), os.O_CREAT | os.O_WRONLY)
        except OSError as exc:
            err = exc.errno or 0
        else:
            err = 0
        checkpoint()
        return Path("/proc/self/mountinfo").read_text(), err

    def during(pid: int, _: object) -> None:
        seen["host"] = Path("/proc/self/mountinfo").read_text()

    child_mounts, err = in_child(body, during=during)
    assert err == errno.EROFS  # the "ro" flag made it
    assert child_mounts == host_mounts == seen["host"]


@pytest.mark.root
@needs_new_mount_api
def test_fsopen_and_fsconfig_refusals() -> None:
    def body() -> tuple[int, list[tuple[int, str]]]:
        out = []
        fs = L.fsopen("tmpfs")

        def premature() -> None:
            L.fsmount(fs)  # before CMD_CREATE

        for call in (
            lambda: L.fsopen("nosuchfs"),
            lambda: L.fsconfig(fs, FsconfigCmd.SET_STRING, "nosuchoption", "1"),
            premature,
            lambda: L.fsconfig(999, FsconfigCmd.CMD_CREATE),
        ):
            try:
                call()
            except OSError as exc:
                out.append((exc.errno or 0, exc.strerror or ""))
        return fs, out

    fs, out = in_child(body)
    assert out == [
        (errno.ENODEV, "fsopen('nosuchfs'): no such device"),
        (errno.EINVAL, f"fsconfig({fs}, SET_STRING, 'nosuchoption'): invalid argument"),
        (errno.EINVAL, f"fsmount({fs}): invalid argument"),
        (errno.EBADF, "fsconfig(999, CMD_CREATE, None): bad file descriptor"),
    ]


@pytest.mark.root
@needs_new_mount_api
def test_fspick_reconfigures_a_tmpfs_read_only(tmp_path: Path, host_unchanged: Any) -> None:
    target = str(tmp_path)

    def body() -> list[Any]:
        private_mount_ns()
        L.mount("tmpfs", target, "tmpfs")
        out: list[Any] = []

        def try_write(name: str) -> int:
            try:
                Path(target, name).write_text("x")
            except OSError as exc:
                return exc.errno or 0
            return 0

        out.append(try_write("before"))
        pfd = L.fspick(None, target)
        out.append(not os.get_inheritable(pfd))
        L.fsconfig(pfd, FsconfigCmd.SET_FLAG, "ro")
        L.fsconfig(pfd, FsconfigCmd.CMD_RECONFIGURE)
        out += [try_write("during"), "ro" in mounts()[target]["super"]]
        L.fsconfig(pfd, FsconfigCmd.SET_FLAG, "rw")
        L.fsconfig(pfd, FsconfigCmd.CMD_RECONFIGURE)
        out += [try_write("after"), sorted(os.listdir(target))]
        try:
            os.mkdir(os.path.join(target, "sub"))
            L.fspick(None, os.path.join(target, "sub"))  # not the root of a mount
        except OSError as exc:
            out.append(exc.strerror)
        return out

    assert in_child(body) == [
        0,
        True,
        errno.EROFS,
        True,
        0,
        ["after", "before"],
        f"fspick('{target}/sub'): invalid argument",
    ]


# ---- mount_setattr ----------------------------------------------------------------------


@pytest.mark.root
@needs_mount_setattr
def test_mount_setattr_makes_a_bind_mount_read_only(tmp_path: Path, host_unchanged: Any) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()

    def write(path: Path) -> int:
        try:
            path.write_text("x")
        except OSError as exc:
            return exc.errno or 0
        return 0

    def body() -> list[Any]:
        private_mount_ns()
        L.mount("tmpfs", src, "tmpfs")
        (src / "sub").mkdir()
        L.mount("tmpfs", src / "sub", "tmpfs")
        L.mount(src, dst, None, MountFlags.BIND | MountFlags.REC)
        L.mount_setattr(None, dst, attr_set=MountAttr.RDONLY)
        out: list[Any] = [write(dst / "f"), write(src / "f"), write(dst / "sub" / "f")]
        out.append("ro" in mounts()[str(dst)]["opts"])
        L.mount_setattr(None, dst, attr_clr=MountAttr.RDONLY)
        out.append(write(dst / "g"))
        dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        L.mount_setattr(dfd, "dst", L.AT_RECURSIVE, attr_set=MountAttr.RDONLY)
        out += [write(dst / "h"), write(dst / "sub" / "h")]
        return out

    assert in_child(body) == [errno.EROFS, 0, 0, True, 0, errno.EROFS, errno.EROFS]


@pytest.mark.root
@needs_mount_setattr
def test_mount_setattr_propagation(tmp_path: Path, host_unchanged: Any) -> None:
    def body() -> tuple[list[str], list[str]]:
        private_mount_ns()
        L.mount("tmpfs", tmp_path, "tmpfs")
        L.mount_setattr(None, tmp_path, propagation=MountFlags.SHARED)
        shared = mounts()[str(tmp_path)]["optional"]
        L.mount_setattr(None, tmp_path, propagation=MountFlags.PRIVATE)
        return shared, mounts()[str(tmp_path)]["optional"]

    shared, private = in_child(body)
    assert len(shared) == 1
    assert shared[0].startswith("shared:")
    assert private == []


def _user_namespace_with_map(uid: int) -> int:
    """In a child of the test: a user namespace whose root is uid (and gid) on the
    host, kept by an fd after its owner exits."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            L.unshare(NS.USER)
            os.write(ready_w, b"r")
            os.read(go_r, 1)
        finally:
            os._exit(0)
    assert os.read(ready_r, 1) == b"r"
    Path(f"/proc/{pid}/uid_map").write_text(f"0 {uid} 1\n")
    Path(f"/proc/{pid}/gid_map").write_text(f"0 {uid} 1\n")
    fd = L.open_namespace(NS.USER, pid)
    os.write(go_w, b"g")
    wait_status(pid)
    for x in (ready_r, ready_w, go_r, go_w):
        os.close(x)
    return fd


@pytest.mark.root
@needs_mount_setattr
@needs_userns
def test_mount_setattr_idmapped_mount_shows_the_mapped_owner(
    tmp_path: Path, host_unchanged: Any
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()

    def body() -> list[Any]:
        userns = _user_namespace_with_map(1000)
        private_mount_ns()
        L.mount("tmpfs", src, "tmpfs")
        (src / "f").write_text("x")
        out: list[Any] = []
        try:  # only a detached mount can be idmapped
            L.mount_setattr(None, src, attr_set=MountAttr.IDMAP, userns_fd=userns)
        except OSError as exc:
            out.append(exc.strerror)
        tree = L.open_tree(None, src, OpenTreeFlags.CLONE | OpenTreeFlags.CLOEXEC)
        L.mount_setattr(tree, "", L.AT_EMPTY_PATH, attr_set=MountAttr.IDMAP, userns_fd=userns)
        L.move_mount(tree, "", None, dst, MoveMountFlags.F_EMPTY_PATH)
        for p in (src / "f", dst / "f"):
            st = os.stat(p)
            out.append((st.st_uid, st.st_gid))
        out.append("idmapped" in mounts()[str(dst)]["opts"])
        return out

    assert in_child(body) == [
        f"mount_setattr('{src}'): invalid argument",
        (0, 0),
        (1000, 1000),
        True,
    ]


@pytest.mark.root
@needs_mount_setattr
def test_mount_setattr_refusals(tmp_path: Path) -> None:
    def body() -> list[tuple[int, str]]:
        private_mount_ns()
        out = []
        for call in (
            lambda: L.mount_setattr(None, tmp_path / "missing", attr_set=MountAttr.RDONLY),
            lambda: L.mount_setattr(None, tmp_path, attr_set=1 << 40),
        ):
            try:
                call()
            except OSError as exc:
                out.append((exc.errno or 0, exc.strerror or ""))
        return out

    assert in_child(body) == [
        (errno.ENOENT, f"mount_setattr('{tmp_path}/missing'): no such file or directory"),
        (errno.EINVAL, f"mount_setattr('{tmp_path}'): invalid argument"),
    ]


# ---- sethostname and setdomainname ----------------------------------------------------


def _host_domainname() -> str:
    return Path("/proc/sys/kernel/domainname").read_text()


@pytest.mark.root
def test_sethostname_and_setdomainname_stay_in_the_uts_namespace(host_unchanged: Any) -> None:
    host = (os.uname().nodename, _host_domainname())
    seen: list[tuple[str, str]] = []

    def body() -> tuple[str, str]:
        L.unshare(NS.UTS)
        L.sethostname(b"pynsbind-uts")
        L.setdomainname("pynsbind.test")
        checkpoint()
        return os.uname().nodename, _host_domainname()

    def during(pid: int, _: object) -> None:
        seen.append((os.uname().nodename, _host_domainname()))

    child = in_child(body, during=during)
    assert child == ("pynsbind-uts", "pynsbind.test\n")
    assert seen == [host]
    assert (os.uname().nodename, _host_domainname()) == host


@pytest.mark.root
def test_sethostname_refusals() -> None:
    def body() -> list[tuple[int, str]]:
        L.unshare(NS.UTS)
        out = []
        for call in (
            lambda: L.sethostname("h" * 65),
            lambda: L.setdomainname("d" * 65),
            lambda: (drop_effective(Capability.SYS_ADMIN), L.sethostname("nope")),
        ):
            try:
                call()
            except OSError as exc:
                out.append((exc.errno or 0, exc.strerror or ""))
        return out

    assert in_child(body) == [
        (errno.EINVAL, f"sethostname('{'h' * 65}'): invalid argument"),
        (errno.EINVAL, f"setdomainname('{'d' * 65}'): invalid argument"),
        (errno.EPERM, "sethostname('nope'): operation not permitted"),
    ]


# ---- pidfds --------------------------------------------------------------------------------


def _sleeper() -> tuple[int, int]:
    """A child blocked on a pipe: (pid, the write end that releases it)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(w)
            os.read(r, 1)
        finally:
            os._exit(0)
    os.close(r)
    return pid, w


@needs_pidfd
def test_pidfd_open(host_unchanged: Any) -> None:
    pid, release = _sleeper()
    try:
        fd = L.pidfd_open(pid)
        nb = L.pidfd_open(pid, L.PIDFD_NONBLOCK)
        try:
            assert re.search(rf"^Pid:\s+{pid}$", Path(f"/proc/self/fdinfo/{fd}").read_text(), re.M)
            assert not os.get_inheritable(fd)
            assert os.get_blocking(fd)
            assert not os.get_blocking(nb)
        finally:
            os.close(fd)
            os.close(nb)
    finally:
        os.close(release)
        wait_status(pid)


@needs_pidfd
def test_pidfd_send_signal_kills_the_right_process(host_unchanged: Any) -> None:
    a, release_a = _sleeper()
    b, release_b = _sleeper()
    fa, fb = L.pidfd_open(a), L.pidfd_open(b)
    try:
        L.pidfd_send_signal(fa, 0)  # a probe: it is alive
        L.pidfd_send_signal(fa, signal.SIGTERM)
        status = wait_status(a)
        assert os.WIFSIGNALED(status)
        assert os.WTERMSIG(status) == signal.SIGTERM
        assert os.waitpid(b, os.WNOHANG) == (0, 0)  # b lives on
        with pytest.raises(ProcessLookupError) as info:
            L.pidfd_send_signal(fa, 0)  # a is gone: its pidfd never points elsewhere
        assert info.value.strerror == f"pidfd_send_signal({fa}, 0): no such process"
        L.pidfd_send_signal(fb, signal.SIGKILL)
        assert os.WTERMSIG(wait_status(b)) == signal.SIGKILL
    finally:
        for x in (fa, fb, release_a, release_b):
            os.close(x)


@needs_pidfd
def test_pidfd_refusals(host_unchanged: Any) -> None:
    missing = pid_max() + 1
    with pytest.raises(ProcessLookupError) as info:
        L.pidfd_open(missing)
    assert info.value.strerror == f"pidfd_open({missing}): no such process"
    with pytest.raises(OSError, match=r"^\[Errno 22\] pidfd_open\(-1\): invalid argument$"):
        L.pidfd_open(-1)
    r, w = os.pipe()
    pid, release = _sleeper()
    fd = L.pidfd_open(pid)
    try:
        with pytest.raises(OSError) as info2:
            L.pidfd_send_signal(r, signal.SIGTERM)  # no pidfd
        assert info2.value.errno == errno.EBADF
        assert info2.value.strerror == f"pidfd_send_signal({r}, 15): bad file descriptor"
        with pytest.raises(OSError) as info3:
            L.pidfd_send_signal(fd, 1000)
        assert info3.value.errno == errno.EINVAL
        with pytest.raises(OSError) as info4:
            L.pidfd_send_signal(fd, 0, 1 << 20)
        assert info4.value.errno == errno.EINVAL
        assert os.waitpid(pid, os.WNOHANG) == (0, 0)  # no refused call touched it
    finally:
        for x in (r, w, fd, release):
            os.close(x)
        wait_status(pid)


@pytest.mark.skipif(not FEATURES.pidfd_getfd, reason="needs pidfd_getfd (Linux 5.6)")
def test_pidfd_getfd_copies_the_fd_of_another_process(host_unchanged: Any) -> None:
    def body() -> bytes:
        r, w = os.pipe()
        checkpoint(w)
        os.close(w)
        return os.read(r, 100)

    got: dict[str, Any] = {}

    def during(pid: int, target: int) -> None:
        pidfd = L.pidfd_open(pid)
        try:
            copy = L.pidfd_getfd(pidfd, target)
            try:
                got["cloexec"] = not os.get_inheritable(copy)
                os.write(copy, b"through the copy")
            finally:
                os.close(copy)
            with pytest.raises(OSError) as info:
                L.pidfd_getfd(pidfd, 999)
            got["missing"] = info.value.strerror
            with pytest.raises(OSError) as info2:
                L.pidfd_getfd(pidfd, target, 1)
            got["flags"] = info2.value.errno
        finally:
            os.close(pidfd)

    assert in_child(body, during=during) == b"through the copy"
    assert got["cloexec"] is True
    assert re.fullmatch(r"pidfd_getfd\(\d+, 999\): bad file descriptor", got["missing"])
    assert got["flags"] == errno.EINVAL


# ---- close_range ---------------------------------------------------------------------------


def _fds_at(numbers: range) -> None:
    null = os.open("/dev/null", os.O_RDONLY)
    for n in numbers:
        os.dup2(null, n, inheritable=True)
    os.close(null)


@needs_close_range
def test_close_range_closes_what_it_should() -> None:
    def body() -> tuple[list[int], list[int]]:
        _fds_at(range(200, 206))
        _fds_at(range(300, 303))
        L.close_range(201, 203)
        first = [n for n in range(199, 207) if fd_is_open(n)]
        L.close_range(300)  # up to the last fd
        second = [n for n in (200, 204, 205, 300, 301, 302) if fd_is_open(n)]
        return first, second

    first, second = in_child(body)
    assert first == [200, 204, 205]
    assert second == [200, 204, 205]


@pytest.mark.skipif(
    L.lib.nsb_probe(L.lib.NSB_PROBE_CLOSE_RANGE_CLOEXEC) != 1,
    reason="needs CLOSE_RANGE_CLOEXEC (Linux 5.11)",
)
def test_close_range_cloexec_marks_without_closing() -> None:
    def body() -> list[tuple[int, bool, bool]]:
        _fds_at(range(200, 204))
        L.close_range(201, 202, CloseRangeFlags.CLOEXEC)
        return [(n, fd_is_open(n), os.get_inheritable(n)) for n in range(200, 204)]

    assert in_child(body) == [
        (200, True, True),
        (201, True, False),
        (202, True, False),
        (203, True, True),
    ]


@needs_close_range
def test_close_range_refusals() -> None:
    def body() -> list[Any]:
        _fds_at(range(200, 206))
        out: list[Any] = []
        for call in (lambda: L.close_range(205, 200), lambda: L.close_range(200, 205, 1 << 20)):
            try:
                call()
            except OSError as exc:
                out.append((exc.errno, exc.strerror))
        out.append([n for n in range(200, 206) if fd_is_open(n)])
        return out

    assert in_child(body) == [
        (errno.EINVAL, "close_range(205, 200): invalid argument"),
        (errno.EINVAL, "close_range(200, 205): invalid argument"),
        list(range(200, 206)),  # nothing closed
    ]


# ---- capabilities ------------------------------------------------------------------------


def test_capget_matches_proc_status() -> None:
    known = known_caps_mask()
    caps = L.capget()
    assert isinstance(caps, L.CapSets)
    assert caps_mask(caps.effective) == status_mask("CapEff") & known
    assert caps_mask(caps.permitted) == status_mask("CapPrm") & known
    assert caps_mask(caps.inheritable) == status_mask("CapInh") & known
    for s in caps:
        assert all(type(c) is Capability for c in s)


@pytest.mark.root
def test_capget_of_another_process() -> None:
    seen: dict[str, Any] = {}

    def during(pid: int, _: object) -> None:
        seen["caps"] = L.capget(pid)
        seen["eff"] = status_mask("CapEff", pid)

    in_child(hold(lambda: drop_effective(Capability.NET_RAW, Capability.CHOWN)), during=during)
    assert Capability.NET_RAW not in seen["caps"].effective
    assert Capability.NET_RAW in seen["caps"].permitted
    assert caps_mask(seen["caps"].effective) == seen["eff"] & known_caps_mask()


@pytest.mark.root
def test_capset_drops_a_capability() -> None:
    def body() -> tuple[int, int, str]:
        drop_effective(Capability.NET_RAW)
        eff = status_mask("CapEff")
        try:
            socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
        except OSError as exc:
            err = exc.errno or 0
        else:
            err = 0
        caps = L.capget()
        L.capset(caps.effective, caps.permitted - {Capability.NET_RAW}, caps.inheritable)
        try:  # what left permitted never comes back
            L.capset(caps.effective | {Capability.NET_RAW}, caps.permitted, caps.inheritable)
        except OSError as exc:
            refused = exc.strerror or ""
        else:
            refused = ""
        return eff, err, refused

    eff, err, refused = in_child(body)
    assert not eff >> int(Capability.NET_RAW) & 1
    assert err == errno.EPERM
    assert refused == "capset(0): operation not permitted"
    assert Capability.NET_RAW in L.capget().effective  # the test process kept it


def test_capget_refusal() -> None:
    missing = pid_max() + 1
    with pytest.raises(ProcessLookupError) as info:
        L.capget(missing)
    assert info.value.strerror == f"capget({missing}): no such process"


# ---- prctl --------------------------------------------------------------------------------


def test_pdeathsig_kills_the_orphan() -> None:
    """S (a subreaper) forks C, C forks G with PR_SET_PDEATHSIG=SIGKILL; when C
    exits G dies of SIGKILL, and S, which inherits G, sees how."""

    def read_line(fd: int) -> bytes:
        line = b""
        while not line.endswith(b"\n"):
            chunk = os.read(fd, 64)
            assert chunk, "the writer died"
            line += chunk
        return line

    def body() -> tuple[int, int, int]:
        L.set_child_subreaper(True)
        to_c_r, to_c_w = os.pipe()
        to_s_r, to_s_w = os.pipe()
        c = os.fork()
        if c == 0:
            g = os.fork()
            if g == 0:
                try:
                    before = L.get_pdeathsig()
                    L.set_pdeathsig(signal.SIGKILL)
                    os.write(to_c_w, f"{os.getpid()} {before} {L.get_pdeathsig()}\n".encode())
                    signal.pause()
                finally:
                    os._exit(3)
            # C exits only once G has its pdeathsig: else G could outlive C unarmed
            os.write(to_s_w, read_line(to_c_r))
            os._exit(0)
        gpid, before, after = (int(x) for x in read_line(to_s_r).split())
        gfd = L.pidfd_open(gpid)
        wait_status(c)
        if not select.select([gfd], [], [], 60)[0]:  # a safety net, not a timing claim:
            L.pidfd_send_signal(gfd, signal.SIGUSR2)  # a failure shows as SIGUSR2
        status = wait_status(gpid)  # G is ours now: we are its subreaper
        return before, after, status

    before, after, status = in_child(body)
    assert (before, after) == (0, signal.SIGKILL)
    assert os.WIFSIGNALED(status)
    assert os.WTERMSIG(status) == signal.SIGKILL


def test_child_subreaper_inherits_orphans() -> None:
    def body() -> tuple[bool, bool, int, int]:
        before = L.get_child_subreaper()
        L.set_child_subreaper(True)
        after = L.get_child_subreaper()
        report_r, report_w = os.pipe()
        go_r, go_w = os.pipe()
        c = os.fork()
        if c == 0:
            g = os.fork()
            if g == 0:
                os.read(go_r, 1)
                os.write(report_w, str(os.getppid()).encode())
                os._exit(0)
            os.write(report_w, f"{g}:".encode())
            os._exit(0)
        gpid = int(os.read(report_r, 64).decode().rstrip(":"))
        wait_status(c)
        os.write(go_w, b"g")
        ppid = int(os.read(report_r, 64))
        wait_status(gpid)
        return before, after, ppid, os.getpid()

    before, after, ppid, me = in_child(body)
    assert (before, after) == (False, True)
    assert ppid == me


def test_no_new_privs() -> None:
    def body() -> tuple[bool, bool, str]:
        before = L.get_no_new_privs()
        L.set_no_new_privs()
        return before, L.get_no_new_privs(), status_field("NoNewPrivs")

    assert in_child(body) == (False, True, "1")
    assert status_field("NoNewPrivs") == "0"


@pytest.mark.root
def test_dumpable_decides_who_owns_proc_files() -> None:
    def body() -> list[Any]:
        os.setgroups([])
        os.setresgid(1234, 1234, 1234)
        os.setresuid(1234, 1234, 1234)
        L.set_dumpable(True)
        out: list[Any] = [L.get_dumpable(), os.stat("/proc/self/status").st_uid]
        L.set_dumpable(False)
        out += [L.get_dumpable(), os.stat("/proc/self/status").st_uid]
        return out

    assert in_child(body) == [True, 1234, False, 0]


def test_set_name_and_get_name() -> None:
    def body() -> list[str]:
        L.set_name("pynsbind-test")
        out = [L.get_name(), Path("/proc/self/comm").read_text()]
        L.set_name(b"x" * 20)
        return [*out, L.get_name()]

    assert in_child(body) == ["pynsbind-test", "pynsbind-test\n", "x" * 15]


@pytest.mark.root
@pytest.mark.parametrize("keep", [True, False])
def test_keepcaps_keeps_permitted_across_setuid(keep: bool) -> None:
    def body() -> tuple[bool, bool, int, int]:
        before = L.get_keepcaps()
        L.set_keepcaps(keep)
        after = L.get_keepcaps()
        os.setresuid(1234, 1234, 1234)
        caps = L.capget()
        return before, after, len(caps.permitted), len(caps.effective)

    before, after, permitted, effective = in_child(body)
    assert (before, after) == (False, keep)
    assert (permitted > 0) is keep
    assert effective == 0


@pytest.mark.root
def test_capbset_read_and_drop() -> None:
    assert L.capbset_read(Capability.SYS_ADMIN) is True

    def body() -> list[Any]:
        out: list[Any] = [L.capbset_read(Capability.NET_RAW)]
        L.capbset_drop(Capability.NET_RAW)
        out += [L.capbset_read(Capability.NET_RAW), status_mask("CapBnd") >> 13 & 1]
        drop_effective(Capability.SETPCAP)
        try:
            L.capbset_drop(Capability.CHOWN)
        except OSError as exc:
            out.append(exc.strerror)
        return out

    assert in_child(body) == [
        True,
        False,
        0,
        "prctl(PR_CAPBSET_DROP, 0): operation not permitted",
    ]
    assert L.capbset_read(Capability.NET_RAW) is True  # the test process kept it


def test_capbset_read_beyond_the_kernel_refused() -> None:
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    if last >= 63:
        pytest.skip("this kernel knows every capability number")
    with pytest.raises(OSError) as info:
        L.capbset_read(last + 1)
    assert info.value.errno == errno.EINVAL
    assert info.value.strerror == "prctl(PR_CAPBSET_READ): invalid argument"


@pytest.mark.root
def test_ambient_capabilities() -> None:
    cap = Capability.NET_BIND_SERVICE

    def body() -> list[Any]:
        caps = L.capget()
        L.capset(caps.effective, caps.permitted, caps.inheritable | {cap})
        out: list[Any] = [L.cap_ambient_is_set(cap)]
        L.cap_ambient_raise(cap)
        out += [L.cap_ambient_is_set(cap), status_mask("CapAmb")]
        L.cap_ambient_lower(cap)
        out.append(L.cap_ambient_is_set(cap))
        L.cap_ambient_raise(cap)
        L.cap_ambient_clear_all()
        out += [L.cap_ambient_is_set(cap), status_mask("CapAmb")]
        try:  # not in the inheritable set
            L.cap_ambient_raise(Capability.NET_ADMIN)
        except OSError as exc:
            out.append(exc.strerror)
        return out

    assert in_child(body) == [
        False,
        True,
        1 << int(cap),
        False,
        False,
        0,
        f"prctl(PR_CAP_AMBIENT_RAISE, {int(Capability.NET_ADMIN)}): operation not permitted",
    ]


# ---- seccomp ---------------------------------------------------------------------------

#: getcwd's number where we know it
GETCWD = {0xC000003E: 79, 0xC00000B7: 17}.get(L.AUDIT_ARCH)


def _errno_filter(nr: int, err: int) -> list[L.BpfInsn]:
    """ERRNO(err) for syscall nr on this architecture, allow the rest."""
    ld = L.BPF_LD | L.BPF_W | L.BPF_ABS
    jeq = L.BPF_JMP | L.BPF_JEQ | L.BPF_K
    return [
        L.bpf_stmt(ld, L.SECCOMP_DATA_ARCH),
        L.bpf_jump(jeq, L.AUDIT_ARCH, 0, 3),
        L.bpf_stmt(ld, L.SECCOMP_DATA_NR),
        L.bpf_jump(jeq, nr, 0, 1),
        L.bpf_stmt(L.BPF_RET | L.BPF_K, L.SECCOMP_RET_ERRNO | err),
        L.bpf_stmt(L.BPF_RET | L.BPF_K, L.SECCOMP_RET_ALLOW),
    ]


@pytest.mark.skipif(GETCWD is None, reason="no syscall table for this architecture")
@pytest.mark.parametrize("as_bytes", [False, True])
def test_seccomp_filter_returns_errno_for_one_syscall(as_bytes: bool) -> None:
    assert GETCWD is not None
    program: Any = _errno_filter(GETCWD, errno.EXDEV)
    if as_bytes:
        program = b"".join(struct.pack("=HBBI", *insn) for insn in program)

    def body() -> tuple[int, str, int]:
        L.set_no_new_privs()
        r = L.seccomp_set_filter(program)
        try:
            os.getcwd()
        except OSError as exc:
            err = exc.errno or 0
        else:
            err = 0
        return r, status_field("Seccomp"), err

    assert in_child(body) == (0, "2", errno.EXDEV)
    assert os.getcwd()  # the test process has no filter
    assert status_field("Seccomp") == "0"


def test_seccomp_new_listener_returns_an_fd() -> None:
    allow = [L.bpf_stmt(L.BPF_RET | L.BPF_K, L.SECCOMP_RET_ALLOW)]

    def body() -> tuple[bool, bool]:
        L.set_no_new_privs()
        fd = L.seccomp_set_filter(allow, L.SECCOMP_FILTER_FLAG_NEW_LISTENER)
        return fd > 2 and fd_is_open(fd), not os.get_inheritable(fd)

    assert in_child(body) == (True, True)


def test_seccomp_bad_programs_are_rejected() -> None:
    ld = L.BPF_LD | L.BPF_W | L.BPF_ABS

    def body() -> list[tuple[int, str]]:
        L.set_no_new_privs()
        out = []
        for program in (
            [L.bpf_stmt(ld, 0)],  # no return
            [L.bpf_stmt(ld, 4096), L.bpf_stmt(L.BPF_RET | L.BPF_K, L.SECCOMP_RET_ALLOW)],
            [L.bpf_jump(L.BPF_JMP | L.BPF_JEQ | L.BPF_K, 0, 5, 5)],  # jumps out
        ):
            try:
                L.seccomp_set_filter(program)
            except OSError as exc:
                out.append((exc.errno or 0, exc.strerror or ""))
        out.append((0, status_field("Seccomp")))
        return out

    assert in_child(body) == [
        (errno.EINVAL, "seccomp(SECCOMP_SET_MODE_FILTER, 1 instructions): invalid argument"),
        (errno.EINVAL, "seccomp(SECCOMP_SET_MODE_FILTER, 2 instructions): invalid argument"),
        (errno.EINVAL, "seccomp(SECCOMP_SET_MODE_FILTER, 1 instructions): invalid argument"),
        (0, "0"),
    ]


@pytest.mark.root
def test_seccomp_needs_no_new_privs_or_cap_sys_admin() -> None:
    allow = [L.bpf_stmt(L.BPF_RET | L.BPF_K, L.SECCOMP_RET_ALLOW)]

    def body() -> None:
        drop_effective(Capability.SYS_ADMIN)
        L.seccomp_set_filter(allow)

    with pytest.raises(PermissionError) as info:
        in_child(body)
    assert info.value.errno == errno.EACCES
    assert info.value.strerror == (
        "seccomp(SECCOMP_SET_MODE_FILTER, 1 instructions): permission denied"
    )
