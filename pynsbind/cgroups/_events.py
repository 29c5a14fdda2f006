"""Cgroup.events(): an async iterator of what happens to a cgroup.

Where the cgroup has a cgroup2 directory (unified hosts, and the unified tree of
hybrid ones) the kernel signals changes of ``cgroup.events`` (populated, frozen)
and ``memory.events`` (oom, oom_kill) through inotify, and its removal as an
IN_DELETE on its parent directory.  A v1 memory cgroup
signals OOM through an eventfd registered in ``cgroup.event_control`` for
``memory.oom_control``.  What v1 cannot signal (populated and frozen on a legacy
host) is polled every ``interval`` seconds.
"""

from __future__ import annotations

import contextlib
import os
import struct

from pynsbind._ffi import ffi, lib
from pynsbind._record import record
from pynsbind.cgroups import _v1
from pynsbind.cgroups._common import read_kv, write_file
from pynsbind.errors import strerror

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Literal

    from pynsbind.cgroups import Cgroup

    EventKind = Literal["populated", "frozen", "oom", "oom_kill"]


__all__ = ["Event", "EventStream"]

_KINDS: tuple[EventKind, ...] = ("populated", "frozen", "oom", "oom_kill")
_INOTIFY_HEADER = struct.Struct("iIII")


@record(frozen=True)
class Event:
    """A change: ``populated``/``frozen`` with value 1 or 0; ``oom`` and
    ``oom_kill`` with the new count for this cgroup."""

    kind: EventKind
    value: int


class EventStream:
    """What :meth:`Cgroup.events` returns: ``async for event in stream``.  The
    stream ends when the cgroup is removed; ``aclose()`` (or ``async with``) ends
    it earlier and releases its file descriptors."""

    def __init__(self, cg: Cgroup, interval: float) -> None:
        self._cg = cg
        self._interval = interval
        self._ifd = -1
        self._efd = -1
        self._pending: list[Event] = []
        self._done = False
        self._oom_v1 = 0
        self._v2dir = cg.v2_dir
        mem = cg.controller_dir("memory")
        self._mem_v1 = mem if mem is not None and mem[0].version == 1 else None
        self._mem_v2 = mem is not None and mem[0].version == 2
        self._freezer_v1 = None if self._v2dir is not None else cg.controller_dir("freezer")
        try:
            if self._v2dir is not None:
                self._ifd = _check(lib.nsb_cg_inotify(), "inotify_init1")
                self._watch(self._v2dir + "/cgroup.events")
                # the removal of the cgroup shows as IN_DELETE on its parent
                self._watch(os.path.dirname(self._v2dir), children=True)
                if self._mem_v2:
                    self._watch(self._v2dir + "/memory.events")
            if self._mem_v1 is not None:
                self._register_oom(self._mem_v1[1])
        except BaseException:
            self.close()
            raise
        self._state = self._read()

    # -- setup --

    def _watch(self, path: str, children: bool = False) -> None:
        if lib.nsb_cg_watch(self._ifd, os.fsencode(path), int(children)) < 0:
            err = ffi.errno
            raise OSError(err, f"inotify_add_watch {path}: {strerror(err)}", path)

    def _register_oom(self, directory: str) -> None:
        self._efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        ofd = os.open(directory + "/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        try:
            # the kernel keeps the eventfd; the oom_control fd only names the event
            write_file(directory + "/cgroup.event_control", f"{self._efd} {ofd}")
        finally:
            os.close(ofd)

    @property
    def polls(self) -> bool:
        """True when some state is polled (no kernel notification for it here)."""
        return self._v2dir is None

    # -- state --

    def _read(self) -> dict[str, int]:
        st: dict[str, int] = {}
        if self._v2dir is not None:
            ev = read_kv(self._v2dir + "/cgroup.events") or {}
            st["populated"] = ev.get("populated", 0)
            st["frozen"] = ev.get("frozen", 0)
            if self._mem_v2:
                mev = read_kv(self._v2dir + "/memory.events") or {}
                st["oom"] = mev.get("oom", 0)
                st["oom_kill"] = mev.get("oom_kill", 0)
        else:
            st["populated"] = int(bool(self._cg.procs()))
            if self._freezer_v1 is not None:
                st["frozen"] = int(_v1.state(self._freezer_v1[1]) == "FROZEN")
        if self._mem_v1 is not None:
            oc = read_kv(self._mem_v1[1] + "/memory.oom_control") or {}
            st["oom"] = self._oom_v1
            st["oom_kill"] = oc.get("oom_kill", 0)
        return st

    def _gone(self) -> bool:
        return not any(os.path.isdir(d) for _, d in self._cg.hierarchy_dirs)

    def _drain(self) -> None:
        if self._ifd >= 0:
            with contextlib.suppress(BlockingIOError, OSError):
                while os.read(self._ifd, 4096):
                    pass
        if self._efd >= 0:
            with contextlib.suppress(BlockingIOError, OSError):
                self._oom_v1 += os.eventfd_read(self._efd)

    def _diff(self) -> None:
        gone = self._gone()
        if not gone:
            new = self._read()
            for kind in _KINDS:
                if kind in new and new[kind] != self._state.get(kind):
                    self._pending.append(Event(kind, new[kind]))
            self._state = new
        if gone:
            if self._state.get("populated"):
                self._pending.append(Event("populated", 0))
            self._done = True

    # -- the iterator --

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        while not self._pending:
            if self._done or (self._ifd < 0 and self._efd < 0 and not self.polls):
                self.close()
                raise StopAsyncIteration
            await self._wait()
            self._drain()
            # the efd is also signalled when a v1 memory cgroup is removed
            self._diff()
        return self._pending.pop(0)

    async def _wait(self) -> None:
        import asyncio  # here: importing asyncio costs ~10 ms and pulls in subprocess

        loop = asyncio.get_running_loop()
        ready = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        fds = [fd for fd in (self._ifd, self._efd) if fd >= 0]
        for fd in fds:
            loop.add_reader(fd, wake)
        try:
            timeout = self._interval if self.polls else None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(ready, timeout)
        finally:
            for fd in fds:
                loop.remove_reader(fd)

    def close(self) -> None:
        """Release the inotify and eventfd descriptors; the stream ends."""
        self._done = True
        for attr in ("_ifd", "_efd"):
            fd = getattr(self, attr)
            if fd >= 0:
                setattr(self, attr, -1)
                os.close(fd)

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_ifd", -1) >= 0 or getattr(self, "_efd", -1) >= 0:
            self.close()


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ffi.errno
        raise OSError(err, f"{what}: {strerror(err)}")
    return ret
