"""pynsbind.lowlevel.clone on the real kernel: like fork, with a pidfd, into
new namespaces and into a cgroup; the fork hooks, the warnings, the C layer's
legacy path.

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
import select
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest

from pynsbind import lowlevel as L
from pynsbind.lowlevel import Capability
from pynsbind.lowlevel import Namespace as NS
from tests.helpers import checkpoint, host_ns, in_child, status_field, wait_status
from tests.lowlevel_helpers import FEATURES, clone_with, drop_effective, needs_pidfd

# ---- clone -----------------------------------------------------------------------------


def test_clone_behaves_like_fork(narrow_host_unchanged: Any) -> None:
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
def test_clone_returns_a_pidfd_when_asked(narrow_host_unchanged: Any) -> None:
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
def test_clone_new_pid_namespace_makes_the_child_pid_1(narrow_host_unchanged: Any) -> None:
    seen: dict[str, str] = {}

    def body() -> tuple[int, str]:
        checkpoint()
        return os.getpid(), host_ns("pid")

    def during(pid: int, _: object) -> None:
        seen["nspid"] = status_field("NSpid", pid)
        seen["pid"] = str(pid)

    pid1, pidns = in_child(body, during=during, fork=clone_with(NS.PID))
    assert pid1 == 1
    assert pidns != host_ns("pid")
    assert seen["nspid"].split() == [seen["pid"], "1"]


@pytest.mark.root
def test_clone_into_new_namespaces_leaves_the_host_alone(narrow_host_unchanged: Any) -> None:
    host = {k: host_ns(k) for k in ("uts", "mnt", "ipc")}
    host_name = os.uname().nodename

    def body() -> dict[str, str]:
        L.sethostname("pynsbind-clone")
        return {k: host_ns(k) for k in ("uts", "mnt", "ipc", "net")} | {"name": os.uname().nodename}

    child = in_child(body, fork=clone_with(NS.UTS | NS.MNT | NS.IPC))
    assert child["name"] == "pynsbind-clone"
    for k in host:
        assert child[k] != host[k]
    assert child["net"] == host_ns("net")
    assert os.uname().nodename == host_name  # the child's sethostname stayed in its namespace
    assert {k: host_ns(k) for k in host} == host


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
def test_clone_into_cgroup(narrow_host_unchanged: Any) -> None:
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
def test_clone_into_a_directory_that_is_no_cgroup(
    tmp_path: Path, narrow_host_unchanged: Any
) -> None:
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


def test_clone_warns_in_a_threaded_process(narrow_host_unchanged: Any) -> None:
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


def test_clone_does_not_warn_single_threaded(narrow_host_unchanged: Any) -> None:
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
def test_clone_legacy_path_of_the_c_layer(narrow_host_unchanged: Any) -> None:
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
