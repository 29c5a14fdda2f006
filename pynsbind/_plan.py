"""Spec -> plan: the flat list of ops the cloned child walks, made in the parent.

The plan is data: :meth:`Plan.dump` prints it (``pynsbind.explain`` and
``pynsbind-run --debug`` show it) and the tests assert on it.
:meth:`Plan.c_plan` lays it out as the C structs of
``csrc/nsb.h`` once; every spawn of the same plan reuses them, passing only a
fresh table of fds (stdio, cgroup, namespaces to join).

Fd table slots: 0-2 are the child's stdin, stdout and stderr (-1: inherit); the
rest are named in :attr:`Plan.slots` and filled by the spawner.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import stat
import struct

from pynsbind import _ops as ops
from pynsbind._ffi import lib
from pynsbind._ops import NO_PLAN_FLAGS, Op, OpFlag, OpKind, PlanFlag
from pynsbind._record import field, record, replace
from pynsbind._replay import P_ARGV, P_BYTES, P_INT32, P_NONE, P_UINT32, lay_out
from pynsbind.errors import SpawnError, SpecError
from pynsbind.flags import (
    PERSONALITY_DOMAIN_MASK,
    Capability,
    MountAttr,
    MountFlags,
    Namespace,
    Personality,
    describe_namespaces,
)
from pynsbind.spec import (
    DEFAULT_MASKED_PATHS,
    DEFAULT_PATH,
    DEFAULT_READONLY_PATHS,
    IdMap,
    Mount,
    NormalizedSpec,
    Overlay,
    Spec,
    sysctl_namespace,
    sysctl_path,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from pynsbind._features import Features
    from pynsbind._replay import PlanData
    from pynsbind.cgroups import AttachPoint, Host

__all__ = ["Options", "Pact", "Plan", "compile_plan"]

_FS_TYPES = {
    "tmpfs": "tmpfs",
    "proc": "proc",
    "sysfs": "sysfs",
    "devpts": "devpts",
    "mqueue": "mqueue",
    "cgroup": "cgroup2",
    "overlay": "overlay",
    "dev": "tmpfs",
}
_PROPAGATION = {
    None: 0,
    "private": MountFlags.PRIVATE,
    "slave": MountFlags.SLAVE,
    "shared": MountFlags.SHARED,
    "unbindable": MountFlags.UNBINDABLE,
}
_RLIMIT_NAMES: dict[int, str] = {}
for _n in sorted(dir(resource)):  # sorted: NOFILE wins over its alias OFILE
    if _n.startswith("RLIMIT_"):
        _RLIMIT_NAMES.setdefault(getattr(resource, _n), _n[len("RLIMIT_") :])


@record()
class Pact:
    """A parent action, run when the child reaches sync step ``step``."""

    step: int
    kind: int
    desc: str
    fd: int = -1
    pid_arg: int = -1
    name: str | None = None
    data: bytes | None = None
    argv: list[str] | None = None


@record()
class Plan:
    spec: Spec
    ops: list[Op] = field(default_factory=list)
    pacts: list[Pact] = field(default_factory=list)
    clone_flags: int = 0
    flags: PlanFlag = NO_PLAN_FLAGS
    nregs: int = 1
    slots: list[str] = field(default_factory=lambda: ["stdin", "stdout", "stderr"])
    cgroup_slot: int = -1
    #: the host (all of it, or a part) the container's cgroup lives in, and how
    #: the child is attached in each of its hierarchies; None: no cgroup
    cgroup_host: Host | None = None
    cgroup_points: list[AttachPoint] = field(default_factory=list)
    _c: Any = None

    # -- building --

    def add(self, op: Op) -> Op:
        self.ops.append(op)
        return op

    def slot(self, name: str) -> int:
        if name not in self.slots:
            self.slots.append(name)
        return self.slots.index(name)

    def reg(self) -> int:
        self.nregs += 1
        if self.nregs > lib.NSB_MAX_REGS:
            raise SpecError(
                "mounts",
                f"the plan needs more than {lib.NSB_MAX_REGS} open mounts "
                "(device nodes to bind, mounts holding masked paths)",
            )
        return self.nregs - 1

    # -- reading --

    def dump(self) -> str:
        """What the clone makes and the cgroup, then one line per op (1-based,
        as in error messages), each sync point followed by the parent's actions."""
        made = self.clone_flags & Namespace.all()
        engine = [f.name for f in PlanFlag if f & self.flags and f.name]
        lines = [
            f"clone: {describe_namespaces(made) if made else 'no new namespace'}; "
            f"engine: {', '.join(engine) or '-'}; "
            f"fd slots: {', '.join(self.slots)}"
        ]
        if self.cgroup_points:
            where = []
            for point in self.cgroup_points:
                hier = point.hierarchy
                name = "cgroup2" if hier.version == 2 else f"v1 {hier.name}"
                how = "born there (CLONE_INTO_CGROUP)" if point.clone_into else "attached by pid"
                where.append(f"{name}: {how}")
            lines.append("cgroup: " + "; ".join(where))
        else:
            lines.append("cgroup: none (the caller's)")
        for i, op in enumerate(self.ops, 1):
            lines.append(f"{i:3d} {op.kind_name:<10} {op.desc}")
            if op.kind == OpKind.SYNC:
                lines += [f"    parent: {pa.desc}" for pa in self.pacts if pa.step == op.a]
        return "\n".join(lines)

    def kinds(self) -> list[str]:
        return [op.kind_name for op in self.ops]

    # -- C layout --

    def data(self) -> PlanData:
        """The plan as plain data (pynsbind._replay): what the engine gets."""
        ops = []
        p: Any
        for op in self.ops:
            if op.blob is not None:
                ptype, p = P_BYTES, op.blob
            elif op.argv is not None:
                ptype, p = P_ARGV, list(op.argv)
            elif op.ints is not None:
                ptype = P_UINT32 if op.kind == OpKind.SETGROUPS else P_INT32
                p = list(op.ints)
            else:
                ptype, p = P_NONE, None
            ops.append(
                (
                    int(op.kind),
                    int(op.flags),
                    op.fd,
                    op.reg,
                    op.out,
                    int(op.a),
                    int(op.b),
                    int(op.c),
                    op.s1,
                    op.s2,
                    op.s3,
                    ptype,
                    p,
                    None if op.env is None else list(op.env),
                )
            )
        pacts = [
            (int(pa.step), int(pa.kind), pa.fd, pa.pid_arg, pa.name, pa.data, pa.argv)
            for pa in self.pacts
        ]
        return (
            int(self.flags),
            int(self.clone_flags),
            self.cgroup_slot,
            self.nregs,
            ops,
            pacts,
            list(self.slots),
        )

    def c_plan(self) -> Any:
        """The ``struct nsb_plan *`` for this plan (built once, then cached)."""
        if self._c is None:
            self._c = lay_out(self.data())
        return self._c[0]


# ---- the compiler ----------------------------------------------------------------


@record(frozen=True)
class Options:
    """Engine knobs, mostly to test fallbacks: the mount API, clone3, CLONE_VM."""

    legacy_mount: bool = False
    legacy_clone: bool = False
    clone_vm: bool = True


def _map_text(maps: Sequence[IdMap]) -> bytes:
    return "".join(f"{m.inside} {m.outside} {m.count}\n" for m in maps).encode()


def _covered(maps: Sequence[IdMap], ident: int) -> bool:
    return any(m.covers(ident) for m in maps)


class _Compiler:
    def __init__(
        self,
        spec: Spec,
        feats: Features,
        opts: Options,
        host: Host | None = None,
        gated: bool = False,
    ) -> None:
        self.spec: NormalizedSpec
        self.host = host
        self.gated = gated
        self.spec = spec.normalized
        self.f = feats
        self.opts = opts
        self.plan = Plan(spec)
        self.ns = self.spec.namespaces
        self.modern = (
            feats.new_mount_api and feats.mount_setattr and feats.openat2 and not opts.legacy_mount
        )
        # host paths (the rootfs, bind sources) may hold no symlink: checked
        # now, and again by the child at each spawn (NSB_F_SRC_NOSYMLINKS), so
        # that one swapped in meanwhile (by a container that can write there)
        # cannot point a container at the host's own tree
        self.root: str | None = self.spec.rootfs
        self.euid = os.geteuid()
        self.step = 0
        self.uid_map: tuple[IdMap, ...] = ()
        self.gid_map: tuple[IdMap, ...] = ()
        self.setgroups_ok = True
        self.own_fs: list[str] = []  # targets of the writable filesystems mounted so far
        # every mount of the plan, in order: (target, filesystem kind, its op), so
        # that a masked path is resolved from the mount that holds it
        self.mounted: list[tuple[str, str, Op]] = []
        self.null_reg = -1
        # bind sources opened before the mounts that cover them: their registers
        self.preopened: dict[Mount, int] = {}
        # the process that execs is visible in a pid namespace that exists
        # already (joined, or the caller's): it must not share the caller's memory
        # and must be non-dumpable from its start
        self.exposed = bool(self.spec.joined & Namespace.PID) or not self.ns & Namespace.PID

    # -- helpers --

    def target(self, path: str) -> tuple[str, OpFlag]:
        """A container path as the op takes it, with its in-root flag."""
        if self.root is None:
            return path, ops.NONE
        return path.lstrip("/"), OpFlag.IN_ROOT

    def sync(self, what: str) -> int:
        self.step += 1
        self.plan.add(ops.sync(self.step, what))
        return self.step

    def pact(self, step: int, kind: str, desc: str, **kw: Any) -> None:
        self.plan.pacts.append(Pact(step, getattr(lib, "NSB_PACT_" + kind), desc, **kw))

    # -- the plan, in the order the child runs it --

    def compile(self) -> Plan:
        spec, plan = self.spec, self.plan
        if not self.f.user_namespace and self.ns & Namespace.USER:
            raise SpecError("namespaces", "this kernel does not allow user namespaces")
        if self.ns & Namespace.TIME and not self.f.time_namespace:
            raise SpecError("namespaces", "this kernel has no time namespaces")
        if self.ns & Namespace.MNT and not self.modern and not self.opts.legacy_mount:
            _refuse_silent_legacy(self.f)
        if spec.rootfs is not None:
            _no_symlinks(spec.rootfs, "rootfs", "")
            st = _stat(spec.rootfs, "rootfs", "")
            if not stat.S_ISDIR(st.st_mode):
                raise SpecError("rootfs", f"{spec.rootfs!r} is not a directory")
        plan.flags = PlanFlag.PIDFD if self.f.pidfd else NO_PLAN_FLAGS
        if not (self.opts.clone_vm and self.f.clone_vm) or self.exposed:
            plan.flags |= PlanFlag.NO_CLONE_VM
        if spec.oom_score_adj is not None:
            # the kernel gives every process sharing a memory the same
            # oom_score_adj: with CLONE_VM the caller's would change too
            plan.flags |= PlanFlag.NO_CLONE_VM
        if self.gated:
            # the child outlives the spawn (it waits at the gate): never on the
            # caller's memory
            plan.flags |= PlanFlag.NO_CLONE_VM
        if self.opts.legacy_clone or not self.f.clone3:
            plan.flags |= PlanFlag.LEGACY_CLONE
        if not self.modern:
            plan.flags |= PlanFlag.NO_OPENAT2
        if spec.init:
            if spec.joined & Namespace.PID:
                raise SpecError(
                    "init",
                    "an init in a joined pid namespace would hold the socket to this process "
                    "where the namespace's processes can reach it; spawn without init=True",
                )
            plan.flags |= PlanFlag.KEEP_SYNC
        if spec.joined & Namespace.PID:
            plan.flags |= PlanFlag.WATCH_STOPS
        if self.exposed:
            plan.add(ops.dumpable(False, "make the process non-dumpable (it will be visible)"))
        self.check_joined()
        self.namespaces()
        if self.ns & Namespace.MNT:
            self.filesystem()  # the hook runs before its pivot_root
        else:
            self.hook()
        self.process()
        return plan

    def check_joined(self) -> None:
        """A joined namespace the spec changes (its host name, its sysctls) must
        not be this process's own: that would change the host's."""
        spec = self.spec
        changed: dict[Namespace, str] = {}
        if spec.hostname is not None or spec.domainname is not None:
            changed[Namespace.UTS] = "hostname" if spec.hostname is not None else "domainname"
        for key, _ in spec.sysctl:
            changed.setdefault(sysctl_namespace(key), "sysctl")
        for kind, field_name in changed.items():
            if self.ns & kind:
                continue  # made for the container
            for kinds, target in spec.joins:
                if kinds & kind and _is_own_namespace(target, kind):
                    raise SpecError(
                        field_name,
                        f"the {kind.proc_name} namespace joined is this process's own: "
                        "setting it would change the host's",
                    )

    def hook(self) -> None:
        """The caller's hook, called with the child's pid once its namespaces,
        id maps, cgroup and mounts are made, before pivot_root (where OCI runs
        createRuntime and createContainer hooks)."""
        if self.spec.hook is None:
            return
        name = getattr(self.spec.hook, "__qualname__", None) or type(self.spec.hook).__name__
        step = self.sync("run the hook")
        self.pact(step, "HOOK", f"call the hook {name}")

    def namespaces(self) -> None:
        spec, plan, ns = self.spec, self.plan, self.ns
        joins = list(spec.joins)
        joined = spec.joined
        # Pid and time namespaces unshared by the child apply to its children
        # only: a second fork makes the process that execs.  That is the case
        # after joins, and for time offsets, which must be written between the
        # unshare and the first process in the namespace (some kernels move the
        # process itself in at exec, 6.1 does not).  The middle process must not
        # be a pid namespace's init (CLONE_PARENT), so the pid namespace is
        # unshared late too.
        offsets = bool(spec.time_offsets)
        late = ns & (Namespace.PID | Namespace.TIME) if (joins or offsets) else Namespace(0)
        early = Namespace(int(ns) & ~int(late))  # (not ~late: Flag.__invert__ is slow)
        forks = bool(late or joined & Namespace.PID)
        if joined & Namespace.TIME or late & Namespace.TIME:
            # the kernel refuses to share memory with a process whose time
            # namespace differs, or that joins one
            plan.flags |= PlanFlag.NO_CLONE_VM
        if spec.die_with_parent:
            plan.add(ops.pdeathsig(signal.SIGKILL))
        if spec.oom_score_adj is not None:
            # through the caller's /proc, before any namespace is joined (a
            # joined mount namespace has another /proc, whose self is not us)
            plan.add(
                ops.write(
                    "/proc/self/oom_score_adj",
                    str(spec.oom_score_adj),
                    f"set oom_score_adj {spec.oom_score_adj}",
                )
            )
        if joins:
            # a user namespace first: the others are then joined with its
            # rights; a mount namespace last: a path joined after it would be
            # looked up in the joined namespace's tree, not the caller's
            joins.sort(key=_join_order)
            for kinds, target in joins:
                if kinds & Namespace.USER and not _setgroups_allowed(target):
                    # a user namespace whose maker gave up setgroups (rootless)
                    self.setgroups_ok = False
                    if spec.groups:
                        raise SpecError(
                            "groups", "the joined user namespace does not allow setgroups"
                        )
                if isinstance(target, str):
                    plan.add(ops.setns(kinds, path=target))
                else:
                    names = "+".join(k.proc_name for k in Namespace if k & kinds)
                    plan.add(ops.setns(kinds, slot=plan.slot(f"join:{names}")))
            if early:
                plan.add(ops.unshare(early))
        else:
            plan.clone_flags = int(early)
        self.maps_and_attach(early)
        if late:
            plan.add(ops.unshare(late))
        if spec.time_offsets:
            step = self.sync("write the time offsets")
            text = "".join(f"{clock} {secs} 0\n" for clock, secs in spec.time_offsets)
            self.pact(
                step,
                "PROC_WRITE",
                "write timens_offsets",
                name="timens_offsets",
                data=text.encode(),
            )
        if forks:
            if joined & Namespace.PID:
                # the new process appears among the container's: it gets no fd
                # of the caller's but those the container is given, and its
                # copy of the caller's argv and environ (which /proc/N/cmdline
                # shows to anyone) is wiped first
                self.fds("close the caller's fds before entering the pid namespace", early=True)
                for start, end, what in _own_arg_env():
                    plan.add(ops.wipe(start, end, what))
            plan.add(ops.fork("fork into the pid namespace"))
            if spec.die_with_parent:
                plan.add(ops.pdeathsig(signal.SIGKILL))

    def cgroup_attach(self) -> list[dict[str, Any]]:
        """How the child gets into its cgroup (the parent actions of the first
        sync).  On cgroup2 it is born there (CLONE_INTO_CGROUP on a directory fd
        in slot ``cgroup``); in each v1 hierarchy (and on cgroup2 without
        CLONE_INTO_CGROUP) the parent writes its pid into cgroup.procs before
        the child runs anything of its own.  A spec with neither resources nor
        cgroup still gets a cgroup for its device rules, in the one hierarchy
        that enforces them, where the caller can make one (not rootless), and
        where they would add something (see devices_need_no_rules)."""
        spec, plan = self.spec, self.plan
        if spec.resources is None and spec.cgroup is None and self.devices_need_no_rules():
            return []
        from pynsbind import cgroups

        if spec.resources is None and spec.cgroup is None:
            h = self.host or cgroups.host()
            if h.problem is not None:
                return []
            dh = cgroups.device_host(h)
            if dh is None:
                return []
            h = dh
        elif spec.cgroup is not None and not isinstance(spec.cgroup, str):
            if not isinstance(spec.cgroup, cgroups.Cgroup):
                raise SpecError("cgroup", f"expected a Cgroup or a path, got {spec.cgroup!r}")
            h = spec.cgroup.host
        else:
            h = self.host or cgroups.host()
        h.check()
        if spec.resources is not None:
            cgroups.check_resources(spec.resources, h)  # SpecError now, before any spawn
        if isinstance(spec.cgroup, str):
            try:
                cgroups.check_placement(h, spec.cgroup)
            except ValueError as exc:
                raise SpecError("cgroup", str(exc)) from None
        clone_into = bool(self.f.clone_into_cgroup) and not plan.flags & PlanFlag.LEGACY_CLONE
        plan.cgroup_host = h
        plan.cgroup_points = cgroups.attach_points(h, clone_into)
        acts = []
        for point in plan.cgroup_points:
            slot = plan.slot(point.slot)
            if point.clone_into:
                plan.cgroup_slot = slot
                continue
            hier = point.hierarchy
            where = "cgroup v2" if hier.version == 2 else f"v1 {hier.name}"
            acts.append(
                {"kind": "FD_WRITE_PID", "desc": f"attach to the {where} cgroup", "fd": slot}
            )
        return acts

    def devices_need_no_rules(self) -> bool:
        """Whether device rules would add nothing: the container has a user
        namespace of its own and no CAP_SYS_ADMIN in it.  The kernel refuses it
        device nodes (mknod needs CAP_MKNOD in the initial user namespace), every
        mount of the plan is nodev (but the nodes it binds), and without
        CAP_SYS_ADMIN nothing in the container can clear that or unmount
        anything (in a user namespace it makes, the flags are locked).  A cgroup
        for the rules alone would cost a cgroup attach (on cgroup v1 an RCU grace
        period, ~15 ms) for nothing."""
        spec = self.spec
        own_userns = bool(self.ns & Namespace.USER) and not spec.joined & Namespace.USER
        return own_userns and Capability["SYS_ADMIN"] not in spec.bounding_capabilities

    def maps_and_attach(self, created: Namespace) -> int | None:
        """The first sync: id maps of a new user namespace, cgroup attach."""
        spec = self.spec
        attach = self.cgroup_attach()
        if not created & Namespace.USER and not attach:
            return None
        cgroupns = Namespace.CGROUP
        late_cgroupns = bool(attach and created & cgroupns)
        if late_cgroupns:
            # a cgroup namespace is rooted where its maker stands: make it once
            # the parent has attached the child (as runc does)
            if self.plan.clone_flags & cgroupns:
                self.plan.clone_flags &= ~int(cgroupns)
            else:  # joins: the namespaces were unshared by the op just added
                self.plan.ops[-1].a &= ~int(cgroupns)
        step = self.sync("id maps and cgroup attach" if attach else "wait for the id maps")
        for pact in attach:
            self.pact(step, **pact)
        if late_cgroupns:
            self.plan.add(ops.unshare(cgroupns, "unshare the cgroup namespace, once attached"))
        if created & Namespace.USER:
            self.user_maps(step)
            # this process is still the caller's uid, which the new namespace may
            # not map (files it creates would fail with EOVERFLOW): become root
            # of the namespace, or else the spec's ids, before anything else
            uid = 0 if _covered(self.uid_map, 0) else spec.uid
            gid = 0 if _covered(self.gid_map, 0) else spec.gid
            self.plan.add(ops.setid(OpKind.SETGID, gid, f"set gid {gid} in the new user namespace"))
            self.plan.add(ops.setid(OpKind.SETUID, uid, f"set uid {uid} in the new user namespace"))
        return step

    def user_maps(self, step: int) -> None:
        spec = self.spec
        uid, gid = spec.uid, spec.gid
        egid = os.getegid()
        self.uid_map = spec.uid_map or (IdMap(uid, self.euid, 1),)
        self.gid_map = spec.gid_map or (IdMap(gid, egid, 1),)
        if not _covered(self.uid_map, uid):
            raise SpecError("user", f"uid {uid} is not in uid_map")
        if not _covered(self.gid_map, gid):
            raise SpecError("user", f"gid {gid} is not in gid_map")
        for g in spec.groups:
            if not _covered(self.gid_map, g):
                raise SpecError("groups", f"gid {g} is not in gid_map")
        privileged = self.euid == 0
        own_uid = self.uid_map == (IdMap(self.uid_map[0].inside, self.euid, 1),)
        own_gid = self.gid_map == (IdMap(self.gid_map[0].inside, egid, 1),)
        if not privileged and own_gid:
            # an unprivileged writer of gid_map must give up setgroups first
            self.setgroups_ok = False
            if spec.groups:
                raise SpecError("groups", "an unprivileged user namespace cannot set groups")
            self.pact(step, "PROC_WRITE", "deny setgroups", name="setgroups", data=b"deny")
        for kind, maps, own in (("gid", self.gid_map, own_gid), ("uid", self.uid_map, own_uid)):
            if privileged or own:
                self.pact(
                    step,
                    "PROC_WRITE",
                    f"write {kind}_map",
                    name=f"{kind}_map",
                    data=_map_text(maps),
                )
                continue
            helper = _find_helper(f"new{kind}map")
            if helper is None:
                raise SpecError(
                    f"{kind}_map",
                    f"mapping more than your own {kind} needs new{kind}map (package uidmap) "
                    "and ranges in /etc/sub" + kind,
                )
            argv = [helper, "PID"]
            for m in maps:
                argv += [str(m.inside), str(m.outside), str(m.count)]
            self.pact(step, "HELPER", f"run new{kind}map", argv=argv, pid_arg=1)

    # -- filesystem --

    def filesystem(self) -> None:
        spec, plan = self.spec, self.plan
        joined_mnt = bool(spec.joined & Namespace.MNT)
        if not joined_mnt:
            # a slave rootfs receives the host's mount events: / is made a slave
            # of the host's mounts, recursively (a mount left shared with the
            # host would send the container's mounts back to it), and the
            # rootfs bound from it stays one
            slave = spec.rootfs_propagation in ("slave", "rslave")
            prop = MountFlags.SLAVE if slave else MountFlags.PRIVATE
            desc = "make / private (rprivate)"
            if slave:
                desc = "make / a slave of the host's mounts (rslave)"
            if self.modern:
                plan.add(ops.setattr_(desc, "/", propagation=int(prop), opflags=OpFlag.RECURSIVE))
            else:
                plan.add(ops.mount(desc, "/", flags=MountFlags.REC | prop))
        mounts = spec.mounts
        devices = spec.devices
        dev_mount = any(m.kind == "dev" for m in mounts)
        legacy = not self.modern
        masked = _guards(spec.masked_paths, DEFAULT_MASKED_PATHS)
        readonly = _guards(spec.readonly_paths, DEFAULT_READONLY_PATHS)
        if masked:
            # what hides a file: the host's /dev/null, opened before anything is
            # mounted (the container's own /dev may have none, or a fake one)
            self.null_reg = plan.reg()
            null = ops.preopen("open the host's /dev/null", "/dev/null", self.null_reg, legacy=True)
            plan.add(null)
        # mknod needs CAP_MKNOD in the initial user namespace: else bind the host's
        bind_devices = dev_mount and (bool(self.ns & Namespace.USER) or self.euid != 0)
        dev_regs: dict[str, int] = {}
        if bind_devices:
            for d in devices:
                r = self.plan.reg()
                dev_regs[d.path] = r
                plan.add(ops.preopen(f"open the host's {d.path}", d.path, r, legacy=legacy))
        overlay = spec.overlay
        # A bind source that a mount of this plan covers in the host's tree (a
        # volume under /tmp, where the container's own /tmp goes) is opened
        # before anything is mounted
        covered = [m.target for m in mounts] if self.root is None else []
        if overlay is not None:
            covered = [_SCRATCH]
        for m in mounts:
            source = m.source if m.kind == "bind" and not m.idmap else None
            if source is not None and any(_under(source, t) for t in covered):
                self.preopen_source(m, legacy)
        # Device nodes are usable only where the plan puts them: every
        # filesystem of the container is nodev but devpts and the nodes bound
        # one by one into /dev (CAP_MKNOD then makes nodes nobody can open).
        if overlay is not None:
            self.overlay_root(overlay)
        elif self.root is not None:
            own = OpFlag.ROOT_REG | OpFlag.SRC_NOSYMLINKS
            if self.modern:
                plan.add(
                    ops.bind(
                        f"bind the rootfs {self.root} onto itself (nodev)",
                        self.root,
                        source=self.root,
                        attrs=MountAttr.NODEV,
                        opflags=own | OpFlag.RECURSIVE,
                    )
                )
            else:
                plan.add(
                    ops.mount(
                        f"bind the rootfs {self.root} onto itself",
                        self.root,
                        source=self.root,
                        flags=MountFlags.BIND | MountFlags.REC,
                        opflags=own,
                    )
                )
                plan.add(
                    ops.remount(
                        "make the rootfs nodev", "", MountFlags.NODEV, opflags=OpFlag.IN_ROOT
                    )
                )
        else:
            ro = "read-only and " if spec.readonly_rootfs else ""
            desc = f"make the host root {ro}nodev"
            if self.modern:
                attrs = MountAttr.NODEV | (MountAttr.RDONLY if spec.readonly_rootfs else 0)
                plan.add(ops.setattr_(desc, "/", set_attrs=attrs, opflags=OpFlag.RECURSIVE))
            else:
                flags = MountFlags.NODEV | (MountFlags.RDONLY if spec.readonly_rootfs else 0)
                plan.add(ops.remount(desc, "/", flags))
        for m in mounts:
            self.mount(m, devices, dev_regs)
        # sysctls, through the container's proc before /proc/sys is made
        # read-only: what a sysctl file governs is the writer's namespace
        self.sysctls()
        # masked and read-only paths, each resolved once from the mount that
        # holds it, before pivot_root (while the plan's mounts are at hand)
        # a path below a masked one is hidden by that mask already (and, the
        # mask made first, no longer found): left out
        hidden = [(p, p.rstrip("/") + "/") for p, _ in masked]

        def below_a_mask(p: str) -> bool:
            return any(p != top and p.startswith(prefix) for top, prefix in hidden)

        for p, default in masked:
            if not below_a_mask(p):
                self.guard(OpKind.MASK, f"mask {p}", p, default, legacy)
        for p, default in readonly:
            if not below_a_mask(p):
                self.guard(OpKind.ROPATH, f"make {p} read-only", p, default, legacy)
        self.hook()
        if self.root is not None:
            plan.add(ops.pivot(self.root))
            if spec.readonly_rootfs:
                desc = "make the root read-only"
                if self.modern:
                    plan.add(ops.setattr_(desc, "/", set_attrs=MountAttr.RDONLY))
                else:
                    plan.add(ops.remount(desc, "/", MountFlags.RDONLY))
        self.root_propagation()

    def root_propagation(self) -> None:
        """rootfs_propagation shared or unbindable: set on the container's own /
        once it is the root (a new peer group for shared: the host's mounts stay
        out of it); private and slave were set when the namespace was made."""
        wanted = self.spec.rootfs_propagation
        if wanted is None or wanted.lstrip("r") in ("private", "slave"):
            return
        recursive = wanted.startswith("r")
        prop = MountFlags.SHARED if wanted.endswith("shared") else MountFlags.UNBINDABLE
        desc = f"make / {wanted}"
        if self.modern:
            self.plan.add(
                ops.setattr_(
                    desc,
                    "/",
                    propagation=int(prop),
                    opflags=OpFlag.RECURSIVE if recursive else ops.NONE,
                )
            )
        else:
            flags = prop | (MountFlags.REC if recursive else 0)
            self.plan.add(ops.mount(desc, "/", flags=MountFlags(flags)))

    def sysctls(self) -> None:
        """The spec's sysctls, each written into its file beneath the container's
        proc mount (a SpecError when it has none)."""
        if not self.spec.sysctl:
            return
        procs = [(target, op) for target, kind, op in self.mounted if kind == "proc"]
        if not procs:
            raise SpecError(
                "sysctl", "is written through the container's /proc: mount one (Mount.proc())"
            )
        # /proc itself if it is mounted, else the first proc mount
        op = next((o for t, o in procs if t == "/proc"), procs[0][1])
        if op.out < 0:
            op.out = self.plan.reg()
        for key, value in self.spec.sysctl:
            self.plan.add(
                ops.sysctl(key, value, sysctl_path(key), base_reg=op.out, magic=_MAGIC["proc"])
            )

    def preopen_source(self, m: Mount, legacy: bool) -> None:
        """Open the source of bind ``m`` now, before a mount of the plan covers it."""
        assert m.source is not None
        _stat(m.source, "mounts", "bind source ")
        opflags = OpFlag.RECURSIVE if m.recursive else ops.NONE
        if m.source not in ("/proc", "/sys"):
            _no_symlinks(m.source, "mounts", "bind source ")
            opflags |= OpFlag.SRC_NOSYMLINKS
        reg = self.plan.reg()
        self.preopened[m] = reg
        self.plan.add(
            ops.preopen(
                f"open {m.source} (bound on {m.target})",
                m.source,
                reg,
                legacy=legacy,
                opflags=opflags,
            )
        )

    def idmap_tree(self, source: str, attrs: MountAttr, recursive: bool, what: str) -> int:
        """A register holding a detached tree of the host's ``source`` idmapped
        through the container's user namespace: made by the parent (only a
        process privileged over the initial user namespace can) once the id maps
        are written, and handed over at a sync step of its own."""
        if not self.ns & Namespace.USER or self.spec.joined & Namespace.USER:
            raise SpecError(what, "an idmapped mount needs a new user namespace")
        if self.euid != 0:
            raise SpecError(
                what,
                f"an idmapped mount of {source} needs root (CAP_SYS_ADMIN in the initial "
                "user namespace)",
            )
        if not (self.modern and self.f.idmapped_mounts):
            raise SpecError(what, f"this kernel cannot make idmapped mounts ({self.f.kernel})")
        _no_symlinks(source, what, "")
        _stat(source, what, "")
        reg = self.plan.reg()
        self.step += 1
        self.plan.add(ops.recvfd(self.step, reg, f"take the idmapped tree of {source}"))
        self.pact(
            self.step,
            "IDMAP_TREE",
            f"make an idmapped tree of {source}",
            name=source,
            data=struct.pack("<QQ", int(attrs), int(recursive)),
        )
        return reg

    def overlay_root(self, overlay: Overlay) -> None:
        """The container's root: an overlay whose lower layer is the rootfs or
        the host's root, its upper and work directories on a tmpfs of the
        container's (mounted on the host's /tmp in the container's mount
        namespace, out of sight once the root is pivoted) or in the overlay's
        ``upper`` directory.  The layers are opened first (idmapped by the
        parent, or cloned by the child before the tmpfs covers anything) and
        attached inside the tmpfs; the overlay's mount is register 0, the root,
        from then on."""
        plan, spec = self.plan, self.spec
        if not self.modern:
            raise SpecError("overlay", "an overlay root needs the new mount API (Linux 5.12)")
        if not os.path.isdir(_SCRATCH) or os.path.islink(_SCRATCH):
            raise SpecError("overlay", f"the host has no directory {_SCRATCH} to mount it on")
        userns = bool(self.ns & Namespace.USER)
        lower = spec.rootfs or "/"
        if lower == "/" and userns and not overlay.idmap:
            raise SpecError(
                "overlay",
                "an overlay over the host's root in a user namespace needs idmap=True (as root): "
                "the host's mounts are locked there",
            )
        if overlay.upper is not None:
            _no_symlinks(overlay.upper, "overlay.upper", "")
            if not stat.S_ISDIR(_stat(overlay.upper, "overlay.upper", "").st_mode):
                raise SpecError("overlay.upper", f"{overlay.upper!r} is not a directory")
        # the layers: one filesystem each (not recursive: an overlay layer is one)
        layers = [("lower", lower, "overlay")]
        if overlay.upper is not None:
            layers.append(("keep", overlay.upper, "overlay.upper"))
        regs = {}
        for name, path, what in layers:
            if overlay.idmap:
                regs[name] = self.idmap_tree(path, MountAttr.NODEV, False, what)
            else:
                regs[name] = self.plan.reg()
                plan.add(
                    ops.preopen(
                        f"open {path} (the overlay's {name} layer)",
                        path,
                        regs[name],
                        legacy=False,
                        opflags=OpFlag.SRC_NOSYMLINKS if path != "/" else ops.NONE,
                    )
                )
        params: list[tuple[str, str | None]] = [("mode", "755")]
        if overlay.size is not None:
            params.append(("size", str(overlay.size)))
        plan.add(
            ops.fsmount(
                f"mount the overlay's tmpfs on {_SCRATCH} (in the container's mount namespace)",
                _SCRATCH,
                "tmpfs",
                source="tmpfs",
                params=_fs_params(params),
                attrs=MountAttr.NODEV | MountAttr.NOSUID,
            )
        )
        scratch = _SCRATCH + "/"
        plan.add(ops.mkdirs(f"create {scratch}root", scratch + "root", 0o755))
        for name, path, _ in layers:
            plan.add(ops.mkdirs(f"create {scratch}{name}", scratch + name, 0o755))
            how = "idmapped " if overlay.idmap else ""
            plan.add(
                ops.bind(
                    f"attach the {how}{path} on {scratch}{name}",
                    scratch + name,
                    source_reg=regs[name],
                )
            )
        top = scratch + ("keep/" if overlay.upper is not None else "")
        for d in ("upper", "work"):
            plan.add(ops.mkdirs(f"create {top}{d}", top + d, 0o755))
        params = [
            ("lowerdir", scratch + "lower"),
            ("upperdir", top + "upper"),
            ("workdir", top + "work"),
        ]
        if userns:
            params.append(("userxattr", None))
        kept = overlay.upper + "/upper" if overlay.upper is not None else f"{top}upper"
        plan.add(
            ops.fsmount(
                f"mount the overlay root (lower {lower}, upper {kept}) on {scratch}root",
                scratch + "root",
                "overlay",
                source="overlay",
                params=_fs_params(params),
                attrs=MountAttr.NODEV,
                out=0,
            )
        )
        self.root = scratch + "root"

    def guard(self, kind: OpKind, desc: str, path: str, default: bool, legacy: bool) -> None:
        """A MASK or ROPATH op for ``path``, resolved from the mount holding it.

        Under proc or sysfs (the kernel's own files: a path this kernel lacks has
        nothing to hide) a missing path is skipped; anywhere else it is an error.
        The op also checks that the path is on the filesystem expected, so a
        symlink swapped in a shared rootfs cannot send it elsewhere."""
        holder = None
        for target, fskind, op in self.mounted:
            if (path == target or path.startswith(target.rstrip("/") + "/")) and (
                holder is None or len(target) >= len(holder[0])
            ):
                holder = (target, fskind, op)
        if holder is not None:
            target, fskind, op = holder
            if op.out < 0:
                op.out = self.plan.reg()
            kernel = fskind in _MAGIC
            self.plan.add(
                ops.guard(
                    kind,
                    desc,
                    path[len(target) :].lstrip("/"),
                    base_reg=op.out,
                    null_reg=self.null_reg,
                    magic=_MAGIC.get(fskind, 0),
                    legacy=legacy,
                    opflags=OpFlag.BENEATH | (OpFlag.IGNORE_ENOENT if kernel else ops.NONE),
                )
            )
            return
        top = "/" + path.split("/")[1]
        if self.root is not None:
            if default and top in ("/proc", "/sys"):
                return  # no proc or sysfs here: the rootfs's own directory hides nothing
            self.plan.add(
                ops.guard(
                    kind,
                    desc,
                    path.lstrip("/"),
                    base_reg=0,
                    null_reg=self.null_reg,
                    magic=0,
                    legacy=legacy,
                    opflags=OpFlag.IN_ROOT,
                )
            )
            return
        # the host's root: its /proc and /sys are the kernel's
        magic = {"/proc": _MAGIC["proc"], "/sys": _MAGIC["sysfs"]}.get(top, 0)
        self.plan.add(
            ops.guard(
                kind,
                desc,
                path,
                base_reg=-1,
                null_reg=self.null_reg,
                magic=magic,
                legacy=legacy,
                opflags=OpFlag.IGNORE_ENOENT if magic else ops.NONE,
            )
        )

    def mountpoint(self, m: Mount, path: str, *, file: bool = False) -> None:
        if self.root is None and not any(path.startswith(t + "/") for t in self.own_fs):
            return  # never create anything in the host's root, only in our own mounts
        t, inroot = self.target(path)
        desc = f"create the mount point {path}"
        if file:
            self.plan.add(ops.mkfile(desc, t, opflags=inroot))
        else:
            self.plan.add(ops.mkdirs(desc, t, 0o755, opflags=inroot))

    def mount(self, m: Mount, devices: tuple[Any, ...], dev_regs: dict[str, int]) -> None:
        plan = self.plan
        kind = m.kind
        fskind: str = kind
        if kind == "sysfs" and self.ns & Namespace.USER and not self.ns & Namespace.NET:
            # in a user namespace, sysfs may only be mounted for a network
            # namespace of its own: else bind the host's
            m = replace(m, kind="bind", source="/sys", readonly=True, nosuid=True, noexec=True)
            kind = "bind"
        elif kind == "proc" and self.ns & Namespace.USER and not self.ns & Namespace.PID:
            # likewise proc and the pid namespace
            m = replace(m, kind="bind", source="/proc", nosuid=True, noexec=True)
            kind = "bind"
        # nodev for everything but devpts and /dev itself (nodev once filled)
        nodev = kind not in ("devpts", "dev")
        device_bind = False
        st = None
        host_source = ops.NONE
        if kind == "bind":
            assert m.source is not None
            st = _stat(m.source, "mounts", "bind source ")
            if m.source not in ("/proc", "/sys"):
                _no_symlinks(m.source, "mounts", "bind source ")
                host_source = OpFlag.SRC_NOSYMLINKS
            device_bind = stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            nodev = not device_bind  # a device node bound by name is one the spec allows
        attrs, msflags = ops.NO_ATTRS, ops.NO_FLAGS
        for wanted, attr, flag in (
            (m.readonly, MountAttr.RDONLY, MountFlags.RDONLY),
            (m.nosuid, MountAttr.NOSUID, MountFlags.NOSUID),
            (nodev, MountAttr.NODEV, MountFlags.NODEV),
            (m.noexec, MountAttr.NOEXEC, MountFlags.NOEXEC),
            (m.atime == "noatime", MountAttr.NOATIME, MountFlags.NOATIME),
            (m.atime == "strictatime", MountAttr.STRICTATIME, MountFlags.STRICTATIME),
            (m.atime == "relatime", MountAttr.RELATIME, MountFlags.RELATIME),
            (m.nodiratime, MountAttr.NODIRATIME, MountFlags.NODIRATIME),
            (m.nosymfollow, MountAttr.NOSYMFOLLOW, MountFlags.NOSYMFOLLOW),
        ):
            if wanted:
                attrs |= attr
                msflags |= flag
        # an access-time mode is changed on a bind by clearing the old one
        clear = MountAttr.ATIME if m.atime is not None else ops.NO_ATTRS
        prop = int(_PROPAGATION[m.propagation])
        t, inroot = self.target(m.target)
        if kind == "bind":
            assert m.source is not None
            assert st is not None
            desc = f"bind {m.source} on {m.target}"
            source_reg = self.preopened.get(m, -1)
            if m.idmap:
                rec = OpFlag.RECURSIVE if m.recursive else ops.NONE
                reg = self.idmap_tree(m.source, attrs, m.recursive, "mounts")
                self.mountpoint(m, m.target, file=not stat.S_ISDIR(st.st_mode))
                op = plan.add(
                    ops.bind(
                        desc + " (idmapped)",
                        t,
                        source_reg=reg,
                        propagation=prop,
                        opflags=inroot | rec,
                    )
                )
                self.mounted.append((m.target, "bind", op))
                return
            self.mountpoint(m, m.target, file=not stat.S_ISDIR(st.st_mode))
            if source_reg >= 0:
                rec = OpFlag.RECURSIVE if m.recursive else ops.NONE
                if self.modern:
                    op = plan.add(
                        ops.bind(
                            desc,
                            t,
                            source_reg=source_reg,
                            attrs=attrs,
                            propagation=prop,
                            opflags=inroot | rec,
                        )
                    )
                else:
                    rflags = MountFlags.BIND | (MountFlags.REC if m.recursive else 0)
                    op = plan.add(
                        ops.mount(desc, t, source_reg=source_reg, flags=rflags, opflags=inroot)
                    )
                    if msflags:
                        plan.add(
                            ops.remount(f"set the flags of {m.target}", t, msflags, opflags=inroot)
                        )
                    if prop:
                        plan.add(self.propagation(m.target, t, prop, inroot))
                self.mounted.append((m.target, "bind", op))
                return
            if self.modern:
                rec = OpFlag.RECURSIVE if m.recursive else ops.NONE
                op = plan.add(
                    ops.bind(
                        desc,
                        t,
                        source=m.source,
                        attrs=attrs,
                        clear_attrs=clear,
                        propagation=prop,
                        opflags=inroot | rec | host_source,
                    )
                )
            else:
                rflags = MountFlags.BIND | (MountFlags.REC if m.recursive else 0)
                op = plan.add(
                    ops.mount(desc, t, source=m.source, flags=rflags, opflags=inroot | host_source)
                )
                if msflags:
                    plan.add(
                        ops.remount(f"set the flags of {m.target}", t, msflags, opflags=inroot)
                    )
                if prop:
                    plan.add(self.propagation(m.target, t, prop, inroot))
            source_kind = {"/proc": "proc", "/sys": "sysfs"}.get(m.source, "bind")
            self.mounted.append((m.target, source_kind, op))
            return
        fstype = _FS_TYPES[kind]
        options = list(m.options)
        if kind == "devpts" and self.gid_ok(5):
            options.append(("gid", "5"))
        if kind == "cgroup":
            # a cgroup2 mount made in the initial cgroup namespace sets the
            # hierarchy's flags (nsdelegate, memory_recursiveprot...) for the
            # whole host to its options: it repeats the host's
            given = {k for k, _ in options}
            options += [(flag, None) for flag in _cgroup2_flags() if flag not in given]
        if kind == "dev" and not any(k == "size" for k, _ in options):
            options.append(("size", "65536k"))
        self.mountpoint(m, m.target)
        copy_reg = -1
        if m.copy_up:
            # what the tmpfs will hide, opened first: copied into it below (a
            # read-only one is made read-only once it is filled)
            attrs &= ~MountAttr.RDONLY
            msflags &= ~MountFlags.RDONLY
            copy_reg = plan.reg()
            plan.add(
                ops.preopen(
                    f"open {m.target} to copy it up",
                    t,
                    copy_reg,
                    legacy=not inroot,
                    in_root=bool(inroot),
                )
            )
        desc = f"mount {kind if kind != 'dev' else 'tmpfs'} on {m.target}"
        if self.modern:
            params = b"".join(
                (b"f" if v is None else b"s")
                + os.fsencode(k)
                + b"\0"
                + os.fsencode(v or "")
                + b"\0"
                for k, v in options
            )
            op = plan.add(
                ops.fsmount(
                    desc,
                    t,
                    fstype,
                    source=m.source,
                    params=params + b"\0",
                    attrs=attrs,
                    propagation=prop,
                    opflags=inroot,
                )
            )
        else:
            data = ",".join(k if v is None else f"{k}={v}" for k, v in options)
            op = plan.add(
                ops.mount(
                    desc,
                    t,
                    source=m.source or fstype,
                    fstype=fstype,
                    flags=msflags,
                    data=os.fsencode(data) if data else None,
                    opflags=inroot,
                )
            )
            if prop:
                plan.add(self.propagation(m.target, t, prop, inroot))
        if copy_reg >= 0:
            if op.out < 0:
                op.out = plan.reg()
            plan.add(
                ops.copyup(
                    f"copy what {m.target} held into its tmpfs",
                    "",
                    source_reg=copy_reg,
                    depth=_COPYUP_DEPTH,
                    base_reg=op.out,
                    opflags=OpFlag.BENEATH,
                )
            )
            if m.readonly:
                desc = f"make {m.target} read-only"
                if self.modern:
                    plan.add(ops.setattr_(desc, t, set_attrs=MountAttr.RDONLY, opflags=inroot))
                else:
                    plan.add(ops.remount(desc, t, MountFlags.RDONLY, opflags=inroot))
        self.mounted.append((m.target, fskind, op))
        if kind in ("dev", "tmpfs") and not m.readonly:
            self.own_fs.append(m.target)
        if kind == "dev":
            self.dev_contents(m.target, devices, dev_regs)

    @staticmethod
    def propagation(path: str, target: str, prop: int, inroot: OpFlag) -> Op:
        """Legacy: mount(2) setting the propagation of ``target``."""
        return ops.mount(
            f"set the propagation of {path}", target, flags=MountFlags(prop), opflags=inroot
        )

    def gid_ok(self, gid: int) -> bool:
        if not self.ns & Namespace.USER:
            return True
        return _covered(self.gid_map, gid)

    def dev_contents(self, dev: str, devices: tuple[Any, ...], dev_regs: dict[str, int]) -> None:
        plan = self.plan
        for d in devices:
            path = dev + d.path[len("/dev") :]
            t, inroot = self.target(path)
            if d.path in dev_regs:
                plan.add(ops.mkfile(f"create the mount point {path}", t, opflags=inroot))
                desc = f"bind the host's {d.path} on {path}"
                reg = dev_regs[d.path]
                if self.modern:
                    plan.add(ops.bind(desc, t, source_reg=reg, opflags=inroot))
                else:
                    plan.add(
                        ops.mount(desc, t, source_reg=reg, flags=MountFlags.BIND, opflags=inroot)
                    )
                continue
            if d.type == "p":
                # a FIFO: no device number, and nodev does not concern it
                mode = stat.S_IFIFO | d.mode
                plan.add(ops.mknod(f"create the FIFO {path}", t, mode, 0, opflags=inroot))
                continue
            mode = (stat.S_IFCHR if d.type == "c" else stat.S_IFBLK) | d.mode
            rdev = os.makedev(d.major, d.minor)
            plan.add(ops.mknod(f"create the device {path}", t, mode, rdev, opflags=inroot))
            # a mount of its own: it stays usable once /dev is nodev
            desc = f"bind {path} onto itself"
            own = inroot | OpFlag.SRC_IN_ROOT
            if self.modern:
                plan.add(ops.bind(desc, t, source=t, opflags=own))
            else:
                plan.add(ops.mount(desc, t, source=t, flags=MountFlags.BIND, opflags=own))
        for name, target in (
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("ptmx", "pts/ptmx"),
        ):
            t, inroot = self.target(f"{dev}/{name}")
            plan.add(ops.symlink(f"create the symlink {dev}/{name}", t, target, opflags=inroot))
        extra = [
            Mount.devpts(f"{dev}/pts"),
            Mount.tmpfs(f"{dev}/shm", mode=0o1777, size="65536k", noexec=True),
        ]
        if self.ns & Namespace.IPC:
            extra.append(Mount.mqueue(f"{dev}/mqueue"))
        # what the spec mounts there itself (an OCI config lists them) is left
        # to the spec's own mount
        listed = {m.target for m in self.spec.mounts}
        for m in extra:
            if m.target not in listed:
                self.mount(m, devices, dev_regs)
        t, inroot = self.target(dev)
        if self.modern:
            nodev = ops.setattr_(f"make {dev} nodev", t, set_attrs=MountAttr.NODEV, opflags=inroot)
        else:
            nodev = ops.remount(f"make {dev} nodev", t, MountFlags.NODEV, opflags=inroot)
        plan.add(nodev)

    # -- process --

    def fds(self, desc: str, *, early: bool = False, keep_sync: bool = True) -> int:
        """The FDS op: stdio in place, the spec's pass_fds kept, every other fd
        closed.  The last one also moves the sync socket where the sealed exec
        (or the init) finds it, and keeps the gate; returns that fd number."""
        spec = self.spec
        sync_target = -1
        if not early and keep_sync:
            sync_target = 3
            while sync_target in spec.pass_fds:
                sync_target += 1
        # the gate's FIFO too when early (a joined pid namespace): the gate
        # waits on it at the end
        gate_slot = self.plan.slot("gate") if self.gated else -1
        self.plan.add(
            ops.fds(
                desc,
                list(spec.pass_fds),
                sync_target=sync_target,
                init_slot=self.plan.slot("init"),
                gate_slot=gate_slot,
            )
        )
        return sync_target

    def process(self) -> None:
        spec, plan = self.spec, self.plan
        # a session of its own: no controlling terminal, so nothing in the
        # container can reach the caller's (TIOCSTI, /dev/tty)
        plan.add(ops.simple(OpKind.SETSID, "start a new session"))
        plan.add(ops.simple(OpKind.KEYRING, "join a new session keyring"))
        if spec.hostname is not None:
            plan.add(ops.name(OpKind.HOSTNAME, spec.hostname))
        if spec.domainname is not None:
            plan.add(ops.name(OpKind.DOMAINNAME, spec.domainname))
        if self.ns & Namespace.NET:
            plan.add(ops.simple(OpKind.LOOPBACK, "bring lo up"))
        for res, soft, hard in spec.rlimits:
            name = _RLIMIT_NAMES.get(res, str(res))
            desc = f"set rlimit {name} to {_lim(soft)}/{_lim(hard)}"
            plan.add(ops.rlimit(res, soft, hard, desc))
        if spec.personality is not None:
            plan.add(ops.personality(spec.personality, _persona_desc(spec.personality)))
        uid, gid = spec.uid, spec.gid
        bounding = spec.bounding_capabilities
        sets = spec.capability_sets
        # Loading a filter without no_new_privs takes CAP_SYS_ADMIN: where the
        # capability sets given leave it out of the effective set, the filter
        # is loaded before the uid and the capabilities change (as runc does):
        # the steps after it must then be ones the profile allows
        early_seccomp = (
            sets is not None
            and not spec.no_new_privs
            and spec.seccomp != "unconfined"
            and Capability["SYS_ADMIN"] not in sets.effective
        )
        early_filt = self.seccomp(bounding) if early_seccomp else None
        if early_filt is not None:
            plan.add(early_filt)
        if uid != 0:
            # keep the permitted set across the uid change: the child stays
            # untraceable by the container until exec (see op_caps)
            plan.add(ops.simple(OpKind.KEEPCAPS, "keep capabilities across the uid change"))
        if self.setgroups_ok:
            plan.add(ops.setgroups(list(spec.groups)))
        plan.add(ops.setid(OpKind.SETGID, gid, f"set gid {gid}"))
        plan.add(ops.setid(OpKind.SETUID, uid, f"set uid {uid}"))
        if sets is not None:
            # each set as given; exec derives what the command runs with
            plan.add(
                ops.caps(
                    f"set capabilities ({len(sets.bounding)} bounding, "
                    f"{len(sets.permitted)} permitted, {len(sets.effective)} effective, "
                    f"{len(sets.inheritable)} inheritable, {len(sets.ambient)} ambient)",
                    bounding=_mask(sets.bounding),
                    effective=_mask(sets.effective),
                    permitted=_mask(sets.permitted),
                    inheritable=_mask(sets.inheritable),
                    ambient=_mask(sets.ambient),
                    last_cap=self.f.cap_last_cap,
                    keep_permitted=False,
                )
            )
        else:
            # Docker's rule: root gets the set; another user gets none unless
            # the spec names them, and then through the ambient set
            granted = bounding if uid == 0 or spec.capabilities is not None else frozenset()
            ambient = granted if uid != 0 else frozenset()
            plan.add(
                ops.caps(
                    f"set capabilities ({len(bounding)} bounding, {len(granted)} granted)",
                    bounding=_mask(bounding),
                    effective=_mask(granted),
                    permitted=_mask(granted),
                    inheritable=_mask(granted),
                    ambient=_mask(ambient),
                    last_cap=self.f.cap_last_cap,
                    keep_permitted=True,
                )
            )
        if spec.no_new_privs:
            plan.add(ops.simple(OpKind.NNP, "set no_new_privs"))
        plan.add(ops.umask(spec.umask))
        plan.add(ops.chdir(spec.cwd))
        if spec.terminal:
            # in the container's root and session, with its uid (the pty is
            # the user's, as a login's is); before the fds are set up, which
            # make its slave the stdio
            assert spec.ptmx is not None
            plan.add(ops.terminal(spec.ptmx, spec.console_size))
        env = [f"{k}={v}" for k, v in spec.env]
        cmd = spec.args[0]
        search = "/" not in cmd
        # A process others can see (self.exposed) execs the sealed init without
        # the socket to this process: the init is dumpable for a moment after its
        # exec, and anything in the namespace could take the socket then.  What
        # its exec of the command would say is found out here first instead; and
        # for a container created without starting it, so that a command missing
        # fails the creation (runc's create).
        detached = self.exposed and not spec.init
        if detached or self.gated:
            path = spec.environ.get("PATH", DEFAULT_PATH)
            plan.add(ops.findexec(cmd, path, search=search))
        sync_target = self.fds("set up stdio and close the other fds", keep_sync=not detached)
        filt = early_filt if early_seccomp else self.seccomp(bounding)
        notify = filt is not None and bool(filt.b & lib.SECCOMP_FILTER_FLAG_NEW_LISTENER)
        # A gated process may wait long, and be seen by whatever enters its
        # namespaces: nothing of the caller's memory readable (a copy of it: no
        # CLONE_VM; non-dumpable), its argv and environ (which /proc/N/cmdline
        # shows to anyone) zeroed.  With a notify listener, non-dumpable once
        # the filter is loaded: the parent takes the listener with pidfd_getfd,
        # which a non-dumpable process refuses to an unprivileged caller (the
        # prctl is then one of the engine's own calls the parent lets through).
        undump = ops.dumpable(False, "make the process non-dumpable (it waits)")
        if self.gated and not self.spec.joined & Namespace.PID:
            for start, end, what in _own_arg_env():
                plan.add(ops.wipe(start, end, what))
        if self.gated and not self.exposed and not notify:
            plan.add(undump)
        if filt is not None and not early_seccomp:
            plan.add(filt)
        if self.gated:
            if not self.exposed and notify:
                plan.add(undump)
            # last but the exec: everything else is done (the filter too, as
            # runc loads it before its start fifo)
            plan.add(ops.gate(plan.slot("gate")))
        # Every container process is exec'd by the sealed copy of the init (an
        # in-memory, write-sealed file): its /proc/self/exe is never a host file
        index = len(plan.ops)
        argv = [
            "nsb-init",
            "-" if detached else str(sync_target),
            str(lib.NSB_ABI_VERSION),
            str(index),
            "--" if spec.init else "--exec",
            *spec.args,
        ]
        plan.add(
            ops.exec_(
                f"exec {cmd!r}" + (" (through the init)" if spec.init else ""),
                cmd,
                argv,
                env,
                init_slot=plan.slot("init"),
                search=search,
            )
        )

    def seccomp(self, caps: frozenset[Capability]) -> Op | None:
        """The filter's op, loaded last before exec (the child still holds every
        capability it started with then, so no_new_privs is not needed for it):
        the default profile for the container's capabilities unless the spec
        says "unconfined", a profile of its own, or a raw program; None for none."""
        sc = self.spec.seccomp
        if sc is None or sc == "unconfined":
            return None
        if isinstance(sc, bytes):
            program, flags, what = sc, 0, "the seccomp filter (raw)"
        else:
            from pynsbind import _seccomp_cache

            # the default profile's program, kept on disk: pynsbind.seccomp is
            # not even imported then
            found = _seccomp_cache.get_default(caps, True) if sc == "default" else None
            if found is not None:
                program, flags, notify = found[0], found[1], found[2]
            else:
                from pynsbind.seccomp import SeccompProfile, compile_default

                if sc == "default":
                    compiled = compile_default(caps)
                else:
                    assert isinstance(sc, SeccompProfile)
                    compiled = sc.compile()
                program, flags, notify = compiled.program, compiled.flags, compiled.notify
            if notify and not self.f.pidfd_getfd:
                raise SpecError(
                    "seccomp",
                    "SCMP_ACT_NOTIFY needs pidfd_getfd (Linux 5.6), which this kernel lacks",
                )
            what = "the default seccomp profile" if sc == "default" else "the seccomp profile"
        return ops.seccomp(f"load {what}", program, flags)


_MAGIC = {"proc": 0x9FA0, "sysfs": 0x62656572}
#: how many directories deep a copy-up goes (its recursion is on the child's stack)
_COPYUP_DEPTH = 32

#: where an overlay root's tmpfs goes in the container's mount namespace (a
#: directory every host has; out of sight once the root is pivoted)
_SCRATCH = "/tmp"


def _under(path: str, top: str) -> bool:
    """Whether ``path`` is ``top`` or below it."""
    return path == top or path.startswith(top.rstrip("/") + "/")


def _fs_params(options: Sequence[tuple[str, str | None]]) -> bytes:
    """fsconfig parameters as FSMOUNT takes them: 'f' (flag) or 's' (string)
    records of a key and a value, each NUL-terminated, then a 0 byte."""
    return (
        b"".join(
            (b"f" if v is None else b"s") + os.fsencode(k) + b"\0" + os.fsencode(v or "") + b"\0"
            for k, v in options
        )
        + b"\0"
    )


_arg_env: list[tuple[int, int, str]] | None = None


def _own_arg_env() -> list[tuple[int, int, str]]:
    """Where this process's argv and environ strings are (fields 48-51 of
    /proc/self/stat): what a copy of it shows in /proc/N/cmdline and environ."""
    global _arg_env
    if _arg_env is None:
        try:
            with open("/proc/self/stat", "rb") as f:
                data = f.read()
            fields = data[data.rindex(b")") + 2 :].split()
            a0, a1, e0, e1 = (int(x) for x in fields[45:49])
            _arg_env = [(a0, a1, "argv"), (e0, e1, "environ")]
        except (OSError, ValueError):
            _arg_env = []
    return _arg_env


def _guards(paths: Sequence[str] | None, defaults: Sequence[str]) -> list[tuple[str, bool]]:
    """(path, is a default) for the masked or read-only paths of a spec."""
    if paths is None:
        return [(p, True) for p in defaults]
    return [(p, False) for p in paths]


#: the cgroup2 mount options that are flags of the whole hierarchy
_CGROUP2_FLAGS = (
    "nsdelegate",
    "favordynmods",
    "memory_localevents",
    "memory_recursiveprot",
    "memory_hugetlb_accounting",
    "pids_localevents",
)


def _cgroup2_flags() -> list[str]:
    """The hierarchy-wide flags the host's cgroup2 has now (the super options
    of a cgroup2 mount in /proc/self/mountinfo); none where it is not mounted."""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                _, _, rest = line.partition(" - ")
                fields = rest.split()
                if len(fields) >= 3 and fields[0] == "cgroup2":
                    return [o for o in fields[2].split(",") if o in _CGROUP2_FLAGS]
    except OSError:
        pass
    return []


def _persona_desc(persona: int) -> str:
    domain = Personality(persona & PERSONALITY_DOMAIN_MASK)
    flags = persona & ~PERSONALITY_DOMAIN_MASK
    names = [domain.name or f"{int(domain):#x}"]
    names += [f.name or "" for f in Personality if f.value & ~PERSONALITY_DOMAIN_MASK & flags]
    return f"set the personality {'|'.join(names)}"


def _mask(caps: frozenset[Capability]) -> int:
    out = 0
    for cap in caps:
        out |= 1 << int(cap)
    return out


def _join_order(join: tuple[Namespace, object]) -> int:
    kinds = join[0]
    if kinds & Namespace.USER:
        return 0
    return 2 if kinds & Namespace.MNT else 1


def _is_own_namespace(target: object, kind: Namespace) -> bool:
    """Whether a join target (a path, an fd of a namespace or a pidfd, a
    Process) leads to this process's own namespace of ``kind``.  A target that
    cannot be looked at is not (the join itself fails then)."""
    name = kind.proc_name
    try:
        own = os.stat(f"/proc/self/ns/{name}")
        if isinstance(target, str):
            st = os.stat(target)
        elif isinstance(target, int):
            st = os.fstat(target)
            if st.st_dev != own.st_dev:  # not a namespace file: a pidfd
                pid = _pidfd_pid(target)
                if pid is None:
                    return False
                st = os.stat(f"/proc/{pid}/ns/{name}")
        else:
            st = os.stat(f"/proc/{getattr(target, 'pid', -1)}/ns/{name}")
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _pidfd_pid(fd: int) -> int | None:
    """The pid a pidfd refers to (its fdinfo's Pid line), or None."""
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("Pid:"):
                    pid = int(line.split()[1])
                    return pid if pid > 0 else None
    except (OSError, ValueError):
        pass
    return None


def _setgroups_allowed(target: object) -> bool:
    """Whether the user namespace of a join target allows setgroups: read from
    /proc/PID/setgroups where the target names a process (a Process or a
    /proc/PID/ns/user path); assumed for an fd (a refusal is then an error)."""
    pid = getattr(target, "pid", None)
    if pid is None and isinstance(target, str):
        parts = target.split("/")
        if len(parts) == 5 and parts[1] == "proc" and parts[3] == "ns" and parts[2].isdigit():
            pid = int(parts[2])
    if not isinstance(pid, int):
        return True
    try:
        with open(f"/proc/{pid}/setgroups") as f:
            return f.read().strip() != "deny"
    except OSError:
        return True


def _refuse_silent_legacy(feats: Features) -> None:
    """A kernel that has the new mount API but refused it (ENOSYS: a seccomp
    filter or an LSM): never fall back to mount(2) without being asked."""
    try:
        major, minor = (int(x) for x in feats.kernel.split(".")[:2])
    except ValueError:
        return
    if (major, minor) >= (5, 12):
        raise SpawnError(
            errno.ENOSYS,
            f"kernel {feats.kernel} has the new mount API (fsopen, open_tree, mount_setattr, "
            "openat2) but refused it here (a seccomp filter or a security module?): "
            "pynsbind does not fall back to mount(2) on its own; ask for the legacy mount "
            "mode explicitly",
            stage="parent",
            step="features",
        )


def _no_symlinks(path: str, field: str, what: str) -> None:
    """SpecError when a component of the host path ``path`` is a symlink."""
    parts = [p for p in path.split("/") if p]
    for i in range(1, len(parts) + 1):
        here = "/" + "/".join(parts[:i])
        try:
            is_link = stat.S_ISLNK(os.lstat(here).st_mode)
        except FileNotFoundError:
            return  # _stat says it is missing
        if is_link:
            try:
                where = f" -> {os.readlink(here)!r}"
            except OSError:  # changed meanwhile: all the more reason
                where = ""
            raise SpecError(
                field,
                f"{what}{path!r} goes through the symlink {here!r}{where}: give the path "
                "without symlinks (os.path.realpath), so that nobody can swap one in",
            )


def _stat(path: str, field: str, what: str) -> os.stat_result:
    """os.stat, or a SpecError naming the field, the path and the reason."""
    try:
        return os.stat(path)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise SpecError(field, f"{what}{path!r}: {reason}") from None


def _lim(v: int) -> str:
    return "unlimited" if v >= 2**63 else str(v)


def _find_helper(name: str) -> str | None:
    for d in ("/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def compile_plan(
    spec: Spec,
    feats: Features,
    opts: Options | None = None,
    *,
    host: Host | None = None,
    gated: bool = False,
) -> Plan:
    """Compile a spec (raises SpecError for what only compiling can tell).
    ``host``: the cgroup layout to place the container in (default: this
    machine's, pynsbind.cgroups.host()).  ``gated``: the child waits at a start
    gate before its exec (fd slot ``gate``: a FIFO, or -1 to wait for the
    spawner's go)."""
    return _Compiler(spec, feats, opts or Options(), host, gated).compile()
