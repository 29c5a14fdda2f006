"""OCI containers from kept plans: pynsbind-run's launcher (csrc/launcher_oci.c)
creates, runs, starts and deletes a container of a bundle whose plan an earlier
create kept, without starting Python.  Real containers, observed from the host
and through the runtime's own ``state``.

That the launcher alone did the work is shown by a Python that cannot start
(PYTHONHOME pointing nowhere: the Python half then fails at once), and every
fallback (a changed config, a damaged plan, an id or cgroup that exists) by the
Python half's answer and by what is left: nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from pynsbind import cgroups
from tests import helpers
from tests.helpers import HostState, in_child
from tests.test_lifecycle import fd_links
from tests.test_runtime import RUNTIME, make_bundle, nothing_left, reap, rt, state, subreaper

pytestmark = [pytest.mark.root]

#: an environment in which the Python half cannot start
NO_PYTHON = {"PYTHONHOME": "/nonexistent-pynsbind-test"}


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty plans cache of this test's (XDG_CACHE_HOME)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PYNSBIND_PLANS_CACHE", raising=False)
    monkeypatch.delenv("PYTHONHOME", raising=False)
    return tmp_path / "cache" / "pynsbind" / "plans"


@pytest.fixture
def root(tmp_path: Path) -> str:
    return str(tmp_path / "state")


def launcher(root: str, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    """``pynsbind-run --root ROOT ARGS`` where only the launcher can work."""
    return rt(root, *args, env={**os.environ, **NO_PYTHON}, **kw)


def cgroup_dirs(bundle: Path) -> list[str]:
    """The directories of the bundle's cgroup in every hierarchy (that exist)."""
    rel = json.loads((bundle / "config.json").read_text())["linux"]["cgroupsPath"].strip("/")
    return [d for top in helpers.cgroup_roots() if os.path.isdir(d := os.path.join(top, rel))]


def kept(cache: Path) -> list[Path]:
    return sorted(cache.iterdir()) if cache.is_dir() else []


@pytest.mark.vm
def test_run_from_a_kept_plan_starts_no_python(
    tmp_path: Path, rootfs: str, root: str, cache: Path
) -> None:
    before = HostState.now()
    bundle = make_bundle(tmp_path, rootfs, ["sh", "-c", "echo out $$; echo err >&2; exit 42"])
    # no plan yet: the launcher hands it to Python, which cannot start
    assert launcher(root, "run", "--bundle", str(bundle), "r0").returncode != 0
    nothing_left(root, before)
    first = rt(root, "run", "--bundle", str(bundle), "r1")
    assert (first.returncode, first.stdout, first.stderr) == (42, "out 1\n", "err\n")
    assert len(kept(cache)) == 1
    for i in range(3):
        res = launcher(root, "run", "--bundle", str(bundle), f"r{i + 2}")
        assert (res.returncode, res.stdout, res.stderr) == (42, "out 1\n", "err\n")
    assert cgroup_dirs(bundle) == []
    nothing_left(root, before)
    # -b and --bundle=, and the accepted flags, are the same command line
    res = launcher(root, "run", f"--bundle={bundle}", "--no-pivot", "r9")
    assert res.returncode == 42
    nothing_left(root, before)


def test_the_state_of_a_running_container_is_the_runtimes(
    tmp_path: Path, rootfs: str, root: str
) -> None:
    """While `run` waits, `state`, `ps` and `kill` (the Python half) see the
    container the launcher made as one of their own; SIGTERM to `run` is
    forwarded to the container."""
    before = HostState.now()
    script = 'trap "exit 7" TERM; echo up; while :; do sleep 0.05; done'
    bundle = make_bundle(tmp_path, rootfs, ["sh", "-c", script])
    assert rt(root, "run", "-d", "--bundle", str(bundle), "k0").returncode == 0
    assert helpers.wait_for(lambda: rt(root, "delete", "--force", "k0").returncode == 0)
    out = tmp_path / "out"
    with open(out, "w") as f:
        run = subprocess.Popen(
            [RUNTIME, "--root", root, "run", "--bundle", str(bundle), "k1"],
            stdout=f,
            stderr=f,
            env={**os.environ, **NO_PYTHON},
        )
    try:
        assert helpers.wait_for(lambda: out.read_text() == "up\n", limit=30)
        doc = state(root, "k1")
        assert doc["status"] == "running" and doc["bundle"] == str(bundle)
        assert doc["pid"] in json.loads(rt(root, "ps", "--format", "json", "k1").stdout)
        assert helpers.host_ns("pid", doc["pid"]) != helpers.host_ns("pid")
        assert all(os.path.isdir(d) for d in cgroup_dirs(bundle)) and cgroup_dirs(bundle)
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=30) == 7
    finally:
        run.kill()
        run.wait()
    nothing_left(root, before)


@pytest.mark.vm
def test_create_start_delete_from_a_kept_plan(
    tmp_path: Path, rootfs: str, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The launcher's create leaves the container's process waiting, sealed
    as the Python create leaves it (nothing of the caller's argv or environ
    in its copy of the launcher, no fd of the host's but its stdio, the
    engine's socket, the sealed init and its gate), a child of the caller;
    start lets it run; delete removes it once stopped, and leaves one that
    runs alone."""
    secret = "pynsbind-secret-4f1e"
    before = HostState.now()
    script = 'trap "exit 3" TERM; echo started; while :; do sleep 0.05; done'
    bundle = make_bundle(tmp_path, rootfs, ["sh", "-c", script])
    pid_file = tmp_path / "pid"

    def lifecycle() -> dict[str, Any]:
        subreaper()
        found: dict[str, Any] = {}
        args = ["create", "--bundle", str(bundle), "--pid-file", str(pid_file)]
        assert rt(root, *args, "c0").returncode == 0  # (Python: keeps the plan)
        first = int(pid_file.read_text())
        assert rt(root, "delete", "--force", "c0").returncode == 0
        reap(first)
        found["subreaper"] = os.getpid()
        out = tmp_path / "out"
        env = {**os.environ, **NO_PYTHON, "PYNSBIND_SECRET": secret}
        with open(out, "w") as f:
            res = rt(root, *args, "c1", secret, stdout=f, env=env)
        found["extra word"] = res.returncode  # two ids: not the launcher's
        with open(out, "w") as f:
            res = rt(root, *args, "c1", stdout=f, env=env)
        found["create"] = (res.returncode, res.stderr)
        pid = int(pid_file.read_text())
        found["pid"] = pid
        found["state"] = state(root, "c1")
        found["parent"] = helpers.status_field("PPid", pid)
        found["cmdline"] = Path(f"/proc/{pid}/cmdline").read_bytes()
        found["environ"] = Path(f"/proc/{pid}/environ").read_bytes()
        found["fds"] = fd_links(pid)
        found["out_before"] = out.read_text()
        found["delete_created"] = launcher(root, "delete", "c1").returncode
        found["start"] = launcher(root, "start", "c1").returncode
        assert helpers.wait_for(lambda: out.read_text() == "started\n")
        found["running"] = state(root, "c1")["status"]
        running = launcher(root, "delete", "c1")
        found["delete_running"] = running.returncode
        found["still"] = state(root, "c1")["status"]
        found["kill"] = launcher(root, "kill", "c1").returncode
        found["status"] = reap(pid)
        found["stopped"] = state(root, "c1")["status"]
        found["delete"] = launcher(root, "delete", "c1").returncode
        found["gone"] = rt(root, "state", "c1").returncode
        return found

    monkeypatch.delenv("PYNSBIND_SECRET", raising=False)
    found = in_child(lifecycle, timeout=120)
    assert found["extra word"] != 0
    assert found["create"] == (0, "")
    doc = found["state"]
    assert doc["status"] == "created" and doc["pid"] == found["pid"] and doc["id"] == "c1"
    assert int(found["parent"]) == found["subreaper"]  # the launcher has exited
    assert found["cmdline"].strip(b"\0") == b""
    assert secret.encode() not in found["environ"]
    links = found["fds"]
    gate = os.path.join(root, "c1", "exec.fifo")
    assert {0, 1, 2} <= set(links) and all(
        link.startswith(("socket:", "/memfd:pynsbind-init")) or link == gate
        for n, link in links.items()
        if n > 2
    ), links
    assert found["out_before"] == ""
    # a created container is deleted by the Python half (it must be killed)
    assert found["delete_created"] != 0
    assert found["start"] == 0 and found["running"] == "running"
    assert found["delete_running"] != 0 and found["still"] == "running" and found["kill"] == 0
    assert os.WIFEXITED(found["status"]) and os.WEXITSTATUS(found["status"]) == 3
    assert found["stopped"] == "stopped" and found["delete"] == 0 and found["gone"] != 0
    assert cgroup_dirs(bundle) == []
    nothing_left(root, before)


def test_a_changed_config_takes_the_python_path(
    tmp_path: Path, rootfs: str, root: str, cache: Path
) -> None:
    before = HostState.now()
    bundle = make_bundle(tmp_path, rootfs, ["sh", "-c", "exit 5"])
    assert rt(root, "run", "--bundle", str(bundle), "a1").returncode == 5
    assert launcher(root, "run", "--bundle", str(bundle), "a2").returncode == 5
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["args"] = ["sh", "-c", "exit 6"]
    (bundle / "config.json").write_text(json.dumps(config))
    # the plan is of the config it was made from: the launcher leaves this one to Python
    assert launcher(root, "run", "--bundle", str(bundle), "a3").returncode not in (5, 6)
    nothing_left(root, before)
    assert rt(root, "run", "--bundle", str(bundle), "a4").returncode == 6
    assert launcher(root, "run", "--bundle", str(bundle), "a5").returncode == 6
    # other words, another directory: another key
    assert launcher(root, "run", "--bundle", str(bundle), "--keep", "a6").returncode not in (5, 6)
    res = rt(root, "run", "--bundle", str(bundle), "a7", cwd="/")
    assert res.returncode == 6
    nothing_left(root, before)


def test_an_existing_id_or_cgroup_is_refused_and_left_alone(
    tmp_path: Path, rootfs: str, root: str
) -> None:
    """A second create with the same id, or of a cgroup that exists, goes to
    the Python half (which says what is wrong) with nothing of the existing
    container touched."""
    before = HostState.now()
    bundle = make_bundle(tmp_path, rootfs, ["sleep", "60"])

    def twice() -> dict[str, Any]:
        subreaper()
        found: dict[str, Any] = {}
        assert rt(root, "create", "--bundle", str(bundle), "e0").returncode == 0
        assert rt(root, "delete", "--force", "e0").returncode == 0
        assert launcher(root, "create", "--bundle", str(bundle), "e1").returncode == 0
        found["pid"] = state(root, "e1")["pid"]
        found["dirs"] = cgroup_dirs(bundle)
        same_id = rt(root, "create", "--bundle", str(bundle), "e1")
        found["same_id"] = (same_id.returncode, same_id.stderr)
        same_cgroup = rt(root, "create", "--bundle", str(bundle), "e2")
        found["same_cgroup"] = (same_cgroup.returncode, same_cgroup.stderr)
        found["e2"] = os.path.exists(os.path.join(root, "e2"))
        found["after"] = state(root, "e1")
        found["dirs_after"] = cgroup_dirs(bundle)
        found["procs"] = [Path(d, "cgroup.procs").read_text().split() for d in found["dirs_after"]]
        assert rt(root, "delete", "--force", "e1").returncode == 0
        reap(found["pid"])
        return found

    found = in_child(twice, timeout=120)
    code, err = found["same_id"]
    assert code != 0 and "already exists" in err
    code, err = found["same_cgroup"]
    assert code != 0 and "exists already" in err and not found["e2"]
    assert found["after"]["status"] == "created" and found["after"]["pid"] == found["pid"]
    assert found["dirs_after"] == found["dirs"] and found["dirs"]
    assert all(str(found["pid"]) in procs for procs in found["procs"][1:])
    nothing_left(root, before)


def test_a_damaged_plan_is_never_used(tmp_path: Path, rootfs: str, root: str, cache: Path) -> None:
    """Every truncation of the kept file, and one with bytes after it, sends
    the launcher to the Python half (which cannot start here) with nothing
    left: no state, no cgroup, no process."""
    before = HostState.now()
    bundle = make_bundle(tmp_path, rootfs, ["true"])
    assert rt(root, "run", "--bundle", str(bundle), "d0").returncode == 0
    (path,) = kept(cache)
    whole = path.read_bytes()
    assert launcher(root, "run", "--bundle", str(bundle), "d1").returncode == 0
    step = max(1, len(whole) // 60)
    for n in [*range(0, len(whole), step), len(whole) - 1]:
        path.write_bytes(whole[:n])
        res = launcher(root, "run", "--bundle", str(bundle), "d2")
        assert res.returncode != 0, n
        assert cgroup_dirs(bundle) == [], n
    path.write_bytes(whole + b"\0")
    assert launcher(root, "run", "--bundle", str(bundle), "d3").returncode != 0
    path.write_bytes(whole)
    os.chmod(path, 0o664)  # writable by its group: not trusted
    assert launcher(root, "run", "--bundle", str(bundle), "d4").returncode != 0
    os.chmod(path, 0o600)
    assert launcher(root, "run", "--bundle", str(bundle), "d5").returncode == 0
    nothing_left(root, before)


def test_processes_left_in_the_cgroup_are_the_python_deletes(
    tmp_path: Path, rootfs: str, root: str
) -> None:
    """A container without a pid namespace of its own may leave a process
    behind in its cgroup when its first one exits: the launcher's `run` hands
    the delete to the Python half, which kills it."""
    before = HostState.now()
    linux = _config_without_pid_ns(tmp_path, rootfs)
    bundle = make_bundle(tmp_path, rootfs, ["sh", "-c", "sleep 60 & exit 0"], linux=linux)
    for cid in ("l1", "l2"):
        t0 = time.monotonic()
        res = rt(root, "run", "--bundle", str(bundle), cid, stdout=subprocess.DEVNULL)
        assert res.returncode == 0, res.stderr
        assert time.monotonic() - t0 < 60
        assert cgroup_dirs(bundle) == []
    nothing_left(root, before)


def _config_without_pid_ns(tmp_path: Path, rootfs: str) -> dict[str, Any]:
    probe = make_bundle(tmp_path, rootfs, ["true"])
    linux: dict[str, Any] = json.loads((probe / "config.json").read_text())["linux"]
    linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "pid"]
    return linux


def test_delete_acts_only_on_a_state_it_can_trust(tmp_path: Path, root: str) -> None:
    """The launcher's delete removes nothing but the container's cgroup, and
    only from a root that is the caller's alone: a state.json that lists
    other directories, is not a whole object, or says anything but
    ``"hooks": false``, goes to the Python half (which cannot start here),
    and the directories it names stay."""
    victim = tmp_path / "victim"
    cgroup = f"pynsbind-lt-{os.getpid()}-victim"
    made = []
    for top in [h.base for h in cgroups.host().hierarchies]:
        os.mkdir(os.path.join(top, cgroup))
        made.append(os.path.join(top, cgroup))
    try:
        good = {"hooks": False, "pid": 999999999, "pid_start": 1, "cgroup": cgroup}
        states = {
            "other dirs": {**good, "cgroup_dirs": [str(victim)]},
            "climbing": {**good, "cgroup": "..", "cgroup_dirs": [str(tmp_path / "..")]},
            "hooks unknown": {**good, "hooks": "false", "cgroup_dirs": made},
            "a huge pid": {**good, "pid": 2**32 + 1, "cgroup_dirs": made},
        }
        texts = {name: json.dumps(doc) for name, doc in states.items()}
        texts["garbage after"] = json.dumps({**good, "cgroup_dirs": made}) + " x"
        texts["falsey"] = json.dumps({**good, "cgroup_dirs": made}).replace("false", "falsey")
        os.makedirs(root, mode=0o700)
        for name, text in texts.items():
            victim.mkdir(exist_ok=True)
            d = Path(root, "v1")
            d.mkdir()
            (d / "state.json").write_text(text)
            assert launcher(root, "delete", "v1").returncode != 0, name
            assert victim.is_dir() and all(os.path.isdir(m) for m in made), name
            (d / "state.json").unlink()
            d.rmdir()
        # the same state, well formed, in a root others may write into: not trusted
        os.chmod(root, 0o777)
        d = Path(root, "v1")
        d.mkdir()
        (d / "state.json").write_text(json.dumps({**good, "cgroup_dirs": made}))
        assert launcher(root, "delete", "v1").returncode != 0
        assert all(os.path.isdir(m) for m in made)
        # and in the caller's own root, the launcher removes it
        os.chmod(root, 0o700)
        assert launcher(root, "delete", "v1").returncode == 0
        assert not d.exists() and not any(os.path.isdir(m) for m in made)
    finally:
        for m in made:
            if os.path.isdir(m):
                os.rmdir(m)


@pytest.mark.parametrize("half", ["launcher", "python"])
def test_a_signal_during_create_leaves_all_or_nothing(
    tmp_path: Path, rootfs: str, root: str, half: str
) -> None:
    """SIGTERM or SIGINT at any moment of a create, the launcher's or the
    Python half's: it either exits 0 with the container created, or ends on
    the signal with nothing of it left (a loop: the signal lands at a
    different point each time; one that comes while the container is made
    undoes it).  The pid file is written by a rename: a symlink there is
    replaced, never followed."""
    if half == "launcher":
        env, step = {**os.environ, **NO_PYTHON}, 0.0005
    else:
        env, step = {**os.environ, "PYNSBIND_PLANS_CACHE": "0"}, 0.012
    before = HostState.now()
    bundle = make_bundle(tmp_path, rootfs, ["sleep", "60"])
    victim = tmp_path / "victim"
    victim.write_text("mine\n")

    def race() -> list[tuple[int, bool, bool, bool]]:
        subreaper()
        assert rt(root, "create", "--bundle", str(bundle), "s0").returncode == 0
        pid = state(root, "s0")["pid"]
        assert rt(root, "delete", "--force", "s0").returncode == 0
        reap(pid)
        out = []
        for i in range(24):
            cid = f"s{i + 1}"
            pid_file = tmp_path / f"pid{i}"
            pid_file.symlink_to(victim)
            argv = ["create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid]
            with open(tmp_path / "err", "w") as err:
                proc = subprocess.Popen(
                    [RUNTIME, "--root", root, *argv],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
                time.sleep((i % 8) * step)
                proc.send_signal(signal.SIGTERM if i % 2 else signal.SIGINT)
                rc = proc.wait(timeout=30)
            exists = os.path.exists(os.path.join(root, cid))
            # SIGINT while the interpreter itself starts (before any code of
            # ours) ends it with status 1 and this report of CPython's
            early = (tmp_path / "err").read_text().startswith("Fatal Python error: init_")
            out.append((rc, exists, pid_file.is_symlink(), early))
            if exists:
                doc = state(root, cid)
                assert doc["status"] == "created", doc
                assert int(pid_file.read_text()) == doc["pid"]
                assert rt(root, "delete", "--force", cid).returncode == 0
                reap(doc["pid"])
        return out

    found = in_child(race, timeout=300)
    for rc, exists, link, early in found:
        assert (rc == 0) == exists, found
        assert rc in (0, -signal.SIGTERM, -signal.SIGINT) or (rc == 1 and early), found
        assert not (exists and link), found
    assert victim.read_text() == "mine\n"
    assert cgroup_dirs(bundle) == []
    nothing_left(root, before)


def test_kill_signals_the_first_process_by_its_pidfd(
    tmp_path: Path, rootfs: str, root: str
) -> None:
    """The launcher's kill: a number or a name, with or without SIG, to the
    container's first process; a stopped container, an unknown signal,
    ``--all`` and a SIGKILL to a paused container (which must be thawed
    after) are the Python half's."""
    before = HostState.now()
    script = 'trap "exit 7" TERM; trap "exit 8" USR1; echo up; while :; do sleep 0.05; done'
    bundle = make_bundle(tmp_path, rootfs, ["sh", "-c", script])

    def kills() -> dict[str, Any]:
        subreaper()
        found: dict[str, Any] = {}
        for cid, sig in (("k1", "TERM"), ("k2", "sigusr1"), ("k3", "15"), ("k4", "KILL")):
            out = tmp_path / f"out-{cid}"
            with open(out, "w") as f:
                assert rt(root, "run", "-d", "--bundle", str(bundle), cid, stdout=f).returncode == 0
            pid = state(root, cid)["pid"]
            assert helpers.wait_for(lambda out=out: out.read_text() == "up\n")
            found[f"unknown {cid}"] = launcher(root, "kill", cid, "NOPE").returncode
            found[f"all {cid}"] = launcher(root, "kill", "--all", cid, sig).returncode
            found[f"kill {cid}"] = launcher(root, "kill", cid, sig).returncode
            status = reap(pid)
            found[f"status {cid}"] = (
                os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
            )
            found[f"again {cid}"] = launcher(root, "kill", cid, sig).returncode
            assert launcher(root, "delete", cid).returncode == 0
        assert rt(root, "run", "-d", "--bundle", str(bundle), "p1").returncode == 0
        pid = state(root, "p1")["pid"]
        assert rt(root, "pause", "p1").returncode == 0
        found["paused kill"] = launcher(root, "kill", "p1", "KILL").returncode
        found["paused still"] = state(root, "p1")["status"]
        found["python kill"] = rt(root, "kill", "p1", "KILL").returncode
        status = reap(pid)
        found["paused status"] = os.WTERMSIG(status) if os.WIFSIGNALED(status) else -1
        assert rt(root, "delete", "p1").returncode == 0
        return found

    found = in_child(kills, timeout=120)
    for cid, code in (("k1", 7), ("k2", 8), ("k3", 7), ("k4", -signal.SIGKILL)):
        assert found[f"unknown {cid}"] != 0 and found[f"all {cid}"] != 0, found
        assert found[f"kill {cid}"] == 0 and found[f"status {cid}"] == code, found
        assert found[f"again {cid}"] != 0, found
    assert found["paused kill"] != 0 and found["paused still"] == "paused"
    assert found["python kill"] == 0 and found["paused status"] == signal.SIGKILL
    assert cgroup_dirs(bundle) == []
    nothing_left(root, before)


@pytest.mark.parametrize("half", ["launcher", "python"])
def test_a_signal_to_run_at_any_point_leaves_nothing(
    tmp_path: Path, rootfs: str, root: str, half: str
) -> None:
    """SIGTERM at any moment of a `run`: before the container is made it ends
    run with nothing made; while it is made, it undoes it; once it runs, it
    is forwarded (the container's trap answers 7) and run deletes it.  In a
    loop, through each half: whatever the moment, nothing is left."""
    before = HostState.now()
    script = 'trap "exit 7" TERM; i=0; while [ $i -lt 60 ]; do sleep 0.05; i=$((i+1)); done'
    bundle = make_bundle(tmp_path, rootfs, ["sh", "-c", script])
    if half == "launcher":
        env, step = {**os.environ, **NO_PYTHON}, 0.0008
        assert rt(root, "run", "--bundle", str(bundle), "t0").returncode == 0  # keeps the plan
    else:
        env, step = {**os.environ, "PYNSBIND_PLANS_CACHE": "0"}, 0.015
    codes = set()
    for i in range(16):
        with open(tmp_path / "out", "w") as f:
            proc = subprocess.Popen(
                [RUNTIME, "--root", root, "run", "--bundle", str(bundle), f"t{i + 1}"],
                env=env,
                stdout=f,
                stderr=f,
            )
            time.sleep((i % 8) * step)
            proc.send_signal(signal.SIGTERM)
            codes.add(proc.wait(timeout=60))
        assert cgroup_dirs(bundle) == [], i
        nothing_left(root, before)
    assert codes <= {0, 7, -signal.SIGTERM}, codes


@pytest.mark.vm
def test_state_prints_what_the_python_half_prints(tmp_path: Path, rootfs: str, root: str) -> None:
    """The launcher's ``state``: byte for byte the Python half's document, at
    each status (created, running, paused, stopped), annotations with escapes
    and characters beyond ASCII included; a state it could not print as
    json.dumps would (a duplicate key, an escape json.dumps would not write,
    a member that is not a string, a container still being created), or a
    state.json that is not strict JSON, is the Python half's."""
    before = HostState.now()
    notes = {"b": 'x"y\\z\n\t\u0001', "a": "\u00e9\U0001f600", "io.podman/long": "v" * 300}
    bundle = make_bundle(tmp_path, rootfs, ["sleep", "60"], annotations=notes)
    plain = make_bundle(tmp_path, rootfs, ["sleep", "60"])
    python = {**os.environ, "PYNSBIND_PLANS_CACHE": "0"}

    def both(cid: str) -> tuple[subprocess.CompletedProcess[str], str]:
        c = launcher(root, "state", cid)
        p = rt(root, "state", cid, env=python)
        assert p.returncode == 0, p.stderr
        return c, p.stdout

    def states() -> dict[str, Any]:
        subreaper()
        found: dict[str, Any] = {}
        for cid, b in (("s1", bundle), ("s2", plain)):
            assert rt(root, "create", "--bundle", str(b), cid).returncode == 0
            pid = state(root, cid)["pid"]
            for step in ("created", "running", "paused", "stopped"):
                if step == "running":
                    assert rt(root, "start", cid).returncode == 0
                elif step == "paused":
                    assert rt(root, "pause", cid).returncode == 0
                elif step == "stopped":
                    assert rt(root, "kill", cid, "KILL").returncode == 0
                    reap(pid)
                c, p = both(cid)
                found[f"{cid} {step}"] = (c.returncode, c.stdout == p, json.loads(p)["status"])
            found[f"{cid} doc"] = json.loads(p)
            assert rt(root, "delete", cid).returncode == 0
        # states the launcher leaves to Python (which cannot start here)
        d = Path(root, "f1")
        d.mkdir()
        found["creating"] = launcher(root, "state", "f1").returncode
        good = {"id": "f1", "bundle": str(bundle), "pid": 999999999, "pid_start": 1}
        forged = {
            "a duplicate key": json.dumps(good)[:-1] + ', "annotations": {"k": "1", "k": "2"}}',
            "an escape of a printable": json.dumps(good).replace(str(bundle)[-3:], "\\u0041"),
            "an upper-case hex escape": json.dumps({**good, "owner": "\u00e9"}).replace("e9", "E9"),
            "a null rootfs": json.dumps({**good, "rootfs": None}),
            "a number annotation": json.dumps({**good, "annotations": {"k": 1}}),
            "a member twice": json.dumps(good)[:-1] + ', "pid": 1}',
            "a raw newline": json.dumps({**good, "owner": "a"}).replace('"a"', '"a\nb"'),
            "a start time 1.0": json.dumps({**good, "pid_start": 1.0}),
            "a cut document": json.dumps(good)[:-1],
            "NaN": json.dumps({**good, "rootfs": float("nan")}),
        }
        for name, text in forged.items():
            (d / "state.json").write_text(text)
            res = launcher(root, "state", "f1")
            found[f"forged {name}"] = (res.returncode, res.stdout)
        (d / "state.json").write_text(json.dumps({**good, "annotations": None}))
        c, p = both("f1")
        found["null annotations"] = (c.returncode, c.stdout == p, json.loads(p))
        # no start time (a first process gone before create read it): stopped,
        # whatever process has the pid now (none here)
        for name, doc in (("no start", good), ("null start", {**good, "pid_start": None})):
            doc = {k: v for k, v in doc.items() if k != "pid_start" or name == "null start"}
            (d / "state.json").write_text(json.dumps(doc))
            p = rt(root, "state", "f1", env=python)
            found[name] = (p.returncode, json.loads(p.stdout)["status"] if p.stdout else p.stderr)
        (d / "state.json").unlink()
        d.rmdir()
        return found

    found = in_child(states, timeout=120)
    for cid in ("s1", "s2"):
        for step in ("created", "running", "paused", "stopped"):
            assert found[f"{cid} {step}"] == (0, True, step), (cid, found)
    assert found["s1 doc"]["annotations"] == notes and found["s1 doc"]["pid"] == 0
    assert "annotations" not in found["s2 doc"]
    assert found["creating"] != 0
    forged = [k for k in found if k.startswith("forged ")]
    assert len(forged) == 10
    for name in forged:
        assert found[name][0] != 0 and found[name][1] == "", name
    assert found["no start"] == found["null start"] == (0, "stopped"), found
    code, same, doc = found["null annotations"]
    assert (code, same, doc["status"]) == (0, True, "stopped") and "annotations" not in doc
    nothing_left(root, before)
