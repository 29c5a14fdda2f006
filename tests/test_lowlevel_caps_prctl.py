"""pynsbind.lowlevel capabilities and prctl on the real kernel: capget,
capset, the bounding and ambient sets, pdeathsig, the child subreaper,
no_new_privs, dumpable, the process name, keepcaps.

Every call that changes process state runs in a forked child
(tests.helpers.in_child): the child reports back through a pipe and
``os._exit``s, so the pytest process never changes.  Where the effect could
leak, the test also looks from the host side while the child is still alive (a
``checkpoint``) and after it (the ``narrow_host_unchanged`` fixture).
"""

from __future__ import annotations

import errno
import os
import select
import signal
import socket
from pathlib import Path
from typing import Any

import pytest

from pynsbind import lowlevel as L
from pynsbind.lowlevel import Capability
from tests.helpers import in_child, status_field, wait_status
from tests.lowlevel_helpers import (
    caps_mask,
    drop_effective,
    hold,
    known_caps_mask,
    pid_max,
    status_mask,
)

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
