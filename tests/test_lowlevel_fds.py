"""pynsbind.lowlevel process fds on the real kernel: pidfd_open,
pidfd_send_signal, pidfd_getfd and close_range.

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
import signal
from pathlib import Path
from typing import Any

import pytest

from pynsbind import lowlevel as L
from pynsbind.lowlevel import CloseRangeFlags
from tests.helpers import checkpoint, fd_is_open, in_child, wait_status
from tests.lowlevel_helpers import FEATURES, needs_close_range, needs_pidfd, pid_max

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
def test_pidfd_open(narrow_host_unchanged: Any) -> None:
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
def test_pidfd_send_signal_kills_the_right_process(narrow_host_unchanged: Any) -> None:
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
def test_pidfd_refusals(narrow_host_unchanged: Any) -> None:
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
def test_pidfd_getfd_copies_the_fd_of_another_process(narrow_host_unchanged: Any) -> None:
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
