"""pynsbind.lowlevel namespaces on the real kernel: unshare, setns,
open_namespace, the namespace ioctls, sethostname and setdomainname.

Every call that changes process state runs in a forked child
(tests.helpers.in_child): the child reports back through a pipe and
``os._exit``s, so the pytest process never changes.  Where the effect could
leak, the test also looks from the host side while the child is still alive (a
``checkpoint``) and after it (the ``narrow_host_unchanged`` fixture).
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Any

import pytest

from pynsbind import lowlevel as L
from pynsbind.lowlevel import Capability
from pynsbind.lowlevel import Namespace as NS
from tests.helpers import checkpoint, host_ns, in_child, status_field
from tests.lowlevel_helpers import (
    FEATURES,
    clone_with,
    drop_effective,
    hold,
    needs_pidfd,
    needs_userns,
    pid_max,
)

# ---- unshare ------------------------------------------------------------------------------


@pytest.mark.root
def test_unshare_uts_sets_hostname_only_in_the_child(narrow_host_unchanged: Any) -> None:
    host_name = os.uname().nodename
    host_uts = host_ns("uts")
    seen: dict[str, Any] = {}

    def body() -> tuple[str, str]:
        L.unshare(NS.UTS)
        L.sethostname("pynsbind-unshare")
        checkpoint()
        return os.uname().nodename, host_ns("uts")

    def during(pid: int, _: object) -> None:
        seen["host"] = os.uname().nodename
        seen["child_ns"] = host_ns("uts", pid)

    name, uts = in_child(body, during=during)
    assert name == "pynsbind-unshare"
    assert uts != host_uts
    assert seen == {"host": host_name, "child_ns": uts}
    assert os.uname().nodename == host_name


@pytest.mark.root
def test_unshare_several_namespaces_at_once(narrow_host_unchanged: Any) -> None:
    flags = NS.MNT | NS.UTS | NS.IPC | NS.NET | NS.CGROUP | NS.PID
    if FEATURES.time_namespace:
        flags |= NS.TIME
    kinds = ["mnt", "uts", "ipc", "net", "cgroup", "pid", "user"]
    if FEATURES.time_namespace:
        kinds.append("time")
    later = ["pid_for_children"] + (["time_for_children"] if FEATURES.time_namespace else [])
    before = {k: host_ns(k) for k in kinds + later}

    def body() -> dict[str, str]:
        L.unshare(flags)
        out = {k: host_ns(k) for k in kinds + later if k != "pid_for_children"}
        try:  # a new pid namespace has no link until its first process
            out["pid_for_children"] = host_ns("pid_for_children")
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
    host_user = host_ns("user")

    def body() -> tuple[str, int]:
        L.unshare(NS.USER)
        return host_ns("user"), os.getuid()

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
            assert host_ns("uts") == host_uts
        return "unshared"

    host_uts = host_ns("uts")
    with pytest.raises(PermissionError) as info:
        in_child(body)
    assert info.value.strerror == "unshare(UTS): operation not permitted"


def test_unshare_invalid_flag_changes_nothing() -> None:
    host_uts = host_ns("uts")

    def body() -> None:
        try:
            L.unshare(NS.UTS | 0x8000)  # CLONE_PARENT is no unshare flag
        finally:
            assert host_ns("uts") == host_uts

    with pytest.raises(OSError) as info:
        in_child(body)
    assert info.value.errno == errno.EINVAL
    assert info.value.strerror == "unshare(UTS|0x8000): invalid argument"


# ---- setns and open_namespace ------------------------------------------------------


def _holder() -> dict[str, Any]:
    """In a child: new uts, ipc and net namespaces and a hostname of its own."""
    L.unshare(NS.UTS | NS.IPC | NS.NET)
    L.sethostname("pynsbind-holder")
    return {k: host_ns(k) for k in ("uts", "ipc", "net", "mnt")}


@pytest.mark.root
def test_setns_with_a_namespace_fd(narrow_host_unchanged: Any) -> None:
    results: dict[str, Any] = {}

    def during(pid: int, ids: dict[str, str]) -> None:
        fd = L.open_namespace(NS.UTS, pid)
        try:

            def joiner() -> tuple[str, str, str]:
                L.setns(fd, NS.UTS)
                return os.uname().nodename, host_ns("uts"), host_ns("ipc")

            results["joined"] = in_child(joiner)
            results["holder"] = ids
        finally:
            os.close(fd)

    in_child(hold(_holder), during=during)
    name, uts, ipc = results["joined"]
    assert name == "pynsbind-holder"
    assert uts == results["holder"]["uts"]
    assert ipc == host_ns("ipc")  # only the uts namespace was joined


@pytest.mark.root
@needs_pidfd
def test_setns_with_a_pidfd_joins_several_at_once(narrow_host_unchanged: Any) -> None:
    results: dict[str, Any] = {}

    def during(pid: int, ids: dict[str, str]) -> None:
        pidfd = L.pidfd_open(pid)
        try:

            def joiner() -> dict[str, str]:
                L.setns(pidfd, NS.UTS | NS.IPC | NS.NET)
                return {k: host_ns(k) for k in ("uts", "ipc", "net", "mnt")} | {
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


# ---- sethostname and setdomainname ----------------------------------------------------


def _host_domainname() -> str:
    return Path("/proc/sys/kernel/domainname").read_text()


@pytest.mark.root
def test_sethostname_and_setdomainname_stay_in_the_uts_namespace(
    narrow_host_unchanged: Any,
) -> None:
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
