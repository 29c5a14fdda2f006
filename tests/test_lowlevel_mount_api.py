"""pynsbind.lowlevel's new mount API on the real kernel: open_tree,
move_mount, fsopen, fsconfig, fsmount, fspick and mount_setattr (idmapped
mounts too).

Every call that changes process state runs in a forked child
(tests.helpers.in_child): the child reports back through a pipe and
``os._exit``s, so the pytest process never changes.  Where the effect could
leak, the test also looks from the host side while the child is still alive (a
``checkpoint``) and after it (the ``narrow_host_unchanged`` fixture).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pynsbind import lowlevel as L
from pynsbind.lowlevel import (
    FsconfigCmd,
    FsmountFlags,
    MountAttr,
    MountFlags,
    MoveMountFlags,
    OpenTreeFlags,
)
from pynsbind.lowlevel import Namespace as NS
from tests.helpers import checkpoint, in_child, mounts, wait_status
from tests.lowlevel_helpers import (
    needs_mount_setattr,
    needs_new_mount_api,
    needs_userns,
    private_mount_ns,
)

if TYPE_CHECKING:
    from collections.abc import Callable


# ---- open_tree and move_mount ---------------------------------------------------------


@pytest.mark.root
@needs_new_mount_api
def test_open_tree_clone_then_move_mount(tmp_path: Path, narrow_host_unchanged: Any) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()

    def body() -> dict[str, Any]:
        private_mount_ns()
        L.mount("tmpfs", a, "tmpfs")
        (a / "f").write_text("tree")
        fd = L.open_tree(None, a, OpenTreeFlags.CLONE | OpenTreeFlags.CLOEXEC)
        out = {
            "cloexec": not os.get_inheritable(fd),
            "detached": sorted(os.listdir(f"/proc/self/fd/{fd}")),
            "b_before": str(b) in mounts(),
        }
        L.move_mount(fd, "", None, b, MoveMountFlags.F_EMPTY_PATH)
        os.close(fd)
        out |= {"b": (b / "f").read_text(), "a_mounted": str(a) in mounts()}
        out["b_mounted"] = str(b) in mounts()
        return out

    out = in_child(body)
    assert out == {
        "cloexec": True,
        "detached": ["f"],
        "b_before": False,
        "b": "tree",
        "a_mounted": True,
        "b_mounted": True,
    }


@pytest.mark.root
@needs_new_mount_api
def test_move_mount_of_an_attached_tree_moves_it(
    tmp_path: Path, narrow_host_unchanged: Any
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    def body() -> tuple[bool, bool, str]:
        private_mount_ns()
        L.mount("tmpfs", tmp_path / "a", "tmpfs")
        (tmp_path / "a" / "f").write_text("moved")
        dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        fd = L.open_tree(dfd, "a")  # relative to a directory fd
        assert not os.get_inheritable(fd)  # close-on-exec by default
        L.move_mount(fd, "", dfd, "b", MoveMountFlags.F_EMPTY_PATH)
        table = mounts()
        return (
            str(tmp_path / "a") in table,
            str(tmp_path / "b") in table,
            (tmp_path / "b" / "f").read_text(),
        )

    assert in_child(body) == (False, True, "moved")


@pytest.mark.root
@needs_new_mount_api
def test_open_tree_and_move_mount_refusals(tmp_path: Path) -> None:
    def body() -> list[tuple[int, str]]:
        private_mount_ns()
        out = []
        calls: list[Callable[[], Any]] = [
            lambda: L.open_tree(None, tmp_path / "missing"),
            lambda: L.open_tree(None, tmp_path, 1 << 20),
            lambda: L.move_mount(None, tmp_path, None, tmp_path / "missing"),
        ]
        for call in calls:
            try:
                call()
            except OSError as exc:
                out.append((exc.errno or 0, exc.strerror or ""))
        return out

    assert in_child(body) == [
        (errno.ENOENT, f"open_tree('{tmp_path}/missing'): no such file or directory"),
        (errno.EINVAL, f"open_tree('{tmp_path}'): invalid argument"),
        (
            errno.ENOENT,
            f"move_mount('{tmp_path}' -> '{tmp_path}/missing'): no such file or directory",
        ),
    ]


# ---- fsopen, fsconfig, fsmount, fspick ------------------------------------------------


@pytest.mark.root
@needs_new_mount_api
def test_fsopen_fsconfig_fsmount_builds_a_mount(tmp_path: Path, narrow_host_unchanged: Any) -> None:
    target = str(tmp_path)

    def body() -> dict[str, Any]:
        private_mount_ns()
        fs = L.fsopen("tmpfs")
        L.fsconfig(fs, FsconfigCmd.SET_STRING, "size", "1m")
        L.fsconfig(fs, FsconfigCmd.SET_STRING, b"mode", b"0710")
        L.fsconfig(fs, FsconfigCmd.CMD_CREATE)
        mfd = L.fsmount(fs, FsmountFlags.CLOEXEC, MountAttr.NODEV | MountAttr.NOEXEC)
        out: dict[str, Any] = {"cloexec": [not os.get_inheritable(x) for x in (fs, mfd)]}
        L.move_mount(mfd, "", None, target, MoveMountFlags.F_EMPTY_PATH)
        out["mount"] = mounts()[target]
        out["mode"] = stat.S_IMODE(os.stat(target).st_mode)
        return out

    out = in_child(body)
    assert out["cloexec"] == [True, True]
    assert out["mount"]["fstype"] == "tmpfs"
    assert {"nodev", "noexec"} <= out["mount"]["opts"]
    assert {"size=1024k", "mode=710"} <= out["mount"]["super"]
    assert out["mode"] == 0o710


@pytest.mark.root
@needs_new_mount_api
def test_fsmount_gives_a_detached_mount_the_host_never_sees(narrow_host_unchanged: Any) -> None:
    """No new mount namespace here: a detached mount is in no namespace at all."""
    host_mounts = Path("/proc/self/mountinfo").read_text()
    seen: dict[str, Any] = {}

    def body() -> tuple[str, int]:
        fs = L.fsopen("tmpfs")
        L.fsconfig(fs, FsconfigCmd.SET_FLAG, "ro")
        L.fsconfig(fs, FsconfigCmd.CMD_CREATE)
        mfd = L.fsmount(fs)
        root = f"/proc/self/fd/{mfd}"
        try:
            os.open(os.path.join(root, "f"), os.O_CREAT | os.O_WRONLY)
        except OSError as exc:
            err = exc.errno or 0
        else:
            err = 0
        checkpoint()
        return Path("/proc/self/mountinfo").read_text(), err

    def during(pid: int, _: object) -> None:
        seen["host"] = Path("/proc/self/mountinfo").read_text()

    child_mounts, err = in_child(body, during=during)
    assert err == errno.EROFS  # the "ro" flag made it
    assert child_mounts == host_mounts == seen["host"]


@pytest.mark.root
@needs_new_mount_api
def test_fsopen_and_fsconfig_refusals() -> None:
    def body() -> tuple[int, list[tuple[int, str]]]:
        out = []
        fs = L.fsopen("tmpfs")

        def premature() -> None:
            L.fsmount(fs)  # before CMD_CREATE

        for call in (
            lambda: L.fsopen("nosuchfs"),
            lambda: L.fsconfig(fs, FsconfigCmd.SET_STRING, "nosuchoption", "1"),
            premature,
            lambda: L.fsconfig(999, FsconfigCmd.CMD_CREATE),
        ):
            try:
                call()
            except OSError as exc:
                out.append((exc.errno or 0, exc.strerror or ""))
        return fs, out

    fs, out = in_child(body)
    assert out == [
        (errno.ENODEV, "fsopen('nosuchfs'): no such device"),
        (errno.EINVAL, f"fsconfig({fs}, SET_STRING, 'nosuchoption'): invalid argument"),
        (errno.EINVAL, f"fsmount({fs}): invalid argument"),
        (errno.EBADF, "fsconfig(999, CMD_CREATE, None): bad file descriptor"),
    ]


@pytest.mark.root
@needs_new_mount_api
def test_fspick_reconfigures_a_tmpfs_read_only(tmp_path: Path, narrow_host_unchanged: Any) -> None:
    target = str(tmp_path)

    def body() -> list[Any]:
        private_mount_ns()
        L.mount("tmpfs", target, "tmpfs")
        out: list[Any] = []

        def try_write(name: str) -> int:
            try:
                Path(target, name).write_text("x")
            except OSError as exc:
                return exc.errno or 0
            return 0

        out.append(try_write("before"))
        pfd = L.fspick(None, target)
        out.append(not os.get_inheritable(pfd))
        L.fsconfig(pfd, FsconfigCmd.SET_FLAG, "ro")
        L.fsconfig(pfd, FsconfigCmd.CMD_RECONFIGURE)
        out += [try_write("during"), "ro" in mounts()[target]["super"]]
        L.fsconfig(pfd, FsconfigCmd.SET_FLAG, "rw")
        L.fsconfig(pfd, FsconfigCmd.CMD_RECONFIGURE)
        out += [try_write("after"), sorted(os.listdir(target))]
        try:
            os.mkdir(os.path.join(target, "sub"))
            L.fspick(None, os.path.join(target, "sub"))  # not the root of a mount
        except OSError as exc:
            out.append(exc.strerror)
        return out

    assert in_child(body) == [
        0,
        True,
        errno.EROFS,
        True,
        0,
        ["after", "before"],
        f"fspick('{target}/sub'): invalid argument",
    ]


# ---- mount_setattr ----------------------------------------------------------------------


@pytest.mark.root
@needs_mount_setattr
def test_mount_setattr_makes_a_bind_mount_read_only(
    tmp_path: Path, narrow_host_unchanged: Any
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()

    def write(path: Path) -> int:
        try:
            path.write_text("x")
        except OSError as exc:
            return exc.errno or 0
        return 0

    def body() -> list[Any]:
        private_mount_ns()
        L.mount("tmpfs", src, "tmpfs")
        (src / "sub").mkdir()
        L.mount("tmpfs", src / "sub", "tmpfs")
        L.mount(src, dst, None, MountFlags.BIND | MountFlags.REC)
        L.mount_setattr(None, dst, attr_set=MountAttr.RDONLY)
        out: list[Any] = [write(dst / "f"), write(src / "f"), write(dst / "sub" / "f")]
        out.append("ro" in mounts()[str(dst)]["opts"])
        L.mount_setattr(None, dst, attr_clr=MountAttr.RDONLY)
        out.append(write(dst / "g"))
        dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        L.mount_setattr(dfd, "dst", L.AT_RECURSIVE, attr_set=MountAttr.RDONLY)
        out += [write(dst / "h"), write(dst / "sub" / "h")]
        return out

    assert in_child(body) == [errno.EROFS, 0, 0, True, 0, errno.EROFS, errno.EROFS]


@pytest.mark.root
@needs_mount_setattr
def test_mount_setattr_propagation(tmp_path: Path, narrow_host_unchanged: Any) -> None:
    def body() -> tuple[list[str], list[str]]:
        private_mount_ns()
        L.mount("tmpfs", tmp_path, "tmpfs")
        L.mount_setattr(None, tmp_path, propagation=MountFlags.SHARED)
        shared = mounts()[str(tmp_path)]["optional"]
        L.mount_setattr(None, tmp_path, propagation=MountFlags.PRIVATE)
        return shared, mounts()[str(tmp_path)]["optional"]

    shared, private = in_child(body)
    assert len(shared) == 1
    assert shared[0].startswith("shared:")
    assert private == []


def _user_namespace_with_map(uid: int) -> int:
    """In a child of the test: a user namespace whose root is uid (and gid) on the
    host, kept by an fd after its owner exits."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            L.unshare(NS.USER)
            os.write(ready_w, b"r")
            os.read(go_r, 1)
        finally:
            os._exit(0)
    assert os.read(ready_r, 1) == b"r"
    Path(f"/proc/{pid}/uid_map").write_text(f"0 {uid} 1\n")
    Path(f"/proc/{pid}/gid_map").write_text(f"0 {uid} 1\n")
    fd = L.open_namespace(NS.USER, pid)
    os.write(go_w, b"g")
    wait_status(pid)
    for x in (ready_r, ready_w, go_r, go_w):
        os.close(x)
    return fd


@pytest.mark.root
@needs_mount_setattr
@needs_userns
def test_mount_setattr_idmapped_mount_shows_the_mapped_owner(
    tmp_path: Path, narrow_host_unchanged: Any
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()

    def body() -> list[Any]:
        userns = _user_namespace_with_map(1000)
        private_mount_ns()
        L.mount("tmpfs", src, "tmpfs")
        (src / "f").write_text("x")
        out: list[Any] = []
        try:  # only a detached mount can be idmapped
            L.mount_setattr(None, src, attr_set=MountAttr.IDMAP, userns_fd=userns)
        except OSError as exc:
            out.append(exc.strerror)
        tree = L.open_tree(None, src, OpenTreeFlags.CLONE | OpenTreeFlags.CLOEXEC)
        L.mount_setattr(tree, "", L.AT_EMPTY_PATH, attr_set=MountAttr.IDMAP, userns_fd=userns)
        L.move_mount(tree, "", None, dst, MoveMountFlags.F_EMPTY_PATH)
        for p in (src / "f", dst / "f"):
            st = os.stat(p)
            out.append((st.st_uid, st.st_gid))
        out.append("idmapped" in mounts()[str(dst)]["opts"])
        return out

    assert in_child(body) == [
        f"mount_setattr('{src}'): invalid argument",
        (0, 0),
        (1000, 1000),
        True,
    ]


@pytest.mark.root
@needs_mount_setattr
def test_mount_setattr_refusals(tmp_path: Path) -> None:
    def body() -> list[tuple[int, str]]:
        private_mount_ns()
        out = []
        for call in (
            lambda: L.mount_setattr(None, tmp_path / "missing", attr_set=MountAttr.RDONLY),
            lambda: L.mount_setattr(None, tmp_path, attr_set=1 << 40),
        ):
            try:
                call()
            except OSError as exc:
                out.append((exc.errno or 0, exc.strerror or ""))
        return out

    assert in_child(body) == [
        (errno.ENOENT, f"mount_setattr('{tmp_path}/missing'): no such file or directory"),
        (errno.EINVAL, f"mount_setattr('{tmp_path}'): invalid argument"),
    ]
