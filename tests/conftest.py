"""Fixtures, hooks and the hypothesis profiles (what they use is in
tests/helpers.py, a plain module that test files import).

Tests that need root are marked ``root`` and skip elsewhere, with the reason.
Hypothesis has two profiles: ``ci`` (bounded, the default) and ``deep`` (set
``HYPOTHESIS_PROFILE=deep``); see docs/testing.md.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

from tests.helpers import (
    PROFILE,
    HostState,
    Unavailable,
    build_probe,
    find_busybox,
    make_rootfs,
    pynsbind_cgroups,
    remove_cgroups,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
    print_blob=True,
)
settings.register_profile(
    "deep",
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.load_profile(PROFILE)

IS_ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_root = pytest.mark.skip(reason="needs root: real namespaces, mounts and cgroups")
    for item in items:
        if "root" in item.keywords and not IS_ROOT:
            item.add_marker(skip_root)


# ---- the probe and a root filesystem ----------------------------------------------------


@pytest.fixture(scope="session")
def probe() -> str:
    """tests/probe.c, compiled static (cached by the hash of its source)."""
    try:
        return build_probe()
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def rootfs(probe: str) -> Iterator[str]:
    """A small root filesystem: static busybox with its applets, the probe, /etc.
    It lives in a directory every user can traverse, so that containers whose root
    is an unprivileged host uid (user namespaces) can reach it."""
    busybox = find_busybox()
    if busybox is None:
        pytest.skip("needs a static busybox (Debian: busybox-static)")
    top = Path(tempfile.mkdtemp(prefix="pynsbind-rootfs-"))
    os.chmod(top, 0o755)
    root = make_rootfs(top / "root", busybox, probe=probe)
    yield str(root)
    shutil.rmtree(top, ignore_errors=True)


# ---- what a test must leave as it was --------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _warm_spawner() -> None:
    """One container before any test: what a spawner keeps open for its lifetime
    (the sealed copy of the init, made on the first spawn) then predates every
    host_unchanged snapshot."""
    if IS_ROOT:
        import pynsbind

        pynsbind.run(["true"], namespaces=pynsbind.Namespace.MNT | pynsbind.Namespace.PID)


@pytest.fixture
def host_unchanged() -> Iterator[HostState]:
    """Fails the test if it leaves a mount, fd, child or cgroup behind; yields
    the state before, for a test to compare with itself."""
    before = HostState.now()
    yield before
    after = HostState.now()
    assert before.diff(after) == {}


@pytest.fixture
def narrow_host_unchanged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostState]:
    """host_unchanged narrowed to what this test process can touch (other test
    runs on the same machine mount and make cgroups meanwhile): see
    HostState.own.  For tests that call pynsbind.lowlevel directly."""
    base = str(tmp_path_factory.getbasetemp())
    before = HostState.now()
    seen = before.own(base)
    yield before
    assert HostState.now().own(base) == seen


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    """Fails the test if it leaves a cgroup named after this process (one whose
    path has ``-PID-`` or ends with ``-PID``); removes what it left (killing
    what runs there), so that one failure does not spread."""
    pid = os.getpid()
    before = pynsbind_cgroups(pid=pid)
    yield
    left = sorted(pynsbind_cgroups(pid=pid) - before)
    remove_cgroups(left, kill=True)
    assert left == [], "cgroups left behind"


# ---- an unprivileged user (tests/test_sandbox.py, tests/test_replay.py) ----------------


class User:
    def __init__(self, name: str, home: str) -> None:
        pw = pwd.getpwnam(name)
        self.name, self.uid, self.gid, self.home = name, pw.pw_uid, pw.pw_gid, home


@pytest.fixture(scope="session")
def plain_user() -> Iterator[User]:
    """An unprivileged user made for these tests (and removed after), with a home
    directory of its own that every user can traverse."""
    if shutil.which("useradd") is None or shutil.which("setpriv") is None:
        pytest.skip("needs useradd and setpriv")
    name = f"pynsbind-sbx{os.getpid() % 100000}"
    home = tempfile.mkdtemp(prefix="pynsbind-sbx-home-")
    os.chmod(home, 0o755)
    made = subprocess.run(["useradd", "-M", "-d", home, "-s", "/bin/sh", name], capture_output=True)
    if made.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        pytest.skip(f"useradd failed: {made.stderr!r}")
    try:
        user = User(name, home)
        os.chown(home, user.uid, user.gid)
        yield user
    finally:
        subprocess.run(["userdel", name], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
