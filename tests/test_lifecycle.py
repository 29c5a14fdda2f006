"""A container's lifecycle, for OCI runtimes and docker-run-like sandboxes: a
terminal made inside the container, create then start (in process, or through a
FIFO gate from another process), and the setup hook.  Real containers, observed
from inside (busybox) and from the host."""

from __future__ import annotations

import asyncio
import errno
import gc
import json
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

import pytest

import pynsbind
from pynsbind import Mount, Namespace, SpawnError, Spec, SpecError
from pynsbind.seccomp import Action, Notification, Response, SeccompProfile, SyscallRule
from pynsbind.testing import Options, spawn_with
from tests import helpers
from tests.helpers import HostState, children, host_ns, make_rootfs, wait_for, wait_gone

pytestmark = [pytest.mark.root, pytest.mark.vm]

MODES = {
    "default": Options(),
    "legacy-mount": Options(legacy_mount=True),
    "fork": Options(clone_vm=False),
    "legacy-clone": Options(legacy_clone=True),
    "all-fallbacks": Options(legacy_mount=True, legacy_clone=True, clone_vm=False),
}
PTS_MAJOR = 136  # /dev/pts/N
PTMX = (5, 2)  # /dev/ptmx: what a pty's master is


def read_terminal(f: IO[bytes] | None, limit: float = 60.0) -> str:
    """What the container wrote to its terminal, to the end: the master reads
    EIO once no process holds the slave (Linux's end of a pty).  The limit
    detects a hang, it measures nothing.  Line ends as the pty makes them
    (\\r\\n) become \\n."""
    assert f is not None
    fd, chunks = f.fileno(), []
    deadline = time.monotonic() + limit
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"the terminal never ended: {b''.join(chunks)!r}"
        if not select.select([fd], [], [], left)[0]:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


def read_until(f: IO[bytes] | None, marker: str, limit: float = 60.0) -> str:
    """What the terminal shows up to ``marker`` (a failure detector's limit)."""
    assert f is not None
    seen = ""
    deadline = time.monotonic() + limit
    while marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{marker!r} never came: {seen!r}"
        if select.select([f], [], [], left)[0]:
            data = os.read(f.fileno(), 4096)
            assert data, seen
            seen += data.decode(errors="replace").replace("\r\n", "\n")
    return seen


def fd_devices(pid: int) -> dict[int, tuple[int, int] | None]:
    """The device (major, minor) behind each fd of a process, seen from the host
    (None: not a device)."""
    out: dict[int, tuple[int, int] | None] = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            st = os.stat(f"/proc/{pid}/fd/{name}")
        except FileNotFoundError:
            continue
        dev = stat.S_ISCHR(st.st_mode)
        out[int(name)] = (os.major(st.st_rdev), os.minor(st.st_rdev)) if dev else None
    return out


def fd_links(pid: int) -> dict[int, str]:
    return {
        int(n): os.readlink(f"/proc/{pid}/fd/{n}") for n in sorted(os.listdir(f"/proc/{pid}/fd"))
    }


def proc_state(pid: int) -> str:
    return helpers.status_field("State", pid)


def stat_fields(line: str) -> list[str]:
    """/proc/PID/stat after the command name: state, ppid, pgrp, session, tty_nr,
    tpgid..."""
    return line[line.rindex(")") + 2 :].split()


# =====================================================================================
# the terminal
# =====================================================================================


@pytest.mark.parametrize("mode", list(MODES), ids=list(MODES))
def test_the_terminal_is_the_containers_own_controlling_tty(
    mode: str, rootfs: str, host_unchanged: HostState
) -> None:
    """stdin, stdout and stderr are the slave of a pty of the container's devpts:
    ttyname() names it (/dev/pts/0: its devpts is new), the window is
    console_size, it is the session's controlling terminal with the command's
    group in the foreground, and PID 1 holds nothing else."""
    script = (
        "busybox tty; busybox stty size; cat /proc/self/stat; "
        "ls /proc/1/fd; for n in 0 1 2; do readlink /proc/1/fd/$n; done"
    )
    spec = Spec(
        args=["/bin/sh", "-c", script], rootfs=rootfs, terminal=True, console_size=(30, 100)
    )
    with spawn_with(spec, MODES[mode]) as proc:
        assert proc.stdin is None and proc.stdout is None and proc.terminal is not None
        lines = read_terminal(proc.terminal).splitlines()
        assert proc.wait() == 0, lines
    assert lines[0] == "/dev/pts/0"  # busybox tty: isatty, then ttyname
    assert lines[1] == "30 100"
    fields = stat_fields(lines[2])
    pgrp, session, tty_nr, tpgid = (int(x) for x in fields[2:6])
    assert tty_nr != 0 and session == 1 and tpgid == pgrp  # its ctty, its group in front
    assert lines[3].split() == ["0", "1", "2"]  # (ls: a child, PID 1 itself opens nothing)
    assert lines[4:7] == ["/dev/pts/0"] * 3


def test_the_master_is_never_in_the_container(rootfs: str) -> None:
    """From the host: the container's process holds the slave only (at the gate
    too), never a ptmx; the spawner holds the master."""
    spec = Spec(args=["/bin/sleep", "60"], rootfs=rootfs, terminal=True)
    with pynsbind.spawn(spec, start=False) as proc:
        assert proc.terminal is not None
        master = os.fstat(proc.terminal.fileno())
        assert (os.major(master.st_rdev), os.minor(master.st_rdev)) == PTMX
        waiting = fd_devices(proc.pid)
        assert PTMX not in waiting.values(), fd_links(proc.pid)
        assert {waiting[i][0] for i in (0, 1, 2) if waiting[i]} == {PTS_MAJOR}
        proc.start()
        assert wait_for(lambda: fd_devices(proc.pid).keys() == {0, 1, 2})
        running = fd_devices(proc.pid)
        assert all(dev is not None and dev[0] == PTS_MAJOR for dev in running.values())


@pytest.mark.parametrize("pidns", [True, False], ids=["init", "no-pid-namespace"])
def test_ctrl_c_through_the_master_reaches_the_foreground_process(
    rootfs: str, pidns: bool, host_unchanged: HostState
) -> None:
    """^C typed into the master: the line discipline sends SIGINT to the
    terminal's foreground group, which is the command's (with an init, the
    init hands the foreground to the command; without a pid namespace the
    command is no PID 1 and SIGINT's default applies)."""
    if pidns:
        spec = Spec(args=["/bin/cat"], rootfs=rootfs, terminal=True, init=True)
    else:
        spec = Spec(
            args=["/bin/cat"],
            rootfs=rootfs,
            terminal=True,
            namespaces=Namespace.MNT | Namespace.UTS | Namespace.IPC,
        )
    with pynsbind.spawn(spec) as proc:
        assert proc.terminal is not None
        proc.terminal.write(b"ping\n")
        read_until(proc.terminal, "ping\nping\n")  # the echo, then cat's copy
        proc.terminal.write(b"\x03")
        assert proc.wait(60) == -signal.SIGINT


def test_with_an_init_the_command_leads_the_foreground_and_signals_and_status_work(
    rootfs: str, host_unchanged: HostState
) -> None:
    """init=True with a terminal: the init's stdio is the terminal too; the
    command is in a group of its own in the foreground (so ^C is for it, not
    the init); terminate() still reaches it through the init; exit statuses are
    relayed."""
    spec = Spec(
        args=["/bin/sh", "-c", "cat /proc/self/stat; exit 7"],
        rootfs=rootfs,
        terminal=True,
        init=True,
    )
    with pynsbind.spawn(spec) as proc:
        out = read_terminal(proc.terminal)
        assert proc.wait() == 7, out
    fields = stat_fields(out.splitlines()[0])
    pgrp, session, tpgid = int(fields[2]), int(fields[3]), int(fields[5])
    assert session == 1 and pgrp != 1 and tpgid == pgrp  # not the init's group: the command's
    spec = Spec(args=["/bin/sleep", "60"], rootfs=rootfs, terminal=True, init=True)
    with pynsbind.spawn(spec) as proc:
        init_fds = fd_devices(proc.pid)
        proc.terminate()
        assert proc.wait(60) == -signal.SIGTERM
    assert PTMX not in init_fds.values()
    assert [init_fds[i] and init_fds[i][0] for i in (0, 1, 2)] == [PTS_MAJOR] * 3


def test_resize_sends_the_new_window_to_the_container(rootfs: str) -> None:
    spec = Spec(
        args=["/bin/sh", "-c", "read x; busybox stty size"],
        rootfs=rootfs,
        terminal=True,
        console_size=(24, 80),
    )
    with pynsbind.spawn(spec) as proc:
        with pytest.raises(ValueError, match="rows must be an int from 1 to 65535"):
            proc.resize(0, 80)
        proc.resize(40, 120)
        assert proc.terminal is not None
        proc.terminal.write(b"go\n")
        out = read_terminal(proc.terminal)
        assert proc.wait() == 0
    assert out.splitlines()[-1] == "40 120"
    plain = pynsbind.spawn(Spec(args=["/bin/true"], rootfs=rootfs))
    with plain, pytest.raises(ValueError, match="has no terminal"):
        plain.resize(24, 80)


def test_the_terminal_belongs_to_the_containers_user(rootfs: str) -> None:
    """Made with the container's final ids: a user's terminal is theirs (mode
    620, group tty from devpts's gid=5), as a login's is."""
    spec = Spec(
        args=["/bin/sh", "-c", "stat -L -c '%u %g %a' /proc/self/fd/0; id -u"],
        rootfs=rootfs,
        terminal=True,
        user=(1000, 1000),
    )
    with pynsbind.spawn(spec) as proc:
        out = read_terminal(proc.terminal).split()
        assert proc.wait() == 0
    assert out == ["1000", "5", "620", "1000"]


def test_without_a_mount_namespace_the_terminal_is_the_hosts(rootfs: str) -> None:
    """No mount namespace: the container's /dev is the host's, and so is its ptmx."""
    spec = Spec(
        args=["/bin/sh", "-c", "busybox tty"],
        namespaces=Namespace.PID | Namespace.UTS,
        terminal=True,
        env={"PATH": f"{rootfs}/bin"},
    )
    with pynsbind.spawn(spec) as proc:
        name = read_terminal(proc.terminal).strip()
        assert proc.wait() == 0
    assert name.startswith("/dev/pts/")


def test_terminal_refusals(rootfs: str, host_unchanged: HostState) -> None:
    spec = Spec(args=["/bin/true"], rootfs=rootfs, terminal=True)
    for stdio in ("stdin", "stdout", "stderr"):
        with pytest.raises(SpecError, match=f"{stdio}: a container with terminal=True"):
            pynsbind.spawn(spec, **{stdio: pynsbind.PIPE})
    with pytest.raises(SpecError, match=r"terminal: run\(\) does not drive a terminal"):
        pynsbind.run(spec=spec)
    with pytest.raises(SpecError, match="terminal: the container has no devpts"):
        Spec(args=["/bin/true"], rootfs=rootfs, terminal=True, mounts=[Mount.proc()])
    # a devpts of its own, without Mount.dev(): the rootfs's /dev holds it
    devpts = spec.replace(
        args=["/bin/sh", "-c", "busybox tty"], mounts=[Mount.proc(), Mount.devpts()]
    )
    with pynsbind.spawn(devpts) as proc:
        assert read_terminal(proc.terminal).strip() == "/dev/pts/0"
        assert proc.wait() == 0


# =====================================================================================
# create, then start
# =====================================================================================


def _caller_argv() -> bytes:
    with open("/proc/self/cmdline", "rb") as f:
        return f.read()


@pytest.mark.parametrize("mode", list(MODES), ids=list(MODES))
def test_a_created_container_is_set_up_and_waits_for_start(
    mode: str, rootfs: str, host_unchanged: HostState
) -> None:
    """spawn(start=False) returns once every op but the exec is done: the
    waiting process is in its namespaces and mounts, under its seccomp filter,
    holds nothing of the caller's (stdio, the engine's socket and its sealed
    init only), has zeroed its copy of the caller's argv, and blocks no signal
    but those that dump core; start() lets it exec."""
    spec = Spec(args=["/bin/sh", "-c", "echo started $$"], rootfs=rootfs, hostname="made")
    proc = spawn_with(spec, MODES[mode], stdout=pynsbind.PIPE, start=False)
    with proc:
        assert "created" in repr(proc)
        pid = proc.pid
        assert wait_for(lambda: proc_state(pid).startswith("S"))
        assert host_ns("mnt", pid) != host_ns("mnt") and host_ns("uts", pid) != host_ns("uts")
        mounts = Path(f"/proc/{pid}/mountinfo").read_text()
        assert " /dev/pts " in mounts and " /proc " in mounts  # pivoted: its own root
        assert helpers.status_field("Seccomp", pid) == "2"
        links = fd_links(pid)
        assert set(links) - {0, 1, 2} and all(
            link.startswith(("socket:", "/memfd:pynsbind-init"))
            for n, link in links.items()
            if n > 2
        ), links
        assert links[1].startswith("pipe:")
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert cmdline.strip(b"\0") == b"" and _caller_argv().strip(b"\0")
        blocked = int(helpers.status_field("SigBlk", pid), 16)
        assert blocked & (1 << (signal.SIGSEGV - 1)) and not blocked & (1 << (signal.SIGTERM - 1))
        assert proc.stdout is not None
        assert not select.select([proc.stdout], [], [], 0.2)[0]  # nothing ran yet
        proc.start()
        assert "running" in repr(proc) or proc.returncode is not None
        assert proc.stdout.read() == b"started 1\n"
        assert proc.wait() == 0
        with pytest.raises(ProcessLookupError):
            proc.start()


def test_start_twice_or_on_a_started_container_is_refused(rootfs: str) -> None:
    with pynsbind.spawn(Spec(args=["/bin/sleep", "60"], rootfs=rootfs), start=False) as proc:
        proc.start()
        with pytest.raises(ValueError, match="is started already"):
            proc.start()
    with (
        pynsbind.spawn(Spec(args=["/bin/true"], rootfs=rootfs)) as proc,
        pytest.raises(ValueError, match="is started already"),
    ):
        proc.start()


@pytest.mark.parametrize("init", [False, True], ids=["plain", "init"])
def test_a_command_missing_fails_the_creation(rootfs: str, init: bool, host_unchanged: Any) -> None:
    with pytest.raises(SpawnError, match="executable file not found in") as info:
        pynsbind.spawn(Spec(args=["nosuchcmd"], rootfs=rootfs, init=init), start=False)
    assert isinstance(info.value, FileNotFoundError)


@pytest.mark.parametrize("init", [False, True], ids=["plain", "init"])
def test_an_exec_that_fails_after_start_is_reported_by_start(
    tmp_path: Path, init: bool, host_unchanged: HostState
) -> None:
    """The command is there at create time, removed before start: start()
    raises the exec's SpawnError, as spawn() would, and nothing is left."""
    busybox = helpers.find_busybox()
    if busybox is None:
        pytest.skip("needs a static busybox")
    root = make_rootfs(tmp_path / "root", busybox, applets=["sh"])
    shutil.copy(busybox, root / "bin" / "victim")
    spec = Spec(args=["/bin/victim", "true"], rootfs=str(root), init=init)
    proc = pynsbind.spawn(spec, start=False)
    os.unlink(root / "bin" / "victim")
    with pytest.raises(
        SpawnError, match=r"exec '/bin/victim'.*: executable file not found"
    ) as info:
        proc.start()
    assert isinstance(info.value, FileNotFoundError)
    assert proc.returncode is not None  # killed and reaped
    assert proc.pid not in children()


def test_a_created_container_killed_or_dropped_leaves_nothing(
    rootfs: str, host_unchanged: HostState
) -> None:
    spec = Spec(args=["/bin/true"], rootfs=rootfs, resources=None)
    proc = pynsbind.spawn(spec, start=False)
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    # dropped: nobody else can start it (no gate), so it goes with its object,
    # and the next spawn reaps it
    proc = pynsbind.spawn(spec, start=False)
    pid = proc.pid
    del proc
    gc.collect()
    assert wait_for(lambda: proc_state(pid).startswith("Z"))
    pynsbind.run(["/bin/true"], rootfs=rootfs)
    assert pid not in children()


def test_a_created_container_takes_signals_as_its_process_would(rootfs: str) -> None:
    """Waiting at the gate, the process is not shielded from signals: outside a
    pid namespace of its own SIGTERM ends it (its default)."""
    spec = Spec(args=["/bin/true"], rootfs=rootfs, namespaces=Namespace.MNT | Namespace.UTS)
    with pynsbind.spawn(spec, start=False) as proc:
        assert wait_for(lambda: proc_state(proc.pid).startswith("S"))
        proc.terminate()
        assert proc.wait(60) == -signal.SIGTERM


@pytest.mark.parametrize("init", [False, True], ids=["plain", "init"])
def test_a_gate_is_a_fifo_any_process_can_start(
    rootfs: str, tmp_path: Path, init: bool, host_unchanged: HostState
) -> None:
    """gate=PATH: spawn makes a 0600 FIFO there; another process starts the
    container with pynsbind.start_gate(PATH), which removes the FIFO; the
    spawner's Process sees the command run and end."""
    gate = tmp_path / "gate"
    spec = Spec(args=["/bin/echo", "through the gate"], rootfs=rootfs, init=init)
    with pynsbind.spawn(spec, stdout=pynsbind.PIPE, start=False, gate=gate) as proc:
        st = os.lstat(gate)
        assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_uid == os.geteuid()
        # the FIFO, the engine's socket and sealed init, and nothing else of the host's
        extra = sorted(
            "socket" if link.startswith("socket:") else link
            for n, link in fd_links(proc.pid).items()
            if n > 2
        )
        assert extra == sorted([str(gate), "/memfd:pynsbind-init (deleted)", "socket"])
        starter = subprocess.run(
            [sys.executable, "-c", "import sys, pynsbind; pynsbind.start_gate(sys.argv[1])", gate],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert starter.returncode == 0, starter.stderr
        assert not gate.exists()
        assert proc.stdout is not None
        assert proc.stdout.read() == b"through the gate\n"
        assert proc.wait() == 0
    with pytest.raises(FileNotFoundError, match="no gate at"):
        pynsbind.start_gate(gate)


def test_a_gated_process_joining_a_pid_namespace_starts(
    rootfs: str, tmp_path: Path, host_unchanged: HostState
) -> None:
    """A container created into another's pid namespace (a pod's, as podman
    asks) keeps its gate through the fds closed before it enters the namespace,
    waits there, and runs once started: seen from the host (its pid namespace
    is the other's) and from inside (the other's pid 1 is its pid 1)."""
    first = Spec(args=["/bin/sleep", "60"], rootfs=rootfs)
    with pynsbind.spawn(first) as pod:
        gate = tmp_path / "gate"
        spec = Spec(
            args=["/bin/sh", "-c", "cat /proc/1/cmdline"],
            rootfs=rootfs,
            namespaces=Namespace.MNT | Namespace.UTS | Namespace.IPC,
            join={Namespace.PID: f"/proc/{pod.pid}/ns/pid"},
        )
        with pynsbind.spawn(spec, stdout=pynsbind.PIPE, start=False, gate=gate) as proc:
            time.sleep(0.2)  # it waits at the gate: it has not failed meanwhile
            assert proc.poll() is None
            assert host_ns("pid", proc.pid) == host_ns("pid", pod.pid)
            pynsbind.start_gate(gate)
            assert proc.stdout is not None
            assert proc.stdout.read() == b"/bin/sleep\x0060\x00"
            assert proc.wait() == 0
        pod.kill()


def test_a_released_process_is_left_to_its_parent(
    rootfs: str, tmp_path: Path, host_unchanged: HostState
) -> None:
    """release(): the Process closes what it held of the container (pidfd,
    sync socket, the gate's fds) and never reaps it, even when dropped; the
    gate stays for start_gate, and the caller, its parent, reaps it."""
    gate = tmp_path / "gate"
    spec = Spec(args=["/bin/sh", "-c", "exit 7"], rootfs=rootfs)
    proc = pynsbind.spawn(spec, start=False, gate=gate)
    pid, pidfd = proc.pid, proc.pidfd
    cg = proc.release()  # the cgroup made for its device rules, now ours
    assert proc.pidfd == -1 and proc.returncode is None
    with pytest.raises(ValueError, match="released"):
        proc.poll()
    with pytest.raises(OSError):
        os.fstat(pidfd)  # closed (nothing else took the number meanwhile)
    del proc
    gc.collect()
    pynsbind.start_gate(gate)
    _, status = os.waitpid(pid, 0)  # still ours: nothing reaped it
    assert os.waitstatus_to_exitcode(status) == 7
    assert not gate.exists()
    if cg is not None:
        cg.delete()


def test_a_gate_in_process_start_and_kill_remove_the_fifo(
    rootfs: str, tmp_path: Path, host_unchanged: HostState
) -> None:
    gate = tmp_path / "gate"
    spec = Spec(args=["/bin/true"], rootfs=rootfs)
    with pynsbind.spawn(spec, start=False, gate=gate) as proc:
        proc.start()  # writes into the gate itself, and reports as start() does
        assert proc.wait() == 0
    assert not gate.exists()
    proc = pynsbind.spawn(spec, start=False, gate=gate)
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    assert not gate.exists()


_SUBREAPER = """
import ctypes, json, os, sys
import pynsbind
from pynsbind import Spec

root, gate = sys.argv[1:3]
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER, as conmon does
r, w = os.pipe()
creator = os.fork()
if creator == 0:
    os.close(r)
    spec = Spec(args=["/bin/sh", "-c", "echo started by $PPID; exit 3"], rootfs=root)
    proc = pynsbind.spawn(spec, start=False, gate=gate)
    os.write(w, str(proc.pid).encode())
    os._exit(0)  # the creator goes: neither started nor reaped
os.close(w)
pid = int(os.read(r, 64))
os.waitpid(creator, 0)
with open(f"/proc/{pid}/stat") as f:
    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
sys.stdout.flush()
pynsbind.start_gate(gate)
_, status = os.waitpid(pid, 0)
print(json.dumps({"me": os.getpid(), "creator": creator, "pid": pid, "ppid": ppid,
                  "rc": os.waitstatus_to_exitcode(status)}), flush=True)
"""


def test_the_creator_may_exit_and_a_subreaper_adopts_and_starts(
    rootfs: str, tmp_path: Path, host_unchanged: HostState
) -> None:
    """conmon's way: a subreaper forks the creator, which creates the container
    with a gate and exits; the waiting process is re-parented to the subreaper,
    which starts it through the gate and reaps it.  The container's cgroup was
    the creator's: what a dead spawner leaves (pynsbind.cleanup())."""
    gate = tmp_path / "gate"
    res = subprocess.run(
        [sys.executable, "-c", _SUBREAPER, rootfs, str(gate)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    report = json.loads(lines[-1])
    assert report["ppid"] == report["me"] != report["creator"]
    assert report["rc"] == 3
    assert lines[0] == "started by 0"  # PID 1 of its namespace, its parent outside
    assert not gate.exists()
    left = helpers.pynsbind_cgroups(pid=report["creator"])
    assert helpers.remove_cgroups(left) == []


def test_gate_refusals(rootfs: str, tmp_path: Path, host_unchanged: HostState) -> None:
    spec = Spec(args=["/bin/true"], rootfs=rootfs)
    with pytest.raises(SpecError, match="gate: a gate is for a container created without"):
        pynsbind.spawn(spec, gate=tmp_path / "g")
    there = tmp_path / "there"
    there.write_text("keep")
    with pytest.raises(SpecError, match="exists already"):
        pynsbind.spawn(spec, start=False, gate=there)
    assert there.read_text() == "keep"
    with pytest.raises(SpecError, match=r"gate: .* no such file or directory"):
        pynsbind.spawn(spec, start=False, gate=tmp_path / "nodir" / "g")
    notify = SeccompProfile(default_action=Action.NOTIFY)
    with pytest.raises(SpecError, match="SCMP_ACT_NOTIFY"):
        pynsbind.spawn(spec.replace(seccomp=notify), start=False, gate=tmp_path / "g")
    assert not (tmp_path / "g").exists()
    with pytest.raises(SpecError, match="is not a gate"):
        pynsbind.start_gate(there)
    os.mkfifo(tmp_path / "lonely", 0o600)
    with pytest.raises(ProcessLookupError, match="no container waits at the gate"):
        pynsbind.start_gate(tmp_path / "lonely")


def test_a_created_container_with_a_notify_profile_starts(rootfs: str) -> None:
    """A filter that notifies every call: the engine's own calls at the gate
    (its report, the wait, the mask) are let through by the spawn and then by
    start(); the container's are the handler's."""
    calls: list[str] = []

    def handler(note: Notification) -> Response:
        calls.append(note.syscall)
        return Response.allow()

    spec = Spec(
        args=["/bin/true"], rootfs=rootfs, seccomp=SeccompProfile(default_action=Action.NOTIFY)
    )

    async def main() -> int:
        proc = pynsbind.spawn(spec, start=False)
        proc.start()
        serving = asyncio.ensure_future(proc.serve_seccomp(handler))
        rc = await proc.wait_async()
        await asyncio.wait_for(serving, 30)
        return rc

    assert asyncio.run(main()) == 0
    assert "exit_group" in calls or "exit" in calls


def test_a_rootless_created_container_with_a_notify_profile_starts(rootfs: str) -> None:
    """An unprivileged caller takes the listener with pidfd_getfd, which a
    non-dumpable process refuses it: the waiting process becomes non-dumpable
    only once the filter is loaded."""
    profile = SeccompProfile(
        default_action=Action.ALLOW,
        syscalls=(SyscallRule(names=("mkdir", "mkdirat"), action=Action.NOTIFY),),
    )

    def create_then_start() -> tuple[int, bool]:
        proc = pynsbind.spawn(Spec(args=["/bin/true"], rootfs=rootfs, seccomp=profile), start=False)
        with proc:
            listening = proc.seccomp_listener is not None
            proc.start()
            return proc.wait(), listening

    assert helpers.in_child(create_then_start, uid=65534) == (0, True)


def test_a_created_container_with_a_terminal(rootfs: str, host_unchanged: HostState) -> None:
    spec = Spec(args=["/bin/sh", "-c", "busybox tty"], rootfs=rootfs, terminal=True, init=True)
    with pynsbind.spawn(spec, start=False) as proc:
        proc.start()
        assert read_terminal(proc.terminal).strip() == "/dev/pts/0"
        assert proc.wait() == 0


# =====================================================================================
# the setup hook
# =====================================================================================


@pytest.mark.parametrize("mode", list(MODES), ids=list(MODES))
def test_the_hook_sees_the_container_before_pivot_root(
    mode: str, rootfs: str, host_unchanged: HostState
) -> None:
    """The hook runs in the spawning thread with the child's host pid, once its
    namespaces and mounts are made and before pivot_root: it sees the mounts
    at their host paths (under the rootfs) and can write into them; the
    container then finds what it wrote."""
    marker = uuid.uuid4().hex
    seen: dict[str, Any] = {}

    def hook(pid: int) -> None:
        seen["pid"] = pid
        seen["thread"] = threading.get_ident()
        seen["mnt"] = host_ns("mnt", pid)
        seen["mounts"] = [
            line.split()[4] for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
        ]
        Path(f"/proc/{pid}/root{rootfs}/tmp/from-hook").write_text(marker)

    spec = Spec(
        args=["/bin/cat", "/tmp/from-hook"],
        rootfs=rootfs,
        mounts=[*pynsbind.default_mounts(), Mount.tmpfs("/tmp")],
        hook=hook,
    )
    proc = spawn_with(spec, MODES[mode], stdout=pynsbind.PIPE)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out == marker.encode()
    assert seen["pid"] == proc.pid and seen["thread"] == threading.get_ident()
    assert seen["mnt"] != host_ns("mnt")
    assert f"{rootfs}/tmp" in seen["mounts"] and f"{rootfs}/dev/pts" in seen["mounts"]
    assert not Path(f"{rootfs}/tmp/from-hook").exists()  # it went into the container's tmpfs


def test_the_hook_runs_after_the_id_maps_and_without_a_mount_namespace(rootfs: str) -> None:
    maps: list[str] = []

    def hook(pid: int) -> None:
        maps.append(Path(f"/proc/{pid}/uid_map").read_text().split())
        maps.append(host_ns("pid", pid))

    spec = Spec(
        args=[f"{rootfs}/bin/true"],
        namespaces=Namespace.USER | Namespace.PID | Namespace.UTS,
        uid_map=[(0, 100000, 65536)],
        gid_map=[(0, 100000, 65536)],
        hook=hook,
    )
    assert pynsbind.run(spec=spec).returncode == 0
    assert maps[0] == ["0", "100000", "65536"]
    assert maps[1] != host_ns("pid")


def test_a_failing_hook_fails_the_spawn_and_leaves_nothing(
    rootfs: str, host_unchanged: HostState
) -> None:
    pids: list[int] = []

    def hook(pid: int) -> None:
        pids.append(pid)
        raise ValueError("the runtime said no")

    spec = Spec(args=["/bin/true"], rootfs=rootfs, hook=hook)
    with pytest.raises(SpawnError) as info:
        pynsbind.spawn(spec)
    err = info.value
    assert err.stage == "hook" and err.errno == errno.ECANCELED
    assert "call the hook" in str(err) and "ValueError: the runtime said no" in str(err)
    assert isinstance(err.__cause__, ValueError)
    assert len(pids) == 1 and wait_gone(pids[0]) and pids[0] not in children()
    # created without starting, with a gate: the same
    with pytest.raises(SpawnError, match="the runtime said no"):
        pynsbind.spawn(spec, start=False)

    def interrupted(pid: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # not turned into a SpawnError
        pynsbind.spawn(spec.replace(hook=interrupted))


def test_hooks_of_concurrent_spawns_stay_apart(rootfs: str, host_unchanged: HostState) -> None:
    """Eight threads spawn at once, each with its hook: every hook gets its own
    spawn's pid, and a failing hook fails its own spawn only."""
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(5):
                got: list[int] = []
                fail = (n + i) % 3 == 0

                def hook(
                    pid: int, got: list[int] = got, fail: bool = fail, tag: str = f"{n}.{i}"
                ) -> None:
                    got.append(pid)
                    if fail:
                        raise RuntimeError(f"hook {tag}")

                spec = Spec(args=["/bin/true"], rootfs=rootfs, hook=hook)
                if fail:
                    with pytest.raises(SpawnError, match=rf"RuntimeError: hook {n}\.{i}$"):
                        pynsbind.spawn(spec)
                else:
                    with pynsbind.spawn(spec) as proc:
                        assert got == [proc.pid]
                        assert proc.wait() == 0
                assert len(got) == 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_hook_may_spawn_another_container(rootfs: str, host_unchanged: HostState) -> None:
    inner: list[int] = []

    def hook(pid: int) -> None:
        inner.append(pynsbind.run(["/bin/sh", "-c", "exit 5"], rootfs=rootfs).returncode)

    assert pynsbind.run(["/bin/true"], rootfs=rootfs, hook=hook).returncode == 0
    assert inner == [5]
