"""Spec validation and normalisation: pure logic, no kernel."""

from __future__ import annotations

import os
import resource

import pytest

from pynsbind import Capability, Device, IdMap, Mount, Namespace, Spec, SpecError
from pynsbind.spec import DEFAULT_CAPABILITIES, DEFAULT_PATH, default_namespaces


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
        lambda: Device("/dev/x", "p"),  # type: ignore[arg-type]
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
