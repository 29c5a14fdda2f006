"""pynsbind-run, as a user runs it (a subprocess of the installed entry point)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.root


def cli(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pynsbind", *args],
        capture_output=True,
        text=True,
        timeout=120,
        **kw,  # type: ignore[call-overload]
    )


def test_sandbox_isolates_and_reports_the_status() -> None:
    res = cli(
        "sandbox",
        "--",
        "/bin/sh",
        "-c",
        "hostname; echo $$; touch /etc/x 2>&1; touch /tmp/y && echo tmp; exit 7",
    )
    assert res.returncode == 7, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "sandbox"
    assert lines[1] == "2"  # the init is PID 1
    assert "Read-only file system" in lines[2]
    assert lines[3] == "tmp"
    assert not os.path.exists("/etc/x")


def test_sandbox_options(rootfs: str, tmp_path: object) -> None:
    res = cli(
        "sandbox",
        "--rootfs",
        rootfs,
        "--hostname",
        "box",
        "--env",
        "A=1",
        "--user",
        "1000:1001",
        "--cwd",
        "/tmp",
        "--",
        "/bin/sh",
        "-c",
        "hostname; echo $A; id -u; id -g; pwd",
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["box", "1", "1000", "1001", "/tmp"]


def test_sandbox_errors_and_exit_statuses() -> None:
    res = cli("sandbox", "--", "nosuchcommand")
    assert res.returncode == 127 and "executable file not found" in res.stderr
    res = cli("sandbox", "--cwd", "/nope", "--", "true")
    assert res.returncode == 125 and "change directory to /nope" in res.stderr
    res = cli("sandbox", "--hostname", "bad name", "--", "true")
    assert res.returncode == 125 and "hostname" in res.stderr
    res = cli("sandbox", "--", "/bin/sh", "-c", "kill -TERM $$")
    assert res.returncode == 128 + 15
    res = cli("sandbox", "--timeout", "0.5", "--", "sleep", "30")
    assert res.returncode == 124
    res = cli("sandbox")
    assert res.returncode != 0


def test_debug_prints_the_plan() -> None:
    res = cli("sandbox", "--debug", "--", "true")
    assert res.returncode == 0
    assert "EXEC" in res.stderr and "PIVOT" not in res.stderr and "SETATTR" in res.stderr


def test_default_cwd(tmp_path: object) -> None:
    res = cli("sandbox", "--", "/bin/pwd", cwd="/usr")
    assert res.stdout.strip() == "/usr"
    res = cli("sandbox", "--", "/bin/pwd", cwd="/tmp")  # under the sandbox's own /tmp
    assert res.stdout.strip() == "/"


def test_features() -> None:
    res = cli("features")
    assert res.returncode == 0
    assert "clone3:" in res.stdout and "cgroup_layout:" in res.stdout
