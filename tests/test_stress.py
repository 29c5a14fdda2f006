"""Concurrency and leaks: the spawn engine from many threads of one process, and
failing spawns that must leave the host exactly as it was."""

from __future__ import annotations

import errno
import threading
from typing import Any

import pytest

import pynsbind
from pynsbind import Mount, Namespace, SpawnError, Spec
from pynsbind.testing import Options, spawn_with
from tests.helpers import Busy, HostState

pytestmark = [pytest.mark.root, pytest.mark.slow]

NS = Namespace.PID | Namespace.MNT | Namespace.UTS | Namespace.IPC | Namespace.NET


@pytest.mark.parametrize("mode", ["default", "fork"])
def test_eight_threads_spawning_concurrently(mode: str, rootfs: str) -> None:
    before = HostState.now()
    opts = Options(clone_vm=(mode == "default"))
    per_thread = 100 if mode == "default" else 25
    spec = Spec(
        args=["/bin/sh", "-c", "echo $1", "sh"],
        rootfs=rootfs,
        namespaces=NS,
        mounts=[Mount.proc()],
        masked_paths=(),
        readonly_paths=(),
    )
    errors: list[BaseException] = []
    results: list[int] = []
    lock = threading.Lock()

    def spawner(k: int) -> None:
        try:
            for i in range(per_thread):
                word = f"t{k}i{i}"
                proc = spawn_with(spec.replace(args=[*spec.args, word]), opts, stdout=pynsbind.PIPE)
                out, _ = proc.communicate(timeout=120)
                assert proc.returncode == 0 and out == word.encode() + b"\n", (proc.returncode, out)
                with lock:
                    results.append(1)
        except BaseException as exc:
            errors.append(exc)

    with Busy() as busy:
        threads = [threading.Thread(target=spawner, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        assert not any(t.is_alive() for t in threads), "a spawner thread hung (deadlock?)"
    assert not errors, errors[:3]
    assert len(results) == 8 * per_thread
    assert busy.rounds > 0
    assert before.diff(HostState.now()) == {}


FAILING: list[tuple[str, dict[str, Any], int]] = [
    ("missing command", {"args": ["/nope"]}, errno.ENOENT),
    ("missing cwd", {"cwd": "/nope"}, errno.ENOENT),
    (
        "bad mount option",
        {"mounts": [Mount("tmpfs", "/x", source="t", options=(("bogus", "1"),))]},
        errno.EINVAL,
    ),
    (
        "missing join path",
        {"join": {Namespace.NET: "/proc/0/ns/net"}, "namespaces": NS & ~Namespace.NET},
        errno.ENOENT,
    ),
    ("rlimit above hard", {"rlimits": {"NOFILE": (2**40, 2**40)}}, errno.EPERM),
    ("exec a directory", {"args": ["/bin/../tmp"]}, errno.EACCES),
    ("init, missing command", {"args": ["nope"], "init": True}, errno.ENOENT),
    ("user ns, bad exec", {"args": ["/nope"], "namespaces": NS | Namespace.USER}, errno.ENOENT),
]


@pytest.mark.parametrize("mode", ["default", "fork", "legacy-mount"])
def test_200_failing_spawns_leave_nothing(mode: str, rootfs: str) -> None:
    opts = {
        "default": Options(),
        "fork": Options(clone_vm=False),
        "legacy-mount": Options(legacy_mount=True),
    }[mode]
    pynsbind.testing.sealed_init_fd()  # the init's fd is opened once per process, on purpose
    before = HostState.now()
    n = 0
    for round_ in range(200 // len(FAILING)):
        for name, fields, err in FAILING:
            fields = dict(fields)
            fields.setdefault("args", ["/bin/true"])
            spec = Spec(rootfs=rootfs, **fields)
            with pytest.raises(SpawnError) as info:
                spawn_with(spec, opts, stdout=pynsbind.PIPE, stderr=pynsbind.PIPE)
            assert info.value.errno == err, (name, round_, str(info.value))
            n += 1
    assert n == 200
    assert before.diff(HostState.now()) == {}
    assert pynsbind.testing.dropped_processes() == []
