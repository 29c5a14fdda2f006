/* child.c - the cloned child: walk the plan, then exec.
 *
 * Rules for everything in this file (the child may share the caller's memory):
 *   - only raw system calls (rawsys.h): no libc call, no errno, no malloc, no lock,
 *     no stdio; all buffers live on this stack;
 *   - the plan and the fd table are read-only; what changes is copied first;
 *   - the first failure is reported to the parent as {stage, op, errno} on the
 *     sync socket and the child exits 127.
 *
 * The order of the ops is the plan's (pynsbind/_plan.py); the comments below say
 * what each op requires from the ones before it.
 */
#include "child.h"
#include "msg.h"

/* kernel's struct sigaction, large enough for every architecture we build for */
struct nsb_ksigaction {
    unsigned long handler;
    unsigned long flags;
    unsigned long restorer;
    uint64_t mask;
};

static __attribute__((noreturn)) void nsb_exit(int code)
{
    for (;;)
        nsb_sys1(SYS_exit_group, code);
}

/* Report the first failure and exit.  A failed send means the parent is gone
 * (its end closed): nobody is left to tell. */
static __attribute__((noreturn)) void nsb_fail(struct child *c, int op, long err)
{
    nsb_send_msg(c->sync_fd, NSB_MSG_ERROR, NSB_STAGE_CHILD, op, (int32_t)err, 0);
    nsb_exit(127);
}

static long nsb_signal_default(int sig)
{
    struct nsb_ksigaction dfl;
    nsb_memzero(&dfl, sizeof(dfl));
    return nsb_sys4(SYS_rt_sigaction, sig, &dfl, 0, 8);
}

/* Signal handlers are the caller's (Python's) code: reset every caught signal to
 * its default, so that nothing of the caller's runs here, even after the mask is
 * restored right before exec.  (Signals 1-64 but SIGKILL and SIGSTOP are all
 * valid here: a failure would be the kernel's refusal, and is reported.) */
static long nsb_reset_signals(void)
{
    int sig;
    for (sig = 1; sig <= 64; sig++) {
        struct nsb_ksigaction old;
        long r;
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        r = nsb_sys4(SYS_rt_sigaction, sig, 0, &old, 8);
        if (r >= 0 && old.handler != (unsigned long)SIG_DFL &&
            old.handler != (unsigned long)SIG_IGN)
            r = nsb_signal_default(sig);
        if (r < 0)
            return r;
    }
    return 0;
}

/* The fd in slot `slot` of the spawn's table; -EBADF for a slot the table does
 * not have or that holds no fd (the plan compiler never names one). */
static long nsb_fd(struct child *c, int slot)
{
    if (slot < 0 || slot >= c->nfds || c->fds[slot] < 0)
        return -EBADF;
    return c->fds[slot];
}

/* ---- identity and process state ------------------------------------------ */

static long op_loopback(void)
{
    struct ifreq ifr;
    long s = nsb_sys3(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r;
    if (s < 0)
        return s;
    nsb_memzero(&ifr, sizeof(ifr));
    nsb_memcpy(ifr.ifr_name, "lo", 3);
    r = nsb_sys3(SYS_ioctl, s, SIOCGIFFLAGS, &ifr);
    if (r >= 0) {
        ifr.ifr_flags = (short)(ifr.ifr_flags | IFF_UP);
        r = nsb_sys3(SYS_ioctl, s, SIOCSIFFLAGS, &ifr);
    }
    nsb_sys1(SYS_close, s);
    return r;
}

static long op_write(struct child *c, const struct nsb_op *op)
{
    long fd = nsb_open_path(c, op, op->s2, O_WRONLY), r;
    size_t n = nsb_strlen(op->s1);
    if (fd < 0)
        return fd;
    r = NSB_RETRY(nsb_sys3(SYS_write, fd, op->s1, n));
    nsb_sys1(SYS_close, fd);
    if (r >= 0 && (size_t)r != n)
        return -EIO;
    return r < 0 ? r : 0;
}

/* Capabilities.  p holds five masks: bounding, effective, permitted,
 * inheritable and ambient; b is the last capability of this kernel.
 *
 * The bounding set is cut while CAP_SETPCAP is still effective, the
 * inheritable set set before that (capset allows any subset of the bounding
 * set then), the ambient set raised last.  With NSB_F_KEEP_PERMITTED the
 * permitted (and effective) sets stay as they are: exec derives them (root:
 * from the bounding set; another user: from the ambient set), and until then
 * this process holds more capabilities than anything in the container, so no
 * container process may ptrace it (commoncap refuses a tracer whose permitted
 * set is not a superset of the tracee's). */
static long op_caps(const struct nsb_op *op)
{
    struct __user_cap_header_struct hdr;
    struct __user_cap_data_struct data[2];
    const uint64_t *sets = (const uint64_t *)op->p;
    uint64_t have;
    unsigned long cap;
    long r;

    nsb_memzero(&hdr, sizeof(hdr));
    nsb_memzero(data, sizeof(data));
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    r = nsb_sys2(SYS_capget, &hdr, data);
    if (r < 0)
        return r;
    have = (uint64_t)data[0].permitted | ((uint64_t)data[1].permitted << 32);
    /* everything permitted effective again (a uid change cleared it), and the
     * inheritable set */
    data[0].effective = data[0].permitted;
    data[1].effective = data[1].permitted;
    data[0].inheritable = (uint32_t)sets[3];
    data[1].inheritable = (uint32_t)(sets[3] >> 32);
    r = nsb_sys2(SYS_capset, &hdr, data);
    if (r < 0)
        return r;
    /* b is the kernel's last capability; the masks name 64 at most (the kernel
     * has fewer) */
    for (cap = 0; cap <= op->b && cap < 64; cap++) {
        if (sets[0] & (1ULL << cap))
            continue;
        r = nsb_sys5(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0);
        if (r < 0 && r != -EINVAL) /* EINVAL: a capability this kernel lacks */
            return r;
    }
    if (!(op->flags & NSB_F_KEEP_PERMITTED)) {
        uint64_t perm = sets[2] & have, eff = sets[1] & perm;
        data[0].effective = (uint32_t)eff;
        data[1].effective = (uint32_t)(eff >> 32);
        data[0].permitted = (uint32_t)perm;
        data[1].permitted = (uint32_t)(perm >> 32);
        r = nsb_sys2(SYS_capset, &hdr, data);
        if (r < 0)
            return r;
    }
    r = nsb_sys5(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (r < 0 && !(r == -EINVAL && !sets[4]))
        return r;
    for (cap = 0; cap <= op->b && cap < 64; cap++) {
        if (!(sets[4] & (1ULL << cap)))
            continue;
        r = nsb_sys5(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
        if (r < 0)
            return r;
    }
    return 0;
}

/* The filter, loaded last before exec.
 *
 * With SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returns the notify
 * listener, which the parent must hold before this process makes another
 * system call (the filter may notify any of them, and nobody would answer).
 * So the child names the fd the listener will get (the lowest free one: this
 * process is single-threaded) before loading, and the parent takes it with
 * pidfd_getfd once it appears; then it answers the GO this child waits for,
 * and lets our own last steps through (see nsb_spawn). */
static long op_seccomp(struct child *c, const struct nsb_op *op)
{
    struct sock_fprog prog;
    long r, next = -1;
    int notify = SECCOMP_FILTER_FLAG_NEW_LISTENER && (op->b & SECCOMP_FILTER_FLAG_NEW_LISTENER);
    if (op->a == 0 || op->a > BPF_MAXINSNS)
        return -EINVAL;
    prog.len = (unsigned short)op->a;
    prog.filter = (struct sock_filter *)(uintptr_t)op->p;
    if (notify) {
        /* the lowest free fd, as the kernel picks it (the sync socket is open) */
        next = nsb_sys3(SYS_fcntl, c->sync_fd, F_DUPFD_CLOEXEC, 0);
        if (next < 0)
            return next;
        nsb_sys1(SYS_close, next);
        r = nsb_send_msg(c->sync_fd, NSB_MSG_LISTENER, 0, 0, 0, next);
        if (r < 0)
            return r;
    }
    r = nsb_sys3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, op->b, &prog);
    if (r < 0 || !notify)
        return r < 0 ? r : 0;
    if (r != next)
        return -EBADFD; /* cannot happen: nothing else opens an fd here */
    {
        struct nsb_msg m;
        long n = NSB_RETRY(nsb_sys6(SYS_recvfrom, c->sync_fd, (long)&m, sizeof(m), 0, 0, 0));
        if (n != (long)sizeof(m) || m.type != NSB_MSG_GO || m.val != next)
            nsb_exit(127); /* the parent gave up: it reports why */
    }
    nsb_sys1(SYS_close, r);
    return 0;
}

/* Second fork.  The middle process reports the new pid to the parent and exits;
 * the new process (our caller's child too, through CLONE_PARENT) goes on with
 * the ops after this one.  Needed where a namespace only applies to children:
 * a pid or time namespace unshared or joined above. */
static int nsb_resume(void *arg);

static long op_fork(struct child *c, int index)
{
    const struct nsb_op *op = &c->plan->ops[index];
    uint64_t flags = CLONE_PARENT | op->a;
    long cgfd = -1, pid, r;
    if (op->fd >= 0) {
        cgfd = nsb_fd(c, op->fd); /* a cgroup the plan names: never a clone without it */
        if (cgfd < 0)
            return cgfd;
    }
    if (c->ctx->clone_vm) {
        /* the new process starts in nsb_resume on stack2 and copies *c first */
        c->resume = index + 1;
        pid = nsb_clone_vm(flags, 0, (int)cgfd, c->ctx->legacy_clone, c->ctx->stack2,
                           c->ctx->stack2_size, nsb_resume, (void *)c);
    } else {
        pid = nsb_clone_copy(flags, 0, (int)cgfd, c->ctx->legacy_clone);
    }
    if (pid <= 0)
        return pid; /* 0: fork mode, the new process continues here */
    r = nsb_send_msg(c->sync_fd, NSB_MSG_PID, 0, index, 0, pid);
    if (r < 0) {
        /* the parent would never know it: it must not go on */
        nsb_sys2(SYS_kill, pid, SIGKILL);
        return r;
    }
    nsb_exit(0);
}

static long op_sync(struct child *c, const struct nsb_op *op)
{
    struct nsb_msg m;
    long r = nsb_send_msg(c->sync_fd, NSB_MSG_SYNC, 0, 0, 0, (int64_t)op->a);
    if (r < 0)
        return r;
    r = NSB_RETRY(nsb_sys6(SYS_recvfrom, c->sync_fd, (long)&m, sizeof(m), 0, 0, 0));
    if (r < 0)
        return r;
    if (r != (long)sizeof(m) || m.type != NSB_MSG_GO || m.val != (int64_t)op->a)
        nsb_exit(127); /* the parent gave up: it reports its own error */
    return 0;
}

/* Sync step a, answered by an fd (an idmapped tree the parent made, as
 * SCM_RIGHTS) instead of GO: keep it in register out.  The parent closes its end
 * when it cannot make the fd: we exit, it reports. */
static long op_recvfd(struct child *c, const struct nsb_op *op)
{
    struct nsb_msg m;
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov;
    struct msghdr mh;
    struct cmsghdr *cm;
    int fd = -1;
    long r = nsb_send_msg(c->sync_fd, NSB_MSG_SYNC, 0, 0, 0, (int64_t)op->a);
    if (r < 0)
        return r;
    nsb_memzero(&u, sizeof(u));
    nsb_memzero(&mh, sizeof(mh));
    iov.iov_base = &m;
    iov.iov_len = sizeof(m);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof(u.buf);
    r = NSB_RETRY(nsb_sys3(SYS_recvmsg, c->sync_fd, &mh, MSG_CMSG_CLOEXEC));
    if (r < 0)
        return r;
    cm = CMSG_FIRSTHDR(&mh);
    if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
        cm->cmsg_len == CMSG_LEN(sizeof(int)))
        nsb_memcpy(&fd, CMSG_DATA(cm), sizeof(int));
    if (r != (long)sizeof(m) || m.type != NSB_MSG_FD || m.val != (int64_t)op->a) {
        if (fd >= 0)
            nsb_sys1(SYS_close, fd);
        nsb_exit(127); /* the parent gave up: it reports its own error */
    }
    if (fd < 0 || (mh.msg_flags & MSG_CTRUNC)) {
        if (fd >= 0)
            nsb_sys1(SYS_close, fd);
        return -EPROTO;
    }
    return nsb_keep(c, op->out, fd);
}

static long op_pdeathsig(struct child *c, const struct nsb_op *op)
{
    struct pollfd {
        int fd;
        short events, revents;
    } p;
    struct {
        long sec, nsec;
    } zero = {0, 0};
    long r = nsb_sys5(SYS_prctl, PR_SET_PDEATHSIG, op->a, 0, 0, 0);
    if (r < 0)
        return r;
    /* the parent may have died before the prctl: then its end of the socket is closed */
    p.fd = c->sync_fd;
    p.events = 0;
    p.revents = 0;
    r = nsb_sys5(SYS_ppoll, &p, 1, &zero, 0, 8);
    if (r < 0)
        return r;
    if (r > 0 && (p.revents & 0x10 /* POLLHUP */))
        nsb_exit(1);
    return 0;
}

/* ---- fds ---------------------------------------------------------------- */

/* Move any table entry that sits on `target` out of the way. */
static long nsb_vacate(struct child *c, int target)
{
    int i;
    for (i = 0; i < c->nfds; i++) {
        if (c->fds[i] == target) {
            long nfd = nsb_sys3(SYS_fcntl, target, F_DUPFD_CLOEXEC, 3);
            int j;
            if (nfd < 0)
                return nfd;
            for (j = i; j < c->nfds; j++)
                if (c->fds[j] == target)
                    c->fds[j] = (int)nfd;
            return 0;
        }
    }
    return 0;
}

/* Close every fd from lo to hi. */
static long nsb_close_from(struct child *c, int lo, int hi)
{
    struct rlimit lim;
    unsigned long max;
    long r, fd;
    if (lo > hi)
        return 0;
#if NSB_HAS_CLOSE_RANGE
    r = nsb_sys3(SYS_close_range, lo, hi, 0);
    if (r != -ENOSYS && r != -EPERM)
        return r;
#endif
    /* Before Linux 5.9, or under a seccomp filter loaded early (an OCI profile
     * that predates close_range refuses it with EPERM): one close each, up to
     * the highest fd this process can hold: below the larger of its
     * RLIMIT_NOFILE limits, now and before an RLIMIT op changed them
     * (nofile_max).  The kernel keeps both limits under fs.nr_open.  (An fd
     * the caller opened above a limit it lowered later is out of sight here;
     * close_range has no such gap.) */
    max = c->nofile_max;
    r = nsb_sys4(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, &lim);
    if (r < 0 && !max)
        return r; /* no limit known: fail rather than leave an fd open */
    if (r < 0)
        lim.rlim_cur = lim.rlim_max = 0; /* refused too: nofile_max alone */
    if (lim.rlim_cur > max)
        max = lim.rlim_cur;
    if (lim.rlim_max > max)
        max = lim.rlim_max;
    for (fd = lo; fd <= hi && (unsigned long)fd < max; fd++) {
        r = nsb_sys1(SYS_close, fd); /* EBADF for most: nothing there */
        if (r == -EPERM || r == -EACCES || r == -ENOSYS)
            return r; /* a filter refusing close itself: the fd would stay (any
                         other error of close(2) still frees the fd) */
    }
    return 0;
}

/* stdio from slots 0-2 (-1: leave as is), keep the a fds listed in p, move the
 * sync socket to fd b when b >= 0 (the init inherits it), keep the fd of slot
 * c - 1 when c > 0 and the slot holds one (the gate's FIFO), close everything
 * else. */
static long op_fds(struct child *c, const struct nsb_op *op)
{
    const int32_t *pass = op->p;
    /* 0-2, the a fds of p (at most NSB_MAX_FDS), the sync socket, the init's
     * executable, the gate */
    int keep[3 + NSB_MAX_FDS + 3];
    int nkeep = 0, i, j, lo, want_sync;
    long r;
    if ((int64_t)op->b < -1 || (int64_t)op->b > INT_MAX)
        return -EBADF;
    want_sync = (int)(int64_t)op->b;

    /* a source below 3 that is not already its target moves up first, so that
     * no dup3 below overwrites a source still to be used */
    for (i = 0; i < 3 && i < c->nfds; i++) {
        int src = c->fds[i];
        if (src >= 0 && src < 3 && src != i) {
            long nfd = nsb_sys3(SYS_fcntl, src, F_DUPFD_CLOEXEC, 3);
            if (nfd < 0)
                return nfd;
            for (j = i; j < 3 && j < c->nfds; j++)
                if (c->fds[j] == src)
                    c->fds[j] = (int)nfd;
        }
    }
    for (i = 0; i < 3 && i < c->nfds; i++) {
        int src = c->fds[i];
        if (src < 0)
            continue;
        if (src == i)
            r = nsb_sys3(SYS_fcntl, i, F_SETFD, 0);
        else
            r = nsb_sys3(SYS_dup3, src, i, 0);
        if (r < 0)
            return r;
        c->fds[i] = i; /* in place now (a later FDS op finds it there) */
    }
    for (i = 0; i < 3; i++)
        keep[nkeep++] = i;
    if (op->a > NSB_MAX_FDS)
        return -E2BIG; /* the plan compiler refuses this first */
    for (i = 0; i < (int)op->a; i++) {
        r = nsb_sys3(SYS_fcntl, pass[i], F_SETFD, 0);
        if (r < 0)
            return r;
        keep[nkeep++] = pass[i];
    }
    if (want_sync >= 0 && want_sync != c->sync_fd) {
        r = nsb_vacate(c, want_sync);
        if (r < 0)
            return r;
        r = nsb_sys3(SYS_dup3, c->sync_fd, want_sync, 0);
        if (r < 0)
            return r;
        nsb_sys1(SYS_close, c->sync_fd);
        c->sync_fd = want_sync;
    } else if (want_sync >= 0) {
        r = nsb_sys3(SYS_fcntl, want_sync, F_SETFD, 0);
        if (r < 0)
            return r;
    }
    keep[nkeep++] = c->sync_fd; /* close-on-exec, unless the init takes it */
    if (op->fd >= 0) {
        r = nsb_fd(c, op->fd); /* the init's executable, for execveat */
        if (r < 0)
            return r;
        keep[nkeep++] = (int)r;
    }
    if (op->c > 0 && op->c <= INT_MAX && nsb_fd(c, (int)op->c - 1) >= 0)
        keep[nkeep++] = c->fds[op->c - 1]; /* the gate's FIFO (close-on-exec) */
    /* sort (few entries) and close the gaps */
    for (i = 1; i < nkeep; i++)
        for (j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
            int t = keep[j];
            keep[j] = keep[j - 1];
            keep[j - 1] = t;
        }
    lo = 3;
    for (i = 0; i < nkeep; i++) {
        if (keep[i] < lo)
            continue;
        r = nsb_close_from(c, lo, keep[i] - 1);
        if (r < 0)
            return r;
        lo = keep[i] + 1;
    }
    return nsb_close_from(c, lo, INT_MAX);
}

/* ---- the terminal and the gate --------------------------------------------- */

/* A new pseudo-terminal, made from the ptmx s1 of the container's devpts once
 * this process is in its root and its own session, with its final uid (the
 * slave belongs to it, as a login's terminal does).  The master must be one
 * (TIOCSPTLCK is a master's ioctl, whatever s1 turned out to be); the slave is
 * opened through it (TIOCGPTPEER: from the master's own devpts, no path), made
 * the controlling terminal of this session (TIOCSCTTY: this process leads it,
 * and its foreground group is this process's) and the stdio of the plan's FDS
 * op.  The master goes to the parent, then is closed here: no process of the
 * container ever holds it. */
static long op_terminal(struct child *c, const struct nsb_op *op)
{
    int unlock = 0, i;
    long master, slave = -1, r;
    if (c->nfds < 3)
        return -EBADF; /* cannot happen: a table has stdio's slots */
    master = nsb_sys4(SYS_openat, AT_FDCWD, op->s1, O_RDWR | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (master < 0)
        return master;
    r = nsb_sys3(SYS_ioctl, master, TIOCSPTLCK, &unlock);
    if (r >= 0)
        r = slave = nsb_sys3(SYS_ioctl, master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (r >= 0 && (op->a || op->b)) {
        struct winsize ws;
        nsb_memzero(&ws, sizeof(ws));
        ws.ws_row = (unsigned short)op->a;
        ws.ws_col = (unsigned short)op->b;
        r = nsb_sys3(SYS_ioctl, slave, TIOCSWINSZ, &ws);
    }
    if (r >= 0)
        r = nsb_sys3(SYS_ioctl, slave, TIOCSCTTY, 0);
    if (r >= 0)
        r = nsb_send_fd(c->sync_fd, NSB_MSG_TERMINAL, (int)master);
    nsb_sys1(SYS_close, master);
    if (r < 0) {
        if (slave >= 0)
            nsb_sys1(SYS_close, slave);
        return r;
    }
    for (i = 0; i < 3; i++)
        c->fds[i] = (int)slave; /* close-on-exec: FDS dups it to 0-2 */
    return 0;
}

/* The start gate: every op but the exec is done.  Tell the parent (READY),
 * then wait: in the caller's process (the fd slot holds -1) for GO on the sync
 * socket; else for one byte on the gate's FIFO, which this process holds
 * read-write (a read then waits for a writer's byte, never sees an end), and
 * which anyone may write who can open it.  Signals are let in while it waits
 * (this process has a memory of its own: the compiler sees to it), so that a
 * created container can be stopped, killed or terminated like a running one;
 * but not those whose default dumps core (this process holds a copy of the
 * caller's memory: they wait for the exec); all are blocked again for the exec.
 * Run under the container's seccomp filter: sendto, recvfrom or read,
 * rt_sigprocmask and close must be allowed, as execveat must. */
#define NSB_SIGBIT(s) (1ULL << ((s)-1))
static const uint64_t nsb_core_signals =
    NSB_SIGBIT(SIGQUIT) | NSB_SIGBIT(SIGILL) | NSB_SIGBIT(SIGTRAP) | NSB_SIGBIT(SIGABRT) |
    NSB_SIGBIT(SIGBUS) | NSB_SIGBIT(SIGFPE) | NSB_SIGBIT(SIGSEGV) | NSB_SIGBIT(SIGXCPU) |
    NSB_SIGBIT(SIGXFSZ) | NSB_SIGBIT(SIGSYS);

static long op_gate(struct child *c, int index)
{
    const struct nsb_op *op = &c->plan->ops[index];
    uint64_t all = ~0ULL, waiting = nsb_core_signals;
    long fifo = -1, r;
    char byte;
    if (op->fd >= 0 && op->fd < c->nfds && c->fds[op->fd] >= 0)
        fifo = c->fds[op->fd];
    r = nsb_send_msg(c->sync_fd, NSB_MSG_READY, 0, index, 0, index);
    if (r < 0)
        return r;
    nsb_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &waiting, 0, 8);
    if (fifo < 0) {
        struct nsb_msg m;
        r = NSB_RETRY(nsb_sys6(SYS_recvfrom, c->sync_fd, (long)&m, sizeof(m), 0, 0, 0));
        if (r != (long)sizeof(m) || m.type != NSB_MSG_GO || m.val != index)
            nsb_exit(127); /* the parent let go of us without a start */
    } else {
        r = NSB_RETRY(nsb_sys3(SYS_read, fifo, &byte, 1));
        nsb_sys1(SYS_close, fifo);
        c->fds[op->fd] = -1;
        if (r != 1)
            return r < 0 ? r : -EIO; /* (an end of file cannot come: we hold a writer) */
    }
    nsb_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &all, 0, 8);
    return 0;
}

/* ---- exec --------------------------------------------------------------- */

static long op_exec(struct child *c, const struct nsb_op *op)
{
    char *const *argv = (char *const *)op->p;
    char *const *envp = (char *const *)op->q;

    /* Every signal stays blocked through this exec (it was since the clone):
     * with CLONE_VM, a signal whose default action dumps core would dump, and
     * kill, the caller too.  The sealed init unblocks them once it runs in a
     * memory of its own. */
    if (op->fd >= 0) {
        long fd = nsb_fd(c, op->fd);
        return fd < 0 ? fd : nsb_sys5(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
    }
    if (!(op->flags & NSB_F_SEARCH_PATH))
        return nsb_sys3(SYS_execve, op->s1, argv, envp);
    return nsb_exec_search(op->s1, op->s2, argv, envp);
}

/* ---- the walk ----------------------------------------------------------- */

static long nsb_run_op(struct child *c, int index)
{
    const struct nsb_op *op = &c->plan->ops[index];
    long r;
    switch (op->kind) {
    case NSB_OP_SETNS: {
        long fd = op->fd >= 0 ? nsb_fd(c, op->fd)
                              : nsb_sys4(SYS_openat, AT_FDCWD, op->s1, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0)
            return fd;
        r = nsb_sys2(SYS_setns, fd, op->a);
        if (op->fd < 0)
            nsb_sys1(SYS_close, fd);
        return r;
    }
    case NSB_OP_UNSHARE:
        return nsb_sys1(SYS_unshare, op->a);
    case NSB_OP_SYNC:
        return op_sync(c, op);
    case NSB_OP_RECVFD:
        return op_recvfd(c, op);
    case NSB_OP_FORK:
        return op_fork(c, index);
    case NSB_OP_PDEATHSIG:
        return op_pdeathsig(c, op);
    case NSB_OP_MOUNT:
        return op_mount(c, op);
    case NSB_OP_FSMOUNT:
        return op_fsmount(c, op);
    case NSB_OP_BIND:
        return op_bind(c, op);
    case NSB_OP_PREOPEN:
        return op_preopen(c, op);
    case NSB_OP_SETATTR:
        return op_setattr(c, op);
    case NSB_OP_REMOUNT:
        return op_remount(c, op);
    case NSB_OP_MKDIRS:
        return nsb_mkdirs(c, op, op->s2, (long)op->a);
    case NSB_OP_MKFILE: {
        /* an empty regular file, made without opening anything: whatever is
         * there already (a FIFO, a device node, a symlink) is left unopened,
         * and the mount goes over what the target resolves to */
        char dir[NSB_PATH_MAX];
        const char *base;
        long dfd = nsb_open_parent(c, op, op->s2, dir, &base);
        if (dfd < 0)
            return dfd;
        r = nsb_sys4(SYS_mknodat, dfd, base, S_IFREG | 0644, 0);
        nsb_sys1(SYS_close, dfd);
        return r == -EEXIST ? 0 : r;
    }
    case NSB_OP_MKNOD:
    case NSB_OP_SYMLINK: {
        char dir[NSB_PATH_MAX];
        const char *base;
        long dfd = nsb_open_parent(c, op, op->s2, dir, &base);
        if (dfd < 0)
            return dfd;
        if (op->kind == NSB_OP_MKNOD)
            r = nsb_sys4(SYS_mknodat, dfd, base, op->a, op->b);
        else
            r = nsb_sys3(SYS_symlinkat, op->s1, dfd, base);
        nsb_sys1(SYS_close, dfd);
        return r == -EEXIST ? 0 : r;
    }
    case NSB_OP_PIVOT:
        return op_pivot(c, op);
    case NSB_OP_MASK:
        return op_mask(c, op);
    case NSB_OP_ROPATH:
        return op_ropath(c, op);
    case NSB_OP_LOOPBACK:
        return op_loopback();
    case NSB_OP_HOSTNAME:
        return nsb_sys2(SYS_sethostname, op->s1, nsb_strlen(op->s1));
    case NSB_OP_DOMAINNAME:
        return nsb_sys2(SYS_setdomainname, op->s1, nsb_strlen(op->s1));
    case NSB_OP_RLIMIT: {
        /* the old limits of RLIMIT_NOFILE bound the fds the caller left us
         * (see nsb_close_from) */
        struct rlimit lim, old;
        lim.rlim_cur = op->b;
        lim.rlim_max = op->c;
        r = nsb_sys4(SYS_prlimit64, 0, op->a, &lim, &old);
        if (r >= 0 && op->a == RLIMIT_NOFILE && old.rlim_max > c->nofile_max)
            c->nofile_max = old.rlim_max;
        if (r >= 0 && op->a == RLIMIT_NOFILE && old.rlim_cur > c->nofile_max)
            c->nofile_max = old.rlim_cur;
        return r;
    }
    case NSB_OP_WRITE:
        return op_write(c, op);
    case NSB_OP_KEEPCAPS:
        return nsb_sys5(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0);
    case NSB_OP_SETGROUPS:
        return nsb_sys2(SYS_setgroups, op->a, op->p);
    case NSB_OP_SETGID:
        return nsb_sys3(SYS_setresgid, op->a, op->a, op->a);
    case NSB_OP_SETUID:
        return nsb_sys3(SYS_setresuid, op->a, op->a, op->a);
    case NSB_OP_CAPS:
        return op_caps(op);
    case NSB_OP_NNP:
        return nsb_sys5(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    case NSB_OP_SECCOMP:
        return op_seccomp(c, op);
    case NSB_OP_UMASK:
        nsb_sys1(SYS_umask, op->a);
        return 0;
    case NSB_OP_CHDIR:
        return nsb_sys1(SYS_chdir, op->s2);
    case NSB_OP_FDS:
        return op_fds(c, op);
    case NSB_OP_EXEC:
        r = op_exec(c, op);
        return r < 0 ? r : -EINVAL;
    case NSB_OP_SETSID:
        return nsb_sys0(SYS_setsid);
    case NSB_OP_DUMPABLE:
        return nsb_sys5(SYS_prctl, PR_SET_DUMPABLE, op->a, 0, 0, 0);
    case NSB_OP_WIPE: {
        /* only in a process with a memory of its own (the compiler sees to it) */
        volatile char *p = (volatile char *)(uintptr_t)op->a;
        uint64_t n = op->b > op->a ? op->b - op->a : 0;
        while (n--)
            *p++ = 0;
        return 0;
    }
    case NSB_OP_FINDEXEC:
        return nsb_find_exec(op->s1, (op->flags & NSB_F_SEARCH_PATH) ? op->s2 : 0);
    case NSB_OP_TERMINAL:
        return op_terminal(c, op);
    case NSB_OP_GATE:
        return op_gate(c, index);
    case NSB_OP_SYSCTL:
        return op_sysctl(c, op);
    case NSB_OP_PERSONALITY:
        /* the execution domain and its flags, kept across exec (the kernel
         * clears the unsafe flags for a set-id program) */
        r = nsb_sys1(SYS_personality, op->a);
        return r < 0 ? r : 0;
    case NSB_OP_COPYUP:
        return op_copyup(c, op);
    case NSB_OP_KEYRING:
        /* KEYCTL_JOIN_SESSION_KEYRING (1) with no name: a new anonymous
         * session keyring, so the caller's keys are out of reach.  ENOSYS or
         * EPERM mean a filter around the caller forbids keyctl (Docker's
         * default profile does): it forbids it to the container too, whose
         * filters are the caller's and more, so there is nothing to hide */
        r = nsb_sys5(SYS_keyctl, 1, 0, 0, 0, 0);
        return (r < 0 && r != -ENOSYS && r != -EPERM) ? r : 0;
    default:
        return -EINVAL;
    }
}

static __attribute__((noreturn)) void nsb_walk(struct child *c, int start)
{
    int i;
    for (i = start; i < c->plan->nops; i++) {
        long r = nsb_run_op(c, i);
        if (r < 0) {
            if (r == -ENOENT && (c->plan->ops[i].flags & NSB_F_IGNORE_ENOENT))
                continue;
            nsb_fail(c, i, -r);
        }
    }
    nsb_fail(c, c->plan->nops, EINVAL); /* a plan must end in an exec */
}

void nsb_child_run(const struct nsb_ctx *ctx, int start)
{
    struct child c;
    long r = 0;
    int i;
    /* The child has a copy of the parent's end of the socket: close it, or the
     * child would never see the parent go away (no EOF while it holds one) */
    nsb_sys1(SYS_close, ctx->parent_fd);
    c.ctx = ctx;
    c.plan = ctx->plan;
    c.sync_fd = ctx->sync_fd;
    c.nfds = ctx->nfds; /* at most NSB_MAX_FDS: nsb_spawn checks */
    for (i = 0; i < ctx->nfds; i++)
        c.fds[i] = ctx->fds[i];
    for (i = 0; i < NSB_MAX_REGS; i++)
        c.regs[i] = -1;
    c.resume = 0;
    c.nofile_max = 0;
    if (!ctx->sighand_clear)
        r = nsb_reset_signals();
    /* files and nodes the plan makes get exactly their modes (the UMASK op
     * sets the container's umask later) */
    nsb_sys1(SYS_umask, 0);
    /* Python ignores SIGPIPE and SIGXFSZ; like subprocess (restore_signals),
     * give the container their defaults, which exec would keep ignored */
    if (r >= 0)
        r = nsb_signal_default(SIGPIPE);
    if (r >= 0)
        r = nsb_signal_default(SIGXFSZ);
    if (r < 0)
        nsb_fail(&c, -1, -r); /* before any op: the parent reports it as the clone's */
    nsb_walk(&c, start);
}

/* Entry of a CLONE_VM child (spawn.c passes the parent's ctx). */
int nsb_child_entry(void *arg) { nsb_child_run((const struct nsb_ctx *)arg, 0); }

/* The process of a second fork in CLONE_VM mode starts here, on its own stack,
 * with arg pointing at the middle process's struct child, which stays mapped
 * until the parent has seen this process exec or die: copy it and go on. */
static int nsb_resume(void *arg)
{
    struct child c;
    nsb_memcpy(&c, arg, sizeof(c));
    nsb_walk(&c, c.resume);
}
