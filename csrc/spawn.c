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
 *      attach, time offsets, helpers, the caller's hook) -> GO, or FD (an
 *      idmapped tree made for the child, as SCM_RIGHTS); PID -> the process of
 *      a second fork is the container from now on; TERMINAL -> keep the pty
 *      master it carries; ERROR -> remember; EOF -> the child has
 *      exec'd (its end was close-on-exec) or died; EXEC_OK -> the init runs;
 *      READY -> the child waits at its start gate (nsb_start lets it go on);
 *   7. the middle process of a second fork reaped;
 *   8. the stacks unmapped: by now no process uses them.
 *
 * Every failure, at any step, goes to one place (the `fail` label of nsb_spawn),
 * which releases what struct nsb_spawn says is held: the sockets, the stacks,
 * the pidfd, the notify listener, the terminal, the child (killed and reaped),
 * the caller's dumpable flag.  Nothing is left behind.  Helpers return -errno
 * (see nsb.h).
 */
#include "engine.h"
#include "rawsys.h"

#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>

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
    long r;
    slots[0] = (void *)fn;
    slots[1] = arg;
    flags |= CLONE_VM;
    if (!legacy) {
        struct clone_args args;
        r = nsb_clone_args(&args, flags, pidfd, cgroup_fd, stack, top - 16 - (uintptr_t)stack);
        return r < 0 ? r : nsb_tramp_clone3(&args, (size_t)r);
    }
    r = nsb_clone_word(flags, pidfd != NULL, cgroup_fd);
    return r < 0 ? r : nsb_tramp_clone((unsigned long)r, (void *)(top - 16), pidfd);
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

/* Run a helper (newuidmap, newgidmap) with argv[pid_arg] replaced by the pid;
 * its wait status in *status. */
static int nsb_run_helper(const struct nsb_pact *pa, int pid, int *status)
{
    char pidbuf[16]; /* an int has at most 11 characters */
    char **argv;
    int i, n, r;
    pid_t hpid;
    for (n = 0; pa->argv[n]; n++)
        ;
    if (pa->pid_arg >= n)
        return -EINVAL; /* no argument there to become the pid */
    argv = calloc((size_t)n + 1, sizeof(*argv));
    if (!argv)
        return -ENOMEM;
    for (i = 0; i < n; i++)
        argv[i] = pa->argv[i];
    if (pa->pid_arg >= 0) {
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

/* A detached clone of the host path `path` (resolved without following any
 * symlink: the plan took its canonical form), idmapped with the user namespace
 * of process `pid`, with the attributes `attrs` set too.  Returns the mount fd
 * or -errno. */
static int nsb_idmap_tree(const char *path, uint64_t attrs, int recursive, int pid)
{
#if NSB_HAS_MOUNT_SETATTR && NSB_HAS_OPENAT2 && NSB_HAS_NEW_MOUNT_API
    struct open_how how;
    struct mount_attr attr;
    char ns[64];
    int src, userns, tree, r;
    unsigned int rec = recursive ? AT_RECURSIVE : 0;
    int n = snprintf(ns, sizeof(ns), "/proc/%d/ns/user", pid);
    if (n < 0 || (size_t)n >= sizeof(ns))
        return -ENAMETOOLONG;
    memset(&how, 0, sizeof(how));
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    src = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
    if (src < 0)
        return -errno;
    tree = (int)syscall(SYS_open_tree, src, "",
                        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | rec);
    r = tree < 0 ? -errno : 0;
    close(src);
    if (r < 0)
        return r;
    userns = open(ns, O_RDONLY | O_CLOEXEC);
    if (userns < 0) {
        r = -errno;
        close(tree);
        return r;
    }
    memset(&attr, 0, sizeof(attr));
    attr.attr_set = MOUNT_ATTR_IDMAP | attrs;
    attr.userns_fd = (__u64)userns;
    r = (int)syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | rec, &attr, sizeof(attr));
    if (r < 0)
        r = -errno;
    close(userns);
    if (r < 0) {
        close(tree);
        return r;
    }
    return tree;
#else
    (void)path;
    (void)attrs;
    (void)recursive;
    (void)pid;
    return -ENOSYS;
#endif
}

/* Send fd to the child as the answer to sync step `step` (NSB_MSG_FD). */
static int nsb_send_fd(int sock, uint64_t step, int fd)
{
    struct nsb_msg m = {NSB_MSG_FD, 0, 0, 0, (int64_t)step};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {&m, sizeof(m)};
    struct msghdr mh;
    struct cmsghdr *cm;
    memset(&u, 0, sizeof(u));
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof(u.buf);
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    while (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}

/* One parent action (index `index` of the plan, of spawn `key`) for process
 * `pid`: 0; -errno; or the wait status of a helper that did not exit 0 (> 0).
 * An action that makes an fd for the child (an idmapped tree) leaves it in
 * *made. */
static int nsb_run_pact(const struct nsb_pact *pa, int index, const int32_t *fds, int32_t nfds,
                        int pid, int64_t key, int *made)
{
    switch (pa->kind) {
    case NSB_PACT_PROC_WRITE: {
        char path[64];
        int fd, r, n = snprintf(path, sizeof(path), "/proc/%d/%s", pid, pa->name);
        if (n < 0 || (size_t)n >= sizeof(path))
            return -ENAMETOOLONG;
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        r = nsb_write_all(fd, pa->data, pa->len);
        close(fd);
        return r;
    }
    case NSB_PACT_FD_WRITE_PID: {
        char buf[16]; /* an int has at most 11 characters */
        int n = snprintf(buf, sizeof(buf), "%d", pid);
        if (pa->fd < 0 || pa->fd >= nfds)
            return -EBADF;
        return nsb_write_all(fds[pa->fd], buf, (size_t)n);
    }
    case NSB_PACT_HELPER: {
        int status = 0, r = nsb_run_helper(pa, pid, &status);
        return r < 0 ? r : status;
    }
    case NSB_PACT_HOOK:
        /* the caller's Python, with the GIL taken again by cffi; the child
         * waits at its sync step meanwhile */
        return nsb_hook_call(key, index, pid) == 1 ? 0 : -ECANCELED;
    case NSB_PACT_IDMAP_TREE: {
        uint64_t args[2];
        int fd;
        if (pa->len != sizeof(args) || !pa->data || !pa->name || *made >= 0)
            return -EINVAL; /* one fd per step: the compiler gives each its own */
        memcpy(args, pa->data, sizeof(args));
        fd = nsb_idmap_tree(pa->name, args[0], args[1] != 0, pid);
        if (fd < 0)
            return fd;
        *made = fd;
        return 0;
    }
    default:
        return -EINVAL;
    }
}

/* Run the parent actions of sync step `step` for process `pid` (of spawn
 * `key`).  Returns 0, or what the first that failed returned (see
 * nsb_run_pact), with *failed its index.  An fd made for the child is in *made
 * (-1: none), closed on failure. */
static int nsb_run_pacts(const struct nsb_plan *plan, const int32_t *fds, int32_t nfds,
                         uint64_t step, int pid, int64_t key, int *failed, int *made)
{
    int i, r;
    *made = -1;
    for (i = 0; i < plan->npacts; i++) {
        if (plan->pacts[i].step != step)
            continue;
        r = nsb_run_pact(&plan->pacts[i], i, fds, nfds, pid, key, made);
        if (r != 0) {
            *failed = i;
            if (*made >= 0) {
                close(*made);
                *made = -1;
            }
            return r;
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

/* Whether pid is stopped (SIGSTOP), without reaping or waiting. */
static int nsb_is_stopped(int pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    return waitid(P_PID, (id_t)pid, &si, WSTOPPED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid &&
           si.si_code == CLD_STOPPED;
}

/* ---- seccomp notify ------------------------------------------------------ */

/* Whether fd is a seccomp notify listener: 1, 0, or -errno. */
static int nsb_is_listener(int fd)
{
    static const char want[] = "anon_inode:seccomp notify";
    char path[32], link[sizeof(want)];
    ssize_t n;
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd); /* 14 + at most 11 characters */
    /* a longer name fills link whole, and is not this one */
    n = readlink(path, link, sizeof(link));
    if (n < 0)
        return -errno;
    return n == (ssize_t)sizeof(want) - 1 && memcmp(link, want, sizeof(want) - 1) == 0;
}

/* Take the child's listener, fd `num` in process `pid`, as soon as its filter is
 * loaded.  Returns the fd; -EAGAIN when the sync socket has news first (the
 * load failed: the child's ERROR is there); -errno on other failures. */
static int nsb_take_listener(int pid, int num, int sock)
{
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_getfd)
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0), spins, r;
    if (pfd < 0)
        return -errno;
    for (spins = 0;; spins++) {
        struct pollfd p = {sock, POLLIN, 0};
        int fd = (int)syscall(SYS_pidfd_getfd, pfd, num, 0);
        if (fd >= 0) {
            r = nsb_is_listener(fd);
            if (r == 1) {
                r = fd;
                break;
            }
            close(fd);
            if (r < 0)
                break;
        } else if (errno != EBADF) { /* EBADF: not there yet */
            r = -errno;
            break;
        }
        r = poll(&p, 1, spins < 1000 ? 0 : 1);
        if (r > 0) {
            r = -EAGAIN;
            break;
        }
        if (r < 0 && errno != EINTR) {
            r = -errno;
            break;
        }
    }
    close(pfd);
    return r;
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

static int nsb_exes_init(struct nsb_exes *exes, int init_fd)
{
    memset(exes, 0, sizeof(*exes));
    if (stat("/proc/self/exe", &exes->self) < 0)
        return -errno;
    if (init_fd < 0)
        return -EBADF;
    if (fstat(init_fd, &exes->init) < 0)
        return -errno;
    return 0;
}

static int nsb_same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

#if defined(SECCOMP_IOCTL_NOTIF_RECV) && defined(SECCOMP_USER_NOTIF_FLAG_CONTINUE)
_Static_assert(sizeof(struct seccomp_notif) <= sizeof(((struct nsb_result *)0)->pending),
               "a notification fits in nsb_result.pending");
#endif

/* The system calls the child makes after its filter is loaded: those of the
 * sealed exec (recvfrom, close, execveat), and of a start gate (prctl, sendto,
 * read, rt_sigprocmask). */
static int nsb_engine_call(int nr)
{
    switch (nr) {
    case SYS_recvfrom:
    case SYS_close:
    case SYS_execveat:
    case SYS_prctl:
    case SYS_sendto:
    case SYS_read:
    case SYS_rt_sigprocmask:
        return 1;
    default:
        return 0;
    }
}

/* Receive one notification.  The engine's own (the child's last calls before
 * the sealed exec: recvfrom, close, execveat, and for a start gate prctl,
 * sendto, read and rt_sigprocmask; anything the sealed init does) are let
 * through, and 0 is returned.  The first of the command's is kept in
 * res->pending, unanswered, for the caller's handler, and 1 is returned: stop
 * receiving.  -errno on failure. */
static int nsb_notif_engine(int listener, int cur, struct nsb_exes *exes, struct nsb_result *res)
{
#if defined(SECCOMP_IOCTL_NOTIF_RECV) && defined(SECCOMP_USER_NOTIF_FLAG_CONTINUE)
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    struct stat st;
    char path[32];
    int engine = 1;
    memset(&req, 0, sizeof(req));
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
        /* ENOENT: the notifying call went away meanwhile; EINTR: poll again */
        return errno == ENOENT || errno == EINTR ? 0 : -errno;
    snprintf(path, sizeof(path), "/proc/%u/exe", req.pid); /* 10 + at most 10 characters */
    if (stat(path, &st) == 0) {
        if (nsb_same_file(&st, &exes->init)) {
            exes->sealed_seen = 1;
        } else {
            int nr = req.data.nr;
            engine = nsb_same_file(&st, &exes->self) && (int)req.pid == cur && !exes->sealed_seen &&
                     req.data.arch == NSB_AUDIT_ARCH && nsb_engine_call(nr);
        }
    } else if (errno != ENOENT && errno != ESRCH) {
        return -errno; /* (the process is gone: nobody waits for the answer) */
    }
    if (!engine) {
        memcpy(res->pending, &req, sizeof(req));
        res->has_pending = 1;
        return 1;
    }
    memset(&resp, 0, sizeof(resp));
    resp.id = req.id;
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno != ENOENT)
        return -errno; /* ENOENT: the call went away (a signal, a kill) */
    return 0;
#else
    /* a listener with no way to answer it: the child would wait for ever */
    (void)listener;
    (void)cur;
    (void)exes;
    (void)res;
    return -ENOSYS;
#endif
}

/* ---- the spawn ------------------------------------------------------------ */

/* What a spawn holds, each -1 (MAP_FAILED) until it is held: the failure path
 * of nsb_spawn releases exactly what is set here. */
struct nsb_spawn {
    const struct nsb_plan *plan;
    const int32_t *fds;
    int32_t nfds;
    struct nsb_result *res;
    int forks;        /* the plan has a second fork */
    int sock;         /* our end of the sync socket */
    int child_sock;   /* the child's end, until the clone */
    char *stack;      /* CLONE_VM: the child's stack(s) */
    size_t stack_len; /* their size */
    int dumpable;     /* CLONE_VM: the caller's dumpable flag before the clone */
    int cur;          /* the process that goes on: the child, or the one of a second fork */
    int middle;       /* the middle process of a second fork, until it is reaped */
    int pidfd;        /* of the child, then of the process of a second fork */
    int listener;     /* the container's seccomp notify listener */
    int terminal;     /* the master of the container's terminal */
    int init_fd;      /* the sealed init (what its notifications come from) */
    int64_t key;      /* given back to the plan's hooks */
    int gated;        /* the plan waits at a start gate: READY ends the conversation */
    int failed;       /* a failure is recorded in res */
    int exec_ok;      /* the init reported EXEC_OK */
    int ready;        /* the child reported READY */
};

/* Record a failure; the first is the one reported. */
static void nsb_failure(struct nsb_spawn *s, int stage, int op, int err)
{
    if (s->failed)
        return;
    s->failed = 1;
    s->res->stage = stage;
    s->res->op = op;
    s->res->err = err;
}

static void nsb_reap(int pid)
{
    /* ECHILD: reaped already (not by us: nothing to do) */
    while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
        ;
}

/* 8. The stacks unmapped (no process uses them any more), and the caller's
 * dumpable flag given back: a CLONE_VM child that changes its euid makes the
 * memory it shares with this process non-dumpable (commit_creds). */
static void nsb_leave_memory(struct nsb_spawn *s)
{
    if (s->stack != MAP_FAILED) {
        munmap(s->stack, s->stack_len); /* our own mapping: cannot fail */
        s->stack = MAP_FAILED;
    }
    if (s->dumpable == 1 && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1)
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

/* The index of the plan's first op of `kind`, or -1. */
static int nsb_plan_find(const struct nsb_plan *plan, uint32_t kind)
{
    int i;
    for (i = 0; i < plan->nops; i++)
        if (plan->ops[i].kind == kind)
            return i;
    return -1;
}

/* One message, and the fd it carries (SCM_RIGHTS, close-on-exec) in *fd, or -1.
 * Returns its size (0 at EOF) or -errno; more than one fd, or fds the kernel
 * had to drop (MSG_CTRUNC), is -EPROTO, with every fd received closed. */
static ssize_t nsb_recv_msg(int sock, struct nsb_msg *m, int *fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } u;
    struct iovec iov = {m, sizeof(*m)};
    struct msghdr mh;
    struct cmsghdr *cm;
    ssize_t n;
    int extra = 0;
    *fd = -1;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof(u.buf);
    n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0)
        return -errno;
    for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        size_t k, count;
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (k = 0; k < count; k++) {
            int got;
            memcpy(&got, CMSG_DATA(cm) + k * sizeof(int), sizeof(int));
            if (*fd < 0) {
                *fd = got;
            } else {
                close(got);
                extra = 1;
            }
        }
    }
    if (extra || (mh.msg_flags & MSG_CTRUNC)) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return -EPROTO;
    }
    return n;
}

/* 6. The protocol.  Returns at EOF (the child has exec'd, its end was
 * close-on-exec, or it died), at EXEC_OK from the init, or at a failure that
 * ends the conversation.  An ERROR from the child is recorded and the loop goes
 * on to EOF: a PID message may still come, and that process must be killed too. */
static void nsb_converse(struct nsb_spawn *s)
{
    const struct nsb_plan *plan = s->plan;
    int watch_stops = (plan->flags & NSB_PLAN_WATCH_STOPS) != 0, listener_hup = 0;
    struct nsb_exes exes;
    if (s->listener >= 0) {
        /* nsb_start: the filter is loaded already */
        int r = nsb_exes_init(&exes, s->init_fd);
        if (r < 0) {
            nsb_failure(s, NSB_STAGE_PARENT, -1, -r);
            return;
        }
    }
    for (;;) {
        struct nsb_msg m;
        ssize_t n;
        int passed = -1; /* an fd the message carries */
        if (watch_stops || (s->listener >= 0 && !listener_hup)) {
            /* Two things may need the parent while it waits for a message:
             * the container's filter has a notify listener (until the command
             * runs, its notifications come from our own last steps: let them
             * through), and a process in a pid namespace others share can be
             * stopped by them (SIGSTOP) while it is set up (look, rather than
             * wait for ever) */
            struct pollfd pf[2] = {{s->sock, POLLIN, 0}, {s->listener, POLLIN, 0}};
            int npf = (s->listener >= 0 && !listener_hup) ? 2 : 1;
            int pr = poll(pf, (nfds_t)npf, watch_stops ? 50 : -1);
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr < 0) {
                nsb_failure(s, NSB_STAGE_PARENT, -1, errno);
                return;
            }
            if (pr == 0) {
                if (nsb_is_stopped(s->cur)) {
                    nsb_failure(s, NSB_STAGE_STOPPED, -1, EINTR);
                    return;
                }
                continue;
            }
            if (npf == 2) {
                if (pf[1].revents & POLLIN) {
                    int r = nsb_notif_engine(s->listener, s->cur, &exes, s->res);
                    if (r < 0) {
                        nsb_failure(s, NSB_STAGE_PARENT, -1, -r);
                        return;
                    }
                    listener_hup = r;
                } else if (pf[1].revents & (POLLHUP | POLLERR | POLLNVAL)) {
                    listener_hup = 1;
                }
            }
            if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
        }
        n = nsb_recv_msg(s->sock, &m, &passed);
        if (n == -EINTR)
            continue;
        if (n < 0) {
            nsb_failure(s, NSB_STAGE_PARENT, -1, (int)-n);
            return;
        }
        if (n == 0)
            return;
        if (n != (ssize_t)sizeof(m) || (passed >= 0 && m.type != NSB_MSG_TERMINAL)) {
            /* nothing of ours sends that: a protocol error */
            if (passed >= 0)
                close(passed);
            nsb_failure(s, NSB_STAGE_PARENT, -1, EPROTO);
            return;
        }
        if (m.type == NSB_MSG_SYNC && !s->failed) {
            struct nsb_msg go = {NSB_MSG_GO, 0, 0, 0, m.val};
            int at = -1, made = -1;
            int r =
                nsb_run_pacts(plan, s->fds, s->nfds, (uint64_t)m.val, s->cur, s->key, &at, &made);
            /* on failure, closing our end makes the child exit */
            if (r < 0) {
                nsb_failure(s, NSB_STAGE_PACT, at, -r);
                return;
            }
            if (r > 0) {
                nsb_failure(s, NSB_STAGE_HELPER, at, r);
                return;
            }
            if (made >= 0) {
                /* the fd made for the child answers the sync (NSB_OP_RECVFD) */
                r = nsb_send_fd(s->sock, (uint64_t)m.val, made);
                close(made);
                if (r < 0) {
                    nsb_failure(s, NSB_STAGE_PARENT, -1, -r);
                    return;
                }
            } else if (send(s->sock, &go, sizeof(go), MSG_NOSIGNAL) < 0) {
                nsb_failure(s, NSB_STAGE_PARENT, -1, errno);
                return;
            }
        } else if (m.type == NSB_MSG_PID && s->forks && s->middle < 0 && m.val > 0 &&
                   m.val <= INT32_MAX && nsb_is_child((int)m.val)) {
            /* once, from the middle process of the plan's second fork (and a
             * child of ours: CLONE_PARENT); the processes after it can never
             * change which pid is ours */
            s->middle = s->cur;
            s->cur = (int)m.val;
        } else if (m.type == NSB_MSG_LISTENER && s->listener < 0 && !s->failed) {
            /* the child loads a filter with a notify listener, as fd val */
            struct nsb_msg go = {NSB_MSG_GO, 0, 0, 0, m.val};
            int fd = m.val >= 0 && m.val <= INT32_MAX
                         ? nsb_take_listener(s->cur, (int)m.val, s->sock)
                         : -EPROTO;
            if (fd == -EAGAIN)
                continue; /* the load failed: its ERROR is next */
            if (fd < 0) {
                nsb_failure(s, NSB_STAGE_PARENT, -1, -fd);
                return;
            }
            s->listener = fd;
            if (send(s->sock, &go, sizeof(go), MSG_NOSIGNAL) < 0) {
                nsb_failure(s, NSB_STAGE_PARENT, -1, errno);
                return;
            }
            fd = nsb_exes_init(&exes, s->init_fd);
            if (fd < 0) {
                nsb_failure(s, NSB_STAGE_PARENT, -1, -fd);
                return;
            }
        } else if (m.type == NSB_MSG_TERMINAL && s->terminal < 0 && passed >= 0 && !s->failed) {
            /* the pty master, from the TERMINAL op */
            s->terminal = passed;
        } else if (m.type == NSB_MSG_ERROR && !s->failed) {
            nsb_failure(s, m.stage, m.op, m.err);
        } else if (m.type == NSB_MSG_EXEC_OK && (plan->flags & NSB_PLAN_KEEP_SYNC)) {
            s->exec_ok = 1;
            return;
        } else if (m.type == NSB_MSG_READY && s->gated && !s->failed) {
            /* every op but the exec is done: the child waits for nsb_start */
            s->ready = 1;
            return;
        } else if (!s->failed) {
            /* no message of ours comes at this point: a protocol error (once
             * the child failed, only a PID message matters) */
            if (passed >= 0)
                close(passed);
            nsb_failure(s, NSB_STAGE_PARENT, -1, EPROTO);
            return;
        } else if (passed >= 0) {
            close(passed); /* a terminal after a failure */
        }
    }
}

static void nsb_spawn_init(struct nsb_spawn *s, const struct nsb_plan *plan, struct nsb_result *res)
{
    res->pid = -1;
    res->pidfd = -1;
    res->sync_fd = -1;
    res->stage = NSB_STAGE_NONE;
    res->op = -1;
    res->err = 0;
    res->listener_fd = -1;
    res->has_pending = 0;
    memset(res->pending, 0, sizeof(res->pending));
    res->terminal_fd = -1;
    memset(s, 0, sizeof(*s));
    s->plan = plan;
    s->res = res;
    s->sock = s->child_sock = s->cur = s->middle = s->pidfd = s->listener = s->dumpable = -1;
    s->terminal = s->init_fd = -1;
    s->stack = MAP_FAILED;
}

int nsb_spawn(const struct nsb_plan *plan, const int32_t *fds, int32_t nfds, int64_t key,
              struct nsb_result *res)
{
    struct nsb_spawn s;
    struct nsb_ctx ctx;
    int sv[2], cgfd = -1, exec_slot;
    long pid;
    sigset_t all, old;

    nsb_spawn_init(&s, plan, res);
    s.fds = fds;
    s.nfds = nfds;
    s.key = key;

    if (plan->abi != NSB_ABI_VERSION || nfds < 0 || nfds > NSB_MAX_FDS ||
        plan->nregs > NSB_MAX_REGS) {
        nsb_failure(&s, NSB_STAGE_PARENT, -1, EINVAL);
        goto fail;
    }
    if (plan->cgroup_slot >= 0) {
        /* a cgroup the plan names: never a clone without it */
        if (plan->cgroup_slot >= nfds || fds[plan->cgroup_slot] < 0) {
            nsb_failure(&s, NSB_STAGE_PARENT, -1, EBADF);
            goto fail;
        }
        cgfd = fds[plan->cgroup_slot];
    }
    exec_slot = plan->nops > 0 ? plan->ops[plan->nops - 1].fd : -1;
    if (exec_slot >= 0 && exec_slot < nfds)
        s.init_fd = fds[exec_slot];
    s.gated = nsb_plan_find(plan, NSB_OP_GATE) >= 0;

    /* 1. the sync socket; the child's end must not be 0-2 (stdio is dup'ed there) */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        nsb_failure(&s, NSB_STAGE_PARENT, -1, errno);
        goto fail;
    }
    s.sock = sv[0];
    s.child_sock = sv[1];
    if (s.child_sock < 3) {
        int fd = fcntl(s.child_sock, F_DUPFD_CLOEXEC, 3);
        if (fd < 0) {
            nsb_failure(&s, NSB_STAGE_PARENT, -1, errno);
            goto fail;
        }
        close(s.child_sock);
        s.child_sock = fd;
    }

    memset(&ctx, 0, sizeof(ctx));
    ctx.plan = plan;
    ctx.fds = fds;
    ctx.nfds = nfds;
    ctx.sync_fd = s.child_sock;
    ctx.parent_fd = s.sock;
    /* a child left waiting at a gate outlives this call: never on our memory */
    ctx.clone_vm = nsb_clone_vm_supported() && !(plan->flags & NSB_PLAN_NO_CLONE_VM) && !s.gated;
    ctx.legacy_clone = !NSB_HAS_CLONE3 || (plan->flags & NSB_PLAN_LEGACY_CLONE);
    s.forks = nsb_plan_find(plan, NSB_OP_FORK) >= 0;

    /* 2. stacks: the child's, and one for the process of a second fork */
    if (ctx.clone_vm) {
        char *stack = mmap(NULL, NSB_STACK_SIZE * (s.forks ? 2U : 1U), PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED) {
            nsb_failure(&s, NSB_STAGE_PARENT, -1, errno);
            goto fail;
        }
        s.stack = stack;
        s.stack_len = NSB_STACK_SIZE * (s.forks ? 2U : 1U);
        if (s.forks) {
            ctx.stack2 = stack + NSB_STACK_SIZE;
            ctx.stack2_size = NSB_STACK_SIZE;
        }
        /* given back once the child has left this memory (nsb_leave_memory) */
        s.dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    }

    /* 3. block everything; 4. clone.  With clone3 the kernel resets the caught
     * signals in the child (CLONE_CLEAR_SIGHAND, as exec would); with clone(2)
     * the child does it itself.  Kernels before 5.5 refuse the flag: retry
     * without it.  (pthread_sigmask cannot fail with a valid `how`.) */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ctx.sighand_clear = !ctx.legacy_clone && CLONE_CLEAR_SIGHAND != 0;
    for (;;) {
        uint64_t flags =
            plan->clone_flags | (ctx.sighand_clear ? (uint64_t)CLONE_CLEAR_SIGHAND : 0);
        int *pidfd = (plan->flags & NSB_PLAN_PIDFD) ? &s.pidfd : NULL;
        if (ctx.clone_vm) {
            pid = nsb_clone_vm(flags, pidfd, cgfd, ctx.legacy_clone, s.stack, NSB_STACK_SIZE,
                               nsb_child_entry, &ctx);
        } else {
            pid = nsb_clone_copy(flags, pidfd, cgfd, ctx.legacy_clone);
            if (pid == 0)
                nsb_child_run(&ctx, 0); /* the child, on a copy of this memory */
        }
        if (pid != -EINVAL || !ctx.sighand_clear)
            break;
        ctx.sighand_clear = 0;
    }
    /* 5. */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(s.child_sock);
    s.child_sock = -1;
    if (pid < 0) {
        nsb_failure(&s, NSB_STAGE_PARENT, -1, (int)-pid);
        goto fail;
    }
    s.cur = (int)pid;

    /* 6. */
    nsb_converse(&s);

    /* 7. the middle process of a second fork; the pidfd is the new process's */
    if (s.middle > 0) {
        nsb_reap(s.middle);
        s.middle = -1;
        if (s.pidfd >= 0) {
            close(s.pidfd);
            s.pidfd = -1;
        }
        if (!s.failed && (plan->flags & NSB_PLAN_PIDFD)) {
#ifdef SYS_pidfd_open
            s.pidfd = (int)syscall(SYS_pidfd_open, s.cur, 0);
            if (s.pidfd < 0)
                nsb_failure(&s, NSB_STAGE_PARENT, -1, errno);
#else
            nsb_failure(&s, NSB_STAGE_PARENT, -1, ENOSYS);
#endif
        }
    }
    if (s.gated && !s.failed && !s.ready) {
        /* EOF before READY: the child died (a plan with a gate never execs
         * before it) */
        nsb_failure(&s, NSB_STAGE_PARENT, -1, ECHILD);
    } else if ((plan->flags & NSB_PLAN_KEEP_SYNC) && !s.failed && !s.exec_ok && !s.ready) {
        /* the init died before reporting: it said nothing, so say it for it */
        nsb_failure(&s, NSB_STAGE_INIT, -1, ECHILD);
    }
    if (s.failed)
        goto fail;

    /* 8. */
    nsb_leave_memory(&s);
    if ((plan->flags & NSB_PLAN_KEEP_SYNC) || s.ready)
        res->sync_fd = s.sock; /* the init's reports, or nsb_start's conversation */
    else
        close(s.sock);
    res->pid = s.cur;
    res->pidfd = s.pidfd;
    res->listener_fd = s.listener;
    res->terminal_fd = s.terminal;
    return 0;

fail:
    /* Whatever is held, at any point above: our end of the socket closed (a
     * child waiting for a GO exits), the child killed and reaped (a process in
     * a pid namespace of its own takes the namespace with it), and only then
     * its stack unmapped. */
    if (s.listener >= 0)
        close(s.listener);
    if (s.terminal >= 0)
        close(s.terminal);
    if (s.sock >= 0)
        close(s.sock);
    if (s.child_sock >= 0)
        close(s.child_sock);
    if (s.cur > 0) {
        kill(s.cur, SIGKILL); /* ESRCH: gone already; it is reaped below all the same */
        nsb_reap(s.cur);
    }
    if (s.middle > 0)
        nsb_reap(s.middle);
    if (s.pidfd >= 0)
        close(s.pidfd);
    nsb_leave_memory(&s);
    return -1;
}

int nsb_start(const struct nsb_plan *plan, int32_t init_fd, int32_t pid, int32_t sync_fd,
              int32_t listener, int32_t go, struct nsb_result *res)
{
    struct nsb_spawn s;
    int gate = nsb_plan_find(plan, NSB_OP_GATE);
    nsb_spawn_init(&s, plan, res);
    s.sock = sync_fd;
    s.cur = pid;
    s.listener = listener;
    s.init_fd = init_fd;
    if (plan->abi != NSB_ABI_VERSION || gate < 0 || pid <= 0 || sync_fd < 0) {
        nsb_failure(&s, NSB_STAGE_PARENT, -1, EINVAL);
    } else if (go) {
        struct nsb_msg m = {NSB_MSG_GO, 0, 0, 0, gate};
        if (send(sync_fd, &m, sizeof(m), MSG_NOSIGNAL) < 0)
            nsb_failure(&s, NSB_STAGE_PARENT, -1, errno);
    }
    /* the same conversation as the spawn's, from the gate on: the exec's
     * ERROR, EOF (exec'd), the init's EXEC_OK, the engine's own notifications */
    if (!s.failed)
        nsb_converse(&s);
    if ((plan->flags & NSB_PLAN_KEEP_SYNC) && !s.failed && !s.exec_ok)
        nsb_failure(&s, NSB_STAGE_INIT, -1, ECHILD);
    if (s.terminal >= 0)
        close(s.terminal); /* (the child sends none after its gate: not kept) */
    if (!s.failed)
        return 0;
    if (pid > 0)
        kill(pid, SIGKILL); /* ESRCH: gone already; the caller reaps it */
    return -1;
}
