/* engine.h - what the parent half (spawn.c) hands to the child half (child.c). */
#ifndef NSB_ENGINE_H
#define NSB_ENGINE_H

#include "clone.h"
#include "headers.h"
#include "nsb.h"

#define NSB_STACK_SIZE (256 * 1024)

/* Built on the parent's stack by nsb_spawn().  With CLONE_VM the child reads it in
 * place (the parent does not return before the child has exec'd or died) and
 * copies what it changes; without CLONE_VM the child has its own copy anyway. */
struct nsb_ctx {
    const struct nsb_plan *plan;
    const int32_t *fds;
    int32_t nfds;
    int sync_fd;       /* the child's end of the sync socket, >= 3 */
    int parent_fd;     /* the parent's end: the child closes its copy first */
    int clone_vm;      /* the child shares the caller's memory until exec */
    int legacy_clone;  /* clone(2) instead of clone3 */
    int sighand_clear; /* clone3 reset the caught signals (CLONE_CLEAR_SIGHAND) */
    char *stack2;      /* CLONE_VM: a stack for the process of the second fork */
    size_t stack2_size;
};

/* child.c: runs the plan from op `start`; never returns */
__attribute__((noreturn)) void nsb_child_run(const struct nsb_ctx *ctx, int start);
/* child.c: entry point for a CLONE_VM child (see the trampolines in spawn.c) */
int nsb_child_entry(void *ctx);

/* spawn.c: clone with CLONE_VM on the stack [stack, stack + stack_size); the new
 * process calls fn(arg) there (fn and arg are put at the stack's top).  flags,
 * pidfd and cgroup_fd as nsb_clone_args takes them; clone(2) with `legacy`.
 * Returns the new pid or -errno; raw system calls only (the child calls it too,
 * for its second fork). */
long nsb_clone_vm(uint64_t flags, int *pidfd, int cgroup_fd, int legacy, char *stack,
                  size_t stack_size, int (*fn)(void *), void *arg);

#endif
