"""What OCI configs need of the engine, on the real kernel: sysctls, the five
capability sets, personality, rootfs propagation, copy-up and the mount
attributes, each observed from inside a container (busybox) and from the host."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import pynsbind
from pynsbind import Capability, IdMap, Mount, Namespace, Spec, SpecError
from pynsbind.flags import Personality
from pynsbind.spec import CapabilitySets
from pynsbind.testing import Options, spawn_with
from tests import helpers

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.helpers import HostState

pytestmark = [pytest.mark.root, pytest.mark.vm]

NS = Namespace.PID | Namespace.MNT | Namespace.UTS | Namespace.IPC | Namespace.NET
MODES = {"default": Options(), "legacy-mount": Options(legacy_mount=True)}
APPLETS = (*helpers.BUSYBOX_APPLETS, "uname")


@pytest.fixture(scope="module")
def root(probe: str) -> Iterator[str]:
    """busybox (with uname) in a root every user can traverse."""
    busybox = helpers.find_busybox()
    if busybox is None:
        pytest.skip("needs a static busybox (Debian: busybox-static)")
    top = Path(tempfile.mkdtemp(prefix="pynsbind-ocieng-"))
    os.chmod(top, 0o755)
    yield str(helpers.make_rootfs(top / "root", busybox, probe=probe, applets=APPLETS))
    shutil.rmtree(top, ignore_errors=True)


def sh(root: str, script: str, mode: str = "default", **fields: Any) -> str:
    fields.setdefault("namespaces", NS)
    spec = Spec(args=["sh", "-c", script], rootfs=root, **fields)
    proc = spawn_with(spec, MODES[mode], stdout=pynsbind.PIPE, stderr=pynsbind.PIPE)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, (proc.returncode, out, err)
    assert out is not None
    return out.decode()


def host_sysctl(name: str) -> str:
    return Path("/proc/sys", name.replace(".", "/")).read_text()


def status_caps(text: str) -> dict[str, int]:
    caps = {}
    for line in text.splitlines():
        if line.startswith("Cap"):
            key, value = line.split(":")
            caps[key] = int(value, 16)
    return caps


def mask(*names: str) -> int:
    out = 0
    for name in names:
        out |= 1 << int(Capability[name])
    return out


# ---- sysctl -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
def test_sysctls_are_the_containers_and_the_host_keeps_its_own(
    root: str, mode: str, host_unchanged: HostState
) -> None:
    wanted = {
        "net.ipv4.ping_group_range": "0 2000",
        "net.core.somaxconn": "257",
        "kernel.shmmax": "123456789",
        "kernel.msgmax": "4321",
        "fs.mqueue.msg_max": "33",
        "kernel.domainname": "sysctl.example",
    }
    before = {k: host_sysctl(k) for k in wanted}
    files = " ".join("/proc/sys/" + k.replace(".", "/") for k in wanted)
    script = f"cat {files}; (echo 1 > /proc/sys/kernel/shmmax) 2>/dev/null || echo read-only"
    out = sh(root, script, mode, sysctl=wanted)
    shown = [v.replace(" ", "\t") for v in wanted.values()]  # as the kernel prints it
    # written before /proc/sys was made read-only (the default read-only paths)
    assert out.splitlines() == [*shown, "read-only"]
    assert {k: host_sysctl(k) for k in wanted} == before


def test_sysctls_in_a_user_namespace(root: str) -> None:
    userns = NS | Namespace.USER
    maps = {"uid_map": [IdMap(0, 100000, 65536)], "gid_map": [IdMap(0, 100000, 65536)]}
    out = sh(
        root,
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni",
        namespaces=userns,
        sysctl={"net.ipv4.ip_forward": "1", "kernel.shmmni": "1000"},
        **maps,
    )
    assert out.split() == ["1", "1000"]


def test_a_sysctl_goes_to_a_joined_namespace(root: str) -> None:
    with pynsbind.spawn(Spec(args=["sleep", "60"], rootfs=root, namespaces=NS)) as first:
        joined = {Namespace.NET: f"/proc/{first.pid}/ns/net"}
        out = sh(
            root,
            "cat /proc/sys/net/core/somaxconn",
            namespaces=NS & ~Namespace.NET,
            join=joined,
            sysctl={"net.core.somaxconn": "99"},
        )
        assert out.strip() == "99"
        seen = first.exec(["cat", "/proc/sys/net/core/somaxconn"], stdout=pynsbind.PIPE)
        text, _ = seen.communicate(timeout=60)
        assert text == b"99\n"
    # the host's own network namespace is refused before anything starts
    with pytest.raises(SpecError, match="this process's own"):
        sh(
            root,
            "true",
            namespaces=NS & ~Namespace.NET,
            join={Namespace.NET: "/proc/self/ns/net"},
            sysctl={"net.core.somaxconn": "99"},
        )


def test_a_host_name_set_in_a_joined_uts_namespace(root: str, host_unchanged: HostState) -> None:
    with pynsbind.spawn(
        Spec(args=["sleep", "60"], rootfs=root, namespaces=NS, hostname="first")
    ) as first:
        out = sh(
            root,
            "hostname",
            namespaces=NS & ~Namespace.UTS,
            join={Namespace.UTS: f"/proc/{first.pid}/ns/uts"},
            hostname="second",
        )
        assert out == "second\n"
        seen = first.exec(["hostname"], stdout=pynsbind.PIPE)
        assert seen.communicate(timeout=60)[0] == b"second\n"


def test_sysctl_errors(root: str) -> None:
    with pytest.raises(SpecError, match="is not namespaced"):
        Spec(args=["true"], sysctl={"kernel.panic": "1"})
    no_proc = Spec(
        args=["true"],
        rootfs=root,
        namespaces=NS,
        mounts=[Mount.dev()],
        sysctl={"kernel.sem": "1 1 1 1"},
    )
    with pytest.raises(SpecError, match="mount one"):
        pynsbind.run(spec=no_proc)
    bad = Spec(args=["true"], rootfs=root, namespaces=NS, sysctl={"net.core.somaxconn": "many"})
    with pytest.raises(
        pynsbind.SpawnError, match=r"set sysctl net\.core\.somaxconn to 'many': invalid"
    ):
        pynsbind.run(spec=bad)


# ---- capability sets ------------------------------------------------------------------------


SETS = CapabilitySets(
    bounding=["CHOWN", "KILL", "NET_BIND_SERVICE"],
    permitted=["CHOWN", "KILL"],
    effective=["CHOWN"],
    inheritable=["KILL"],
    ambient=["KILL"],
)


@pytest.mark.parametrize(
    ("user", "nnp", "permitted"),
    [
        # root: exec gives it its bounding and inheritable sets, cut to what it
        # had permitted under no_new_privs
        (0, True, ("CHOWN", "KILL")),
        (0, False, ("CHOWN", "KILL", "NET_BIND_SERVICE")),
        # another user: its ambient set
        (1000, True, ("KILL",)),
        (1000, False, ("KILL",)),
    ],
)
def test_capability_sets_as_the_kernel_derives_them(
    root: str, user: int, nnp: bool, permitted: tuple[str, ...]
) -> None:
    out = sh(root, "cat /proc/self/status", user=user, capability_sets=SETS, no_new_privs=nnp)
    caps = status_caps(out)
    assert caps["CapBnd"] == mask("CHOWN", "KILL", "NET_BIND_SERVICE")
    assert caps["CapPrm"] == caps["CapEff"] == mask(*permitted)
    assert caps["CapInh"] == caps["CapAmb"] == mask("KILL")
    assert f"NoNewPrivs:\t{int(nnp)}" in out


def test_capability_sets_without_sys_admin_and_no_new_privs_still_load_a_filter(
    root: str,
) -> None:
    # the filter is loaded before the uid and the capabilities change (runc's
    # order): the default profile allows what the engine does after it
    sets = CapabilitySets(bounding=["CHOWN"], permitted=["CHOWN"], effective=["CHOWN"])
    out = sh(root, "cat /proc/self/status", user=1000, capability_sets=sets, no_new_privs=False)
    assert "Seccomp:\t2" in out and "NoNewPrivs:\t0" in out
    assert status_caps(out)["CapBnd"] == mask("CHOWN")


@pytest.mark.parametrize("refused", [("close_range",), ("close_range", "prlimit64")])
def test_an_early_filter_without_close_range_still_closes_every_host_fd(
    root: str, refused: tuple[str, ...], host_unchanged: HostState
) -> None:
    """A profile older than close_range (runtime-tools' own refuses it with
    EPERM), loaded before the identity changes (no no_new_privs, no
    CAP_SYS_ADMIN): the engine closes the caller's fds one by one instead,
    and an inheritable host fd is not in the container (seen from inside)."""
    from pynsbind.seccomp import Action, SeccompProfile, SyscallRule

    profile = SeccompProfile(Action.ALLOW, syscalls=(SyscallRule(refused, Action.ERRNO),))
    sets = CapabilitySets(bounding=["CHOWN"], permitted=["CHOWN"], effective=["CHOWN"])
    leak = os.open("/etc/hostname", os.O_RDONLY)
    os.set_inheritable(leak, True)  # no close-on-exec: only the engine closes it
    try:
        out = sh(
            root,
            "ls /proc/self/fd; grep Seccomp: /proc/self/status",
            capability_sets=sets,
            no_new_privs=False,
            seccomp=profile,
            rlimits={"NOFILE": (256, 256)},
        )
    finally:
        os.close(leak)
    fds, seccomp = out.split()[:-2], out.split()[-2:]
    assert sorted(int(fd) for fd in fds) == [0, 1, 2, 3]  # 3: ls's own directory
    assert seccomp == ["Seccomp:", "2"]


@pytest.mark.parametrize("mode", list(MODES))
def test_a_fifo_in_dev(root: str, mode: str) -> None:
    """linux.devices of type p: a FIFO in the container's /dev, with its mode,
    usable there (a write meets a read through it)."""
    from pynsbind.spec import DEFAULT_DEVICES, Device

    devices = (*DEFAULT_DEVICES, Device("/dev/fifo", "p", mode=0o640))
    out = sh(
        root,
        "ls -l /dev/fifo | cut -c1-10; (echo through > /dev/fifo &); cat /dev/fifo",
        mode,
        devices=devices,
    )
    assert out.split() == ["prw-r-----", "through"]


def test_exec_keeps_the_capability_sets_and_the_personality(root: str) -> None:
    spec = Spec(
        args=["sleep", "60"],
        rootfs=root,
        namespaces=NS,
        capability_sets=SETS,
        personality=Personality.LINUX32,
        no_new_privs=True,
    )
    with pynsbind.spawn(spec) as proc:
        seen = proc.exec(
            ["cat", "/proc/self/status", "/proc/self/personality"], stdout=pynsbind.PIPE
        )
        out = seen.communicate(timeout=60)[0].decode()
    assert status_caps(out)["CapPrm"] == mask("CHOWN", "KILL")
    assert out.rstrip().endswith("00000008")


# ---- personality ------------------------------------------------------------------------------


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="LINUX32 names i686 on x86_64")
def test_personality_linux32(root: str) -> None:
    out = sh(root, "uname -m; cat /proc/self/personality", personality=Personality.LINUX32)
    assert out.split() == ["i686", "00000008"]
    flags = int(Personality.LINUX | Personality.ADDR_NO_RANDOMIZE)
    assert sh(root, "cat /proc/self/personality", personality=flags).strip() == f"{flags:08x}"
    assert sh(root, "uname -m").strip() == "x86_64"


# ---- rootfs propagation ------------------------------------------------------------------------


@pytest.fixture
def shared_root(root: str, tmp_path: Path) -> Iterator[Path]:
    """A copy of the root on a tmpfs of its own, shared, as a host's / often
    is (this machine's is private): what a slave rootfs receives events from."""
    top = tmp_path / "shared"
    top.mkdir()
    os.chmod(tmp_path, 0o755)
    subprocess.run(["mount", "-t", "tmpfs", "pynsbind-prop", str(top)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(top)], check=True)
        shutil.copytree(root, top / "root", symlinks=True)
        (top / "root" / "mnt").mkdir()
        yield top / "root"
    finally:
        subprocess.run(["umount", "-R", "-l", str(top)], check=True)


def root_line(pid: int) -> str:
    """The line of / in the container's mountinfo (from the host)."""
    return next(
        line
        for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
        if line.split()[4] == "/"
    )


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(
    ("wanted", "tag", "receives"),
    [
        (None, "", False),
        ("private", "", False),
        ("rprivate", "", False),
        ("slave", "master:", True),
        ("rslave", "master:", True),
        ("shared", "shared:", False),
        ("rshared", "shared:", False),
        ("unbindable", "unbindable", False),
        ("runbindable", "unbindable", False),
    ],
)
def test_rootfs_propagation(
    shared_root: Path, mode: str, wanted: str | None, tag: str, receives: bool
) -> None:
    spec = Spec(
        args=["sleep", "60"], rootfs=str(shared_root), namespaces=NS, rootfs_propagation=wanted
    )
    proc = spawn_with(spec, MODES[mode])
    try:
        line = root_line(proc.pid)
        optional = line.split(" - ")[0].split()[6:]
        if tag:
            assert any(o.startswith(tag) for o in optional), line
        else:
            assert optional == [], line
        # a host mount under the rootfs reaches a slave rootfs, and only it
        subprocess.run(
            ["mount", "-t", "tmpfs", "pynsbind-event", str(shared_root / "mnt")], check=True
        )
        try:
            inside = "pynsbind-event" in Path(f"/proc/{proc.pid}/mountinfo").read_text()
        finally:
            subprocess.run(["umount", str(shared_root / "mnt")], check=True)
        assert inside == receives
    finally:
        proc.kill()
        proc.wait()
    # nothing of the container's went back to the host
    assert "pynsbind-event" not in Path("/proc/self/mountinfo").read_text()


def test_a_shared_rootfs_sends_nothing_to_the_host(
    shared_root: Path, host_unchanged: HostState
) -> None:
    out = sh(
        str(shared_root),
        "mount -t tmpfs inside /mnt && grep -c ' /mnt ' /proc/self/mountinfo",
        rootfs_propagation="rshared",
        capabilities=["SYS_ADMIN"],
        seccomp="unconfined",
    )
    assert out.strip() == "1"
    assert " inside " not in Path("/proc/self/mountinfo").read_text()


# ---- copy-up and mount attributes --------------------------------------------------------------


@pytest.fixture
def image(root: str) -> Iterator[Path]:
    """A copy of the root whose /srv holds a small tree to copy up (where a
    user namespace's root can reach it)."""
    base = Path(tempfile.mkdtemp(prefix="pynsbind-image-"))
    os.chmod(base, 0o755)
    top = base / "root"
    shutil.copytree(root, top, symlinks=True)
    srv = top / "srv"
    (srv / "sub" / "deeper").mkdir(parents=True)
    (srv / "a").write_text("A")
    (srv / "sub" / "b").write_text("B" * 100_000)
    (srv / "sub" / "deeper" / "c").write_text("C")
    os.symlink("../a", srv / "sub" / "link")
    os.symlink("/nowhere", srv / "dangling")
    os.mkfifo(srv / "fifo")
    os.chown(srv / "a", 101000, 101001)
    os.chmod(srv / "a", 0o640)
    os.utime(srv / "a", (1_000_000, 2_000_000))
    os.chmod(srv / "sub", 0o751)
    yield top
    shutil.rmtree(base, ignore_errors=True)


STAT = "stat -c '%n %u %g %a %Y %F' /srv/a /srv/sub /srv/sub/b /srv/sub/deeper/c /srv/sub/link /srv/fifo"


@pytest.mark.parametrize("mode", list(MODES))
def test_copy_up(image: Path, mode: str, host_unchanged: HostState) -> None:
    mounts = [*pynsbind.default_mounts(), Mount.tmpfs("/srv", copy_up=True)]
    before = sorted(p.name for p in (image / "srv").rglob("*"))
    out = sh(
        str(image),
        f"{STAT}; cat /srv/sub/link; wc -c < /srv/sub/b; readlink /srv/dangling; "
        "grep ' /srv ' /proc/self/mountinfo; echo new > /srv/new; rm /srv/a",
        mode,
        mounts=mounts,
    )
    lines = out.splitlines()
    assert lines[0] == "/srv/a 101000 101001 640 2000000 regular file"
    assert lines[1].startswith("/srv/sub 0 0 751 ") and lines[1].endswith(" directory")
    assert lines[2].startswith("/srv/sub/b 0 0 644 ") and lines[3].startswith("/srv/sub/deeper/c ")
    assert lines[4].startswith("/srv/sub/link 0 0 777 ") and lines[4].endswith("symbolic link")
    assert lines[5].endswith(" fifo")
    assert lines[6:8] == ["A100000", "/nowhere"]  # cat prints "A" with no newline
    assert " - tmpfs " in out
    # the image is as it was: the container wrote to its tmpfs
    assert sorted(p.name for p in (image / "srv").rglob("*")) == before
    assert (image / "srv" / "a").read_text() == "A"


def test_a_read_only_copy_up(image: Path) -> None:
    mounts = [*pynsbind.default_mounts(), Mount.tmpfs("/srv", copy_up=True, readonly=True)]
    out = sh(str(image), "cat /srv/a; (touch /srv/new) 2>&1; true", mounts=mounts)
    assert out.startswith("A") and "Read-only file system" in out


def test_copy_up_in_a_user_namespace(image: Path) -> None:
    # what the user namespace does not map shows as the overflow id, and is
    # copied as that (here mapped: 65534 is in the map)
    os.chmod(image / "srv" / "sub", 0o755)
    os.chmod(image / "srv" / "a", 0o644)
    maps = {"uid_map": [IdMap(0, 100000, 65536)], "gid_map": [IdMap(0, 100000, 65536)]}
    out = sh(
        str(image),
        "stat -c '%n %u %g' /srv/a /srv/sub",
        namespaces=NS | Namespace.USER,
        mounts=[*pynsbind.default_mounts(), Mount.tmpfs("/srv", copy_up=True)],
        **maps,
    )
    assert out.splitlines() == ["/srv/a 1000 1001", "/srv/sub 65534 65534"]


def test_copy_up_of_a_missing_directory_is_an_empty_tmpfs(root: str) -> None:
    out = sh(
        root,
        "ls -A /nothing-here | wc -l",
        mounts=[*pynsbind.default_mounts(), Mount.tmpfs("/nothing-here", copy_up=True)],
    )
    assert out.strip() == "0"


@pytest.mark.parametrize("mode", list(MODES))
def test_mount_attributes(root: str, tmp_path: Path, mode: str) -> None:
    os.chmod(tmp_path, 0o755)
    mounts = [
        *pynsbind.default_mounts(),
        Mount("tmpfs", "/tmp", source="tmpfs", atime="noatime", nodiratime=True, nosymfollow=True),
        Mount("tmpfs", "/run", source="tmpfs", atime="strictatime"),
        Mount("bind", "/mnt", source=str(tmp_path), atime="noatime"),
    ]
    out = sh(root, "grep -E ' /(tmp|run|mnt) ' /proc/self/mountinfo", mode, mounts=mounts)
    opts = {line.split()[4]: line.split()[5].split(",") for line in out.splitlines()}
    assert {"noatime", "nodiratime", "nosymfollow"} <= set(opts["/tmp"])
    # strictatime is the absence of relatime and noatime
    assert not {"relatime", "noatime"} & set(opts["/run"])
    assert "noatime" in opts["/mnt"]


def test_dev_leaves_the_spec_its_own_shm(root: str, tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    (tmp_path / "marker").write_text("mine\n")
    mounts = [Mount.proc(), Mount.dev(), Mount.bind(str(tmp_path), "/dev/shm")]
    out = sh(root, "cat /dev/shm/marker; grep -c ' /dev/shm ' /proc/self/mountinfo", mounts=mounts)
    assert out.split() == ["mine", "1"]


def test_failures_leave_nothing_behind(root: str, host_unchanged: HostState) -> None:
    # a copy-up that cannot be made (the directory is a file), a sysctl the
    # kernel refuses: the spawn fails and the host is as it was
    for fields in (
        {"mounts": [*pynsbind.default_mounts(), Mount.tmpfs("/bin/sh", copy_up=True)]},
        {"sysctl": {"kernel.shmmax": "not a number"}},
    ):
        with pytest.raises(pynsbind.SpawnError):
            pynsbind.run(spec=Spec(args=["true"], rootfs=root, namespaces=NS, **fields))


def cgroup2_options() -> list[str]:
    """The super options of every cgroup2 mount this process sees."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.partition(" - ")[2].split()
        if fields and fields[0] == "cgroup2":
            found.append(fields[2])
    return found


def test_a_cgroup2_mount_leaves_the_hosts_flags_alone(root: str, host_unchanged: HostState) -> None:
    # mounted from the initial cgroup namespace (no namespace of its own, as
    # podman's configs on a v1 host), cgroup2's options set the hierarchy's
    # flags for the whole host (nsdelegate, memory_recursiveprot...): the
    # mount repeats the host's (seen in the v2 VM, whose / has them)
    before = cgroup2_options()
    mounts = [*pynsbind.default_mounts(), Mount.cgroup()]
    out = sh(root, "grep -c ' /sys/fs/cgroup ' /proc/self/mountinfo", mounts=mounts)
    assert out.strip() == "1"
    assert cgroup2_options() == before
