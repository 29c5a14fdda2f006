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

#include "clone.h"
#include "headers.h"
#include "lowlevel.h"

int nsb_clone_fork(uint64_t flags, int want_pidfd, int cgroup_fd, int legacy, int *pidfd_out)
{
    PyGILState_STATE gil = PyGILState_Ensure();
    int pidfd = -1;
    long pid;
    int saved;

    PyOS_BeforeFork();
    /* stack 0: the child runs on a copy of this stack, like fork */
    pid = nsb_clone_copy(flags, want_pidfd ? &pidfd : NULL, cgroup_fd, legacy);
    saved = pid < 0 ? (int)-pid : 0;
    if (pid == 0) {
        PyOS_AfterFork_Child();
    } else {
        PyOS_AfterFork_Parent();
    }
    PyGILState_Release(gil);
    if (pid < 0) {
        errno = saved;
        return -1;
    }
    if (pid > 0)
        *pidfd_out = pidfd;
    return (int)pid;
}
