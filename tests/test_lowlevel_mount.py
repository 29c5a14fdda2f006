"""pynsbind.lowlevel mounts on the real kernel: mount, umount2 and pivot_root.

Every call that changes process state runs in a forked child
(tests.helpers.in_child): the child reports back through a pipe and
``os._exit``s, so the pytest process never changes.  Where the effect could
leak, the test also looks from the host side while the child is still alive (a
``checkpoint``) and after it (the ``narrow_host_unchanged`` fixture).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from pynsbind import lowlevel as L
from pynsbind.lowlevel import Capability, MountFlags, UmountFlags
from tests.helpers import checkpoint, in_child, mounts
from tests.lowlevel_helpers import MESSAGE, drop_effective, private_mount_ns

# ---- mount and umount2 -----------------------------------------------------------------


@pytest.mark.root
def test_tmpfs_in_a_new_mount_namespace_never_shows_on_the_host(
    tmp_path: Path, narrow_host_unchanged: Any
) -> None:
    target = str(tmp_path)
    seen: dict[str, Any] = {}

    def body() -> tuple[bool, bool]:
        private_mount_ns()
        L.mount("tmpfs", target, "tmpfs", MountFlags.NOSUID | MountFlags.NODEV, "size=1m,mode=0710")
        Path(target, "inside").write_text("x")
        checkpoint()
        L.umount2(target)
        return os.path.exists(os.path.join(target, "inside")), target in mounts()

    def during(pid: int, _: object) -> None:
        seen["child"] = mounts(pid).get(target)
        seen["host"] = mounts().get(target)
        seen["host_sees_file"] = os.path.exists(os.path.join(target, "inside"))

    file_after, mounted_after = in_child(body, during=during)
    child = seen["child"]
    assert child is not None
    assert child["fstype"] == "tmpfs"
    assert {"nosuid", "nodev"} <= child["opts"]
    assert {"size=1024k", "mode=710"} <= child["super"]
    assert seen["host"] is None
    assert seen["host_sees_file"] is False
    assert (file_after, mounted_after) == (False, False)


@pytest.mark.root
def test_mount_bind_and_remount_readonly(tmp_path: Path, narrow_host_unchanged: Any) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()

    def body() -> tuple[int, str]:
        private_mount_ns()
        L.mount(src, os.fsencode(dst), None, MountFlags.BIND)  # PathLike and bytes
        L.mount(None, dst, None, MountFlags.REMOUNT | MountFlags.BIND | MountFlags.RDONLY)
        (src / "through-src").write_text("x")  # the source stays writable
        try:
            (dst / "through-dst").write_text("x")
        except OSError as exc:
            return exc.errno or 0, (dst / "through-src").read_text()
        return 0, ""

    err, seen = in_child(body)
    assert err == errno.EROFS
    assert seen == "x"
    assert not (dst / "through-src").exists()  # the host never had the bind mount


@pytest.mark.root
def test_umount2_busy_then_detach(tmp_path: Path, narrow_host_unchanged: Any) -> None:
    target = str(tmp_path)

    def body() -> tuple[str, bytes, bool]:
        private_mount_ns()
        L.mount("tmpfs", target, "tmpfs")
        Path(target, "f").write_text("kept")
        fd = os.open(os.path.join(target, "f"), os.O_RDONLY)
        os.chdir(target)
        try:
            L.umount2(target)
        except OSError as exc:
            busy = exc.strerror or ""
        else:
            busy = "unmounted"
        L.umount2(target, UmountFlags.DETACH)
        return busy, os.pread(fd, 10, 0), target in mounts()

    busy, data, still = in_child(body)
    assert busy == f"umount2('{target}'): device or resource busy"
    assert data == b"kept"  # a detached mount lives on for its open files
    assert still is False


@pytest.mark.root
def test_mount_and_umount2_refusals(tmp_path: Path) -> None:
    def body() -> list[tuple[str, int, str]]:
        private_mount_ns()
        out = []
        for call in (
            lambda: L.mount("proc", tmp_path / "missing" / "proc", "proc"),
            lambda: L.mount("none", tmp_path, "nosuchfs"),
            lambda: L.umount2(tmp_path),
        ):
            try:
                call()
            except OSError as exc:
                out.append((type(exc).__name__, exc.errno or 0, exc.strerror or ""))
        drop_effective(Capability.SYS_ADMIN)
        try:
            L.mount("tmpfs", tmp_path, "tmpfs")
        except OSError as exc:
            out.append((type(exc).__name__, exc.errno or 0, exc.strerror or ""))
        return out

    out = in_child(body)
    assert out == [
        (
            "FileNotFoundError",
            errno.ENOENT,
            f"mount('proc', '{tmp_path}/missing/proc', 'proc'): no such file or directory",
        ),
        ("OSError", errno.ENODEV, f"mount('none', '{tmp_path}', 'nosuchfs'): no such device"),
        ("OSError", errno.EINVAL, f"umount2('{tmp_path}'): invalid argument"),
        (
            "PermissionError",
            errno.EPERM,
            f"mount('tmpfs', '{tmp_path}', 'tmpfs'): operation not permitted",
        ),
    ]
    for _, _, message in out:
        assert MESSAGE.match(message), message


# ---- pivot_root --------------------------------------------------------------------------


@pytest.mark.root
@pytest.mark.parametrize("put_old", ["old", "."])
def test_pivot_root_into_a_tmpfs(tmp_path: Path, put_old: str, narrow_host_unchanged: Any) -> None:
    new_root = str(tmp_path)
    host_root = sorted(os.listdir("/"))

    def body() -> tuple[list[str], bool, str]:
        private_mount_ns()
        L.mount("tmpfs", new_root, "tmpfs")
        Path(new_root, "marker").write_text("new root")
        if put_old != ".":
            os.mkdir(os.path.join(new_root, put_old))
        os.chdir(new_root)
        L.pivot_root(".", put_old)
        if put_old == ".":
            L.umount2(".", UmountFlags.DETACH)  # the old root is stacked on "."
        else:
            L.umount2("/old", UmountFlags.DETACH)
            os.rmdir("/old")
        os.chdir("/")
        return sorted(os.listdir("/")), os.path.exists("/proc/self"), Path("/marker").read_text()

    listing, has_proc, marker = in_child(body)
    assert listing == ["marker"]
    assert has_proc is False
    assert marker == "new root"
    assert sorted(os.listdir("/")) == host_root
    assert os.listdir(new_root) == []


@pytest.mark.root
def test_pivot_root_refusals(tmp_path: Path) -> None:
    sub = tmp_path / "sub"

    def body() -> list[tuple[int, str]]:
        private_mount_ns()
        L.mount("tmpfs", tmp_path, "tmpfs")
        (sub / "old").mkdir(parents=True)
        out = []
        # sub is not a mount point; a missing new root
        for new, old in ((sub, sub / "old"), (tmp_path / "missing", tmp_path)):
            try:
                L.pivot_root(new, old)
            except OSError as exc:
                out.append((exc.errno or 0, exc.strerror or ""))
        return out

    assert in_child(body) == [
        (errno.EINVAL, f"pivot_root('{sub}', '{sub}/old'): invalid argument"),
        (
            errno.ENOENT,
            f"pivot_root('{tmp_path}/missing', '{tmp_path}'): no such file or directory",
        ),
    ]
