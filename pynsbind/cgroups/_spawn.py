"""The spawn hooks of pynsbind.cgroups: how a Spec's ``resources`` and ``cgroup``
reach the plan (parent actions, the CLONE_INTO_CGROUP slot) and each spawn (the
cgroup made, the fds opened, removed when the container is reaped)."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import threading
import warnings
from typing import TYPE_CHECKING, Any

from pynsbind import cgroups as _pkg
from pynsbind.cgroups import (
    DEFAULT_DEVICE_RULES,
    Cgroup,
    DeviceRule,
    Hierarchy,
    Host,
    Resources,
    _check_placement,
    device_host,
    normalize,
    rules_for_nodes,
)
from pynsbind.cgroups._common import DIR_FLAGS
from pynsbind.cgroups._program import compile_program
from pynsbind.errors import SpecError

if TYPE_CHECKING:
    from pynsbind.spec import Spec


def _check_spec_fields(spec: Spec) -> None:
    """Spec.__post_init__: check the types of ``resources`` and ``cgroup``, and
    normalise a cgroup path."""
    if spec.resources is not None and not isinstance(spec.resources, Resources):
        raise SpecError(
            "resources",
            f"expected a pynsbind.Resources, got {type(spec.resources).__name__}: "
            f"{spec.resources!r}",
        )
    cg = spec.cgroup
    if cg is None or isinstance(cg, Cgroup):
        return
    if isinstance(cg, (str, os.PathLike)):
        try:
            spec._put("cgroup", normalize(cg))
        except (TypeError, ValueError) as exc:
            raise SpecError("cgroup", str(exc)) from None
        return
    raise SpecError("cgroup", f"expected a Cgroup or a path, got {type(cg).__name__}: {cg!r}")


def _slot_names(h: Host, clone_into: bool) -> list[tuple[str, Hierarchy]]:
    out = []
    for hier in h.hierarchies:
        if hier.version == 2:
            out.append(("cgroup" if clone_into else "cgv2", hier))
        else:
            out.append((f"cgv1:{hier.name}", hier))
    return out


def _device_only_host(spec: Spec) -> Host | None:
    """The host of the cgroup a container gets for its device rules alone (a
    spec with neither ``resources`` nor ``cgroup``): the hierarchy that enforces
    device rules, or None where the caller can make no cgroup there (rootless)."""
    if spec.resources is not None or spec.cgroup is not None:
        return None
    h = _pkg._host()
    if h.problem is not None:
        return None
    return device_host(h)


def _device_rules(spec: Spec) -> tuple[DeviceRule, ...]:
    """Deny every device but the default set and the spec's own nodes."""
    nodes = [] if spec.devices is None else [(d.type, d.major, d.minor) for d in spec.devices]
    return DEFAULT_DEVICE_RULES + rules_for_nodes(nodes)


def _plan_attach(compiler: Any, spec: Spec) -> list[dict[str, Any]]:
    """The plan compiler: how the child gets into its cgroup.  On cgroup2 it is
    born there (CLONE_INTO_CGROUP on a directory fd in slot ``cgroup``); in each
    v1 hierarchy (and on cgroup2 without CLONE_INTO_CGROUP) the parent writes its
    pid into cgroup.procs (fd slot ``cgv1:NAME`` / ``cgv2``) at the first sync,
    before the child runs anything of its own.  A spec with neither resources
    nor cgroup still gets a cgroup for its device rules, where it can."""
    from pynsbind._ffi import lib

    if spec.resources is None and spec.cgroup is None:
        dh = _device_only_host(spec)
        if dh is None:
            return []
        h = dh
    elif isinstance(spec.cgroup, Cgroup):
        h = spec.cgroup.host
    else:
        h = _pkg._host()
    h.check()
    if spec.resources is not None:
        compile_program(spec.resources, h)  # SpecError now, before any spawn
    if isinstance(spec.cgroup, str):
        try:
            _check_placement(h, spec.cgroup)
        except ValueError as exc:
            raise SpecError("cgroup", str(exc)) from None
    plan = compiler.plan
    clone_into = bool(compiler.f.clone_into_cgroup) and not plan.flags & lib.NSB_PLAN_LEGACY_CLONE
    acts = []
    for name, hier in _slot_names(h, clone_into):
        slot = plan.slot(name)
        if name == "cgroup":
            plan.cgroup_slot = slot
            continue
        where = "cgroup v2" if hier.version == 2 else f"v1 {hier.name}"
        acts.append({"kind": "FD_WRITE_PID", "desc": f"attach to the {where} cgroup", "fd": slot})
    return acts


# cgroups made at a caller's path for spawns, shared by the spawns of this process
_shared: dict[str, list[Any]] = {}
_shared_lock = threading.Lock()


class _SpawnCgroup:
    """What spawn() holds for one container's cgroup (see _spawn_cgroup)."""

    def __init__(
        self,
        cg: Cgroup,
        slots: dict[str, int],
        *,
        owned: bool,
        shared: str | None,
        devices_only: bool = False,
    ) -> None:
        self.cgroup = cg
        self.slots = slots
        #: a cgroup made for the device rules of a spec that asked for none
        self.devices_only = devices_only
        self._owned = owned
        self._shared = shared
        self._done = False

    def close_slots(self) -> None:
        slots, self.slots = self.slots, {}
        for fd in slots.values():
            with contextlib.suppress(OSError):
                os.close(fd)

    def _finish(self, kill: bool) -> None:
        if self._done:
            return
        self._done = True
        if self._shared is not None:
            with _shared_lock:
                entry = _shared.get(self._shared)
                if entry is None:
                    return
                entry[1] -= 1
                if entry[1] > 0:
                    return
                del _shared[self._shared]
        if not self._owned:
            return
        cg = self.cgroup
        if kill:
            cg.kill()
        cg.delete()

    def abandon(self) -> None:
        """The spawn failed: remove what this spawn created, nothing else."""
        self.close_slots()
        self._finish(kill=True)

    def release(self) -> None:
        """The container was reaped: remove the cgroup if pynsbind made it
        (killing what the container left in it), never a caller's."""
        try:
            self._finish(kill=True)
        except OSError as exc:
            warnings.warn(
                f"pynsbind: cgroup {self.cgroup.path} left behind: {exc}",
                RuntimeWarning,
                stacklevel=2,
            )


def _spawn_cgroup(spec: Spec, plan: Any) -> _SpawnCgroup | None:
    """spawn(), before the clone: the container's cgroup, made when pynsbind must
    (no cgroup given, or a path that does not exist yet) with the limits applied,
    and the fds the plan's slots name."""
    res = spec.resources
    target = spec.cgroup
    fds: dict[str, int] = {}
    owned = False
    shared = None
    devices_only = res is None and target is None
    if res is not None and res.devices is None and not isinstance(target, Cgroup):
        # a cgroup pynsbind makes: the default device rules unless the spec has its own
        res = dataclasses.replace(res, devices=_device_rules(spec))
    if devices_only:
        dh = _device_only_host(spec)
        if dh is None:
            return None
        cg, fds = Cgroup._create(None, Resources(devices=_device_rules(spec)), dh, keep=True)
        owned = True
    elif isinstance(target, Cgroup):
        cg = target
        if res is not None:
            cg.update(res)
    elif target is None:
        cg, fds = Cgroup._create(None, res, None, keep=True)
        owned = True
    else:
        with _shared_lock:
            entry = _shared.get(target)
            if entry is not None:
                entry[1] += 1
                cg, owned, shared = entry[0], True, target
        if shared is None:
            try:
                cg, fds = Cgroup._create(target, res, None, keep=True)
                owned, shared = True, target
                with _shared_lock:
                    _shared[target] = [cg, 1]
            except FileExistsError:
                cg = Cgroup.open(target)
        if not fds and res is not None:
            cg.update(res)
    try:
        slots = _open_slots(cg, plan, fds)
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        handle = _SpawnCgroup(cg, {}, owned=owned, shared=shared)
        handle.abandon()
        raise
    return _SpawnCgroup(cg, slots, owned=owned, shared=shared, devices_only=devices_only)


def _open_slots(cg: Cgroup, plan: Any, dirfds: dict[str, int]) -> dict[str, int]:
    """Open the fds the plan's cgroup slots name; ``dirfds`` (directory fds of a
    cgroup just created) are used and consumed."""
    slots: dict[str, int] = {}
    by_name = {hier.name: (hier, d) for hier, d in cg._dirs}
    try:
        for name in plan.slots:
            if name == "cgroup" or name == "cgv2":
                v2 = next(((hier, d) for hier, d in cg._dirs if hier.version == 2), None)
                if v2 is None:
                    raise OSError(errno.ENOENT, f"cgroup {cg.path} has no cgroup v2 directory")
                key = v2[0].name
            elif name.startswith("cgv1:"):
                key = name[5:]
                if key not in by_name:
                    raise OSError(errno.ENOENT, f"cgroup {cg.path} has no {key} hierarchy")
            else:
                continue
            d = by_name[key][1]
            dfd = dirfds.pop(key, -1)
            if name == "cgroup":
                slots[name] = dfd if dfd >= 0 else os.open(d, DIR_FLAGS)
                continue
            try:
                slots[name] = os.open(
                    "cgroup.procs" if dfd >= 0 else d + "/cgroup.procs",
                    os.O_WRONLY | os.O_CLOEXEC,
                    dir_fd=dfd if dfd >= 0 else None,
                )
            finally:
                if dfd >= 0:
                    os.close(dfd)
    except BaseException:
        for fd in slots.values():
            os.close(fd)
        raise
    finally:
        for fd in dirfds.values():
            os.close(fd)
        dirfds.clear()
    return slots
