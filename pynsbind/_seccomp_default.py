"""The data of pynsbind's default seccomp profile (see docs/seccomp.md).

Its effect is that of podman's and Docker's default profiles, written out here
from what they allow and why (not copied):

- the default action is ``SCMP_ACT_ERRNO`` with ``ENOSYS``: a call the profile does
  not know looks unimplemented, and the C library falls back to an older one;
- ``ALLOWED``: the calls ordinary programs make (busybox, a shell, python3, gcc);
- ``DENIED``: dangerous calls refused with ``EPERM`` (so that a program sees "not
  permitted", not "not implemented"); ``BY_CAPABILITY`` lists those that a
  capability allows again, as the kernel would check that capability anyway;
- a few calls are allowed only for some arguments: ``clone`` without namespace
  flags, ``personality`` with the usual personas, ``ioctl`` except ``TIOCSTI`` and
  ``TIOCLINUX``, ``socket`` except ``AF_VSOCK``.

Names libseccomp does not know (calls newer than its tables, or of another
architecture) are skipped when the profile is compiled.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from pynsbind.flags import Capability

#: Allowed for every container.
ALLOWED: tuple[str, ...] = tuple(
    """
    accept accept4 access alarm arch_prctl arm_fadvise64_64 arm_sync_file_range bind brk
    breakpoint cacheflush cachestat capget capset chdir chmod chown chown32 chroot
    clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
    clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
    epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
    epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2
    fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown
    fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr
    fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex
    futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat get_robust_list
    get_thread_area get_tls getcpu getcwd getdents getdents64 getegid getegid32 geteuid
    geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp
    getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32
    getrlimit getrusage getsid getsockname getsockopt gettid gettimeofday getuid getuid32
    getxattr getxattrat inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
    io_cancel io_destroy io_getevents io_pgetevents io_pgetevents_time64 io_setup io_submit
    ioprio_get ioprio_set ipc kcmp kill landlock_add_rule landlock_create_ruleset
    landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listxattr
    listxattrat llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise
    map_shadow_stack membarrier memfd_create mincore mkdir mkdirat mknod mknodat mlock
    mlock2 mlockall mmap mmap2 modify_ldt mprotect mq_getsetattr mq_notify mq_open
    mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink
    mremap mseal msgctl msgget msgrcv msgsnd msync munlock munlockall munmap nanosleep
    newfstatat _newselect nice open openat openat2 pause pidfd_getfd pidfd_open
    pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll
    ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_madvise process_mrelease
    process_vm_readv process_vm_writev pselect6 pselect6_time64 ptrace pwrite64 pwritev
    pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg
    recvmmsg_time64 recvmsg remap_file_pages removexattr removexattrat rename renameat
    renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask
    rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
    rt_tgsigqueueinfo sched_get_priority_max sched_get_priority_min sched_getaffinity
    sched_getattr sched_getparam sched_getscheduler sched_rr_get_interval
    sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
    sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
    semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto set_robust_list
    set_thread_area set_tid_address set_tls setdomainname setfsgid setfsgid32 setfsuid
    setfsuid32 setgid setgid32 setgroups setgroups32 sethostname setitimer setpgid
    setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
    setreuid32 setrlimit setsid setsockopt setuid setuid32 setxattr setxattrat shmat
    shmctl shmdt shmget shutdown sigaction sigaltstack signal signalfd signalfd4 sigpending
    sigprocmask sigreturn sigsuspend socketcall socketpair splice stat stat64 statfs
    statfs64 statx symlink symlinkat sync sync_file_range sync_file_range2 syncfs sysinfo
    tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime
    timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
    timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64
    ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork
    vmsplice wait4 waitid waitpid write writev
    """.split()
)

#: Refused with EPERM unless a capability below allows them: name -> why.
DENIED: dict[str, str] = {
    # kernel keyrings are not namespaced
    "add_key": "kernel keyrings are not namespaced",
    "keyctl": "kernel keyrings are not namespaced",
    "request_key": "kernel keyrings are not namespaced",
    # eBPF, tracing, profiling
    "bpf": "loads programs into the kernel; a large attack surface",
    "perf_event_open": "observes the host's kernel and other processes",
    "lookup_dcookie": "traces the host's kernel",
    "userfaultfd": "lets a process stall the kernel at will (a tool for exploiting races)",
    "io_uring_setup": "a large, often exploited attack surface that bypasses seccomp",
    "io_uring_enter": "a large, often exploited attack surface that bypasses seccomp",
    "io_uring_register": "a large, often exploited attack surface that bypasses seccomp",
    # mounts and namespaces
    "mount": "mounts; needs CAP_SYS_ADMIN",
    "umount": "mounts; needs CAP_SYS_ADMIN",
    "umount2": "mounts; needs CAP_SYS_ADMIN",
    "fsopen": "mounts (new mount API); needs CAP_SYS_ADMIN",
    "fsconfig": "mounts (new mount API); needs CAP_SYS_ADMIN",
    "fsmount": "mounts (new mount API); needs CAP_SYS_ADMIN",
    "fspick": "mounts (new mount API); needs CAP_SYS_ADMIN",
    "move_mount": "mounts (new mount API); needs CAP_SYS_ADMIN",
    "open_tree": "mounts (new mount API); needs CAP_SYS_ADMIN",
    "open_tree_attr": "mounts (new mount API); needs CAP_SYS_ADMIN",
    "mount_setattr": "mounts (new mount API); needs CAP_SYS_ADMIN",
    "pivot_root": "changes the root; needs CAP_SYS_ADMIN",
    "unshare": "new namespaces (a user namespace gives every capability inside it)",
    "setns": "joins namespaces",
    "quotactl": "filesystem quotas of the host; needs CAP_SYS_ADMIN",
    "quotactl_fd": "filesystem quotas of the host; needs CAP_SYS_ADMIN",
    "fanotify_init": "watches the host's filesystems; needs CAP_SYS_ADMIN",
    # the machine
    "kexec_load": "replaces the running kernel",
    "kexec_file_load": "replaces the running kernel",
    "reboot": "reboots the machine (in a pid namespace: kills its init)",
    "init_module": "loads kernel modules",
    "finit_module": "loads kernel modules",
    "delete_module": "unloads kernel modules",
    "swapon": "changes the host's swap",
    "swapoff": "changes the host's swap",
    "acct": "process accounting for the whole host",
    "settimeofday": "the clock is not namespaced",
    "stime": "the clock is not namespaced",
    "clock_settime": "the clock is not namespaced",
    "clock_settime64": "the clock is not namespaced",
    "clock_adjtime": "the clock is not namespaced",
    "clock_adjtime64": "the clock is not namespaced",
    "adjtimex": "the clock is not namespaced",
    "syslog": "the kernel log: kernel addresses, other containers' messages",
    "iopl": "raw port I/O",
    "ioperm": "raw port I/O",
    "pciconfig_iobase": "raw PCI access",
    "pciconfig_read": "raw PCI access",
    "pciconfig_write": "raw PCI access",
    "vhangup": "hangs up the terminal; needs CAP_SYS_TTY_CONFIG",
    # files by handle: escapes a bind mount (the "shocker" attack)
    "open_by_handle_at": "opens any file of a filesystem by its handle, outside the container",
    "name_to_handle_at": "the other half of open_by_handle_at",
    # memory policy of other processes
    "get_mempolicy": "NUMA policy; needs CAP_SYS_NICE",
    "mbind": "NUMA policy; needs CAP_SYS_NICE",
    "set_mempolicy": "NUMA policy; needs CAP_SYS_NICE",
    "set_mempolicy_home_node": "NUMA policy; needs CAP_SYS_NICE",
    "migrate_pages": "moves other processes' memory between NUMA nodes",
    "move_pages": "moves other processes' memory between NUMA nodes",
    # obsolete
    "_sysctl": "obsolete; sysctl through /proc/sys instead",
    "sysfs": "obsolete",
    "ustat": "obsolete",
    "uselib": "obsolete",
    "nfsservctl": "obsolete",
    "create_module": "obsolete",
    "get_kernel_syms": "obsolete",
    "query_module": "obsolete",
    "bdflush": "obsolete",
    "vm86": "obsolete, a past source of kernel bugs",
    "vm86old": "obsolete, a past source of kernel bugs",
}

#: Denied calls that any one of the capabilities allows again: (capabilities, names).
BY_CAPABILITY: tuple[tuple[frozenset[str], tuple[str, ...]], ...] = (
    (
        frozenset({"SYS_ADMIN"}),
        tuple(
            (
                "mount umount umount2 fsopen fsconfig fsmount fspick move_mount open_tree "
                "open_tree_attr mount_setattr pivot_root unshare setns quotactl quotactl_fd "
                "fanotify_init lookup_dcookie"
            ).split()
        ),
    ),
    (frozenset({"SYS_ADMIN", "BPF"}), ("bpf",)),
    (frozenset({"SYS_ADMIN", "PERFMON"}), ("perf_event_open",)),
    (frozenset({"SYS_BOOT"}), ("reboot",)),
    (frozenset({"SYS_MODULE"}), ("init_module", "finit_module", "delete_module")),
    (
        frozenset({"SYS_TIME"}),
        tuple(
            "settimeofday stime clock_settime clock_settime64 clock_adjtime clock_adjtime64 "
            "adjtimex".split()
        ),
    ),
    (frozenset({"SYSLOG"}), ("syslog",)),
    (frozenset({"SYS_RAWIO"}), ("iopl", "ioperm")),
    (frozenset({"SYS_PACCT"}), ("acct",)),
    (frozenset({"SYS_TTY_CONFIG"}), ("vhangup",)),
    (
        frozenset({"SYS_NICE"}),
        ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    ),
    (frozenset({"DAC_READ_SEARCH"}), ("open_by_handle_at", "name_to_handle_at")),
)

#: The calls that take a file mode, and which argument it is: a profile that
#: refuses setuid and setgid files (``setid_files=False``) allows them only
#: without those bits (openat2, whose mode sits behind a pointer, not at all).
SETID_MODE_ARG: dict[str, int] = {
    "chmod": 1,
    "fchmod": 1,
    "fchmodat": 2,
    "fchmodat2": 2,
    "creat": 1,
    "open": 2,
    "openat": 3,
    "mknod": 1,
    "mknodat": 2,
}

#: Allowed for the usual personas only (``personality(0xffffffff)`` asks for the
#: current one): Linux, Linux32, and either with UNAME26.
PERSONALITY_QUERY = 0xFFFFFFFF


def capability_allows(names: frozenset[str], caps: frozenset[Capability]) -> bool:
    """True if one of the capabilities called ``names`` (without ``CAP_``) is in caps."""
    have = {c.name for c in caps}
    return bool(names & have)


#: Calls the profile lists that were added to Linux in 6.5 or later: a libseccomp
#: older than the kernel may not know them yet, and then skips them.
RECENT: frozenset[str] = frozenset(
    """
    cachestat fchmodat2 futex_requeue futex_wait futex_wake getxattrat listxattrat
    map_shadow_stack mseal open_tree_attr removexattrat setxattrat
    """.split()
)
