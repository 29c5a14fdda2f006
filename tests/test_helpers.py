"""tests/helpers.py itself: in_child as another user, its answers, a hung or
killed child; the leftover-cgroup scan and the removal of what it finds."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import (
    HostState,
    checkpoint,
    in_child,
    kill_pid,
    pynsbind_cgroups,
    remove_cgroups,
    run_child,
    wait_gone,
)

PR_GET_DUMPABLE = 3


def _ids() -> tuple[tuple[int, ...], tuple[int, ...], list[int], int]:
    dumpable = ctypes.CDLL(None).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)
    return os.getresuid(), os.getresgid(), os.getgroups(), dumpable


@pytest.mark.root
def test_in_child_runs_as_another_user_and_leaves_this_process_alone() -> None:
    before = _ids()
    uids, gids, groups, dumpable = in_child(_ids, uid=65534, gid=65533, groups=(7, 8))
    assert (uids, gids, sorted(groups)) == ((65534,) * 3, (65533,) * 3, [7, 8])
    assert dumpable == 1  # dumpable again after the setuid
    assert _ids() == before


def test_in_child_raises_the_childs_exception_with_its_traceback() -> None:
    with pytest.raises(FileNotFoundError) as info:
        in_child(lambda: os.stat("/nonexistent-pynsbind/x"))
    assert info.value.filename == "/nonexistent-pynsbind/x"
    if sys.version_info >= (3, 11):
        assert "in the child:" in "".join(info.value.__notes__)


def test_in_child_hands_each_checkpoint_to_during() -> None:
    seen: list[tuple[int, object]] = []

    def body() -> int:
        checkpoint(os.getpid())
        checkpoint("two")
        return os.getpid()

    pid = in_child(body, during=lambda pid, value: seen.append((pid, value)))
    assert seen == [(pid, pid), (pid, "two")]


def test_a_hung_child_is_killed_and_reaped() -> None:
    before = HostState.now()
    with pytest.raises(AssertionError, match="the child hung"):
        in_child(lambda: time.sleep(600), timeout=1)
    assert before.diff(HostState.now()) == {}


def test_run_child_reports_a_child_that_died_without_answering() -> None:
    out = run_child(lambda: os.kill(os.getpid(), signal.SIGKILL))
    assert not out.answered
    assert os.WIFSIGNALED(out.status) and os.WTERMSIG(out.status) == signal.SIGKILL
    with pytest.raises(AssertionError, match="died without an answer"):
        in_child(lambda: os.kill(os.getpid(), signal.SIGKILL))


@pytest.mark.root
@pytest.mark.cgroup
def test_the_leftover_scan_finds_this_process_cgroups_only() -> None:
    from pynsbind.cgroups import host

    base = host().hierarchies[0].base
    # a live process outside this one's tree (a sleep whose parent has exited:
    # this process's own parent may be pid 1, in the VM, which names no maker)
    out = subprocess.run(
        ["sh", "-c", "sleep 300 </dev/null >/dev/null 2>&1 & echo $!"],
        capture_output=True,
        text=True,
        check=True,
    )
    other = int(out.stdout)
    me = os.getpid()
    mine = [f"{base}/pynsbind-helpers-{me}", f"{base}/pynsbind-helpers-{me}/sub"]
    others = [f"{base}/pynsbind-helpers-{other}", f"{base}/pynsbind-c-{other}-0-1"]
    for d in mine + others:
        os.mkdir(d)
    try:
        assert pynsbind_cgroups(pid=me) >= set(mine)
        assert not pynsbind_cgroups(pid=me) & set(others)
        every = pynsbind_cgroups()
        assert set(mine) <= every
        assert not every & set(others)
    finally:
        os.kill(other, signal.SIGKILL)
        left = remove_cgroups(mine + others)
    assert left == []
    assert not any(os.path.exists(d) for d in mine + others)


@pytest.mark.root
@pytest.mark.cgroup
def test_host_state_tells_another_process_cgroups_from_a_leak() -> None:
    """A cgroup of another process stays out of a diff when that process dies
    between the snapshots; one named after a dead process that appears is a leak."""
    from pynsbind.cgroups import host

    base = host().hierarchies[0].base
    out = subprocess.run(
        ["sh", "-c", "sleep 600 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True
    )
    stranger = int(out.stdout)  # an orphan now: not a descendant of this process
    theirs, leak = f"{base}/pynsbind-helpers-{stranger}", f"{base}/pynsbind-helpers-{stranger}-x"
    os.mkdir(theirs)
    try:
        before = HostState.now()
        assert theirs in before.others and theirs not in before.cgroups
        kill_pid(stranger)
        assert wait_gone(stranger)
        os.mkdir(leak)
        after = HostState.now()
        assert theirs in after.cgroups  # its maker is dead: alone, it would be a leak
        assert before.diff(after) == {"cgroups": [leak]}
    finally:
        kill_pid(stranger)
        assert remove_cgroups([theirs, leak]) == []
