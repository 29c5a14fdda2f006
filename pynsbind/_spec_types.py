"""The typing-only names of pynsbind.spec: ``MountKind``, ``JoinTarget`` and
``CgroupRef``.  They need ``typing``, which costs more to import than the whole
model: pynsbind.spec loads this module only when one of them is asked for at run
time (type checkers see them at once)."""

from __future__ import annotations

from typing import Any, Literal, Protocol, Union

__all__ = ["CgroupRef", "JoinTarget", "MountKind"]

#: What ``Mount.kind`` takes
MountKind = Literal[
    "bind", "tmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup", "overlay", "dev"
]

#: What a namespace is joined through: a path (/proc/PID/ns/KIND), an fd, or a
#: process with a pidfd (a pynsbind.Process)
JoinTarget = Union[str, int, Any]  # noqa: UP007 - a runtime alias, evaluated on 3.10


class CgroupRef(Protocol):
    """What ``Spec.cgroup`` takes besides a path: a ``pynsbind.cgroups.Cgroup``
    (the model does not import pynsbind.cgroups, which sits above it; the plan
    compiler checks the type)."""

    @property
    def path(self) -> str: ...
