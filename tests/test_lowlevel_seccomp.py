"""pynsbind.lowlevel.seccomp_set_filter on the real kernel.

Every call that changes process state runs in a forked child
(tests.helpers.in_child): the child reports back through a pipe and
``os._exit``s, so the pytest process never changes.  Where the effect could
leak, the test also looks from the host side while the child is still alive (a
``checkpoint``) and after it (the ``narrow_host_unchanged`` fixture).
"""

from __future__ import annotations

import errno
import os
import struct
from typing import Any

import pytest

from pynsbind import lowlevel as L
from pynsbind.lowlevel import Capability
from tests.helpers import fd_is_open, in_child, status_field
from tests.lowlevel_helpers import drop_effective

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
