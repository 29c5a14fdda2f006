"""The cgroup of each spawned container (the process layer): made before the
clone when pynsbind must make it, with the limits (and device rules) applied;
the fds the plan's attach slots name; removed when the container is reaped.

The plan compiler decided where (``Plan.cgroup_host``, ``Plan.cgroup_points``);
this module only carries it out, through pynsbind.cgroups' public API."""

from __future__ import annotations

import contextlib
import os
import threading
import warnings

from pynsbind._record import replace
from pynsbind.cgroups import (
    DEFAULT_DEVICE_RULES,
    Cgroup,
    Resources,
    open_attach_fds,
    rules_for_nodes,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from pynsbind._plan import Plan
    from pynsbind.devices import DeviceRule
    from pynsbind.spec import NormalizedSpec

__all__ = ["ContainerCgroup", "device_rules", "prepare"]

# cgroups made at a caller's path for spawns, shared by the spawns of this
# process: [cgroup, users]
_shared: dict[str, list[object]] = {}
_shared_lock = threading.Lock()


def device_rules(spec: NormalizedSpec) -> tuple[DeviceRule, ...]:
    """Deny every device but the default set and the spec's own nodes."""
    return DEFAULT_DEVICE_RULES + rules_for_nodes(
        (d.type, d.major, d.minor) for d in spec.devices if d.type != "p"
    )


class ContainerCgroup:
    """What spawn() holds for one container's cgroup."""

    def __init__(
        self,
        cg: Cgroup,
        slots: dict[str, int],
        *,
        owned: bool,
        shared: str | None,
        devices_only: bool,
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
                users = entry[1]
                assert isinstance(users, int)
                entry[1] = users - 1
                if users > 1:
                    return
                del _shared[self._shared]
        if not self._owned:
            return
        if kill:
            self.cgroup.kill()
        self.cgroup.delete()

    def abandon(self) -> None:
        """The spawn failed: remove what this spawn created, nothing else."""
        self.close_slots()
        self._finish(kill=True)

    def hand_over(self) -> Cgroup | None:
        """The container was let go (Process.release): nothing is removed.  The
        cgroup pynsbind made for it is returned, the caller's to delete once
        the container is gone; None for a caller's own, or one still shared
        with other spawns (the last of them removes it)."""
        self.close_slots()
        if self._done:
            return None
        self._done = True
        if self._shared is not None:
            with _shared_lock:
                entry = _shared.get(self._shared)
                if entry is None:
                    return None
                users = entry[1]
                assert isinstance(users, int)
                entry[1] = users - 1
                if users > 1:
                    return None
                del _shared[self._shared]
        return self.cgroup if self._owned else None

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


def prepare(spec: NormalizedSpec, plan: Plan) -> ContainerCgroup | None:
    """Before the clone: the container's cgroup, made when pynsbind must (no
    cgroup given, or a path that does not exist yet) with the limits applied,
    and the fds the plan's attach slots name."""
    h = plan.cgroup_host
    if h is None:
        return None
    res, target = spec.resources, spec.cgroup
    devices_only = res is None and target is None
    if res is not None and res.devices is None and not isinstance(target, Cgroup):
        # a cgroup pynsbind makes: the default device rules unless the spec has its own
        res = replace(res, devices=device_rules(spec))
    fds: dict[str, int] = {}
    owned = False
    shared = None
    if devices_only:
        cg, fds = Cgroup.create_for_spawn(None, Resources(devices=device_rules(spec)), host=h)
        owned = True
    elif isinstance(target, Cgroup):
        cg = target
        if res is not None:
            cg.update(res)
    elif target is None:
        cg, fds = Cgroup.create_for_spawn(None, res, host=h)
        owned = True
    else:
        assert isinstance(target, str)
        with _shared_lock:
            entry = _shared.get(target)
            if entry is not None:
                users = entry[1]
                assert isinstance(users, int)
                entry[1] = users + 1
                found = entry[0]
                assert isinstance(found, Cgroup)
                cg, owned, shared = found, True, target
        if shared is None:
            # a cgroup pynsbind makes confines devices, with resources or without
            made = res if res is not None else Resources(devices=device_rules(spec))
            try:
                cg, fds = Cgroup.create_for_spawn(target, made, host=h)
                owned, shared = True, target
                with _shared_lock:
                    _shared[target] = [cg, 1]
            except FileExistsError:
                cg = Cgroup.open(target, host=h)
        if not fds and res is not None:
            cg.update(res)
    try:
        slots = open_attach_fds(cg, plan.cgroup_points, fds)
    except BaseException:
        ContainerCgroup(cg, {}, owned=owned, shared=shared, devices_only=devices_only).abandon()
        raise
    return ContainerCgroup(cg, slots, owned=owned, shared=shared, devices_only=devices_only)
