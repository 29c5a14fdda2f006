"""podman (Debian's 4.3, with conmon) driving an OCI runtime: each behaviour
that pynsbind-run must show as runc does, observed from inside the container
(its output), from podman (exit codes, ``podman inspect``) and from the host
(cgroup files, /proc/PID/ns).

The runtimes come from tests/oci_runtimes.runtimes_under_test() (runc and crun
now; pynsbind-run is one line there).  podman runs with configuration files
of its own (tests/oci_runtimes.PodmanEnv): nothing touches
/var/lib/containers or a registry, and every container lives under
``/pynsbind-podman-PID-N`` in each cgroup hierarchy.  Set
``PYNSBIND_OCI_TRACE=DIR`` to log every runtime call (argv, config.json...)
under DIR.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import HostState, Unavailable, wait_for
from tests.oci_runtimes import (
    DEFAULT_CAPABILITIES,
    IMAGE_NAME,
    PodmanEnv,
    cgroup_dirs,
    cgroup_file,
    cgroup_of,
    resolve_runtime,
    runtimes_under_test,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.oci]

DEFAULT_CAPS = " ".join(DEFAULT_CAPABILITIES)
CAP_BITS = {
    "CHOWN": 0,
    "DAC_OVERRIDE": 1,
    "FOWNER": 3,
    "FSETID": 4,
    "KILL": 5,
    "SETGID": 6,
    "SETUID": 7,
    "SETPCAP": 8,
    "NET_BIND_SERVICE": 10,
    "NET_ADMIN": 12,
    "SYS_CHROOT": 18,
    "SETFCAP": 31,
}


def caps_mask(names: str) -> int:
    return sum(1 << CAP_BITS[n] for n in names.split())


def trace_dir(tool: str, runtime: str) -> Path | None:
    base = os.environ.get("PYNSBIND_OCI_TRACE")
    return Path(base) / f"{tool}-{runtime}" if base else None


def new_env(runtime: str, work: Path) -> PodmanEnv:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    try:
        path = resolve_runtime(runtime, work, trace=trace_dir("podman", runtime))
        return PodmanEnv(path, work / "podman", runtime_name=runtime)
    except Unavailable as exc:
        pytest.skip(str(exc))


def workdir() -> Path:
    # short: conmon's sockets live under it
    import tempfile

    return Path(tempfile.mkdtemp(prefix="pynsbind-oci-"))


@pytest.fixture(scope="module", params=runtimes_under_test())
def podman(request: pytest.FixtureRequest) -> Iterator[PodmanEnv]:
    """A PodmanEnv per runtime; its cleanup must find nothing to force."""
    work = workdir()
    env = new_env(request.param, work)
    yield env
    forced = env.cleanup()
    shutil.rmtree(work)
    assert forced == []


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    d = tmp_path / "vol"
    d.mkdir()
    return d


def sh(
    podman: PodmanEnv, script: str, *opts: str, input: str | None = None
) -> tuple[int, str, str]:
    """``podman run --rm OPTS IMAGE sh -c SCRIPT``: (exit code, stdout, stderr)."""
    res = podman.run("run", "--rm", *opts, podman.image, "sh", "-c", script, input=input)
    return res.returncode, res.stdout, res.stderr


def running(
    podman: PodmanEnv, name: str, *opts: str, cmd: tuple[str, ...] = ("sleep", "1000")
) -> int:
    """Start a detached container; its host pid."""
    podman.ok("run", "-d", "--name", name, *opts, podman.image, *cmd)
    return int(podman.inspect(name)["State"]["Pid"])


def trapping(signal_name: str, code: int) -> tuple[str, ...]:
    """A PID 1 that exits with code on signal_name (and says it is ready)."""
    return (
        "sh",
        "-c",
        f'trap "exit {code}" {signal_name}; touch /ready; while :; do sleep 0.05; done',
    )


def wait_ready(podman: PodmanEnv, name: str) -> None:
    assert wait_for(lambda: podman.run("exec", name, "test", "-e", "/ready").returncode == 0)


# ---- run and exit codes -------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 1, 42])
def test_exit_code_of_the_process(podman: PodmanEnv, code: int) -> None:
    rc, _, _ = sh(podman, f"exit {code}")
    assert rc == code


def test_missing_command_is_127_and_not_executable_is_126(podman: PodmanEnv) -> None:
    res = podman.run("run", "--rm", podman.image, "/no/such/program")
    assert res.returncode == 127, res.stderr
    res = podman.run("run", "--rm", podman.image, "/etc/passwd")
    assert res.returncode == 126, res.stderr


def test_oom_kill_of_the_process_is_137(podman: PodmanEnv) -> None:
    # dd's 64 MiB buffer in a 16 MiB cgroup without swap: the OOM killer
    res = podman.run(
        "run", "--rm", "--memory", "16m", "--memory-swap", "16m", podman.image,
        "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1",
    )  # fmt: skip
    assert res.returncode == 137, res.stderr
    # conmon noticed (podman 4.3 looks for this file in the bundle, not here,
    # so its inspect says OOMKilled false)
    assert (podman.root / "cwd" / "oom").exists()
    (podman.root / "cwd" / "oom").unlink()


def test_oom_kill_is_counted_in_the_cgroup(podman: PodmanEnv) -> None:
    # the shell survives its child's OOM kill; the host sees the kill counted
    pid = running(
        podman, "oomc", "--memory", "16m", "--memory-swap", "16m",
        cmd=("sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1; echo $? > /dd-status; sleep 1000"),
    )  # fmt: skip
    assert wait_for(lambda: podman.run("exec", "oomc", "cat", "/dd-status").stdout.strip() != "")
    assert podman.ok("exec", "oomc", "cat", "/dd-status") == "137"
    oom = dict(
        line.split() for line in cgroup_file(pid, "memory", "memory.oom_control").splitlines()
    )
    assert int(oom["oom_kill"]) >= 1
    assert cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(16 << 20)
    podman.ok("rm", "-f", "-t", "0", "oomc")


# ---- the process: stdin, tty, env, user, workdir, hostname -----------------------------------


def test_stdin_reaches_the_process(podman: PodmanEnv) -> None:
    rc, out, _ = sh(podman, "cat; echo done", "-i", input="line one\nline two\n")
    assert rc == 0
    assert out == "line one\nline two\ndone\n"


def test_without_i_stdin_is_empty(podman: PodmanEnv) -> None:
    rc, out, _ = sh(podman, "cat; echo done", input="ignored\n")
    assert (rc, out) == (0, "done\n")


def test_tty(podman: PodmanEnv) -> None:
    rc, out, _ = sh(
        podman, "tty; test -t 0 && test -t 1 && echo both; stty size 2>/dev/null; exit 3", "-t"
    )
    assert rc == 3
    lines = out.replace("\r\n", "\n").splitlines()
    assert lines[0].startswith("/dev/pts/")
    assert lines[1] == "both"


def test_no_tty_without_t(podman: PodmanEnv) -> None:
    rc, out, _ = sh(podman, "test -t 1 && echo tty || echo notty")
    assert (rc, out) == (0, "notty\n")


def test_env_user_workdir_hostname(podman: PodmanEnv) -> None:
    rc, out, _ = sh(
        podman,
        'echo "$FOO|$BAR|$PATH"; id -u; id -g; id -G; pwd; hostname',
        "-e", "FOO=bar baz", "--env", "BAR=", "-u", "65534:65534", "-w", "/tmp", "--hostname", "oci-host",
    )  # fmt: skip
    assert rc == 0
    assert out.splitlines() == ["bar baz||/bin", "65534", "65534", "65534", "/tmp", "oci-host"]


def test_user_with_groups(podman: PodmanEnv) -> None:
    rc, out, _ = sh(podman, "id -u; id -G", "-u", "1000:1000", "--group-add", "5")
    assert rc == 0
    assert out.splitlines()[0] == "1000"
    assert sorted(out.splitlines()[1].split()) == ["1000", "5"]


def test_default_workdir_and_hostname(podman: PodmanEnv) -> None:
    podman.ok("run", "--name", "defaults", podman.image, "sh", "-c", "pwd; hostname; id -u")
    out = podman.ok("logs", "defaults").splitlines()
    cid = podman.inspect("defaults")["Id"]
    assert out == ["/", cid[:12], "0"]
    podman.ok("rm", "defaults")


# ---- mounts: volumes, tmpfs, read-only -----------------------------------------------------


def test_bind_volume_read_write(podman: PodmanEnv, host_dir: Path) -> None:
    (host_dir / "from-host").write_text("hello\n")
    rc, out, _ = sh(
        podman, "cat /data/from-host; echo made > /data/from-container", "-v", f"{host_dir}:/data"
    )
    assert (rc, out) == (0, "hello\n")
    assert (host_dir / "from-container").read_text() == "made\n"


def test_bind_volume_read_only(podman: PodmanEnv, host_dir: Path) -> None:
    rc, _, err = sh(podman, "echo x > /data/f", "-v", f"{host_dir}:/data:ro")
    assert rc != 0
    assert "Read-only file system" in err
    assert not (host_dir / "f").exists()


def test_named_volume_persists(podman: PodmanEnv) -> None:
    podman.ok("volume", "create", "vol1")
    assert sh(podman, "echo kept > /v/f", "-v", "vol1:/v")[0] == 0
    rc, out, _ = sh(podman, "cat /v/f", "-v", "vol1:/v")
    assert (rc, out) == (0, "kept\n")
    podman.ok("volume", "rm", "vol1")


def test_tmpfs_mount(podman: PodmanEnv) -> None:
    rc, out, err = sh(
        podman,
        "grep ' /scratch ' /proc/mounts; dd if=/dev/zero of=/scratch/f bs=1k count=2048 2>/dev/null;"
        " echo dd=$?; stat -c %s /scratch/f",
        "--tmpfs", "/scratch:size=1m,mode=1777",
    )  # fmt: skip
    assert rc == 0, err
    fields = out.splitlines()[0].split()
    assert fields[1:3] == ["/scratch", "tmpfs"]
    assert "size=1024k" in fields[3].split(",")
    assert out.splitlines()[1:] == ["dd=1", str(1 << 20)]  # full at 1 MiB
    assert all(
        " /scratch " not in line for line in Path("/proc/self/mountinfo").read_text().splitlines()
    )


def test_read_only_root(podman: PodmanEnv) -> None:
    rc, out, err = sh(
        podman,
        "touch /x 2>&1; grep ' / ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1; touch /tmp/y && echo tmp-ok",
        "--read-only",
    )
    assert rc == 0, err
    lines = out.splitlines()
    assert "Read-only file system" in lines[0]
    assert lines[1] == "ro"
    assert lines[2] == "tmp-ok"  # podman mounts a tmpfs on /tmp with --read-only


def test_writes_stay_in_the_container(podman: PodmanEnv) -> None:
    assert sh(podman, "echo x > /etc/written")[0] == 0
    rc, _, _ = sh(podman, "test -e /etc/written")
    assert rc == 1


# ---- limits: cgroups and rlimits ------------------------------------------------------------


def test_limits_in_the_cgroup_files(podman: PodmanEnv) -> None:
    pid = running(
        podman, "limits", "--memory", "64m", "--pids-limit", "50", "--cpus", "0.5",
        "--cpu-shares", "512",
    )  # fmt: skip
    assert cgroup_of(pid, "memory").startswith(podman.cgroup_parent + "/")
    assert cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert cgroup_file(pid, "pids", "pids.max") == "50"
    assert cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "50000"
    assert cgroup_file(pid, "cpu", "cpu.cfs_period_us") == "100000"
    assert cgroup_file(pid, "cpu", "cpu.shares") == "512"
    # every hierarchy places it in the same cgroup
    paths = {cgroup_of(pid, c) for c in ("memory", "pids", "cpu", "freezer", "devices", "blkio")}
    assert len(paths) == 1
    podman.ok("rm", "-f", "-t", "0", "limits")
    assert not any(os.path.isdir(f"/sys/fs/cgroup/memory{p}") for p in paths)


def test_pids_limit_is_enforced(podman: PodmanEnv) -> None:
    rc, out, err = sh(
        podman,
        "i=0; while [ $i -lt 20 ]; do sleep 5 & i=$((i+1)); done; echo all",
        "--pids-limit",
        "10",
    )
    assert rc != 0
    assert "all" not in out
    assert "can't fork" in err


def test_cpuset(podman: PodmanEnv) -> None:
    pid = running(podman, "cpuset", "--cpuset-cpus", "0")
    assert cgroup_file(pid, "cpuset", "cpuset.cpus") == "0"
    assert podman.ok("exec", "cpuset", "sh", "-c", "grep Cpus_allowed_list /proc/self/status") == (
        "Cpus_allowed_list:\t0"
    )
    podman.ok("rm", "-f", "-t", "0", "cpuset")


def test_update_changes_the_cgroup(podman: PodmanEnv) -> None:
    pid = running(podman, "upd", "--memory", "64m", "--cpu-shares", "512")
    podman.ok("update", "--memory", "128m", "--cpu-shares", "300", "--cpu-quota", "20000", "upd")
    assert cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(128 << 20)
    assert cgroup_file(pid, "cpu", "cpu.shares") == "300"
    assert cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "20000"
    podman.ok("rm", "-f", "-t", "0", "upd")


def test_ulimits(podman: PodmanEnv) -> None:
    # with --ulimit, containers.conf's defaults no longer apply: podman would
    # ask for nproc 4194304, over this host's hard limit, so nproc is given
    rc, out, _ = sh(
        podman, "ulimit -n; ulimit -Hn; ulimit -u; ulimit -c",
        "--ulimit", "nofile=100:200", "--ulimit", "nproc=500:600", "--ulimit", "core=0:0",
    )  # fmt: skip
    assert (rc, out.split()) == (0, ["100", "200", "500", "0"])


def test_default_ulimits_from_containers_conf(podman: PodmanEnv) -> None:
    rc, out, _ = sh(podman, "ulimit -n; ulimit -Hn; ulimit -Su; ulimit -Hu")
    assert rc == 0
    expected = []
    for line in podman.conf.read_text().splitlines():
        if line.startswith("default_ulimits"):
            for item in ("nofile", "nproc"):
                soft, hard = line.split(f"{item}=")[1].split('"')[0].split(":")
                expected += [soft, hard]
    assert out.split() == expected


# ---- capabilities -------------------------------------------------------------------------


def cap_eff(out: str) -> int:
    for line in out.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise AssertionError(out)


def test_default_capabilities(podman: PodmanEnv) -> None:
    rc, out, _ = sh(podman, "grep Cap /proc/self/status")
    assert rc == 0
    assert cap_eff(out) == caps_mask(DEFAULT_CAPS)
    assert f"CapBnd:\t{caps_mask(DEFAULT_CAPS):016x}" in out


def test_cap_drop_and_add(podman: PodmanEnv) -> None:
    rc, out, _ = sh(
        podman, "grep Cap /proc/self/status", "--cap-drop", "all", "--cap-add", "NET_ADMIN"
    )
    assert rc == 0
    assert cap_eff(out) == caps_mask("NET_ADMIN")
    assert "CapAmb:\t0000000000000000" in out


def test_dropped_capability_is_enforced(podman: PodmanEnv) -> None:
    script = "touch /tmp/f; chown 1 /tmp/f && echo chowned"
    assert sh(podman, script) == (0, "chowned\n", "")
    rc, _, err = sh(podman, script, "--cap-drop", "CHOWN")
    assert rc != 0
    assert "Operation not permitted" in err


def test_non_root_user_has_no_effective_capabilities(podman: PodmanEnv) -> None:
    rc, out, _ = sh(podman, "grep Cap /proc/self/status", "-u", "65534")
    assert rc == 0
    assert cap_eff(out) == 0


# ---- exec -----------------------------------------------------------------------------------


def test_exec(podman: PodmanEnv) -> None:
    pid = running(podman, "ex")
    res = podman.run("exec", "ex", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (res.returncode, res.stdout, res.stderr) == (7, "out\n", "err\n")
    # the exec'd process is in the container's namespaces and cgroup
    out = podman.ok(
        "exec",
        "ex",
        "sh",
        "-c",
        "readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; cat /proc/self/cgroup",
    )
    lines = out.splitlines()
    assert lines[0] == os.readlink(f"/proc/{pid}/ns/pid")
    assert lines[1] == os.readlink(f"/proc/{pid}/ns/mnt")
    assert any(line.endswith(":memory:" + cgroup_of(pid, "memory")) for line in lines[2:])
    podman.ok("rm", "-f", "-t", "0", "ex")


def test_exec_options(podman: PodmanEnv) -> None:
    running(podman, "exo")
    out = podman.ok(
        "exec",
        "-u",
        "65534:65534",
        "-w",
        "/tmp",
        "-e",
        "X=1",
        "exo",
        "sh",
        "-c",
        'id -u; pwd; echo "$X"',
    )
    assert out.splitlines() == ["65534", "/tmp", "1"]
    assert podman.ok("exec", "-i", "exo", "cat", input="to exec\n") == "to exec"
    res = podman.run("exec", "exo", "/no/such/program")
    assert res.returncode == 127
    podman.ok("rm", "-f", "-t", "0", "exo")


def test_exec_with_a_tty(podman: PodmanEnv) -> None:
    running(podman, "ext")
    res = podman.run("exec", "-t", "ext", "sh", "-c", "tty; test -t 1 && echo tty; exit 4")
    assert res.returncode == 4
    lines = res.stdout.replace("\r\n", "\n").splitlines()
    assert lines[0].startswith("/dev/pts/")
    assert lines[1] == "tty"
    res = podman.run("exec", "ext", "sh", "-c", "test -t 1 && echo tty || echo notty")
    assert res.stdout == "notty\n"
    podman.ok("rm", "-f", "-t", "0", "ext")


def test_exec_detached(podman: PodmanEnv) -> None:
    running(podman, "exd")
    podman.ok("exec", "-d", "exd", "sh", "-c", "echo done > /exec-detached")
    assert wait_for(lambda: podman.run("exec", "exd", "cat", "/exec-detached").stdout == "done\n")
    podman.ok("rm", "-f", "-t", "0", "exd")


# ---- lifecycle: pause, stop, kill, restart, rm -------------------------------------------


def test_pause_and_unpause(podman: PodmanEnv) -> None:
    pid = running(
        podman, "pz", cmd=("sh", "-c", "while :; do date +%s%N > /tick; sleep 0.05; done")
    )
    podman.ok("pause", "pz")
    assert podman.inspect("pz")["State"]["Status"] == "paused"
    assert cgroup_file(pid, "freezer", "freezer.state") == "FROZEN"
    state = Path(f"/proc/{pid}/status").read_text()
    assert "\nState:\tS" in state or "\nState:\tD" in state
    podman.ok("unpause", "pz")
    assert podman.inspect("pz")["State"]["Status"] == "running"
    assert cgroup_file(pid, "freezer", "freezer.state") == "THAWED"
    first = podman.ok("exec", "pz", "cat", "/tick")
    assert wait_for(lambda: podman.ok("exec", "pz", "cat", "/tick") != first)
    podman.ok("rm", "-f", "-t", "0", "pz")


def test_stop_sends_sigterm_then_the_exit_code(podman: PodmanEnv) -> None:
    running(podman, "st", cmd=trapping("TERM", 42))
    wait_ready(podman, "st")
    podman.ok("stop", "st")
    state = podman.inspect("st")["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 42)
    podman.ok("rm", "st")


def test_stop_kills_a_process_that_ignores_sigterm(podman: PodmanEnv) -> None:
    # busybox sleep as PID 1 has no SIGTERM handler: PID 1 ignores it
    running(podman, "stk")
    podman.ok("stop", "-t", "1", "stk")
    state = podman.inspect("stk")["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)
    podman.ok("rm", "stk")


def test_kill_with_a_signal(podman: PodmanEnv) -> None:
    running(podman, "k1", cmd=trapping("USR1", 10))
    wait_ready(podman, "k1")
    podman.ok("kill", "-s", "USR1", "k1")
    assert podman.ok("wait", "k1") == "10"
    running(podman, "k2")
    podman.ok("kill", "k2")  # SIGKILL
    assert podman.ok("wait", "k2") == "137"
    podman.ok("rm", "k1", "k2")


def test_restart(podman: PodmanEnv) -> None:
    pid = running(podman, "rs")
    podman.ok("exec", "rs", "touch", "/kept")
    podman.ok("restart", "-t", "0", "rs")
    state = podman.inspect("rs")["State"]
    assert state["Status"] == "running"
    assert state["Pid"] != pid
    assert podman.run("exec", "rs", "test", "-e", "/kept").returncode == 0  # the same container
    podman.ok("stop", "-t", "0", "rs")
    podman.ok("start", "rs")
    assert podman.inspect("rs")["State"]["Status"] == "running"
    podman.ok("rm", "-f", "-t", "0", "rs")


def test_create_then_start(podman: PodmanEnv) -> None:
    podman.ok("create", "--name", "cs", podman.image, "sh", "-c", "exit 5")
    assert podman.inspect("cs")["State"]["Status"] == "created"
    res = podman.run("start", "-a", "cs")
    assert res.returncode == 5
    assert podman.inspect("cs")["State"]["ExitCode"] == 5
    podman.ok("rm", "cs")


def test_rm_removes_the_container_and_its_cgroup(podman: PodmanEnv) -> None:
    res = podman.run(
        "run", "--rm", "--name", "gone", podman.image, "sh", "-c", "cat /proc/self/cgroup"
    )
    assert res.returncode == 0
    mem = next(line.split(":", 2)[2] for line in res.stdout.splitlines() if ":memory:" in line)
    assert mem.startswith(podman.cgroup_parent + "/")
    assert podman.run("inspect", "gone").returncode != 0
    assert not os.path.isdir(f"/sys/fs/cgroup/memory{mem}")
    assert "gone" not in podman.ok("ps", "-a", "--format", "{{.Names}}").split()


def test_ps_and_top(podman: PodmanEnv) -> None:
    running(podman, "tp", cmd=("sh", "-c", "sleep 1000 & sleep 1001"))
    assert "tp" in podman.ok("ps", "--format", "{{.Names}}").split()
    top = podman.ok("top", "tp", "args")
    assert "sleep 1000" in top and "sleep 1001" in top
    podman.ok("rm", "-f", "-t", "0", "tp")


# ---- namespaces: network, pods -----------------------------------------------------------


def test_network_none(podman: PodmanEnv) -> None:
    rc, out, _ = sh(podman, "ls /sys/class/net; readlink /proc/self/ns/net")
    assert rc == 0
    lines = out.splitlines()
    assert lines[:-1] == ["lo"]
    assert lines[-1] != os.readlink("/proc/self/ns/net")


def test_network_host(podman: PodmanEnv) -> None:
    rc, out, _ = sh(podman, "readlink /proc/self/ns/net", "--network", "host")
    assert (rc, out.strip()) == (0, os.readlink("/proc/self/ns/net"))


def test_network_slirp4netns(podman: PodmanEnv) -> None:
    if not any(
        os.access(os.path.join(d, "slirp4netns"), os.X_OK) for d in os.environ["PATH"].split(":")
    ):
        pytest.skip("needs slirp4netns")
    rc, out, err = sh(podman, "ip -o -4 addr show tap0; ip route", "--network", "slirp4netns")
    assert rc == 0, err
    assert "inet 10.0.2.100/24" in out
    assert "default via 10.0.2.2" in out


def test_namespaces_are_new(podman: PodmanEnv) -> None:
    pid = running(podman, "ns")
    for kind in ("mnt", "uts", "ipc", "pid", "net"):
        assert os.readlink(f"/proc/{pid}/ns/{kind}") != os.readlink(f"/proc/self/ns/{kind}"), kind
    assert (
        podman.ok(
            "exec", "ns", "sh", "-c", "echo $$ > /dev/null; cat /proc/1/cmdline | tr '\\0' ' '"
        )
        == "sleep 1000"
    )
    podman.ok("rm", "-f", "-t", "0", "ns")


def test_pod_containers_join_the_infra_namespaces(podman: PodmanEnv) -> None:
    podman.ok("pod", "create", "--name", "pod1", "--hostname", "podhost", "--share", "net,ipc,uts")
    podman.ok("pod", "start", "pod1")
    infra = podman.inspect("pod1", kind="pod")["InfraContainerID"]
    infra_pid = podman.inspect(infra)["State"]["Pid"]
    a = running(podman, "pa", "--pod", "pod1")
    b = running(podman, "pb", "--pod", "pod1")
    for kind in ("net", "ipc", "uts"):
        ns = os.readlink(f"/proc/{infra_pid}/ns/{kind}")
        assert os.readlink(f"/proc/{a}/ns/{kind}") == ns, kind
        assert os.readlink(f"/proc/{b}/ns/{kind}") == ns, kind
    # not shared: each has its own mount and pid namespace
    assert os.readlink(f"/proc/{a}/ns/mnt") != os.readlink(f"/proc/{b}/ns/mnt")
    assert os.readlink(f"/proc/{a}/ns/pid") != os.readlink(f"/proc/{b}/ns/pid")
    assert podman.ok("exec", "pb", "hostname") == "podhost"
    # the pod's cgroup holds both containers
    pod_cg = podman.inspect("pod1", kind="pod")["CgroupPath"]
    assert cgroup_of(a, "memory").startswith(pod_cg + "/")
    assert pod_cg.startswith(podman.cgroup_parent + "/")
    podman.ok("pod", "stop", "-t", "0", "pod1")
    assert podman.inspect("pa")["State"]["Status"] == "exited"
    podman.ok("pod", "rm", "-f", "pod1")
    # podman removes the pod's cgroup in the hierarchies of its controllers
    # (runc made the parent in name=systemd and the cgroup2 too: those stay)
    assert not os.path.exists(f"/sys/fs/cgroup/memory{pod_cg}")


def test_pod_sharing_pid(podman: PodmanEnv) -> None:
    podman.ok("pod", "create", "--name", "pod2", "--share", "pid,net")
    podman.ok("pod", "start", "pod2")
    a = running(podman, "p2a", "--pod", "pod2")
    out = podman.ok("exec", "p2a", "sh", "-c", "ps -o args | grep -v -e ps -e grep -e args")
    assert "/pause" in out or "sleep 1000" in out
    infra = podman.inspect("pod2", kind="pod")["InfraContainerID"]
    assert os.readlink(f"/proc/{a}/ns/pid") == os.readlink(
        f"/proc/{podman.inspect(infra)['State']['Pid']}/ns/pid"
    )
    podman.ok("pod", "rm", "-f", "-t", "0", "pod2")


def test_container_joins_another_containers_namespaces(podman: PodmanEnv) -> None:
    a = running(podman, "host1", "--hostname", "first")
    b = running(podman, "join1", "--uts", "container:host1", "--network", "container:host1")
    assert os.readlink(f"/proc/{b}/ns/uts") == os.readlink(f"/proc/{a}/ns/uts")
    assert os.readlink(f"/proc/{b}/ns/net") == os.readlink(f"/proc/{a}/ns/net")
    assert podman.ok("exec", "join1", "hostname") == "first"
    podman.ok("rm", "-f", "-t", "0", "join1")
    podman.ok("rm", "-f", "-t", "0", "host1")


# ---- what podman leaves ------------------------------------------------------------------


def var_lib_state() -> dict[str, float]:
    out = {}
    for d in ("/var/lib/containers", "/var/lib/containerd", "/run/containers", "/run/libpod"):
        out[d] = os.stat(d).st_mtime if os.path.exists(d) else -1.0
    return out


@pytest.mark.parametrize("runtime", runtimes_under_test())
def test_cleanup_leaves_nothing(runtime: str) -> None:
    """A fresh environment with running, paused and exited containers, a pod
    and an exec session: its cleanup forces nothing and the host is as it was
    (mounts, cgroups, children, fds, interfaces), /var/lib/containers too."""
    before, system = HostState.now(), var_lib_state()
    work = workdir()
    env = new_env(runtime, work)
    try:
        running(env, "a")
        running(env, "b")
        env.ok("pause", "b")
        env.ok("run", "--name", "c", env.image, "true")
        env.ok("pod", "create", "--name", "pd")
        running(env, "d", "--pod", "pd")
        env.ok("exec", "-d", "a", "sleep", "1000")
        assert len(env.ok("ps", "-a", "-q").split()) == 5  # a, b, c, d and the pod's infra
        assert cgroup_dirs(env.cgroup_parent)
    finally:
        forced = env.cleanup()
        shutil.rmtree(work)
    assert forced == []
    assert not cgroup_dirs(env.cgroup_parent)
    assert wait_for(lambda: before.diff(HostState.now()) == {}, 10), before.diff(HostState.now())
    assert var_lib_state() == system


def test_image_is_the_local_busybox(podman: PodmanEnv) -> None:
    images = podman.ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert images == [IMAGE_NAME]
    # imported, never pulled: the digest is the one podman import stored
    assert podman.ok("run", "--rm", podman.image, "readlink", "/bin/sh") == "busybox"


def test_runtime_is_the_one_asked_for(podman: PodmanEnv) -> None:
    podman.ok("run", "--name", "which", podman.image, "true")
    assert podman.inspect("which")["OCIRuntime"] == podman.runtime_name
    podman.ok("rm", "which")
    info = podman.ok("info", "--format", "{{.Host.OCIRuntime.Path}}")
    assert info == podman.runtime_path


def test_many_containers_in_a_row(podman: PodmanEnv) -> None:
    before = podman.ok("ps", "-a", "-q")
    for i in range(10):
        rc, out, _ = sh(podman, f"echo {i}")
        assert (rc, out) == (0, f"{i}\n")
    assert podman.ok("ps", "-a", "-q") == before
