"""pynsbind.seccomp on the kernel: the default profile, every action, argument
conditions and seccomp notify.

The tests fork a Python child that loads a compiled filter (no_new_privs, then
seccomp(SECCOMP_SET_MODE_FILTER)) and makes raw system calls through ctypes; it
reports what it saw over a pipe, or dies, and the parent looks at both.  The
system call numbers come from libseccomp (pynsbind._seccomp), not from a table.
The profiles themselves, without the kernel, are in tests/test_seccomp.py.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Any

import pytest

from pynsbind import lowlevel as L
from pynsbind.seccomp import (
    Action,
    ArgCondition,
    CompiledFilter,
    Notification,
    Response,
    SeccompProfile,
    SyscallRule,
    default_profile,
    notif_id_valid,
    notif_recv,
    notif_send,
    serve,
)
from tests.helpers import run_child

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

Cap = L.Capability

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.syscall.restype = ctypes.c_long


def nr(name: str) -> int:
    """The native number of a system call, from libseccomp's tables."""
    from pynsbind.seccomp import syscall_number

    n = syscall_number(name)
    assert n >= 0, name
    return n


def sys_call(name: str, *args: Any) -> int:
    """syscall(2) by name: the result, or -errno."""
    conv = [ctypes.c_ulong(a & (2**64 - 1)) if isinstance(a, int) else a for a in args]
    ctypes.set_errno(0)
    r = LIBC.syscall(ctypes.c_long(nr(name)), *conv)
    return -ctypes.get_errno() if r == -1 else int(r)


def allow_all() -> SeccompProfile:
    return SeccompProfile(Action.ALLOW)


def in_filter(compiled: CompiledFilter | None, probe: Callable[[], Any]) -> tuple[int, Any]:
    """Fork; the child loads ``compiled`` (None: no filter), runs probe() and sends
    its result.  Returns (wait status, result or None if the child died)."""

    def body() -> Any:
        if compiled is not None:
            L.set_no_new_privs()
            L.seccomp_set_filter(compiled.program, compiled.flags)
        return probe()

    out = run_child(body)
    if out.error is not None:
        raise out.error
    return out.status, out.value


def survived(status: int) -> bool:
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def killed_by(status: int) -> int | None:
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else None


# ---- the default profile on the kernel -------------------------------------------------

NOT_THERE = b"/nonexistent-pynsbind-seccomp-test"
KEY_SPEC_THREAD_KEYRING = -1
KEYCTL_GET_KEYRING_ID = 0
BPF_PROG_LOAD = 5


def _clone(flags: int) -> int:
    """clone(flags) as fork does (no new stack); a child that appears exits at once."""
    r = sys_call("clone", flags, 0, 0, 0, 0)
    if r == 0:
        os._exit(0)
    if r > 0:
        os.waitpid(r, 0)
    return r


def dangerous_calls(tty: int) -> dict[str, int]:
    """Calls the default profile refuses, each made so that without a filter it
    would not give EPERM (as root) and changes nothing outside the child."""
    c = ctypes.c_char(b"x")
    return {
        "keyctl": sys_call("keyctl", KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 1),
        "add_key": sys_call("add_key", b"user", b"pynsbind-test", b"v", 1, KEY_SPEC_THREAD_KEYRING),
        "request_key": sys_call("request_key", b"user", b"pynsbind-no-such-key", None, 0),
        "bpf": sys_call("bpf", BPF_PROG_LOAD, None, 0),
        "mount": sys_call("mount", b"none", NOT_THERE, b"tmpfs", 0, None),
        "umount2": sys_call("umount2", NOT_THERE, 0),
        "setns": sys_call("setns", 2**31 - 1, 0),
        "io_uring_setup": sys_call("io_uring_setup", 1, None),
        "clone(CLONE_NEWUSER|SIGCHLD)": _clone(L.Namespace.USER | signal.SIGCHLD),
        "clone(CLONE_NEWNET|SIGCHLD)": _clone(L.Namespace.NET | signal.SIGCHLD),
        "ioctl(TIOCSTI)": sys_call("ioctl", tty, 0x5412, ctypes.byref(c)),
        "ioctl(TIOCSTI | 1 << 32)": sys_call("ioctl", tty, 0x1_0000_5412, ctypes.byref(c)),
        "personality(ADDR_NO_RANDOMIZE)": sys_call("personality", 0x0040000),
        "personality(READ_IMPLIES_EXEC)": sys_call("personality", 0x0400000),
        "personality(PER_LINUX32 | 1 << 32)": sys_call("personality", 0x1_0000_0008),
        "socket(AF_VSOCK)": sys_call("socket", 40, socket.SOCK_STREAM, 0),
        "socket(AF_VSOCK | 1 << 32)": sys_call("socket", 0x1_0000_0028, socket.SOCK_STREAM, 0),
        "open_by_handle_at": sys_call("open_by_handle_at", 2**31 - 1, None, 0),
        "perf_event_open": sys_call("perf_event_open", None, 0, -1, -1, 0),
        "userfaultfd": sys_call("userfaultfd", 0),
        "kexec_load": sys_call("kexec_load", 0, 0, None, 0xFFFFFFFF),
        "init_module": sys_call("init_module", None, 0, None),
        "settimeofday": sys_call("settimeofday", None, None),
        "acct": sys_call("acct", NOT_THERE),
        "syslog": sys_call("syslog", 10, None, 0),  # SYSLOG_ACTION_SIZE_BUFFER
        "swapoff": sys_call("swapoff", NOT_THERE),
        "pivot_root": sys_call("pivot_root", NOT_THERE, NOT_THERE),
        "fsopen": sys_call("fsopen", b"pynsbind-no-such-fs", 0),
        "open_tree": sys_call("open_tree", -100, NOT_THERE, 0),
        "iopl": sys_call("iopl", 4),
        "get_mempolicy": sys_call("get_mempolicy", None, None, 0, None, 0),
        # last: in a new user namespace, the child has no capability left outside it
        "unshare(CLONE_NEWUSER)": sys_call("unshare", L.Namespace.USER),
    }


@pytest.fixture
def pty() -> Iterator[int]:
    main, tty = os.openpty()
    yield tty
    os.close(main)
    os.close(tty)


@pytest.mark.root
def test_default_profile_refuses_dangerous_calls_with_eperm(pty: int) -> None:
    status, plain = in_filter(allow_all().compile(), lambda: dangerous_calls(pty))
    assert survived(status)
    status, seen = in_filter(default_profile().compile(), lambda: dangerous_calls(pty))
    assert survived(status)
    for call, result in seen.items():
        assert result == -errno.EPERM, (call, result, plain[call])
    # without the profile, none of them gave EPERM (TIOCSTI worked: dev.tty.legacy_tiocsti=1)
    assert not [call for call, r in plain.items() if r == -errno.EPERM]
    assert plain["ioctl(TIOCSTI)"] == 0 and plain["personality(ADDR_NO_RANDOMIZE)"] >= 0


@pytest.mark.root
def test_default_profile_clone3_looks_unimplemented() -> None:
    def probe() -> dict[str, int]:
        return {
            "clone3": sys_call("clone3", None, 0),
            "a call nobody knows": sys_call("getppid")
            and LIBC.syscall(ctypes.c_long(1999))
            and -ctypes.get_errno(),
        }

    _, plain = in_filter(None, probe)
    status, seen = in_filter(default_profile().compile(), probe)
    assert survived(status)
    assert seen == {"clone3": -errno.ENOSYS, "a call nobody knows": -errno.ENOSYS}
    assert plain["clone3"] != -errno.ENOSYS


@pytest.mark.root
def test_default_profile_with_capabilities_allows_their_calls() -> None:
    def probe() -> dict[str, int]:
        return {
            "clone(CLONE_NEWUSER|SIGCHLD)": _clone(L.Namespace.USER | signal.SIGCHLD),
            "clone3": sys_call("clone3", None, 0),
            "umount2": sys_call("umount2", NOT_THERE, 0),
            "bpf": sys_call("bpf", BPF_PROG_LOAD, None, 0),
            "keyctl": sys_call("keyctl", KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 1),
            "unshare(CLONE_NEWUSER)": sys_call("unshare", L.Namespace.USER),
        }

    status, seen = in_filter(default_profile([Cap.SYS_ADMIN]).compile(), probe)
    assert survived(status)
    assert seen["unshare(CLONE_NEWUSER)"] == 0
    assert seen["clone(CLONE_NEWUSER|SIGCHLD)"] > 0
    assert seen["clone3"] == -errno.EINVAL  # reached the kernel: a size of 0
    assert seen["umount2"] == -errno.ENOENT
    assert seen["bpf"] not in (-errno.EPERM, -errno.ENOSYS)
    assert seen["keyctl"] == -errno.EPERM  # no capability allows keyrings


def ordinary_work() -> dict[str, Any]:
    """What programs do, under the default profile: files, processes, threads,
    sockets, pipes, signals, the engine's last calls, and three real programs."""
    import threading

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "f")
        with open(path, "w") as f:
            f.write("hello")
        with open(path) as f:
            out["read"] = f.read()
        os.rename(path, path + "2")
        out["listdir"] = os.listdir(d)
        os.unlink(path + "2")
    out["getpid"] = os.getpid() > 1
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    out["fork+wait"] = os.WEXITSTATUS(os.waitpid(pid, 0)[1])
    pid = os.fork()
    if pid == 0:
        os.execv("/bin/true", ["true"])
    out["execve /bin/true"] = os.waitpid(pid, 0)[1]
    pid = os.fork()
    if pid == 0:  # execveat, as the engine execs its init
        argv = (ctypes.c_char_p * 2)(b"true", None)
        envp = (ctypes.c_char_p * 1)(None)
        sys_call("execveat", -100, b"/bin/true", argv, envp, 0)
        os._exit(99)
    out["execveat /bin/true"] = os.waitpid(pid, 0)[1]
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(threading.get_native_id()))
    t.start()
    t.join()
    out["thread"] = len(result)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen()
    out["socket(AF_INET)"] = s.getsockname()[1] > 0
    s.close()
    a, b = socket.socketpair()
    a.send(b"x")
    out["socketpair"] = b.recv(1).decode()
    a.close()
    b.close()
    r, w = os.pipe2(os.O_CLOEXEC)
    os.write(w, b"y")
    out["pipe"] = os.read(r, 1).decode()
    out["close_range"] = sys_call("close_range", w, w, 0)
    os.close(r)
    out["fcntl"] = sys_call("fcntl", 0, 1, 0) >= 0  # F_GETFD
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    out["prctl(PR_SET_NAME)"] = LIBC.prctl(15, b"pynsbind-test", 0, 0, 0)
    out["personality(query)"] = sys_call("personality", 0xFFFFFFFF) >= 0
    out["personality(PER_LINUX)"] = sys_call("personality", 0) >= 0
    out["ptrace(PEEKDATA)"] = sys_call("ptrace", 2, os.getppid(), 0, 0)
    out["ioctl(FIONREAD)"] = sys_call("ioctl", 0, 0x541B, ctypes.byref(ctypes.c_int()))
    sys_call("sendto", -1, None, 0, 0, None, 0)
    for name, cmd in (
        ("sh", ["/bin/sh", "-c", "x=$(echo hi); echo $x | cat"]),
        (
            "python3",
            [sys.executable, "-c", "import json, subprocess, threading; print(json.dumps([1]))"],
        ),
        (
            "gcc",
            [
                "/bin/sh",
                "-c",
                "cd $(mktemp -d) && echo 'int main(void){return 3;}' > a.c && gcc -O2 a.c -o a && ./a; echo $?",
            ],
        ),
    ):
        res = subprocess.run(cmd, capture_output=True, text=True)
        out[name] = [res.returncode, res.stdout.strip(), res.stderr.strip()[-300:]]
    return out


@pytest.mark.root
def test_default_profile_allows_ordinary_work() -> None:
    status, seen = in_filter(default_profile().compile(), ordinary_work)
    assert survived(status), status
    assert seen["read"] == "hello" and seen["listdir"] == ["f2"] and seen["getpid"]
    assert seen["fork+wait"] == 7
    assert seen["execve /bin/true"] == 0 and seen["execveat /bin/true"] == 0
    assert seen["thread"] == 1  # pthread_create: clone3 gives ENOSYS, glibc falls back to clone
    assert seen["socket(AF_INET)"] and seen["socketpair"] == "x" and seen["pipe"] == "y"
    assert seen["close_range"] == 0 and seen["fcntl"] and seen["prctl(PR_SET_NAME)"] == 0
    assert seen["personality(query)"] and seen["personality(PER_LINUX)"]
    assert seen["ptrace(PEEKDATA)"] == -errno.ESRCH  # reached the kernel: not a tracee
    assert seen["ioctl(FIONREAD)"] in (0, -errno.ENOTTY, -errno.EINVAL)
    assert seen["sh"] == [0, "hi", ""]
    assert seen["python3"] == [0, "[1]", ""]
    if seen["gcc"][1] == "127":
        pytest.skip("no gcc")
    assert seen["gcc"] == [0, "3", ""]


@pytest.mark.root
@pytest.mark.parametrize("init", [False, True])
def test_default_profile_in_a_container(rootfs: str, init: bool) -> None:
    """Through the engine (Spec.seccomp takes the program): its own last calls after
    the filter is loaded pass, a shell works, and mount is refused even with
    CAP_SYS_ADMIN unless the profile was made for that capability."""
    import pynsbind

    script = "echo ok; ls /bin >/dev/null; mount -t tmpfs none /tmp; echo mount=$?"
    for caps, expect in (((), "mount=1"), ((Cap.SYS_ADMIN,), "mount=0")):
        res = pynsbind.run(
            ["/bin/sh", "-c", script],
            rootfs=rootfs,
            capabilities=["SYS_ADMIN"],
            seccomp=default_profile(caps).compile().program,
            init=init,
            capture_output=True,
        )
        assert res.returncode == 0, res
        assert res.stdout is not None and res.stderr is not None
        assert res.stdout.decode().split() == ["ok", expect]
        if expect == "mount=1":
            assert "permission denied" in res.stderr.decode()  # busybox for EPERM


# ---- every action on the kernel -------------------------------------------------------


def one_rule(rule: SyscallRule, default: Action = Action.ALLOW) -> CompiledFilter:
    return SeccompProfile(default, syscalls=(rule,)).compile()


@pytest.mark.root
def test_errno_action_gives_its_errno_or_eperm() -> None:
    status, seen = in_filter(
        one_rule(SyscallRule(("getppid",), Action.ERRNO, errno.EXDEV)), lambda: sys_call("getppid")
    )
    assert survived(status) and seen == -errno.EXDEV
    status, seen = in_filter(
        one_rule(SyscallRule(("getppid",), Action.ERRNO)), lambda: sys_call("getppid")
    )
    assert survived(status) and seen == -errno.EPERM
    status, seen = in_filter(None, lambda: sys_call("getppid"))
    assert seen == os.getpid()


@pytest.mark.root
@pytest.mark.parametrize("action", [Action.KILL, Action.KILL_THREAD, Action.KILL_PROCESS])
def test_kill_actions_kill_with_sigsys(action: Action) -> None:
    def probe() -> str:
        sys_call("getppid")
        return "survived"

    status, seen = in_filter(one_rule(SyscallRule(("getppid",), action)), probe)
    assert seen is None and killed_by(status) == signal.SIGSYS


@pytest.mark.root
def test_trap_action_sends_a_catchable_sigsys() -> None:
    def probe() -> list[Any]:
        caught: list[int] = []
        signal.signal(signal.SIGSYS, lambda signum, frame: caught.append(signum))
        r = sys_call("getppid")
        return [r, caught]

    status, seen = in_filter(one_rule(SyscallRule(("getppid",), Action.TRAP)), probe)
    assert survived(status)
    assert seen[1] == [signal.SIGSYS] and seen[0] != os.getpid()


@pytest.mark.root
def test_trace_action_without_a_tracer_gives_enosys() -> None:
    status, seen = in_filter(
        one_rule(SyscallRule(("getppid",), Action.TRACE, 5)), lambda: sys_call("getppid")
    )
    assert survived(status) and seen == -errno.ENOSYS


@pytest.mark.root
def test_log_and_allow_let_the_call_run() -> None:
    status, seen = in_filter(
        one_rule(SyscallRule(("getppid",), Action.LOG)), lambda: sys_call("getppid")
    )
    assert survived(status) and seen == os.getpid()
    # an ALLOW rule in a profile whose default refuses (LOG would not show)
    p = SeccompProfile(
        Action.ALLOW,
        syscalls=(
            SyscallRule(
                ("getppid",), Action.ERRNO, errno.EXDEV, (ArgCondition(0, 1, op="SCMP_CMP_NE"),)
            ),
            SyscallRule(("getppid",), Action.ALLOW, args=(ArgCondition(0, 1),)),
        ),
    )
    status, seen = in_filter(p.compile(), lambda: [sys_call("getppid", 1), sys_call("getppid", 2)])
    assert survived(status) and seen == [os.getpid(), -errno.EXDEV]


@pytest.mark.root
def test_flags_are_accepted_by_the_kernel() -> None:
    p = SeccompProfile(
        Action.ALLOW,
        syscalls=(SyscallRule(("getppid",), Action.ERRNO, errno.EXDEV),),
        flags=("SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"),
    )
    c = p.compile()
    assert c.flags == L.SECCOMP_FILTER_FLAG_LOG | L.SECCOMP_FILTER_FLAG_SPEC_ALLOW
    status, seen = in_filter(c, lambda: sys_call("getppid"))
    assert survived(status) and seen == -errno.EXDEV


INT80_GETPID = r"""
int main(void)
{
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory"); /* getpid, i386 */
    return r > 0 ? 0 : 1;
}
"""


@pytest.fixture(scope="module")
def int80(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A static program that makes one x86 (32-bit) call from x86_64: getpid."""
    if L.AUDIT_ARCH != 0xC000003E:
        pytest.skip("an x86_64 test")
    d = tmp_path_factory.mktemp("int80")
    (d / "int80.c").write_text(INT80_GETPID)
    res = subprocess.run(
        ["gcc", "-static", "-O2", "-o", str(d / "int80"), str(d / "int80.c")],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot build it: {res.stderr[-200:]}")
    if subprocess.run([str(d / "int80")]).returncode != 0:
        pytest.skip("this kernel runs no x86 calls (no IA32 emulation)")
    return str(d / "int80")


@pytest.mark.root
def test_a_call_of_an_architecture_the_filter_lacks_kills_the_process(int80: str) -> None:
    def run() -> int:
        return subprocess.run([int80]).returncode

    rule = (SyscallRule(("getppid",), Action.ERRNO),)
    native = SeccompProfile(Action.ALLOW, syscalls=rule).compile()
    status, seen = in_filter(native, run)
    assert survived(status) and seen == -signal.SIGSYS
    with_x86 = SeccompProfile(
        Action.ALLOW, architectures=("SCMP_ARCH_X86",), syscalls=rule
    ).compile()
    status, seen = in_filter(with_x86, run)
    assert survived(status) and seen == 0
    # the default profile covers x86: its getpid is allowed, its getpid refused by a rule is too
    status, seen = in_filter(default_profile().compile(), run)
    assert survived(status) and seen == 0
    x86_denied = SeccompProfile(
        Action.ALLOW,
        architectures=("SCMP_ARCH_X86_64", "SCMP_ARCH_X86"),
        syscalls=(SyscallRule(("getpid",), Action.ERRNO),),
    ).compile()
    status, seen = in_filter(x86_denied, run)
    assert survived(status) and seen == 1  # the x86 getpid failed


# ---- argument conditions on the kernel -----------------------------------------------


@pytest.mark.root
@pytest.mark.parametrize(
    ("cond", "holds"),
    [
        (ArgCondition(0, 5, op="SCMP_CMP_NE"), lambda v: v != 5),
        (ArgCondition(0, 5, op="SCMP_CMP_LT"), lambda v: v < 5),
        (ArgCondition(0, 5, op="SCMP_CMP_LE"), lambda v: v <= 5),
        (ArgCondition(0, 5, op="SCMP_CMP_EQ"), lambda v: v == 5),
        (ArgCondition(0, 5, op="SCMP_CMP_GE"), lambda v: v >= 5),
        (ArgCondition(0, 5, op="SCMP_CMP_GT"), lambda v: v > 5),
        (ArgCondition(0, 0xF0, 0x50, "SCMP_CMP_MASKED_EQ"), lambda v: v & 0xF0 == 0x50),
        (
            ArgCondition(2, 0xFFFFFFFF, 0x5412, "SCMP_CMP_MASKED_EQ"),
            lambda v: v & 0xFFFFFFFF == 0x5412,
        ),
        (ArgCondition(3, 2**32 + 5), lambda v: v == 2**32 + 5),
        (ArgCondition(5, 2**63 + 1, op="SCMP_CMP_GE"), lambda v: v >= 2**63 + 1),
    ],
)
def test_argument_conditions(cond: ArgCondition, holds: Callable[[int], bool]) -> None:
    values = sorted(
        {
            0,
            4,
            5,
            6,
            0x50,
            0x55,
            0x5F,
            0x5412,
            2**32 + 5,
            2**32 + 0x5412,
            2**40 + 0x50,
            2**63,
            2**63 + 1,
            2**64 - 1,
        }
    )
    c = one_rule(SyscallRule(("getppid",), Action.ERRNO, errno.EXDEV, (cond,)))

    def probe() -> list[int]:
        out = []
        for v in values:
            args = [0] * 6
            args[cond.index] = v
            out.append(sys_call("getppid", *args))
        return out

    status, seen = in_filter(c, probe)
    assert survived(status)
    expected = [-errno.EXDEV if holds(v) else os.getpid() for v in values]
    assert seen == expected
    assert len(set(expected)) == 2  # the values tell both outcomes apart


@pytest.mark.root
def test_conditions_on_two_arguments_must_both_hold() -> None:
    cond = (ArgCondition(0, 1), ArgCondition(1, 2))
    c = one_rule(SyscallRule(("getppid",), Action.ERRNO, errno.EXDEV, cond))
    status, seen = in_filter(
        c, lambda: [sys_call("getppid", a, b) for a, b in ((1, 2), (1, 3), (0, 2))]
    )
    assert survived(status) and seen == [-errno.EXDEV, os.getpid(), os.getpid()]


@pytest.mark.root
def test_personality_denied_unless_arg0_is_x() -> None:
    # only the query (0xffffffff) is allowed
    c = one_rule(
        SyscallRule(
            ("personality",), Action.ERRNO, args=(ArgCondition(0, 0xFFFFFFFF, op="SCMP_CMP_NE"),)
        )
    )
    status, seen = in_filter(
        c, lambda: [sys_call("personality", v) for v in (0xFFFFFFFF, 0, 8, 0x40000, 2**32 - 2)]
    )
    assert survived(status)
    assert seen[0] >= 0 and seen[1:] == [-errno.EPERM] * 4


@pytest.mark.root
def test_default_profile_personalities() -> None:
    allowed = [0xFFFFFFFF, 0, 8, 0x20000, 0x20008]
    refused = [
        1,
        7,
        9,
        0x1FFFF,
        0x20001,
        0x20007,
        0x20009,
        0x40000,
        0x7FFFFFFF,
        0xFFFFFFFE,
        2**32,
        2**32 + 8,
    ]

    def probe() -> list[int]:
        out = []
        for v in allowed + refused:
            out.append(sys_call("personality", v))
            sys_call("personality", 0)
        return out

    status, seen = in_filter(default_profile().compile(), probe)
    assert survived(status)
    assert all(r >= 0 for r in seen[: len(allowed)]), seen
    assert seen[len(allowed) :] == [-errno.EPERM] * len(refused)


# ---- notify -------------------------------------------------------------------------


def notify_child(
    profile: SeccompProfile, calls: list[tuple[str, tuple[int, ...]]]
) -> tuple[int, int, socket.socket]:
    """Fork a child that loads profile (with a listener), sends the listener fd up,
    makes ``calls`` and sends their results.  Returns (pid, listener fd, socket)."""
    c = profile.compile()
    assert c.notify and c.flags & L.SECCOMP_FILTER_FLAG_NEW_LISTENER
    up, down = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            up.close()
            L.set_no_new_privs()
            fd = L.seccomp_set_filter(c.program, c.flags)
            socket.send_fds(down, [b"fd"], [fd])
            os.close(fd)
            results = [sys_call(name, *args) for name, args in calls]
            down.sendall(json.dumps(results).encode())
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    down.close()
    _, fds, _, _ = socket.recv_fds(up, 16, 1)
    return pid, fds[0], up


async def serve_until_reaped(fd: int, pid: int, handler: Any) -> tuple[int, BaseException | None]:
    """serve() next to a waitpid of the child (the listener hangs up when the last
    user of the filter is reaped)."""
    loop = asyncio.get_running_loop()
    waiter = loop.run_in_executor(None, os.waitpid, pid, 0)
    error: BaseException | None = None
    try:
        await asyncio.wait_for(serve(fd, handler), 120)  # a guard against a hang, not a time
    except Exception as exc:
        error = exc
    _, status = await waiter
    return status, error


NOTIFY_PROFILE = SeccompProfile(
    Action.ALLOW,
    syscalls=(SyscallRule(("getppid", "getpgid", "getsid"), Action.NOTIFY),),
)


@pytest.mark.root
@pytest.mark.parametrize("is_async", [False, True])
def test_notify_reaches_the_handler_and_its_answers_reach_the_child(is_async: bool) -> None:
    seen: list[Notification] = []
    valid: list[bool] = []
    pid, fd, up = notify_child(
        NOTIFY_PROFILE, [("getppid", (11, 22)), ("getpgid", (0,)), ("getsid", (0,))]
    )

    def decide(note: Notification) -> Response:
        seen.append(note)
        valid.append(notif_id_valid(fd, note.id))
        if note.syscall == "getppid":
            return Response.ok(4242)
        if note.syscall == "getsid":
            return Response.fail(errno.EACCES)
        return Response.allow()

    async def async_decide(note: Notification) -> Response:
        await asyncio.sleep(0)
        return decide(note)

    try:
        status, error = asyncio.run(
            serve_until_reaped(fd, pid, async_decide if is_async else decide)
        )
        results = json.loads(up.recv(4096))
        answered_valid = notif_id_valid(fd, seen[0].id)
    finally:
        os.close(fd)
        up.close()
    assert error is None and survived(status)
    assert results == [4242, os.getpgid(0), -errno.EACCES]
    assert [n.syscall for n in seen] == ["getppid", "getpgid", "getsid"]
    assert all(n.pid == pid and n.arch == L.AUDIT_ARCH for n in seen)
    assert seen[0].nr == nr("getppid") and seen[0].args[:2] == (11, 22) and len(seen[0].args) == 6
    assert seen[0].instruction_pointer > 0
    assert valid == [True, True, True]
    assert not answered_valid  # answered: no longer valid


@pytest.mark.root
def test_a_failing_handler_answers_eperm_and_serve_raises_at_the_end() -> None:
    pid, fd, up = notify_child(
        NOTIFY_PROFILE, [("getppid", ()), ("getsid", (0,)), ("getpgid", (0,))]
    )

    def decide(note: Notification) -> Any:
        if note.syscall == "getppid":
            raise RuntimeError("handler bug")
        if note.syscall == "getsid":
            return 5  # not a Response
        return Response.ok(1)

    try:
        status, error = asyncio.run(serve_until_reaped(fd, pid, decide))
        results = json.loads(up.recv(4096))
    finally:
        os.close(fd)
        up.close()
    assert survived(status)
    assert results == [-errno.EPERM, -errno.EPERM, 1]  # serving went on after the failures
    assert isinstance(error, RuntimeError) and str(error) == "handler bug"


@pytest.mark.root
def test_notif_send_to_a_dead_target_returns_false() -> None:
    import select

    pid, fd, up = notify_child(NOTIFY_PROFILE, [("getppid", ())])
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        assert poller.poll(60_000)
        note = notif_recv(fd)
        assert note.syscall == "getppid" and notif_id_valid(fd, note.id)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert killed_by(status) == signal.SIGKILL
        assert not notif_id_valid(fd, note.id)
        assert notif_send(fd, note.id, Response.ok(1)) is False
        # the last user of the filter is gone: the listener hangs up
        assert poller.poll(0)[0][1] & select.POLLHUP
    finally:
        os.close(fd)
        up.close()


@pytest.mark.root
def test_cancelling_serve_answers_calls_in_flight_with_eperm() -> None:
    pid, fd, up = notify_child(NOTIFY_PROFILE, [("getppid", ())])
    started = asyncio.Event()

    async def decide(note: Notification) -> Response:
        started.set()
        await asyncio.sleep(3600)
        return Response.ok(1)

    async def main() -> None:
        task = asyncio.ensure_future(serve(fd, decide))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(main())
        results = json.loads(up.recv(4096))
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
        up.close()
    assert survived(status) and results == [-errno.EPERM]


def listener_of(pid: int) -> int:
    """The seccomp listener fd of process pid, copied here with pidfd_getfd (for a
    child that cannot send it: every call it makes notifies)."""
    pidfd = L.pidfd_open(pid)
    try:
        for _ in range(100_000):  # until the child has loaded its filter
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:seccomp notify":
                        return L.pidfd_getfd(pidfd, int(fd))
                except OSError:
                    pass
            os.sched_yield()
        raise AssertionError("the child's listener never appeared")
    finally:
        os.close(pidfd)


@pytest.mark.root
def test_a_notify_default_action_and_wait_killable_recv() -> None:
    # every call notifies; the handler lets all but getppid run
    c = SeccompProfile(Action.NOTIFY, flags=("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",)).compile()
    assert c.flags & 32 and c.flags & L.SECCOMP_FILTER_FLAG_NEW_LISTENER  # 32: WAIT_KILLABLE_RECV
    names: set[str] = set()

    def decide(note: Notification) -> Response:
        names.add(note.syscall)
        return Response.ok(77) if note.syscall == "getppid" else Response.allow()

    up, down = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            up.close()
            L.set_no_new_privs()
            L.seccomp_set_filter(c.program, c.flags)
            down.sendall(json.dumps([sys_call("getppid")]).encode())
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    down.close()
    fd = listener_of(pid)
    try:
        status, error = asyncio.run(serve_until_reaped(fd, pid, decide))
        results = json.loads(up.recv(4096))
    finally:
        os.close(fd)
        up.close()
    assert error is None and survived(status) and results == [77]
    assert {"getppid", "exit_group"} <= names


@pytest.mark.root
def test_serve_answers_many_calls_from_many_threads() -> None:
    """4 threads of the target, 200 notifying calls each; an async handler that
    answers out of order.  Every call gets its own answer."""
    c = NOTIFY_PROFILE.compile()
    up, down = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            import threading

            up.close()
            L.set_no_new_privs()
            fd = L.seccomp_set_filter(c.program, c.flags)
            socket.send_fds(down, [b"fd"], [fd])
            os.close(fd)
            bad: list[tuple[int, int]] = []

            def work(t: int) -> None:
                for i in range(200):
                    v = t * 1000 + i
                    r = sys_call("getpgid", v)
                    if r != v + 1:
                        bad.append((v, r))

            threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            down.sendall(json.dumps(bad).encode())
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    down.close()
    _, fds, _, _ = socket.recv_fds(up, 16, 1)
    fd = fds[0]
    count = 0

    async def decide(note: Notification) -> Response:
        nonlocal count
        count += 1
        await asyncio.sleep(0.001 * (note.args[0] % 3))  # answers leave out of order
        return Response.ok(note.args[0] + 1)

    try:
        status, error = asyncio.run(serve_until_reaped(fd, pid, decide))
        bad = json.loads(up.recv(65536))
    finally:
        os.close(fd)
        up.close()
    assert error is None and survived(status)
    assert bad == [] and count == 800
