"""Spec validation and normalisation: pure logic, no kernel."""

from __future__ import annotations

import os
import resource

import pytest

from pynsbind import Capability, Device, IdMap, Mount, Namespace, Spec, SpecError
from pynsbind.flags import Personality
from pynsbind.spec import (
    DEFAULT_CAPABILITIES,
    DEFAULT_PATH,
    CapabilitySets,
    default_namespaces,
    sysctl_namespace,
    sysctl_path,
)


def test_defaults() -> None:
    spec = Spec(args=["true"])
    assert spec.args == ["true"] and spec.env is None  # a spec keeps its fields as given
    s = spec.normalized
    assert s.args == ("true",)
    assert s.env == (("PATH", DEFAULT_PATH),)
    assert s.cwd == "/"
    assert s.namespaces == default_namespaces()
    want = Namespace.PID | Namespace.MNT | Namespace.UTS | Namespace.IPC | Namespace.NET
    assert s.namespaces & want == want
    assert bool(s.namespaces & Namespace.USER) == (os.geteuid() != 0)
    assert s.no_new_privs is True
    assert s.capabilities is None and s.bounding_capabilities == DEFAULT_CAPABILITIES
    assert [m.kind for m in s.mounts] == ["proc", "dev", "sysfs"]
    assert (s.uid, s.gid) == (0, 0)
    assert s.seccomp == "default"
    assert s.readonly_rootfs is True  # the host's own root
    assert Spec(args=["true"], rootfs="/srv").normalized.readonly_rootfs is False


def test_replace_starts_from_the_fields_as_given() -> None:
    # the host root's read-only default does not stick to a copy with a rootfs
    spec = Spec(args=["true"]).replace(rootfs="/srv")
    assert spec.readonly_rootfs is None and spec.normalized.readonly_rootfs is False


def test_specs_are_frozen_and_hashable() -> None:
    a = Spec(args=["a", "b"], env={"X": "1"}, rlimits={"NOFILE": 10}, hostname="h")
    b = Spec(args=("a", "b"), env={"X": "1"}, rlimits={"nofile": (10, 10)}, hostname="h")
    assert a == b and hash(a) == hash(b)
    with pytest.raises(AttributeError):
        a.cwd = "/x"  # type: ignore[misc]


def test_replace_revalidates_and_keeps_normalised_fields() -> None:
    s = Spec(
        args=["x"],
        env={"A": "1"},
        rlimits={"NOFILE": (5, 9)},
        time_offsets={"monotonic": 5},
        namespaces=default_namespaces() | Namespace.TIME,
    )
    t = s.replace(cwd="/tmp")
    assert t.cwd == "/tmp" and t.env == s.env and t.rlimits == s.rlimits
    assert t.time_offsets == s.time_offsets
    with pytest.raises(SpecError, match="cwd"):
        s.replace(cwd="relative")


def test_rlimits_normalised() -> None:
    s = Spec(args=["x"], rlimits={"RLIMIT_NOFILE": 100, resource.RLIMIT_CORE: (0, -1)})
    assert (resource.RLIMIT_NOFILE, 100, 100) in s.normalized.rlimits
    assert (resource.RLIMIT_CORE, 0, 2**64 - 1) in s.normalized.rlimits


def test_capabilities_by_name_and_number() -> None:
    s = Spec(args=["x"], capabilities=["CAP_KILL", "chown", int(Capability.NET_RAW)])
    caps = {Capability.KILL, Capability.CHOWN, Capability.NET_RAW}
    assert s.normalized.capabilities == caps


def test_paths_are_normalised() -> None:
    s = Spec(args=["x"], cwd="//a/./b/", masked_paths=["/proc//kcore"]).normalized
    assert s.cwd == "/a/b"
    assert s.masked_paths == ("/proc/kcore",)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"args": []}, "args"),
        ({"args": "ls"}, "args"),
        ({"args": ["a\0b"]}, "args[0]"),
        ({"args": [1]}, "args[0]"),
        ({"env": {"A=B": "x"}}, "env"),
        ({"env": {"A": "x\0"}}, "env['A']"),
        ({"env": ["A=B"]}, "env"),
        ({"cwd": "tmp"}, "cwd"),
        ({"cwd": "/a/../b"}, "cwd"),
        ({"hostname": "bad host"}, "hostname"),
        ({"hostname": "h" * 70}, "hostname"),
        ({"hostname": "h", "namespaces": Namespace.MNT}, "hostname"),
        ({"namespaces": 5}, "namespaces"),
        ({"user": -1}, "user uid"),
        ({"user": (1, 2, 3)}, "user"),
        ({"user": True}, "user"),
        ({"groups": [2**33]}, "groups"),
        ({"uid_map": [(0, 0, 1)], "namespaces": Namespace.MNT}, "uid_map"),
        ({"uid_map": [(0, 0, 10), (5, 100, 10)], "namespaces": Namespace.USER}, "uid_map"),
        ({"uid_map": [(0, 0, 0)], "namespaces": Namespace.USER}, "uid_map"),
        ({"uid_map": [], "namespaces": Namespace.USER}, "uid_map"),
        ({"umask": 0o1777}, "umask"),
        ({"mounts": ["/x"]}, "mounts"),
        ({"masked_paths": ["relative"]}, "masked_paths"),
        ({"devices": [("c", 1, 3)]}, "devices"),
        ({"rlimits": {"NOSUCH": 1}}, "rlimits"),
        ({"rlimits": {"NOFILE": (10, 5)}}, "rlimits"),
        ({"rlimits": {"NOFILE": "10"}}, "rlimits['NOFILE'] soft"),
        ({"capabilities": ["CAP_NOPE"]}, "capabilities"),
        ({"capabilities": [99]}, "capabilities"),
        ({"oom_score_adj": 1001}, "oom_score_adj"),
        ({"pass_fds": [1]}, "pass_fds"),
        ({"pass_fds": ["3"]}, "pass_fds"),
        ({"die_with_parent": 1}, "die_with_parent"),
        ({"init": "yes"}, "init"),
        ({"seccomp": b"123"}, "seccomp"),
        ({"time_offsets": {"realtime": 1}}, "time_offsets"),
        ({"time_offsets": {"monotonic": 1}, "namespaces": Namespace.MNT}, "time_offsets"),
        ({"join": {Namespace.NET: -1}}, "join"),
        ({"join": {Namespace.NET | Namespace.UTS: "/proc/1/ns/net"}}, "join"),
        ({"join": {Namespace.NET: "/x"}, "namespaces": Namespace.NET}, "namespaces"),
        ({"join": {"net": "/x"}}, "join"),
        ({"rootfs": "/r", "namespaces": Namespace.PID}, "rootfs"),
        ({"readonly_rootfs": True, "namespaces": Namespace.PID}, "readonly_rootfs"),
    ],
)
def test_invalid_specs_name_the_field(fields: dict[str, object], field: str) -> None:
    fields.setdefault("args", ["true"])
    with pytest.raises(SpecError) as info:
        Spec(**fields)  # type: ignore[arg-type]
    assert info.value.field == field, str(info.value)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(field + ":")


def test_spec_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        Spec(["true"])  # type: ignore[misc]


def test_mount_constructors() -> None:
    b = Mount.bind("/etc", readonly=True)
    assert (b.kind, b.source, b.target, b.readonly, b.recursive) == (
        "bind",
        "/etc",
        "/etc",
        True,
        True,
    )
    t = Mount.tmpfs("/tmp", size="64m", mode=0o1777)
    assert dict(t.options) == {"size": "64m", "mode": "1777"}
    assert t.nosuid and t.nodev and not t.noexec
    assert Mount.proc().noexec and Mount.sysfs().readonly
    o = Mount.overlay("/o", ["/l1", "/l2"], "/u", "/w")
    assert dict(o.options) == {"lowerdir": "/l1:/l2", "upperdir": "/u", "workdir": "/w"}
    assert Mount.devpts().options[0] == ("newinstance", None)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Mount("nope", "/x"),  # type: ignore[arg-type]
        lambda: Mount.bind("/etc", "relative"),
        lambda: Mount.bind("/etc", "/a/../b"),
        lambda: Mount("bind", "/x"),
        lambda: Mount.bind("/etc", propagation="weird"),
        lambda: Mount.tmpfs("/t", options={"a,b": "1"}),
        lambda: Mount.overlay("/o", []),
        lambda: Mount.overlay("/o", ["/a:b"]),
        lambda: Mount.overlay("/o", ["/l"], "/u"),
        lambda: Mount.bind("/etc", readonly="yes"),  # type: ignore[arg-type]
        lambda: Device("/etc/null"),
        lambda: Device("/dev/x", "s"),  # type: ignore[arg-type]
        lambda: Device("/dev/x", major=-1),
        lambda: IdMap(0, 2**32 - 5, 10),
    ],
)
def test_invalid_pieces(make: object) -> None:
    with pytest.raises(SpecError):
        make()  # type: ignore[operator]


def test_names_that_are_not_utf8_are_taken_as_bytes() -> None:
    s = Spec(args=[b"/bin/\xff"], domainname=b"\x80dom").normalized  # type: ignore[list-item]
    assert s.args[0] == "/bin/\udcff" and s.domainname == "\udc80dom"
    with pytest.raises(SpecError, match="longer than 64 bytes"):
        Spec(args=["x"], domainname=b"\xff" * 65)


# ---- what OCI configs need besides: sysctl, capability sets, personality,
# rootfs propagation, the mount attributes and copy-up ------------------------


def test_sysctl_keys_take_their_dotted_form_and_their_file() -> None:
    s = Spec(
        args=["x"],
        sysctl={
            "net.ipv4.ping_group_range": "0 0",
            "net/ipv4/conf/eth0.100/rp_filter": "1",
            "kernel.shmmax": "1000",
            "fs.mqueue.msg_max": "20",
            "kernel.domainname": "example.org",
        },
    ).normalized
    assert dict(s.sysctl) == {
        "fs.mqueue.msg_max": "20",
        "kernel.domainname": "example.org",
        "kernel.shmmax": "1000",
        "net.ipv4.conf.eth0/100.rp_filter": "1",
        "net.ipv4.ping_group_range": "0 0",
    }
    assert [k for k, _ in s.sysctl] == sorted(k for k, _ in s.sysctl)
    assert sysctl_path("net.ipv4.conf.eth0/100.rp_filter") == "sys/net/ipv4/conf/eth0.100/rp_filter"
    assert sysctl_namespace("kernel.sem") == Namespace.IPC
    assert sysctl_namespace("fs.mqueue.queues_max") == Namespace.IPC
    assert sysctl_namespace("net.core.somaxconn") == Namespace.NET
    assert sysctl_namespace("kernel.domainname") == Namespace.UTS
    assert sysctl_namespace("user.max_user_namespaces") == Namespace.USER


def test_sysctls_of_a_joined_namespace_are_allowed() -> None:
    s = Spec(
        args=["x"],
        namespaces=Namespace.MNT | Namespace.PID,
        join={Namespace.NET: "/proc/1/ns/net", Namespace.UTS: "/proc/1/ns/uts"},
        sysctl={"net.ipv4.ip_forward": "1"},
        hostname="joined",
    ).normalized
    assert s.sysctl == (("net.ipv4.ip_forward", "1"),) and s.hostname == "joined"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sysctl": {"vm.swappiness": "1"}}, "'vm.swappiness' is not namespaced"),
        ({"sysctl": {"kernel.hostname": "x"}}, "use the hostname field"),
        ({"sysctl": {"kernel.shmmax": "1"}, "namespaces": Namespace.MNT}, "ipc namespace"),
        ({"sysctl": {"net.ipv4.ip_forward": "1"}, "namespaces": Namespace.MNT}, "net namespace"),
        ({"sysctl": {"kernel.domainname": "a"}, "namespaces": Namespace.MNT}, "uts namespace"),
        ({"sysctl": {"user.max_user_namespaces": "1"}}, "user namespace"),
        ({"sysctl": {"kernel.domainname": "a"}, "domainname": "b"}, "both set it"),
        ({"sysctl": {"net.ipv4.ip_forward": "1"}, "namespaces": Namespace.NET}, "Namespace.MNT"),
        ({"sysctl": {"net..x": "1"}}, "not a sysctl name"),
        ({"sysctl": {"net": "1"}}, "not a sysctl name"),
        ({"sysctl": {"net.a b": "1"}}, "not a sysctl name"),
        ({"sysctl": {"net.ipv4.ip_forward": 1}}, "expected a string"),
        ({"sysctl": {"net.ipv4.ip_forward": "1", "net/ipv4/ip_forward": "0"}}, "given twice"),
        ({"sysctl": {"net.core.x": "x" * 5000}}, "longer than 4095"),
        ({"sysctl": ["net.x"]}, "expected a mapping"),
    ],
)
def test_bad_sysctls_name_the_key(fields: dict[str, object], message: str) -> None:
    fields.setdefault("args", ["true"])
    with pytest.raises(SpecError, match=message) as info:
        Spec(**fields)  # type: ignore[arg-type]
    assert info.value.field.startswith("sysctl")


def test_capability_sets_are_checked_with_the_kernels_rules() -> None:
    sets = CapabilitySets(
        bounding={"CAP_CHOWN", "KILL", int(Capability["NET_RAW"])},
        permitted=["CHOWN", "KILL"],
        effective=["CHOWN"],
        inheritable=["KILL"],
        ambient=["KILL"],
    )
    assert sets.bounding == frozenset(Capability[n] for n in ("CHOWN", "KILL", "NET_RAW"))
    assert sets.ambient == frozenset({Capability["KILL"]})
    s = Spec(args=["x"], capability_sets=sets).normalized
    assert s.capability_sets == sets and s.bounding_capabilities == sets.bounding
    assert hash(Spec(args=["x"], capability_sets=sets)) == hash(
        Spec(args=["x"], capability_sets=sets)
    )
    for kwargs, field, message in [
        (
            {"effective": ["CHOWN"]},
            "capability_sets.effective",
            "CAP_CHOWN is not in the permitted",
        ),
        ({"ambient": ["KILL"], "inheritable": ["KILL"]}, "capability_sets.ambient", "permitted"),
        ({"ambient": ["KILL"], "permitted": ["KILL"]}, "capability_sets.ambient", "inheritable"),
        ({"bounding": ["CAP_NOPE"]}, "capability_sets.bounding", "unknown capability"),
        ({"permitted": "CHOWN"}, "capability_sets.permitted", "expected a sequence"),
    ]:
        with pytest.raises(SpecError, match=message) as info:
            CapabilitySets(**kwargs)  # type: ignore[arg-type]
        assert info.value.field == field
    with pytest.raises(SpecError, match="not both"):
        Spec(args=["x"], capability_sets=sets, capabilities=["CHOWN"])
    with pytest.raises(SpecError, match="expected a CapabilitySets"):
        Spec(args=["x"], capability_sets={"bounding": []})  # type: ignore[arg-type]


def test_personality_and_rootfs_propagation() -> None:
    s = Spec(args=["x"], personality=Personality.LINUX32, rootfs_propagation="rslave")
    assert s.normalized.personality == 8 and s.normalized.rootfs_propagation == "rslave"
    flags = int(Personality.LINUX | Personality.ADDR_NO_RANDOMIZE)
    assert Spec(args=["x"], personality=flags).normalized.personality == flags
    for value, message in [
        (0x1, "execution domain 0x1"),
        (0x80000000, "unknown flags"),
        (-1, "out of range"),
        ("LINUX32", "expected an int"),
    ]:
        with pytest.raises(SpecError, match=message):
            Spec(args=["x"], personality=value)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="one of private, rprivate"):
        Spec(args=["x"], rootfs_propagation="recursive")
    with pytest.raises(SpecError, match=r"Namespace\.MNT"):
        Spec(args=["x"], rootfs_propagation="shared", namespaces=Namespace.PID)


def test_mount_attributes_and_copy_up() -> None:
    m = Mount("tmpfs", "/t", source="tmpfs", atime="strictatime", nodiratime=True, nosymfollow=True)
    assert (m.atime, m.nodiratime, m.nosymfollow, m.copy_up) == ("strictatime", True, True, False)
    assert Mount.tmpfs("/t", copy_up=True).copy_up
    with pytest.raises(SpecError, match="atime"):
        Mount("tmpfs", "/t", atime="sometimes")
    with pytest.raises(SpecError, match="only a tmpfs copies up"):
        Mount("bind", "/t", source="/etc", copy_up=True)
    with pytest.raises(SpecError, match="nosymfollow"):
        Mount("tmpfs", "/t", nosymfollow="yes")  # type: ignore[arg-type]
