"""Isolation guarantees as properties over generated specs, each checked from
inside the container (the static probe) and from the host.  The numbers are
those of the list in docs/testing.md."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pynsbind
from pynsbind import Capability, Namespace, SpawnError, Spec, SpecError
from tests import strategies as S
from tests.conftest import HostState, examples, host_ns

pytestmark = [pytest.mark.root, pytest.mark.vm]

ALL_KINDS = {k.proc_name: k for k in Namespace}


def spec_for(rootfs: str, probe: str, ns: Namespace, *args: str, **fields: Any) -> Spec:
    """The probe in a container of ``ns``: from the rootfs when there is a mount
    namespace, else from the host's filesystem."""
    if ns & Namespace.MNT:
        return Spec(args=["/bin/probe", *args], rootfs=rootfs, namespaces=ns, **fields)
    return Spec(args=[probe, *args], namespaces=ns, **fields)


def inside(spec: Spec, **io: Any) -> dict[str, Any]:
    res = pynsbind.run(spec=spec, capture_output=True, timeout=60, **io)
    assert res.returncode == 0, (res.returncode, res.stderr)
    assert isinstance(res.stdout, bytes)
    return json.loads(res.stdout)


def with_maps(ns: Namespace, fields: dict[str, Any]) -> dict[str, Any]:
    if ns & Namespace.USER:
        # root of the new namespace is the host's root, so the host's files
        # (the probe on the host) stay readable
        fields.setdefault("uid_map", [(0, 0, 65536)])
        fields.setdefault("gid_map", [(0, 0, 65536)])
    return fields


# 1 and 2 ------------------------------------------------------------------------


@given(ns=S.namespace_sets(), hostname=S.hostnames)
def test_1_2_namespaces_asked_differ_the_rest_is_the_hosts(
    rootfs: str, probe: str, ns: Namespace, hostname: str
) -> None:
    before = HostState.now()
    fields = with_maps(ns, {"hostname": hostname} if ns & Namespace.UTS else {})
    spec = spec_for(rootfs, probe, ns, "sleep", "30", **fields)
    proc = pynsbind.spawn(spec, stdout=pynsbind.PIPE)
    with proc:
        assert proc.stdout is not None
        proc.stdout.readline()
        # from the host: the process's namespaces
        for name, kind in ALL_KINDS.items():
            same = host_ns(name, proc.pid) == host_ns(name)
            assert same == (not ns & kind), name
        out = None
        if ns:  # from the inside, through exec, which enters the same namespaces
            seen = proc.exec([spec.args[0], "info"], stdout=pynsbind.PIPE)
            out, _ = seen.communicate(timeout=30)
    if out is not None:
        info = json.loads(out)
        for name, kind in ALL_KINDS.items():
            if name == "mnt" and ns & Namespace.PID and not ns & Namespace.MNT:
                continue  # the host's /proc shows the host's pid namespace: no /proc/self
            assert (info["ns"][name] == host_ns(name)) == (not ns & kind), name
    assert before.diff(HostState.now()) == {}


# 3 ------------------------------------------------------------------------------


@settings(max_examples=examples(10))
@given(children=st.integers(0, 4), extra=S.namespace_sets(user=False))
def test_3_pid_namespace(rootfs: str, probe: str, children: int, extra: Namespace) -> None:
    ns = extra | Namespace.PID | Namespace.MNT
    # the sleeps die with the shell: it is the namespace's init
    script = "for i in $(seq %d); do sleep 5 & done; /bin/probe ps; /bin/probe kill %d 0"
    host_pid = os.getpid()  # a host process the container must not reach
    res = pynsbind.run(
        ["/bin/sh", "-c", script % (children, host_pid)],
        rootfs=rootfs,
        namespaces=ns,
        capture_output=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    ps_line, kill_line = res.stdout.decode().splitlines()[-2:]  # type: ignore[union-attr]
    pids = json.loads(ps_line)["pids"]
    assert pids[0] == 1
    # the shell (1), its sleeps, the probe itself: nothing else
    assert len(pids) == 1 + children + 1
    assert json.loads(kill_line)["errno"] == errno.ESRCH
    info = inside(spec_for(rootfs, probe, ns, "info"))
    assert info["pid"] == 1 and info["ppid"] == 0


# 4 ------------------------------------------------------------------------------


@given(hostname=S.hostnames, domainname=S.domainnames, new=S.hostnames)
def test_4_hostname(rootfs: str, hostname: str, domainname: str | None, new: str) -> None:
    host = os.uname().nodename
    host_domain = Path("/proc/sys/kernel/domainname").read_text().strip()
    script = f"hostname; /bin/probe sethostname {new}; hostname; cat /proc/sys/kernel/domainname"
    res = pynsbind.run(
        ["/bin/sh", "-c", script],
        rootfs=rootfs,
        hostname=hostname,
        domainname=domainname,
        readonly_paths=[],
        capabilities=[Capability["SYS_ADMIN"]],
        capture_output=True,
    )
    lines = res.stdout.decode().splitlines()  # type: ignore[union-attr]
    assert lines[0] == hostname
    assert json.loads(lines[1])["errno"] == 0 and lines[2] == new
    if domainname is not None:
        assert lines[3] == domainname
    assert os.uname().nodename == host
    assert Path("/proc/sys/kernel/domainname").read_text().strip() == host_domain


# 5 ------------------------------------------------------------------------------


@settings(max_examples=examples(15))
@given(data=st.data(), readonly_root=st.booleans())
def test_5_mounts(rootfs: str, data: st.DataObject, readonly_root: bool) -> None:
    before = HostState.now()
    with tempfile.TemporaryDirectory(prefix="pynsbind-mnt-") as scratch:
        os.chmod(scratch, 0o755)
        mounts = data.draw(S.mount_lists(scratch))
        checks = " ".join(f"{m.target}" for m, _ in mounts)
        script = f"for d in {checks}; do /bin/probe write $d/f; done; cat /proc/self/mountinfo"
        res = pynsbind.run(
            ["/bin/sh", "-c", script],
            rootfs=rootfs,
            mounts=[*pynsbind.default_mounts(), *(m for m, _ in mounts)],
            readonly_rootfs=readonly_root,
            capture_output=True,
            timeout=60,
        )
        assert res.returncode == 0, res.stderr
        lines = res.stdout.decode().splitlines()  # type: ignore[union-attr]
        results = [json.loads(line)["errno"] for line in lines[: len(mounts)]]
        mountinfo = {line.split()[4]: line.split() for line in lines[len(mounts) :]}
        for (m, mode), err in zip(mounts, results, strict=True):
            assert m.target in mountinfo
            opts = mountinfo[m.target][5].split(",")
            if mode == "ro":
                assert err == errno.EROFS and "ro" in opts
            else:
                assert err == 0 and "rw" in opts
                if m.kind == "bind":
                    assert os.path.exists(os.path.join(m.source or "", "f"))
        assert ("ro" in mountinfo["/"][5].split(",")) == readonly_root
    assert before.diff(HostState.now()) == {}


# 6 ------------------------------------------------------------------------------


@settings(max_examples=examples(15))
@given(maps=S.id_maps(), data=st.data())
def test_6_id_maps_and_ownership(
    rootfs: str, maps: tuple[list[Any], list[Any]], data: st.DataObject
) -> None:
    uid_map, gid_map = maps
    user = data.draw(st.sampled_from([m.inside for m in uid_map]))
    group = data.draw(st.sampled_from([m.inside for m in gid_map]))
    owner = data.draw(st.integers(0, 300000))  # a host uid that owns a file
    marker = Path(rootfs) / "tmp" / f"own-{os.getpid()}-{owner}"
    marker.write_text("x")
    os.chown(marker, owner, owner)
    try:
        script = f"/bin/probe stat /tmp/{marker.name}; /bin/probe info"
        res = pynsbind.run(
            ["/bin/sh", "-c", script],
            rootfs=rootfs,
            namespaces=pynsbind.spec.default_namespaces() | Namespace.USER,
            uid_map=uid_map,
            gid_map=gid_map,
            user=(user, group),
            capture_output=True,
        )
    finally:
        marker.unlink()
    assert res.returncode == 0, res.stderr
    stat_line, info_line = res.stdout.decode().splitlines()  # type: ignore[union-attr]
    st_, info = json.loads(stat_line), json.loads(info_line)

    def shown(host_id: int, maps: list[Any]) -> int:
        for m in maps:
            if m.outside <= host_id < m.outside + m.count:
                return m.inside + host_id - m.outside
        return 65534

    assert [line.split() for line in info["uid_map"].splitlines()] == [
        [str(m.inside), str(m.outside), str(m.count)] for m in uid_map
    ]
    assert [line.split() for line in info["gid_map"].splitlines()] == [
        [str(m.inside), str(m.outside), str(m.count)] for m in gid_map
    ]
    assert (info["uid"], info["gid"]) == (user, group)
    assert (st_["uid"], st_["gid"]) == (shown(owner, uid_map), shown(owner, gid_map))


# 7 ------------------------------------------------------------------------------


@settings(max_examples=examples(10))
@given(extra=S.namespace_sets(user=False, mnt=True))
def test_7_network(rootfs: str, extra: Namespace) -> None:
    ns = extra | Namespace.NET
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    try:
        port = srv.getsockname()[1]
        script = f"/bin/probe ifaces; /bin/probe connect 127.0.0.1 {port}"
        res = pynsbind.run(
            ["/bin/sh", "-c", script], rootfs=rootfs, namespaces=ns, capture_output=True
        )
        ifaces, conn = (json.loads(x) for x in res.stdout.decode().splitlines())  # type: ignore[union-attr]
        assert ifaces["ifaces"] == {"lo": {"up": True}}
        assert conn["errno"] == errno.ECONNREFUSED
    finally:
        srv.close()


# 8 ------------------------------------------------------------------------------


@settings(max_examples=examples(10))
@given(key=st.integers(1, 2**30), name=st.from_regex(r"\A/[a-z]{1,10}\Z"))
def test_8_ipc_objects_stay_in_their_container(rootfs: str, key: int, name: str) -> None:
    mounts = pynsbind.default_mounts()
    maker = pynsbind.spawn(
        Spec(
            args=[
                "/bin/sh",
                "-c",
                f"/bin/probe shm_create {key}; /bin/probe mq_create {name}; exec /bin/probe sleep 30",
            ],
            rootfs=rootfs,
            mounts=mounts,
        ),
        stdout=pynsbind.PIPE,
    )
    with maker:
        assert maker.stdout is not None
        shm = json.loads(maker.stdout.readline())
        mq = json.loads(maker.stdout.readline())
        maker.stdout.readline()
        assert shm["errno"] == 0 and mq["errno"] == 0
        other = pynsbind.run(
            ["/bin/sh", "-c", f"/bin/probe shm_find {key}; /bin/probe mq_find {name}"],
            rootfs=rootfs,
            capture_output=True,
        )
        found = [json.loads(x) for x in other.stdout.decode().splitlines()]  # type: ignore[union-attr]
        assert found[0]["errno"] == errno.ENOENT and found[1]["errno"] == errno.ENOENT
        # the host: no such SysV segment (the key is the container's own)
        shms = Path("/proc/sysvipc/shm").read_text().split("\n")[1:]
        assert all(line.split()[:1] != [str(key)] for line in shms if line.strip())
        assert not os.path.exists(f"/dev/mqueue{name}")
        # and the container itself does see them
        again = maker.exec(["/bin/probe", "shm_find", str(key)], stdout=pynsbind.PIPE)
        out, _ = again.communicate(timeout=30)
        assert json.loads(out)["errno"] == 0  # type: ignore[arg-type]


# 9 ------------------------------------------------------------------------------


@pytest.mark.cgroup
@settings(max_examples=examples(10))
@given(limit=st.integers(2, 40), extra=st.integers(1, 20))
def test_9_pids_limit(rootfs: str, limit: int, extra: int) -> None:
    info = inside(
        Spec(
            args=["/bin/probe", "forks", str(limit + extra)],
            rootfs=rootfs,
            resources=pynsbind.Resources(pids_max=limit),
        )
    )
    # the probe itself is one of the processes
    assert info["forked"] == limit - 1
    assert info["errno"] == errno.EAGAIN


@pytest.mark.cgroup
@settings(max_examples=examples(4))
@given(limit_mib=st.integers(16, 48))
def test_9_memory_limit_ends_in_a_reported_oom_kill(rootfs: str, limit_mib: int) -> None:
    from pynsbind.cgroups import Cgroup

    path = f"pynsbind-test-{os.getpid()}-oom"
    cg = Cgroup.create(path, pynsbind.Resources(memory_max=limit_mib << 20, memory_swap_max=0))
    try:
        res = pynsbind.run(
            ["/bin/probe", "alloc", str(4 * limit_mib)],
            rootfs=rootfs,
            cgroup=cg,
            capture_output=True,
        )
        assert res.returncode == -signal.SIGKILL
        mem = cg.stats().memory
        assert mem.oom_kill is not None and mem.oom_kill >= 1
    finally:
        cg.delete()


# 10 -----------------------------------------------------------------------------


@given(caps=S.checked_cap_sets, user_ns=st.booleans())
def test_10_capabilities(rootfs: str, caps: frozenset[Capability], user_ns: bool) -> None:
    ns = pynsbind.spec.default_namespaces()
    fields: dict[str, Any] = {}
    if user_ns:
        ns |= Namespace.USER
        fields = {"uid_map": [(0, 0, 65536)], "gid_map": [(0, 0, 65536)]}
    script = "/bin/probe info; /bin/probe capcheck"
    res = pynsbind.run(
        ["/bin/sh", "-c", script],
        rootfs=rootfs,
        namespaces=ns,
        capabilities=caps,
        mounts=[*pynsbind.default_mounts(), pynsbind.Mount.tmpfs("/tmp", mode=0o1777, nodev=False)],
        capture_output=True,
        **fields,
    )
    assert res.returncode == 0, res.stderr
    info_line, check_line = res.stdout.decode().splitlines()  # type: ignore[union-attr]
    info, checks = json.loads(info_line), json.loads(check_line)
    want = sum(1 << int(c) for c in caps)
    status = {k: v.strip() for k, v in (line.split(":", 1) for line in info["status"].splitlines())}
    for name in ("CapEff", "CapPrm", "CapBnd", "CapInh"):
        assert int(status[name], 16) == want, name
    for name, err in checks.items():
        cap = Capability[name]
        if name == "MKNOD" and user_ns:
            assert err == errno.EPERM  # needs CAP_MKNOD in the initial user namespace
        elif cap in caps:
            assert err == 0, (name, err)
        else:
            assert err in (errno.EPERM, errno.EACCES), (name, err)


# 11 -----------------------------------------------------------------------------


@given(code=st.integers(0, 255))
def test_11_exit_codes(rootfs: str, code: int) -> None:
    assert pynsbind.run(["/bin/probe", "exit", str(code)], rootfs=rootfs).returncode == code


FATAL = [
    s
    for s in signal.valid_signals()
    if s
    not in (
        signal.SIGCHLD,
        signal.SIGCONT,
        signal.SIGURG,
        signal.SIGWINCH,
        signal.SIGSTOP,
        signal.SIGTSTP,
        signal.SIGTTIN,
        signal.SIGTTOU,
    )
    and 0 < s < 32
]


@given(sig=st.sampled_from(FATAL), init=st.booleans())
def test_11_fatal_signals(rootfs: str, probe: str, sig: int, init: bool) -> None:
    if init:
        rc = pynsbind.run(
            ["/bin/probe", "raise", str(int(sig))], rootfs=rootfs, init=True
        ).returncode
    else:  # no pid namespace: the command is not an init, its signals are not ignored
        rc = pynsbind.run([probe, "raise", str(int(sig))], namespaces=Namespace.UTS).returncode
    assert rc == -sig


# 12 -----------------------------------------------------------------------------


@given(
    env=S.environments,
    cwd=st.sampled_from(["/", "/tmp", "/bin", "/etc", "/root"]),
    user=st.integers(0, 70000),
    gid=st.integers(0, 70000),
    groups=st.lists(st.integers(0, 70000), max_size=4, unique=True),
    umask=st.integers(0, 0o777),
)
def test_12_env_cwd_user_groups(
    rootfs: str, env: dict[str, str], cwd: str, user: int, gid: int, groups: list[int], umask: int
) -> None:
    info = inside(
        Spec(
            args=["/bin/probe", "info"],
            rootfs=rootfs,
            env=env,
            cwd=cwd,
            user=(user, gid),
            groups=groups,
            umask=umask,
        )
    )
    assert info["env"] == [f"{k}={v}" for k, v in env.items()]
    assert info["cwd"] == cwd
    assert (info["uid"], info["euid"], info["gid"], info["egid"]) == (user, user, gid, gid)
    assert sorted(info["groups"]) == sorted(groups)
    assert info["umask"] == umask


# 13 -----------------------------------------------------------------------------


@settings(max_examples=examples(8))
@given(n=st.integers(2, 6), names=st.lists(S.hostnames, min_size=6, max_size=6, unique=True))
def test_13_concurrent_containers_are_isolated_from_each_other(
    rootfs: str, n: int, names: list[str]
) -> None:
    results: dict[int, Any] = {}

    def one(i: int) -> None:
        script = "echo x > /tmp/mine; sleep 0.2; ls /tmp; /bin/probe info"
        res = pynsbind.run(
            ["/bin/sh", "-c", script],
            rootfs=rootfs,
            hostname=names[i],
            mounts=[*pynsbind.default_mounts(), pynsbind.Mount.tmpfs("/tmp")],
            capture_output=True,
            timeout=60,
        )
        results[i] = res

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    infos = []
    for i in range(n):
        res = results[i]
        assert res.returncode == 0, res.stderr
        lines = res.stdout.decode().splitlines()
        assert lines[0] == "mine"  # only its own file in its own /tmp
        info = json.loads(lines[-1])
        assert info["hostname"] == names[i]
        infos.append(info)
    for kind in ("pid", "mnt", "uts", "ipc", "net", "cgroup"):
        assert len({info["ns"][kind] for info in infos}) == n, kind


# invalid specs --------------------------------------------------------------------


@settings(max_examples=examples(60))
@given(fields=S.hostile_fields())
def test_hostile_specs_fail_cleanly(rootfs: str, fields: dict[str, Any]) -> None:
    fields.setdefault("args", ["/bin/true"])
    fields.setdefault("rootfs", rootfs)
    pynsbind.process._init_exe_fd()  # opened once per process, on purpose
    before = HostState.now()
    try:
        spec = Spec(**fields)
    except SpecError as exc:
        assert isinstance(exc, ValueError)
        assert str(exc) and exc.field
        assert before.diff(HostState.now()) == {}
        return
    try:
        res = pynsbind.run(spec=spec, capture_output=True, timeout=30)
    except SpecError as exc:
        assert str(exc) and exc.field
    except SpawnError as exc:
        assert exc.errno and str(exc)
        assert "(op " in str(exc) or exc.stage in ("parent", "parent action", "helper", "init")
    else:
        assert isinstance(res.returncode, int)
    after = HostState.now()
    assert before.diff(after) == {}
