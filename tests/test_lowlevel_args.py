"""pynsbind.lowlevel before and after the kernel: bad arguments raise before
any system call, missing build support says so, the flag values are the
kernel ABI, ``__all__``, and the form of a kernel refusal.

Every call that changes process state runs in a forked child
(tests.helpers.in_child): the child reports back through a pipe and
``os._exit``s, so the pytest process never changes.  Where the effect could
leak, the test also looks from the host side while the child is still alive (a
``checkpoint``) and after it (the ``narrow_host_unchanged`` fixture).
"""

from __future__ import annotations

import errno
import re
from typing import TYPE_CHECKING, Any

import pytest

from pynsbind import lowlevel as L
from pynsbind.lowlevel import (
    Capability,
    CloseRangeFlags,
    FsconfigCmd,
    MountAttr,
    MountFlags,
    UmountFlags,
)
from pynsbind.lowlevel import Namespace as NS
from tests.helpers import in_child
from tests.lowlevel_helpers import FEATURES, MESSAGE, private_mount_ns

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


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
