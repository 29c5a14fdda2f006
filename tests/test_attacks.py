"""Known container escapes, each run for real against the engine: every test runs
the attack and asserts that it fails (the defence holds).

The attacks come from the project's security issue (numbered as there), plus
variants found while writing them.  Each runs a real container (busybox and the
probe, tests/probe.c, inside) and observes from inside and from the host.  A race
is a loop whose count comes from the hypothesis profile (``examples``); timeouts
only detect a hang.  See docs/testing.md.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import select
import shutil
import socket
import stat
import subprocess
import threading
import tty
import uuid
from pathlib import Path
from typing import Any

import pytest

import pynsbind
import pynsbind.lowlevel
from pynsbind import Mount, SpawnError, Spec, SpecError
from tests import attack_helpers as ah
from tests.helpers import (
    HostState,
    become,
    checkpoint,
    children,
    examples,
    in_child,
    kill_pid,
    pynsbind_cgroups,
    remove_cgroups,
    status_field,
    wait_for,
    wait_gone,
)

pytestmark = [pytest.mark.root]
vm = pytest.mark.vm


def marker() -> str:
    return "PYNSBIND-MARK-" + uuid.uuid4().hex


def run_json(spec: Spec, **kw: Any) -> dict[str, Any]:
    """Run spec to the end; the JSON object its last output line is."""
    res = pynsbind.run(spec=spec, capture_output=True, timeout=60, **kw)
    lines = (res.stdout or b"").decode(errors="replace").strip().splitlines()
    assert lines, (res.returncode, res.stderr)
    out: dict[str, Any] = json.loads(lines[-1])
    out["_rc"] = res.returncode
    return out


# =====================================================================================
# 1. exec() hands the host Python to the container
# =====================================================================================

#: The spawner of attack 1, run as its own process (so that what the container
#: reaches is the spawner's, and a hang can be killed): see ah.snoop_session.
SNOOP_SPAWNER = r"""
import json, sys
from tests.attack_helpers import snoop_session
print(json.dumps(snoop_session(json.loads(sys.argv[1]))))
"""


def snoop_attack(
    rootfs: str,
    *,
    init: bool,
    n: int,
    exec_args: list[str],
    victim: int = 0,
    kill: bool = False,
    uid: int | None = None,
) -> dict[str, Any]:
    """Attack 1: the spawner in a process of its own, with the marker in its
    environment from the start and in its argv; with uid, a forked child of this
    process that became uid instead (its environment and argv are this one's)."""
    mark = marker()
    with ah.host_dir() as d:
        secret = d / "secret"
        secret.write_text(f"host secret {mark}\n")
        os.chmod(secret, 0o644)
        args = {
            "marker": mark,
            "rootfs": rootfs,
            "init": init,
            "n": n,
            "exec": exec_args,
            "secret_file": str(secret),
            "victim": victim,
            "kill": kill,
        }
        if uid is not None:
            return in_child(lambda: ah.snoop_session(args), uid=uid)
        env = dict(os.environ, PYNSBIND_ATTACK_SECRET=mark)
        env["PYTHONPATH"] = os.pathsep.join([str(ah.ROOT), env.get("PYTHONPATH", "")])
        return ah.run_script(SNOOP_SPAWNER, args, env=env, extra_argv=(mark,))


@vm
@pytest.mark.parametrize("init", [False, True], ids=["no-init", "init"])
def test_exec_hands_nothing_of_the_host_to_pid1(rootfs: str, init: bool) -> None:
    """A hostile PID 1 (``probe snoop``) opens /proc/N/mem of every process that
    appears in its pid namespace as soon as the kernel lets it (the fd keeps that
    memory, even after an exec), stops the process, reads its cmdline, environ,
    exe, fds and memory, and writes into its memory.  exec() runs /bin/true
    examples(60) times: the processes it makes must show nothing of the spawner
    (its argv, environment, memory, executable, open files) while they are set
    up, and the spawner's memory must stay as it was."""
    got = snoop_attack(rootfs, init=init, n=examples(60), exec_args=["/bin/true"])
    assert_snooped_nothing(got)


def assert_snooped_nothing(got: dict[str, Any]) -> None:
    summary = got["summary"]
    assert summary, got
    assert got["n_errors"] == 0, f"exec() failed {got['n_errors']} times: {got['errors']}"
    assert not got["target_written"] and summary["found"] == 0, (
        f"wrote into the spawner's memory: {got['target_written']}; "
        f"found {summary['kinds']}: {got['found'][:6]}"
    )


@vm
def test_exec_rootless_hands_nothing_of_the_host_to_pid1(rootfs: str) -> None:
    """The same against a spawner that is an unprivileged user (uid 65534, a
    rootless container): the marker is in its memory and a file it holds open."""
    got = snoop_attack(rootfs, init=False, n=examples(60), exec_args=["/bin/true"], uid=65534)
    assert_snooped_nothing(got)


@vm
def test_exec_long_lived_hands_nothing_to_pid1(rootfs: str) -> None:
    """The same with a command that stays (sleep), killed by the spawner."""
    got = snoop_attack(rootfs, init=False, n=examples(20), exec_args=["/bin/sleep", "5"], kill=True)
    assert_snooped_nothing(got)


@vm
def test_exec_cannot_be_pointed_at_a_host_process(rootfs: str) -> None:
    """NEW: PID 1 takes the sync socket of a process exec() is setting up
    (pidfd_getfd) and tells the spawner "the new process is VICTIM", a host
    process.  exec() must not return a Process for the victim, and killing what
    it returned must not kill the victim."""
    victim = subprocess.Popen(["sleep", "300"])
    try:
        got = snoop_attack(
            rootfs,
            init=False,
            n=examples(40),
            exec_args=["/bin/true"],
            victim=victim.pid,
            kill=True,
        )
        alive = victim.poll() is None
    finally:
        victim.kill()
        victim.wait()
    assert not got["victim_returned"], "exec() returned a Process for a host process"
    assert alive, "killing what exec() returned killed a host process"
    assert got["summary"]["kinds"]["hijack"] == 0, got["found"][:8]


@vm
def test_exec_does_not_hang_when_pid1_stops_it(rootfs: str) -> None:
    """NEW: PID 1 SIGSTOPs every process that appears in its namespace and never
    continues it: exec() (examples(20) times) must come back (a SpawnError is
    fine) instead of waiting for ever for a child the container froze.  A
    process the container stops after exec() returned is the container's own
    business: the caller kills it here rather than wait for it."""
    proc = pynsbind.spawn(
        Spec(args=["/bin/probe", "freeze", "600"], rootfs=rootfs),
        stdin=pynsbind.PIPE,
        stdout=pynsbind.PIPE,
    )
    result: list[object] = []

    def call() -> None:
        for _ in range(examples(20)):
            try:
                e = proc.exec(["/bin/true"])
            except Exception as exc:
                result.append(exc)
                continue
            e.kill()
            result.append(e.wait())

    t = threading.Thread(target=call, daemon=True)
    with proc:  # on the way out, kill: the pid namespace goes, the frozen process too
        assert proc.stdout is not None
        proc.stdout.readline()
        t.start()
        t.join(60)  # a hang detector
        hung = t.is_alive()
    t.join(30)
    assert not hung, "exec() hung: the container froze the process it was setting up"


# =====================================================================================
# 2. host block devices are readable and writable by default
# =====================================================================================

WROTE = "CONTAINER-WROTE-HERE"


def assert_disk_untouched(out: dict[str, Any], backing: Path) -> None:
    got = bytes.fromhex(out.get("read_hex", ""))
    assert not ah.LOOP_CONTENT.startswith(got) or not got, (
        f"the container read the host's disk: {got!r} ({out})"
    )
    head = ah.backing_head(backing)
    assert head == ah.LOOP_CONTENT, f"the container wrote to the host's disk: {head!r} ({out})"


@pytest.mark.parametrize(
    "where", ["rootfs", "dev", "user-1000", "tmpfs-with-dev", "host-bind", "existing-node"]
)
def test_host_block_device_is_out_of_reach(rootfs: str, tmp_path: Path, where: str) -> None:
    """mknod of a host block device (a loop device on a file the test wrote), then
    read 16 bytes and write: neither the read nor the write may reach the disk,
    wherever the node is: in the rootfs, in /dev, as a non-root user, on a tmpfs
    or a host directory the spec adds, or already in the rootfs."""
    with ah.private_rootfs(rootfs) as r, ah.host_dir() as d:
        with ah.loop_device(tmp_path) as (_dev, major, minor, backing):
            node = {"dev": "/dev/d", "tmpfs-with-dev": "/mnt/d", "host-bind": "/mnt/d"}.get(
                where, "/tmp/d"
            )
            fields: dict[str, Any] = {}
            if where == "user-1000":
                fields["user"] = 1000
            elif where == "tmpfs-with-dev":
                fields["mounts"] = [*pynsbind.default_mounts(), Mount.tmpfs("/mnt", nodev=False)]
            elif where == "host-bind":
                fields["mounts"] = [*pynsbind.default_mounts(), Mount.bind(d, "/mnt")]
            elif where == "existing-node":
                node = "/disk"
                os.mknod(r / "disk", stat.S_IFBLK | 0o666, os.makedev(major, minor))
            spec = Spec(
                args=["/bin/probe", "devrw", node, "b", str(major), str(minor), WROTE],
                rootfs=str(r),
                **fields,
            )
            out = run_json(spec)
        assert_disk_untouched(out, backing)


def test_sandbox_cli_block_device_is_out_of_reach(tmp_path: Path) -> None:
    """The same through ``pynsbind-run sandbox`` (the host's root, read-only; the
    node in the sandbox's own /dev)."""
    with ah.loop_device(tmp_path) as (_dev, major, minor, backing):
        script = (
            f"mknod /dev/d b {major} {minor} || exit 3; head -c {len(ah.LOOP_CONTENT)} /dev/d;"
            f" printf {WROTE} | dd of=/dev/d conv=notrunc,fsync 2>/dev/null; exit 0"
        )
        res = subprocess.run(
            [ah.CLI, "sandbox", "--", "sh", "-c", script], capture_output=True, timeout=60
        )
    assert res.returncode in (0, 3), res
    assert ah.LOOP_CONTENT not in res.stdout, f"the sandbox read the host's disk: {res.stdout!r}"
    head = ah.backing_head(backing)
    assert head == ah.LOOP_CONTENT, f"the sandbox wrote to the host's disk: {head!r}"


# =====================================================================================
# 3. a symlink race makes a new container's /proc/sys writable
# =====================================================================================


def bad_procs(out: dict[str, Any]) -> list[dict[str, Any]]:
    """The procfs mounts of ``probe procsys`` that are not protected."""
    return [
        m
        for m in out["procs"]
        if m["core_pattern_w"] == 0
        or m["sysrq_w"] == 0
        or not m["keys_masked"]
        or not m["timer_list_masked"]
        or not m["kcore_masked"]
    ]


@vm
def test_proc_symlink_race_never_leaves_proc_unprotected(rootfs: str) -> None:
    """Container A, whose root holds B's root R, swaps R/proc between a directory
    and a symlink to /elsewhere (RENAME_EXCHANGE in a loop) while examples(60)
    containers B start on R: no B may ever get a procfs whose
    /proc/sys/kernel/core_pattern opens for writing or whose keys/timer_list/kcore
    are not masked.  A spawn that fails with a SpawnError is fine."""
    with ah.private_rootfs(rootfs, parent=True) as r:
        outer = r.parent
        (r / "elsewhere").mkdir()
        os.symlink("/elsewhere", r / "proc.alt")
        swapper = pynsbind.spawn(
            Spec(args=["/bin/probe", "swap", "/r/proc", "/r/proc.alt", "600"], rootfs=str(outer)),
            stdin=pynsbind.PIPE,
            stdout=pynsbind.PIPE,
        )
        bad: list[dict[str, Any]] = []
        failed = 0
        try:
            assert swapper.stdout is not None
            swapper.stdout.readline()
            for _ in range(examples(60)):
                try:
                    out = run_json(Spec(args=["/bin/probe", "procsys"], rootfs=str(r)))
                except SpawnError:
                    failed += 1
                    continue
                bad += bad_procs(out)
        finally:
            assert swapper.stdin is not None
            swapper.stdin.close()
            swapper.communicate(timeout=30)
    assert not bad, f"{len(bad)} unprotected procfs ({failed} spawns failed): {bad[:2]}"


@vm
@pytest.mark.parametrize("what", ["rootfs", "bind-source"])
def test_host_path_swapped_for_a_symlink_to_the_host_root(rootfs: str, what: str) -> None:
    """NEW: container A, whose root holds a directory V that B uses (as its
    rootfs, or as the source of a bind mount at /data), swaps V with a symlink to
    "/" (RENAME_EXCHANGE in a loop) while examples(60) containers B start.  Host
    paths of a spec are resolved on the host at every spawn: B would get the
    host's root (read-write, as root) as its root or at /data.  Every B must see
    V (it cats a file only V has) or fail with a SpawnError."""
    tag = uuid.uuid4().hex
    with ah.private_rootfs(rootfs, parent=True) as v, ah.private_rootfs(rootfs) as b_root:
        outer = v.parent
        (v / "id").write_text(tag + "\n")
        os.symlink("/", outer / "r.alt")
        if what == "rootfs":
            spec = Spec(args=["/bin/sh", "-c", "cat /id; ls /"], rootfs=str(v))
        else:
            spec = Spec(
                args=["/bin/sh", "-c", "cat /data/id; ls /data"],
                rootfs=str(b_root),
                mounts=[*pynsbind.default_mounts(), Mount.bind(v, "/data")],
            )
        swapper = pynsbind.spawn(
            Spec(args=["/bin/probe", "swap", "/r", "/r.alt", "600"], rootfs=str(outer)),
            stdin=pynsbind.PIPE,
            stdout=pynsbind.PIPE,
        )
        escaped: list[str] = []
        failed = 0
        with swapper:
            assert swapper.stdout is not None and swapper.stdin is not None
            swapper.stdout.readline()
            for _ in range(examples(60)):
                try:
                    res = pynsbind.run(spec=spec, capture_output=True, timeout=60)
                except (SpawnError, SpecError):
                    # refused: the path met a symlink (when the plan was made,
                    # or at this spawn)
                    failed += 1
                    continue
                if not res.stdout.startswith(tag.encode()):
                    escaped.append(res.stdout.decode(errors="replace")[:200])
            swapper.stdin.close()
            swapper.communicate(timeout=30)
    assert not escaped, (
        f"{len(escaped)} containers saw another tree ({failed} failed): {escaped[:2]}"
    )


@vm
def test_proc_as_a_symlink_in_the_rootfs(rootfs: str) -> None:
    """The simple variant: the rootfs's /proc is a symlink to /elsewhere from the
    start.  Either the spawn fails, or the procfs the container gets is protected."""
    with ah.private_rootfs(rootfs) as r:
        (r / "proc").rmdir()
        (r / "elsewhere").mkdir()
        os.symlink("/elsewhere", r / "proc")
        try:
            out = run_json(Spec(args=["/bin/probe", "procsys"], rootfs=str(r)))
        except SpawnError:
            return
    assert out["count"] >= 1, out
    assert not bad_procs(out), out


# =====================================================================================
# 4. "#!/proc/self/exe" (runc's CVE-2019-5736)
# =====================================================================================

#: Starts /bin/evil (a "#!/proc/self/exe" script) as the container's command or
#: through exec(), prints the pids and goes away without a word (as a crashed or
#: finished caller would): then nothing runs the interpreter any more, and a
#: container that holds it open can reopen it for writing.
SHEBANG_SPAWNER = r"""
import json, os, sys
args = json.loads(sys.argv[1])
import pynsbind
from pynsbind import Spec
quiet = dict(stdin=pynsbind.DEVNULL, stdout=pynsbind.DEVNULL, stderr=pynsbind.DEVNULL)
if args["mode"] == "command":
    p = pynsbind.spawn(Spec(args=["/bin/evil"], rootfs=args["rootfs"], init=args["init"]), **quiet)
    pids = [p.pid]
else:
    p = pynsbind.spawn(
        Spec(args=["/bin/sleep", "30"], rootfs=args["rootfs"], init=args["init"]), **quiet
    )
    e = p.exec(["/bin/evil"], **quiet)
    pids = [p.pid, e.pid]
print(json.dumps({"pids": pids, "spawner": os.getpid()}), flush=True)
os._exit(0)
"""


@pytest.mark.parametrize(
    ("mode", "init"),
    [("command", False), ("exec", False), ("exec", True)],
    ids=["command", "exec", "exec-init"],
)
def test_shebang_proc_self_exe_never_gives_a_writable_host_binary(
    rootfs: str, mode: str, init: bool
) -> None:
    """/bin/evil starts with "#!/proc/self/exe": the kernel runs, as its
    interpreter, whatever the process that execs it was running: for the engine's
    child, the caller's Python.  Its ELF interpreter is the rootfs's
    /lib64/ld-linux-x86-64.so.2, here a fake that opens /proc/self/exe and hands
    the fd to ``probe hold-exe``, which reopens it for writing once the spawner
    (a disposable copy of the Python binary) is gone, and overwrites it.  The copy
    must stay intact, and what the container held must not be that host file."""
    ldso = ah.evil_ldso()
    with ah.private_rootfs(rootfs) as r, ah.host_dir() as d:
        (r / "lib64").mkdir()
        shutil.copy(ldso, r / "lib64" / "ld-linux-x86-64.so.2")
        (r / "bin" / "evil").write_text("#!/proc/self/exe\n")
        os.chmod(r / "bin" / "evil", 0o755)
        python, env = ah.python_copy(d)
        before = ah.sha256(python)
        result = r / "tmp" / "hold-exe.json"
        got = ah.run_script(
            SHEBANG_SPAWNER, {"rootfs": str(r), "mode": mode, "init": init}, python=python, env=env
        )
        pids = got["pids"]
        try:
            wait_for(lambda: result.exists() or all(wait_gone(p, 0) for p in pids), 30)
            held = json.loads(result.read_text()) if result.exists() else None
        finally:
            for p in pids:
                kill_pid(p)
            # the container's device cgroup, marked with the spawner's pid (which
            # exited without removing it): what pynsbind.cleanup() sweeps
            for p in pids:
                assert wait_gone(p, 10)
            left = pynsbind_cgroups(pid=got["spawner"])
            assert remove_cgroups(left, kill=True) == []
        after = ah.sha256(python)
    assert after == before, f"the container overwrote the host's Python binary: {held}"
    if held is not None:
        assert held["link"] != python, f"the container held the host's Python binary: {held}"
        assert not held["opened_for_write"], held


@vm
def test_init_binary_is_not_a_host_file(rootfs: str) -> None:
    """NEW: with init=True, PID 1 runs pynsbind's init straight from the host's
    file (execveat of an fd to pynsbind/_nsbinit*.so): /proc/1/exe then opens
    that host file inside the container; once no init runs any more (ETXTBSY
    gone) a process that kept the fd could rewrite the init every later
    container runs.  What /proc/1/exe opens must not be the host's file."""
    import importlib.util

    spec = importlib.util.find_spec("pynsbind._nsbinit")
    assert spec is not None and spec.origin
    host = os.stat(spec.origin)
    out = run_json(Spec(args=["/bin/probe", "exe", "/proc/1/exe"], rootfs=rootfs, init=True))
    same = (out.get("dev"), out.get("ino")) == (host.st_dev, host.st_ino)
    assert not same and out["link"] != spec.origin, f"PID 1 is the host's file: {out}"
    assert out.get("wronly_errno", errno.EACCES) != 0, out


# =====================================================================================
# 5. TIOCSTI into the caller's terminal
# =====================================================================================

SENTINEL = b"\x01PYNSBIND-SENTINEL\x01"


def tiocsti_attack(
    rootfs: str, *, stdio: str, uid: int | None = None
) -> tuple[dict[str, Any], bytes]:
    """A forked child makes a new pty its controlling terminal (setsid +
    TIOCSCTTY), as a shell in a terminal would be, and runs ``probe tiocsti`` in a
    container, with stdin and stderr inherited (stdio="inherit") or all pipes
    (stdio="pipes"); then reads its terminal up to a sentinel the parent types:
    whatever comes before it was pushed by the container.  Returns (the probe's
    JSON, the pushed bytes)."""
    import fcntl
    import termios

    master, slave = os.openpty()

    def attack() -> tuple[dict[str, Any], bytes]:
        os.close(master)
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        tty.setraw(slave)
        for fd in (0, 2):
            os.dup2(slave, fd)
        if uid is not None:
            become(uid)
        io: dict[str, Any] = {"stdout": pynsbind.PIPE}
        if stdio == "pipes":
            io.update(stdin=pynsbind.PIPE, stderr=pynsbind.PIPE)
        proc = pynsbind.spawn(
            Spec(args=["/bin/probe", "tiocsti", "echo PWNED\n"], rootfs=rootfs), **io
        )
        out, _ = proc.communicate(timeout=60)
        checkpoint()  # the parent types the sentinel
        got = b""
        while SENTINEL not in got:
            ready, _, _ = select.select([0], [], [], 10)
            if not ready:
                break
            got += os.read(0, 4096)
        return json.loads(out), got.split(SENTINEL)[0]

    def type_sentinel(pid: int, _: object) -> None:
        os.write(master, SENTINEL)

    try:
        result: tuple[dict[str, Any], bytes] = in_child(attack, setsid=True, during=type_sentinel)
    finally:
        # drain what the container wrote on the terminal
        while select.select([master], [], [], 0)[0]:
            try:
                if not os.read(master, 65536):
                    break
            except OSError:
                break
        os.close(master)
        os.close(slave)
    return result


@vm
@pytest.mark.parametrize(
    ("stdio", "uid"),
    [("inherit", None), ("pipes", None), ("inherit", 65534)],
    ids=["tty-stdio", "pipes-dev-tty", "rootless"],
)
def test_tiocsti_cannot_type_into_the_callers_terminal(
    rootfs: str, stdio: str, uid: int | None
) -> None:
    """The container pushes "echo PWNED" into its terminal's input with TIOCSTI
    (on fd 0, and on /dev/tty): the caller's shell would run it after the
    container exits.  Nothing may arrive; TIOCLINUX must fail too."""
    out, pushed = tiocsti_attack(rootfs, stdio=stdio, uid=uid)
    assert pushed == b"", f"the container typed {pushed!r} into the caller's terminal: {out}"
    assert out["stdin_pushed"] == 0 and out["tty_pushed"] == 0, out
    assert out["tioclinux_errno"] != 0, out


# =====================================================================================
# 6. exec() escapes the container's limits
# =====================================================================================

_STATUS_FIELDS = (
    "Uid",
    "Gid",
    "Groups",
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
    "Seccomp",
    "Seccomp_filters",
)


def hostname_filter() -> bytes:
    """A filter that allows everything but sethostname (ENOTSUP)."""
    from pynsbind import lowlevel as ll

    if ll.AUDIT_ARCH != 0xC000003E:
        pytest.skip("the filter uses x86_64 syscall numbers")
    return ll.filter_bytes(
        [
            ll.bpf_stmt(ll.BPF_LD | ll.BPF_W | ll.BPF_ABS, ll.SECCOMP_DATA_NR),
            ll.bpf_jump(ll.BPF_JMP | ll.BPF_JEQ | ll.BPF_K, 170, 0, 1),
            ll.bpf_stmt(ll.BPF_RET | ll.BPF_K, ll.SECCOMP_RET_ERRNO | errno.ENOTSUP),
            ll.bpf_stmt(ll.BPF_RET | ll.BPF_K, ll.SECCOMP_RET_ALLOW),
        ]
    )


@pytest.mark.cgroup
@pytest.mark.parametrize("user", [0, 1000], ids=["root", "user-1000"])
def test_exec_gets_the_containers_limits(rootfs: str, user: int) -> None:
    """A container with a pids and memory limit, a seccomp filter, rlimits, a user
    and groups; exec() a long-lived process into it.  Seen from the host, the
    exec'd process must have what PID 1 has: the same cgroup in every hierarchy,
    Seccomp 2 with the same filter count, the same capabilities, no_new_privs,
    rlimits, uid, gid and groups, and (NEW) the same oom_score_adj (not the
    spawner's, which may be a protected daemon's -1000)."""
    spec = Spec(
        args=["/bin/sleep", "60"],
        rootfs=rootfs,
        user=(user, user),
        groups=[5, 7],
        rlimits={"NOFILE": (100, 200), "NPROC": (500, 600)},
        seccomp=hostname_filter(),
        resources=pynsbind.Resources(pids_max=32, memory_max="64M"),
        oom_score_adj=500,
    )
    with pynsbind.spawn(spec) as proc:
        e = proc.exec(["/bin/sleep", "60"])
        try:
            diffs = {}
            for name in _STATUS_FIELDS:
                a, b = status_field(name, proc.pid), status_field(name, e.pid)
                if a != b:
                    diffs[name] = (a, b)
            for what in ("cgroup", "limits", "oom_score_adj"):
                a_text = Path(f"/proc/{proc.pid}/{what}").read_text()
                b_text = Path(f"/proc/{e.pid}/{what}").read_text()
                if a_text != b_text:
                    diffs[what] = (a_text, b_text)
        finally:
            e.kill()
            e.wait()
    assert not diffs, f"exec'd process differs from PID 1 in {sorted(diffs)}: {diffs}"


@vm
def test_exec_into_a_rootless_container(rootfs: str) -> None:
    """exec() into a container spawned by an unprivileged caller (uid 65534)
    works at all, and the process has the container's identity."""

    def attempt() -> tuple[int, str, str]:
        with pynsbind.spawn(Spec(args=["/bin/sleep", "60"], rootfs=rootfs)) as proc:
            e = proc.exec(["/bin/sleep", "60"])
            try:
                return (
                    0,
                    status_field("Uid", proc.pid) + status_field("Groups", proc.pid),
                    status_field("Uid", e.pid) + status_field("Groups", e.pid),
                )
            finally:
                e.kill()
                e.wait()

    rc, pid1, execd = in_child(attempt, uid=65534)
    assert rc == 0 and pid1 == execd, (pid1, execd)


# =====================================================================================
# 7. a non-root user keeps the 14 default capabilities
# =====================================================================================


def caps_of(status: str) -> dict[str, int]:
    return {
        n: int(status_field(n, text=status), 16) for n in ("CapEff", "CapPrm", "CapAmb", "CapInh")
    }


@vm
def test_non_root_user_has_no_capabilities(rootfs: str) -> None:
    """user=1000 without capabilities: no effective, permitted, ambient or
    inheritable capability (the bounding set may keep the defaults)."""
    info = run_json(Spec(args=["/bin/probe", "info"], rootfs=rootfs, user=1000))
    assert caps_of(info["status"]) == dict.fromkeys(("CapEff", "CapPrm", "CapAmb", "CapInh"), 0)


@vm
def test_exec_as_non_root_user_has_no_capabilities(rootfs: str) -> None:
    """exec(user=1000) into a root container: no capabilities either."""
    with pynsbind.spawn(Spec(args=["/bin/sleep", "60"], rootfs=rootfs)) as proc:
        res = proc.exec(["/bin/probe", "info"], user=1000, stdout=pynsbind.PIPE)
        out, _ = res.communicate(timeout=60)
    info = json.loads(out or b"{}")
    assert caps_of(info["status"]) == dict.fromkeys(("CapEff", "CapPrm", "CapAmb", "CapInh"), 0)


@vm
def test_non_root_user_gets_the_capabilities_asked_for(rootfs: str) -> None:
    """user=1000 with capabilities=[NET_BIND_SERVICE]: that one is granted."""
    info = run_json(
        Spec(
            args=["/bin/probe", "info"],
            rootfs=rootfs,
            user=1000,
            capabilities=["NET_BIND_SERVICE"],
        )
    )
    caps = caps_of(info["status"])
    assert caps["CapEff"] == caps["CapPrm"] == 1 << 10, caps


# =====================================================================================
# 8. the caller's keyrings are shared
# =====================================================================================


@vm
@pytest.mark.parametrize("ring", ["session", "user"])
def test_callers_keyring_is_out_of_reach(rootfs: str, ring: str) -> None:
    """The caller adds a key to its session keyring (and, NEW, to its user
    keyring, which every process of its uid reaches): a container must not find
    or read it, and its session keyring must not be the caller's.

    The session keyring is fresh in every container: that holds with seccomp
    unconfined (keyctl allowed).  The user keyring belongs to the uid (in its
    user namespace): a container that is the host's root without a user
    namespace shares root's, as with runc, and what keeps it out is the default
    seccomp profile (keyctl refused) -- so that variant runs with the profile."""
    desc = "pynsbind-test-" + uuid.uuid4().hex[:12]
    secret = b"SECRET-" + uuid.uuid4().hex.encode()
    where = ah.KEY_SPEC_SESSION_KEYRING if ring == "session" else ah.KEY_SPEC_USER_KEYRING
    key = ah.add_key(desc, secret, where)
    seccomp = "unconfined" if ring == "session" else "default"
    try:
        out = run_json(Spec(args=["/bin/probe", "keyring", desc], rootfs=rootfs, seccomp=seccomp))
        mine = ah.keyring_id(ah.KEY_SPEC_SESSION_KEYRING)
    finally:
        ah.drop_key(key)
    assert secret.decode() not in (out["data"], out["user_data"]), f"read the caller's key: {out}"
    assert out["key"] < 0 and out["user_key"] < 0, f"found the caller's key: {out}"
    assert out["session"] != mine, f"the caller's session keyring: {out}"


# =====================================================================================
# 9. the sandbox as root is root on the host's files
# =====================================================================================


def sandbox(*argv: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [ah.CLI, "sandbox", *argv], capture_output=True, timeout=60, cwd="/", **kw
    )


@pytest.fixture
def srv_dir(probe: str) -> Any:
    """A directory the sandbox sees (not under /tmp, /run, /var/tmp), with the probe."""
    with ah.host_dir(base="/srv") as d:
        shutil.copy(probe, d / "probe")
        os.chmod(d / "probe", 0o755)
        yield d


def test_sandbox_cannot_read_shadow() -> None:
    if not os.path.exists("/etc/shadow"):
        pytest.skip("no /etc/shadow")
    res = sandbox("--", "cat", "/etc/shadow")
    assert res.returncode != 0 and b"root:" not in res.stdout, res.stdout[:80]


def test_sandbox_cannot_read_a_root_only_file(srv_dir: Path) -> None:
    secret = srv_dir / "secret"
    secret.write_text("TOP-SECRET\n")
    os.chmod(secret, 0o600)
    res = sandbox("--", "cat", str(secret))
    assert b"TOP-SECRET" not in res.stdout, "the sandbox read a root-only file"


def test_sandbox_cannot_connect_to_a_root_only_socket(srv_dir: Path) -> None:
    path = srv_dir / "sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
        os.chmod(path, 0o600)
        server.listen(4)
        res = sandbox("--", str(srv_dir / "probe"), "connect_unix", str(path))
        out = json.loads(res.stdout)
    finally:
        server.close()
    assert out["errno"] != 0, "the sandbox connected to a root-only socket"


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                kids = Path(f"/proc/{p}/task/{t}/children").read_text().split()
            except OSError:
                continue
            out += [int(k) for k in kids]
            todo += [int(k) for k in kids]
    return out


def test_sandbox_root_is_unprivileged_on_the_host() -> None:
    """``id -u`` inside says 0, but the host sees the sandbox's processes as an
    unprivileged uid."""
    res = sandbox("--", "id", "-u")
    assert res.stdout.strip() == b"0", res
    cli = subprocess.Popen(
        [ah.CLI, "sandbox", "--", "sleep", "60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/",
    )

    def comm(pid: int) -> str:
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return ""

    try:
        assert wait_for(lambda: "sleep" in map(comm, _descendants(cli.pid))), "no sleep"
        uids = {comm(k): status_field("Uid", k) for k in _descendants(cli.pid)}
    finally:
        for k in _descendants(cli.pid):
            kill_pid(k)
        cli.kill()
        cli.wait()
    # Uid: real, effective, saved, filesystem
    assert all(u.split()[1] != "0" for u in uids.values()), f"seen from the host: {uids}"


_PLANT = (
    # a setuid copy of a shell; a file created setuid; a setuid-root file of the
    # host's rewritten in place (the bit must go); a file capability
    "cp /bin/sh /mnt/x; chmod 4755 /mnt/x; chmod 2755 /mnt/x; "
    "python3 -c 'import os; os.open(\"/mnt/y\", os.O_CREAT | os.O_WRONLY, 0o6755)'; "
    "cat /bin/true > /mnt/pre; "
    'python3 -c \'import os; os.setxattr("/mnt/x", "security.capability", '
    "bytes([1, 0, 0, 2]) + bytes(16))'; true"
)


@pytest.mark.parametrize("how", ["--bind", "-v", "--mount"])
def test_sandbox_cannot_plant_a_setuid_root_file(how: str) -> None:
    """NEW: a host directory bound writable into root's sandbox: a volume is
    idmapped, so the sandbox's root writes there as the host's root; still, no
    file it leaves there may be setuid or setgid root, or carry a file
    capability (any host user could run it): it cannot set those bits (seccomp),
    keep them when it rewrites a file (no CAP_FSETID) or write a capability (no
    CAP_SETFCAP)."""
    with ah.host_dir(base="/srv", mode=0o777) as d:
        shutil.copy("/bin/true", d / "pre")
        os.chmod(d / "pre", 0o4755)
        target = f"type=bind,src={d},dst=/mnt" if how == "--mount" else f"{d}:/mnt"
        res = sandbox(how, target, "--", "sh", "-c", _PLANT)
        assert res.returncode == 0, res
        assert (d / "x").exists() and (d / "pre").stat().st_size == os.stat("/bin/true").st_size
        left = {}
        for f in d.iterdir():
            st = os.lstat(f)
            try:
                fcap = os.getxattr(f, "security.capability", follow_symlinks=False)
            except OSError:
                fcap = None
            left[f.name] = (st.st_uid, oct(st.st_mode), fcap)
    for name, (uid, mode, fcap) in left.items():
        bits = int(mode, 8) & (stat.S_ISUID | stat.S_ISGID)
        assert not (uid == 0 and bits), f"{name}: a setuid or setgid root file on the host: {left}"
        assert fcap is None, f"{name}: a file capability on the host: {left}"


def test_host_root_is_read_only_by_default() -> None:
    """A default Spec without a rootfs (the host's root): writing there fails
    with EROFS and leaves nothing."""
    target = Path(f"/etc/pynsbind-attack-{uuid.uuid4().hex[:8]}")
    try:
        res = pynsbind.run(["touch", str(target)], capture_output=True, timeout=60)
        created = target.exists()
    finally:
        target.unlink(missing_ok=True)
    assert not created, "the container wrote into the host's /etc"
    assert res.returncode != 0 and b"Read-only" in res.stderr, res


# =====================================================================================
# 10. masks silently skipped
# =====================================================================================


@vm
@pytest.mark.parametrize("variant", ["proc-only", "no-dev-null"])
def test_masks_hold_without_a_dev(rootfs: str, variant: str) -> None:
    """No /dev at all (mounts=[proc]), or a /dev without /dev/null: /proc/keys,
    /proc/timer_list (and /proc/kcore) are still masked, /proc/sys read-only;
    or the spawn fails."""
    if variant == "proc-only":
        fields: dict[str, Any] = {"mounts": [Mount.proc()]}
    else:
        fields = {"devices": [pynsbind.Device("/dev/zero", "c", 1, 5)]}
    try:
        out = run_json(Spec(args=["/bin/probe", "procsys"], rootfs=rootfs, **fields))
    except (SpawnError, SpecError):
        return
    assert out["count"] >= 1 and not bad_procs(out), out


@vm
@pytest.mark.parametrize("field", ["masked_paths", "readonly_paths"])
def test_missing_explicit_mask_is_an_error(rootfs: str, field: str) -> None:
    """A path the spec asks to mask (or make read-only) that is not there is an
    error naming it, not a silent skip."""
    with pytest.raises((SpecError, SpawnError), match="/nonexistent"):
        pynsbind.run(["/bin/true"], rootfs=rootfs, **{field: ["/nonexistent"]})


# =====================================================================================
# 11. mount-point creation opens an existing rootfs file
# =====================================================================================

FIFO_SPAWNER = r"""
import json, sys
args = json.loads(sys.argv[1])
import pynsbind
from pynsbind import Mount, Spec
mounts = [*pynsbind.default_mounts(), Mount.bind(args["source"], "/etc/hostfile")]
try:
    res = pynsbind.run(["/bin/cat", "/etc/hostfile"], rootfs=args["rootfs"], mounts=mounts,
                       capture_output=True, timeout=60)
    print(json.dumps({"rc": res.returncode, "out": res.stdout.decode(errors="replace")}))
except (pynsbind.SpawnError, pynsbind.SpecError) as exc:
    print(json.dumps({"error": str(exc)}))
"""


@vm
def test_fifo_mount_point_does_not_hang_the_spawn(rootfs: str) -> None:
    """A FIFO where a file is to be bound: the spawn must not block opening it
    (the spawner runs in its own process; the limit only detects a hang): it binds
    over it or fails cleanly."""
    with ah.private_rootfs(rootfs) as r, ah.host_dir() as d:
        os.mkfifo(r / "etc" / "hostfile")
        (d / "file").write_text("HOST FILE\n")
        got = ah.run_script(FIFO_SPAWNER, {"rootfs": str(r), "source": str(d / "file")}, limit=5)
    assert "error" in got or got["out"] == "HOST FILE\n", got


@pytest.mark.parametrize("kind", ["fifo", "char-device", "block-device"])
def test_mount_point_is_never_opened(rootfs: str, tmp_path: Path, kind: str) -> None:
    """A FIFO or a device node (/dev/null's numbers; the test's own loop device)
    where a file is to be bound: the engine (host root) must not open it
    (inotify IN_OPEN on its inode; a FIFO has a reader so that an open cannot
    block): opening a device can have effects (opening a loop device number
    that does not exist yet creates that device on the host)."""
    with contextlib.ExitStack() as stack:
        r = stack.enter_context(ah.private_rootfs(rootfs))
        d = stack.enter_context(ah.host_dir())
        node = r / "etc" / "hostfile"
        reader = -1
        if kind == "fifo":
            os.mkfifo(node)
            reader = os.open(node, os.O_RDONLY | os.O_NONBLOCK)
            stack.callback(os.close, reader)
        elif kind == "char-device":
            os.mknod(node, stat.S_IFCHR | 0o600, os.makedev(1, 3))
        else:
            _dev, major, minor, _ = stack.enter_context(ah.loop_device(tmp_path))
            os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(major, minor))
        (d / "file").write_text("HOST FILE\n")
        watch = ah.OpenWatch(node)
        stack.callback(watch.close)
        mounts = [*pynsbind.default_mounts(), Mount.bind(d / "file", "/etc/hostfile")]
        try:
            pynsbind.run(["/bin/true"], rootfs=str(r), mounts=mounts, timeout=60)
        except (SpawnError, SpecError):
            pass
        opens = watch.opens()
    assert opens == 0, f"the engine opened the {kind} at the mount point ({opens} opens)"


@vm
@pytest.mark.parametrize("what", ["dir", "file", "missing-target"])
def test_legacy_mounts_create_nothing_on_the_host_through_a_symlink(rootfs: str, what: str) -> None:
    """The legacy mount path (mount(2), paths resolved on the host): the rootfs's
    /mnt is an absolute symlink to a host directory; a tmpfs at /mnt/sub (or a
    file bound at /mnt/file) must not create anything there.  With
    missing-target, the symlink names a host path that does not exist: it must
    still not exist afterwards."""
    from pynsbind.testing import Options, spawn_with

    with ah.private_rootfs(rootfs) as r, ah.host_dir() as target, ah.host_dir() as d:
        host = target / "missing" if what == "missing-target" else target
        os.symlink(str(host), r / "mnt")
        (d / "file").write_text("x\n")
        mount = Mount.bind(d / "file", "/mnt/file") if what == "file" else Mount.tmpfs("/mnt/sub")
        spec = Spec(args=["/bin/true"], rootfs=str(r), mounts=[*pynsbind.default_mounts(), mount])
        try:
            spawn_with(spec, Options(legacy_mount=True)).wait()
        except (SpawnError, SpecError):
            pass
        made = sorted(os.listdir(target))
    assert made == [], f"the spawn created {made} in the host directory {target}"


# =====================================================================================
# 12. input limits checked too late, or truncated
# =====================================================================================


def assert_spec_error(field: str, **fields: Any) -> None:
    """pynsbind.run(**fields) raises a SpecError naming field, before any clone:
    no child of this process appears (host_unchanged checks the rest)."""
    kids = set(children())
    with pytest.raises(SpecError) as info:
        pynsbind.run(**fields)
    assert field in str(info.value), str(info.value)
    assert set(children()) <= kids


@vm
@pytest.mark.parametrize("count", [4097, 65537])
def test_too_long_seccomp_program(rootfs: str, host_unchanged: HostState, count: int) -> None:
    """A seccomp program longer than BPF_MAXINSNS (4096): SpecError("seccomp")
    before any clone (65,537 instructions used to wrap to 1 in the C struct)."""
    allow = hostname_filter()[-8:]
    assert_spec_error("seccomp", args=["/bin/true"], rootfs=rootfs, seccomp=allow * count)


@vm
def test_too_many_groups(rootfs: str, host_unchanged: HostState) -> None:
    """70,000 groups (NGROUPS_MAX is 65,536): SpecError("groups") before any clone."""
    assert_spec_error("groups", args=["/bin/true"], rootfs=rootfs, groups=list(range(70000)))


@vm
@pytest.mark.parametrize("shape", ["one-big", "many-small"])
def test_too_big_argv(rootfs: str, host_unchanged: HostState, shape: str) -> None:
    """A 3 MB argv, as one string or as 100,000 small ones: SpecError("args")
    before any clone, not an E2BIG from execve in the child."""
    if shape == "one-big":
        args = ["/bin/true", "x" * (3 << 20)]
    else:
        args = ["/bin/true", *(["x" * 30] * 100_000)]
    assert_spec_error("args", args=args, rootfs=rootfs)


@vm
def test_too_big_env(rootfs: str, host_unchanged: HostState) -> None:
    """A 4 MB environment: SpecError("env") before any clone."""
    env = {f"V{i}": "y" * 64 for i in range(60_000)}
    assert_spec_error("env", args=["/bin/true"], rootfs=rootfs, env=env)


@vm
def test_many_pass_fds_all_arrive_or_error(rootfs: str) -> None:
    """2,000 real open fds in pass_fds: a SpecError naming pass_fds, or every one
    of them open in the container: never some silently dropped."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2000
    if hard < want + 64:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want + 64), hard))
    fds: list[int] = []
    try:
        fds = [os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC) for _ in range(want)]
        try:
            res = pynsbind.run(
                ["/bin/sh", "-c", "ls /proc/self/fd | wc -l"],
                rootfs=rootfs,
                pass_fds=fds,
                rlimits={"NOFILE": (want + 64, want + 64)},
                capture_output=True,
                timeout=60,
            )
        except SpecError as exc:
            assert "pass_fds" in str(exc)
            return
        # ls sees 0-2, the passed fds and its own directory fd
        assert int(res.stdout) >= want + 3, f"only {int(res.stdout)} fds arrived of {want} + 3"
    finally:
        for fd in fds:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@vm
def test_uid_map_of_340_lines_is_not_truncated(rootfs: str) -> None:
    """An unprivileged caller with a subordinate range maps 340 lines (the
    kernel's maximum) through newuidmap: all 340 arrive, or a SpecError says why
    (the helper's argv was cut at 63 arguments)."""
    for helper in ("newuidmap", "newgidmap"):
        if shutil.which(helper) is None:
            pytest.skip(f"{helper} is not installed (Debian: uidmap)")
    line = "65534:500000:1000\n"
    for name in ("/etc/subuid", "/etc/subgid"):
        with open(name, "a") as f:
            f.write(line)
    maps = [(0, 65534, 1), *((i, 500000 + i, 1) for i in range(1, 340))]

    def attempt() -> Any:
        try:
            res = pynsbind.run(
                ["/bin/cat", "/proc/self/uid_map"],
                rootfs=rootfs,
                uid_map=maps,
                gid_map=maps,
                capture_output=True,
                timeout=60,
            )
        except SpecError as exc:
            return ("spec", str(exc))
        return ("ran", res.returncode, res.stdout.decode().count("\n"))

    try:
        got = in_child(attempt, uid=65534)
    finally:
        for name in ("/etc/subuid", "/etc/subgid"):
            text = Path(name).read_text()
            Path(name).write_text(text.replace(line, "", 1))
    assert (got[0] == "spec" and "uid_map" in got[1]) or got == ("ran", 0, 340), got


@vm
def test_device_nodes_ignore_the_callers_umask(rootfs: str) -> None:
    """Device nodes are 0666 whatever the caller's umask (it was applied to mknod)."""
    old = os.umask(0o077)
    try:
        out = run_json(Spec(args=["/bin/probe", "stat", "/dev/null"], rootfs=rootfs))
    finally:
        os.umask(old)
    assert out["mode"] & 0o777 == 0o666, oct(out["mode"])


# =====================================================================================
# the default seccomp profile
# =====================================================================================


@vm
def test_default_profile_refuses_dangerous_calls(rootfs: str) -> None:
    """keyctl, add_key, bpf, mount and unshare(CLONE_NEWUSER) fail with EPERM
    (ENOSYS for calls the profile does not know) in a default container."""
    out = run_json(Spec(args=["/bin/probe", "syscalls"], rootfs=rootfs))
    got = {k: out[k] for k in ("keyctl", "add_key", "bpf", "mount", "unshare_user")}
    assert all(e in (errno.EPERM, errno.ENOSYS) for e in got.values()), {
        k: ah.errname(v) for k, v in got.items()
    }


@vm
def test_unconfined_allows_keyctl(rootfs: str) -> None:
    """seccomp="unconfined" is the opt-out: keyctl works (so the test above can fail)."""
    out = run_json(Spec(args=["/bin/probe", "syscalls"], rootfs=rootfs, seccomp="unconfined"))
    assert out["keyctl"] == 0, out


# =====================================================================================
# new: the init's sync socket
# =====================================================================================


@vm
def test_container_cannot_forge_its_exit_status(rootfs: str) -> None:
    """NEW: with init=True, the command takes PID 1's sync socket (pidfd_getfd:
    same uid, same capabilities) and tells the spawner "exited 0"; then exits 42.
    The returncode must be 42."""
    res = pynsbind.run(
        ["/bin/sh", "-c", "/bin/probe forge-exit 0; exit 42"],
        rootfs=rootfs,
        init=True,
        capture_output=True,
        timeout=60,
    )
    assert res.returncode == 42, f"returncode {res.returncode}: {res.stdout!r}"


# =====================================================================================
# new: a spawn changes the caller's own process
# =====================================================================================


@vm
@pytest.mark.parametrize(
    ("field", "value"), [("oom_score_adj", 777), ("user", 1000)], ids=["oom_score_adj", "user"]
)
def test_spawn_leaves_the_callers_process_as_it_was(rootfs: str, field: str, value: int) -> None:
    """NEW: the engine's child shares the caller's memory (CLONE_VM) until exec,
    and some process state lives with the memory: writing oom_score_adj in the
    child sets the caller's too, and the child's change of uid makes the caller
    non-dumpable.  (In a forked child: root cannot lower oom_score_adj again.)"""

    def attempt() -> tuple[str, bool, str, bool]:
        from pynsbind import lowlevel

        lowlevel.set_dumpable(True)  # earlier spawns of this test process may have cleared it
        before = (Path("/proc/self/oom_score_adj").read_text().strip(), lowlevel.get_dumpable())
        want = value if field != "oom_score_adj" or before[0] != str(value) else value + 1
        pynsbind.run(["/bin/true"], rootfs=rootfs, timeout=60, **{field: want})
        after = (Path("/proc/self/oom_score_adj").read_text().strip(), lowlevel.get_dumpable())
        return (*before, *after)

    got = in_child(attempt)
    assert got[:2] == got[2:], f"the caller's (oom_score_adj, dumpable) went {got[:2]} -> {got[2:]}"


# =====================================================================================
# new: the container's terminal, and the start gate
# =====================================================================================


def test_the_container_cannot_reach_its_terminals_master(rootfs: str) -> None:
    """NEW: with terminal=True the spawner holds the pty's master: whoever holds
    it reads everything the container's user types and can type as them.  A
    process in the container (exec'd next to PID 1, as root with the default
    capabilities) looks through every fd of every process it can see for a
    ptmx (5:2): there must be none, only the slave (136:N)."""
    scan = "for f in /proc/[0-9]*/fd/*; do stat -L -c '%t:%T %n' $f 2>/dev/null; done; echo done"
    spec = Spec(args=["/bin/sleep", "60"], rootfs=rootfs, terminal=True)
    with pynsbind.spawn(spec) as proc:
        seen = proc.exec(["/bin/sh", "-c", scan], stdout=pynsbind.PIPE)
        with seen:
            assert seen.stdout is not None
            lines = seen.stdout.read().decode().splitlines()
            assert seen.wait() == 0
    assert lines[-1] == "done", lines
    devices = {line.split()[1]: line.split()[0] for line in lines[:-1]}
    assert not [name for name, dev in devices.items() if dev == "5:2"], devices
    # PID 1's stdio is the slave: the scan did see the terminal's fds
    assert all(devices.get(f"/proc/1/fd/{n}", "").startswith("88:") for n in (0, 1, 2)), devices


def test_a_gate_path_swapped_for_a_symlink_is_never_followed(tmp_path: Path) -> None:
    """NEW: the gate FIFO is made at a path the caller names, in a directory
    someone else may write: a symlink there (placed before, or raced in while
    spawn makes it) must never make spawn create, open or chmod what it points
    to.  Each spawn either refuses (SpecError) or holds a FIFO of its own."""
    victim = tmp_path / "victim"
    victim.write_text("precious")
    os.chmod(victim, 0o644)
    gate = tmp_path / "gate"
    spec = Spec(args=["/bin/true"], namespaces=pynsbind.Namespace.MNT)
    os.symlink(victim, gate)
    with pytest.raises(SpecError, match="exists already"):
        pynsbind.spawn(spec, start=False, gate=gate)
    os.unlink(gate)

    stop = threading.Event()

    def attacker() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                os.symlink(victim, gate)
            with contextlib.suppress(OSError):
                os.unlink(gate)

    thread = threading.Thread(target=attacker)
    thread.start()
    made = refused = 0
    try:
        for _ in range(examples(60)):
            try:
                proc = pynsbind.spawn(spec, start=False, gate=gate)
            except SpecError:
                refused += 1
                continue
            with proc:
                made += 1
                held = [
                    os.stat(f"/proc/{proc.pid}/fd/{n}")
                    for n in os.listdir(f"/proc/{proc.pid}/fd")
                    if int(n) > 2  # (not the stdio it inherits)
                ]
                fifo = [st for st in held if stat.S_ISFIFO(st.st_mode)]
                assert len(fifo) == 1, held  # the gate, a FIFO of spawn's own
                assert all(st.st_ino != os.stat(victim).st_ino for st in held)
    finally:
        stop.set()
        thread.join()
    assert made + refused == examples(60)
    st = os.stat(victim)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644
    assert victim.read_text() == "precious"
