"""Device programs on cgroup v2 (csrc/bpf.c): load, cache, attach, replace.

A program is loaded once per distinct rule list and process and its fd kept
(close-on-exec; a forked child inherits it and may use it too), so that a
cgroup costs one bpf(BPF_PROG_ATTACH) call.  Cached fds are never closed: a
Program may hold the number for its next cgroup.  Past _CACHE_MAX distinct
lists, a program is loaded for each use and closed after it.
"""

from __future__ import annotations

import errno
import os
import threading

from pynsbind._ffi import ffi, lib
from pynsbind.errors import strerror

__all__ = ["attach", "attached", "cached_fd", "forget", "load", "replace"]

PROG_NAME = "pynsbind_dev"
_CACHE_MAX = 64
_LOG_SIZE = 1 << 16

_cache: dict[bytes, int] = {}
_lock = threading.Lock()


def _forked() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_forked)


def load(code: bytes) -> int:
    """Load a device program; its fd (close-on-exec), owned by the caller.
    OSError naming the verifier's last words when the kernel refuses it."""
    n = len(code) // 8
    fd: int = lib.nsb_bpf_load_device_prog(code, n, ffi.NULL, 0)
    if fd >= 0:
        return fd
    err = ffi.errno
    detail = ""
    if err in (errno.EINVAL, errno.EACCES):
        # ask again with the verifier's log, which says why
        log = ffi.new("char[]", _LOG_SIZE)
        fd = lib.nsb_bpf_load_device_prog(code, n, log, _LOG_SIZE)
        if fd >= 0:
            return fd  # pragma: no cover - refused once, taken on the second try
        # the first errno stands (a log too small for the report makes ENOSPC)
        lines = ffi.string(log).decode(errors="replace").strip().splitlines()
        if lines:
            detail = " (verifier: " + " / ".join(lines[-3:]) + ")"
    raise OSError(err, f"load a device program ({n} instructions): {strerror(err)}{detail}")


def cached_fd(code: bytes) -> int | None:
    """The fd of this program, loaded once for the process; None past the
    cache's size (the caller loads it for one use then)."""
    fd = _cache.get(code)
    if fd is not None:
        return fd
    with _lock:
        fd = _cache.get(code)
        if fd is not None:
            return fd
        if len(_cache) >= _CACHE_MAX:
            return None
        fd = load(code)
        # an fd number we still hold for another program means that one was
        # closed behind our back and the number reused: forget it
        for other in [c for c, f in _cache.items() if f == fd]:
            del _cache[other]
        _cache[code] = fd
        return fd


def forget(code: bytes, fd: int) -> bool:
    """Drop a cached fd that the kernel refused (EBADF, EINVAL: closed by
    someone else, its number maybe reused); True when it was cached.  It is
    not closed: it may not be ours any more."""
    with _lock:
        if _cache.get(code) == fd:
            del _cache[code]
            return True
    return False


def _attach_error(err: int, where: str) -> OSError:
    return OSError(err, f"attach the device program to {where}: {strerror(err)}", where)


def attach(dirfd: int, code: bytes, where: str) -> None:
    """Attach the program to a new cgroup (directory fd ``dirfd``)."""
    for _ in range(2):
        fd = cached_fd(code)
        owned = fd is None
        if fd is None:
            fd = load(code)
        try:
            if lib.nsb_bpf_attach_device(dirfd, fd, -1) == 0:
                return
            err = ffi.errno
        finally:
            if owned:
                os.close(fd)
        if owned or err not in (errno.EBADF, errno.EINVAL) or not stale(code, fd):
            break
    raise _attach_error(err, where)


def stale(code: bytes, fd: int) -> bool:
    """Whether a cached fd no longer holds a program of ours (then forgotten)."""
    info = _info(fd)
    if info is not None and info[2] == PROG_NAME and info[1] == lib.BPF_PROG_TYPE_CGROUP_DEVICE:
        return False
    return forget(code, fd)


def _info(fd: int) -> tuple[int, int, str] | None:
    pid, ptype = ffi.new("uint32_t *"), ffi.new("uint32_t *")
    name = ffi.new("char[16]")
    if lib.nsb_bpf_prog_info(fd, pid, ptype, name) < 0:
        return None
    return pid[0], ptype[0], ffi.string(name).decode(errors="replace")


def attached(dirfd: int, where: str) -> list[tuple[int, str]]:
    """(id, name) of each device program attached to the cgroup itself."""
    room = 64
    while True:
        ids = ffi.new("uint32_t[]", room)
        n = ffi.new("uint32_t *", room)
        if lib.nsb_bpf_query_device(dirfd, ids, n) == 0:
            break
        err = ffi.errno
        if err != errno.ENOSPC:
            raise OSError(err, f"list the device programs of {where}: {strerror(err)}", where)
        room = n[0] + 16
    out = []
    for i in range(n[0]):
        fd = lib.nsb_bpf_prog_fd(ids[i])
        if fd < 0:
            out.append((ids[i], ""))  # detached meanwhile, or not ours to open
            continue
        try:
            info = _info(fd)
        finally:
            os.close(fd)
        out.append((ids[i], info[2] if info else ""))
    return out


def replace(dirfd: int, code: bytes, where: str) -> None:
    """Make ``code`` the cgroup's device program: in place of the pynsbind
    program attached to it (atomically where the kernel can), or added when
    there is none; any other pynsbind program there is detached after.
    Programs of others stay: they only restrict further."""
    for _ in range(2):
        fd = cached_fd(code)
        owned = fd is None
        if fd is None:
            fd = load(code)
        try:
            err = _replace(dirfd, fd, where)
        finally:
            if owned:
                os.close(fd)
        if not err:
            return
        if owned or err not in (errno.EBADF, errno.EINVAL) or not stale(code, fd):
            break
    raise _attach_error(err, where)


def _replace(dirfd: int, fd: int, where: str) -> int:
    """replace() with the program ``fd``: 0, or the errno of a failed attach."""
    mine = _info(fd)
    ours = [pid for pid, name in attached(dirfd, where) if name == PROG_NAME]
    if mine is not None and mine[0] in ours:
        ours.remove(mine[0])  # already attached: only the others go
    else:
        oldfd = lib.nsb_bpf_prog_fd(ours.pop(0)) if ours else -1
        try:
            if lib.nsb_bpf_attach_device(dirfd, fd, oldfd) < 0:
                return int(ffi.errno)
        finally:
            if oldfd >= 0:
                os.close(oldfd)
    for pid in ours:
        extra = lib.nsb_bpf_prog_fd(pid)
        if extra < 0:
            continue  # gone meanwhile
        try:
            if lib.nsb_bpf_detach_device(dirfd, extra) < 0:
                err = ffi.errno
                raise OSError(
                    err, f"detach an old device program from {where}: {strerror(err)}", where
                )
        finally:
            os.close(extra)
    return 0
