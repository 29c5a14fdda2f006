"""Spec -> plan compilation: pure logic (the plan is data), no clone."""

from __future__ import annotations

import dataclasses
import errno
import os
import signal
import struct
from typing import Any

import pytest

from pynsbind import (
    Capability,
    Features,
    IdMap,
    Mount,
    Namespace,
    SpawnError,
    Spec,
    SpecError,
    features,
)
from pynsbind.cgroups import Host
from pynsbind.seccomp import Action, SeccompProfile, SyscallRule, default_profile
from pynsbind.spec import DEFAULT_CAPABILITIES, CapabilitySets
from pynsbind.testing import OpFlag, OpKind, Options, compile_plan, lib

MODERN = Features(
    kernel="6.1",
    clone3=True,
    clone_pidfd=True,
    clone_into_cgroup=True,
    clone_vm=True,
    new_mount_api=True,
    mount_setattr=True,
    idmapped_mounts=True,
    openat2=True,
    pidfd=True,
    pidfd_getfd=True,
    close_range=True,
    time_namespace=True,
    user_namespace=True,
    seccomp=True,
    cgroup_layout="unified",
    cap_last_cap=40,
)
OLD = dataclasses.replace(
    MODERN,
    kernel="5.1.0",
    clone3=False,
    new_mount_api=False,
    mount_setattr=False,
    openat2=False,
    pidfd=False,
)
NS = Namespace.PID | Namespace.MNT | Namespace.UTS | Namespace.IPC | Namespace.NET


#: a host where no cgroup can be made (rootless, say): a spec that asks for none
#: then gets none for its device rules either, so that the op lists below do not
#: depend on this machine's cgroups (see
#: test_a_spec_without_cgroups_gets_one_for_its_device_rules)
NO_CGROUPS = Host("none", problem="no cgroups here (a test's host)")


def plan(feats: Features = MODERN, opts: Options | None = None, **fields: Any) -> Any:
    fields.setdefault("args", ["/bin/true"])
    fields.setdefault("namespaces", NS)
    return compile_plan(Spec(**fields), feats, opts, host=NO_CGROUPS)


def test_rootfs_plan_order(tmp_path: Any) -> None:
    p = plan(rootfs=str(tmp_path), hostname="box")
    kinds = p.kinds()
    assert kinds[0] == "SETATTR" and "private" in p.ops[0].desc
    # the host's /dev/null, for masks, before anything is mounted over it
    assert kinds[1] == "PREOPEN" and p.ops[1].s1 == "/dev/null" and p.ops[1].out > 0
    assert kinds[2] == "BIND" and p.ops[2].flags & OpFlag.ROOT_REG
    assert p.ops[2].a & lib.MOUNT_ATTR_NODEV
    assert kinds.index("PIVOT") > kinds.index("FSMOUNT")
    # masks and read-only paths are made before pivot_root, from their mount
    assert kinds.index("MASK") < kinds.index("PIVOT")
    assert kinds.index("HOSTNAME") > kinds.index("ROPATH")
    order = [
        "SETSID",
        "KEYRING",
        "LOOPBACK",
        "SETGROUPS",
        "SETGID",
        "SETUID",
        "CAPS",
        "NNP",
        "UMASK",
        "CHDIR",
        "FDS",
    ]
    assert [k for k in kinds if k in order] == order
    assert kinds[-1] == "EXEC"
    assert p.clone_flags == int(NS)
    assert p.flags & lib.NSB_PLAN_PIDFD
    # targets inside the rootfs are relative and resolved in it
    proc = next(op for op in p.ops if op.desc == "mount proc on /proc")
    assert proc.s2 == "proc" and proc.flags & OpFlag.IN_ROOT and proc.s3 == "proc"


def test_legacy_mount_plan_uses_mount2_and_resolves_in_the_root(tmp_path: Any) -> None:
    p = plan(OLD, rootfs=str(tmp_path))
    kinds = set(p.kinds())
    assert not kinds & {"FSMOUNT", "BIND", "SETATTR"}
    proc = next(op for op in p.ops if op.desc == "mount proc on /proc")
    # resolved in the rootfs (by the child's own walk: no openat2 here), never
    # as a host path that a symlink in the rootfs could send elsewhere
    assert proc.kind == OpKind.MOUNT and proc.s2 == "proc" and proc.flags & OpFlag.IN_ROOT
    assert p.flags & lib.NSB_PLAN_NO_OPENAT2
    assert p.flags & lib.NSB_PLAN_LEGACY_CLONE and not p.flags & lib.NSB_PLAN_PIDFD
    # the same through the knob, on a modern kernel
    q = plan(MODERN, Options(legacy_mount=True), rootfs=str(tmp_path))
    assert q.kinds() == p.kinds()


def test_guards_and_preopens_say_which_mount_api_they_use(tmp_path: Any) -> None:
    # masks, read-only paths and pre-opened device nodes follow the plan's mount
    # mode (NSB_F_LEGACY); the host's /dev/null is always an O_PATH fd
    devs = [Mount.dev("/dev")]
    for feats, legacy in ((MODERN, False), (OLD, True)):
        ns = NS | Namespace.USER  # device nodes are then bound, not made
        p = plan(feats, rootfs=str(tmp_path), mounts=[Mount.proc(), *devs], namespaces=ns)
        guards = [op for op in p.ops if op.kind in (OpKind.MASK, OpKind.ROPATH)]
        preopens = [op for op in p.ops if op.kind == OpKind.PREOPEN]
        assert guards and len(preopens) > 1
        assert all(bool(op.flags & OpFlag.LEGACY) == legacy for op in guards)
        null, *nodes = preopens
        assert null.s1 == "/dev/null" and null.flags & OpFlag.LEGACY
        assert all(bool(op.flags & OpFlag.LEGACY) == legacy for op in nodes)
        assert all(op.out >= 0 for op in preopens)


def test_the_legacy_mount_mode_is_never_chosen_silently() -> None:
    # a kernel that has the new mount API, whose calls failed when probed (a
    # filter around the caller): no quiet fallback to mount(2)
    blocked = dataclasses.replace(MODERN, kernel="6.1.0", new_mount_api=False, openat2=False)
    with pytest.raises(SpawnError, match=r"does not fall back to mount\(2\) on its own") as info:
        plan(blocked)
    assert info.value.errno == errno.ENOSYS
    # asked for, it is used
    assert plan(blocked, Options(legacy_mount=True)).flags & lib.NSB_PLAN_NO_OPENAT2


def test_no_directories_created_in_the_host_root() -> None:
    p = plan(namespaces=NS)
    made = [op.s2 for op in p.ops if op.kind_name in ("MKDIRS", "MKFILE")]
    assert made and all(path.startswith("/dev/") for path in made)


def test_user_namespace_as_root_writes_maps_then_becomes_root(tmp_path: Any) -> None:
    if os.geteuid() != 0:
        pytest.skip("the plan depends on the caller's uid")
    p = plan(
        rootfs=str(tmp_path),
        namespaces=NS | Namespace.USER,
        uid_map=[IdMap(0, 100000, 65536)],
        gid_map=[(0, 100000, 65536)],
        user=(1000, 1000),
    )
    assert p.kinds()[:3] == ["SYNC", "SETGID", "SETUID"]
    assert (p.ops[1].a, p.ops[2].a) == (0, 0)
    names = [pa.name for pa in p.pacts]
    assert names == ["gid_map", "uid_map"]
    assert p.pacts[1].data == b"0 100000 65536\n"
    assert all(pa.step == 1 for pa in p.pacts)
    # devices are bound from the host, since mknod is refused in a user namespace
    assert "MKNOD" not in p.kinds() and "PREOPEN" in p.kinds()
    assert p.ops[-1].kind_name == "EXEC"
    setuid = [op for op in p.ops if op.kind_name == "SETUID"]
    assert setuid[-1].a == 1000


def test_unprivileged_single_map_denies_setgroups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(os, "getegid", lambda: 1000)
    p = plan(namespaces=NS | Namespace.USER)
    assert [pa.name for pa in p.pacts] == ["setgroups", "gid_map", "uid_map"]
    assert p.pacts[0].data == b"deny"
    assert p.pacts[2].data == b"0 1000 1\n"
    assert "SETGROUPS" not in p.kinds()
    with pytest.raises(SpecError, match="groups"):
        plan(namespaces=NS | Namespace.USER, groups=[0])


def test_unmapped_user_is_refused() -> None:
    with pytest.raises(SpecError, match="uid 5 is not in uid_map"):
        plan(namespaces=NS | Namespace.USER, uid_map=[(0, 0, 1)], user=5)


def test_joins_come_first_user_first_and_a_pid_namespace_forks(tmp_path: Any) -> None:
    p = plan(
        rootfs=str(tmp_path),
        namespaces=Namespace.MNT | Namespace.PID,
        join={Namespace.NET: "/proc/1/ns/net", Namespace.USER: "/proc/1/ns/user"},
    )
    kinds = p.kinds()
    assert kinds[:5] == ["SETNS", "SETNS", "UNSHARE", "UNSHARE", "FORK"] or kinds[:4] == [
        "SETNS",
        "SETNS",
        "UNSHARE",
        "FORK",
    ]
    assert "user" in p.ops[0].desc and "net" in p.ops[1].desc
    assert p.clone_flags == 0
    fork = kinds.index("FORK")
    unshared = sum(op.a for op in p.ops[:fork] if op.kind_name == "UNSHARE")
    assert unshared == int(Namespace.MNT | Namespace.PID)


def test_a_mount_namespace_is_joined_last() -> None:
    # the paths after it would be looked up in the joined namespace's tree
    p = plan(
        namespaces=Namespace(0),
        join={
            Namespace.MNT: "/proc/1/ns/mnt",
            Namespace.NET: "/proc/1/ns/net",
            Namespace.USER: "/proc/1/ns/user",
            Namespace.UTS: "/proc/1/ns/uts",
        },
    )
    joins = [op.s1 for op in p.ops if op.kind == OpKind.SETNS]
    assert joins == ["/proc/1/ns/user", "/proc/1/ns/net", "/proc/1/ns/uts", "/proc/1/ns/mnt"]


def test_joining_by_fd_uses_a_slot() -> None:
    p = plan(namespaces=Namespace(0), join={Namespace.NET | Namespace.UTS: 7})
    assert "join:net+uts" in p.slots
    # no pid namespace of its own: visible from its start, so never dumpable
    assert p.ops[0].kind_name == "DUMPABLE" and p.ops[0].a == 0
    assert p.flags & lib.NSB_PLAN_NO_CLONE_VM
    setns = p.ops[1]
    assert setns.kind_name == "SETNS" and setns.fd == p.slots.index("join:net+uts")
    assert setns.a == int(Namespace.NET | Namespace.UTS)


def test_time_offsets_sync_then_fork() -> None:
    p = plan(namespaces=NS | Namespace.TIME, time_offsets={"monotonic": 3600})
    kinds = p.kinds()
    assert p.clone_flags == int(NS & ~Namespace.PID)
    i = kinds.index("UNSHARE")
    assert p.ops[i].a == int(Namespace.PID | Namespace.TIME)
    assert kinds[i + 1 : i + 3] == ["SYNC", "FORK"]
    assert p.flags & lib.NSB_PLAN_NO_CLONE_VM
    assert p.pacts[-1].name == "timens_offsets"
    assert p.pacts[-1].data == b"monotonic 3600 0\n"


def test_init_execs_the_init_through_a_slot() -> None:
    p = plan(init=True, pass_fds=[3, 4])
    assert p.flags & lib.NSB_PLAN_KEEP_SYNC
    exec_op = p.ops[-1]
    slot = p.slots.index("init")
    assert exec_op.fd == slot
    assert exec_op.argv[:5] == [
        "nsb-init",
        "5",
        str(lib.NSB_ABI_VERSION),
        str(len(p.ops) - 1),
        "--",
    ]
    assert exec_op.argv[5:] == ["/bin/true"]
    fds = p.ops[-3]
    assert fds.kind_name == "FDS" and fds.b == 5 and fds.ints == [3, 4] and fds.fd == slot


def test_the_default_seccomp_profile_is_loaded_last_before_exec() -> None:
    p = plan()
    op = p.ops[-2]
    assert op.kind_name == "SECCOMP" and op.desc == "load the default seccomp profile"
    assert op.blob == default_profile(DEFAULT_CAPABILITIES).compile().program
    assert op.a == len(op.blob) // 8
    # without no_new_privs too: the child still holds its capabilities then
    assert plan(no_new_privs=False).ops[-2].kind_name == "SECCOMP"
    assert "SECCOMP" not in plan(seccomp="unconfined").kinds()
    raw = plan(seccomp=b"\x06\0\0\0\0\0\xff\x7f")
    assert raw.ops[-2].blob == b"\x06\0\0\0\0\0\xff\x7f" and raw.ops[-2].b == 0
    # a profile with notify rules asks the kernel for a listener
    notify = SeccompProfile(
        default_action=Action.ALLOW,
        syscalls=(SyscallRule(names=("mkdir",), action=Action.NOTIFY),),
    )
    assert plan(seccomp=notify).ops[-2].b & lib.SECCOMP_FILTER_FLAG_NEW_LISTENER


def test_every_command_is_execd_through_the_sealed_init() -> None:
    p = plan(args=["true"], env={"PATH": "/x:/y"})
    exec_op = p.ops[-1]
    assert exec_op.fd == p.slots.index("init")
    assert exec_op.argv[4:] == ["--exec", "true"] and "PATH=/x:/y" in exec_op.env
    # the sync socket goes where the sealed exec expects it
    fds = p.ops[-3]
    assert fds.kind_name == "FDS" and exec_op.argv[1] == str(fds.b) == "3"
    # searched in $PATH (by the init) only without a slash
    assert exec_op.flags & OpFlag.SEARCH_PATH
    q = plan(args=["/bin/true"])
    assert not q.ops[-1].flags & OpFlag.SEARCH_PATH


def test_die_with_parent_is_the_first_op() -> None:
    p = plan(die_with_parent=True)
    assert p.ops[0].kind_name == "PDEATHSIG" and p.ops[0].a == signal.SIGKILL


def _cap_sets(p: Any) -> dict[str, int]:
    caps = next(op for op in p.ops if op.kind_name == "CAPS")
    assert caps.flags & OpFlag.KEEP_PERMITTED
    names = ("bounding", "effective", "permitted", "inheritable", "ambient")
    return dict(zip(names, struct.unpack("<5Q", caps.blob), strict=True))


def test_capabilities_root_gets_the_set_another_user_only_what_is_named() -> None:
    default = sum(1 << int(c) for c in DEFAULT_CAPABILITIES)
    root = _cap_sets(plan())
    assert root == dict.fromkeys(("bounding", "effective", "permitted", "inheritable"), default) | {
        "ambient": 0
    }
    # Docker's rule: a non-root user keeps the bounding set, and nothing else
    user = _cap_sets(plan(user=1000))
    assert user == {"bounding": default} | dict.fromkeys(
        ("effective", "permitted", "inheritable", "ambient"), 0
    )
    # unless the spec names them: then through the ambient set
    named = _cap_sets(plan(user=1000, capabilities=["NET_RAW"]))
    assert set(named.values()) == {1 << 13}
    assert "KEEPCAPS" in plan(user=1000).kinds()


def test_compile_time_errors(tmp_path: Any) -> None:
    with pytest.raises(SpecError, match="rootfs"):
        plan(rootfs=str(tmp_path / "missing"))
    with pytest.raises(SpecError, match="bind source"):
        plan(mounts=[Mount.bind(str(tmp_path / "missing"), "/x")])
    notify = SeccompProfile(
        default_action=Action.ALLOW,
        syscalls=(SyscallRule(names=("mkdir",), action=Action.NOTIFY),),
    )
    with pytest.raises(SpecError, match="SCMP_ACT_NOTIFY needs pidfd_getfd"):
        plan(dataclasses.replace(MODERN, pidfd_getfd=False), seccomp=notify)
    with pytest.raises(SpecError, match="time namespaces"):
        compile_plan(
            Spec(args=["x"], namespaces=Namespace.TIME),
            dataclasses.replace(MODERN, time_namespace=False),
        )


def test_dump_numbers_ops_like_errors(tmp_path: Any) -> None:
    p = plan(rootfs=str(tmp_path))
    text = p.dump().splitlines()
    assert text[0].startswith("clone: PID|MNT|NET|UTS|IPC; engine: PIDFD; fd slots: stdin")
    assert text[1] == "cgroup: none (the caller's)"
    assert text[2].split()[:2] == ["1", "SETATTR"]
    assert text[-1].split()[:2] == [str(len(p.ops)), "EXEC"]


def test_dump_puts_the_parents_actions_after_their_sync(tmp_path: Any) -> None:
    p = plan(rootfs=str(tmp_path), namespaces=NS | Namespace.USER)
    text = p.dump().splitlines()
    sync = next(i for i, line in enumerate(text) if line.split()[1:2] == ["SYNC"])
    # the id maps are written by the parent at the first sync, named there
    assert text[sync + 1].strip().startswith("parent: ")
    after = [line.strip() for line in text[sync + 1 :] if line.startswith("    parent: ")]
    assert any("uid_map" in line for line in after) and any("gid_map" in line for line in after)
    assert len(after) == len(p.pacts)


def test_c_layout_is_built_once_and_matches(tmp_path: Any) -> None:
    p = plan(rootfs=str(tmp_path), hostname="h")
    c = p.c_plan()
    assert c is p.c_plan()
    assert c.nops == len(p.ops) and c.abi == lib.NSB_ABI_VERSION
    assert c.clone_flags == p.clone_flags
    for i, op in enumerate(p.ops):
        assert c.ops[i].kind == op.kind and c.ops[i].a == op.a


@pytest.mark.root
def test_a_spec_without_cgroups_gets_one_for_its_device_rules() -> None:
    from pynsbind.cgroups import device_host, host

    dh = device_host(host())
    assert dh is not None
    p = compile_plan(Spec(args=["/bin/true"]), features())
    names = [h.name for h in dh.hierarchies]
    assert len(names) == 1
    want = "cgroup" if dh.hierarchies[0].version == 2 else f"cgv1:{names[0]}"
    assert want in p.slots and p.cgroup_host is dh


def test_real_features_compile_the_default_spec() -> None:
    p = compile_plan(Spec(args=["/bin/true"]), features())
    assert p.ops[-1].kind_name == "EXEC"


# ---- the terminal, the start gate, the setup hook ----------------------------------------


def test_the_terminal_is_made_in_the_root_with_the_final_ids_before_the_fds(
    tmp_path: Any,
) -> None:
    p = plan(rootfs=str(tmp_path), terminal=True, console_size=(30, 100), user=1000)
    kinds = p.kinds()
    term = p.ops[kinds.index("TERMINAL")]
    # the container's own devpts (Mount.dev's), its ptmx, after pivot_root and
    # setsid, once the uid is the container's, before the fds make it stdio
    assert term.s1 == "/dev/pts/ptmx" and (term.a, term.b) == (30, 100)
    assert kinds.index("PIVOT") < kinds.index("SETSID") < kinds.index("TERMINAL")
    assert kinds.index("SETUID") < kinds.index("TERMINAL") < kinds.index("FDS")
    assert "30x100" in term.desc
    devpts = plan(rootfs=str(tmp_path), terminal=True, mounts=[Mount.proc(), Mount.devpts("/pts")])
    assert devpts.ops[devpts.kinds().index("TERMINAL")].s1 == "/pts/ptmx"
    host = plan(terminal=True, namespaces=Namespace.PID | Namespace.UTS)
    assert host.ops[host.kinds().index("TERMINAL")].s1 == "/dev/ptmx"
    assert "TERMINAL" not in plan(rootfs=str(tmp_path)).kinds()


def test_a_gated_plan_waits_last_but_the_exec_on_its_own_memory(tmp_path: Any) -> None:
    spec = Spec(args=["sh"], rootfs=str(tmp_path), namespaces=NS)
    p = compile_plan(spec, MODERN, host=NO_CGROUPS, gated=True)
    kinds = p.kinds()
    assert kinds[-3:] == ["SECCOMP", "GATE", "EXEC"]
    gate = p.ops[-2]
    assert gate.fd == p.slots.index("gate")
    # the command is looked for before the gate: a missing one fails the creation
    assert kinds.index("FINDEXEC") < kinds.index("FDS")
    fds = p.ops[kinds.index("FDS")]
    assert fds.c == gate.fd + 1  # the FDS op keeps the gate's FIFO
    assert p.flags & lib.NSB_PLAN_NO_CLONE_VM
    # non-dumpable and without the caller's argv and environ while it waits
    assert "DUMPABLE" in kinds[kinds.index("FDS") :] and "WIPE" in kinds
    plain = compile_plan(spec, MODERN, host=NO_CGROUPS)
    assert "GATE" not in plain.kinds() and "gate" not in plain.slots
    assert not plain.flags & lib.NSB_PLAN_NO_CLONE_VM
    assert plain.ops[plain.kinds().index("FDS")].c == 0


def test_the_hook_runs_at_a_sync_right_before_pivot_root(tmp_path: Any) -> None:
    def my_hook(pid: int) -> None:
        pass

    p = plan(rootfs=str(tmp_path), hook=my_hook)
    kinds = p.kinds()
    sync = p.ops[kinds.index("PIVOT") - 1]
    assert sync.kind == OpKind.SYNC
    (pact,) = [pa for pa in p.pacts if pa.step == sync.a]
    assert pact.kind == lib.NSB_PACT_HOOK and "my_hook" in pact.desc
    # after every mount and guard
    assert kinds.index("ROPATH") < kinds.index("PIVOT") - 1
    assert "parent: call the hook" in p.dump()
    # no mount namespace: once the namespaces are made
    bare = plan(hook=my_hook, namespaces=Namespace.PID | Namespace.UTS)
    assert any(pa.kind == lib.NSB_PACT_HOOK for pa in bare.pacts)
    assert bare.kinds().index("SYNC") < bare.kinds().index("SETSID")
    assert not any(pa.kind == lib.NSB_PACT_HOOK for pa in plan(rootfs=str(tmp_path)).pacts)


def test_lifecycle_fields_are_checked(tmp_path: Any) -> None:
    with pytest.raises(SpecError, match="console_size: needs terminal=True"):
        Spec(args=["sh"], console_size=(24, 80))
    with pytest.raises(SpecError, match="console_size rows: 0 is out of range"):
        Spec(args=["sh"], terminal=True, console_size=(0, 80))
    with pytest.raises(SpecError, match=r"console_size: expected \(rows, columns\)"):
        Spec(args=["sh"], terminal=True, console_size=[24, 80])  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="terminal: the container has no devpts"):
        Spec(args=["sh"], terminal=True, mounts=[Mount.proc()])
    with pytest.raises(SpecError, match="terminal: expected a bool"):
        Spec(args=["sh"], terminal=1)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="hook: expected a callable taking the pid, got str"):
        Spec(args=["sh"], hook="echo")  # type: ignore[arg-type]

    # specs with the same hook are one spec (one cached plan); another hook is another
    def hook(pid: int) -> None:
        pass

    assert Spec(args=["sh"], hook=hook) == Spec(args=["sh"], hook=hook)
    assert Spec(args=["sh"], hook=hook) != Spec(args=["sh"], hook=lambda pid: None)


# ---- what OCI configs need besides ------------------------------------------------------


def test_sysctls_are_written_through_the_containers_proc_before_it_is_guarded(
    tmp_path: Any,
) -> None:
    p = plan(rootfs=str(tmp_path), sysctl={"net.core.somaxconn": "256", "kernel.shmmax": "9"})
    kinds = p.kinds()
    proc = next(op for op in p.ops if op.desc == "mount proc on /proc")
    writes = [op for op in p.ops if op.kind == OpKind.SYSCTL]
    assert [(op.s2, op.s1) for op in writes] == [
        ("sys/kernel/shmmax", "9"),
        ("sys/net/core/somaxconn", "256"),
    ]
    assert all(op.reg == proc.out >= 0 and op.flags & OpFlag.BENEATH for op in writes)
    assert all(op.c == 0x9FA0 for op in writes)  # PROC_SUPER_MAGIC
    first = kinds.index("SYSCTL")
    assert kinds.index("FSMOUNT") < first < kinds.index("MASK") < kinds.index("ROPATH")
    assert writes[0].desc == "set sysctl kernel.shmmax to '9'"
    with pytest.raises(SpecError, match=r"sysctl: .*mount one"):
        plan(rootfs=str(tmp_path), mounts=[Mount.dev()], sysctl={"kernel.shmmax": "9"})


def test_a_joined_namespace_that_is_the_callers_own_is_not_changed() -> None:
    ns = Namespace.MNT | Namespace.PID
    for fields in (
        {"join": {Namespace.NET: "/proc/self/ns/net"}, "sysctl": {"net.ipv4.ip_forward": "1"}},
        {"join": {Namespace.IPC: f"/proc/{os.getpid()}/ns/ipc"}, "sysctl": {"kernel.sem": "1"}},
        {"join": {Namespace.UTS: "/proc/self/ns/uts"}, "hostname": "oops"},
        {"join": {Namespace.UTS: "/proc/self/ns/uts"}, "domainname": "oops"},
    ):
        with pytest.raises(SpecError, match="this process's own"):
            plan(namespaces=ns, **fields)
    fd = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with pytest.raises(SpecError, match="hostname: the uts namespace joined"):
            plan(namespaces=ns, join={Namespace.UTS: fd}, hostname="oops")
    finally:
        os.close(fd)
    pidfd = os.pidfd_open(os.getpid())
    try:
        with pytest.raises(SpecError, match="this process's own"):
            plan(namespaces=ns, join={Namespace.UTS | Namespace.NET: pidfd}, hostname="oops")
    finally:
        os.close(pidfd)
    # another process's namespace is the caller's business
    p = plan(namespaces=ns, join={Namespace.UTS: "/nonexistent/uts"}, hostname="ok")
    assert "HOSTNAME" in p.kinds()


def test_personality_is_set_with_the_process_state() -> None:
    p = plan(personality=8)
    op = next(op for op in p.ops if op.kind == OpKind.PERSONALITY)
    assert op.a == 8 and op.desc == "set the personality LINUX32"
    kinds = p.kinds()
    assert kinds.index("PERSONALITY") < kinds.index("SETUID")
    flags = plan(personality=0x0040000).ops
    assert any(o.desc == "set the personality LINUX|ADDR_NO_RANDOMIZE" for o in flags)


def test_capability_sets_are_set_as_given() -> None:
    sets = CapabilitySets(
        bounding=["CHOWN", "KILL", "NET_RAW"],
        permitted=["CHOWN", "KILL"],
        effective=["CHOWN"],
        inheritable=["KILL"],
        ambient=["KILL"],
    )
    p = plan(user=1000, capability_sets=sets, no_new_privs=True)
    caps = next(op for op in p.ops if op.kind == OpKind.CAPS)
    assert not caps.flags & OpFlag.KEEP_PERMITTED
    got = dict(
        zip(
            ("bounding", "effective", "permitted", "inheritable", "ambient"),
            struct.unpack("<5Q", caps.blob),
            strict=True,
        )
    )
    bit = {n: 1 << int(Capability[n]) for n in ("CHOWN", "KILL", "NET_RAW")}
    assert got == {
        "bounding": bit["CHOWN"] | bit["KILL"] | bit["NET_RAW"],
        "effective": bit["CHOWN"],
        "permitted": bit["CHOWN"] | bit["KILL"],
        "inheritable": bit["KILL"],
        "ambient": bit["KILL"],
    }
    assert "KEEPCAPS" in p.kinds()
    assert "3 bounding, 2 permitted, 1 effective, 1 inheritable, 1 ambient" in caps.desc
    # the filter is loaded last, with no_new_privs
    assert p.kinds()[-2:] == ["SECCOMP", "EXEC"]


def test_a_filter_without_no_new_privs_or_sys_admin_comes_before_the_identity() -> None:
    sets = CapabilitySets(bounding=["CHOWN"], permitted=["CHOWN"], effective=["CHOWN"])
    kinds = plan(user=1000, capability_sets=sets, no_new_privs=False).kinds()
    assert kinds.index("SECCOMP") < kinds.index("SETGROUPS") < kinds.index("CAPS")
    assert kinds.count("SECCOMP") == 1
    # with CAP_SYS_ADMIN effective, or no_new_privs, or no filter: last, as usual
    admin = CapabilitySets(bounding=["SYS_ADMIN"], permitted=["SYS_ADMIN"], effective=["SYS_ADMIN"])
    assert plan(capability_sets=admin, no_new_privs=False).kinds()[-2] == "SECCOMP"
    assert plan(capability_sets=sets, no_new_privs=True).kinds()[-2] == "SECCOMP"
    assert "SECCOMP" not in plan(capability_sets=sets, no_new_privs=False, seccomp=None).kinds()


@pytest.mark.parametrize("feats", [MODERN, OLD], ids=["modern", "legacy"])
def test_rootfs_propagation(feats: Features, tmp_path: Any) -> None:
    first = plan(feats, rootfs=str(tmp_path), rootfs_propagation="rslave").ops[0]
    assert first.desc == "make / a slave of the host's mounts (rslave)"
    assert "private" in plan(feats, rootfs=str(tmp_path), rootfs_propagation="private").ops[0].desc
    for wanted, prop in (
        ("shared", lib.MS_SHARED),
        ("rshared", lib.MS_SHARED),
        ("unbindable", lib.MS_UNBINDABLE),
        ("runbindable", lib.MS_UNBINDABLE),
    ):
        p = plan(feats, rootfs=str(tmp_path), rootfs_propagation=wanted)
        kinds = p.kinds()
        op = next(op for op in p.ops if op.desc == f"make / {wanted}")
        assert kinds.index("PIVOT") < p.ops.index(op)
        if feats is MODERN:
            assert op.kind == OpKind.SETATTR and op.c == prop
            assert bool(op.flags & OpFlag.RECURSIVE) == wanted.startswith("r")
        else:
            assert op.kind == OpKind.MOUNT and op.a & prop
            assert bool(op.a & lib.MS_REC) == wanted.startswith("r")
    assert not [op for op in plan(feats, rootfs=str(tmp_path)).ops if "make / r" in op.desc]


@pytest.mark.parametrize("feats", [MODERN, OLD], ids=["modern", "legacy"])
def test_copy_up_opens_what_the_tmpfs_hides_then_copies_it(feats: Features, tmp_path: Any) -> None:
    p = plan(feats, rootfs=str(tmp_path), mounts=[Mount.tmpfs("/srv", copy_up=True)])
    ops = p.ops
    pre = next(op for op in ops if op.kind == OpKind.PREOPEN and op.s1 == "srv")
    mount = next(op for op in ops if op.desc == "mount tmpfs on /srv")
    copy = next(op for op in ops if op.kind == OpKind.COPYUP)
    assert ops.index(pre) < ops.index(mount) < ops.index(copy)
    assert pre.flags & OpFlag.IN_ROOT and pre.out >= 0
    assert copy.b == pre.out and copy.reg == mount.out >= 0 and copy.flags & OpFlag.BENEATH
    assert copy.s2 == "" and copy.a == 32
    assert copy.desc == "copy what /srv held into its tmpfs"
    # a read-only one is filled first, then made read-only
    ro = plan(
        feats, rootfs=str(tmp_path), mounts=[Mount.tmpfs("/srv", copy_up=True, readonly=True)]
    )
    mount = next(op for op in ro.ops if op.desc == "mount tmpfs on /srv")
    rdonly = lib.MOUNT_ATTR_RDONLY if feats is MODERN else lib.MS_RDONLY
    assert not mount.a & rdonly
    descs = [op.desc for op in ro.ops]
    assert descs.index("copy what /srv held into its tmpfs") + 1 == descs.index(
        "make /srv read-only"
    )


def test_mount_attributes_reach_the_ops(tmp_path: Any) -> None:
    mounts = [
        Mount("tmpfs", "/t", source="tmpfs", atime="noatime", nodiratime=True, nosymfollow=True),
        Mount("bind", "/b", source=str(tmp_path), atime="strictatime"),
        Mount("tmpfs", "/r", source="tmpfs", atime="relatime"),
    ]
    p = plan(rootfs=str(tmp_path), mounts=mounts)
    t = next(op for op in p.ops if op.desc == "mount tmpfs on /t")
    for attr in (lib.MOUNT_ATTR_NOATIME, lib.MOUNT_ATTR_NODIRATIME, lib.MOUNT_ATTR_NOSYMFOLLOW):
        assert t.a & attr
    b = next(op for op in p.ops if op.desc == f"bind {tmp_path} on /b")
    assert b.a & lib.MOUNT_ATTR_STRICTATIME and b.b == lib.MOUNT_ATTR__ATIME
    r = next(op for op in p.ops if op.desc == "mount tmpfs on /r")
    assert r.a & lib.MOUNT_ATTR__ATIME == 0  # relatime is the absence of the others
    old = plan(OLD, rootfs=str(tmp_path), mounts=mounts)
    t = next(op for op in old.ops if op.desc == "mount tmpfs on /t")
    assert t.a & lib.MS_NOATIME and t.a & lib.MS_NODIRATIME and t.a & lib.MS_NOSYMFOLLOW
    r = next(op for op in old.ops if op.desc == "mount tmpfs on /r")
    assert r.a & lib.MS_RELATIME


def test_dev_leaves_what_the_spec_mounts_itself(tmp_path: Any) -> None:
    shm = tmp_path / "shm"
    shm.mkdir()
    mounts = [
        Mount("dev", "/dev", source="tmpfs", options=(("mode", "755"), ("size", "1m"))),
        Mount.devpts("/dev/pts"),
        Mount.bind(str(shm), "/dev/shm"),
    ]
    p = plan(rootfs=str(tmp_path), mounts=mounts)
    descs = [op.desc for op in p.ops]
    assert descs.count("mount devpts on /dev/pts") == 1
    assert "mount tmpfs on /dev/shm" not in descs and f"bind {shm} on /dev/shm" in descs
    assert "mount mqueue on /dev/mqueue" in descs  # not in the spec: still made
    dev = next(op for op in p.ops if op.desc == "mount tmpfs on /dev")
    assert dev.blob is not None and dev.blob.count(b"size") == 1 and b"1m" in dev.blob


def test_a_path_below_a_masked_one_is_left_to_that_mask(tmp_path: Any) -> None:
    # runtime-tools masks /d and /d/sub: the first mask hides the second path
    p = plan(
        rootfs=str(tmp_path),
        masked_paths=["/d/sub", "/d", "/f", "/dx"],
        readonly_paths=["/d/ro", "/r"],
    )
    descs = [op.desc for op in p.ops if op.kind in (OpKind.MASK, OpKind.ROPATH)]
    assert descs == ["mask /d", "mask /f", "mask /dx", "make /r read-only"]


def test_no_masked_paths_still_lays_out(tmp_path: Any) -> None:
    # no /dev/null is opened then: the read-only paths' ops name no register
    # (found by the hostile specs: it overflowed the C struct)
    p = plan(rootfs=str(tmp_path), masked_paths=[])
    assert "ROPATH" in p.kinds() and "MASK" not in p.kinds()
    assert p.c_plan() is not None


def test_a_cgroup2_mount_repeats_the_hosts_hierarchy_flags() -> None:
    flags = set()
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    for line in lines:
        fields = line.partition(" - ")[2].split()
        if fields and fields[0] == "cgroup2":
            flags = set(fields[2].split(",")) - {"rw", "ro"}
            break
    p = plan(namespaces=NS, mounts=[Mount.cgroup()])
    op = next(op for op in p.ops if op.desc == "mount cgroup on /sys/fs/cgroup")
    assert op.blob is not None
    given = {part[1:] for part in op.blob.split(b"\0") if part.startswith(b"f")}
    assert {f.encode() for f in flags} <= given


@pytest.mark.root
def test_device_rules_only_where_they_add_something() -> None:
    """A container with a user namespace of its own and no CAP_SYS_ADMIN gets
    no cgroup for device rules alone (the kernel refuses it device nodes and it
    cannot clear nodev); with CAP_SYS_ADMIN, or without a user namespace, it
    does."""
    from pynsbind.cgroups import device_host, host

    if device_host(host()) is None:
        pytest.skip("this host enforces no device rules for this caller")
    userns = Namespace.USER | Namespace.MNT | Namespace.PID
    plain = compile_plan(Spec(args=["/bin/true"], namespaces=userns), features())
    assert plain.cgroup_host is None and not plain.cgroup_points
    admin = Spec(args=["/bin/true"], namespaces=userns, capabilities=["SYS_ADMIN", "CHOWN"])
    assert compile_plan(admin, features()).cgroup_host is not None
    assert compile_plan(Spec(args=["/bin/true"]), features()).cgroup_host is not None
