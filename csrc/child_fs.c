/* child_fs.c - the child's filesystem ops: paths resolved inside the container
 * root, mounts with the new mount API or mount(2), pivot_root, masked and
 * read-only paths.  The rules of child.c hold here too (see its header). */
#include "child.h"

/* ---- paths ------------------------------------------------------------- */

/* Open `path` as O_PATH: inside the container root (register 0) when the op says
 * so, resolving every symlink and ".." within it, else from the current root. */
long nsb_open_path(struct child *c, const struct nsb_op *op, const char *path, int flags)
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
long nsb_open_parent(struct child *c, const struct nsb_op *op, const char *path,
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

long op_fsmount(struct child *c, const struct nsb_op *op)
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

long op_bind(struct child *c, const struct nsb_op *op)
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

long op_preopen(struct child *c, const struct nsb_op *op)
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

long op_mount(struct child *c, const struct nsb_op *op)
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

/* Legacy remount of a bind mount: the flags the kernel locked (in a user
 * namespace: nosuid, nodev, noexec, atime) must be repeated or it says EPERM. */
long op_remount(const struct nsb_op *op)
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
long op_mask(struct child *c, const struct nsb_op *op)
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
long op_ropath(struct child *c, const struct nsb_op *op)
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
long op_pivot(struct child *c, const struct nsb_op *op)
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
