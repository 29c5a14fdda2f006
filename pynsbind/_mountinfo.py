"""/proc/PID/mountinfo, parsed; the cgroup layout it shows.

Below everything (no import of pynsbind's): pynsbind.features() names the
cgroup layout without importing pynsbind.cgroups, and the sandbox lists the
host's mounts with the same parser as the cgroup detection."""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Literal

    Layout = Literal["unified", "hybrid", "legacy", "none"]

__all__ = ["cgroup_layout", "layout_of", "mounts", "unescape"]


def unescape(field: str) -> str:
    """A mountinfo field as the path it is: space, tab, newline and backslash
    are escaped as \\ooo."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts(text: str) -> list[tuple[str, str, str, str]]:
    """(root, mount point, filesystem type, super options) of each line."""
    out = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        out.append((unescape(fields[3]), unescape(fields[4]), rfields[0], rfields[2]))
    return out


def cgroup_layout(root: str = "/sys/fs/cgroup", mountinfo: str = "/proc/self/mountinfo") -> Layout:
    """``unified`` (cgroup2 at root), ``hybrid`` (v1 hierarchies under root and a
    cgroup2 beside them), ``legacy`` (v1 only) or ``none``."""
    try:
        with open(mountinfo) as f:
            found = mounts(f.read())
    except OSError:
        return "none"
    return layout_of([(point, fstype, opts) for _, point, fstype, opts in found], root)


def layout_of(found: list[tuple[str, str, str]], root: str) -> Layout:
    """The layout of (mount point, filesystem type, super options) mounts."""
    root = root.rstrip("/") or "/"
    v1 = v2_under = False
    for point, fstype, _ in found:
        if point == root and fstype == "cgroup2":
            return "unified"
        if point.startswith(root + "/"):
            if fstype == "cgroup":
                v1 = True
            elif fstype == "cgroup2":
                v2_under = True
    if v1:
        return "hybrid" if v2_under else "legacy"
    return "none"
