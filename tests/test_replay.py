"""Kept plans (pynsbind._replay): ``pynsbind-run sandbox`` keeps the compiled
plan of a sandbox on disk and starts the next sandbox like it from the plan:
pynsbind-run itself (csrc/launcher.c) without starting Python, ``python -m
pynsbind`` without importing what checks and compiles a spec.  Real sandboxes,
through both: what a replayed sandbox prints, that the plan kept is the one
that ran (a kept plan changed on disk shows in the next sandbox), what makes a
new plan, and that a plan that cannot be trusted, is malformed, or fails, is
never what decides."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pynsbind.testing import OpKind, encode_plan, keep_plan, kept_plans
from tests.helpers import pynsbind_cgroups

pytestmark = pytest.mark.root

PY = sys.executable
#: pynsbind-run, the launcher, as installed beside this interpreter
LAUNCHER = Path(PY).parent / "pynsbind-run"
#: what the sandbox shows of itself: its hostname, uid, pid, the host's uid it
#: is (root's sandbox: nobody), its network (loopback only), a read-only root
SHOW = (
    "hostname; id -u; echo pid $$; awk '{print $1, $2, $3}' /proc/self/uid_map; "
    "ls /sys/class/net; touch /etc/x 2>&1 | grep -o 'Read-only file system'"
)
EXPECTED = "sandbox\n0\npid 2\n0 65534 1\nlo\nRead-only file system\n"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache directory of this test's (XDG_CACHE_HOME), for the
    command lines it starts and for kept_plans()."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PYNSBIND_PLANS_CACHE", raising=False)
    return tmp_path / "cache" / "pynsbind" / "plans"


@pytest.fixture(params=["launcher", "python"])
def front(request: pytest.FixtureRequest) -> list[str]:
    """The command line that starts a sandbox: pynsbind-run (the launcher), or
    python -m pynsbind."""
    if request.param == "python":
        return [PY, "-m", "pynsbind"]
    if not LAUNCHER.exists() or LAUNCHER.read_bytes()[:4] != b"\x7fELF":
        pytest.fail(f"{LAUNCHER} is not the launcher: the install did not build it")
    return [str(LAUNCHER)]


@pytest.fixture
def sandbox(front: list[str], cache: Path) -> Any:
    """sandbox(*ARGS, input=, cwd=, **ENV): pynsbind-run sandbox ARGS through
    ``front``, its status and output (stderr must be empty), checking that it
    left no cgroup behind."""

    def run(*args: str, input: str | None = None, cwd: str = "/", **env: str) -> tuple[int, str]:
        proc = subprocess.run(
            [*front, "sandbox", *args],
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

    return run


def one_plan() -> tuple[bytes, Any]:
    plans = kept_plans()
    assert len(plans) == 1, plans.keys()
    return next(iter(plans.items()))


def change_op(kind: OpKind, index: int, value: object) -> None:
    """Set field ``index`` of the kept plan's (only) op of ``kind``."""
    key, kept = one_plan()
    ops = list(kept.data[4])
    found = [i for i, op in enumerate(ops) if op[0] == kind]
    assert len(found) == 1, found
    op = list(ops[found[0]])
    op[index] = value
    ops[found[0]] = tuple(op)
    kept.data = (*kept.data[:4], ops, *kept.data[5:])
    keep_plan(key, kept)


HOSTNAME_S1 = 8  # (kind, flags, fd, reg, out, a, b, c, s1, ...)
CHDIR_S2 = 9


def test_the_kept_plan_is_what_runs_the_next_sandbox(sandbox: Any) -> None:
    assert sandbox("--", "sh", "-c", SHOW) == (0, EXPECTED)
    key, kept = one_plan()
    assert b"sandbox" in key
    # the command is not in the plan kept: any command runs from it
    assert not any("hostname" in str(op) for op in kept.data[4])
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


def test_a_variable_passed_by_name_is_part_of_the_key(sandbox: Any) -> None:
    assert sandbox("-e", "PYNSBIND_X", "--", "sh", "-c", "echo $PYNSBIND_X", PYNSBIND_X="1") == (
        0,
        "1\n",
    )
    assert sandbox("-e", "PYNSBIND_X", "--", "sh", "-c", "echo $PYNSBIND_X", PYNSBIND_X="2") == (
        0,
        "2\n",
    )
    # the value is a condition of the plan: the second run did not use the
    # first one's plan, and replaced it
    _, kept = one_plan()
    assert ("env", "PYNSBIND_X", "2") in kept.conditions


def test_a_plan_that_fails_is_replaced_by_the_full_path(sandbox: Any) -> None:
    """A kept plan that fails before the command runs (the host changed since)
    leaves the sandbox to the full path, which runs it and keeps a new plan."""
    assert sandbox("--", "hostname") == (0, "sandbox\n")
    change_op(OpKind.CHDIR, CHDIR_S2, "/nonexistent-pynsbind-dir")
    change_op(OpKind.HOSTNAME, HOSTNAME_S1, "replayed")
    assert sandbox("--", "sh", "-c", "hostname; pwd") == (0, "sandbox\n/\n")
    _, kept = one_plan()
    assert [op[CHDIR_S2] for op in kept.data[4] if op[0] == OpKind.CHDIR] == ["/"]


@pytest.mark.parametrize(
    "how",
    [
        "group-writable",
        "symlink",
        "directory of others",
        "a symlink on the way",
        "another's directory on the way",
    ],
)
def test_a_plan_that_cannot_be_trusted_is_not_used(sandbox: Any, cache: Path, how: str) -> None:
    assert sandbox("--", "hostname") == (0, "sandbox\n")
    change_op(OpKind.HOSTNAME, HOSTNAME_S1, "replayed")
    assert sandbox("--", "hostname") == (0, "replayed\n")
    (file,) = cache.iterdir()
    env = {}
    if how == "group-writable":
        file.chmod(0o620)
    elif how == "symlink":
        moved = cache.parent / "elsewhere"
        file.rename(moved)
        file.symlink_to(moved)
    elif how == "directory of others":
        cache.chmod(0o777)
    elif how == "a symlink on the way":
        # what sudo -E may keep: an XDG_CACHE_HOME through another's link
        link = cache.parent.parent.parent / "link"
        link.symlink_to(cache.parent.parent)
        env["XDG_CACHE_HOME"] = str(link)
    else:
        os.chown(cache.parent, 65534, 65534)  # ~/.cache/pynsbind, nobody's
    assert sandbox("--", "hostname", **env) == (0, "sandbox\n")


def test_stdin_and_signals_of_a_replayed_sandbox(sandbox: Any, front: list[str]) -> None:
    for _ in range(2):
        assert sandbox("-i", "--", "cat", input="typed\n") == (0, "typed\n")
        assert sandbox("--", "cat", input="typed\n") == (0, "")
    assert len(kept_plans()) == 2
    script = "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.05; done"
    for _ in range(2):
        with subprocess.Popen(
            [*front, "sandbox", "--", "sh", "-c", script],
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
    front: list[str], cache: Path, tmp_path: Path
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


@pytest.mark.parametrize("how", ["garbage", "truncated", "another key's"])
def test_a_malformed_plan_is_not_used(sandbox: Any, cache: Path, how: str) -> None:
    assert sandbox("--", "hostname") == (0, "sandbox\n")
    assert sandbox("-i", "--", "hostname") == (0, "sandbox\n")
    plans = kept_plans()
    assert len(plans) == 2
    key, kept = min(plans.items())
    raw = encode_plan(kept)
    if how == "garbage":
        keep_plan(key, os.urandom(len(raw)))
    elif how == "truncated":
        keep_plan(key, raw[: len(raw) // 2])
    else:
        # each file in the other's place: what each holds is another key's
        first, second = sorted(cache.iterdir())
        first.rename(cache / "swap")
        second.rename(first)
        (cache / "swap").rename(second)
    assert sandbox("--", "cat", input="typed\n") == (0, "")
    assert sandbox("-i", "--", "cat", input="typed\n") == (0, "typed\n")


def test_the_launcher_hands_everything_else_to_python(sandbox: Any, front: list[str]) -> None:
    """Other commands, options before a command without ``--``, and no kept
    plan: the same results through the launcher as through Python."""
    version = subprocess.run([*front, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("pynsbind-run version")
    for _ in range(2):
        assert sandbox("--hostname", "h", "hostname") == (0, "h\n")
        assert sandbox("hostname") == (0, "sandbox\n")
        assert sandbox("--", "hostname", PYNSBIND_PLANS_CACHE="0") == (0, "sandbox\n")
    bad = subprocess.run(
        [*front, "sandbox", "--bogus", "--", "true"], capture_output=True, text=True
    )
    assert bad.returncode == 125 and "--bogus" in bad.stderr


def test_the_launcher_refuses_every_truncated_or_extended_plan(sandbox: Any) -> None:
    """A plan file cut anywhere, or with bytes after its end, is refused by the
    reader (the Python path then runs the sandbox): never a crash, never a
    plan half read."""
    assert sandbox("--", "hostname") == (0, "sandbox\n")
    key, kept = one_plan()
    raw = encode_plan(kept)
    cuts = sorted({len(raw) * i // 24 for i in range(24)} | {8, 9, len(raw) - 1})
    for data in [*(raw[:cut] for cut in cuts), raw + b"\0", raw + os.urandom(9)]:
        keep_plan(key, data)
        assert sandbox("--", "hostname") == (0, "sandbox\n"), len(data)


def test_the_launcher_through_a_symlink(cache: Path, tmp_path: Path) -> None:
    """What an operator's /usr/local/bin/pynsbind-run may be: the launcher
    finds pynsbind-run.py beside its own file, not beside the link."""
    link = tmp_path / "pynsbind-run"
    link.symlink_to(LAUNCHER)
    version = subprocess.run([link, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("pynsbind-run version")
    for _ in range(2):
        ran = subprocess.run([link, "sandbox", "--", "hostname"], capture_output=True, text=True)
        assert (ran.returncode, ran.stdout, ran.stderr) == (0, "sandbox\n", "")
    assert len(kept_plans()) == 1


def test_a_dash_dash_that_is_an_options_value_keeps_no_plan(sandbox: Any) -> None:
    """``-e --`` sets a variable named ``--``: that ``--`` is no separator, and
    the launcher (which splits at the first ``--``) must never find a plan for
    a command line whose command Python finds elsewhere."""
    for _ in range(2):
        assert sandbox("-e", "--", "sh", "-c", "hostname") == (0, "sandbox\n")
    assert kept_plans() == {}
    assert sandbox("-e", "--", "--hostname", "other", "sh", "-c", "hostname") == (0, "other\n")


def test_a_plain_users_sandbox_runs_from_its_kept_plan(plain_user: Any) -> None:
    """Rootless, through the launcher: the plan is kept in the user's own cache
    (its files the user's), and the next sandbox runs from it (a plan changed
    there, by root for the test, shows)."""
    from pynsbind.testing import decode_plan

    argv = [
        "setpriv",
        f"--reuid={plain_user.uid}",
        f"--regid={plain_user.gid}",
        "--clear-groups",
        str(LAUNCHER),
        "sandbox",
        "--",
        "sh",
        "-c",
        "hostname; id -u; awk '{print $1, $2, $3}' /proc/self/uid_map",
    ]
    env = {"PATH": "/usr/bin:/bin", "HOME": plain_user.home}

    def run() -> tuple[int, str, str]:
        ran = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=plain_user.home)
        return ran.returncode, ran.stdout, ran.stderr

    mine = f"sandbox\n0\n0 {plain_user.uid} 1\n"
    assert run() == (0, mine, "")
    plans = Path(plain_user.home) / ".cache" / "pynsbind" / "plans"
    (file,) = plans.iterdir()
    st = file.stat()
    assert (st.st_uid, st.st_mode & 0o777, plans.stat().st_mode & 0o777) == (
        plain_user.uid,
        0o600,
        0o700,
    )
    assert run() == (0, mine, "")
    # the file: its header (the cache's name, the key's length and the key), then the plan
    raw = file.read_bytes()
    head = len(b"pynsbind plans cache\n") + 4
    head += int.from_bytes(raw[head - 4 : head], "little")
    kept = decode_plan(raw[head:])
    assert kept is not None
    ops = [
        (*op[:8], "replayed", *op[9:]) if op[0] == OpKind.HOSTNAME else op for op in kept.data[4]
    ]
    kept.data = (*kept.data[:4], ops, *kept.data[5:])
    file.write_bytes(raw[:head] + encode_plan(kept))
    os.chown(file, plain_user.uid, plain_user.gid)
    assert run() == (0, mine.replace("sandbox", "replayed", 1), "")
