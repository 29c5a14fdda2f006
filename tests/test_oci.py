"""pynsbind.oci: config.json mapped onto a Spec (pure: every field and every
error with its JSON path), the configs podman and containerd really send
(tests/data/oci, saved by the OCI harness), and those configs run for real."""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

import pynsbind
from pynsbind import Capability, Mount, Namespace, SpecError, oci
from pynsbind.devices import DEFAULT_DEVICE_RULES, DeviceRule
from pynsbind.seccomp import SeccompProfile
from pynsbind.spec import DEFAULT_DEVICES, CapabilitySets, Device, IdMap
from tests import helpers
from tests.helpers import HostState

DATA = Path(__file__).parent / "data" / "oci"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return data


def minimal(**top: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "root": {"path": "rootfs"},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
    }
    config.update(top)
    return config


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def to_spec(config: dict[str, Any], bundle: Path, **kw: Any) -> pynsbind.Spec:
    seen: list[str] = kw.pop("warnings", [])
    return oci.spec_from_config(config, bundle, warn=seen.append, **kw)


def error(config: dict[str, Any], bundle: Path, **kw: Any) -> SpecError:
    with pytest.raises(SpecError) as info:
        to_spec(config, bundle, **kw)
    assert str(info.value).startswith(info.value.field + ": ")
    return info.value


def with_process(**fields: Any) -> dict[str, Any]:
    config = minimal()
    config["process"].update(fields)
    return config


def with_linux(**fields: Any) -> dict[str, Any]:
    config = minimal()
    config["linux"].update(fields)
    return config


# ---- the bundle and the version ---------------------------------------------------------


def test_load_bundle(bundle: Path) -> None:
    config = minimal(
        annotations={"org.example": "1"},
        hooks={"poststop": [{"path": "/bin/true"}]},
        unknownField={"x": 1},
    )
    (bundle / "config.json").write_text(json.dumps(config))
    found = oci.load_bundle(bundle)
    assert found.path == str(bundle) and found.oci_version == "1.0.2"
    assert found.config == config and found.annotations == {"org.example": "1"}
    assert found.hooks.poststop == (oci.Hook("/bin/true", ("/bin/true",)),)
    assert found.spec(warn=print).normalized.rootfs == str(bundle / "rootfs")


@pytest.mark.parametrize(
    ("write", "field", "message"),
    [
        (None, "config.json", "no such file or directory"),
        (b"{", "config.json", "invalid JSON at line 1 column 2"),
        (b"\xff", "config.json", "not UTF-8"),
        (b"[]", "config.json", "expected an object, got an array"),
        (b"{}", "ociVersion", "is required"),
        (b'{"ociVersion": 1}', "ociVersion", "expected a string"),
        (b'{"ociVersion": "1.0.2", "annotations": {"a": 1}}', "annotations['a']", "string"),
        (b'{"ociVersion": "1.0.2", "annotations": []}', "annotations", "expected an object"),
        (
            b'{"ociVersion": "1.0.2", "hooks": {"prestart": [{}]}}',
            "hooks.prestart[0].path",
            "is required",
        ),
    ],
)
def test_load_bundle_errors(bundle: Path, write: bytes | None, field: str, message: str) -> None:
    if write is not None:
        (bundle / "config.json").write_bytes(write)
    with pytest.raises(SpecError, match=message) as info:
        oci.load_bundle(bundle)
    assert info.value.field == field


def test_a_bundle_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="is not a directory") as info:
        oci.load_bundle(tmp_path / "nope")
    assert info.value.field == "bundle"


@pytest.mark.parametrize(
    "version", ["1.0.0", "1.0.1", "1.0.2-dev", "1.1.0", "1.2.1", "1.3.0", "1.3.0-rc.1", "1.3.0+dev"]
)
def test_versions_read(version: str) -> None:
    assert oci.check_version({"ociVersion": version}) == version


@pytest.mark.parametrize(
    "version", ["0.6.0", "1.0.0-rc5", "1.3.1", "1.4.0", "2.0.0", "1.0", "one", ""]
)
def test_versions_refused(version: str) -> None:
    with pytest.raises(SpecError) as info:
        oci.check_version({"ociVersion": version})
    assert info.value.field == "ociVersion"


# ---- process ----------------------------------------------------------------------------


def test_a_minimal_config(bundle: Path) -> None:
    spec = to_spec(minimal(), bundle)
    s = spec.normalized
    assert s.args == ("sh",) and s.cwd == "/" and (s.uid, s.gid) == (0, 0)
    assert s.env == (("HOME", "/"),)  # runc's HOME, the image having no /etc/passwd
    assert s.rootfs == str(bundle / "rootfs") and s.readonly_rootfs is False
    assert s.namespaces == Namespace.PID | Namespace.MNT and s.joins == ()
    # what OCI leaves unset is unset, not pynsbind's hardened default
    assert s.no_new_privs is False and s.seccomp == "unconfined"
    assert s.masked_paths == () and s.readonly_paths == ()
    assert s.capabilities is None and s.capability_sets is None
    # the default device nodes, in a /dev of pynsbind's: runc makes them too
    assert [m.kind for m in s.mounts] == ["proc", "dev"] and s.devices == DEFAULT_DEVICES
    assert s.resources is not None and s.resources.device_rules == DEFAULT_DEVICE_RULES
    assert s.cgroup is None and s.init is False and s.sysctl == ()


def test_process_fields(bundle: Path) -> None:
    seen: list[str] = []
    config = with_process(
        args=["/bin/app", "-x"],
        env=["PATH=/bin", "A=1", "A=2", "EMPTY="],
        cwd="/srv",
        user={"uid": 1000, "gid": 100, "umask": 0o27, "additionalGids": [5, 6]},
        capabilities={
            "bounding": ["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_NOPE"],
            "effective": ["CAP_CHOWN"],
            "permitted": ["CAP_CHOWN", "CAP_NET_ADMIN"],
            "inheritable": ["CAP_NET_ADMIN"],
            "ambient": ["CAP_NET_ADMIN", "CAP_CHOWN"],
        },
        rlimits=[
            {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 2**64 - 1},
        ],
        noNewPrivileges=True,
        oomScoreAdj=-17,
        apparmorProfile="",
        selinuxLabel="",
        consoleSize={"height": 1, "width": 2},
        terminal=False,
        commandLine="ignored on Linux",
    )
    s = to_spec(config, bundle, warnings=seen).normalized
    assert s.args == ("/bin/app", "-x") and s.cwd == "/srv"
    assert s.environ == {"PATH": "/bin", "A": "2", "EMPTY": "", "HOME": "/"}
    assert (s.uid, s.gid, s.umask, s.groups) == (1000, 100, 0o27, (5, 6))
    cap = Capability
    assert s.capability_sets == CapabilitySets(
        bounding={cap["CHOWN"], cap["NET_ADMIN"]},
        effective={cap["CHOWN"]},
        permitted={cap["CHOWN"], cap["NET_ADMIN"]},
        inheritable={cap["NET_ADMIN"]},
        ambient={cap["NET_ADMIN"]},
    )
    assert {(r.soft, r.hard) for r in s.rlimits} == {(100, 200), (0, 2**64 - 1)}
    assert s.no_new_privs is True and s.oom_score_adj == -17
    # runc warns about these and goes on: so does the mapping, out loud
    assert seen == [
        "process.capabilities.bounding[2]: unknown capability 'CAP_NOPE': left out "
        "(runc does the same)",
        "process.capabilities.ambient: CAP_CHOWN is not inheritable: the kernel cannot raise "
        "it (left out, as runc does)",
    ]


def test_warnings_default_to_oci_warning(bundle: Path) -> None:
    config = with_process(capabilities={"bounding": ["CAP_NOPE"]})
    with pytest.warns(oci.OCIWarning, match="unknown capability 'CAP_NOPE'"):
        oci.spec_from_config(config, bundle)


@pytest.mark.parametrize(
    ("process", "field", "message"),
    [
        ({"args": None}, "process.args", "must be a non-empty list"),
        ({"args": []}, "process.args", "must be a non-empty list"),
        ({"args": "sh"}, "process.args", "must be a non-empty list"),
        ({"args": ["sh", 1]}, "process.args[1]", "expected a string, got a number (1)"),
        ({"args": [""]}, "process.args[0]", "must not be empty"),
        ({"args": ["a\0b"]}, "process.args[0]", "NUL"),
        ({"env": ["NOEQUALS"]}, "process.env[0]", "expected KEY=VALUE"),
        ({"env": ["=x"]}, "process.env[0]", "expected KEY=VALUE"),
        ({"env": "A=1"}, "process.env", "expected an array"),
        ({"cwd": "srv"}, "process.cwd", "must be an absolute path"),
        ({"user": {"uid": -1, "gid": 0}}, "process.user.uid", "out of range"),
        ({"user": {"uid": "0", "gid": 0}}, "process.user.uid", "expected an integer"),
        ({"user": {"uid": True, "gid": 0}}, "process.user.uid", "a boolean"),
        ({"user": {"uid": 0, "gid": 0, "umask": 0o1000}}, "process.user.umask", "out of range"),
        (
            {"user": {"uid": 0, "gid": 0, "additionalGids": ["5"]}},
            "process.user.additionalGids[0]",
            "expected an integer",
        ),
        ({"user": []}, "process.user", "expected an object"),
        (
            {"rlimits": [{"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}]},
            "process.rlimits[0].type",
            "unknown limit 'RLIMIT_NOPE'",
        ),
        (
            {"rlimits": [{"type": "NOFILE", "soft": 1, "hard": 1}]},
            "process.rlimits[0].type",
            "unknown limit",
        ),
        ({"rlimits": [{"type": "RLIMIT_CORE", "soft": 1}]}, "process.rlimits[0].hard", "required"),
        (
            {"rlimits": [{"type": "RLIMIT_CORE", "soft": 2, "hard": 1}]},
            "process.rlimits[0]",
            "above",
        ),
        (
            {"rlimits": [{"type": "RLIMIT_CORE", "soft": 1, "hard": 1}] * 2},
            "process.rlimits[1].type",
            "given twice",
        ),
        (
            {"capabilities": {"effective": ["CAP_KILL"]}},
            "process.capabilities.effective",
            "CAP_KILL is not in the permitted set",
        ),
        ({"capabilities": {"bounding": "CAP_KILL"}}, "process.capabilities.bounding", "array"),
        ({"capabilities": ["CAP_KILL"]}, "process.capabilities", "expected an object"),
        ({"noNewPrivileges": "true"}, "process.noNewPrivileges", "expected true or false"),
        ({"oomScoreAdj": 1001}, "process.oomScoreAdj", "out of range"),
        ({"apparmorProfile": "docker-default"}, "process.apparmorProfile", "AppArmor"),
        ({"selinuxLabel": "system_u:x"}, "process.selinuxLabel", "SELinux"),
        ({"ioPriority": {"class": "IOPRIO_CLASS_IDLE"}}, "process.ioPriority", "not supported"),
        ({"scheduler": {"policy": "SCHED_FIFO"}}, "process.scheduler", "not supported"),
        ({"execCPUAffinity": {"final": "0"}}, "process.execCPUAffinity", "not supported"),
        ({"terminal": "yes"}, "process.terminal", "expected true or false"),
        ({"cwd": None}, "process.cwd", "expected a string"),
    ],
)
def test_process_errors_name_the_json_path(
    bundle: Path, process: dict[str, Any], field: str, message: str
) -> None:
    exc = error(with_process(**process), bundle)
    assert exc.field == field and message in str(exc)


def test_home_comes_from_the_containers_passwd(bundle: Path) -> None:
    etc = bundle / "rootfs" / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nme:x:1000:1000::/home/me:/bin/sh\n")
    assert to_spec(minimal(), bundle).normalized.environ["HOME"] == "/root"
    me = with_process(user={"uid": 1000, "gid": 1000})
    assert to_spec(me, bundle).normalized.environ["HOME"] == "/home/me"
    nobody = with_process(user={"uid": 4242, "gid": 0})
    assert to_spec(nobody, bundle).normalized.environ["HOME"] == "/"
    # one given is kept; an empty one is not a HOME (runc's rule)
    given = with_process(env=["HOME=/srv", "A=1"])
    assert to_spec(given, bundle).normalized.env == (("HOME", "/srv"), ("A", "1"))
    empty = with_process(env=["HOME=", "A=1"])
    assert to_spec(empty, bundle).normalized.env == (("A", "1"), ("HOME", "/root"))
    # a passwd the config binds over the image's is the one the container sees
    (bundle / "bound").write_text("root:x:0:0::/from-the-bind:/bin/sh\n")
    bind = minimal(mounts=[{"destination": "/etc/passwd", "source": "bound", "options": ["bind"]}])
    assert to_spec(bind, bundle).normalized.environ["HOME"] == "/from-the-bind"
    tmpfs = minimal(mounts=[{"destination": "/etc", "type": "tmpfs"}])
    assert to_spec(tmpfs, bundle).normalized.environ["HOME"] == "/"


@pytest.mark.parametrize("link", ["/etc/host-passwd", "../../../../../../etc/host-passwd"])
def test_home_is_read_inside_the_rootfs(bundle: Path, link: str) -> None:
    # a symlink in the image cannot make the runtime read a host file: it is
    # followed inside the rootfs, as the container would see it
    etc = bundle / "rootfs" / "etc"
    etc.mkdir()
    (etc / "passwd").symlink_to(link)
    (etc / "host-passwd").write_text("root:x:0:0::/inside:/bin/sh\n")
    assert to_spec(minimal(), bundle).normalized.environ["HOME"] == "/inside"
    (etc / "host-passwd").unlink()
    assert to_spec(minimal(), bundle).normalized.environ["HOME"] == "/"
    (etc / "passwd").unlink()
    (etc / "passwd").symlink_to("passwd")  # a loop
    assert to_spec(minimal(), bundle).normalized.environ["HOME"] == "/"


def test_process_is_required(bundle: Path) -> None:
    config = minimal()
    del config["process"]
    assert error(config, bundle).field == "process"
    config = minimal()
    del config["process"]["cwd"]
    assert error(config, bundle).field == "process.cwd"


def test_a_terminal_needs_a_pynsbind_that_has_terminals(bundle: Path) -> None:
    names = {f.name for f in pynsbind.testing.records.fields(pynsbind.Spec)}
    config = with_process(terminal=True, consoleSize={"height": 24, "width": 80})
    if "terminal" not in names:
        exc = error(config, bundle)
        assert exc.field == "process.terminal" and "no terminal support" in str(exc)
    else:
        s = to_spec(config, bundle).normalized
        assert s.terminal is True and s.console_size == (24, 80)
        assert s.ptmx == "/dev/pts/ptmx"  # the /dev the mapping adds
        zero = with_process(terminal=True, consoleSize={"height": 0, "width": 0})
        assert to_spec(zero, bundle).normalized.console_size is None
        half = with_process(terminal=True, consoleSize={"height": 0, "width": 80})
        assert error(half, bundle).field == "process.consoleSize"
        off = to_spec(with_process(terminal=False), bundle).normalized
        assert off.terminal is False


# ---- root, hostname, mounts -------------------------------------------------------------


def test_root_and_names(bundle: Path) -> None:
    real = bundle / "real-root"
    real.mkdir()
    (bundle / "link").symlink_to(real)
    config = minimal(root={"path": "link", "readonly": True}, hostname="h", domainname="d.org")
    config["linux"]["namespaces"].append({"type": "uts"})
    s = to_spec(config, bundle).normalized
    # symlinks resolved now: pynsbind refuses a host path that goes through one
    assert s.rootfs == str(real) and s.readonly_rootfs is True
    assert (s.hostname, s.domainname) == ("h", "d.org")
    absolute = minimal(root={"path": str(real)})
    assert to_spec(absolute, bundle / "elsewhere").normalized.rootfs == str(real)


@pytest.mark.parametrize(
    ("config", "field", "message"),
    [
        (minimal(root={}), "root.path", "is required"),
        (minimal(root={"path": ""}), "root.path", "must not be empty"),
        (minimal(root={"path": "rootfs", "readonly": 1}), "root.readonly", "true or false"),
        (minimal(hostname="bad name"), "hostname", "not a valid host name"),
        (minimal(hostname="h"), "hostname", "needs a UTS namespace"),
        (minimal(root="rootfs"), "root", "expected an object"),
    ],
)
def test_root_errors(bundle: Path, config: dict[str, Any], field: str, message: str) -> None:
    exc = error(copy.deepcopy(config), bundle)
    assert exc.field == field and message in str(exc), str(exc)


def mounts_of(bundle: Path, *entries: dict[str, Any]) -> list[Mount]:
    config = minimal(mounts=list(entries))
    config["linux"]["namespaces"].append({"type": "ipc"})
    return list(to_spec(config, bundle).normalized.mounts)


def test_mounts_podman_and_containerd_send(bundle: Path) -> None:
    (bundle / "vol").mkdir()
    (bundle / "hosts").write_text("")
    got = mounts_of(
        bundle,
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "bind",
            "source": "vol",
            "options": ["bind", "rprivate", "nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"],
        },
        {
            "destination": "/run",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"],
        },
        {
            "destination": "/data",
            "type": "bind",
            "source": str(bundle / "vol"),
            "options": ["rbind", "ro", "rprivate"],
        },
        {
            "destination": "/etc/hosts",
            "type": "bind",
            "source": "hosts",
            "options": ["bind", "rprivate", "ro"],
        },
        {"destination": "relative", "type": "none", "source": "vol", "options": ["rbind"]},
    )
    proc, dev, pts, shm, mq, sysfs, cg, run, data, hosts, rel = got
    assert (proc.kind, proc.nosuid, proc.noexec, proc.nodev) == ("proc", True, True, True)
    assert dev.kind == "dev" and dev.atime == "strictatime" and dev.nosuid
    assert dict(dev.options) == {"mode": "755", "size": "65536k"}
    assert pts.kind == "devpts" and dict(pts.options) == {
        "newinstance": None,
        "ptmxmode": "0666",
        "mode": "0620",
        "gid": "5",
    }
    assert (shm.kind, shm.source, shm.recursive, shm.propagation) == (
        "bind",
        str(bundle / "vol"),
        False,
        "private",
    )
    assert mq.kind == "mqueue" and sysfs.kind == "sysfs" and sysfs.readonly
    assert (cg.kind, cg.readonly, cg.atime, cg.propagation) == (
        "cgroup",
        True,
        "relatime",
        "private",
    )
    assert run.kind == "tmpfs" and run.copy_up and run.options == () and not run.readonly
    assert (data.readonly, data.recursive) == (True, True)
    assert hosts.source == str(bundle / "hosts") and hosts.readonly and not hosts.recursive
    assert rel.target == "/relative" and rel.kind == "bind"


def test_mount_options_all_kinds(bundle: Path) -> None:
    (bundle / "l").mkdir()
    tmp, over, bind2 = mounts_of(
        bundle,
        {
            "destination": "/t",
            "type": "tmpfs",
            "options": [
                "noatime",
                "atime",
                "norelatime",
                "rnodiratime",
                "nosymfollow",
                "rro",
                "sync",
                "dirsync",
                "uid=5",
                "nr_inodes=10",
                "defaults",
                "rw",
                "async",
            ],
        },
        {"destination": "/o", "type": "overlay", "source": "overlay", "options": ["lowerdir=/l"]},
        {
            "destination": "/b",
            "type": "bind",
            "source": "l",
            "options": ["rbind", "runbindable", "diratime", "symfollow"],
        },
    )[:-1]
    assert tmp.source == "tmpfs" and tmp.atime == "strictatime"  # norelatime came last
    assert tmp.nodiratime and tmp.nosymfollow and tmp.readonly
    assert tmp.options == (("sync", None), ("dirsync", None), ("uid", "5"), ("nr_inodes", "10"))
    assert over.kind == "overlay" and over.options == (("lowerdir", "/l"),)
    assert bind2.propagation == "unbindable" and not bind2.nodiratime and not bind2.nosymfollow


def test_no_dev_in_the_config_gets_a_minimal_one_before_what_goes_under_it(bundle: Path) -> None:
    got = mounts_of(
        bundle,
        {"destination": "/x", "type": "tmpfs"},
        {"destination": "/dev/mqueue", "type": "mqueue"},
    )
    assert [(m.kind, m.target) for m in got] == [
        ("tmpfs", "/x"),
        ("dev", "/dev"),
        ("mqueue", "/dev/mqueue"),
    ]
    (bundle / "hostdev").mkdir()
    bound = mounts_of(
        bundle, {"destination": "/dev", "type": "bind", "source": "hostdev", "options": ["rbind"]}
    )
    assert [m.kind for m in bound] == ["bind"]


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        ({"type": "tmpfs"}, "mounts[0].destination", "is required"),
        (
            {"destination": "/x", "type": "ext4", "source": "/dev/sda1"},
            "mounts[0].type",
            "'ext4' is not supported",
        ),
        ({"destination": "/x"}, "mounts[0].type", "'no type' is not supported"),
        (
            {"destination": "/x", "type": "bind", "options": ["rbind"]},
            "mounts[0].source",
            "needs a source",
        ),
        (
            {"destination": "/x", "type": "tmpfs", "options": ["dev"]},
            "mounts[0].options[0]",
            "nodev",
        ),
        (
            {"destination": "/x", "type": "tmpfs", "options": ["remount"]},
            "mounts[0].options[0]",
            "not supported",
        ),
        (
            {"destination": "/x", "type": "bind", "source": "/", "options": ["idmap"]},
            "mounts[0].options[0]",
            "idmapped",
        ),
        (
            {
                "destination": "/x",
                "type": "bind",
                "source": "/",
                "uidMappings": [{"containerID": 0}],
            },
            "mounts[0].uidMappings",
            "idmapped",
        ),
        (
            {"destination": "/x", "type": "bind", "source": "/", "options": ["sync"]},
            "mounts[0].options[0]",
            "a bind mount cannot",
        ),
        (
            {"destination": "/x", "type": "bind", "source": "/", "options": ["tmpcopyup"]},
            "mounts[0].options[0]",
            "tmpfs only",
        ),
        (
            {"destination": "/x", "type": "tmpfs", "options": ["a,b"]},
            "mounts[0].options[0]",
            "bad option",
        ),
        (
            {"destination": "/x", "type": "tmpfs", "options": ["=1"]},
            "mounts[0].options[0]",
            "bad option",
        ),
        (
            {"destination": "/x", "type": "tmpfs", "options": "ro"},
            "mounts[0].options",
            "expected an array",
        ),
        ({"destination": "/a/../b", "type": "tmpfs"}, "mounts[0]", "'..'"),
        ({"destination": 5, "type": "tmpfs"}, "mounts[0].destination", "expected a string"),
        (
            {"destination": "/x", "type": "tmpfs", "options": ["mand"]},
            "mounts[0].options[0]",
            "gone",
        ),
    ],
)
def test_mount_errors(bundle: Path, entry: dict[str, Any], field: str, message: str) -> None:
    exc = error(minimal(mounts=[entry]), bundle)
    assert exc.field == field and message in str(exc), str(exc)


def test_data_options_of_a_bind_are_left_out_with_a_warning(bundle: Path) -> None:
    # runtime-tools gives a bind mount mode=755; the kernel ignores data for a bind
    entry = {"destination": "/x", "type": "bind", "source": "/", "options": ["rbind", "mode=755"]}
    seen: list[str] = []
    s = to_spec(minimal(mounts=[entry]), bundle, warnings=seen).normalized
    assert seen == ["mounts[0].options[1]: 'mode=755' means nothing to a bind mount: left out"]
    bind = next(m for m in s.mounts if m.target == "/x")
    assert bind.kind == "bind" and bind.options == ()


# ---- linux --------------------------------------------------------------------------------


def test_namespaces_made_and_joined(bundle: Path) -> None:
    config = with_linux(
        namespaces=[
            {"type": "pid"},
            {"type": "network", "path": "/proc/1/ns/net"},
            {"type": "mount"},
            {"type": "ipc", "path": ""},
            {"type": "uts"},
            {"type": "cgroup"},
            {"type": "time"},
        ]
    )
    s = to_spec(config, bundle).normalized
    made = Namespace.PID | Namespace.MNT | Namespace.IPC | Namespace.UTS
    assert s.namespaces == made | Namespace.CGROUP | Namespace.TIME
    assert [(j.kinds, j.target) for j in s.joins] == [(Namespace.NET, "/proc/1/ns/net")]


def test_user_namespace_and_mappings(bundle: Path) -> None:
    config = with_linux(
        uidMappings=[{"containerID": 0, "hostID": 100000, "size": 65536}],
        gidMappings=[
            {"containerID": 0, "hostID": 100000, "size": 1},
            {"containerID": 5, "hostID": 200005, "size": 1},
        ],
    )
    config["linux"]["namespaces"].append({"type": "user"})
    s = to_spec(config, bundle).normalized
    assert s.uid_map == (IdMap(0, 100000, 65536),)
    assert s.gid_map == (IdMap(0, 100000, 1), IdMap(5, 200005, 1))


def test_a_joined_user_namespace_keeps_its_maps(bundle: Path) -> None:
    own = Path("/proc/self/uid_map").read_text().split()
    mapping = [{"containerID": int(own[0]), "hostID": int(own[1]), "size": int(own[2])}]
    joined = [{"type": "user", "path": f"/proc/{os.getpid()}/ns/user"}, {"type": "mount"}]
    config = with_linux(namespaces=joined, uidMappings=mapping)
    assert to_spec(config, bundle).normalized.uid_map is None
    config = with_linux(namespaces=joined, uidMappings=[{"containerID": 0, "hostID": 1, "size": 1}])
    exc = error(config, bundle)
    assert exc.field == "linux.uidMappings" and "differs" in str(exc)
    elsewhere = [{"type": "user", "path": "/run/userns"}, {"type": "mount"}]
    seen: list[str] = []
    to_spec(with_linux(namespaces=elsewhere, gidMappings=mapping), bundle, warnings=seen)
    assert len(seen) == 1 and "cannot be read to compare" in seen[0]


def test_linux_fields(bundle: Path) -> None:
    config = with_linux(
        sysctl={"net.ipv4.ping_group_range": "0 0", "kernel.shmmax": "100"},
        timeOffsets={"monotonic": {"secs": 10}, "boottime": {"secs": -5, "nanosecs": 0}},
        personality={"domain": "LINUX32", "flags": []},
        rootfsPropagation="rslave",
        maskedPaths=["/proc/kcore"],
        readonlyPaths=["/proc/sys"],
        mountLabel="",
        intelRdt=None,
    )
    config["linux"]["namespaces"] += [{"type": "network"}, {"type": "ipc"}, {"type": "time"}]
    s = to_spec(config, bundle).normalized
    assert dict(s.sysctl) == {"net.ipv4.ping_group_range": "0 0", "kernel.shmmax": "100"}
    assert dict(s.time_offsets) == {"monotonic": 10, "boottime": -5}
    assert s.personality == 8 and s.rootfs_propagation == "rslave"
    assert s.masked_paths == ("/proc/kcore",) and s.readonly_paths == ("/proc/sys",)


def test_devices(bundle: Path) -> None:
    config = with_linux(
        devices=[
            {
                "path": "/dev/fuse",
                "type": "c",
                "major": 10,
                "minor": 229,
                "fileMode": 0o20666,
                "uid": 0,
                "gid": 0,
            },
            {"path": "/dev/null", "type": "u", "major": 1, "minor": 3, "fileMode": 0o600},
            # a FIFO: its numbers are not read (runtime-tools gives some anyway)
            {"path": "/dev/fifo", "type": "p", "fileMode": 0o640},
            {"path": "/dev/fifo2", "type": "p", "major": 8, "minor": 666},
        ]
    )
    s = to_spec(config, bundle).normalized
    assert s.devices == (
        *(d for d in DEFAULT_DEVICES if d.path != "/dev/null"),
        Device("/dev/fuse", "c", 10, 229, 0o666),
        Device("/dev/null", "c", 1, 3, 0o600),
        Device("/dev/fifo", "p", 0, 0, 0o640),
        Device("/dev/fifo2", "p", 0, 0, 0o666),
    )
    # nodes are made, not allowed: the cgroup's rules are the config's (runc's rule)
    assert s.resources is not None and s.resources.device_rules == DEFAULT_DEVICE_RULES


def test_resources_and_their_device_rules(bundle: Path) -> None:
    config = with_linux(
        resources={
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw", "extra": 1},
            ],
            "memory": {"limit": 64 << 20, "swap": 128 << 20},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
            "pids": {"limit": 50},
            "futureController": {"x": 1},
        },
        cgroupsPath="/pynsbind-oci-test/c1",
    )
    s = to_spec(config, bundle).normalized
    res = s.resources
    assert res is not None
    assert (res.memory_max, res.memory_swap_max, res.cpu_shares, res.pids_max) == (
        64 << 20,
        64 << 20,
        1024,
        50,
    )
    fuse = DeviceRule(allow=True, type="c", major=10, minor=229, access="rw")
    assert res.device_rules == (
        DEFAULT_DEVICE_RULES[0],
        DeviceRule(allow=False),
        fuse,
        *DEFAULT_DEVICE_RULES[1:],
    )
    assert s.cgroup == "pynsbind-oci-test/c1"


@pytest.mark.parametrize(
    ("value", "container_id", "parent", "want"),
    [
        ("/a/b", None, "p", "a/b"),
        ("a/b", None, "p", "p/a/b"),
        ("a/b", "id", "p", "p/a/b"),
        (None, "id", "p", "p/id"),
        ("", "id", oci.DEFAULT_CGROUP_PARENT, "pynsbind-oci/id"),
        (None, None, "p", None),
    ],
)
def test_cgroup_path(
    value: str | None, container_id: str | None, parent: str, want: str | None
) -> None:
    linux: dict[str, Any] = {} if value is None else {"cgroupsPath": value}
    assert oci.cgroup_path({"linux": linux}, container_id=container_id, parent=parent) == want


def test_seccomp(bundle: Path) -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}],
        "listenerMetadata": "ignored without notify",
    }
    s = to_spec(with_linux(seccomp=profile), bundle).normalized
    assert isinstance(s.seccomp, SeccompProfile)
    # TSYNC: a single-threaded process loads the filter; it changes nothing there
    assert s.seccomp.flags == ("SECCOMP_FILTER_FLAG_LOG",) and s.seccomp.default_errno_ret == 38
    notify = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
    }
    exc = error(with_linux(seccomp=notify), bundle)
    assert exc.field == "linux.seccomp.listenerPath"
    agent = {**notify, "listenerPath": "/run/agent.sock", "listenerMetadata": "m"}
    assert isinstance(to_spec(with_linux(seccomp=agent), bundle).normalized.seccomp, SeccompProfile)
    assert oci.seccomp_listener(with_linux(seccomp=agent)) == ("/run/agent.sock", "m")
    assert oci.seccomp_listener(minimal()) is None
    bad = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "NOPE"}]}
    assert error(with_linux(seccomp=bad), bundle).field == "linux.seccomp.syscalls[0].action"


def test_seccomp_overlaps_are_resolved_as_libseccomp_resolves_them(bundle: Path) -> None:
    # podman's profile allows setns without conditions, then refuses it with
    # EPERM: libseccomp keeps the first rule without conditions (runc too)
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "syscalls": [
            {"names": ["setns", "read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["setns", "unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {
                "names": ["write"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 1,
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}],
            },
            {"names": ["write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["close"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        ],
    }
    seen: list[str] = []
    got = to_spec(with_linux(seccomp=profile), bundle, warnings=seen).normalized.seccomp
    assert isinstance(got, SeccompProfile)
    assert [(r.names, r.action.value) for r in got.syscalls] == [
        (("setns", "read"), "SCMP_ACT_ALLOW"),
        (("unshare",), "SCMP_ACT_ERRNO"),
        (("write",), "SCMP_ACT_ALLOW"),
        (("close",), "SCMP_ACT_ERRNO"),
    ]
    assert seen == [
        "linux.seccomp.syscalls[1]: 'setns' is left to syscalls[0], which has no conditions "
        "(libseccomp, and so runc, ignore this rule)",
        "linux.seccomp.syscalls[2]: 'write' is left to syscalls[3], which has no conditions "
        "(libseccomp, and so runc, ignore this rule)",
    ]


@pytest.mark.parametrize(
    ("linux", "field", "message"),
    [
        ({"namespaces": [{"type": "foo"}]}, "linux.namespaces[0].type", "unknown namespace 'foo'"),
        (
            {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "pid"}]},
            "linux.namespaces[2].type",
            "twice",
        ),
        ({"namespaces": [{"path": "/x"}]}, "linux.namespaces[0].type", "required"),
        (
            {"namespaces": [{"type": "mount"}, {"type": "net", "path": "x"}]},
            "linux.namespaces[1].type",
            "unknown",
        ),
        (
            {"namespaces": [{"type": "mount"}, {"type": "network", "path": "x"}]},
            "linux.namespaces[1].path",
            "absolute",
        ),
        ({"namespaces": [{"type": "pid"}]}, "root.path", "mount namespace"),
        ({"namespaces": {"type": "pid"}}, "linux.namespaces", "expected an array"),
        (
            {"uidMappings": [{"containerID": 0, "hostID": 0, "size": 1}]},
            "linux.uidMappings",
            "needs a user namespace",
        ),
        (
            {"namespaces": [{"type": "mount"}, {"type": "user"}]},
            "linux.uidMappings",
            "needs its mappings",
        ),
        (
            {"timeOffsets": {"monotonic": {"secs": 1, "nanosecs": 5}}},
            "linux.timeOffsets.monotonic.nanosecs",
            "whole seconds",
        ),
        (
            {"timeOffsets": {"realtime": {"secs": 1}}},
            "linux.timeOffsets.realtime",
            "monotonic and boottime",
        ),
        ({"timeOffsets": {"monotonic": {"secs": 1}}}, "linux.timeOffsets", "time namespace"),
        ({"personality": {"domain": "SVR4"}}, "linux.personality.domain", "'LINUX' or 'LINUX32'"),
        (
            {"personality": {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}},
            "linux.personality.flags",
            "defines no",
        ),
        ({"personality": {}}, "linux.personality.domain", "required"),
        ({"rootfsPropagation": "rprivatish"}, "linux.rootfsPropagation", "one of private"),
        ({"sysctl": {"vm.swappiness": "1"}}, "linux.sysctl", "not namespaced"),
        (
            {"sysctl": {"net.ipv4.ip_forward": 1}},
            "linux.sysctl['net.ipv4.ip_forward']",
            "expected a string",
        ),
        ({"sysctl": {"net.ipv4.ip_forward": "1"}}, "linux.sysctl", "net namespace"),
        ({"devices": [{"path": "/dev/x", "type": "s"}]}, "linux.devices[0].type", "not 'c', 'b'"),
        (
            {"devices": [{"path": "/dev/x", "type": "c", "major": 1, "minor": 1, "uid": 5}]},
            "linux.devices[0].uid",
            "owned by 0",
        ),
        (
            {"devices": [{"path": "/dev/x", "type": "c", "major": 1, "minor": 1, "gid": 106}]},
            "linux.devices[0].gid",
            "not 106",
        ),
        (
            {"devices": [{"path": "/srv/x", "type": "c", "major": 1, "minor": 1}]},
            "linux.devices[0]",
            "under /dev/",
        ),
        (
            {"devices": [{"path": "/dev/x", "type": "c", "major": 1}]},
            "linux.devices[0].minor",
            "required",
        ),
        (
            {"devices": [{"path": "/dev/x", "type": "c", "major": 5000, "minor": 1}]},
            "linux.devices[0].major",
            "out of range",
        ),
        (
            {"resources": {"memory": {"limit": 100, "swap": 50}}},
            "linux.resources.memory.swap",
            "below the memory limit",
        ),
        ({"resources": {"network": {"classID": 1}}}, "linux.resources.network", "not supported"),
        (
            {"resources": {"devices": [{"access": "rwm"}]}},
            "linux.resources.devices[0].allow",
            "required",
        ),
        ({"resources": {"devices": {}}}, "linux.resources.devices", "expected an array"),
        ({"cgroupsPath": "machine.slice:libpod:abc"}, "linux.cgroupsPath", "systemd unit"),
        ({"cgroupsPath": "/a/../b"}, "linux.cgroupsPath", "'..'"),
        ({"mountLabel": "system_u:object_r:x"}, "linux.mountLabel", "SELinux"),
        ({"intelRdt": {"closID": "x"}}, "linux.intelRdt", "not supported"),
        ({"memoryPolicy": {"mode": "MPOL_BIND"}}, "linux.memoryPolicy", "not supported"),
        ({"netDevices": {"eth0": {}}}, "linux.netDevices", "not supported"),
        ({"maskedPaths": ["proc/kcore"]}, "linux.maskedPaths[0]", "absolute"),
        ({"seccomp": []}, "linux.seccomp", "expected an object"),
    ],
)
def test_linux_errors_name_the_json_path(
    bundle: Path, linux: dict[str, Any], field: str, message: str
) -> None:
    exc = error(with_linux(**linux), bundle)
    assert exc.field == field and message in str(exc), str(exc)


def test_linux_devices_need_a_dev_of_pynsbinds(bundle: Path) -> None:
    (bundle / "hostdev").mkdir()
    config = with_linux(devices=[{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}])
    config["mounts"] = [
        {"destination": "/dev", "type": "bind", "source": "hostdev", "options": ["rbind"]}
    ]
    exc = error(config, bundle)
    assert exc.field == "linux.devices" and "/dev tmpfs" in str(exc)


def test_unknown_fields_are_ignored(bundle: Path) -> None:
    config = minimal(someday={"a": 1}, windows={"layerFolders": []}, vm={})
    config["process"]["futureField"] = True
    config["linux"]["futureField"] = [1]
    config["mounts"][0]["futureField"] = "x"
    assert to_spec(config, bundle).normalized.args == ("sh",)


def test_spec_field_paths_cover_what_the_mapping_fills() -> None:
    filled = (
        "args cwd env user groups umask rlimits no_new_privs capability_sets rootfs readonly_rootfs "
        "namespaces join mounts devices masked_paths readonly_paths sysctl time_offsets personality "
        "rootfs_propagation seccomp cgroup resources hostname domainname uid_map gid_map "
        "oom_score_adj"
    ).split()
    assert set(filled) <= set(oci.SPEC_FIELD_PATHS)
    spec_fields = {f.name for f in pynsbind.testing.records.fields(pynsbind.Spec)}
    assert set(oci.SPEC_FIELD_PATHS) - {"terminal", "console_size"} <= spec_fields


# ---- hooks --------------------------------------------------------------------------------


def test_hooks() -> None:
    config = {
        "hooks": {
            "prestart": [{"path": "/bin/a"}],
            "createRuntime": [{"path": "/bin/b", "args": ["b", "1"], "env": ["X=1"], "timeout": 5}],
            "createContainer": [],
            "startContainer": [{"path": "/bin/c"}],
            "poststart": [{"path": "/bin/d"}],
            "poststop": [{"path": "/bin/e"}, {"path": "/bin/f"}],
            "unknownStep": [{"path": "relative is fine here"}],
        }
    }
    hooks = oci.hooks_from_config(config)
    assert hooks.prestart == (oci.Hook("/bin/a", ("/bin/a",)),)
    assert hooks.create_runtime == (oci.Hook("/bin/b", ("b", "1"), ("X=1",), 5),)
    assert hooks.create_container == () and hooks.start_container[0].path == "/bin/c"
    assert [h.path for h in hooks.poststop] == ["/bin/e", "/bin/f"]
    assert oci.hooks_from_config({}) == oci.Hooks()
    for bad, field in [
        ({"prestart": [{"path": "a"}]}, "hooks.prestart[0].path"),
        ({"poststop": [{"path": "/a", "timeout": 0}]}, "hooks.poststop[0].timeout"),
        ({"poststop": [{"path": "/a", "args": "a"}]}, "hooks.poststop[0].args"),
        ({"poststop": {"path": "/a"}}, "hooks.poststop"),
        ({"poststart": ["/a"]}, "hooks.poststart[0]"),
    ]:
        with pytest.raises(SpecError) as info:
            oci.hooks_from_config({"hooks": bad})
        assert info.value.field == field


# ---- the documents ------------------------------------------------------------------------


def test_state_document() -> None:
    doc = oci.state_document("c1", "running", bundle="/b", pid=42, annotations={"k": "v"})
    assert doc == {
        "ociVersion": oci.OCI_VERSION,
        "id": "c1",
        "status": "running",
        "pid": 42,
        "bundle": "/b",
        "annotations": {"k": "v"},
    }
    stopped = oci.state_document("c1", "stopped", bundle="rel")
    assert "pid" not in stopped and stopped["bundle"] == os.path.abspath("rel")
    assert json.loads(json.dumps(stopped)) == stopped
    with pytest.raises(SpecError, match="status: one of"):
        oci.state_document("c1", "zombie", bundle="/b")
    with pytest.raises(SpecError, match="pid: a created container has a pid"):
        oci.state_document("c1", "created", bundle="/b")
    with pytest.raises(SpecError, match="id: must not be empty"):
        oci.state_document("", "stopped", bundle="/b")


def test_features_document_says_what_the_mapping_takes(bundle: Path) -> None:
    doc = oci.features_document()
    assert json.loads(json.dumps(doc)) == doc
    assert (doc["ociVersionMin"], doc["ociVersionMax"]) == ("1.0.0", "1.3.0")
    assert doc["hooks"] == list(oci.HOOK_NAMES)
    linux = doc["linux"]
    assert set(linux["namespaces"]) == {
        "cgroup",
        "ipc",
        "mount",
        "network",
        "pid",
        "time",
        "user",
        "uts",
    }
    assert "CAP_SYS_ADMIN" in linux["capabilities"] and linux["apparmor"] == {"enabled": False}
    assert "SCMP_ACT_NOTIFY" in linux["seccomp"]["actions"]
    assert doc["annotations"]["org.pynsbind.version"] == pynsbind.__version__
    # every option features names is one a mount may hold
    options = doc["mountOptions"]
    for opt in ("tmpcopyup", "rprivate", "strictatime", "rbind", "nosymfollow", "rro"):
        assert opt in options
    assert "dev" not in options and "idmap" not in options
    for opt in options:
        entry = {"destination": "/x", "type": "tmpfs", "options": [opt]}
        if opt in ("bind", "rbind"):
            entry = {"destination": "/x", "source": "/", "options": [opt]}
        to_spec(minimal(mounts=[entry]), bundle)


@pytest.mark.parametrize("rootless", [False, True])
def test_default_config_maps(bundle: Path, rootless: bool) -> None:
    config = oci.default_config(rootless)
    assert json.loads(json.dumps(config)) == config
    oci.check_version(config)
    s = to_spec(config, bundle).normalized
    assert s.args == ("sh",) and s.readonly_rootfs and s.hostname == "pynsbind"
    assert s.capability_sets is not None and len(s.capability_sets.bounding) == 3
    assert s.no_new_privs
    if rootless:
        assert s.namespaces & Namespace.USER and s.uid_map == (IdMap(0, os.geteuid(), 1),)
        assert "gid=5" not in str(config["mounts"]) and "resources" not in config["linux"]
        assert "/sys/fs/cgroup" not in str(config["mounts"])
    else:
        assert not s.namespaces & Namespace.USER and s.resources is not None


# ---- process.json -------------------------------------------------------------------------


def test_process_spec_joins_the_container(bundle: Path) -> None:
    config = load("containerd-config")
    process = load("containerd-exec-process")
    spec = oci.process_spec(process, config, pid=1234, container_id="x", warn=print)
    s = spec.normalized
    assert s.args == ("true",) and (s.uid, s.gid, s.groups) == (65534, 65534, (65534,))
    assert s.namespaces == Namespace(0) and s.rootfs is None
    kinds = Namespace.PID | Namespace.IPC | Namespace.UTS | Namespace.MNT | Namespace.NET
    assert {j.kinds: j.target for j in s.joins} == {
        k: f"/proc/1234/ns/{k.proc_name}" for k in Namespace if k & kinds
    }
    assert s.cgroup == "pynsbind-containerd-32337-0/rep" and s.resources is None
    assert s.seccomp == "unconfined" and s.no_new_privs
    by_pidfd = oci.process_spec(process, config, pid=1234, pidfd=7).normalized
    assert [(j.kinds, j.target) for j in by_pidfd.joins] == [(kinds, 7)]
    seen: list[str] = []
    podman = oci.process_spec(
        load("podman-exec-process"), load("podman-config"), pid=9, warn=seen.append
    ).normalized
    assert isinstance(podman.seccomp, SeccompProfile)
    assert podman.capability_sets is not None and podman.capability_sets.ambient == frozenset()
    assert any("CAP_CHOWN is not inheritable" in m for m in seen)
    with pytest.raises(SpecError, match=r"process\.args: must be a non-empty list"):
        oci.process_spec({"cwd": "/"}, config, pid=1)


# ---- the configs podman and containerd send -----------------------------------------------


class SavedBundle:
    """A bundle for a saved config: its rootfs (busybox and the probe), the
    volumes and podman's userdata files it names, the cgroup under a name of
    this test's."""

    def __init__(self, top: Path, name: str, busybox: str, probe: str) -> None:
        self.top = top
        root = helpers.make_rootfs(top / "rootfs", busybox, probe=probe)
        for d in ("data", "data-ro", "scratch", "var/tmp"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "tmp" / "from-the-image").write_text("image\n")
        (root / "run" / "image-run").write_text("run\n")
        for f in ("hosts", "hostname"):
            (root / "etc" / f).write_text("")
        self.vol = top / "vol"
        self.vol.mkdir()
        (self.vol / "file").write_text("volume\n")
        self.userdata = top / "userdata"
        (self.userdata / "shm").mkdir(parents=True)
        for f in ("hosts", "hostname", "passwd", "group", ".containerenv"):
            (self.userdata / f).write_text(f"# {f}\n")
        (self.userdata / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
        self.cgroup = f"pynsbind-ocitest-{os.getpid()}-{name}"
        config = load(name)
        config["root"]["path"] = "rootfs"
        for m in config["mounts"]:
            src = m.get("source", "")
            if src.endswith("/vol"):
                m["source"] = str(self.vol)
            elif "/userdata/" in src:
                m["source"] = str(self.userdata / os.path.basename(src))
        config["linux"]["cgroupsPath"] = "/" + self.cgroup
        self.config = config


@pytest.fixture
def saved(tmp_path: Path, probe: str) -> Any:
    busybox = helpers.find_busybox()
    if busybox is None:
        pytest.skip("needs a static busybox (Debian: busybox-static)")
    os.chmod(tmp_path, 0o755)

    def make(name: str) -> SavedBundle:
        top = tmp_path / name
        top.mkdir()
        return SavedBundle(top, name, busybox, probe)

    return make


@pytest.mark.parametrize(
    "name", ["podman-config", "containerd-config", "podman-pod-config", "podman-tty-config"]
)
def test_saved_configs_map(saved: Any, name: str) -> None:
    b = saved(name)
    seen: list[str] = []
    if name == "podman-tty-config" and "terminal" not in {
        f.name for f in pynsbind.testing.records.fields(pynsbind.Spec)
    }:
        exc = error(b.config, b.top)
        assert exc.field == "process.terminal"
        b.config["process"]["terminal"] = False
    s = to_spec(b.config, b.top, warnings=seen).normalized
    assert s.rootfs == str(b.top / "rootfs") and s.cgroup == b.cgroup
    assert s.resources is not None and s.resources.device_rules is not None
    assert s.masked_paths and s.readonly_paths and s.capability_sets is not None
    kinds = {m.target: m.kind for m in s.mounts}
    assert kinds["/dev"] == "dev" and kinds["/proc"] == "proc"
    if name == "podman-config":
        assert (s.uid, s.gid, s.groups, s.umask) == (1000, 1000, (1000, 5), 0o22)
        assert s.readonly_rootfs and s.hostname == "oci-host"
        copied = {m.target for m in s.mounts if m.copy_up}
        assert copied == {"/run", "/scratch", "/tmp", "/var/tmp"}
        assert s.resources.memory_max == 64 << 20 and s.resources.pids_max == 50
        assert isinstance(s.seccomp, SeccompProfile) and not s.no_new_privs
        assert seen == [
            "linux.seccomp.syscalls[10]: 'setns' is left to syscalls[1], which has no "
            "conditions (libseccomp, and so runc, ignore this rule)"
        ]
    if name == "containerd-config":
        assert s.no_new_privs and s.seccomp == "unconfined" and seen == []
        assert {m.target: m.atime for m in s.mounts}["/run"] == "strictatime"
    if name == "podman-pod-config":
        joined = {j.kinds for j in s.joins}
        assert joined == {Namespace.NET, Namespace.IPC, Namespace.UTS}
        assert s.namespaces == Namespace.PID | Namespace.MNT and s.hostname is None


def warm_up(spec: pynsbind.Spec) -> None:
    """One run first: what a spawner keeps for its lifetime (on cgroup v2, the
    device program of these rules, loaded once per process) then predates the
    test's snapshot of the host."""
    assert pynsbind.run(spec=spec.replace(args=["true"]), timeout=60).returncode == 0


def cgroup_value(rel: str, controller: str, v1: str, v2: str) -> str:
    """A file of the cgroup ``rel``: in the controller's v1 hierarchy, or cgroup2."""
    v1dir = Path("/sys/fs/cgroup", controller, rel)
    if v1dir.is_dir():
        return (v1dir / v1).read_text().strip()
    return Path("/sys/fs/cgroup", rel, v2).read_text().strip()


def cgroup_exists(rel: str, controller: str) -> bool:
    return Path("/sys/fs/cgroup", controller, rel).is_dir() or Path("/sys/fs/cgroup", rel).is_dir()


@pytest.mark.root
@pytest.mark.cgroup
def test_podman_config_runs(saved: Any) -> None:
    b = saved("podman-config")
    warm_up(to_spec(b.config, b.top))
    before = HostState.now()
    spec = to_spec(b.config, b.top).replace(
        args=[
            "sh",
            "-c",
            "id; grep Cap /proc/self/status; cat /tmp/from-the-image /run/image-run; "
            "cat /data/file; touch /data-ro/x 2>&1; touch /x 2>&1; echo w > /tmp/w && cat /tmp/w;"
            "grep -E '^([^ ]+ ){4}/(tmp|dev|sys/fs/cgroup) ' /proc/self/mountinfo",
        ]
    )
    proc = pynsbind.spawn(spec, stdout=pynsbind.PIPE, stderr=pynsbind.PIPE)
    try:
        # the limits are on the cgroup the config names, on the host
        assert proc.cgroup is not None and proc.cgroup.path == b.cgroup
        assert cgroup_value(b.cgroup, "pids", "pids.max", "pids.max") == "50"
        limit = cgroup_value(b.cgroup, "memory", "memory.limit_in_bytes", "memory.max")
        assert int(limit) == 64 << 20
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    text = out.decode()
    assert proc.returncode == 0, (text, err)
    assert "uid=1000 gid=1000 groups=5,1000" in text
    # ambient CHOWN and NET_ADMIN: what a uid 1000 process keeps after exec
    mask = f"{(1 << int(Capability['CHOWN'])) | (1 << int(Capability['NET_ADMIN'])):016x}"
    assert f"CapEff:\t{mask}" in text and f"CapAmb:\t{mask}" in text
    assert "image\nrun\nvolume\n" in text
    assert text.count("Read-only file system") == 2 and "w\n" in text
    assert " /tmp rw,nosuid,nodev" in text and " /sys/fs/cgroup ro,nosuid,nodev,noexec" in text
    assert " /dev rw,nosuid,nodev,noexec " in text
    assert before.diff(HostState.now()) == {}


@pytest.mark.root
@pytest.mark.cgroup
def test_containerd_config_runs_and_a_process_json_execs_into_it(saved: Any) -> None:
    b = saved("containerd-config")
    warm_up(to_spec(b.config, b.top))
    before = HostState.now()
    spec = to_spec(b.config, b.top).replace(args=["sleep", "30"])
    proc = pynsbind.spawn(spec)
    try:
        process = load("containerd-exec-process")
        process["args"] = ["sh", "-c", "id; cat /data/file; grep NoNewPrivs /proc/self/status"]
        for how in ("paths", "pidfd"):
            pidfd = proc.pidfd if how == "pidfd" else None
            child = oci.process_spec(process, b.config, pid=proc.pid, pidfd=pidfd, warn=print)
            res = pynsbind.run(spec=child, capture_output=True, text=True, timeout=60)
            assert res.returncode == 0, res
            assert res.stdout.startswith("uid=65534(nobody) gid=65534(nogroup)")
            assert "volume" in res.stdout
            # HOME from the container's /etc/passwd (its nobody's is /)
            assert child.normalized.environ["HOME"] == "/"
            assert "NoNewPrivs:\t1" in res.stdout
            # it ran in the container's cgroup, which is still there
            assert cgroup_exists(b.cgroup, "memory")
        as_root = {**process, "user": {"uid": 0, "gid": 0}}
        child = oci.process_spec(as_root, b.config, pid=proc.pid, warn=print)
        assert child.normalized.environ["HOME"] == "/root"
    finally:
        proc.kill()
        proc.wait()
    assert before.diff(HostState.now()) == {}


@pytest.mark.root
def test_the_default_config_runs_busybox(tmp_path: Path, rootfs: str) -> None:
    os.chmod(tmp_path, 0o755)
    config = oci.default_config()
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "-c", "echo hello from $(hostname); id -u"]
    shutil.copytree(rootfs, tmp_path / "rootfs", symlinks=True)
    spec = to_spec(config, tmp_path)
    res = pynsbind.run(spec=spec, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res
    assert res.stdout == "hello from pynsbind\n0\n"


@pytest.mark.root
def test_every_option_features_lists_mounts(bundle: Path, rootfs: str) -> None:
    # what features says the runtime takes, it really mounts
    os.chmod(bundle, 0o755)
    (bundle / "rootfs").rmdir()
    shutil.copytree(rootfs, bundle / "rootfs", symlinks=True)  # mount points are made in it
    (bundle / "src").mkdir()
    entries = []
    for i, opt in enumerate(oci.features_document()["mountOptions"]):
        if opt in ("bind", "rbind"):
            entries.append({"destination": f"/mnt/{i}", "source": "src", "options": [opt]})
        else:
            entries.append({"destination": f"/mnt/{i}", "type": "tmpfs", "options": [opt]})
    config = minimal(mounts=[*minimal()["mounts"], *entries])
    config["process"]["args"] = ["sh", "-c", "grep -c ' /mnt/' /proc/self/mountinfo"]
    res = pynsbind.run(spec=to_spec(config, bundle), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res
    assert int(res.stdout) == len(entries)


@pytest.mark.root
def test_podman_tty_config_gives_a_terminal(saved: Any) -> None:
    b = saved("podman-tty-config")
    b.config["process"]["consoleSize"] = {"height": 24, "width": 80}
    spec = to_spec(b.config, b.top).replace(
        args=["sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty; readlink /proc/self/fd/0"]
    )
    with pynsbind.spawn(spec) as proc:
        assert proc.terminal is not None
        out = b""
        while True:
            try:
                chunk = proc.terminal.read(4096)
            except OSError:  # EIO: the container's side is closed
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(timeout=60) == 0
    assert out.replace(b"\r\n", b"\n") == b"is-a-tty\n/dev/pts/0\n"
