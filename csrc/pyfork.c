/* pyfork.c - lowlevel.clone(): clone with namespace flags that behaves like os.fork.
 *
 * The child of this call runs Python, so it must go through CPython's fork
 * protocol exactly as os.fork does: PyOS_BeforeFork() (import lock, the
 * os.register_at_fork "before" hooks), the clone, then PyOS_AfterFork_Child() or
 * PyOS_AfterFork_Parent().  These need the GIL, which cffi released around the
 * call, so it is taken back here.  Only stable-ABI calls are used.
 *
 * This is NOT the spawn engine: the engine (spawn.c) never runs Python in a child.
 */
#define Py_LIMITED_API 0x030a0000
#include <Python.h>

#include "headers.h"
#include "lowlevel.h"

static long nsb_do_clone(uint64_t flags, int want_pidfd, int cgroup_fd, int legacy, int *pidfd)
{
    uint64_t extra = want_pidfd ? (uint64_t)CLONE_PIDFD : 0;
#if NSB_HAS_CLONE3
    if (!legacy) {
        struct clone_args args;
        size_t size = CLONE_ARGS_SIZE_VER0;
        memset(&args, 0, sizeof(args));
        args.flags = flags | extra;
        args.pidfd = (uint64_t)(uintptr_t)pidfd;
        args.exit_signal = (__u64)SIGCHLD;
        if (cgroup_fd >= 0) {
#if NSB_HAS_CLONE_INTO_CGROUP
            args.flags |= CLONE_INTO_CGROUP;
            args.cgroup = (__u64)(unsigned int)cgroup_fd;
            size = CLONE_ARGS_SIZE_VER2;
#else
            errno = ENOSYS;
            return -1;
#endif
        }
        return syscall(SYS_clone3, &args, size);
    }
#endif
    if (cgroup_fd >= 0) { /* clone(2) cannot place a child in a cgroup */
        errno = EINVAL;
        return -1;
    }
    if (flags & (uint64_t)CLONE_NEWTIME) { /* its bit is CSIGNAL's in clone(2) */
        errno = EINVAL;
        return -1;
    }
    /* stack 0: the child runs on a copy of this stack, like fork */
    return syscall(SYS_clone, (unsigned long)(flags | extra | SIGCHLD), 0L, pidfd, 0L, 0L);
}

int nsb_clone_fork(uint64_t flags, int want_pidfd, int cgroup_fd, int legacy, int *pidfd_out)
{
    PyGILState_STATE gil = PyGILState_Ensure();
    int pidfd = -1;
    long pid;
    int saved;

    PyOS_BeforeFork();
    pid = nsb_do_clone(flags, want_pidfd, cgroup_fd, legacy, &pidfd);
    saved = errno;
    if (pid == 0) {
        PyOS_AfterFork_Child();
    } else {
        PyOS_AfterFork_Parent();
    }
    PyGILState_Release(gil);
    if (pid > 0)
        *pidfd_out = pidfd;
    errno = saved;
    return (int)pid;
}
