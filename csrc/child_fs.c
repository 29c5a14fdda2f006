/* child_fs.c - the child's filesystem ops: paths resolved inside the container
 * root, mounts with the new mount API or mount(2), pivot_root, masked and
 * read-only paths.  The rules of child.c hold here too (see its header).
 *
 * Every path inside the rootfs is resolved once, into an O_PATH fd, and the op
 * acts through that fd (move_mount to it, mount(2) onto /proc/self/fd/N, mkdirat
 * and mknodat under it): a container that shares the rootfs cannot redirect an
 * op by swapping a symlink between a check and a use.  Paths are resolved with
 * openat2(RESOLVE_IN_ROOT) or, where openat2 is missing (the legacy mount mode),
 * by nsb_walk below, which gives the same answer one component at a time.
 */
#include "child.h"

/* ---- paths ------------------------------------------------------------- */

#define NSB_WALK_DEPTH 128
#define NSB_MAX_LINKS 40

static void nsb_memmove(char *dst, const char *src, size_t n)
{
    volatile char *d = dst;
    if (dst < src) {
        while (n--)
            *d++ = *src++;
    } else {
        while (n--)
            d[n] = src[n];
    }
}

static void nsb_close_all(int *stack, int depth)
{
    while (depth > 0)
        nsb_sys1(SYS_close, stack[--depth]);
}

/* Resolve `path` from the directory fd `base`, one component at a time with
 * O_NOFOLLOW, as openat2 does: symlinks are read and their text walked in
 * turn (an absolute one from `base` again), ".." never climbs above `base`.
 * With `beneath`, an absolute symlink or a ".." at `base` is an error (EXDEV)
 * instead.  ".." is taken lexically (the stack of fds opened so far), never by
 * asking the kernel for a parent, so a directory moved meanwhile cannot lead
 * out.  Returns an O_PATH fd. */
static long nsb_walk(int base, const char *path, int beneath, int nosymlinks)
{
    char buf[2 * NSB_PATH_MAX];
    char name[256];
    int stack[NSB_WALK_DEPTH];
    int depth = 0, links = 0;
    size_t len = nsb_strlen(path), pos = 0;
    long r;

    if (len >= sizeof(buf))
        return -ENAMETOOLONG;
    nsb_memcpy(buf, path, len + 1);
    for (;;) {
        size_t start, clen;
        int cur = depth ? stack[depth - 1] : base;
        struct stat st;
        long fd;

        while (buf[pos] == '/')
            pos++;
        if (!buf[pos])
            break;
        start = pos;
        while (buf[pos] && buf[pos] != '/')
            pos++;
        clen = pos - start;
        if (clen == 1 && buf[start] == '.')
            continue;
        if (clen == 2 && buf[start] == '.' && buf[start + 1] == '.') {
            if (depth > 0)
                nsb_sys1(SYS_close, stack[--depth]);
            else if (beneath)
                return -EXDEV;
            continue;
        }
        if (clen >= sizeof(name)) {
            nsb_close_all(stack, depth);
            return -ENAMETOOLONG;
        }
        nsb_memcpy(name, buf + start, clen);
        name[clen] = '\0';
        fd = NSB_RETRY(nsb_sys4(SYS_openat, cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0));
        if (fd < 0) {
            nsb_close_all(stack, depth);
            return fd;
        }
        r = nsb_sys4(SYS_newfstatat, fd, "", &st, AT_EMPTY_PATH);
        if (r < 0) {
            nsb_sys1(SYS_close, fd);
            nsb_close_all(stack, depth);
            return r;
        }
        if (S_ISLNK(st.st_mode) && nosymlinks) {
            nsb_sys1(SYS_close, fd);
            nsb_close_all(stack, depth);
            return -ELOOP;
        }
        if (S_ISLNK(st.st_mode)) {
            char link[NSB_PATH_MAX];
            size_t rest = nsb_strlen(buf + pos);
            long n = nsb_sys4(SYS_readlinkat, fd, "", link, sizeof(link));
            nsb_sys1(SYS_close, fd);
            if (n >= (long)sizeof(link))
                n = -ENAMETOOLONG; /* (readlink cuts what does not fit) */
            else if (n == 0)
                n = -ENOENT; /* an empty link leads nowhere, as the kernel says */
            else if (n > 0 && ++links > NSB_MAX_LINKS)
                n = -ELOOP;
            else if (n > 0 && (size_t)n + 1 + rest + 1 > sizeof(buf))
                n = -ENAMETOOLONG;
            if (n < 0) {
                nsb_close_all(stack, depth);
                return n;
            }
            if (link[0] == '/') {
                if (beneath) {
                    nsb_close_all(stack, depth);
                    return -EXDEV;
                }
                nsb_close_all(stack, depth);
                depth = 0;
            }
            /* what is left becomes: the link's text, then the rest */
            nsb_memmove(buf + n + 1, buf + pos, rest + 1);
            nsb_memcpy(buf, link, (size_t)n);
            buf[n] = '/';
            pos = 0;
            continue;
        }
        if (depth == NSB_WALK_DEPTH) {
            nsb_sys1(SYS_close, fd);
            nsb_close_all(stack, depth);
            return -ENAMETOOLONG;
        }
        stack[depth++] = (int)fd;
    }
    if (depth == 0)
        return NSB_RETRY(nsb_sys4(SYS_openat, base, ".", O_PATH | O_CLOEXEC, 0));
    r = stack[--depth];
    nsb_close_all(stack, depth);
    return r;
}

/* Open `path` as O_PATH, resolved as the op says:
 *   NSB_F_BENEATH: from register op->reg, never leaving it (a mount of ours);
 *   NSB_F_IN_ROOT: inside the container root (register 0), every symlink and
 *                  ".." kept within it;
 *   neither:       from the current root (the host's before pivot_root).
 * `flags` may add O_DIRECTORY (checked) to O_PATH; without a resolution mode
 * it may be any open flags (a /proc file of the child itself). */
long nsb_open_path(struct child *c, const struct nsb_op *op, const char *path, int flags)
{
    int base = -1, beneath = 0;
    if (op->flags & NSB_F_BENEATH) {
        if (op->reg < 0 || op->reg >= NSB_MAX_REGS || c->regs[op->reg] < 0)
            return -EBADF; /* never resolved from anywhere else */
        base = c->regs[op->reg];
        beneath = 1;
    } else if ((op->flags & NSB_F_IN_ROOT) && c->regs[0] >= 0) {
        /* (after pivot_root the registers are closed, and "/" is the root) */
        base = c->regs[0];
    }
    if (base < 0)
        return NSB_RETRY(nsb_sys4(SYS_openat, AT_FDCWD, path, O_CLOEXEC | flags, 0644));
    if (c->plan->flags & NSB_PLAN_NO_OPENAT2) {
        long fd = nsb_walk(base, path, beneath, 0);
        if (fd >= 0 && (flags & O_DIRECTORY)) {
            struct stat st;
            long r = nsb_sys4(SYS_newfstatat, fd, "", &st, AT_EMPTY_PATH);
            if (r < 0 || !S_ISDIR(st.st_mode)) {
                nsb_sys1(SYS_close, fd);
                return r < 0 ? r : -ENOTDIR;
            }
        }
        return fd;
    }
#if NSB_HAS_OPENAT2
    {
        struct open_how how;
        nsb_memzero(&how, sizeof(how));
        how.flags = (__u64)(O_CLOEXEC | O_PATH | (flags & O_DIRECTORY));
        how.resolve = (beneath ? RESOLVE_BENEATH : RESOLVE_IN_ROOT) | RESOLVE_NO_MAGICLINKS;
        return NSB_RETRY(nsb_sys4(SYS_openat2, base, path[0] ? path : ".", &how, sizeof(how)));
    }
#else
    return -ENOSYS;
#endif
}

/* A host path that must hold no symlink (NSB_F_SRC_NOSYMLINKS): the plan took
 * its canonical form, so a symlink now means someone swapped one in (a
 * container that can write there, pointing another's rootfs at /): refuse. */
static long nsb_open_host(struct child *c, const char *path)
{
    if (c->plan->flags & NSB_PLAN_NO_OPENAT2) {
        long root = nsb_sys4(SYS_openat, AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC, 0), fd;
        if (root < 0)
            return root;
        fd = nsb_walk((int)root, path, 0, 1);
        nsb_sys1(SYS_close, root);
        return fd;
    }
#if NSB_HAS_OPENAT2
    {
        struct open_how how;
        nsb_memzero(&how, sizeof(how));
        how.flags = (__u64)(O_CLOEXEC | O_PATH);
        how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        return NSB_RETRY(nsb_sys4(SYS_openat2, AT_FDCWD, path, &how, sizeof(how)));
    }
#else
    return -ENOSYS;
#endif
}

/* "/proc/self/fd/N": how mount(2) is pointed at an fd we resolved.  buf has
 * room for 14 + 20 digits + NUL (every caller's has 40 bytes). */
static void nsb_fd_path(char *buf, long fd)
{
    nsb_memcpy(buf, "/proc/self/fd/", 14);
    nsb_utoa((unsigned long)fd, buf + 14);
}

/* Split path into its directory (copied into dir, NSB_PATH_MAX bytes) and its
 * last component (*base, in path).  -ENAMETOOLONG when path does not fit. */
static long nsb_split(const char *path, char *dir, const char **base)
{
    size_t n = nsb_strlen(path), i, slash = (size_t)-1;
    if (n >= NSB_PATH_MAX)
        return -ENAMETOOLONG;
    for (i = 0; i < n; i++)
        if (path[i] == '/')
            slash = i;
    if (slash == (size_t)-1) {
        dir[0] = '\0';
        *base = path;
        return 0;
    }
    nsb_memcpy(dir, path, slash);
    dir[slash] = '\0';
    if (slash == 0 && path[0] == '/') {
        dir[0] = '/';
        dir[1] = '\0';
    }
    *base = path + slash + 1;
    return 0;
}

static const char *nsb_dir_or_top(const struct nsb_op *op, const char *dir)
{
    if (dir[0])
        return dir;
    return (op->flags & (NSB_F_IN_ROOT | NSB_F_BENEATH)) ? "" : ".";
}

/* mkdir -p, one component at a time, each parent resolved as nsb_open_path does. */
long nsb_mkdirs(struct child *c, const struct nsb_op *op, const char *path, long mode)
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
        r = nsb_split(buf, dir, &base); /* cannot fail: buf is shorter than NSB_PATH_MAX */
        if (r < 0)
            return r;
        if (base[0] && !(base[0] == '.' && (!base[1] || (base[1] == '.' && !base[2])))) {
            dfd = nsb_open_path(c, op, nsb_dir_or_top(op, dir), O_PATH | O_DIRECTORY);
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
long nsb_open_parent(struct child *c, const struct nsb_op *op, const char *path, char *dir,
                     const char **base)
{
    long r = nsb_split(path, dir, base);
    if (r < 0)
        return r;
    if (!(*base)[0])
        return -EINVAL; /* a path that ends in "/" names no entry to make */
    if (dir[0]) {
        r = nsb_mkdirs(c, op, dir, 0755);
        if (r < 0)
            return r;
    }
    return nsb_open_path(c, op, nsb_dir_or_top(op, dir), O_PATH | O_DIRECTORY);
}

/* ---- mounts ------------------------------------------------------------- */

static long nsb_move_to(int mfd, int tfd)
{
#if NSB_HAS_NEW_MOUNT_API
    return nsb_sys5(SYS_move_mount, mfd, "", tfd, "",
                    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
#else
    (void)mfd;
    (void)tfd;
    return -ENOSYS;
#endif
}

static long nsb_attach(struct child *c, const struct nsb_op *op, int mfd)
{
    long tfd = nsb_open_path(c, op, op->s2, O_PATH), r;
    if (tfd < 0)
        return tfd;
    r = nsb_move_to(mfd, (int)tfd);
    nsb_sys1(SYS_close, tfd);
    return r;
}

static long nsb_setattr_fd(int fd, const char *path, unsigned int flags, uint64_t set, uint64_t clr,
                           uint64_t prop)
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

/* Keep fd in register `out` (closing what was there), or close it when out is
 * -1.  -EBADF (fd closed) for a register the table does not have. */
long nsb_keep(struct child *c, int out, long fd)
{
    if (out < 0 || out >= NSB_MAX_REGS) {
        nsb_sys1(SYS_close, fd);
        return out < 0 ? 0 : -EBADF;
    }
    if (c->regs[out] >= 0)
        nsb_sys1(SYS_close, c->regs[out]);
    c->regs[out] = (int)fd;
    return 0;
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

/* A new filesystem at s2; its mount fd is kept in register `out` when asked
 * (masked paths under it are then resolved from it, never by path again). */
long op_fsmount(struct child *c, const struct nsb_op *op)
{
    long mfd = nsb_fs_create(op->s3, op->s1, op->p, op->a), r;
    if (mfd < 0)
        return mfd;
    r = nsb_attach(c, op, (int)mfd);
    if (r >= 0 && op->c)
        r = nsb_setattr_fd((int)mfd, "", AT_EMPTY_PATH, 0, 0, op->c);
    if (r < 0) {
        nsb_sys1(SYS_close, mfd);
        return r;
    }
    return nsb_keep(c, op->out, mfd);
}

static long nsb_clone_tree(struct child *c, const struct nsb_op *op)
{
#if NSB_HAS_NEW_MOUNT_API
    unsigned int flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
    if (op->flags & NSB_F_RECURSIVE)
        flags |= AT_RECURSIVE;
    if (!op->s1) {
        /* a pre-opened detached tree, register reg: attach it as it is (kernels
         * before 6.15 refuse to clone a detached tree again); it is used once */
        long fd;
        if (op->reg < 0 || op->reg >= NSB_MAX_REGS || c->regs[op->reg] < 0)
            return -EBADF;
        fd = c->regs[op->reg];
        c->regs[op->reg] = -1;
        return fd;
    }
    if (op->flags & (NSB_F_SRC_IN_ROOT | NSB_F_SRC_NOSYMLINKS)) {
        struct nsb_op src = *op;
        long sfd, tree;
        src.flags = NSB_F_IN_ROOT;
        sfd = (op->flags & NSB_F_SRC_NOSYMLINKS) ? nsb_open_host(c, op->s1)
                                                 : nsb_open_path(c, &src, op->s1, O_PATH);
        if (sfd < 0)
            return sfd;
        tree = nsb_sys3(SYS_open_tree, sfd, "", flags | AT_EMPTY_PATH);
        nsb_sys1(SYS_close, sfd);
        return tree;
    }
    return nsb_sys3(SYS_open_tree, AT_FDCWD, op->s1, flags);
#else
    (void)c;
    (void)op;
    return -ENOSYS;
#endif
}

long op_bind(struct child *c, const struct nsb_op *op)
{
    long tree = nsb_clone_tree(c, op), r = 0;
    unsigned int rec = (op->flags & NSB_F_RECURSIVE) ? AT_RECURSIVE : 0;
    if (tree < 0)
        return tree;
    if (op->a || op->b)
        r = nsb_setattr_fd((int)tree, "", AT_EMPTY_PATH | rec, op->a, op->b, 0);
    if (r >= 0 && (op->flags & NSB_F_ROOT_REG) && (op->flags & NSB_F_SRC_NOSYMLINKS)) {
        /* the rootfs onto itself: the target is the source, resolved alike */
        long tfd = nsb_open_host(c, op->s2);
        r = tfd;
        if (tfd >= 0) {
            r = nsb_move_to((int)tree, (int)tfd);
            nsb_sys1(SYS_close, tfd);
        }
    } else if (r >= 0) {
        r = nsb_attach(c, op, (int)tree);
    }
    if (r >= 0 && op->c)
        r = nsb_setattr_fd((int)tree, "", AT_EMPTY_PATH | rec, 0, 0, op->c);
    if (r >= 0 && (op->flags & NSB_F_ROOT_REG))
        return nsb_keep(c, 0, tree); /* the container root from now on */
    if (r >= 0 && op->out >= 0)
        return nsb_keep(c, op->out, tree);
    nsb_sys1(SYS_close, tree);
    return r;
}

/* Open a host path before anything is mounted over it: a detached clone of its
 * mount (new mount API), or an O_PATH fd (NSB_F_LEGACY).  With NSB_F_IN_ROOT the
 * path is inside the container root (an O_PATH fd of a directory, what a copy-up
 * reads once its tmpfs hides it). */
long op_preopen(struct child *c, const struct nsb_op *op)
{
    long fd;
    int reg = op->out;
    if (reg < 0 || reg >= NSB_MAX_REGS)
        return -EINVAL;
    if (op->flags & NSB_F_IN_ROOT)
        fd = nsb_open_path(c, op, op->s1, O_PATH | O_DIRECTORY);
    else if (!(op->flags & NSB_F_LEGACY))
        fd = nsb_clone_tree(c, op); /* -ENOSYS without the new mount API */
    else if (op->flags & NSB_F_SRC_NOSYMLINKS)
        fd = nsb_open_host(c, op->s1);
    else
        fd = nsb_sys4(SYS_openat, AT_FDCWD, op->s1, O_PATH | O_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    return nsb_keep(c, reg, fd);
}

/* mount(2).  A target inside the root is resolved first and the mount is made
 * on /proc/self/fd/N (the object resolved, whatever its path becomes); so is a
 * bind source inside the root (NSB_F_SRC_IN_ROOT), or a pre-opened register. */
long op_mount(struct child *c, const struct nsb_op *op)
{
    const char *src = op->s1, *dst = op->s2;
    char sbuf[40], tbuf[40];
    long sfd = -1, tfd = -1, r;
    if (!src && op->reg >= 0) {
        /* a pre-opened source, register reg */
        if (op->reg >= NSB_MAX_REGS || c->regs[op->reg] < 0)
            return -EBADF;
        nsb_fd_path(sbuf, c->regs[op->reg]);
        src = sbuf;
    } else if (src && (op->flags & NSB_F_SRC_IN_ROOT)) {
        struct nsb_op s = *op;
        s.flags = NSB_F_IN_ROOT;
        sfd = nsb_open_path(c, &s, src, O_PATH);
        if (sfd < 0)
            return sfd;
        nsb_fd_path(sbuf, sfd);
        src = sbuf;
    } else if (src && (op->flags & NSB_F_SRC_NOSYMLINKS)) {
        sfd = nsb_open_host(c, src);
        if (sfd < 0)
            return sfd;
        nsb_fd_path(sbuf, sfd);
        src = sbuf;
    }
    if ((op->flags & NSB_F_ROOT_REG) && sfd >= 0) {
        dst = sbuf; /* the rootfs onto itself: the object just resolved */
    } else if (op->flags & (NSB_F_IN_ROOT | NSB_F_BENEATH)) {
        tfd = nsb_open_path(c, op, dst, O_PATH);
        if (tfd < 0) {
            if (sfd >= 0)
                nsb_sys1(SYS_close, sfd);
            return tfd;
        }
        nsb_fd_path(tbuf, tfd);
        dst = tbuf;
    }
    r = nsb_sys5(SYS_mount, src, dst, op->s3, op->a, op->p);
    if (sfd >= 0)
        nsb_sys1(SYS_close, sfd);
    if (tfd >= 0)
        nsb_sys1(SYS_close, tfd);
    if (r < 0)
        return r;
    if (op->flags & NSB_F_ROOT_REG) {
        /* the rootfs, bound onto itself: walked again, it is the new mount */
        long fd = (op->flags & NSB_F_SRC_NOSYMLINKS)
                      ? nsb_open_host(c, op->s2)
                      : nsb_sys4(SYS_openat, AT_FDCWD, op->s2, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
        if (fd < 0)
            return fd;
        return nsb_keep(c, 0, fd);
    } else if (op->out >= 0) {
        /* the new mount's root: the same path, walked again, crosses into it */
        long fd = nsb_open_path(c, op, op->s2, O_PATH);
        if (fd < 0)
            return fd;
        return nsb_keep(c, op->out, fd);
    }
    return 0;
}

long op_setattr(struct child *c, const struct nsb_op *op)
{
    long fd = nsb_open_path(c, op, op->s2, O_PATH), r;
    unsigned int rec = (op->flags & NSB_F_RECURSIVE) ? AT_RECURSIVE : 0;
    if (fd < 0)
        return fd;
    r = nsb_setattr_fd((int)fd, "", AT_EMPTY_PATH | rec, op->a, op->b, op->c);
    nsb_sys1(SYS_close, fd);
    return r;
}

/* Legacy remount of the bind mount at fd: the flags the kernel locked (in a
 * user namespace: nosuid, nodev, noexec, atime) must be repeated or it says
 * EPERM.  `path` is how mount(2) reaches it. */
static long nsb_remount_fd(long fd, const char *path, unsigned long add)
{
    struct statfs st;
    unsigned long keep = 0;
    long r = nsb_sys2(SYS_fstatfs, fd, &st);
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
    return nsb_sys5(SYS_mount, 0, path, 0, MS_REMOUNT | MS_BIND | keep | add, 0);
}

long op_remount(struct child *c, const struct nsb_op *op)
{
    char buf[40];
    const char *path = op->s2;
    long fd = nsb_open_path(c, op, op->s2, O_PATH), r;
    if (fd < 0)
        return fd;
    if (op->flags & (NSB_F_IN_ROOT | NSB_F_BENEATH)) {
        nsb_fd_path(buf, fd);
        path = buf;
    }
    r = nsb_remount_fd(fd, path, (unsigned long)op->a);
    nsb_sys1(SYS_close, fd);
    return r;
}

/* The path of a MASK or ROPATH op, resolved once, and checked to be on the
 * filesystem the plan expects (c: its magic number, 0 for any). */
static long nsb_mask_target(struct child *c, const struct nsb_op *op, struct stat *st)
{
    long fd = nsb_open_path(c, op, op->s2, O_PATH), r;
    if (fd < 0)
        return fd;
    r = nsb_sys4(SYS_newfstatat, fd, "", st, AT_EMPTY_PATH);
    if (r >= 0 && op->c) {
        struct statfs sfs;
        r = nsb_sys2(SYS_fstatfs, fd, &sfs);
        if (r >= 0 && (uint64_t)sfs.f_type != op->c)
            r = -EXDEV; /* not where the plan put its filesystem: refuse */
    }
    if (r < 0) {
        nsb_sys1(SYS_close, fd);
        return r;
    }
    return fd;
}

/* Hide a path: the /dev/null pre-opened in register b over a file (never the
 * container's own), an empty read-only tmpfs over a directory; with mount(2) when
 * NSB_F_LEGACY. */
long op_mask(struct child *c, const struct nsb_op *op)
{
    struct stat st;
    char tbuf[40], sbuf[40];
    long fd = nsb_mask_target(c, op, &st), r;
    int null = (op->b < NSB_MAX_REGS) ? c->regs[op->b] : -1;
    if (fd < 0)
        return fd;
    nsb_fd_path(tbuf, fd);
    if (S_ISDIR(st.st_mode)) {
#if NSB_HAS_NEW_MOUNT_API
        if (!(op->flags & NSB_F_LEGACY)) {
            long mfd = nsb_fs_create("tmpfs", "tmpfs", 0, MOUNT_ATTR_RDONLY);
            r = mfd;
            if (mfd >= 0) {
                r = nsb_move_to((int)mfd, (int)fd);
                nsb_sys1(SYS_close, mfd);
            }
            nsb_sys1(SYS_close, fd);
            return r;
        }
#endif
        r = nsb_sys5(SYS_mount, "tmpfs", tbuf, "tmpfs", MS_RDONLY, 0);
        nsb_sys1(SYS_close, fd);
        return r;
    }
    if (null < 0) {
        nsb_sys1(SYS_close, fd);
        return -EBADF;
    }
#if NSB_HAS_NEW_MOUNT_API
    if (!(op->flags & NSB_F_LEGACY)) {
        long tree =
            nsb_sys3(SYS_open_tree, null, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        r = tree;
        if (tree >= 0) {
            r = nsb_setattr_fd((int)tree, "", AT_EMPTY_PATH, MOUNT_ATTR_RDONLY, 0, 0);
            if (r >= 0)
                r = nsb_move_to((int)tree, (int)fd);
            nsb_sys1(SYS_close, tree);
        }
        nsb_sys1(SYS_close, fd);
        return r;
    }
#endif
    nsb_fd_path(sbuf, null);
    r = nsb_sys5(SYS_mount, sbuf, tbuf, 0, MS_BIND, 0);
    nsb_sys1(SYS_close, fd);
    return r;
}

/* Bind a path onto itself, read-only and recursive (NSB_F_LEGACY: with mount(2)). */
long op_ropath(struct child *c, const struct nsb_op *op)
{
    struct stat st;
    char tbuf[40];
    long fd = nsb_mask_target(c, op, &st), r;
    if (fd < 0)
        return fd;
#if NSB_HAS_NEW_MOUNT_API
    if (!(op->flags & NSB_F_LEGACY)) {
        long tree = nsb_sys3(SYS_open_tree, fd, "",
                             OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
        r = tree;
        if (tree >= 0) {
            r = nsb_setattr_fd((int)tree, "", AT_EMPTY_PATH | AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0,
                               0);
            if (r >= 0)
                r = nsb_move_to((int)tree, (int)fd);
            nsb_sys1(SYS_close, tree);
        }
        nsb_sys1(SYS_close, fd);
        return r;
    }
#endif
    nsb_fd_path(tbuf, fd);
    r = nsb_sys5(SYS_mount, tbuf, tbuf, 0, MS_BIND | MS_REC, 0);
    nsb_sys1(SYS_close, fd);
    if (r < 0)
        return r;
    /* the new bind is on top now: walk to it again, check it, remount it */
    fd = nsb_mask_target(c, op, &st);
    if (fd < 0)
        return fd;
    nsb_fd_path(tbuf, fd);
    r = nsb_remount_fd(fd, tbuf, MS_RDONLY);
    nsb_sys1(SYS_close, fd);
    return r;
}

/* pivot_root into the container root: the "." "." form needs no directory for
 * the old root, which is then detached.  With NSB_F_FALLBACK, where the current
 * root cannot be pivoted (a ramfs root), move the new root over / and chroot. */
long op_pivot(struct child *c, const struct nsb_op *op)
{
    long r;
    int i;
    if (c->regs[0] >= 0)
        r = nsb_sys1(SYS_fchdir, c->regs[0]);
    else
        r = nsb_sys1(SYS_chdir, op->s2);
    if (r < 0)
        return r;
    r = nsb_sys2(SYS_pivot_root, ".", ".");
    if (r == -EINVAL && (op->flags & NSB_F_FALLBACK)) {
        r = nsb_sys5(SYS_mount, ".", "/", 0, MS_MOVE, 0);
        if (r >= 0)
            r = nsb_sys1(SYS_chroot, ".");
    } else if (r >= 0) {
        r = nsb_sys2(SYS_umount2, ".", MNT_DETACH);
    }
    if (r < 0)
        return r;
    /* every register refers to the old tree: none may follow the container */
    for (i = 0; i < NSB_MAX_REGS; i++) {
        if (c->regs[i] >= 0) {
            nsb_sys1(SYS_close, c->regs[i]);
            c->regs[i] = -1;
        }
    }
    return nsb_sys1(SYS_chdir, "/");
}

/* ---- sysctl ------------------------------------------------------------ */

/* Write s1 into s2, a file of the container's proc resolved beneath register
 * reg (never leaving that mount), checked to be on proc (c: its magic), then
 * opened for writing through its O_PATH fd.  What a sysctl file governs is the
 * writer's namespace (net, ipc, uts, user): this process is in the container's. */
long op_sysctl(struct child *c, const struct nsb_op *op)
{
    struct statfs sfs;
    char buf[40];
    size_t n = nsb_strlen(op->s1);
    long fd = nsb_open_path(c, op, op->s2, O_PATH), wfd, r;
    if (fd < 0)
        return fd;
    r = nsb_sys2(SYS_fstatfs, fd, &sfs);
    if (r >= 0 && (uint64_t)sfs.f_type != op->c)
        r = -EXDEV; /* not the proc the plan mounted: refuse */
    if (r < 0) {
        nsb_sys1(SYS_close, fd);
        return r;
    }
    nsb_fd_path(buf, fd);
    wfd = NSB_RETRY(nsb_sys4(SYS_openat, AT_FDCWD, buf, O_WRONLY | O_CLOEXEC, 0));
    nsb_sys1(SYS_close, fd);
    if (wfd < 0)
        return wfd;
    r = NSB_RETRY(nsb_sys3(SYS_write, wfd, op->s1, n));
    nsb_sys1(SYS_close, wfd);
    if (r >= 0 && (size_t)r != n)
        return -EIO;
    return r < 0 ? r : 0;
}

/* ---- copy-up ----------------------------------------------------------- */

struct nsb_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* The owner, the mode (after the owner: chown clears set-id bits) and the times
 * of a copied entry, by fd (fd >= 0) or by name in dfd (a symlink: no mode).  An
 * owner the container's user namespace does not map (EINVAL) stays the
 * creator's (its root): the source shows it as the overflow id, which nobody in
 * the container is. */
static long nsb_copy_meta(int fd, int dfd, const char *name, const struct stat *st)
{
    struct timespec ts[2];
    long r;
    int link = S_ISLNK(st->st_mode);
    if (fd >= 0)
        r = nsb_sys3(SYS_fchown, fd, st->st_uid, st->st_gid);
    else
        r = nsb_sys5(SYS_fchownat, dfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW);
    if (r < 0 && r != -EINVAL)
        return r;
    if (!link) {
        if (fd >= 0)
            r = nsb_sys2(SYS_fchmod, fd, st->st_mode & 07777);
        else
            r = nsb_sys4(SYS_fchmodat, dfd, name, st->st_mode & 07777, 0);
        if (r < 0)
            return r;
    }
    ts[0] = st->st_atim;
    ts[1] = st->st_mtim;
    if (fd >= 0)
        return nsb_sys4(SYS_utimensat, fd, 0, ts, 0);
    return nsb_sys4(SYS_utimensat, dfd, name, ts, AT_SYMLINK_NOFOLLOW);
}

static long nsb_copy_data(int in, int out, const struct stat *st)
{
    char buf[4096];
    uint64_t left = (uint64_t)st->st_size;
    long r;
    /* sendfile first (no copy through this stack); read/write where it cannot */
    while (left > 0) {
        r = NSB_RETRY(nsb_sys4(SYS_sendfile, out, in, 0, left > 0x40000000 ? 0x40000000 : left));
        if (r == -EINVAL || r == -ENOSYS)
            break;
        if (r < 0)
            return r;
        if (r == 0)
            return 0; /* the file shrank meanwhile: what is there is copied */
        left -= (uint64_t)r;
    }
    for (;;) {
        long n = NSB_RETRY(nsb_sys3(SYS_read, in, buf, sizeof(buf))), done = 0;
        if (n <= 0)
            return n;
        while (done < n) {
            r = NSB_RETRY(nsb_sys3(SYS_write, out, buf + done, (size_t)(n - done)));
            if (r < 0)
                return r;
            done += r;
        }
    }
}

static long nsb_copy_tree(int sfd, int tfd, int depth);

/* One entry `name` of the directory sfd, copied into the directory tfd.  Nothing
 * is followed: a symlink is copied as a symlink, every open is O_NOFOLLOW, and
 * a regular file is checked again once open (a FIFO swapped in meanwhile would
 * not block: O_NONBLOCK). */
static long nsb_copy_entry(int sfd, int tfd, const char *name, int depth)
{
    struct stat st, now;
    long r = nsb_sys4(SYS_newfstatat, sfd, name, &st, AT_SYMLINK_NOFOLLOW), in, out;
    if (r < 0)
        return r;
    switch (st.st_mode & S_IFMT) {
    case S_IFDIR:
        if (depth <= 0)
            return -ELOOP;
        r = nsb_sys3(SYS_mkdirat, tfd, name, 0700);
        if (r < 0)
            return r;
        in = NSB_RETRY(
            nsb_sys4(SYS_openat, sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0));
        if (in < 0)
            return in;
        out = NSB_RETRY(
            nsb_sys4(SYS_openat, tfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0));
        r = out;
        if (out >= 0) {
            r = nsb_copy_tree((int)in, (int)out, depth - 1);
            if (r >= 0)
                r = nsb_copy_meta((int)out, -1, 0, &st);
            nsb_sys1(SYS_close, out);
        }
        nsb_sys1(SYS_close, in);
        return r;
    case S_IFREG:
        in = NSB_RETRY(nsb_sys4(SYS_openat, sfd, name,
                                O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0));
        if (in < 0)
            return in;
        r = nsb_sys4(SYS_newfstatat, in, "", &now, AT_EMPTY_PATH);
        if (r >= 0 && (!S_ISREG(now.st_mode) || now.st_ino != st.st_ino))
            r = -EAGAIN; /* changed under us: refuse rather than copy something else */
        out = -1;
        if (r >= 0) {
            out = NSB_RETRY(
                nsb_sys4(SYS_openat, tfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
            r = out;
        }
        if (r >= 0)
            r = nsb_copy_data((int)in, (int)out, &now);
        if (r >= 0)
            r = nsb_copy_meta((int)out, -1, 0, &now);
        if (out >= 0)
            nsb_sys1(SYS_close, out);
        nsb_sys1(SYS_close, in);
        return r;
    case S_IFLNK: {
        char link[NSB_PATH_MAX];
        long n = nsb_sys4(SYS_readlinkat, sfd, name, link, sizeof(link));
        if (n < 0)
            return n;
        if (n >= (long)sizeof(link))
            return -ENAMETOOLONG;
        link[n] = '\0';
        r = nsb_sys3(SYS_symlinkat, link, tfd, name);
        return r < 0 ? r : nsb_copy_meta(-1, tfd, name, &st);
    }
    default: /* device nodes, FIFOs, sockets */
        r = nsb_sys4(SYS_mknodat, tfd, name, st.st_mode & (S_IFMT | 0700), st.st_rdev);
        return r < 0 ? r : nsb_copy_meta(-1, tfd, name, &st);
    }
}

/* Every entry of the directory sfd (open for reading) into the directory tfd,
 * at most `depth` directories deep (the recursion lives on this stack). */
static long nsb_copy_tree(int sfd, int tfd, int depth)
{
    union {
        char bytes[1024];
        struct nsb_dirent64 align;
    } buf;
    for (;;) {
        long n = NSB_RETRY(nsb_sys3(SYS_getdents64, sfd, buf.bytes, sizeof(buf.bytes))), off;
        if (n <= 0)
            return n;
        for (off = 0; off < n;) {
            struct nsb_dirent64 *d = (struct nsb_dirent64 *)(void *)(buf.bytes + off);
            const char *name = d->d_name;
            off += d->d_reclen;
            if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
                continue;
            {
                long r = nsb_copy_entry(sfd, tfd, name, depth);
                if (r < 0)
                    return r;
            }
        }
    }
}

/* tmpcopyup: the directory that register b holds (opened before the tmpfs hid
 * it) copied into the tmpfs: s2 resolved as the flags say (beneath the tmpfs's
 * own register), a directories deep at most.  Register b is used once. */
long op_copyup(struct child *c, const struct nsb_op *op)
{
    long src, dst, opath, r;
    int sreg = op->b < NSB_MAX_REGS ? (int)op->b : -1;
    if (sreg < 0 || c->regs[sreg] < 0)
        return -EBADF;
    src =
        NSB_RETRY(nsb_sys4(SYS_openat, c->regs[sreg], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0));
    nsb_sys1(SYS_close, c->regs[sreg]);
    c->regs[sreg] = -1;
    if (src < 0)
        return src;
    opath = nsb_open_path(c, op, op->s2, O_PATH | O_DIRECTORY);
    dst = opath;
    if (opath >= 0) {
        dst = NSB_RETRY(nsb_sys4(SYS_openat, opath, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0));
        nsb_sys1(SYS_close, opath);
    }
    if (dst < 0) {
        nsb_sys1(SYS_close, src);
        return dst;
    }
    r = nsb_copy_tree((int)src, (int)dst, op->a > 64 ? 64 : (int)op->a);
    nsb_sys1(SYS_close, dst);
    nsb_sys1(SYS_close, src);
    return r;
}
