/* clone.h - the one filler of struct clone_args, the first argument of clone(2)
 * for the same request, and a clone like fork built on them.  Used by the
 * parent half (spawn.c), by the child for its second fork (child.c) and by
 * lowlevel.clone (pyfork.c).  The child may share the caller's memory: raw
 * system calls only, no libc, no errno; -errno on failure (see nsb.h). */
#ifndef NSB_CLONE_H
#define NSB_CLONE_H

#include "headers.h"
#include "rawsys.h"

#if NSB_HAS_CLONE3
/* Fill *args for clone3 and return the size to pass with it:
 * CLONE_ARGS_SIZE_VER0, or VER2 with a cgroup.
 *   flags       the clone flags; CLONE_PIDFD is added with pidfd, CLONE_INTO_CGROUP
 *               with cgroup_fd;
 *   pidfd       where the kernel puts the new process's pidfd, or NULL for none;
 *   cgroup_fd   a cgroup2 directory to start the process in, or -1;
 *   stack       the new process's stack and its size, or NULL and 0 for a copy
 *               of the caller's (as fork does).
 * The exit signal is SIGCHLD, or 0 with CLONE_PARENT: the kernel then takes the
 * caller's, and clone3 refuses any other.  -ENOSYS for a cgroup where the
 * headers had no CLONE_INTO_CGROUP. */
static inline long nsb_clone_args(struct clone_args *args, uint64_t flags, int *pidfd,
                                  int cgroup_fd, void *stack, size_t stack_size)
{
    long size = CLONE_ARGS_SIZE_VER0;
    nsb_memzero(args, sizeof(*args));
    if (pidfd)
        flags |= CLONE_PIDFD;
    if (cgroup_fd >= 0) {
#if NSB_HAS_CLONE_INTO_CGROUP
        flags |= CLONE_INTO_CGROUP;
        args->cgroup = (uint64_t)(unsigned int)cgroup_fd;
        size = CLONE_ARGS_SIZE_VER2;
#else
        return -ENOSYS;
#endif
    }
    args->flags = flags;
    args->pidfd = (uint64_t)(uintptr_t)pidfd;
    args->exit_signal = (flags & CLONE_PARENT) ? 0 : (uint64_t)SIGCHLD;
    args->stack = (uint64_t)(uintptr_t)stack;
    args->stack_size = (uint64_t)stack_size;
    return size;
}
#endif

/* The first argument of clone(2) for the same request: the flags (CLONE_PIDFD
 * added with want_pidfd) and the exit signal SIGCHLD in the low byte (with
 * CLONE_PARENT the kernel takes the caller's instead).  -EINVAL for what clone(2)
 * cannot do, rather than dropping it: a cgroup (no CLONE_INTO_CGROUP), a flag in
 * the low byte (CLONE_NEWTIME: that byte is the exit signal), a flag above the
 * low 32 bits (CLONE_CLEAR_SIGHAND, CLONE_INTO_CGROUP: clone(2) ignores them). */
static inline long nsb_clone_word(uint64_t flags, int want_pidfd, int cgroup_fd)
{
    if (want_pidfd)
        flags |= CLONE_PIDFD;
    if (cgroup_fd >= 0 || (flags & CSIGNAL) || (flags >> 32))
        return -EINVAL;
    return (long)(flags | SIGCHLD);
}

/* Clone like fork: the new process returns 0 from here, on a copy of the
 * caller's memory and stack.  clone3, or clone(2) with `legacy` (or where the
 * headers have no clone3).  Returns the new pid, or -errno. */
static inline long nsb_clone_copy(uint64_t flags, int *pidfd, int cgroup_fd, int legacy)
{
    long word;
#if NSB_HAS_CLONE3
    if (!legacy) {
        struct clone_args args;
        long size = nsb_clone_args(&args, flags, pidfd, cgroup_fd, 0, 0);
        if (size < 0)
            return size;
        return nsb_sys2(SYS_clone3, &args, size);
    }
#else
    (void)legacy;
#endif
    word = nsb_clone_word(flags, pidfd != 0, cgroup_fd);
    if (word < 0)
        return word;
    /* clone(flags, stack, parent_tid, ...): with CLONE_PIDFD the pidfd goes
     * where parent_tid points (the third argument on x86_64 and aarch64) */
    return nsb_sys5(SYS_clone, word, 0, pidfd, 0, 0);
}

#endif
