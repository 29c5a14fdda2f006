"""Helpers for the tests of pynsbind.lowlevel (tests/test_lowlevel_*.py): the
features of this kernel as skip marks, the message format of a kernel refusal,
and what a child of :func:`tests.helpers.in_child` does to itself.  What other
tests share too (in_child, checkpoint, mounts, status_field...) is in
tests/helpers.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import pynsbind
from pynsbind import lowlevel as L
from pynsbind.lowlevel import Capability, MountFlags
from pynsbind.lowlevel import Namespace as NS
from tests.helpers import checkpoint, status_field

if TYPE_CHECKING:
    from collections.abc import Callable

FEATURES = pynsbind.features()

needs_new_mount_api = pytest.mark.skipif(
    not FEATURES.new_mount_api, reason="needs the new mount API (Linux 5.2)"
)
needs_mount_setattr = pytest.mark.skipif(
    not FEATURES.mount_setattr, reason="needs mount_setattr (Linux 5.12)"
)
needs_pidfd = pytest.mark.skipif(not FEATURES.pidfd, reason="needs pidfd_open (Linux 5.3)")
needs_close_range = pytest.mark.skipif(
    not FEATURES.close_range, reason="needs close_range (Linux 5.9)"
)
needs_userns = pytest.mark.skipif(not FEATURES.user_namespace, reason="needs user namespaces")

#: the message of every kernel refusal: ``call(args): lowercase strerror``
MESSAGE = re.compile(r"^[a-z_0-9 ]+\(.*\): [a-z][a-z ,/()-]*[a-z)]$")


def clone_with(flags: int = 0, **kwargs: Any) -> Callable[[], int | tuple[int, int]]:
    """A ``fork`` for in_child: pynsbind.lowlevel.clone with these arguments."""
    return lambda: L.clone(flags, **kwargs)


def private_mount_ns() -> None:
    """A new mount namespace whose mounts never propagate back to the host."""
    L.unshare(NS.MNT)
    L.mount(None, "/", None, MountFlags.REC | MountFlags.PRIVATE)


def drop_effective(*caps: Capability) -> None:
    now = L.capget()
    L.capset(now.effective - set(caps), now.permitted, now.inheritable)


def status_mask(name: str, pid: int | str = "self") -> int:
    return int(status_field(name, pid), 16)


def caps_mask(caps: frozenset[Capability] | set[Capability]) -> int:
    return sum(1 << int(c) for c in caps)


def known_caps_mask() -> int:
    return caps_mask(set(Capability))


def pid_max() -> int:
    return int(Path("/proc/sys/kernel/pid_max").read_text())


def hold(fn: Callable[[], Any] = lambda: None) -> Callable[[], Any]:
    """A child body: run fn, then stay alive (at a checkpoint) while the parent looks."""

    def body() -> Any:
        value = fn()
        checkpoint(value)
        return value

    return body
