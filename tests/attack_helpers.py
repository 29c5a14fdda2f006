"""Helpers for tests/test_attacks.py alone: private root filesystems, loop
devices, a disposable copy of the Python interpreter, a spawner run as a
process of its own, the kernel keyring, inotify, and a fake ELF interpreter.
What other tests share (running code in a child as another user, waiting for a
process) is in tests/helpers.py.

Everything here cleans up after itself; timeouts are failure detectors only.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests import helpers
from tests.helpers import Unavailable, build_static

if TYPE_CHECKING:
    from collections.abc import Iterator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_BIN = Path(sys.executable).parent
CLI = str(VENV_BIN / "pynsbind-run")

# ---- root filesystems --------------------------------------------------------------


@contextlib.contextmanager
def private_rootfs(rootfs: str, *, parent: bool = False) -> Iterator[Path]:
    """A private copy of the rootfs fixture, in a directory every user can traverse
    (for containers whose root is an unprivileged host id).  With parent, the
    copy is the subdirectory ``r`` of a directory that is itself a root
    filesystem (busybox and the probe): a container on the parent can change the
    child's files while other containers use it as their root."""
    top = Path(tempfile.mkdtemp(prefix="pynsbind-attack-"))
    try:
        os.chmod(top, 0o755)
        if parent:
            outer = top / "outer"
            shutil.copytree(rootfs, outer, symlinks=True)
            root = outer / "r"
            shutil.copytree(rootfs, root, symlinks=True)
            os.chmod(outer, 0o755)
        else:
            root = top / "root"
            shutil.copytree(rootfs, root, symlinks=True)
        os.chmod(root, 0o755)
        yield root
    finally:
        shutil.rmtree(top, ignore_errors=True)


@contextlib.contextmanager
def host_dir(
    prefix: str = "pynsbind-attack-", *, base: str | None = None, mode: int = 0o755
) -> Iterator[Path]:
    """A temporary host directory removed afterwards.  base="/srv" puts it where
    the sandbox of the CLI sees it (it makes /tmp, /run and /var/tmp private)."""
    if base is not None and not os.path.isdir(base):
        base = "/opt"
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        os.chmod(d, mode)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- loop devices ------------------------------------------------------------------

LOOP_CONTENT = b"PYNSBIND-HOSTDISK-SECRET"


@contextlib.contextmanager
def loop_device(tmp: Path) -> Iterator[tuple[str, int, int, Path]]:
    """A loop device on a 1 MiB file that starts with LOOP_CONTENT: (device,
    major, minor, backing file); detached afterwards."""
    import pytest

    backing = tmp / "disk.img"
    backing.write_bytes(LOOP_CONTENT + b"\0" * ((1 << 20) - len(LOOP_CONTENT)))
    with contextlib.ExitStack() as stack:
        try:
            dev, major, minor = stack.enter_context(helpers.loop_device(backing))
        except Unavailable as exc:
            pytest.skip(str(exc))
        yield dev, major, minor, backing


def backing_head(backing: Path) -> bytes:
    return backing.read_bytes()[: len(LOOP_CONTENT)]


# ---- running code elsewhere ------------------------------------------------------


def python_copy(where: Path) -> tuple[str, dict[str, str]]:
    """A disposable copy of this interpreter's binary and the environment that
    lets it import pynsbind: (path, env).  An attack that overwrites "the host's
    Python" overwrites this copy."""
    exe = where / "python3"
    shutil.copy2(os.path.realpath(sys.executable), exe)
    site = [p for p in sys.path if p.endswith("site-packages")]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONHOME": sys.base_prefix,
        "PYTHONPATH": os.pathsep.join([str(ROOT), *site]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return str(exe), env


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_script(
    script: str,
    args: dict[str, Any],
    *,
    python: str | None = None,
    env: dict[str, str] | None = None,
    extra_argv: tuple[str, ...] = (),
    limit: float = 120.0,
) -> dict[str, Any]:
    """Run a Python script in a new session (so that everything it starts can be
    killed as a group), args as JSON in argv[1]; the JSON object it prints last.
    ``limit`` only detects a hang (the script is killed and the test fails)."""
    base = env if env is not None else dict(os.environ)
    proc = subprocess.Popen(
        [python or sys.executable, "-c", script, json.dumps(args), *extra_argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=base,
        cwd="/",
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(
            f"the spawner hung (killed after {limit} s): {err.decode(errors='replace')[-2000:]}"
        ) from None
    lines = out.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise AssertionError(
            f"the spawner failed ({proc.returncode}): {err.decode(errors='replace')[-3000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def snoop_session(args: dict[str, Any]) -> dict[str, Any]:
    """The spawner's side of attack 1: a container whose PID 1 is ``probe snoop``,
    then ``args["n"]`` exec() of ``args["exec"]`` into it; what the probe found.
    The marker is also in a bytes object, in a bytearray that the probe may
    overwrite ("TARGET:" -> "PWNED!:"), and in a host file held open."""
    import pynsbind
    from pynsbind import Spec

    mark = args["marker"]
    target = bytearray(b"TARGET:" + mark.encode())
    keep = ("KEEP:" + mark).encode()
    secret_fd = os.open(args["secret_file"], os.O_RDONLY)
    argv = ["/bin/probe", "snoop", "600", mark.encode().hex(), str(args["victim"]), "write"]
    proc = pynsbind.spawn(
        Spec(args=argv, rootfs=args["rootfs"], init=args["init"]),
        stdin=pynsbind.PIPE,
        stdout=pynsbind.PIPE,
    )
    errors: list[str] = []
    victim_returned = False
    with proc:
        assert proc.stdout is not None and proc.stdin is not None
        proc.stdout.readline()
        for _ in range(args["n"]):
            try:
                e = proc.exec(args["exec"])
            except pynsbind.SpawnError as exc:
                errors.append(str(exc))
                continue
            victim_returned |= e.pid == args["victim"]
            if args["kill"]:
                e.kill()
            e.wait()
        proc.stdin.close()
        lines = proc.stdout.read().decode(errors="replace").splitlines()
        proc.wait()
    os.close(secret_fd)
    del keep
    return {
        "summary": json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {},
        "found": [line for line in lines if line.startswith("found:")][:30],
        "errors": errors[:3],
        "n_errors": len(errors),
        "target_written": bytes(target) != b"TARGET:" + mark.encode(),
        "victim_returned": victim_returned,
        "returncode": proc.returncode,
    }


# ---- keys ------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_SYS_add_key = 248
_SYS_keyctl = 250
KEY_SPEC_SESSION_KEYRING = -3
KEY_SPEC_USER_KEYRING = -4
KEYCTL_GET_KEYRING_ID = 0
KEYCTL_UNLINK = 9
KEYCTL_INVALIDATE = 21


def _check(r: int, what: str) -> int:
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return r


def add_key(desc: str, payload: bytes, keyring: int) -> int:
    """add_key("user", desc, payload, keyring): the key's serial number."""
    if os.uname().machine != "x86_64":
        import pytest

        pytest.skip("the key syscalls are called by number (x86_64)")
    _libc.syscall.restype = ctypes.c_long
    return _check(
        _libc.syscall(
            ctypes.c_long(_SYS_add_key),
            b"user",
            desc.encode(),
            payload,
            ctypes.c_size_t(len(payload)),
            ctypes.c_int(keyring),
        ),
        "add_key",
    )


def keyring_id(keyring: int) -> int:
    _libc.syscall.restype = ctypes.c_long
    return _check(
        _libc.syscall(
            ctypes.c_long(_SYS_keyctl),
            ctypes.c_int(KEYCTL_GET_KEYRING_ID),
            ctypes.c_int(keyring),
            ctypes.c_int(0),
        ),
        "keyctl(KEYCTL_GET_KEYRING_ID)",
    )


def drop_key(key: int) -> None:
    _libc.syscall.restype = ctypes.c_long
    _libc.syscall(ctypes.c_long(_SYS_keyctl), ctypes.c_int(KEYCTL_INVALIDATE), ctypes.c_int(key))


# ---- inotify -------------------------------------------------------------------------

IN_OPEN = 0x20


class OpenWatch:
    """Tells whether anybody opened a file (O_PATH opens do not count): inotify
    IN_OPEN on the inode, whatever mount or namespace it is opened through."""

    def __init__(self, path: str | Path) -> None:
        self.fd = _check(_libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC), "inotify_init1")
        if _libc.inotify_add_watch(self.fd, os.fsencode(str(path)), IN_OPEN) < 0:
            e = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(e, f"inotify_add_watch {path}: {os.strerror(e)}")

    def opens(self) -> int:
        count = 0
        while True:
            try:
                data = os.read(self.fd, 4096)
            except BlockingIOError:
                return count
            off = 0
            while off + 16 <= len(data):
                _, mask, _, length = struct.unpack_from("iIII", data, off)
                if mask & IN_OPEN:
                    count += 1
                off += 16 + length

    def close(self) -> None:
        os.close(self.fd)


# ---- a fake ELF interpreter -------------------------------------------------------------

#: Put at /lib64/ld-linux-x86-64.so.2 in a root filesystem, it runs whenever the
#: kernel execs a dynamically linked binary there: it opens /proc/self/exe (the
#: binary: for "#!/proc/self/exe", whatever the process ran before) and hands it
#: to ``probe hold-exe``, which reopens it for writing once nothing runs it.
EVIL_LDSO_C = r"""
#define SYS_write 1
#define SYS_open 2
#define SYS_execve 59
#define SYS_exit_group 231
static long sys3(long n, long a, long b, long c)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
__asm__(".text\n.globl _start\n_start:\n xor %ebp, %ebp\n mov %rsp, %rdi\n"
        " and $-16, %rsp\n call evil_main\n hlt\n");
__attribute__((used, noreturn)) void evil_main(long *sp)
{
    static char fdnum[4];
    long fd = sys3(SYS_open, (long)"/proc/self/exe", 0, 0);
    char *argv[] = {"probe", "hold-exe", fdnum, "15", "/tmp/hold-exe.json", 0};
    char *envp[] = {0};
    (void)sp;
    if (fd < 0 || fd > 99) {
        sys3(SYS_write, 2, (long)"evil-ld: cannot open /proc/self/exe\n", 36);
        for (;;)
            sys3(SYS_exit_group, 3, 0, 0);
    }
    if (fd >= 10) {
        fdnum[0] = (char)('0' + fd / 10);
        fdnum[1] = (char)('0' + fd % 10);
    } else
        fdnum[0] = (char)('0' + fd);
    sys3(SYS_execve, (long)"/bin/probe", (long)argv, (long)envp);
    for (;;)
        sys3(SYS_exit_group, 127, 0, 0);
}
"""


def evil_ldso() -> str:
    """EVIL_LDSO_C compiled (cached by its hash, like the probe)."""
    import pytest

    if os.uname().machine != "x86_64":
        pytest.skip("the fake ELF interpreter is x86_64 assembly")
    flags = ("-nostdlib", "-nostartfiles", "-fno-stack-protector", "-fno-pie", "-no-pie")
    try:
        return build_static("evil-ld", EVIL_LDSO_C, flags)
    except Unavailable as exc:
        pytest.skip(str(exc))


def errname(e: int) -> str:
    return errno.errorcode.get(e, str(e))
