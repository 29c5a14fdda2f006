"""The spawn engine against the real kernel: containers observed from the inside
(the static probe) and from the host."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import resource
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import pynsbind
import pynsbind.lowlevel
from pynsbind import Capability, Mount, Namespace, SpawnError, Spec, SpecError
from pynsbind.testing import Options, spawn_with
from tests import helpers
from tests.helpers import HostState, host_ns, in_child

pytestmark = [pytest.mark.root, pytest.mark.vm]

NS = (
    Namespace.PID | Namespace.MNT | Namespace.UTS | Namespace.IPC | Namespace.NET | Namespace.CGROUP
)
MODES = {
    "default": Options(),
    "legacy-mount": Options(legacy_mount=True),
    "fork": Options(clone_vm=False),
    "legacy-clone": Options(legacy_clone=True),
    "all-fallbacks": Options(legacy_mount=True, legacy_clone=True, clone_vm=False),
}


def observe(spec: Spec, mode: Options | None = None, **io: Any) -> dict[str, Any]:
    proc = spawn_with(spec, mode, stdout=pynsbind.PIPE, stderr=pynsbind.PIPE, **io)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, (proc.returncode, err)
    assert out is not None
    return json.loads(out)


def status_field(info: dict[str, Any], name: str) -> str:
    """A field of the container's /proc/self/status, as ``probe info`` saw it."""
    return helpers.status_field(name, text=info["status"])


# ---- namespaces ------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(Namespace), ids=lambda k: k.proc_name)
def test_each_namespace_kind_is_created_alone(
    kind: Namespace, probe: str, host_unchanged: Any
) -> None:
    info = probe_host(probe, namespaces=kind)
    for other in Namespace:
        name = other.proc_name
        if other == kind:
            assert info["ns"][name] != host_ns(name), name
        else:
            assert info["ns"][name] == host_ns(name), name


def probe_host(path: str, *args: str, **fields: Any) -> dict[str, Any]:
    """The probe from the host's filesystem (no rootfs)."""
    res = pynsbind.run([path, *(args or ("info",))], capture_output=True, **fields)
    assert res.returncode == 0, res
    assert isinstance(res.stdout, bytes)
    return json.loads(res.stdout)


@pytest.mark.parametrize("mode", list(MODES), ids=list(MODES))
def test_default_container(mode: str, rootfs: str, host_unchanged: Any) -> None:
    info = observe(Spec(args=["/bin/probe", "info"], rootfs=rootfs, hostname="box"), MODES[mode])
    assert info["pid"] == 1 and info["ppid"] == 0
    assert info["hostname"] == "box"
    for kind in ("pid", "mnt", "uts", "ipc", "net", "cgroup"):
        assert info["ns"][kind] != host_ns(kind)
    for kind in ("user", "time"):
        assert info["ns"][kind] == host_ns(kind)
    assert info["cwd"] == "/" and info["env"] == [f"PATH={pynsbind.spec.DEFAULT_PATH}"]
    assert info["fds"] == [0, 1, 2]
    assert info["no_new_privs"] == 1
    mounts = {line.split()[4]: line for line in info["mountinfo"].splitlines()}
    for target in ("/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"):
        assert target in mounts, target
    assert " ro," in mounts["/sys"] or mounts["/sys"].split()[5].startswith("ro")
    assert "/proc/keys" in mounts and "/proc/sys" in mounts
    assert mounts["/proc/sys"].split()[5].startswith("ro")
    assert os.uname().nodename != "box"


def test_joining_namespaces_by_path_fd_and_pidfd(rootfs: str, probe: str) -> None:
    holder = pynsbind.spawn(
        Spec(args=["/bin/probe", "sleep", "60"], rootfs=rootfs, hostname="holder"),
        stdout=pynsbind.PIPE,
    )
    with holder:
        assert holder.stdout is not None
        holder.stdout.readline()
        want = {k: host_ns(k, holder.pid) for k in ("net", "uts", "ipc", "pid")}
        by_path = probe_host(
            probe, namespaces=Namespace(0), join={Namespace.NET: f"/proc/{holder.pid}/ns/net"}
        )
        assert by_path["ns"]["net"] == want["net"] and by_path["ns"]["uts"] == host_ns("uts")
        fd = os.open(f"/proc/{holder.pid}/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
        try:
            by_fd = probe_host(probe, namespaces=Namespace(0), join={Namespace.UTS: fd})
        finally:
            os.close(fd)
        assert by_fd["hostname"] == "holder"
        both = Namespace.NET | Namespace.UTS | Namespace.IPC | Namespace.PID
        by_pidfd = probe_host(probe, namespaces=Namespace(0), join={both: holder})
        assert {k: by_pidfd["ns"][k] for k in want} == want
        assert by_pidfd["pid"] == 2  # a second fork entered the pid namespace
        assert by_pidfd["hostname"] == "holder"


def test_new_namespaces_on_top_of_joined_ones(rootfs: str) -> None:
    holder = pynsbind.spawn(
        Spec(args=["/bin/probe", "sleep", "60"], rootfs=rootfs), stdout=pynsbind.PIPE
    )
    with holder:
        assert holder.stdout is not None
        holder.stdout.readline()
        info = observe(
            Spec(
                args=["/bin/probe", "info"],
                rootfs=rootfs,
                namespaces=Namespace.MNT | Namespace.PID | Namespace.UTS,
                join={Namespace.NET: f"/proc/{holder.pid}/ns/net"},
                hostname="inner",
            )
        )
        assert info["ns"]["net"] == host_ns("net", holder.pid)
        assert info["pid"] == 1 and info["hostname"] == "inner"


# ---- users -----------------------------------------------------------------------


def test_user_namespace_with_ranges(rootfs: str, tmp_path: Any) -> None:
    spec = Spec(
        args=["/bin/probe", "info"],
        rootfs=rootfs,
        namespaces=NS | Namespace.USER,
        uid_map=[(0, 200000, 65536)],
        gid_map=[(0, 300000, 65536)],
        user=(1000, 1001),
        groups=[5],
    )
    info = observe(spec)
    assert info["uid_map"].split() == ["0", "200000", "65536"]
    assert info["gid_map"].split() == ["0", "300000", "65536"]
    assert (info["uid"], info["gid"], info["groups"]) == (1000, 1001, [5])
    assert info["ns"]["user"] != host_ns("user")


def test_unmapped_owner_shows_as_overflow(rootfs: str, probe: str) -> None:
    spec = Spec(
        args=["/bin/probe", "stat", "/bin/probe"],
        rootfs=rootfs,
        namespaces=NS | Namespace.USER,
        uid_map=[(0, 200000, 10)],
        gid_map=[(0, 200000, 10)],
    )
    st = observe(spec)
    assert (st["uid"], st["gid"]) == (65534, 65534)


def test_user_groups_env_cwd_umask(rootfs: str) -> None:
    info = observe(
        Spec(
            args=["/bin/probe", "info"],
            rootfs=rootfs,
            user=(1234, 4321),
            groups=[7, 8],
            env={"A": "1", "B": "two words"},
            cwd="/tmp",
            umask=0o027,
        )
    )
    assert (info["uid"], info["euid"], info["gid"], info["egid"]) == (1234, 1234, 4321, 4321)
    assert sorted(info["groups"]) == [7, 8]
    assert info["env"] == ["A=1", "B=two words"]
    assert info["cwd"] == "/tmp" and info["umask"] == 0o027


def as_nobody(**fields: Any) -> dict[str, Any]:
    """pynsbind.run(fields) from a forked process that became uid 65534; the
    probe's JSON."""

    def run() -> tuple[int, str, str]:
        res = pynsbind.run(capture_output=True, **fields)
        assert res.stdout is not None and res.stderr is not None
        return res.returncode, res.stdout.decode(), res.stderr.decode()

    rc, out, err = in_child(run, uid=65534)
    assert rc == 0, err
    return json.loads(out)


def test_unprivileged_caller_gets_a_user_namespace(rootfs: str) -> None:
    """A non-root caller (uid 65534): the default spec adds a user namespace with a
    single-id map, and setgroups is denied."""
    info = as_nobody(args=["/bin/probe", "info"], rootfs=rootfs)
    assert info["uid_map"].split() == ["0", "65534", "1"]
    assert info["setgroups"].strip() == "deny"
    assert info["uid"] == 0 and info["ns"]["user"] != host_ns("user")


def test_unprivileged_ranges_go_through_newuidmap(rootfs: str) -> None:
    """A non-root caller asking for more than its own id: the parent runs
    newuidmap/newgidmap with the caller's subordinate ranges."""
    import shutil

    for helper in ("newuidmap", "newgidmap"):
        if shutil.which(helper) is None:
            pytest.skip(f"{helper} is not installed (Debian: uidmap)")
    saved = {}
    for name in ("/etc/subuid", "/etc/subgid"):
        try:
            saved[name] = Path(name).read_text()
        except FileNotFoundError:
            saved[name] = None
    try:
        for name in saved:
            Path(name).write_text((saved[name] or "") + "65534:300000:65536\n")
        info = as_nobody(
            args=["/bin/probe", "info"],
            rootfs=rootfs,
            uid_map=[(0, 65534, 1), (1, 300000, 1000)],
            gid_map=[(0, 65534, 1), (1, 300000, 1000)],
            user=(100, 100),
        )
    finally:
        for name, text in saved.items():
            if text is None:
                os.unlink(name)
            else:
                Path(name).write_text(text)
    assert [line.split() for line in info["uid_map"].splitlines()] == [
        ["0", "65534", "1"],
        ["1", "300000", "1000"],
    ]
    assert (info["uid"], info["gid"]) == (100, 100)


# ---- mounts ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["default", "legacy-mount"])
def test_mount_kinds_and_flags(mode: str, rootfs: str, tmp_path: Any, host_unchanged: Any) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "f").write_text("hello")
    single = tmp_path / "single"
    single.write_text("file")
    lower = tmp_path / "lower"
    lower.mkdir()
    (lower / "l").write_text("low")
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    mounts = [
        *pynsbind.default_mounts(),
        Mount.bind(str(data), "/data", readonly=True),
        Mount.bind(str(data), "/rw"),
        Mount.bind(str(single), "/etc/single", readonly=True),
        Mount.tmpfs("/scratch", size="1m", noexec=True),
        Mount.overlay("/ov", [str(lower)], str(upper), str(work)),
        Mount.cgroup(),
    ]
    spec = Spec(args=["/bin/sh", "-c", SCRIPT], rootfs=rootfs, mounts=mounts)
    res = spawn_with(spec, MODES[mode], stdout=pynsbind.PIPE, stderr=pynsbind.STDOUT)
    out, _ = res.communicate(timeout=60)
    assert res.returncode == 0, out
    lines = dict(line.split("=", 1) for line in out.decode().splitlines() if "=" in line)
    assert lines["ro_write"] == "EROFS" and lines["rw_write"] == "ok"
    assert lines["single"] == "file" and lines["single_write"] == "EROFS"
    assert lines["scratch_write"] == "ok" and lines["scratch_exec"] == "denied"
    assert lines["ov_read"] == "low" and lines["ov_write"] == "ok"
    assert (data / "written").exists() and (upper / "new").exists()
    assert not (lower / "new").exists()
    for target in ("/data", "/scratch", "/ov"):
        assert target in lines["mounts"].split(",")


SCRIPT = r"""
w() { if touch "$1" 2>/dev/null; then echo ok; else echo EROFS; fi; }
echo ro_write=$(w /data/x)
echo rw_write=$(w /rw/written)
echo single=$(cat /etc/single)
echo single_write=$(if echo x 2>/dev/null > /etc/single; then echo ok; else echo EROFS; fi)
echo scratch_write=$(w /scratch/y)
cp /bin/busybox /scratch/bb
echo scratch_exec=$(if /scratch/bb true 2>/dev/null; then echo ran; else echo denied; fi)
echo ov_read=$(cat /ov/l)
echo ov_write=$(w /ov/new)
echo mounts=$(cut -d' ' -f5 /proc/self/mountinfo | tr '\n' ',')
"""


def test_readonly_rootfs_and_propagation_stays_private(rootfs: str, tmp_path: Any) -> None:
    info = observe(Spec(args=["/bin/probe", "write", "/x"], rootfs=rootfs, readonly_rootfs=True))
    assert info["errno"] == errno.EROFS
    info = observe(
        Spec(
            args=["/bin/probe", "write", "/tmp/x"],
            rootfs=rootfs,
            readonly_rootfs=True,
            mounts=[*pynsbind.default_mounts(), Mount.tmpfs("/tmp")],
        )
    )
    assert info["errno"] == 0
    assert not os.path.exists(os.path.join(rootfs, "x"))


def test_host_root_sandbox_read_only(probe: str, host_unchanged: Any) -> None:
    """rootfs=None: the host's root, read-only, with the container's own /proc, /dev."""
    target = f"/var/tmp/pynsbind-test-{os.getpid()}"
    info = probe_host(probe, "write", target, readonly_rootfs=True)
    assert info["errno"] == errno.EROFS
    assert not os.path.exists(target)
    ps = probe_host(probe, "ps")
    assert ps["pids"] == [1]


def test_masked_and_readonly_paths(rootfs: str) -> None:
    info = observe(Spec(args=["/bin/probe", "cat", "/proc/keys"], rootfs=rootfs))
    assert info["text"] == ""
    w = observe(Spec(args=["/bin/probe", "write", "/proc/sys/kernel/hostname"], rootfs=rootfs))
    assert w["errno"] == errno.EROFS
    open_ = observe(
        Spec(
            args=["/bin/probe", "write", "/proc/sys/kernel/hostname"],
            rootfs=rootfs,
            readonly_paths=[],
        )
    )
    assert open_["errno"] == 0  # the uts namespace is the container's own


def test_minimal_dev(rootfs: str) -> None:
    res = pynsbind.run(
        [
            "/bin/sh",
            "-c",
            "ls /dev; echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c",
        ],
        rootfs=rootfs,
        capture_output=True,
    )
    assert res.returncode == 0, res
    out = res.stdout.decode().split()  # type: ignore[union-attr]
    for name in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "fd", "ptmx"):
        assert name in out
    assert "null-ok" in out and "4" in out
    assert "sda" not in out and "vda" not in out


def test_pivot_root_hides_the_host(rootfs: str) -> None:
    res = pynsbind.run(
        ["/bin/sh", "-c", "ls /; ls /work 2>&1; cat /etc/passwd"],
        rootfs=rootfs,
        capture_output=True,
    )
    out = res.stdout.decode()  # type: ignore[union-attr]
    assert "probe" not in out.split() and "No such file" in out
    assert "nobody" in out
    info = observe(Spec(args=["/bin/probe", "info"], rootfs=rootfs))
    roots = [line for line in info["mountinfo"].splitlines() if line.split()[4] == "/"]
    assert len(roots) == 1


# ---- process state ---------------------------------------------------------------


def test_rlimits(rootfs: str) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    info = observe(
        Spec(args=["/bin/probe", "info"], rootfs=rootfs, rlimits={"NOFILE": (64, 128), "CORE": 0})
    )
    assert info["rlimits"]["NOFILE"] == [64, 128] and info["rlimits"]["CORE"] == [0, 0]
    has_resource = Capability["SYS_RESOURCE"] in pynsbind.lowlevel.capget().effective
    if hard != resource.RLIM_INFINITY and not has_resource:
        # raising a hard limit needs CAP_SYS_RESOURCE (this CI machine's root lacks it)
        with pytest.raises(SpawnError) as info_err:
            pynsbind.run(["/bin/true"], rootfs=rootfs, rlimits={"NOFILE": (hard + 1, hard + 1)})
        assert info_err.value.errno == errno.EPERM and "set rlimit NOFILE" in str(info_err.value)
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)


def test_capabilities_and_no_new_privs(rootfs: str) -> None:
    info = observe(
        Spec(
            args=["/bin/probe", "info"],
            rootfs=rootfs,
            capabilities=[Capability.KILL, Capability.SYS_CHROOT],
        )
    )
    want = (1 << int(Capability.KILL)) | (1 << int(Capability.SYS_CHROOT))
    for name in ("CapEff", "CapPrm", "CapBnd"):
        assert int(status_field(info, name), 16) == want, name
    assert status_field(info, "NoNewPrivs") == "1"
    # a dropped capability's call fails with EPERM
    res = observe(Spec(args=["/bin/probe", "sethostname", "x"], rootfs=rootfs, capabilities=[]))
    assert res["errno"] == errno.EPERM
    res = observe(
        Spec(args=["/bin/probe", "sethostname", "x"], rootfs=rootfs, capabilities=["SYS_ADMIN"])
    )
    assert res["errno"] == 0
    # a non-root user keeps the set through the ambient set
    info = observe(
        Spec(
            args=["/bin/probe", "info"],
            rootfs=rootfs,
            user=1000,
            capabilities=["NET_RAW"],
            no_new_privs=False,
        )
    )
    assert int(status_field(info, "CapEff"), 16) == 1 << int(Capability.NET_RAW)
    assert int(status_field(info, "CapAmb"), 16) == 1 << int(Capability.NET_RAW)
    assert status_field(info, "NoNewPrivs") == "0"


def test_signal_dispositions_are_the_defaults(rootfs: str) -> None:
    """Python ignores SIGPIPE and SIGXFSZ and handles SIGINT: the container gets
    the defaults for all three, as subprocess gives its children."""
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN
    for mode in MODES.values():
        info = observe(Spec(args=["/bin/probe", "info"], rootfs=rootfs), mode)
        for name in ("SigIgn", "SigCgt", "SigBlk"):
            assert int(status_field(info, name), 16) == 0, (name, mode)


def test_time_namespace_offsets(rootfs: str) -> None:
    """boottime moved 10 days ahead inside; the host's clock is untouched."""
    host_up = float(Path("/proc/uptime").read_text().split()[0])
    info = observe(
        Spec(
            args=["/bin/probe", "cat", "/proc/uptime"],
            rootfs=rootfs,
            namespaces=NS | Namespace.TIME,
            time_offsets={"boottime": 10 * 86400},
        )
    )
    inside_up = float(info["text"].split()[0])
    assert 10 * 86400 <= inside_up - host_up < 10 * 86400 + 60
    assert float(Path("/proc/uptime").read_text().split()[0]) < host_up + 60


def test_oom_score_adj(rootfs: str) -> None:
    info = observe(Spec(args=["/bin/probe", "info"], rootfs=rootfs, oom_score_adj=777))
    assert info["oom_score_adj"].strip() == "777"


def test_seccomp_filter(rootfs: str) -> None:
    from pynsbind import lowlevel as ll

    nr = 170  # sethostname on x86_64
    if ll.AUDIT_ARCH != 0xC000003E:
        pytest.skip("the filter below uses x86_64 syscall numbers")
    prog = [
        ll.bpf_stmt(ll.BPF_LD | ll.BPF_W | ll.BPF_ABS, ll.SECCOMP_DATA_NR),
        ll.bpf_jump(ll.BPF_JMP | ll.BPF_JEQ | ll.BPF_K, nr, 0, 1),
        ll.bpf_stmt(ll.BPF_RET | ll.BPF_K, ll.SECCOMP_RET_ERRNO | errno.ENOTSUP),
        ll.bpf_stmt(ll.BPF_RET | ll.BPF_K, ll.SECCOMP_RET_ALLOW),
    ]
    blob = ll.filter_bytes(prog)
    res = observe(
        Spec(
            args=["/bin/probe", "sethostname", "x"],
            rootfs=rootfs,
            capabilities=["SYS_ADMIN"],
            seccomp=blob,
        )
    )
    assert res["errno"] == errno.ENOTSUP


def test_fds_are_closed_except_pass_fds(rootfs: str) -> None:
    r, w = os.pipe()
    leak = os.open("/dev/null", os.O_RDONLY)  # inheritable on purpose: must still be closed
    os.set_inheritable(leak, True)
    try:
        info = observe(Spec(args=["/bin/probe", "info"], rootfs=rootfs, pass_fds=[w]))
        assert info["fds"] == [0, 1, 2, w]
    finally:
        for fd in (r, w, leak):
            os.close(fd)


def test_stdio_arguments(rootfs: str, tmp_path: Any) -> None:
    out = tmp_path / "out"
    with open(out, "wb") as f:
        res = pynsbind.run(
            ["/bin/sh", "-c", "cat; echo err >&2"],
            rootfs=rootfs,
            input=b"in\n",
            stdout=f,
            stderr=pynsbind.STDOUT,
        )
    assert res.returncode == 0 and out.read_bytes() == b"in\nerr\n"
    res = pynsbind.run(
        ["/bin/sh", "-c", "echo out; echo err >&2"],
        rootfs=rootfs,
        stdout=pynsbind.DEVNULL,
        stderr=pynsbind.PIPE,
    )
    assert res.stdout is None and res.stderr == b"err\n"
    fd = os.open(out, os.O_WRONLY | os.O_TRUNC)
    try:
        pynsbind.run(["/bin/echo", "viafd"], rootfs=rootfs, stdout=fd)
    finally:
        os.close(fd)
    assert out.read_bytes() == b"viafd\n"
    res = pynsbind.run(["/bin/cat"], rootfs=rootfs, input="text in", capture_output=True, text=True)
    assert res.stdout == "text in"


# ---- exit codes and signals ------------------------------------------------------


@pytest.mark.parametrize("code", [0, 1, 42, 127, 255])
def test_exit_codes(code: int, rootfs: str) -> None:
    assert pynsbind.run(["/bin/probe", "exit", str(code)], rootfs=rootfs).returncode == code


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV, signal.SIGUSR1])
def test_signals_give_negative_returncodes(sig: int, probe: str, rootfs: str) -> None:
    # without a pid namespace the command can kill itself; with init=True too
    assert probe_rc(probe, sig, namespaces=Namespace.MNT) == -sig
    assert (
        pynsbind.run(["/bin/probe", "raise", str(int(sig))], rootfs=rootfs, init=True).returncode
        == -sig
    )


def probe_rc(probe: str, sig: int, **fields: Any) -> int:
    return pynsbind.run([probe, "raise", str(int(sig))], **fields).returncode


def test_check_raises_called_process_error(rootfs: str) -> None:
    with pytest.raises(subprocess.CalledProcessError) as info:
        pynsbind.run(["/bin/probe", "exit", "3"], rootfs=rootfs, check=True)
    assert info.value.returncode == 3


def test_timeout_kills_and_reaps(rootfs: str, host_unchanged: HostState) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        pynsbind.run(["/bin/probe", "sleep", "60"], rootfs=rootfs, timeout=0.5, capture_output=True)
    # killed and reaped: no child, fd, mount or cgroup of it is left
    assert host_unchanged.diff(HostState.now()) == {}


def test_pid1_ignores_sigterm_but_init_forwards_it(rootfs: str) -> None:
    for init in (False, True):
        proc = pynsbind.spawn(
            Spec(args=["/bin/probe", "sleep", "60"], rootfs=rootfs, init=init), stdout=pynsbind.PIPE
        )
        with proc:
            assert proc.stdout is not None
            proc.stdout.readline()
            proc.terminate()
            if init:
                assert proc.wait(timeout=10) == -signal.SIGTERM
            else:
                with pytest.raises(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.5)
                proc.kill()
                assert proc.wait(timeout=10) == -signal.SIGKILL


def test_init_reaps_zombies(rootfs: str) -> None:
    # an orphan's zombie is reaped by the init; the command's status is relayed
    script = "(sleep 0.2 &) ; sleep 0.5; ps -o stat | grep -c Z; exit 5"
    res = pynsbind.run(["/bin/sh", "-c", script], rootfs=rootfs, init=True, capture_output=True)
    assert res.returncode == 5
    assert res.stdout.decode().split()[-1] == "0"  # type: ignore[union-attr]


def test_process_api(rootfs: str) -> None:
    with pytest.raises(TypeError):
        pynsbind.Process()
    proc = pynsbind.spawn(
        Spec(args=["/bin/probe", "sleep", "60"], rootfs=rootfs, init=True), stdout=pynsbind.PIPE
    )
    assert "running" in repr(proc) and proc.poll() is None and proc.pidfd >= 0
    assert os.path.exists(f"/proc/{proc.pid}")
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.1)
    proc.send_signal(signal.SIGUSR1)
    assert proc.wait(timeout=10) == -signal.SIGUSR1
    assert "returncode=-10" in repr(proc) and proc.pidfd == -1
    proc.kill()  # after exit: a no-op
    assert proc.stdout is not None
    proc.stdout.close()


def test_wait_async(rootfs: str) -> None:
    async def main() -> list[int]:
        procs = [
            pynsbind.spawn(Spec(args=["/bin/probe", "exit", str(i)], rootfs=rootfs))
            for i in range(5)
        ]
        return list(await asyncio.gather(*(p.wait_async() for p in procs)))

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]


def test_exec_into_a_running_container(rootfs: str) -> None:
    proc = pynsbind.spawn(
        Spec(args=["/bin/probe", "sleep", "60"], rootfs=rootfs, hostname="inside", env={"X": "1"}),
        stdout=pynsbind.PIPE,
    )
    with proc:
        assert proc.stdout is not None
        proc.stdout.readline()
        child = proc.exec(["/bin/probe", "info"], stdout=pynsbind.PIPE)
        out, _ = child.communicate(timeout=30)
        info = json.loads(out)  # type: ignore[arg-type]
        assert info["hostname"] == "inside" and info["env"] == ["X=1"]
        assert info["pid"] == 2 and info["ppid"] == 0
        for kind in ("pid", "mnt", "net", "uts", "ipc"):
            assert info["ns"][kind] == host_ns(kind, proc.pid)
        assert "/bin/probe" not in os.listdir("/bin") or True
        ls = proc.exec(["/bin/ls", "/"], stdout=pynsbind.PIPE)
        out, _ = ls.communicate(timeout=30)
        assert b"probe" not in out.split()  # type: ignore[union-attr]
        assert b"bin" in out.split()  # type: ignore[union-attr]
    with pytest.raises(ProcessLookupError):
        proc.exec(["/bin/true"])


def test_die_with_parent(rootfs: str, tmp_path: Any) -> None:
    """A container of a spawner that dies goes with it."""
    pidfile = tmp_path / "pid"
    code = (
        "import pynsbind, sys;"
        f"p = pynsbind.spawn(pynsbind.Spec(args=['/bin/probe','sleep','60'], rootfs={rootfs!r}, die_with_parent=True));"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid)); sys.stdout.flush(); import time; time.sleep(60)"
    )
    import sys

    spawner = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        while not pidfile.exists() or not pidfile.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        pid = int(pidfile.read_text())
        pidfd = os.pidfd_open(pid)
    finally:
        spawner.kill()
        spawner.wait()
    try:
        import select

        assert select.select([pidfd], [], [], 10)[0], "the container outlived its spawner"
    finally:
        os.close(pidfd)
        # the spawner, killed, could not remove the container's device cgroup:
        # marked with its pid, it is what pynsbind.cleanup() sweeps; swept here
        left = helpers.pynsbind_cgroups(pid=spawner.pid)
        assert helpers.remove_cgroups(left, kill=True) == []


# ---- errors ----------------------------------------------------------------------


def test_missing_command(rootfs: str, host_unchanged: Any) -> None:
    for cmd, where in ((["nosuchcmd"], " in $PATH"), (["/bin/nosuch"], "")):
        with pytest.raises(SpawnError) as info:
            pynsbind.run(cmd, rootfs=rootfs)
        err = info.value
        assert err.errno == errno.ENOENT and isinstance(err, FileNotFoundError)
        assert f"executable file not found{where}" in str(err) and repr(cmd[0]) in str(err)
        assert err.stage == "child" and err.op == err.op_count
    with pytest.raises(SpawnError, match="executable file not found in"):
        pynsbind.run(["nosuchcmd"], rootfs=rootfs, init=True)
    with pytest.raises(SpawnError) as info:
        pynsbind.run(["/etc/passwd"], rootfs=rootfs)
    assert info.value.errno == errno.EACCES and isinstance(info.value, PermissionError)


def test_kernel_refusal_names_the_op(rootfs: str, host_unchanged: Any) -> None:
    spec = Spec(
        args=["/bin/true"],
        rootfs=rootfs,
        mounts=[Mount("tmpfs", "/x", source="t", options=(("nosuchopt", "1"),))],
    )
    with pytest.raises(SpawnError) as info:
        pynsbind.run(spec=spec)
    err = info.value
    assert err.errno == errno.EINVAL
    assert str(err).startswith("mount tmpfs on /x: invalid argument (op ")
    assert err.op is not None and f"(op {err.op} of {err.op_count})" in str(err)
    with pytest.raises(SpawnError, match="change directory to /nope: no such file or directory"):
        pynsbind.run(["/bin/true"], rootfs=rootfs, cwd="/nope")


def test_spec_errors_before_any_clone(rootfs: str, host_unchanged: HostState) -> None:
    with pytest.raises(SpecError, match="rootfs"):
        pynsbind.run(["/bin/true"], rootfs="/nonexistent/root")
    with pytest.raises(SpecError, match="stdout"):
        pynsbind.run(["/bin/true"], rootfs=rootfs, stdout="nope")
    with pytest.raises(SpecError, match="stdout"):  # and no cgroup made for it stays
        pynsbind.run(
            ["/bin/true"], rootfs=rootfs, stdout="nope", resources=pynsbind.Resources(pids_max=5)
        )
    with pytest.raises(TypeError):
        pynsbind.spawn(["/bin/true"])  # type: ignore[arg-type]
    assert host_unchanged.diff(HostState.now()) == {}


def test_explain_says_what_a_spawn_would_do_and_does_none_of_it(
    rootfs: str, host_unchanged: HostState
) -> None:
    spec = Spec(
        args=["/bin/true"], rootfs=rootfs, hostname="box", resources=pynsbind.Resources(pids_max=5)
    )
    text = pynsbind.explain(spec)
    lines = text.splitlines()
    assert lines[0].startswith("clone: ") and lines[1].startswith("cgroup: ")
    assert "pids" in lines[1] or "cgroup2" in lines[1]  # where the limit is enforced
    steps = [line for line in lines[2:] if not line.startswith("    parent: ")]
    assert steps[-1].split()[:2] == [str(len(steps)), "EXEC"]
    assert any(
        line.split()[1:] == ["HOSTNAME", "set", "the", "hostname", "'box'"] for line in steps
    )
    # the numbers are those of SpawnError: a spawn failing at a step names it
    with pytest.raises(SpawnError) as info:
        pynsbind.run(["/bin/true"], rootfs=rootfs, cwd="/nope")
    err = info.value
    failed = pynsbind.explain(Spec(args=["/bin/true"], rootfs=rootfs, cwd="/nope")).splitlines()
    numbered = [line for line in failed[2:] if not line.startswith("    parent: ")]
    assert numbered[err.op - 1].split()[1] == "CHDIR" and len(numbered) == err.op_count
    # checked as spawn checks, and nothing made: no cgroup, mount, process or fd
    with pytest.raises(SpecError, match="rootfs"):
        pynsbind.explain(Spec(args=["/bin/true"], rootfs="/nonexistent/root"))
    with pytest.raises(TypeError, match="takes a Spec"):
        pynsbind.explain(["/bin/true"])  # type: ignore[arg-type]
    assert host_unchanged.diff(HostState.now()) == {}


def test_network_namespace_has_only_loopback(rootfs: str) -> None:
    info = observe(Spec(args=["/bin/probe", "ifaces"], rootfs=rootfs))
    assert info["ifaces"] == {"lo": {"up": True}}
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    try:
        port = srv.getsockname()[1]
        res = observe(Spec(args=["/bin/probe", "connect", "127.0.0.1", str(port)], rootfs=rootfs))
        assert res["errno"] == errno.ECONNREFUSED
        same = observe(
            Spec(
                args=["/bin/probe", "connect", "127.0.0.1", str(port)],
                rootfs=rootfs,
                namespaces=NS & ~Namespace.NET,
            )
        )
        assert same["errno"] == 0
    finally:
        srv.close()


# ---- more namespaces, flags, the GIL ---------------------------------------------


@pytest.mark.parametrize(
    "kind", [k for k in Namespace if k != Namespace.PID], ids=lambda k: k.proc_name
)
def test_joining_each_kind_by_path(kind: Namespace, rootfs: str, probe: str) -> None:
    fields: dict[str, Any] = {"namespaces": NS | Namespace.USER | Namespace.TIME}
    if kind == Namespace.USER:
        fields.update(uid_map=[(0, 0, 1)], gid_map=[(0, 0, 1)])
    holder = pynsbind.spawn(
        Spec(args=["/bin/probe", "sleep", "60"], rootfs=rootfs, **fields), stdout=pynsbind.PIPE
    )
    with holder:
        assert holder.stdout is not None
        holder.stdout.readline()
        name = kind.proc_name
        if kind == Namespace.MNT:
            # /proc inside belongs to the container's pid namespace, where this
            # process is not: check the files instead
            marker = os.path.join(rootfs, "tmp", f"marker-{os.getpid()}")
            open(marker, "w").close()
            try:
                st = probe_host(
                    "/bin/probe",
                    "stat",
                    marker[len(rootfs) :],
                    namespaces=Namespace(0),
                    join={kind: f"/proc/{holder.pid}/ns/mnt"},
                )
            finally:
                os.unlink(marker)
            assert st["errno"] == 0
            return
        info = probe_host(
            probe, namespaces=Namespace(0), join={kind: f"/proc/{holder.pid}/ns/{name}"}
        )
        assert info["ns"][name] == host_ns(name, holder.pid)
        assert info["ns"][name] != host_ns(name)


def test_mount_flags_and_propagation_are_what_was_asked(rootfs: str, tmp_path: Any) -> None:
    src = tmp_path / "src"
    src.mkdir()
    mounts = [
        Mount.proc(),
        Mount.bind(str(src), "/a", nosuid=True, nodev=True, noexec=True, readonly=True),
        Mount.bind(str(src), "/b", propagation="shared"),
        Mount.bind(str(src), "/c", propagation="unbindable"),
        Mount.tmpfs("/d", nosuid=False, nodev=False),
    ]
    info = observe(Spec(args=["/bin/probe", "info"], rootfs=rootfs, mounts=mounts))
    lines = {line.split()[4]: line.split() for line in info["mountinfo"].splitlines()}
    opts_a = set(lines["/a"][5].split(","))
    assert {"ro", "nosuid", "nodev", "noexec"} <= opts_a
    assert any(f.startswith("shared:") for f in lines["/b"][6 : lines["/b"].index("-")])
    assert "unbindable" in lines["/c"][6 : lines["/c"].index("-")]
    # a bind is nodev whatever was asked (device nodes are usable only where
    # the spec puts them); nosuid only when asked
    assert "nosuid" not in lines["/d"][5].split(",") and "nodev" in lines["/d"][5].split(",")
    # the root and the others are private: no propagation fields
    assert lines["/"][6] == "-"


def test_the_spawn_releases_the_gil(rootfs: str) -> None:
    """A parent action that takes a second (a helper that sleeps) runs inside the C
    call: a Python thread must make progress meanwhile."""
    import threading

    from pynsbind.testing import Pact, compile_plan, lib, run_plan
    from pynsbind.testing import prepare_cgroup as prepare

    spec = Spec(args=["/bin/true"], rootfs=rootfs, namespaces=NS | Namespace.USER)
    plan = compile_plan(spec, pynsbind.features())
    plan.pacts.append(Pact(1, lib.NSB_PACT_HELPER, "sleep", argv=["/bin/sleep", "1"]))
    count = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal count
        while not stop.is_set():
            count += 1

    t = threading.Thread(target=spin)
    t.start()
    cg = prepare(spec.normalized, plan)  # the container's cgroup (its device rules)
    try:
        before = count
        extra = {} if cg is None else cg.slots
        res = run_plan(plan, [-1, -1, -1], extra)
        during = count - before
    finally:
        stop.set()
        t.join()
        if cg is not None:
            cg.close_slots()
    os.waitpid(res.pid, 0)
    os.close(res.pidfd)
    if cg is not None:
        cg.release()
    assert during > 1000
