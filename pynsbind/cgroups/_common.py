"""What the v1 and v2 halves share: file reads, the C batch writer, the stats types."""

from __future__ import annotations

import errno
import os

from pynsbind._ffi import ffi, lib
from pynsbind._record import record
from pynsbind.errors import strerror

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = [
    "Batch",
    "CpuStats",
    "IoDeviceStats",
    "MemoryStats",
    "PidsStats",
    "Stats",
    "read_int",
    "read_kv",
    "read_text",
    "write_file",
]

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


# ---- reading -------------------------------------------------------------------


def read_text(path: str, dir_fd: int | None = None) -> str | None:
    """A file's text, or None when it cannot be read (missing controller, gone)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        return os.read(fd, 1 << 16).decode()
    except OSError:
        return None
    finally:
        os.close(fd)


def read_int(path: str) -> int | None:
    """A file holding one number (``max`` and ``-1``... read as None)."""
    text = read_text(path)
    if text is None:
        return None
    text = text.strip()
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value >= 0 else None


def read_kv(path: str) -> dict[str, int] | None:
    """``key value`` lines (cpu.stat, memory.events, cgroup.events...)."""
    text = read_text(path)
    if text is None:
        return None
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def write_file(path: str, value: str) -> None:
    """One write of ``value`` into an existing cgroup file; OSError naming both."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise OSError(exc.errno, f"open {path}: {strerror(exc.errno or 0)}", path) from None
    try:
        os.write(fd, os.fsencode(value))
    except OSError as exc:
        raise OSError(
            exc.errno, f"write {value!r} to {path}: {strerror(exc.errno or 0)}", path
        ) from None
    finally:
        os.close(fd)


# ---- the C batch writer ----------------------------------------------------------


class Batch:
    """A list of (file, value) writes laid out once as ``struct nsb_kv[]`` and run
    on a cgroup directory fd by ``nsb_cg_write_batch``: one openat+write+close per
    file, with no Python between them."""

    __slots__ = ("_keep", "arr", "kvs")

    def __init__(self, kvs: Sequence[tuple[str, str]]) -> None:
        self.kvs = tuple(kvs)
        keep: list[Any] = []
        arr = ffi.new("struct nsb_kv[]", max(1, len(self.kvs)))
        for i, (key, value) in enumerate(self.kvs):
            k = ffi.new("char[]", os.fsencode(key))
            v = ffi.new("char[]", os.fsencode(value))
            keep += (k, v)
            arr[i].key, arr[i].value, arr[i].len = k, v, len(os.fsencode(value))
        self.arr = arr
        self._keep = keep

    def __len__(self) -> int:
        return len(self.kvs)

    def run(self, dirfd: int, where: str) -> None:
        """Apply the writes under ``dirfd`` (the directory ``where``)."""
        if not self.kvs:
            return
        failed = ffi.new("int *", -1)
        if lib.nsb_cg_write_batch(dirfd, self.arr, len(self.kvs), failed) < 0:
            err = ffi.errno
            key, value = self.kvs[failed[0]]
            raise batch_error(err, where, key, value)


def batch_error(err: int, where: str, key: str, value: str) -> OSError:
    path = f"{where}/{key}"
    if err == errno.ENOENT:
        return OSError(
            err, f"write {value!r} to {path}: no such file (is its controller enabled?)", path
        )
    return OSError(err, f"write {value!r} to {path}: {strerror(err)}", path)


class Dirs:
    """``struct nsb_cg_dir[]``: the base directory of each hierarchy, with the
    batch of each (for nsb_cg_create) or none (nsb_cg_attach, nsb_cg_rmdir),
    and the fd of a device program to attach (``progs``, -1 for none)."""

    __slots__ = ("_keep", "arr", "batches", "n", "progs")

    def __init__(
        self,
        bases: Sequence[str],
        batches: Sequence[Batch] | None = None,
        progs: Sequence[int] | None = None,
    ) -> None:
        self.n = len(bases)
        self.batches = tuple(batches or ())
        self.progs = tuple(progs or [-1] * self.n)
        self.arr = ffi.new("struct nsb_cg_dir[]", max(1, self.n))
        keep = []
        for i, base in enumerate(bases):
            b = ffi.new("char[]", os.fsencode(base))
            keep.append(b)
            self.arr[i].base = b
            self.arr[i].prog_fd = self.progs[i]
            if batches:
                self.arr[i].kvs = batches[i].arr
                self.arr[i].nkv = len(batches[i])
        self._keep = keep


# ---- stats -----------------------------------------------------------------------


@record(frozen=True)
class MemoryStats:
    """Bytes, and counts of events; None where this host does not say."""

    current: int | None = None
    peak: int | None = None
    limit: int | None = None
    swap_current: int | None = None
    #: times the limit was hit (v2 memory.events ``max``, v1 memory.failcnt)
    max_events: int | None = None
    #: times the OOM killer was invoked in this cgroup (v2 only)
    oom: int | None = None
    #: processes killed by the OOM killer in this cgroup
    oom_kill: int | None = None


@record(frozen=True)
class CpuStats:
    """Microseconds and counts."""

    usage_usec: int | None = None
    user_usec: int | None = None
    system_usec: int | None = None
    nr_periods: int | None = None
    nr_throttled: int | None = None
    throttled_usec: int | None = None


@record(frozen=True)
class PidsStats:
    current: int | None = None
    limit: int | None = None
    #: forks that failed at the limit
    max_events: int | None = None


@record(frozen=True)
class IoDeviceStats:
    device: str
    rbytes: int = 0
    wbytes: int = 0
    rios: int = 0
    wios: int = 0


@record(frozen=True)
class Stats:
    """What :meth:`Cgroup.stats` returns."""

    memory: MemoryStats
    cpu: CpuStats
    pids: PidsStats
    io: tuple[IoDeviceStats, ...]
