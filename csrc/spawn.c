/* spawn.c - the parent half of the spawn engine.
 *
 * nsb_spawn() runs in the caller's thread with the GIL released (cffi does
 * that).  Its steps, numbered as in docs/architecture.md:
 *
 *   1. a SOCK_SEQPACKET socketpair, the child's end moved to fd >= 3;
 *   2. with CLONE_VM: one mmap for the child's stack(s);
 *   3. every signal blocked in this thread (the child starts with that mask, so
 *      none of the caller's handlers can run in it before it resets them);
 *   4. clone3 (CLONE_PIDFD, CLONE_INTO_CGROUP, the namespace flags; CLONE_VM where
 *      the raw trampolines exist), or clone(2) where clone3 is missing;
 *   5. the mask restored, the child's end closed;
 *   6. the protocol loop: SYNC -> run this step's parent actions (id maps, cgroup
 *      attach, time offsets, helpers) -> GO; PID -> the process of a second fork
 *      is the container from now on; ERROR -> remember; EOF -> the child has
 *      exec'd (its end was close-on-exec) or died; EXEC_OK -> the init runs;
 *   7. the middle process of a second fork reaped; on failure the child killed
 *      and reaped: nothing is left behind;
 *   8. the stacks unmapped: by now no process uses them.
 */
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine.h"
#include "rawsys.h"

extern char **environ;

#ifndef NSB_VERSION
#error "NSB_VERSION must be defined by the build (csrc/build.py)"
#endif

const char *nsb_version(void) { return NSB_VERSION; }

/* ---- CLONE_VM trampolines ------------------------------------------------
 * After a clone with CLONE_VM and a new stack, the child cannot return into the
 * C function that called clone (its frame is on the parent's stack).  The
 * trampolines below take fn and arg from the top of the new stack, where
 * nsb_clone_vm put them, and call fn there.  x86_64 only; elsewhere the engine
 * clones like fork (NSB_PLAN_NO_CLONE_VM is implied). */
#if defined(__x86_64__) && NSB_HAS_CLONE3
#define NSB_STR_(x) #x
#define NSB_STR(x) NSB_STR_(x)
long nsb_tramp_clone3(void *args, size_t size);
long nsb_tramp_clone(unsigned long flags, void *stack, int *parent_tid);
/* clang-format off */
__asm__(".text\n"
        ".p2align 4\n"
        ".type nsb_tramp_clone3,@function\n"
        "nsb_tramp_clone3:\n"
        "    mov $" NSB_STR(SYS_clone3) ", %eax\n"
        "    syscall\n"
        "    test %rax, %rax\n"
        "    jz 1f\n"
        "    ret\n"
        ".size nsb_tramp_clone3, .-nsb_tramp_clone3\n"
        ".type nsb_tramp_clone,@function\n"
        "nsb_tramp_clone:\n"
        "    xor %r10d, %r10d\n"
        "    xor %r8d, %r8d\n"
        "    mov $" NSB_STR(SYS_clone) ", %eax\n"
        "    syscall\n"
        "    test %rax, %rax\n"
        "    jz 1f\n"
        "    ret\n"
        "1:  xor %ebp, %ebp\n"
        "    pop %rax\n"        /* fn */
        "    pop %rdi\n"        /* arg */
        "    call *%rax\n"
        "    mov %eax, %edi\n"
        "    mov $" NSB_STR(SYS_exit_group) ", %eax\n"
        "    syscall\n"
        "    hlt\n"
        ".size nsb_tramp_clone, .-nsb_tramp_clone\n");
/* clang-format on */
#define NSB_HAVE_CLONE_VM 1
#else
#define NSB_HAVE_CLONE_VM 0
#endif

int nsb_clone_vm_supported(void) { return NSB_HAVE_CLONE_VM && NSB_RAW_SYSCALLS; }

long nsb_clone_vm(uint64_t flags, int *pidfd, int cgroup_fd, int legacy, char *stack,
                  size_t stack_size, int (*fn)(void *), void *arg)
{
#if NSB_HAVE_CLONE_VM
    /* fn and arg go in the top 16 bytes; the child pops them, leaving its stack
     * pointer 16-byte aligned at the top, as the call needs */
    uintptr_t top = ((uintptr_t)stack + stack_size) & ~(uintptr_t)15;
    void **slots = (void **)(top - 16);
    slots[0] = (void *)fn;
    slots[1] = arg;
    flags |= CLONE_VM;
    if (pidfd)
        flags |= CLONE_PIDFD;
    if (!legacy) {
        struct clone_args args;
        size_t size = CLONE_ARGS_SIZE_VER0;
        memset(&args, 0, sizeof(args));
        args.flags = flags;
        args.pidfd = (uint64_t)(uintptr_t)pidfd;
        /* with CLONE_PARENT the kernel takes the caller's exit signal, and
         * clone3 insists on 0 here */
        args.exit_signal = (flags & CLONE_PARENT) ? 0 : (__u64)SIGCHLD;
        args.stack = (uint64_t)(uintptr_t)stack;
        args.stack_size = (uint64_t)(top - 16 - (uintptr_t)stack);
        if (cgroup_fd >= 0) {
            args.flags |= CLONE_INTO_CGROUP;
            args.cgroup = (__u64)(unsigned int)cgroup_fd;
            size = CLONE_ARGS_SIZE_VER2;
        }
        return nsb_tramp_clone3(&args, size);
    }
    if (cgroup_fd >= 0)
        return -EINVAL;
    return nsb_tramp_clone((unsigned long)(flags | SIGCHLD), (void *)(top - 16), pidfd);
#else
    (void)flags;
    (void)pidfd;
    (void)cgroup_fd;
    (void)legacy;
    (void)stack;
    (void)stack_size;
    (void)fn;
    (void)arg;
    return -ENOSYS;
#endif
}

/* Clone like fork: the child continues in this frame with a copy of memory. */
static long nsb_clone_fork_mode(const struct nsb_ctx *ctx, uint64_t flags, int *pidfd, int cgfd)
{
    long pid;
    if (pidfd)
        flags |= CLONE_PIDFD;
#if NSB_HAS_CLONE3
    if (!ctx->legacy_clone) {
        struct clone_args args;
        size_t size = CLONE_ARGS_SIZE_VER0;
        memset(&args, 0, sizeof(args));
        args.flags = flags;
        args.pidfd = (uint64_t)(uintptr_t)pidfd;
        args.exit_signal = (__u64)SIGCHLD;
        if (cgfd >= 0) {
            args.flags |= CLONE_INTO_CGROUP;
            args.cgroup = (__u64)(unsigned int)cgfd;
            size = CLONE_ARGS_SIZE_VER2;
        }
        pid = syscall(SYS_clone3, &args, size);
    } else
#endif
    {
        if (cgfd >= 0) {
            errno = EINVAL;
            return -EINVAL;
        }
        pid = syscall(SYS_clone, (unsigned long)(flags | SIGCHLD), 0L, pidfd, 0L, 0L);
    }
    if (pid == 0)
        nsb_child_run(ctx, 0);
    return pid < 0 ? -errno : pid;
}

/* ---- parent actions ------------------------------------------------------- */

static int nsb_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int nsb_run_helper(const struct nsb_pact *pa, int pid, int *status)
{
    char pidbuf[24];
    char **argv;
    int i, n, r;
    pid_t hpid;
    for (n = 0; pa->argv[n]; n++)
        ;
    argv = calloc((size_t)n + 1, sizeof(*argv));
    if (!argv)
        return -ENOMEM;
    for (i = 0; i < n; i++)
        argv[i] = pa->argv[i];
    if (pa->pid_arg >= 0 && pa->pid_arg < n) {
        snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
        argv[pa->pid_arg] = pidbuf;
    }
    r = posix_spawn(&hpid, argv[0], NULL, NULL, argv, environ);
    free(argv);
    if (r != 0)
        return -r;
    while (waitpid(hpid, status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}

/* Run the parent actions of one sync step for process `pid`. */
static int nsb_run_pacts(const struct nsb_plan *plan, const int32_t *fds, int32_t nfds,
                         uint64_t step, int pid, struct nsb_result *res)
{
    int i, r = 0;
    for (i = 0; i < plan->npacts; i++) {
        const struct nsb_pact *pa = &plan->pacts[i];
        if (pa->step != step)
            continue;
        switch (pa->kind) {
        case NSB_PACT_PROC_WRITE: {
            char path[64];
            int fd;
            snprintf(path, sizeof(path), "/proc/%d/%s", pid, pa->name);
            fd = open(path, O_WRONLY | O_CLOEXEC);
            if (fd < 0) {
                r = -errno;
                break;
            }
            r = nsb_write_all(fd, pa->data, pa->len);
            close(fd);
            break;
        }
        case NSB_PACT_FD_WRITE_PID: {
            char buf[24];
            int n = snprintf(buf, sizeof(buf), "%d", pid);
            if (pa->fd < 0 || pa->fd >= nfds) {
                r = -EBADF;
                break;
            }
            r = nsb_write_all(fds[pa->fd], buf, (size_t)n);
            break;
        }
        case NSB_PACT_HELPER: {
            int status = 0;
            r = nsb_run_helper(pa, pid, &status);
            if (r == 0 && status != 0) {
                res->stage = NSB_STAGE_HELPER;
                res->op = i;
                res->err = status;
                return -1;
            }
            break;
        }
        default:
            r = -EINVAL;
        }
        if (r < 0) {
            res->stage = NSB_STAGE_PACT;
            res->op = i;
            res->err = -r;
            return -1;
        }
    }
    return 0;
}

/* Whether pid is a child of this process (without reaping or waiting). */
static int nsb_is_child(int pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WSTOPPED | WCONTINUED | WNOHANG | WNOWAIT) == 0;
}

/* ---- seccomp notify ------------------------------------------------------ */

static int nsb_is_listener(int fd)
{
    char path[64], link[64];
    ssize_t n;
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, link, sizeof(link) - 1);
    if (n < 0)
        return 0;
    link[n] = '\0';
    return strcmp(link, "anon_inode:seccomp notify") == 0;
}

/* Take the child's listener, fd `num` in process `pid`, as soon as its filter is
 * loaded.  Returns the fd; -EAGAIN when the sync socket has news first (the
 * load failed: the child's ERROR is there); -errno on other failures. */
static int nsb_take_listener(int pid, int num, int sock)
{
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_getfd)
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0), spins;
    if (pfd < 0)
        return -errno;
    for (spins = 0;; spins++) {
        struct pollfd p = {sock, POLLIN, 0};
        int fd = (int)syscall(SYS_pidfd_getfd, pfd, num, 0);
        if (fd >= 0) {
            if (nsb_is_listener(fd)) {
                close(pfd);
                return fd;
            }
            close(fd);
        } else if (errno != EBADF) {
            int e = errno;
            close(pfd);
            return -e;
        }
        if (poll(&p, 1, spins < 1000 ? 0 : 1) > 0) {
            close(pfd);
            return -EAGAIN;
        }
    }
#else
    (void)pid;
    (void)num;
    (void)sock;
    return -ENOSYS;
#endif
}

/* What a notification's process runs, to tell the engine's own last steps
 * from the command's first ones. */
struct nsb_exes {
    struct stat self; /* the caller's executable: the child before the sealed exec */
    struct stat init; /* the sealed init: the sealed exec, the init and its child */
    int sealed_seen;  /* a notification came from the sealed init already */
};

static int nsb_same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Receive one notification.  The engine's own (the child's last calls before
 * the sealed exec: recvfrom, close, execveat; anything the sealed init does)
 * are let through.  The first of the command's is kept in res->pending,
 * unanswered, for the caller's handler, and 1 is returned: stop receiving. */
static int nsb_notif_engine(int listener, int cur, struct nsb_exes *exes, struct nsb_result *res)
{
#if defined(SECCOMP_IOCTL_NOTIF_RECV) && defined(SECCOMP_USER_NOTIF_FLAG_CONTINUE)
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    struct stat st;
    char path[64];
    int engine = 1;
    memset(&req, 0, sizeof(req));
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
        return 0; /* ENOENT: the caller went away meanwhile */
    snprintf(path, sizeof(path), "/proc/%u/exe", req.pid);
    if (stat(path, &st) == 0) {
        if (nsb_same_file(&st, &exes->init)) {
            exes->sealed_seen = 1;
        } else {
            int nr = req.data.nr;
            engine = nsb_same_file(&st, &exes->self) && (int)req.pid == cur && !exes->sealed_seen &&
                     req.data.arch == NSB_AUDIT_ARCH &&
                     (nr == SYS_recvfrom || nr == SYS_close || nr == SYS_execveat);
        }
    }
    if (!engine && sizeof(req) <= sizeof(res->pending)) {
        memcpy(res->pending, &req, sizeof(req));
        res->has_pending = 1;
        return 1;
    }
    memset(&resp, 0, sizeof(resp));
    resp.id = req.id;
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
#else
    (void)listener;
    (void)cur;
    (void)exes;
    (void)res;
#endif
    return 0;
}

/* ---- the spawn ------------------------------------------------------------ */

static void nsb_reap(int pid)
{
    while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
        ;
}

static int nsb_plan_forks(const struct nsb_plan *plan)
{
    int i;
    for (i = 0; i < plan->nops; i++)
        if (plan->ops[i].kind == NSB_OP_FORK)
            return 1;
    return 0;
}

int nsb_spawn(const struct nsb_plan *plan, const int32_t *fds, int32_t nfds, struct nsb_result *res)
{
    struct nsb_ctx ctx;
    int sv[2], pidfd = -1, cgfd = -1, forks, failed = 0, exec_ok = 0, listener = -1;
    int dumpable, listener_hup = 0, watch_stops = (plan->flags & NSB_PLAN_WATCH_STOPS) != 0;
    int exec_slot = plan->nops > 0 ? plan->ops[plan->nops - 1].fd : -1;
    struct nsb_exes exes;
    long pid, cur, middle = -1;
    char *stack = MAP_FAILED;
    size_t stack_len = 0;
    sigset_t all, old;

    res->pid = -1;
    res->pidfd = -1;
    res->sync_fd = -1;
    res->stage = NSB_STAGE_NONE;
    res->op = -1;
    res->err = 0;
    res->listener_fd = -1;
    res->has_pending = 0;
    memset(res->pending, 0, sizeof(res->pending));
    if (plan->abi != NSB_ABI_VERSION || nfds < 0 || nfds > NSB_MAX_FDS ||
        plan->nregs > NSB_MAX_REGS) {
        res->stage = NSB_STAGE_PARENT;
        res->err = EINVAL;
        return -1;
    }
    if (plan->cgroup_slot >= 0) {
        if (plan->cgroup_slot >= nfds) {
            res->stage = NSB_STAGE_PARENT;
            res->err = EBADF;
            return -1;
        }
        cgfd = fds[plan->cgroup_slot];
    }

    /* 1. the sync socket; the child's end must not be 0-2 (stdio is dup'ed there) */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        goto parent_error;
    if (sv[1] < 3) {
        int fd = fcntl(sv[1], F_DUPFD_CLOEXEC, 3);
        if (fd < 0) {
            int e = errno;
            close(sv[0]);
            close(sv[1]);
            errno = e;
            goto parent_error;
        }
        close(sv[1]);
        sv[1] = fd;
    }

    memset(&ctx, 0, sizeof(ctx));
    ctx.plan = plan;
    ctx.fds = fds;
    ctx.nfds = nfds;
    ctx.sync_fd = sv[1];
    ctx.parent_fd = sv[0];
    ctx.clone_vm = nsb_clone_vm_supported() && !(plan->flags & NSB_PLAN_NO_CLONE_VM);
    ctx.legacy_clone = !NSB_HAS_CLONE3 || (plan->flags & NSB_PLAN_LEGACY_CLONE);
    forks = nsb_plan_forks(plan);

    /* 2. stacks: the child's, and one for the process of a second fork */
    if (ctx.clone_vm) {
        stack_len = NSB_STACK_SIZE * (forks ? 2U : 1U);
        stack = mmap(NULL, stack_len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED) {
            int e = errno;
            close(sv[0]);
            close(sv[1]);
            errno = e;
            goto parent_error;
        }
        if (forks) {
            ctx.stack2 = stack + NSB_STACK_SIZE;
            ctx.stack2_size = NSB_STACK_SIZE;
        }
    }

    /* A CLONE_VM child that changes its euid makes the memory it shares with
     * this process non-dumpable (commit_creds): give the caller its own back
     * once the child has left it. */
    dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);

    /* 3. block everything; 4. clone.  With clone3 the kernel resets the caught
     * signals in the child (CLONE_CLEAR_SIGHAND, as exec would); with clone(2)
     * the child does it itself.  Kernels before 5.5 refuse the flag: retry
     * without it. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ctx.sighand_clear = !ctx.legacy_clone && CLONE_CLEAR_SIGHAND != 0;
    for (;;) {
        uint64_t flags =
            plan->clone_flags | (ctx.sighand_clear ? (uint64_t)CLONE_CLEAR_SIGHAND : 0);
        if (ctx.clone_vm)
            pid = nsb_clone_vm(flags, (plan->flags & NSB_PLAN_PIDFD) ? &pidfd : NULL, cgfd,
                               ctx.legacy_clone, stack, NSB_STACK_SIZE, nsb_child_entry, &ctx);
        else
            pid = nsb_clone_fork_mode(&ctx, flags, (plan->flags & NSB_PLAN_PIDFD) ? &pidfd : NULL,
                                      cgfd);
        if (pid != -EINVAL || !ctx.sighand_clear)
            break;
        ctx.sighand_clear = 0;
    }
    /* 5. */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        if (stack != MAP_FAILED)
            munmap(stack, stack_len);
        res->stage = NSB_STAGE_PARENT;
        res->err = (int)-pid;
        return -1;
    }

    /* 6. the protocol */
    cur = pid;
    for (;;) {
        struct nsb_msg m;
        ssize_t n;
        if (watch_stops || (listener >= 0 && !listener_hup)) {
            /* Two things may need the parent while it waits for a message:
             * the container's filter has a notify listener (until the command
             * runs, its notifications come from our own last steps: let them
             * through), and a process in a pid namespace others share can be
             * stopped by them (SIGSTOP) while it is set up (look, rather than
             * wait for ever) */
            struct pollfd pf[2] = {{sv[0], POLLIN, 0}, {listener, POLLIN, 0}};
            int npf = (listener >= 0 && !listener_hup) ? 2 : 1;
            int pr = poll(pf, (nfds_t)npf, watch_stops ? 50 : -1);
            if (pr < 0) {
                if (errno == EINTR)
                    continue;
                if (!failed) {
                    res->stage = NSB_STAGE_PARENT;
                    res->err = errno;
                }
                failed = 1;
                break;
            }
            if (pr == 0) {
                siginfo_t si;
                memset(&si, 0, sizeof(si));
                if (waitid(P_PID, (id_t)cur, &si, WSTOPPED | WNOHANG | WNOWAIT) == 0 &&
                    si.si_pid == cur && si.si_code == CLD_STOPPED) {
                    if (!failed) {
                        res->stage = NSB_STAGE_STOPPED;
                        res->err = EINTR;
                    }
                    failed = 1;
                    break;
                }
                continue;
            }
            if (npf == 2) {
                if (pf[1].revents & POLLIN)
                    listener_hup = nsb_notif_engine(listener, (int)cur, &exes, res);
                else if (pf[1].revents & (POLLHUP | POLLERR | POLLNVAL))
                    listener_hup = 1;
            }
            if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
        }
        n = recv(sv[0], &m, sizeof(m), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (!failed) {
                res->stage = NSB_STAGE_PARENT;
                res->err = errno;
            }
            failed = 1;
            break;
        }
        if (n == 0)
            break;
        if (n != (ssize_t)sizeof(m)) {
            /* nothing of ours sends that: a protocol error */
            if (!failed) {
                res->stage = NSB_STAGE_PARENT;
                res->err = EPROTO;
            }
            failed = 1;
            break;
        }
        if (m.type == NSB_MSG_SYNC && !failed) {
            struct nsb_msg go = {NSB_MSG_GO, 0, 0, 0, m.val};
            if (nsb_run_pacts(plan, fds, nfds, (uint64_t)m.val, (int)cur, res) < 0) {
                failed = 1;
                break; /* closing our end makes the child exit */
            }
            if (send(sv[0], &go, sizeof(go), MSG_NOSIGNAL) < 0) {
                res->stage = NSB_STAGE_PARENT;
                res->err = errno;
                failed = 1;
                break;
            }
        } else if (m.type == NSB_MSG_PID && forks && middle < 0 && m.val > 0 &&
                   m.val <= INT32_MAX && nsb_is_child((int)m.val)) {
            /* once, from the middle process of the plan's second fork (and a
             * child of ours: CLONE_PARENT); the processes after it can never
             * change which pid is ours */
            middle = cur;
            cur = m.val;
        } else if (m.type == NSB_MSG_LISTENER && listener < 0 && !failed) {
            /* the child loads a filter with a notify listener, as fd val */
            struct nsb_msg go = {NSB_MSG_GO, 0, 0, 0, m.val};
            int fd = nsb_take_listener((int)cur, (int)m.val, sv[0]);
            if (fd == -EAGAIN)
                continue; /* the load failed: its ERROR is next */
            if (fd < 0 || send(sv[0], &go, sizeof(go), MSG_NOSIGNAL) < 0) {
                if (fd >= 0)
                    close(fd);
                res->stage = NSB_STAGE_PARENT;
                res->err = fd < 0 ? -fd : errno;
                failed = 1;
                break;
            }
            listener = fd;
            memset(&exes, 0, sizeof(exes));
            if (stat("/proc/self/exe", &exes.self) < 0 || exec_slot < 0 || exec_slot >= nfds ||
                fstat(fds[exec_slot], &exes.init) < 0) {
                res->stage = NSB_STAGE_PARENT;
                res->err = errno ? errno : EBADF;
                failed = 1;
                break;
            }
        } else if (m.type == NSB_MSG_ERROR && !failed) {
            res->stage = m.stage;
            res->op = m.op;
            res->err = m.err;
            failed = 1;
        } else if (m.type == NSB_MSG_EXEC_OK && (plan->flags & NSB_PLAN_KEEP_SYNC)) {
            exec_ok = 1;
            break;
        }
    }

    /* 7. */
    if (middle > 0) {
        nsb_reap((int)middle);
        if (pidfd >= 0) {
            close(pidfd);
            pidfd = -1;
        }
        if (!failed && (plan->flags & NSB_PLAN_PIDFD)) {
#ifdef SYS_pidfd_open
            pidfd = (int)syscall(SYS_pidfd_open, (int)cur, 0);
#endif
        }
    }
    if ((plan->flags & NSB_PLAN_KEEP_SYNC) && !failed && !exec_ok) {
        /* the init died before reporting: it said nothing, so say it for it */
        failed = 1;
        res->stage = NSB_STAGE_INIT;
        res->err = ECHILD;
    }
    if (failed) {
        if (listener >= 0)
            close(listener);
        close(sv[0]);
        kill((pid_t)cur, SIGKILL);
        nsb_reap((int)cur);
        if (pidfd >= 0)
            close(pidfd);
        if (stack != MAP_FAILED)
            munmap(stack, stack_len);
        if (ctx.clone_vm && dumpable == 1 && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1)
            prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        return -1;
    }
    /* 8. */
    if (stack != MAP_FAILED)
        munmap(stack, stack_len);
    if (ctx.clone_vm && dumpable == 1 && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1)
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    if (plan->flags & NSB_PLAN_KEEP_SYNC)
        res->sync_fd = sv[0];
    else
        close(sv[0]);
    res->pid = (int32_t)cur;
    res->pidfd = pidfd;
    res->listener_fd = listener;
    return 0;

parent_error:
    res->stage = NSB_STAGE_PARENT;
    res->err = errno;
    return -1;
}
