"""Kept plans (pynsbind._replay): ``pynsbind-run sandbox`` keeps the compiled
plan of a sandbox on disk and starts the next sandbox like it from the plan,
without importing what checks and compiles a spec.  Real sandboxes: what a
replayed sandbox prints, that the plan kept is the one that ran (a kept plan
changed on disk shows in the next sandbox), what makes a new plan, and that a
plan that cannot be trusted, or that fails, is never what decides."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from pynsbind.testing import OpKind, keep_plan, kept_plans
from tests.helpers import pynsbind_cgroups

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.root

PY = sys.executable
SHOW = "hostname; id -u; echo pid $$; touch /etc/x 2>&1 | grep -o 'Read-only file system'"
EXPECTED = "sandbox\n0\npid 2\nRead-only file system\n"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache directory of this test's (XDG_CACHE_HOME), for the
    command lines it starts and for kept_plans()."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PYNSBIND_PLANS_CACHE", raising=False)
    return tmp_path / "cache" / "pynsbind" / "plans"


def sandbox(*args: str, input: str | None = None, cwd: str = "/", **env: str) -> tuple[int, str]:
    """pynsbind-run sandbox ARGS (its status and output; stderr must be empty),
    checking that it left no cgroup behind."""
    proc = subprocess.run(
        [PY, "-m", "pynsbind", "sandbox", *args],
        input=input,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **env},
        timeout=120,
    )
    assert proc.stderr == "", proc
    assert pynsbind_cgroups() == set()
    return proc.returncode, proc.stdout


def one_plan() -> tuple[bytes, Any]:
    plans = kept_plans()
    assert len(plans) == 1, plans.keys()
    return next(iter(plans.items()))


def change_op(kind: OpKind, index: int, value: object) -> None:
    """Set field ``index`` of the kept plan's (only) op of ``kind``."""
    key, data = one_plan()
    ops = list(data[4])
    found = [i for i, op in enumerate(ops) if op[0] == kind]
    assert len(found) == 1, found
    op = list(ops[found[0]])
    op[index] = value
    ops[found[0]] = tuple(op)
    keep_plan(key, (*data[:4], ops, *data[5:]))


HOSTNAME_S1 = 8  # (kind, flags, fd, reg, out, a, b, c, s1, ...)
CHDIR_S2 = 9


def test_the_kept_plan_is_what_runs_the_next_sandbox(cache: Path) -> None:
    assert sandbox("--", "sh", "-c", SHOW) == (0, EXPECTED)
    key, data = one_plan()
    assert b"sandbox" in key
    # the command is not in the plan kept: any command runs from it
    assert not any("hostname" in str(op) for op in data[4])
    assert sandbox("--", "sh", "-c", SHOW) == (0, EXPECTED)
    change_op(OpKind.HOSTNAME, HOSTNAME_S1, "replayed")
    assert sandbox("--", "sh", "-c", "hostname; echo $0 $1", "a b", "c") == (0, "replayed\na b c\n")
    assert sandbox("--", "/bin/sh", "-c", "exit 42")[0] == 42  # a name with a slash: its own plan
    assert sandbox("--", "sh", "-c", "kill -9 $$")[0] == 137
    # what a kept plan is not used for: another option, another working
    # directory, the cache turned off
    assert sandbox("--hostname", "other", "--", "hostname") == (0, "other\n")
    assert sandbox("--", "hostname", cwd="/usr") == (0, "sandbox\n")
    assert sandbox("--", "hostname", PYNSBIND_PLANS_CACHE="0") == (0, "sandbox\n")
    assert sandbox("--", "hostname") == (0, "replayed\n")
    assert len(kept_plans()) == 4


def test_a_variable_passed_by_name_is_part_of_the_key(cache: Path) -> None:
    assert sandbox("-e", "PYNSBIND_X", "--", "sh", "-c", "echo $PYNSBIND_X", PYNSBIND_X="1") == (
        0,
        "1\n",
    )
    assert sandbox("-e", "PYNSBIND_X", "--", "sh", "-c", "echo $PYNSBIND_X", PYNSBIND_X="2") == (
        0,
        "2\n",
    )
    assert len(kept_plans()) == 2


def test_a_plan_that_fails_is_replaced_by_the_full_path(cache: Path) -> None:
    """A kept plan that fails before the command runs (the host changed since)
    leaves the sandbox to the full path, which runs it and keeps a new plan."""
    assert sandbox("--", "hostname") == (0, "sandbox\n")
    change_op(OpKind.CHDIR, CHDIR_S2, "/nonexistent-pynsbind-dir")
    change_op(OpKind.HOSTNAME, HOSTNAME_S1, "replayed")
    assert sandbox("--", "sh", "-c", "hostname; pwd") == (0, "sandbox\n/\n")
    _, data = one_plan()
    assert [op[CHDIR_S2] for op in data[4] if op[0] == OpKind.CHDIR] == ["/"]


@pytest.mark.parametrize("how", ["group-writable", "symlink", "directory of others"])
def test_a_plan_that_cannot_be_trusted_is_not_used(cache: Path, how: str) -> None:
    assert sandbox("--", "hostname") == (0, "sandbox\n")
    change_op(OpKind.HOSTNAME, HOSTNAME_S1, "replayed")
    assert sandbox("--", "hostname") == (0, "replayed\n")
    (file,) = cache.iterdir()
    if how == "group-writable":
        file.chmod(0o620)
    elif how == "symlink":
        moved = cache.parent / "elsewhere"
        file.rename(moved)
        file.symlink_to(moved)
    else:
        cache.chmod(0o777)
    assert sandbox("--", "hostname") == (0, "sandbox\n")


def test_stdin_and_signals_of_a_replayed_sandbox(cache: Path) -> None:
    for _ in range(2):
        assert sandbox("-i", "--", "cat", input="typed\n") == (0, "typed\n")
        assert sandbox("--", "cat", input="typed\n") == (0, "")
    assert len(kept_plans()) == 2
    script = "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.05; done"
    for _ in range(2):
        with subprocess.Popen(
            [PY, "-m", "pynsbind", "sandbox", "--", "sh", "-c", script],
            stdout=subprocess.PIPE,
            text=True,
        ) as proc:
            try:
                assert proc.stdout is not None
                assert proc.stdout.readline() == "ready\n"
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=60) == 3
                assert proc.stdout.read() == "got TERM\n"
            finally:
                if proc.poll() is None:
                    proc.kill()
    assert len(kept_plans()) == 3


def test_options_that_read_files_or_watch_the_sandbox_keep_no_plan(
    cache: Path, tmp_path: Path
) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("A=1\n")
    for args in (
        ("--env-file", str(env_file)),
        ("-v", f"{tmp_path}:/mnt:ro"),
        ("--pids-limit", "64"),
        ("--timeout", "60"),
        ("--debug",),
    ):
        ran = subprocess.run(
            [PY, "-m", "pynsbind", "sandbox", *args, "--", "true"], capture_output=True
        )
        assert ran.returncode == 0, (args, ran)
    assert kept_plans() == {}
