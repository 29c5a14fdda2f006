"""pynsbind.flags: the flag and number enums of the kernel interfaces pynsbind
drives (namespaces, mounts, capabilities...), each value taken from the kernel
headers when the extension was built.  The bottom of pynsbind's layers: every
other module may use these, and this one uses nothing of pynsbind but the
compiled module."""

from __future__ import annotations

import enum

from pynsbind._ffi import lib

__all__ = [
    "CAP_LAST_CAP",
    "PERSONALITY_DOMAIN_MASK",
    "Capability",
    "CloseRangeFlags",
    "FsconfigCmd",
    "FsmountFlags",
    "FsopenFlags",
    "FspickFlags",
    "MountAttr",
    "MountFlags",
    "MoveMountFlags",
    "Namespace",
    "OpenTreeFlags",
    "Personality",
    "UmountFlags",
    "describe_namespaces",
]


class Namespace(enum.IntFlag):
    """Namespace kinds, as their ``CLONE_NEW*`` flags."""

    USER = lib.CLONE_NEWUSER
    PID = lib.CLONE_NEWPID
    MNT = lib.CLONE_NEWNS
    NET = lib.CLONE_NEWNET
    UTS = lib.CLONE_NEWUTS
    IPC = lib.CLONE_NEWIPC
    CGROUP = lib.CLONE_NEWCGROUP
    TIME = lib.CLONE_NEWTIME

    @property
    def proc_name(self) -> str:
        """The file name under ``/proc/PID/ns/`` (a single kind only)."""
        name = _NS_PROC_NAMES.get(self)
        if name is None:
            raise ValueError(f"not a single namespace kind: {describe_namespaces(self)}")
        return name

    @classmethod
    def all(cls) -> Namespace:
        result = cls(0)
        for kind in cls:
            result |= kind
        return result


_NS_PROC_NAMES = {
    Namespace.USER: "user",
    Namespace.PID: "pid",
    Namespace.MNT: "mnt",
    Namespace.NET: "net",
    Namespace.UTS: "uts",
    Namespace.IPC: "ipc",
    Namespace.CGROUP: "cgroup",
    Namespace.TIME: "time",
}


class MountFlags(enum.IntFlag):
    """``MS_*`` flags of mount(2)."""

    RDONLY = lib.MS_RDONLY
    NOSUID = lib.MS_NOSUID
    NODEV = lib.MS_NODEV
    NOEXEC = lib.MS_NOEXEC
    SYNCHRONOUS = lib.MS_SYNCHRONOUS
    REMOUNT = lib.MS_REMOUNT
    MANDLOCK = lib.MS_MANDLOCK
    DIRSYNC = lib.MS_DIRSYNC
    NOSYMFOLLOW = lib.MS_NOSYMFOLLOW
    NOATIME = lib.MS_NOATIME
    NODIRATIME = lib.MS_NODIRATIME
    BIND = lib.MS_BIND
    MOVE = lib.MS_MOVE
    REC = lib.MS_REC
    SILENT = lib.MS_SILENT
    POSIXACL = lib.MS_POSIXACL
    UNBINDABLE = lib.MS_UNBINDABLE
    PRIVATE = lib.MS_PRIVATE
    SLAVE = lib.MS_SLAVE
    SHARED = lib.MS_SHARED
    RELATIME = lib.MS_RELATIME
    STRICTATIME = lib.MS_STRICTATIME
    LAZYTIME = lib.MS_LAZYTIME


class UmountFlags(enum.IntFlag):
    """Flags of umount2(2)."""

    FORCE = lib.MNT_FORCE
    DETACH = lib.MNT_DETACH
    EXPIRE = lib.MNT_EXPIRE
    NOFOLLOW = lib.UMOUNT_NOFOLLOW


class MountAttr(enum.IntFlag):
    """``MOUNT_ATTR_*`` of fsmount(2) and mount_setattr(2).  RELATIME is 0: it is
    the absence of the other atime bits (``ATIME`` is their mask)."""

    RDONLY = lib.MOUNT_ATTR_RDONLY
    NOSUID = lib.MOUNT_ATTR_NOSUID
    NODEV = lib.MOUNT_ATTR_NODEV
    NOEXEC = lib.MOUNT_ATTR_NOEXEC
    ATIME = lib.MOUNT_ATTR__ATIME
    RELATIME = lib.MOUNT_ATTR_RELATIME
    NOATIME = lib.MOUNT_ATTR_NOATIME
    STRICTATIME = lib.MOUNT_ATTR_STRICTATIME
    NODIRATIME = lib.MOUNT_ATTR_NODIRATIME
    IDMAP = lib.MOUNT_ATTR_IDMAP
    NOSYMFOLLOW = lib.MOUNT_ATTR_NOSYMFOLLOW


class OpenTreeFlags(enum.IntFlag):
    CLONE = lib.OPEN_TREE_CLONE
    CLOEXEC = lib.OPEN_TREE_CLOEXEC
    RECURSIVE = lib.AT_RECURSIVE
    EMPTY_PATH = lib.AT_EMPTY_PATH
    SYMLINK_NOFOLLOW = lib.AT_SYMLINK_NOFOLLOW
    NO_AUTOMOUNT = lib.AT_NO_AUTOMOUNT


class MoveMountFlags(enum.IntFlag):
    F_SYMLINKS = lib.MOVE_MOUNT_F_SYMLINKS
    F_AUTOMOUNTS = lib.MOVE_MOUNT_F_AUTOMOUNTS
    F_EMPTY_PATH = lib.MOVE_MOUNT_F_EMPTY_PATH
    T_SYMLINKS = lib.MOVE_MOUNT_T_SYMLINKS
    T_AUTOMOUNTS = lib.MOVE_MOUNT_T_AUTOMOUNTS
    T_EMPTY_PATH = lib.MOVE_MOUNT_T_EMPTY_PATH


class FsopenFlags(enum.IntFlag):
    CLOEXEC = lib.FSOPEN_CLOEXEC


class FsmountFlags(enum.IntFlag):
    CLOEXEC = lib.FSMOUNT_CLOEXEC


class FspickFlags(enum.IntFlag):
    CLOEXEC = lib.FSPICK_CLOEXEC
    SYMLINK_NOFOLLOW = lib.FSPICK_SYMLINK_NOFOLLOW
    NO_AUTOMOUNT = lib.FSPICK_NO_AUTOMOUNT
    EMPTY_PATH = lib.FSPICK_EMPTY_PATH


class FsconfigCmd(enum.IntEnum):
    SET_FLAG = lib.FSCONFIG_SET_FLAG
    SET_STRING = lib.FSCONFIG_SET_STRING
    SET_BINARY = lib.FSCONFIG_SET_BINARY
    SET_PATH = lib.FSCONFIG_SET_PATH
    SET_PATH_EMPTY = lib.FSCONFIG_SET_PATH_EMPTY
    SET_FD = lib.FSCONFIG_SET_FD
    CMD_CREATE = lib.FSCONFIG_CMD_CREATE
    CMD_RECONFIGURE = lib.FSCONFIG_CMD_RECONFIGURE


class Personality(enum.IntFlag):
    """personality(2): the execution domain (the low byte: ``LINUX`` or
    ``LINUX32``, whose ``uname -m`` is a 32-bit machine) and its flags."""

    LINUX = lib.PER_LINUX
    LINUX32 = lib.PER_LINUX32
    UNAME26 = lib.UNAME26
    ADDR_NO_RANDOMIZE = lib.ADDR_NO_RANDOMIZE
    FDPIC_FUNCPTRS = lib.FDPIC_FUNCPTRS
    MMAP_PAGE_ZERO = lib.MMAP_PAGE_ZERO
    ADDR_COMPAT_LAYOUT = lib.ADDR_COMPAT_LAYOUT
    READ_IMPLIES_EXEC = lib.READ_IMPLIES_EXEC
    ADDR_LIMIT_32BIT = lib.ADDR_LIMIT_32BIT
    SHORT_INODE = lib.SHORT_INODE
    WHOLE_SECONDS = lib.WHOLE_SECONDS
    STICKY_TIMEOUTS = lib.STICKY_TIMEOUTS
    ADDR_LIMIT_3GB = lib.ADDR_LIMIT_3GB


#: the execution-domain part of a personality (PER_MASK)
PERSONALITY_DOMAIN_MASK: int = lib.PER_MASK


class CloseRangeFlags(enum.IntFlag):
    UNSHARE = lib.CLOSE_RANGE_UNSHARE
    CLOEXEC = lib.CLOSE_RANGE_CLOEXEC


_CAP_NAMES = (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
    "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER "
    "SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE "
    "SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP "
    "MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF "
    "CHECKPOINT_RESTORE"
).split()

#: Linux capabilities (those the build's headers know), by their ``CAP_*`` number.
Capability = enum.IntEnum(  # type: ignore[misc]
    "Capability",
    [(n, getattr(lib, "CAP_" + n)) for n in _CAP_NAMES if getattr(lib, "CAP_" + n) >= 0],
    module=__name__,
)
Capability.__doc__ = "Linux capabilities (those the build's headers know), by number."
#: The highest capability number the build's headers know.
CAP_LAST_CAP: int = lib.CAP_LAST_CAP


def describe_namespaces(flags: int) -> str:
    """``UTS|USER``: the Namespace bits of flags by name, any other bit in hex."""
    names = [kind.name or "" for kind in Namespace if kind and flags & kind == kind]
    rest = flags & ~Namespace.all()
    if rest:
        names.append(f"{rest:#x}")
    return "|".join(names) or "0"
