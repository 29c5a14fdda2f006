"""pynsbind.features(): cheap import, probed once, and each answer checked against
evidence found another way (raw system calls through ctypes, statfs, /proc)."""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pynsbind
from pynsbind import lowlevel as L
from tests.helpers import in_child

# syscall numbers past 424 are the same on every architecture but alpha
SYS_OPEN_TREE = 428
SYS_FSOPEN = 430
SYS_PIDFD_OPEN = 434
SYS_CLONE3 = 435
SYS_CLOSE_RANGE = 436
SYS_OPENAT2 = 437
SYS_PIDFD_GETFD = 438
SYS_MOUNT_SETATTR = 442

CLONE_NEWUSER = 0x10000000
CLONE_NEWTIME = 0x80
CLONE_INTO_CGROUP = 0x200000000

CGROUP_SUPER_MAGIC = 0x27E0EB
CGROUP2_SUPER_MAGIC = 0x63677270

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def raw_syscall(nr: int, *args: Any) -> tuple[int, int]:
    """(result, errno) of a system call made without pynsbind."""
    ctypes.set_errno(0)
    r = _libc.syscall(ctypes.c_long(nr), *args)
    return int(r), ctypes.get_errno()


def knows(nr: int, *args: Any) -> bool:
    """Whether the kernel has syscall nr: called with arguments it must refuse."""
    r, err = raw_syscall(nr, *args)
    if r >= 0 and nr in (SYS_FSOPEN, SYS_PIDFD_OPEN):
        os.close(r)
    return not (r < 0 and err == errno.ENOSYS)


def fs_magic(path: str) -> int | None:
    buf = ctypes.create_string_buffer(256)  # struct statfs, f_type first
    if _libc.statfs(os.fsencode(path), buf) != 0:
        return None
    return int(struct.unpack_from("l", buf.raw)[0])


# ---- import cost -----------------------------------------------------------------------

HEAVY = ("pynsbind._native", "pynsbind._ffi", "pynsbind._features", "pynsbind.lowlevel")
FORBIDDEN = ("_cffi_backend", "cffi", "subprocess", "pynsbind.process", "pynsbind.cgroups")


def _imported(code: str) -> tuple[set[str], str]:
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    names = set()
    for line in res.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the header line
                names.add(name)
    return names, res.stdout


def test_import_pynsbind_is_cheap() -> None:
    names, _ = _imported("import pynsbind")
    assert "pynsbind" in names  # the parse found the import itself
    bad = sorted(n for n in names if n in HEAVY + FORBIDDEN or n.startswith("pynsbind.cgroups"))
    assert bad == []
    assert {n for n in names if n.startswith("pynsbind")} == {"pynsbind", "pynsbind._version"}


def test_import_pynsbind_imports_no_other_module() -> None:
    # not typing, importlib or __future__ either: what the interpreter had
    # before the import, plus the package and its version
    code = "import sys; b = set(sys.modules); import pynsbind; print(*sorted(set(sys.modules) - b))"
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["pynsbind", "pynsbind._version"]


def test_names_load_on_first_use_and_probe_only_when_called() -> None:
    code = (
        "import sys, pynsbind\n"
        "f = pynsbind.features\n"
        "print(int('pynsbind._features' in sys.modules), int('pynsbind._native' in sys.modules))\n"
        "f()\n"
        "print(int('pynsbind._native' in sys.modules), int('subprocess' in sys.modules))\n"
    )
    _, out = _imported(code)
    # looking features up loads its module, which imports nothing heavy; calling it
    # loads the extension, and still no subprocess
    assert out.split("\n")[:2] == ["1 0", "1 0"]


# ---- the answers -------------------------------------------------------------------------


def test_features_is_probed_once_and_cached() -> None:
    first = pynsbind.features()
    hits = pynsbind.features.cache_info().hits
    assert pynsbind.features() is first
    assert pynsbind.features.cache_info().hits == hits + 1
    assert pynsbind.features.cache_info().misses == 1
    with pytest.raises(AttributeError):  # FrozenInstanceError, as a dataclass raises
        first.clone3 = not first.clone3  # type: ignore[misc]


def test_features_fields_have_their_types() -> None:
    f = pynsbind.features()
    assert isinstance(f, pynsbind.Features)
    for field in dataclasses.fields(f):
        value = getattr(f, field.name)
        if field.name in ("kernel", "cgroup_layout"):
            assert type(value) is str, field.name
        elif field.name == "cap_last_cap":
            assert type(value) is int
        else:
            assert type(value) is bool, field.name
    assert f.cgroup_layout in {"unified", "hybrid", "legacy", "none"}
    assert f.kernel == os.uname().release


def test_features_are_consistent() -> None:
    f = pynsbind.features()
    assert f.clone_pidfd == (f.clone3 and f.pidfd)
    assert not f.clone_into_cgroup or f.clone3
    assert not f.idmapped_mounts or f.mount_setattr
    assert not f.mount_setattr or f.new_mount_api  # 5.12 came after 5.2


def test_syscall_features_match_raw_syscalls() -> None:
    f = pynsbind.features()
    assert f.clone3 == knows(SYS_CLONE3, None, ctypes.c_size_t(0))
    assert f.new_mount_api == knows(SYS_FSOPEN, b"tmpfs", ctypes.c_uint(1))
    assert f.new_mount_api == knows(SYS_OPEN_TREE, -1, b"", ctypes.c_uint(0))
    assert f.mount_setattr == knows(SYS_MOUNT_SETATTR, -1, b"", 0, None, ctypes.c_size_t(0))
    assert f.openat2 == knows(SYS_OPENAT2, -1, None, None, ctypes.c_size_t(0))
    assert f.pidfd_getfd == knows(SYS_PIDFD_GETFD, -1, 0, 0)
    assert f.close_range == knows(
        SYS_CLOSE_RANGE, ctypes.c_uint(0xFFFFFFFF), ctypes.c_uint(0xFFFFFFFF), 0
    )


def test_pidfd_matches_pythons_own_pidfd_open() -> None:
    try:
        fd = os.pidfd_open(os.getpid())
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
        works = False
    else:
        os.close(fd)
        works = True
    assert pynsbind.features().pidfd == works


def test_clone_into_cgroup_matches_a_raw_clone3() -> None:
    # clone_args up to ``cgroup`` (CLONE_ARGS_SIZE_VER2): a bad fd gives EBADF where
    # the flag is known, EINVAL (or ENOSYS) where it is not; it can never fork
    args = struct.pack(
        "=11Q", CLONE_INTO_CGROUP, 0, 0, 0, signal.SIGCHLD, 0, 0, 0, 0, 0, 0x7FFFFFFF
    )
    buf = ctypes.create_string_buffer(args, len(args))
    r, err = raw_syscall(SYS_CLONE3, buf, ctypes.c_size_t(len(args)))
    if r == 0:  # pragma: no cover - impossible: the fd is not open
        os._exit(0)
    assert r < 0
    assert pynsbind.features().clone_into_cgroup == (err == errno.EBADF)


def test_seccomp_matches_proc_status() -> None:
    has = any(
        line.startswith("Seccomp:") for line in Path("/proc/self/status").read_text().splitlines()
    )
    assert pynsbind.features().seccomp == has


def test_cap_last_cap_matches_proc() -> None:
    assert pynsbind.features().cap_last_cap == int(
        Path("/proc/sys/kernel/cap_last_cap").read_text()
    )


def test_time_namespace_matches_proc() -> None:
    assert pynsbind.features().time_namespace == os.path.exists("/proc/self/ns/time")


@pytest.mark.root
def test_time_namespace_matches_a_raw_unshare() -> None:
    works = in_child(lambda: _libc.unshare(CLONE_NEWTIME) == 0)
    assert pynsbind.features().time_namespace == (works and L.HAS_TIME_NS)


@pytest.mark.root
def test_user_namespace_matches_a_raw_unshare() -> None:
    works = in_child(lambda: _libc.unshare(CLONE_NEWUSER) == 0)
    assert pynsbind.features().user_namespace == works


def _layout_by_statfs(root: str = "/sys/fs/cgroup") -> str:
    top = fs_magic(root)
    if top is None:
        return "none"
    if top == CGROUP2_SUPER_MAGIC:
        return "unified"
    kinds = {fs_magic(os.path.join(root, d)) for d in os.listdir(root)}
    if CGROUP_SUPER_MAGIC in kinds:
        return "hybrid" if CGROUP2_SUPER_MAGIC in kinds else "legacy"
    return "none"


def test_cgroup_layout_matches_statfs() -> None:
    assert pynsbind.features().cgroup_layout == _layout_by_statfs()
