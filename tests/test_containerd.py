"""containerd 1.6 (its runc v2 shim) driving an OCI runtime through ``ctr``:
create, start, exec, ps, kill, pause, delete and friends, observed from
inside the container, from ctr and from the host (cgroup files, /proc).

Each runtime of tests/oci_runtimes.runtimes_under_test() gets a private
containerd daemon (tests/oci_runtimes.ContainerdEnv): its own config, root,
state and sockets, in a private mount namespace whose /run is a tmpfs, with
the busybox image imported from an OCI layout made by the harness.  Set
``PYNSBIND_OCI_TRACE=DIR`` to log every runtime call under DIR.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import HostState, Unavailable, wait_for
from tests.oci_runtimes import (
    ContainerdEnv,
    cgroup_dirs,
    cgroup_file,
    cgroup_of,
    resolve_runtime,
    run_in_pty,
    runtimes_under_test,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.oci]

#: a PID 1 that exits 42 on SIGTERM, with a steady set of processes
TRAP_TERM = 'trap "exit 42" TERM; touch /ready; sleep 1000 & wait'


def trace_dir(runtime: str) -> Path | None:
    base = os.environ.get("PYNSBIND_OCI_TRACE")
    return Path(base) / f"containerd-{runtime}" if base else None


def new_env(runtime: str, work: Path) -> ContainerdEnv:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    try:
        path = resolve_runtime(runtime, work, trace=trace_dir(runtime))
        return ContainerdEnv(path, work / "containerd")
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module", params=runtimes_under_test())
def ctr(request: pytest.FixtureRequest) -> Iterator[ContainerdEnv]:
    """A ContainerdEnv per runtime; its cleanup must find nothing to force."""
    work = Path(tempfile.mkdtemp(prefix="pynsbind-oci-"))  # short: sockets live under it
    env = new_env(request.param, work)
    yield env
    forced = env.cleanup()
    shutil.rmtree(work)
    assert forced == []


def run(
    ctr: ContainerdEnv, cid: str, *cmd: str, opts: tuple[str, ...] = (), input: str | None = None
) -> tuple[int, str, str]:
    """``ctr run --rm OPTS IMAGE CID CMD``: (exit status, stdout, stderr)."""
    res = ctr.ctr(*ctr.run_args(cid, *cmd, opts=("--rm", *opts)), input=input)
    return res.returncode, res.stdout, res.stderr


def detached(ctr: ContainerdEnv, cid: str, *cmd: str, opts: tuple[str, ...] = ()) -> int:
    """``ctr run -d``: the task's host pid."""
    ctr.ok(*ctr.run_args(cid, *(cmd or ("sleep", "1000")), opts=("-d", *opts)))
    return ctr.task_pid(cid)


def remove(ctr: ContainerdEnv, cid: str) -> str:
    """Kill (SIGKILL) and delete a task, then its container: what ``ctr task
    delete`` said on stderr (the exit status, when not zero)."""
    ctr.ctr("task", "kill", "--signal", "SIGKILL", cid)
    assert wait_for(lambda: ctr.task_status(cid) in ("STOPPED", None))
    res = ctr.ctr("task", "delete", cid)
    ctr.ok("containers", "rm", cid)
    return res.stderr


def ready(ctr: ContainerdEnv, cid: str) -> None:
    assert wait_for(
        lambda: (
            ctr.ctr("task", "exec", "--exec-id", "ready", cid, "test", "-e", "/ready").returncode
            == 0
        )
    )


# ---- run and exit codes -------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 1, 42])
def test_exit_status(ctr: ContainerdEnv, code: int) -> None:
    rc, _, _ = run(ctr, f"exit{code}", "sh", "-c", f"exit {code}")
    assert rc == code


def test_missing_command_fails_create(ctr: ContainerdEnv) -> None:
    rc, _, err = run(ctr, "missing", "/no/such/program")
    assert rc != 0
    assert "no such file or directory" in err.lower()
    assert ctr.task_status("missing") is None
    assert "missing" not in ctr.ok("containers", "ls", "--quiet").split()


def test_oom_kill_is_137(ctr: ContainerdEnv) -> None:
    rc, _, _ = run(
        ctr, "oom", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1",
        opts=("--memory-limit", str(16 << 20)),
    )  # fmt: skip
    assert rc == 137


def test_stdin(ctr: ContainerdEnv) -> None:
    # one line: ctr 1.6 does not always close the container's stdin at EOF
    rc, out, _ = run(ctr, "stdin", "sh", "-c", "read line; echo got:$line", input="hello there\n")
    assert (rc, out) == (0, "got:hello there\n")


def test_tty(ctr: ContainerdEnv) -> None:
    rc, out = run_in_pty(
        ctr.argv(
            *ctr.run_args(
                "tty",
                "sh",
                "-c",
                "tty; test -t 0 && test -t 1 && echo both; exit 6",
                opts=("--rm", "-t"),
            )
        ),
        ctr.env,
    )
    assert rc == 6
    lines = [x for x in out.replace("\r", "").splitlines() if x]
    assert lines[0].startswith("/dev/pts/")
    assert lines[1] == "both"


def test_env_and_cwd(ctr: ContainerdEnv) -> None:
    # (ctr 1.6 run has no --user; exec has, below)
    rc, out, _ = run(
        ctr, "envs", "sh", "-c", 'echo "$FOO"; pwd; id -u',
        opts=("--env", "FOO=bar baz", "--cwd", "/tmp"),
    )  # fmt: skip
    assert (rc, out.splitlines()) == (0, ["bar baz", "/tmp", "0"])


def test_capabilities(ctr: ContainerdEnv) -> None:
    rc, out, _ = run(
        ctr, "caps", "grep", "CapEff", "/proc/self/status", opts=("--cap-drop", "CAP_CHOWN")
    )
    assert rc == 0
    eff = int(out.split()[1], 16)
    assert eff != 0
    assert not eff & 1  # CAP_CHOWN


# ---- create, start, ps, exec, kill, pause, delete ------------------------------------------


def test_create_start_ps_kill_delete(ctr: ContainerdEnv) -> None:
    ctr.ok(
        "containers",
        "create",
        "--memory-limit",
        str(64 << 20),
        ctr.image,
        "life",
        "--",
        "sh",
        "-c",
        TRAP_TERM,
    )
    assert "life" in ctr.ok("containers", "ls", "--quiet").split()
    assert ctr.task_status("life") is None  # no task before start
    ctr.ok("task", "start", "-d", "life")
    assert ctr.task_status("life") == "RUNNING"
    pid = ctr.task_pid("life")
    # ctr placed it in /NAMESPACE/ID; the limit is in the host's cgroup file
    assert cgroup_of(pid, "memory") == f"{ctr.cgroup_parent}/life"
    assert cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(64 << 20)
    ready(ctr, "life")
    # ps: the pids the runtime reports are the container's, as the host sees them
    ctr.ok("task", "exec", "--exec-id", "bg", "life", "sh", "-c", "sleep 1000 &")
    ps = [int(line.split()[0]) for line in ctr.ok("task", "ps", "life").splitlines()[1:]]
    procs = {int(p) for p in cgroup_file(pid, "memory", "cgroup.procs").split()}
    assert pid in ps
    assert set(ps) == procs
    assert len(ps) == 3  # the shell and two sleeps
    # SIGTERM reaches PID 1's handler: the task stops with its exit status
    ctr.ok("task", "kill", "life")
    assert wait_for(lambda: ctr.task_status("life") == "STOPPED")
    res = ctr.ctr("task", "delete", "life")
    assert res.returncode == 0
    assert "exit code 42" in res.stderr
    assert ctr.task_status("life") is None
    ctr.ok("containers", "rm", "life")
    assert not os.path.isdir(f"/sys/fs/cgroup/memory{ctr.cgroup_parent}/life")


def test_kill_with_sigkill(ctr: ContainerdEnv) -> None:
    detached(ctr, "killed")
    ctr.ok("task", "kill", "--signal", "SIGKILL", "killed")
    assert wait_for(lambda: ctr.task_status("killed") == "STOPPED")
    res = ctr.ctr("task", "delete", "killed")
    assert "exit code 137" in res.stderr
    ctr.ok("containers", "rm", "killed")


def test_kill_all(ctr: ContainerdEnv) -> None:
    pid = detached(ctr, "killall", "sh", "-c", "sleep 1000 & sleep 1001")
    ctr.ok("task", "kill", "--all", "--signal", "SIGKILL", "killall")
    assert wait_for(lambda: ctr.task_status("killall") == "STOPPED")
    assert wait_for(lambda: not os.path.exists(f"/proc/{pid}"))
    ctr.ctr("task", "delete", "killall")
    ctr.ok("containers", "rm", "killall")


def test_exec(ctr: ContainerdEnv) -> None:
    pid = detached(ctr, "ex")
    res = ctr.ctr(
        "task", "exec", "--exec-id", "e1", "ex", "sh", "-c", "echo out; echo err >&2; exit 7"
    )
    assert (res.returncode, res.stdout, res.stderr) == (7, "out\n", "err\n")
    out = ctr.ok(
        "task", "exec", "--exec-id", "e2", "--cwd", "/tmp", "--user", "65534", "ex",
        "sh", "-c", "readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; pwd; id -u",
    )  # fmt: skip
    assert out.splitlines() == [
        os.readlink(f"/proc/{pid}/ns/pid"),
        os.readlink(f"/proc/{pid}/ns/mnt"),
        "/tmp",
        "65534",
    ]
    remove(ctr, "ex")


def test_exec_with_a_tty(ctr: ContainerdEnv) -> None:
    detached(ctr, "ext")
    rc, out = run_in_pty(
        ctr.argv("task", "exec", "--exec-id", "t1", "-t", "ext", "sh", "-c", "tty; exit 3"), ctr.env
    )
    assert rc == 3
    assert out.splitlines()[0].startswith("/dev/pts/")
    remove(ctr, "ext")


def test_pause_and_resume(ctr: ContainerdEnv) -> None:
    pid = detached(ctr, "pz", "sh", "-c", "while :; do date +%s%N > /tick; sleep 0.05; done")
    ctr.ok("task", "pause", "pz")
    assert ctr.task_status("pz") == "PAUSED"
    assert cgroup_file(pid, "freezer", "freezer.state") == "FROZEN"
    ctr.ok("task", "resume", "pz")
    assert ctr.task_status("pz") == "RUNNING"
    assert cgroup_file(pid, "freezer", "freezer.state") == "THAWED"
    tick = ctr.ok("task", "exec", "--exec-id", "t", "pz", "cat", "/tick")
    assert wait_for(lambda: ctr.ok("task", "exec", "--exec-id", "t", "pz", "cat", "/tick") != tick)
    remove(ctr, "pz")


def test_metrics(ctr: ContainerdEnv) -> None:
    detached(ctr, "met", opts=("--memory-limit", str(32 << 20)))
    out = ctr.ok("task", "metrics", "met")
    fields = dict(
        line.split(None, 1) for line in out.splitlines() if line.strip() and " " in line.strip()
    )
    assert fields["memory.limit_in_bytes"].strip() == str(32 << 20)
    assert int(fields["pids.current"]) == 1
    remove(ctr, "met")


# ---- mounts and namespaces ----------------------------------------------------------------


def test_bind_mounts(ctr: ContainerdEnv, tmp_path: Path) -> None:
    (tmp_path / "in").write_text("from host\n")
    rc, out, _ = run(
        ctr, "rw", "sh", "-c", "cat /data/in; echo from container > /data/out",
        opts=("--mount", f"type=bind,src={tmp_path},dst=/data,options=rbind:rw"),
    )  # fmt: skip
    assert (rc, out) == (0, "from host\n")
    assert (tmp_path / "out").read_text() == "from container\n"
    rc, _, err = run(
        ctr, "ro", "sh", "-c", "echo x > /data/x",
        opts=("--mount", f"type=bind,src={tmp_path},dst=/data,options=rbind:ro"),
    )  # fmt: skip
    assert rc != 0
    assert "Read-only file system" in err
    assert not (tmp_path / "x").exists()


def test_read_only_root(ctr: ContainerdEnv) -> None:
    rc, _, err = run(ctr, "rdonly", "touch", "/x", opts=("--read-only",))
    assert rc != 0
    assert "Read-only file system" in err


def test_namespaces(ctr: ContainerdEnv) -> None:
    pid = detached(ctr, "nsnew")
    for kind in ("mnt", "uts", "ipc", "pid", "net"):
        assert os.readlink(f"/proc/{pid}/ns/{kind}") != os.readlink(f"/proc/self/ns/{kind}"), kind
    assert ctr.ok("task", "exec", "--exec-id", "l", "nsnew", "ls", "/sys/class/net") == "lo"
    remove(ctr, "nsnew")
    rc, out, _ = run(ctr, "nethost", "readlink", "/proc/self/ns/net", opts=("--net-host",))
    assert (rc, out.strip()) == (0, os.readlink("/proc/self/ns/net"))


def test_join_namespaces_by_path(ctr: ContainerdEnv) -> None:
    first = detached(ctr, "first")
    second = detached(
        ctr, "second",
        opts=("--with-ns", f"network:/proc/{first}/ns/net", "--with-ns", f"ipc:/proc/{first}/ns/ipc"),
    )  # fmt: skip
    for kind in ("net", "ipc"):
        assert os.readlink(f"/proc/{second}/ns/{kind}") == os.readlink(f"/proc/{first}/ns/{kind}")
    for kind in ("mnt", "pid", "uts"):
        assert os.readlink(f"/proc/{second}/ns/{kind}") != os.readlink(f"/proc/{first}/ns/{kind}")
    remove(ctr, "second")
    remove(ctr, "first")


# ---- what containerd leaves ----------------------------------------------------------------


def system_state() -> dict[str, float]:
    out = {}
    for d in ("/var/lib/containerd", "/run/containerd", "/opt/containerd", "/var/lib/containers"):
        out[d] = os.stat(d).st_mtime if os.path.exists(d) else -1.0
    return out


@pytest.mark.parametrize("runtime", runtimes_under_test())
def test_cleanup_leaves_nothing(runtime: str) -> None:
    """A fresh daemon with running and paused tasks, an exec, a stopped task
    and a bare container: its cleanup forces nothing, and the host is as it
    was (mounts, cgroups, children, fds, interfaces; containerd's system
    directories)."""
    before, system = HostState.now(), system_state()
    work = Path(tempfile.mkdtemp(prefix="pynsbind-oci-"))
    env = new_env(runtime, work)
    try:
        detached(env, "a")
        detached(env, "b")
        env.ok("task", "pause", "b")
        env.ok("task", "exec", "--exec-id", "x", "--detach", "a", "sleep", "1000")
        detached(env, "c", "true")
        env.ok("containers", "create", env.image, "d", "true")
        assert len(env.ok("containers", "ls", "--quiet").split()) == 4
        assert cgroup_dirs(env.cgroup_parent)
    finally:
        forced = env.cleanup()
        shutil.rmtree(work)
    assert forced == []
    assert not cgroup_dirs(env.cgroup_parent)
    assert wait_for(lambda: before.diff(HostState.now()) == {}, 10), before.diff(HostState.now())
    assert system_state() == system
