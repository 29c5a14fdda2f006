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
#include "engine.h"
#include "rawsys.h"

#define NSB_PATH_MAX 4096

struct child {
    const struct nsb_ctx *ctx;
    const struct nsb_plan *plan;
    int sync_fd;
    int nfds;
    int fds[NSB_MAX_FDS];   /* the spawn's fd table, relocated where needed */
    int regs[NSB_MAX_REGS]; /* fds opened by the child itself (register 0: the root) */
    int resume;             /* second fork, CLONE_VM: the op the new process starts at */
};

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

static void nsb_send(int fd, uint32_t type, int32_t stage, int32_t op, int32_t err, int64_t val)
{
    struct nsb_msg m;
    m.type = type;
    m.stage = stage;
    m.op = op;
    m.err = err;
    m.val = val;
    NSB_RETRY(nsb_sys6(SYS_sendto, fd, (long)&m, sizeof(m), MSG_NOSIGNAL, 0, 0));
}

static __attribute__((noreturn)) void nsb_fail(struct child *c, int op, long err)
{
    nsb_send(c->sync_fd, NSB_MSG_ERROR, NSB_STAGE_CHILD, op, (int32_t)err, 0);
    nsb_exit(127);
}

/* Signal handlers are the caller's (Python's) code: reset every caught signal to
 * its default, so that nothing of the caller's runs here, even after the mask is
 * restored right before exec. */
static void nsb_reset_signals(void)
{
    int sig;
    for (sig = 1; sig <= 64; sig++) {
        struct nsb_ksigaction old, dfl;
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        if (nsb_sys4(SYS_rt_sigaction, sig, 0, &old, 8) < 0)
            continue;
        if (old.handler == (unsigned long)SIG_DFL || old.handler == (unsigned long)SIG_IGN)
            continue;
        nsb_memzero(&dfl, sizeof(dfl));
        nsb_sys4(SYS_rt_sigaction, sig, &dfl, 0, 8);
    }
}

static void nsb_signal_default(int sig)
{
    struct nsb_ksigaction dfl;
    nsb_memzero(&dfl, sizeof(dfl));
    nsb_sys4(SYS_rt_sigaction, sig, &dfl, 0, 8);
}

static int nsb_fd(struct child *c, int slot)
{
    if (slot < 0 || slot >= c->nfds)
        return -1;
    return c->fds[slot];
}

/* ---- paths ------------------------------------------------------------- */

/* Open `path` as O_PATH: inside the container root (register 0) when the op says
 * so, resolving every symlink and ".." within it, else from the current root. */
static long nsb_open_path(struct child *c, const struct nsb_op *op, const char *path, int flags)
{
    if ((op->flags & NSB_F_IN_ROOT) && c->regs[0] >= 0) {
#if NSB_HAS_OPENAT2
        struct open_how how;
        nsb_memzero(&how, sizeof(how));
        how.flags = (__u64)(O_CLOEXEC | flags);
        how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        if (flags & O_CREAT)
            how.mode = 0644;
        return NSB_RETRY(nsb_sys4(SYS_openat2, c->regs[0], path[0] ? path : ".", &how, sizeof(how)));
#else
        return -ENOSYS;
#endif
    }
    return NSB_RETRY(nsb_sys4(SYS_openat, AT_FDCWD, path, O_CLOEXEC | flags, 0644));
}

/* Split path into its directory (copied into dir) and its last component. */
static const char *nsb_split(const char *path, char *dir)
{
    size_t n = nsb_strlen(path), i, slash = (size_t)-1;
    if (n >= NSB_PATH_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (path[i] == '/')
            slash = i;
    if (slash == (size_t)-1) {
        dir[0] = '\0';
        return path;
    }
    nsb_memcpy(dir, path, slash);
    dir[slash] = '\0';
    if (slash == 0 && path[0] == '/') {
        dir[0] = '/';
        dir[1] = '\0';
    }
    return path + slash + 1;
}

/* mkdir -p, one component at a time, each resolved as nsb_open_path does. */
static long nsb_mkdirs(struct child *c, const struct nsb_op *op, const char *path, long mode)
{
    char buf[NSB_PATH_MAX];
    size_t n = nsb_strlen(path), i;
    long r;
    if (n >= NSB_PATH_MAX)
        return -ENAMETOOLONG;
    nsb_memcpy(buf, path, n + 1);
    for (i = 1; i <= n; i++) {
        char dir[NSB_PATH_MAX];
        const char *base;
        long dfd;
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        base = nsb_split(buf, dir);
        if (base && base[0] && !(base[0] == '.' && (!base[1] || (base[1] == '.' && !base[2])))) {
            dfd = nsb_open_path(c, op, dir[0] ? dir : ((op->flags & NSB_F_IN_ROOT) ? "" : "."),
                                O_PATH | O_DIRECTORY);
            if (dfd < 0)
                return dfd;
            r = nsb_sys3(SYS_mkdirat, dfd, base, mode);
            nsb_sys1(SYS_close, dfd);
            if (r < 0 && r != -EEXIST)
                return r;
        }
        if (i < n)
            buf[i] = '/';
    }
    return 0;
}

/* Open the parent directory of path (creating it) and return its fd; *base gets
 * the last component. */
static long nsb_open_parent(struct child *c, const struct nsb_op *op, const char *path,
                            char *dir, const char **base)
{
    long r;
    *base = nsb_split(path, dir);
    if (!*base || !(*base)[0])
        return -EINVAL;
    if (dir[0]) {
        r = nsb_mkdirs(c, op, dir, 0755);
        if (r < 0)
            return r;
    }
    return nsb_open_path(c, op, dir[0] ? dir : ((op->flags & NSB_F_IN_ROOT) ? "" : "."),
                         O_PATH | O_DIRECTORY);
}

/* ---- mounts ------------------------------------------------------------- */

static long nsb_attach(struct child *c, const struct nsb_op *op, int mfd)
{
#if NSB_HAS_NEW_MOUNT_API
    long tfd = nsb_open_path(c, op, op->s2, O_PATH), r;
    if (tfd < 0)
        return tfd;
    r = nsb_sys5(SYS_move_mount, mfd, "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
    nsb_sys1(SYS_close, tfd);
    return r;
#else
    (void)c;
    (void)op;
    (void)mfd;
    return -ENOSYS;
#endif
}

static long nsb_setattr_fd(int fd, const char *path, unsigned int flags, uint64_t set,
                           uint64_t clr, uint64_t prop)
{
#if NSB_HAS_MOUNT_SETATTR
    struct mount_attr attr;
    nsb_memzero(&attr, sizeof(attr));
    attr.attr_set = set;
    attr.attr_clr = clr;
    attr.propagation = prop;
    return nsb_sys5(SYS_mount_setattr, fd, path, flags, &attr, sizeof(attr));
#else
    (void)fd;
    (void)path;
    (void)flags;
    (void)set;
    (void)clr;
    (void)prop;
    return -ENOSYS;
#endif
}

/* fsopen + fsconfig + fsmount.  The parameters (p) are records of a type byte
 * ('f' flag, 's' string), a NUL-terminated key and a NUL-terminated value,
 * ending with a 0 byte. */
static long nsb_fs_create(const char *fstype, const char *source, const char *params, uint64_t attr)
{
#if NSB_HAS_NEW_MOUNT_API
    long fsfd = nsb_sys2(SYS_fsopen, fstype, FSOPEN_CLOEXEC), r = 0, mfd;
    if (fsfd < 0)
        return fsfd;
    if (source)
        r = nsb_sys5(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "source", source, 0);
    while (r >= 0 && params && *params) {
        char type = *params++;
        const char *key = params, *value;
        params += nsb_strlen(params) + 1;
        value = params;
        params += nsb_strlen(params) + 1;
        if (type == 'f')
            r = nsb_sys5(SYS_fsconfig, fsfd, FSCONFIG_SET_FLAG, key, 0, 0);
        else
            r = nsb_sys5(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, key, value, 0);
    }
    if (r >= 0)
        r = nsb_sys5(SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, 0, 0, 0);
    if (r < 0) {
        nsb_sys1(SYS_close, fsfd);
        return r;
    }
    mfd = nsb_sys3(SYS_fsmount, fsfd, FSMOUNT_CLOEXEC, attr);
    nsb_sys1(SYS_close, fsfd);
    return mfd;
#else
    (void)fstype;
    (void)source;
    (void)params;
    (void)attr;
    return -ENOSYS;
#endif
}

static long op_fsmount(struct child *c, const struct nsb_op *op)
{
    long mfd = nsb_fs_create(op->s3, op->s1, op->p, op->a), r;
    if (mfd < 0)
        return mfd;
    r = nsb_attach(c, op, (int)mfd);
    if (r >= 0 && op->c)
        r = nsb_setattr_fd((int)mfd, "", AT_EMPTY_PATH, 0, 0, op->c);
    nsb_sys1(SYS_close, mfd);
    return r;
}

static long nsb_clone_tree(struct child *c, const struct nsb_op *op)
{
#if NSB_HAS_NEW_MOUNT_API
    unsigned int flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
    if (op->flags & NSB_F_RECURSIVE)
        flags |= AT_RECURSIVE;
    if (op->reg >= 0 && op->reg < NSB_MAX_REGS && c->regs[op->reg] >= 0 && !op->s1) {
        /* a pre-opened detached tree: attach it as it is (kernels before 6.15
         * refuse to clone a detached tree again); it is used once */
        long fd = c->regs[op->reg];
        c->regs[op->reg] = -1;
        return fd;
    }
    return nsb_sys3(SYS_open_tree, AT_FDCWD, op->s1, flags);
#else
    (void)c;
    (void)op;
    return -ENOSYS;
#endif
}

static long op_bind(struct child *c, const struct nsb_op *op)
{
    long tree = nsb_clone_tree(c, op), r = 0;
    unsigned int rec = (op->flags & NSB_F_RECURSIVE) ? AT_RECURSIVE : 0;
    if (tree < 0)
        return tree;
    if (op->a || op->b)
        r = nsb_setattr_fd((int)tree, "", AT_EMPTY_PATH | rec, op->a, op->b, 0);
    if (r >= 0)
        r = nsb_attach(c, op, (int)tree);
    if (r >= 0 && op->c)
        r = nsb_setattr_fd((int)tree, "", AT_EMPTY_PATH | rec, 0, 0, op->c);
    if (r >= 0 && (op->flags & NSB_F_ROOT_REG)) {
        /* the attached tree's fd is the container root from now on */
        c->regs[0] = (int)tree;
        return 0;
    }
    nsb_sys1(SYS_close, tree);
    return r;
}

static long op_preopen(struct child *c, const struct nsb_op *op)
{
    long fd;
    if (op->reg < 0 || op->reg >= NSB_MAX_REGS)
        return -EINVAL;
#if NSB_HAS_NEW_MOUNT_API
    if (op->a == 0) /* a: 1 for a legacy O_PATH fd */
        fd = nsb_clone_tree(c, op);
    else
#endif
        fd = nsb_sys4(SYS_openat, AT_FDCWD, op->s1, O_PATH | O_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    c->regs[op->reg] = (int)fd;
    return 0;
}

static long op_mount(struct child *c, const struct nsb_op *op)
{
    const char *src = op->s1;
    char buf[40];
    if (!src && op->reg >= 0 && op->reg < NSB_MAX_REGS && c->regs[op->reg] >= 0) {
        /* a legacy bind from a pre-opened fd */
        nsb_memcpy(buf, "/proc/self/fd/", 14);
        nsb_utoa((unsigned long)c->regs[op->reg], buf + 14);
        src = buf;
    }
    return nsb_sys5(SYS_mount, src, op->s2, op->s3, op->a, op->p);
}

static long op_setattr(struct child *c, const struct nsb_op *op)
{
    long fd = nsb_open_path(c, op, op->s2, O_PATH), r;
    unsigned int rec = (op->flags & NSB_F_RECURSIVE) ? AT_RECURSIVE : 0;
    if (fd < 0)
        return fd;
    r = nsb_setattr_fd((int)fd, "", AT_EMPTY_PATH | rec, op->a, op->b, op->c);
    nsb_sys1(SYS_close, fd);
    return r;
}

/* Legacy remount of a bind mount: the flags the kernel locked (in a user
 * namespace: nosuid, nodev, noexec, atime) must be repeated or it says EPERM. */
static long op_remount(const struct nsb_op *op)
{
    struct statfs st;
    unsigned long keep = 0;
    long r = nsb_sys2(SYS_statfs, op->s2, &st);
    if (r < 0)
        return r;
    if (st.f_flags & ST_NOSUID)
        keep |= MS_NOSUID;
    if (st.f_flags & ST_NODEV)
        keep |= MS_NODEV;
    if (st.f_flags & ST_NOEXEC)
        keep |= MS_NOEXEC;
    if (st.f_flags & ST_NOATIME)
        keep |= MS_NOATIME;
    if (st.f_flags & ST_NODIRATIME)
        keep |= MS_NODIRATIME;
    if (st.f_flags & ST_RELATIME)
        keep |= MS_RELATIME;
    if (st.f_flags & ST_RDONLY)
        keep |= MS_RDONLY;
    return nsb_sys5(SYS_mount, 0, op->s2, 0, MS_REMOUNT | MS_BIND | keep | op->a, 0);
}

static long nsb_mount_devnull(struct child *c, const struct nsb_op *op)
{
#if NSB_HAS_NEW_MOUNT_API
    if (op->a == 0) {
        long tree = nsb_sys3(SYS_open_tree, AT_FDCWD, "/dev/null", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC), r;
        if (tree < 0)
            return tree;
        r = nsb_setattr_fd((int)tree, "", AT_EMPTY_PATH, MOUNT_ATTR_RDONLY, 0, 0);
        if (r >= 0)
            r = nsb_attach(c, op, (int)tree);
        nsb_sys1(SYS_close, tree);
        return r;
    }
#endif
    return nsb_sys5(SYS_mount, "/dev/null", op->s2, 0, MS_BIND, 0);
}

/* Hide a path: /dev/null over a file, an empty read-only tmpfs over a directory.
 * a: 1 for the legacy mount(2) way. */
static long op_mask(struct child *c, const struct nsb_op *op)
{
    struct stat st;
    long r = nsb_sys4(SYS_newfstatat, AT_FDCWD, op->s2, &st, 0);
    if (r < 0)
        return r;
    if (!S_ISDIR(st.st_mode))
        return nsb_mount_devnull(c, op);
#if NSB_HAS_NEW_MOUNT_API
    if (op->a == 0) {
        long mfd = nsb_fs_create("tmpfs", "tmpfs", 0, MOUNT_ATTR_RDONLY);
        if (mfd < 0)
            return mfd;
        r = nsb_attach(c, op, (int)mfd);
        nsb_sys1(SYS_close, mfd);
        return r;
    }
#endif
    return nsb_sys5(SYS_mount, "tmpfs", op->s2, "tmpfs", MS_RDONLY, 0);
}

/* Bind a path onto itself, read-only and recursive.  a: 1 for legacy. */
static long op_ropath(struct child *c, const struct nsb_op *op)
{
    long r;
#if NSB_HAS_NEW_MOUNT_API
    if (op->a == 0) {
        long tree = nsb_sys3(SYS_open_tree, AT_FDCWD, op->s2,
                             OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (tree < 0)
            return tree;
        r = nsb_setattr_fd((int)tree, "", AT_EMPTY_PATH | AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0, 0);
        if (r >= 0)
            r = nsb_attach(c, op, (int)tree);
        nsb_sys1(SYS_close, tree);
        return r;
    }
#endif
    (void)c;
    r = nsb_sys5(SYS_mount, op->s2, op->s2, 0, MS_BIND | MS_REC, 0);
    if (r < 0)
        return r;
    {
        struct nsb_op ro = *op;
        ro.a = MS_RDONLY;
        return op_remount(&ro);
    }
}

/* pivot_root into the container root: the "." "." form needs no directory for
 * the old root, which is then detached.  With NSB_F_FALLBACK, where the current
 * root cannot be pivoted (a ramfs root), move the new root over / and chroot. */
static long op_pivot(struct child *c, const struct nsb_op *op)
{
    long r;
    if (c->regs[0] >= 0)
        r = nsb_sys1(SYS_fchdir, c->regs[0]);
    else
        r = nsb_sys1(SYS_chdir, op->s2);
    if (r < 0)
        return r;
    r = nsb_sys2(SYS_pivot_root, ".", ".");
    if (r == -EINVAL && (op->flags & NSB_F_FALLBACK)) {
        r = nsb_sys5(SYS_mount, ".", "/", 0, MS_MOVE, 0);
        if (r < 0)
            return r;
        r = nsb_sys1(SYS_chroot, ".");
        if (r < 0)
            return r;
        return nsb_sys1(SYS_chdir, "/");
    }
    if (r < 0)
        return r;
    r = nsb_sys2(SYS_umount2, ".", MNT_DETACH);
    if (r < 0)
        return r;
    if (c->regs[0] >= 0) {
        nsb_sys1(SYS_close, c->regs[0]);
        c->regs[0] = -1;
    }
    return nsb_sys1(SYS_chdir, "/");
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

/* Capabilities: a is the set to keep, b the last capability of this kernel.
 * The bounding set is cut while CAP_SETPCAP is still effective; then the
 * effective, permitted and inheritable sets become a; with NSB_F_AMBIENT the
 * ambient set too (what a non-root user needs to keep them across exec). */
static long op_caps(const struct nsb_op *op)
{
    struct __user_cap_header_struct hdr;
    struct __user_cap_data_struct data[2];
    uint64_t keep = op->a, have;
    unsigned long cap;
    long r;

    nsb_memzero(&hdr, sizeof(hdr));
    nsb_memzero(data, sizeof(data));
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    r = nsb_sys2(SYS_capget, &hdr, data);
    if (r < 0)
        return r;
    have = (uint64_t)data[0].permitted | ((uint64_t)data[1].permitted << 32);
    data[0].effective = data[0].permitted;
    data[1].effective = data[1].permitted;
    r = nsb_sys2(SYS_capset, &hdr, data);
    if (r < 0)
        return r;
    for (cap = 0; cap <= op->b && cap < 64; cap++) {
        if (keep & (1ULL << cap))
            continue;
        r = nsb_sys5(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0);
        if (r < 0 && r != -EINVAL)
            return r;
    }
    keep &= have;
    data[0].effective = data[0].permitted = data[0].inheritable = (uint32_t)keep;
    data[1].effective = data[1].permitted = data[1].inheritable = (uint32_t)(keep >> 32);
    r = nsb_sys2(SYS_capset, &hdr, data);
    if (r < 0)
        return r;
    if (op->flags & NSB_F_AMBIENT) {
        r = nsb_sys5(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        if (r < 0)
            return r;
        for (cap = 0; cap <= op->b && cap < 64; cap++) {
            if (!(keep & (1ULL << cap)))
                continue;
            r = nsb_sys5(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

static long op_seccomp(const struct nsb_op *op)
{
    struct sock_fprog prog;
    prog.len = (unsigned short)op->a;
    prog.filter = (struct sock_filter *)(uintptr_t)op->p;
    return nsb_sys3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, op->b, &prog);
}

/* Second fork.  The middle process reports the new pid to the parent and exits;
 * the new process (our caller's child too, through CLONE_PARENT) goes on with
 * the ops after this one.  Needed where a namespace only applies to children:
 * a pid or time namespace unshared or joined above. */
static int nsb_resume(void *arg);

static long op_fork(struct child *c, int index)
{
    long pid;
    int slot = c->plan->ops[index].fd;
    int cgfd = slot >= 0 ? nsb_fd(c, slot) : -1;
    uint64_t flags = CLONE_PARENT | c->plan->ops[index].a;
    if (c->ctx->clone_vm) {
        /* the new process starts in nsb_resume on stack2 and copies *c first */
        c->resume = index + 1;
        pid = nsb_clone_vm(flags, 0, cgfd, c->ctx->legacy_clone, c->ctx->stack2,
                           c->ctx->stack2_size, nsb_resume, (void *)c);
    } else {
#if NSB_HAS_CLONE3
        if (!c->ctx->legacy_clone) {
            struct clone_args args;
            size_t size = CLONE_ARGS_SIZE_VER0;
            nsb_memzero(&args, sizeof(args));
            args.flags = flags; /* exit_signal 0: CLONE_PARENT takes ours */
            if (cgfd >= 0) {
                args.flags |= CLONE_INTO_CGROUP;
                args.cgroup = (__u64)(unsigned int)cgfd;
                size = CLONE_ARGS_SIZE_VER2;
            }
            pid = nsb_sys2(SYS_clone3, &args, size);
        } else
#endif
            pid = nsb_sys5(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    }
    if (pid < 0)
        return pid;
    if (pid == 0)
        return 0; /* fork mode: the new process continues here */
    nsb_send(c->sync_fd, NSB_MSG_PID, 0, index, 0, pid);
    nsb_exit(0);
}

static long op_sync(struct child *c, const struct nsb_op *op)
{
    struct nsb_msg m;
    long r;
    nsb_send(c->sync_fd, NSB_MSG_SYNC, 0, 0, 0, (int64_t)op->a);
    r = NSB_RETRY(nsb_sys6(SYS_recvfrom, c->sync_fd, (long)&m, sizeof(m), 0, 0, 0));
    if (r < 0)
        return r;
    if (r != (long)sizeof(m) || m.type != NSB_MSG_GO || m.val != (int64_t)op->a)
        nsb_exit(127); /* the parent gave up: it reports its own error */
    return 0;
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

static long nsb_close_from(int lo, int hi)
{
    long r;
    if (lo > hi)
        return 0;
#if NSB_HAS_CLOSE_RANGE
    r = nsb_sys3(SYS_close_range, lo, hi, 0);
    if (r != -ENOSYS)
        return r;
#endif
    {
        struct rlimit lim;
        long fd, max;
        r = nsb_sys4(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, &lim);
        max = (r < 0 || lim.rlim_cur > 65536) ? 65536 : (long)lim.rlim_cur;
        for (fd = lo; fd <= hi && fd < max; fd++)
            nsb_sys1(SYS_close, fd);
    }
    return 0;
}

/* stdio from slots 0-2 (-1: leave as is), keep the a fds listed in p, move the
 * sync socket to fd b when b >= 0 (the init inherits it), close everything else. */
static long op_fds(struct child *c, const struct nsb_op *op)
{
    const int32_t *pass = op->p;
    int keep[NSB_MAX_FDS + 8];
    int nkeep = 0, i, j, lo;
    long r;
    int want_sync = (int)(int64_t)op->b;

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
    }
    for (i = 0; i < 3; i++)
        keep[nkeep++] = i;
    for (i = 0; i < (int)op->a && nkeep < NSB_MAX_FDS; i++) {
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
    if (op->fd >= 0)
        keep[nkeep++] = nsb_fd(c, op->fd); /* the init's executable, for execveat */
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
        r = nsb_close_from(lo, keep[i] - 1);
        if (r < 0)
            return r;
        lo = keep[i] + 1;
    }
    return nsb_close_from(lo, INT_MAX);
}

/* ---- exec --------------------------------------------------------------- */

static long op_exec(struct child *c, const struct nsb_op *op)
{
    char *const *argv = (char *const *)op->p;
    char *const *envp = (char *const *)op->q;
    long r, err = -ENOENT;
    const char *dir;
    char buf[NSB_PATH_MAX];
    size_t nlen;

    /* the caller's mask; handlers are default since nsb_reset_signals */
    nsb_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &c->ctx->oldmask, 0, 8);
    if (op->fd >= 0) {
        r = nsb_sys5(SYS_execveat, nsb_fd(c, op->fd), "", argv, envp, AT_EMPTY_PATH);
        return r;
    }
    if (!(op->flags & NSB_F_SEARCH_PATH))
        return nsb_sys3(SYS_execve, op->s1, argv, envp);
    /* search PATH (s2) the way execvp does: ENOENT unless some candidate was
     * found but refused (EACCES), any other error stops the search */
    nlen = nsb_strlen(op->s1);
    dir = op->s2;
    for (;;) {
        const char *end = dir;
        size_t dlen;
        while (*end && *end != ':')
            end++;
        dlen = (size_t)(end - dir);
        if (dlen + 1 + nlen + 1 <= sizeof(buf)) {
            if (dlen == 0) {
                buf[0] = '.';
                dlen = 1;
            } else {
                nsb_memcpy(buf, dir, dlen);
            }
            buf[dlen] = '/';
            nsb_memcpy(buf + dlen + 1, op->s1, nlen + 1);
            r = nsb_sys3(SYS_execve, buf, argv, envp);
            if (r == -EACCES)
                err = r;
            else if (r != -ENOENT && r != -ENOTDIR && r != -ESTALE && r != -ENAMETOOLONG)
                return r;
        }
        if (!*end)
            break;
        dir = end + 1;
    }
    return err;
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
            return fd < -1 ? fd : -EBADF;
        r = nsb_sys2(SYS_setns, fd, op->a);
        if (op->fd < 0)
            nsb_sys1(SYS_close, fd);
        return r;
    }
    case NSB_OP_UNSHARE:
        return nsb_sys1(SYS_unshare, op->a);
    case NSB_OP_SYNC:
        return op_sync(c, op);
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
        return op_remount(op);
    case NSB_OP_MKDIRS:
        return nsb_mkdirs(c, op, op->s2, (long)op->a);
    case NSB_OP_MKFILE: {
        char dir[NSB_PATH_MAX];
        const char *base;
        long dfd = nsb_open_parent(c, op, op->s2, dir, &base), fd;
        if (dfd < 0)
            return dfd;
        fd = nsb_sys4(SYS_openat, dfd, base, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
        nsb_sys1(SYS_close, dfd);
        if (fd == -ELOOP || fd == -EISDIR) /* something is there already: mount over it */
            return 0;
        if (fd < 0)
            return fd;
        nsb_sys1(SYS_close, fd);
        return 0;
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
    case NSB_OP_CHROOT:
        r = nsb_sys1(SYS_chroot, op->s2);
        return r < 0 ? r : nsb_sys1(SYS_chdir, "/");
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
        struct rlimit lim;
        lim.rlim_cur = op->b;
        lim.rlim_max = op->c;
        return nsb_sys4(SYS_prlimit64, 0, op->a, &lim, 0);
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
        return op_seccomp(op);
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
    int i;
    /* The child has a copy of the parent's end of the socket: close it, or the
     * child would never see the parent go away (no EOF while it holds one) */
    nsb_sys1(SYS_close, ctx->parent_fd);
    c.ctx = ctx;
    c.plan = ctx->plan;
    c.sync_fd = ctx->sync_fd;
    c.nfds = ctx->nfds;
    for (i = 0; i < ctx->nfds; i++)
        c.fds[i] = ctx->fds[i];
    for (i = 0; i < NSB_MAX_REGS; i++)
        c.regs[i] = -1;
    if (!ctx->sighand_clear)
        nsb_reset_signals();
    /* Python ignores SIGPIPE and SIGXFSZ; like subprocess (restore_signals),
     * give the container their defaults, which exec would keep ignored */
    nsb_signal_default(SIGPIPE);
    nsb_signal_default(SIGXFSZ);
    nsb_walk(&c, start);
}

/* Entry of a CLONE_VM child (spawn.c passes the parent's ctx). */
int nsb_child_entry(void *arg)
{
    nsb_child_run((const struct nsb_ctx *)arg, 0);
}

/* The process of a second fork in CLONE_VM mode starts here, on its own stack,
 * with arg pointing at the middle process's struct child, which stays mapped
 * until the parent has seen this process exec or die: copy it and go on. */
static int nsb_resume(void *arg)
{
    struct child c;
    nsb_memcpy(&c, arg, sizeof(c));
    nsb_walk(&c, c.resume);
}
