"""pynsbind-run, as a user runs it (a subprocess of the installed entry point):
the dispatcher and its commands.  The sandbox command has tests/test_sandbox.py."""

from __future__ import annotations

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


def test_sandbox_through_the_dispatcher(rootfs: str) -> None:
    res = cli(
        "sandbox",
        "--rootfs",
        rootfs,
        "--hostname",
        "box",
        "--",
        "/bin/sh",
        "-c",
        "hostname; exit 7",
    )
    assert res.returncode == 7, res.stderr
    assert res.stdout == "box\n"


def test_unknown_command_says_the_nearest() -> None:
    res = cli("sandbx")
    assert res.returncode != 0
    assert "unknown command 'sandbx' (did you mean sandbox?)" in res.stderr


def test_features() -> None:
    res = cli("features", "--kernel")
    assert res.returncode == 0
    assert "clone3:" in res.stdout and "cgroup_layout:" in res.stdout
