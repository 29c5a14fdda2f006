"""Which cgroup layout a host has, from the filesystem types of its mounts."""

from __future__ import annotations

from typing import Literal

__all__ = ["Layout", "mode", "parse_mountinfo"]

Layout = Literal["unified", "hybrid", "legacy", "none"]


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[tuple[str, str, str]]:
    """(mount point, filesystem type, super options) of each line of mountinfo."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        mounts.append((_unescape(fields[4]), rfields[0], rfields[2]))
    return mounts


def mode(root: str = "/sys/fs/cgroup", mountinfo: str = "/proc/self/mountinfo") -> Layout:
    """``unified`` (cgroup2 at root), ``hybrid`` (v1 hierarchies under root and a
    cgroup2 beside them), ``legacy`` (v1 only) or ``none``."""
    try:
        with open(mountinfo) as f:
            mounts = parse_mountinfo(f.read())
    except OSError:
        return "none"
    root = root.rstrip("/") or "/"
    v1 = v2_under = False
    for point, fstype, _ in mounts:
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
