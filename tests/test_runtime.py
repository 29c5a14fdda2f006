"""pynsbind-run as an OCI runtime (runc's command line): each command on real
containers made from a busybox bundle, its errors (one line, a non-zero exit,
nothing left behind) and the lifecycle rules.  The callers' own tests are
tests/test_podman.py and tests/test_containerd.py."""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pynsbind import oci
from tests import helpers
from tests.helpers import HostState, in_child

pytestmark = [pytest.mark.root]

RUNTIME = str(Path(sys.executable).parent / "pynsbind-run")
_counter = itertools.count()
PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture
def root(tmp_path: Path) -> str:
    """A state root of the test's own."""
    d = tmp_path / "state"
    return str(d)


def make_bundle(top: Path, rootfs: str, args: list[str], **changes: Any) -> Path:
    """A bundle whose rootfs is the session's busybox root (bound: the config
    names it), the default config with ``args`` and a cgroup of this test's."""
    bundle = top / f"bundle{next(_counter)}"
    bundle.mkdir()
    config = oci.default_config()
    config["root"] = {"path": rootfs, "readonly": True}
    config["process"]["args"] = args
    config["process"]["terminal"] = False
    config["linux"]["cgroupsPath"] = f"/pynsbind-rt-{os.getpid()}-{next(_counter)}"
    for key, value in changes.items():
        config[key] = value
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def rt(root: str, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    """``pynsbind-run --root ROOT ARGS``, its output as text.  Through files,
    not pipes: a container left running holds the stdio it inherited (as with
    runc), so a pipe would never reach its end.  ``stdout`` may name a file of
    the caller's (then ``.stdout`` is empty)."""
    import tempfile

    kw.setdefault("timeout", 120)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        given = kw.pop("stdout", None)
        res = subprocess.run(
            [RUNTIME, "--root", root, *args],
            check=False,
            text=True,
            stdout=given or out,
            stderr=err,
            **kw,
        )
        out.seek(0)
        err.seek(0)
        res.stdout, res.stderr = out.read(), err.read()
    return res


def state(root: str, cid: str) -> dict[str, Any]:
    res = rt(root, "state", cid)
    assert res.returncode == 0, res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)
    return doc


def subreaper() -> None:
    """This process adopts its orphaned descendants (as conmon does)."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def reap(pid: int, timeout: float = 20.0) -> int:
    """The wait status of our adopted child ``pid``."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        assert time.monotonic() < deadline, f"{pid} still running"
        time.sleep(0.01)


def nothing_left(root: str, before: HostState) -> None:
    assert not os.path.exists(root) or os.listdir(root) == []
    assert before.diff(HostState.now()) == {}


# ---- the lifecycle ------------------------------------------------------------------------


def test_create_start_pause_kill_delete(tmp_path: Path, rootfs: str, root: str) -> None:
    script = 'echo started; trap "exit 42" TERM; while :; do sleep 0.05; done'
    bundle = make_bundle(tmp_path, rootfs, ["sh", "-c", script])
    pid_file = tmp_path / "pid"
    before = HostState.now()

    def lifecycle() -> dict[str, Any]:
        subreaper()
        out = tmp_path / "out"
        with open(out, "w") as f:
            res = rt(
                root,
                "create",
                "--bundle",
                str(bundle),
                "--pid-file",
                str(pid_file),
                "c1",
                stdout=f,
            )
        assert res.returncode == 0, res.stderr
        found: dict[str, Any] = {"created": state(root, "c1")}
        pid = int(pid_file.read_text())
        found["pid"] = pid
        found["ns_differ"] = helpers.host_ns("pid", pid) != helpers.host_ns("pid")
        found["out_before_start"] = out.read_text()
        assert rt(root, "start", "c1").returncode == 0
        assert helpers.wait_for(lambda: out.read_text() == "started\n")
        found["running"] = state(root, "c1")["status"]
        ps = rt(root, "ps", "--format", "json", "c1")
        found["ps"] = json.loads(ps.stdout)
        assert rt(root, "pause", "c1").returncode == 0
        found["paused"] = state(root, "c1")["status"]
        assert rt(root, "resume", "c1").returncode == 0
        found["resumed"] = state(root, "c1")["status"]
        second_start = rt(root, "start", "c1")
        found["second_start"] = (second_start.returncode, second_start.stderr)
        assert rt(root, "kill", "c1", "TERM").returncode == 0
        found["status"] = reap(pid)
        found["stopped"] = state(root, "c1")["status"]
        found["delete"] = rt(root, "delete", "c1").returncode
        found["gone"] = rt(root, "state", "c1").returncode
        return found

    found = in_child(lifecycle, timeout=120)
    created = found["created"]
    assert created["status"] == "created" and created["pid"] == found["pid"]
    assert created["bundle"] == str(bundle) and created["id"] == "c1"
    assert found["ns_differ"] and found["out_before_start"] == ""
    assert found["running"] == "running" and found["pid"] in found["ps"]
    assert found["paused"] == "paused" and found["resumed"] == "running"
    code, err = found["second_start"]
    assert code == 1 and "it is running, not created" in err
    assert os.WIFEXITED(found["status"]) and os.WEXITSTATUS(found["status"]) == 42
    assert found["stopped"] == "stopped" and found["delete"] == 0 and found["gone"] == 1
    nothing_left(root, before)


def test_sigkill_ends_a_paused_container(tmp_path: Path, rootfs: str, root: str) -> None:
    """A v1 freezer holds even a killed process: kill KILL thaws after (runc
    does; containerd's task delete --force of a paused task relies on it)."""
    before = HostState.now()
    bundle = make_bundle(tmp_path, rootfs, ["sleep", "60"])

    def paused_kill() -> dict[str, Any]:
        subreaper()
        assert rt(root, "run", "-d", "--bundle", str(bundle), "k1").returncode == 0
        pid = state(root, "k1")["pid"]
        assert rt(root, "pause", "k1").returncode == 0
        found: dict[str, Any] = {"paused": state(root, "k1")["status"]}
        found["kill"] = rt(root, "kill", "k1", "KILL").returncode
        found["status"] = reap(pid)
        found["delete"] = rt(root, "delete", "k1").returncode
        return found

    found = in_child(paused_kill, timeout=120)
    assert found["paused"] == "paused" and found["kill"] == 0 and found["delete"] == 0
    assert os.WIFSIGNALED(found["status"]) and os.WTERMSIG(found["status"]) == signal.SIGKILL
    nothing_left(root, before)


def test_run_waits_and_gives_the_exit_status(tmp_path: Path, rootfs: str, root: str) -> None:
    before = HostState.now()
    bundle = make_bundle(tmp_path, rootfs, ["sh", "-c", "echo out; echo err >&2; exit 7"])
    res = rt(root, "run", "--bundle", str(bundle), "r1")
    assert (res.returncode, res.stdout, res.stderr) == (7, "out\n", "err\n")
    nothing_left(root, before)


def test_run_reports_a_signal_as_128_plus_n(tmp_path: Path, rootfs: str, root: str) -> None:
    # the container's process is its pid namespace's init: only a signal from
    # outside (here, the runtime's kill) can end it
    bundle = make_bundle(tmp_path, rootfs, ["sleep", "60"])
    out = tmp_path / "out"
    with open(out, "w") as f:
        run = subprocess.Popen(
            [RUNTIME, "--root", root, "run", "--bundle", str(bundle), "r2"], stdout=f, stderr=f
        )
    try:
        assert helpers.wait_for(
            lambda: rt(root, "state", "r2").stdout.count('"running"') == 1, limit=30
        )
        assert rt(root, "kill", "r2", "KILL").returncode == 0
        assert run.wait(timeout=30) == 128 + signal.SIGKILL, out.read_text()
    finally:
        run.kill()
        run.wait()
    assert not os.path.exists(os.path.join(root, "r2"))


# ---- errors: one line, non-zero, nothing left ------------------------------------------------


def one_line_error(res: subprocess.CompletedProcess[str], *words: str) -> None:
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pynsbind-run: "), res.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_bad_bundles_are_one_line_errors_and_leave_nothing(
    tmp_path: Path, rootfs: str, root: str
) -> None:
    before = HostState.now()
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(rt(root, "create", "--bundle", str(empty), "x"), "config.json")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"ociVersion": "1.0.2", "process": ')
    one_line_error(rt(root, "create", "--bundle", str(broken), "x"), "invalid JSON", "line 1")
    no_args = make_bundle(tmp_path, rootfs, [])
    one_line_error(rt(root, "create", "--bundle", str(no_args), "x"), "process.args")
    no_root = make_bundle(tmp_path, rootfs, ["true"], root={"path": str(tmp_path / "nope")})
    one_line_error(rt(root, "create", "--bundle", str(no_root), "x"), "root.path")
    missing = make_bundle(tmp_path, rootfs, ["no-such-command"])
    one_line_error(
        rt(root, "create", "--bundle", str(missing), "x"), "executable file not found in $PATH"
    )
    one_line_error(rt(root, "create", "--bundle", str(missing), "bad/id"), "invalid container id")
    nothing_left(root, before)


def test_state_errors_name_the_container_and_leave_nothing(
    tmp_path: Path, rootfs: str, root: str
) -> None:
    before = HostState.now()
    bundle = make_bundle(tmp_path, rootfs, ["sleep", "60"])

    def errors() -> dict[str, Any]:
        subreaper()
        found: dict[str, Any] = {}
        assert rt(root, "create", "--bundle", str(bundle), "s1").returncode == 0
        found["again"] = rt(root, "create", "--bundle", str(bundle), "s1")
        found["signal"] = rt(root, "kill", "s1", "SIGNOPE")
        assert rt(root, "start", "s1").returncode == 0
        found["delete"] = rt(root, "delete", "s1")
        found["still"] = state(root, "s1")["status"]
        found["resume"] = rt(root, "resume", "s1")
        pid = state(root, "s1")["pid"]
        found["force"] = rt(root, "delete", "--force", "s1").returncode
        reap(pid)
        found["force_again"] = rt(root, "delete", "--force", "s1").returncode
        found["unknown"] = rt(root, "state", "s1")
        return found

    found = in_child(errors, timeout=120)
    one_line_error(found["again"], "container with id s1 already exists")
    one_line_error(found["signal"], "unknown signal 'SIGNOPE'")
    one_line_error(found["delete"], "cannot delete container s1 that is not stopped: running")
    assert found["still"] == "running"
    one_line_error(found["resume"], "cannot resume container s1: it is running, not paused")
    assert found["force"] == 0 and found["force_again"] == 0  # gone already: fine with --force
    one_line_error(found["unknown"], "container s1 does not exist")
    nothing_left(root, before)


def test_log_json_gets_the_error_as_runc_writes_it(tmp_path: Path, root: str) -> None:
    log = tmp_path / "log.json"
    res = subprocess.run(
        [RUNTIME, "--root", root, "--log", str(log), "--log-format", "json", "state", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 1
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and entry["msg"] == "container nope does not exist"
    assert entry["time"].endswith("Z")


def test_usage_errors_suggest_the_closest_name(root: str) -> None:
    one_line_error(rt(root, "strat", "x"), "unknown command 'strat' (did you mean start?)")
    one_line_error(rt(root, "create", "--bundel", "x", "id"), "did you mean --bundle?")
    one_line_error(rt(root, "kill"), "give a container id")
    assert rt(root, "--systemd-cgroup", "state", "x").stderr.startswith(
        "pynsbind-run: --systemd-cgroup is not supported"
    )


# ---- exec, terminals, hooks ---------------------------------------------------------------


def test_exec_waits_detaches_and_joins_the_container(
    tmp_path: Path, rootfs: str, root: str
) -> None:
    before = HostState.now()
    bundle = make_bundle(tmp_path, rootfs, ["sleep", "60"])

    def execs() -> dict[str, Any]:
        subreaper()
        found: dict[str, Any] = {}
        assert rt(root, "run", "-d", "--bundle", str(bundle), "e1").returncode == 0
        pid = state(root, "e1")["pid"]
        found["wait"] = rt(root, "exec", "e1", "sh", "-c", "hostname; exit 3")
        pid_file = tmp_path / "exec.pid"
        res = rt(root, "exec", "--detach", "--pid-file", str(pid_file), "e1", "sleep", "30")
        assert res.returncode == 0, res.stderr
        epid = int(pid_file.read_text())
        found["same_ns"] = all(
            helpers.host_ns(kind, epid) == helpers.host_ns(kind, pid)
            for kind in ("pid", "mnt", "net", "uts", "ipc")
        )
        process = tmp_path / "process.json"
        process.write_text(
            json.dumps(
                {
                    "args": ["sh", "-c", "id -u; exit 5"],
                    "cwd": "/",
                    "user": {"uid": 1000, "gid": 1000},
                }
            )
        )
        found["process"] = rt(root, "exec", "--process", str(process), "e1")
        assert rt(root, "delete", "--force", "e1").returncode == 0
        # the exec'd process first: a pid namespace's init does not finish exiting
        # until every process of its namespace is reaped, by their parent outside
        reap(epid)
        reap(pid)
        return found

    found = in_child(execs, timeout=120)
    assert (found["wait"].returncode, found["wait"].stdout) == (3, "pynsbind\n")
    assert found["same_ns"]
    assert (found["process"].returncode, found["process"].stdout) == (5, "1000\n")
    nothing_left(root, before)


def test_console_socket_receives_the_terminal(tmp_path: Path, rootfs: str, root: str) -> None:
    before = HostState.now()
    bundle = make_bundle(tmp_path, rootfs, ["sh", "-c", "tty; stty size"])
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = True
    config["process"]["consoleSize"] = {"height": 24, "width": 80}
    (bundle / "config.json").write_text(json.dumps(config))
    sock_path = str(tmp_path / "console.sock")

    def console() -> str:
        subreaper()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(sock_path)
            server.listen(1)
            res = rt(root, "create", "--bundle", str(bundle), "--console-socket", sock_path, "t1")
            assert res.returncode == 0, res.stderr
            conn, _ = server.accept()
            with conn:
                _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        master = fds[0]
        pid = state(root, "t1")["pid"]
        assert rt(root, "start", "t1").returncode == 0
        out = b""
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
        os.close(master)
        reap(pid)
        assert rt(root, "delete", "t1").returncode == 0
        return out.decode()

    out = in_child(console, timeout=120)
    assert out.split() == ["/dev/pts/0", "24", "80"]
    nothing_left(root, before)


def test_hooks_run_in_order_with_the_state(tmp_path: Path, rootfs: str, root: str) -> None:
    before = HostState.now()
    marks = tmp_path / "marks"
    marks.mkdir()
    os.chmod(marks, 0o777)
    script = tmp_path / "hook.sh"
    script.write_text(f'#!/bin/sh\ncat > "{marks}/$1"\n')
    script.chmod(0o755)
    hooks = {
        name: [{"path": "/bin/sh", "args": ["sh", str(script), name]}]
        for name in ("prestart", "createRuntime", "poststart", "poststop")
    }
    bundle = make_bundle(tmp_path, rootfs, ["true"], hooks=hooks)
    res = rt(root, "run", "--bundle", str(bundle), "h1")
    assert res.returncode == 0, res.stderr
    seen = {p.name: json.loads(p.read_text()) for p in marks.iterdir()}
    assert set(seen) == {"prestart", "createRuntime", "poststart", "poststop"}
    assert all(doc["id"] == "h1" and doc["bundle"] == str(bundle) for doc in seen.values())
    assert seen["createRuntime"]["status"] == "creating" and seen["createRuntime"]["pid"] > 0
    assert seen["poststop"]["status"] == "stopped"
    nothing_left(root, before)


def test_a_failing_create_hook_leaves_nothing(tmp_path: Path, rootfs: str, root: str) -> None:
    before = HostState.now()
    hooks = {"createRuntime": [{"path": "/bin/false"}]}
    bundle = make_bundle(tmp_path, rootfs, ["true"], hooks=hooks)
    one_line_error(rt(root, "create", "--bundle", str(bundle), "h2"), "hook /bin/false")
    nothing_left(root, before)


# ---- the rest of the surface ------------------------------------------------------------


def test_list_update_events_features_spec_version(tmp_path: Path, rootfs: str, root: str) -> None:
    before = HostState.now()
    bundle = make_bundle(tmp_path, rootfs, ["sleep", "60"])

    def rest() -> dict[str, Any]:
        subreaper()
        found: dict[str, Any] = {}
        assert rt(root, "run", "-d", "--bundle", str(bundle), "l1").returncode == 0
        pid = state(root, "l1")["pid"]
        found["list"] = json.loads(rt(root, "list", "--format", "json").stdout)
        found["quiet"] = rt(root, "list", "-q").stdout
        resources = tmp_path / "resources.json"
        resources.write_text(json.dumps({"pids": {"limit": 77}}))
        found["update"] = rt(root, "update", "--resources", str(resources), "l1").returncode
        found["update_flag"] = rt(root, "update", "--memory", "64M", "l1").returncode
        found["events"] = json.loads(rt(root, "events", "--stats", "l1").stdout)
        cgroup = json.loads((bundle / "config.json").read_text())["linux"]["cgroupsPath"]
        found["pids_max"] = Path(f"/sys/fs/cgroup/pids{cgroup}/pids.max").read_text().strip()
        found["mem_max"] = (
            Path(f"/sys/fs/cgroup/memory{cgroup}/memory.limit_in_bytes").read_text().strip()
        )
        assert rt(root, "delete", "--force", "l1").returncode == 0
        reap(pid)
        return found

    found = in_child(rest, timeout=120)
    assert [(c["id"], c["status"]) for c in found["list"]] == [("l1", "running")]
    assert found["quiet"] == "l1\n"
    assert found["update"] == 0 and found["pids_max"] == "77"
    assert found["update_flag"] == 0 and found["mem_max"] == str(64 << 20)
    assert found["events"]["type"] == "stats" and found["events"]["data"]["pids"]["current"] >= 1
    features = json.loads(rt(root, "features").stdout)
    assert features["ociVersionMax"] and "createRuntime" in features["hooks"]
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    assert rt(root, "spec", "--bundle", str(spec_dir)).returncode == 0
    assert json.loads((spec_dir / "config.json").read_text())["process"]["args"] == ["sh"]
    one_line_error(rt(root, "spec", "--bundle", str(spec_dir)), "exists already")
    assert rt(root, "--version").stdout.startswith("pynsbind-run version ")
    assert "create" in rt(root, "--help").stdout
    assert "--bundle" in rt(root, "create", "--help").stdout
    nothing_left(root, before)


# ---- rootless -----------------------------------------------------------------------------


def test_a_plain_user_runs_a_rootless_bundle_without_a_cgroup(plain_user: Any) -> None:
    """A plain user's ``spec --rootless`` bundle: cgroups are not delegated to
    users on this host, so, as with runc, the container goes without one (its
    config names none and asks no limit): ``run`` and the lifecycle work, seen
    from inside (root in a user namespace of the user's one uid) and from the
    host (the user's process); what needs a cgroup says so.  A config asking a
    limit, or naming a cgroup, is a clear error instead.  Nothing is left."""
    import shutil
    import tempfile

    busybox = helpers.find_busybox()
    if busybox is None:
        pytest.skip("needs a static busybox (Debian: busybox-static)")
    uid, gid = plain_user.uid, plain_user.gid
    work = Path(tempfile.mkdtemp(dir=plain_user.home))
    root = str(work / "state")
    bundle = work / "bundle"
    helpers.make_rootfs(bundle / "rootfs", busybox)
    for path in (work, bundle):
        os.chown(path, uid, gid)
    before = HostState.now()

    def user(*args: str, output: Any = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
        """pynsbind-run ARGS as the plain user, in the bundle; its output in
        ``output`` (a file: a container left running holds its stdio)"""
        argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
        return subprocess.run(
            [*argv, RUNTIME, "--root", root, *args],
            stdout=output,
            stderr=output,
            text=True,
            cwd=bundle,
            env={"PATH": "/usr/bin:/bin", "HOME": plain_user.home},
            timeout=60,
        )

    def configure(args: list[str], **linux: Any) -> None:
        config = json.loads((bundle / "config.json").read_text())
        config["process"].update(args=args, terminal=False)
        config["linux"].update(linux)
        (bundle / "config.json").write_text(json.dumps(config))

    try:
        made = user("spec", "--rootless")
        assert made.returncode == 0, made.stderr
        configure(["sh", "-c", "id -u; awk '{print $1, $2, $3}' /proc/self/uid_map"])
        plans = Path(plain_user.home) / ".cache" / "pynsbind" / "plans"
        kept = set(plans.iterdir()) if plans.exists() else set()
        for cid in ("r1", "r2"):
            ran = user("run", cid)
            assert (ran.returncode, ran.stdout, ran.stderr) == (0, f"0\n0 {uid} 1\n", "")
        # no plan kept: the launcher would make the next one without a cgroup
        # even where this user could make one
        assert (set(plans.iterdir()) if plans.exists() else set()) == kept
        configure(["sleep", "60"])
        with tempfile.TemporaryFile("w+") as out:
            made = user("create", "r3", output=out)
            out.seek(0)
            assert made.returncode == 0, out.read()
        assert user("start", "r3").returncode == 0
        doc = json.loads(user("state", "r3").stdout)
        assert doc["status"] == "running"
        assert os.stat(f"/proc/{doc['pid']}").st_uid == uid
        paused = user("pause", "r3")
        assert (paused.returncode, paused.stderr) == (
            1,
            "pynsbind-run: cannot pause container r3: it has no cgroup\n",
        )
        assert user("kill", "r3", "KILL").returncode == 0
        gone = user("delete", "--force", "r3")
        assert gone.returncode == 0, gone.stderr
        # a limit needs the cgroup this user cannot make; so does a named one
        for linux in (
            {"resources": {"pids": {"limit": 10}}},
            {"cgroupsPath": f"/pynsbind-rootless-{os.getpid()}"},
        ):
            configure(["true"], **linux)
            failed = user("run", "r4")
            assert failed.returncode == 1
            assert failed.stderr.startswith("pynsbind-run: run: [Errno 13] "), failed.stderr
            assert "not writable by uid" in failed.stderr
            assert failed.stderr.count("\n") == 1
            configure(["true"], resources={}, cgroupsPath="")
        assert os.listdir(root) == []
        assert before.diff(HostState.now()) == {}
    finally:
        shutil.rmtree(work, ignore_errors=True)
