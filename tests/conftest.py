"""Shared fixtures: the static probe, a busybox root filesystem, host snapshots.

Tests that need root are marked ``root`` and skip elsewhere, with the reason.
Hypothesis has two profiles: ``ci`` (bounded, the default) and ``deep`` (set
``HYPOTHESIS_PROFILE=deep``); see docs/testing.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    from collections.abc import Iterator

HERE = Path(__file__).resolve().parent

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
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)


def examples(n: int) -> int:
    """max_examples for a slow property: n in the ci profile, 24 times n in deep."""
    return n * 24 if PROFILE == "deep" else n


IS_ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_root = pytest.mark.skip(reason="needs root: real namespaces, mounts and cgroups")
    for item in items:
        if "root" in item.keywords and not IS_ROOT:
            item.add_marker(skip_root)


def is_static_elf(path: str) -> bool:
    """True for an ELF executable without an interpreter (PT_INTERP)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:
                return False
            (phoff,) = struct.unpack_from("<Q", head, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))


@pytest.fixture(scope="session")
def probe(tmp_path_factory: pytest.TempPathFactory) -> str:
    """tests/probe.c, compiled static (cached by the hash of its source)."""
    src = HERE / "probe.c"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("PYNSBIND_TEST_CACHE", "/tmp/pynsbind-test-cache"))
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"probe-{digest}"
    if not out.exists():
        tmp = cache / f"probe-{digest}.{os.getpid()}"
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            pytest.skip("no C compiler to build the probe")
        res = subprocess.run(
            [cc, "-static", "-O2", "-o", str(tmp), str(src)], capture_output=True, text=True
        )
        if res.returncode != 0:
            pytest.skip(f"cannot build a static probe: {res.stderr.strip()[-300:]}")
        os.replace(tmp, out)
    return str(out)


BUSYBOX_APPLETS = (
    "sh ls cat echo id hostname ps mount sleep true false kill mkdir touch env pwd "
    "readlink stat grep wc head tail ip cp rm ln test"
).split()


@pytest.fixture(scope="session")
def rootfs(probe: str) -> Iterator[str]:
    """A small root filesystem: static busybox with its applets, the probe, /etc.
    It lives in a directory every user can traverse, so that containers whose root
    is an unprivileged host uid (user namespaces) can reach it."""
    busybox = shutil.which("busybox")
    if busybox is None or not is_static_elf(os.path.realpath(busybox)):
        pytest.skip("needs a static busybox (Debian: busybox-static)")
    top = Path(tempfile.mkdtemp(prefix="pynsbind-rootfs-"))
    os.chmod(top, 0o755)
    root = top / "root"
    root.mkdir()
    for d in ("bin", "etc", "proc", "dev", "sys", "tmp", "root", "home", "run"):
        (root / d).mkdir()
    os.chmod(root / "tmp", 0o1777)
    shutil.copy(os.path.realpath(busybox), root / "bin" / "busybox")
    for applet in BUSYBOX_APPLETS:
        os.symlink("busybox", root / "bin" / applet)
    shutil.copy(probe, root / "bin" / "probe")
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
    )
    (root / "etc" / "group").write_text("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")
    for p in (root, *root.iterdir()):
        os.chmod(p, 0o1777 if p.name == "tmp" else 0o755)
    yield str(root)
    shutil.rmtree(top, ignore_errors=True)


# ---- running the probe in a container --------------------------------------------


def run_probe(rootfs: str, *args: str, **fields: Any) -> dict[str, Any]:
    """Run ``/bin/probe ARGS`` in a container of ``rootfs``; its JSON, parsed."""
    import pynsbind

    res = pynsbind.run(["/bin/probe", *args], rootfs=rootfs, capture_output=True, **fields)
    assert res.returncode == 0, (res.returncode, res.stderr)
    assert res.stdout is not None
    return json.loads(res.stdout)


@pytest.fixture
def probe_in(rootfs: str) -> Any:
    def call(*args: str, **fields: Any) -> dict[str, Any]:
        return run_probe(rootfs, *args, **fields)

    return call


def host_ns(kind: str, pid: int | str = "self") -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


# ---- what a spawn must leave as it was --------------------------------------------


def _children() -> set[int]:
    kids: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        try:
            text = Path(f"/proc/self/task/{task}/children").read_text()
        except OSError:
            continue
        kids.update(int(x) for x in text.split())
    return kids


def _foreign(name: str) -> bool:
    """A fresh cgroup (``pynsbind-c-PID-START-N``) of a live process that is
    neither this one nor one of its descendants: another test run on the same
    machine, whose cgroups come and go as they please."""
    parts = name.split("-")
    if len(parts) != 5 or not parts[2].isdigit():
        return False
    pid = int(parts[2])
    me = os.getpid()
    while pid > 1:
        if pid == me:
            return False
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False  # its maker is dead: a leak, whoever it was
        pid = int(stat[stat.rindex(")") + 2 :].split()[1])
    return True


def _cgroups() -> set[str]:
    """Every cgroup pynsbind made: their names start with ``pynsbind`` at the root
    of a hierarchy (the v1 ones under /sys/fs/cgroup/*, or a v2 root), but those
    of other test runs (see _foreign)."""
    found: set[str] = set()
    base = "/sys/fs/cgroup"
    if not os.path.isdir(base):
        return found
    roots = [base] + [os.path.join(base, h) for h in os.listdir(base)]
    for top in roots:
        try:
            entries = os.listdir(top)
        except OSError:
            continue
        for entry in entries:
            if (
                entry.startswith("pynsbind")
                and not entry.startswith("pynsbind-bench")
                and not _foreign(entry)
            ):
                for dirpath, _, _ in os.walk(os.path.join(top, entry)):
                    found.add(dirpath)
    return found


@dataclass(frozen=True)
class HostState:
    mountinfo: tuple[str, ...]
    fds: frozenset[int]
    children: frozenset[int]
    cgroups: frozenset[str]
    hostname: str
    domainname: str
    ifaces: frozenset[str]

    @classmethod
    def now(cls) -> HostState:
        mounts = tuple(
            " ".join(line.split()[4:5] + line.split(" - ")[1:])
            for line in Path("/proc/self/mountinfo").read_text().splitlines()
        )
        return cls(
            mountinfo=mounts,
            fds=frozenset(int(x) for x in os.listdir("/proc/self/fd")),
            children=frozenset(_children()),
            cgroups=frozenset(_cgroups()),
            hostname=os.uname().nodename,
            domainname=Path("/proc/sys/kernel/domainname").read_text().strip(),
            ifaces=frozenset(os.listdir("/sys/class/net")),
        )

    def diff(self, other: HostState) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.mountinfo != other.mountinfo:
            out["mounts"] = sorted(set(other.mountinfo) ^ set(self.mountinfo))
        if other.fds != self.fds:
            out["fds"] = sorted(other.fds - self.fds), sorted(self.fds - other.fds)
        if other.children - self.children:
            out["children"] = sorted(other.children - self.children)
        if other.cgroups != self.cgroups:
            out["cgroups"] = sorted(other.cgroups ^ self.cgroups)
        for name in ("hostname", "domainname", "ifaces"):
            if getattr(other, name) != getattr(self, name):
                out[name] = (getattr(self, name), getattr(other, name))
        return out


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
    """Fails the test if it leaves a mount, fd, child or cgroup behind."""
    before = HostState.now()
    yield before
    after = HostState.now()
    assert before.diff(after) == {}
