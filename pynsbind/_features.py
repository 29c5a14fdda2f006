"""pynsbind.features(): what this kernel and this build support, probed once."""

from __future__ import annotations

import functools
import os

from pynsbind._record import record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Literal

    CgroupLayout = Literal["unified", "hybrid", "legacy", "none"]


__all__ = ["Features", "features"]


@record(frozen=True)
class Features:
    """The answers of :func:`features`.  Each flag is what the running kernel
    accepted when probed *and* what this build of pynsbind was compiled with."""

    kernel: str
    clone3: bool
    clone_pidfd: bool
    clone_into_cgroup: bool
    clone_vm: bool
    new_mount_api: bool
    mount_setattr: bool
    idmapped_mounts: bool
    openat2: bool
    pidfd: bool
    pidfd_getfd: bool
    close_range: bool
    time_namespace: bool
    user_namespace: bool
    seccomp: bool
    cgroup_layout: CgroupLayout
    cap_last_cap: int


def _read_int(path: str, default: int) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return default


@functools.cache
def features() -> Features:
    """Probe the kernel (once per process; the result is cached)."""
    from pynsbind._ffi import lib
    from pynsbind._mountinfo import cgroup_layout

    def probe(what: int) -> bool:
        return bool(lib.nsb_probe(what) > 0)

    clone3 = probe(lib.NSB_PROBE_CLONE3)
    pidfd = probe(lib.NSB_PROBE_PIDFD)
    setattr_ok = probe(lib.NSB_PROBE_MOUNT_SETATTR)
    return Features(
        kernel=os.uname().release,
        clone3=clone3,
        clone_pidfd=clone3 and pidfd,
        clone_into_cgroup=clone3 and probe(lib.NSB_PROBE_CLONE_INTO_CGROUP),
        clone_vm=bool(lib.nsb_clone_vm_supported()),
        new_mount_api=probe(lib.NSB_PROBE_NEW_MOUNT_API),
        mount_setattr=setattr_ok,
        idmapped_mounts=setattr_ok and bool(lib.NSB_HAS_MOUNT_SETATTR),
        openat2=probe(lib.NSB_PROBE_OPENAT2),
        pidfd=pidfd,
        pidfd_getfd=probe(lib.NSB_PROBE_PIDFD_GETFD),
        close_range=probe(lib.NSB_PROBE_CLOSE_RANGE),
        time_namespace=bool(lib.NSB_HAS_TIME_NS) and os.path.exists("/proc/self/ns/time"),
        user_namespace=os.path.exists("/proc/self/ns/user")
        and _read_int("/proc/sys/user/max_user_namespaces", 1) > 0,
        seccomp=probe(lib.NSB_PROBE_SECCOMP),
        cgroup_layout=cgroup_layout(),
        cap_last_cap=_read_int("/proc/sys/kernel/cap_last_cap", lib.CAP_LAST_CAP),
    )
