/* lowlevel.c - 1:1 wrappers for pynsbind.lowlevel (see lowlevel.h).
 * These run in the caller, never in a cloned child: they use libc's syscall()
 * and report failure as -1 with errno, which cffi hands to Python (the 1:1
 * layer's convention, see nsb.h).
 */
#include "clone.h"
#include "headers.h"
#include "lowlevel.h"

#define NSB_NOSYS()     \
    do {                \
        errno = ENOSYS; \
        return -1;      \
    } while (0)

int nsb_unshare(int flags) { return unshare(flags); }

int nsb_setns(int fd, int nstype) { return setns(fd, nstype); }

int nsb_ioctl_ns(int fd, unsigned long request)
{
#if NSB_HAS_NS_IOCTLS
    return ioctl(fd, request);
#else
    (void)fd;
    (void)request;
    NSB_NOSYS();
#endif
}

int nsb_ns_owner_uid(int fd, uint32_t *uid)
{
#if NSB_HAS_NS_IOCTLS
    uid_t u;
    int r = ioctl(fd, NS_GET_OWNER_UID, &u);
    if (r == 0)
        *uid = (uint32_t)u;
    return r;
#else
    (void)fd;
    (void)uid;
    NSB_NOSYS();
#endif
}

int nsb_mount(const char *source, const char *target, const char *fstype, unsigned long flags,
              const char *data)
{
    return mount(source, target, fstype, flags, data);
}

int nsb_umount2(const char *target, int flags) { return umount2(target, flags); }

int nsb_pivot_root(const char *new_root, const char *put_old)
{
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}

int nsb_open_tree(int dfd, const char *path, unsigned int flags)
{
#if NSB_HAS_NEW_MOUNT_API
    return (int)syscall(SYS_open_tree, dfd, path, flags);
#else
    (void)dfd;
    (void)path;
    (void)flags;
    NSB_NOSYS();
#endif
}

int nsb_move_mount(int from_dfd, const char *from_path, int to_dfd, const char *to_path,
                   unsigned int flags)
{
#if NSB_HAS_NEW_MOUNT_API
    return (int)syscall(SYS_move_mount, from_dfd, from_path, to_dfd, to_path, flags);
#else
    (void)from_dfd;
    (void)from_path;
    (void)to_dfd;
    (void)to_path;
    (void)flags;
    NSB_NOSYS();
#endif
}

int nsb_fsopen(const char *fsname, unsigned int flags)
{
#if NSB_HAS_NEW_MOUNT_API
    return (int)syscall(SYS_fsopen, fsname, flags);
#else
    (void)fsname;
    (void)flags;
    NSB_NOSYS();
#endif
}

int nsb_fsconfig(int fd, unsigned int cmd, const char *key, const void *value, int aux)
{
#if NSB_HAS_NEW_MOUNT_API
    return (int)syscall(SYS_fsconfig, fd, cmd, key, value, aux);
#else
    (void)fd;
    (void)cmd;
    (void)key;
    (void)value;
    (void)aux;
    NSB_NOSYS();
#endif
}

int nsb_fsmount(int fd, unsigned int flags, unsigned int attr_flags)
{
#if NSB_HAS_NEW_MOUNT_API
    return (int)syscall(SYS_fsmount, fd, flags, attr_flags);
#else
    (void)fd;
    (void)flags;
    (void)attr_flags;
    NSB_NOSYS();
#endif
}

int nsb_fspick(int dfd, const char *path, unsigned int flags)
{
#if NSB_HAS_NEW_MOUNT_API
    return (int)syscall(SYS_fspick, dfd, path, flags);
#else
    (void)dfd;
    (void)path;
    (void)flags;
    NSB_NOSYS();
#endif
}

int nsb_mount_setattr(int dfd, const char *path, unsigned int flags, uint64_t attr_set,
                      uint64_t attr_clr, uint64_t propagation, uint64_t userns_fd)
{
#if NSB_HAS_MOUNT_SETATTR
    struct mount_attr attr = {
        .attr_set = attr_set,
        .attr_clr = attr_clr,
        .propagation = propagation,
        .userns_fd = userns_fd,
    };
    return (int)syscall(SYS_mount_setattr, dfd, path, flags, &attr, sizeof(attr));
#else
    (void)dfd;
    (void)path;
    (void)flags;
    (void)attr_set;
    (void)attr_clr;
    (void)propagation;
    (void)userns_fd;
    NSB_NOSYS();
#endif
}

int nsb_sethostname(const char *name, size_t len) { return sethostname(name, len); }

int nsb_setdomainname(const char *name, size_t len) { return setdomainname(name, len); }

int nsb_pidfd_open(int pid, unsigned int flags)
{
#if NSB_HAS_PIDFD
    return (int)syscall(SYS_pidfd_open, pid, flags);
#else
    (void)pid;
    (void)flags;
    NSB_NOSYS();
#endif
}

int nsb_pidfd_send_signal(int pidfd, int sig, unsigned int flags)
{
#if NSB_HAS_PIDFD
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, flags);
#else
    (void)pidfd;
    (void)sig;
    (void)flags;
    NSB_NOSYS();
#endif
}

int nsb_pidfd_getfd(int pidfd, int targetfd, unsigned int flags)
{
#if NSB_HAS_PIDFD_GETFD
    return (int)syscall(SYS_pidfd_getfd, pidfd, targetfd, flags);
#else
    (void)pidfd;
    (void)targetfd;
    (void)flags;
    NSB_NOSYS();
#endif
}

int nsb_close_range(unsigned int first, unsigned int last, unsigned int flags)
{
#if NSB_HAS_CLOSE_RANGE
    return (int)syscall(SYS_close_range, first, last, flags);
#else
    (void)first;
    (void)last;
    (void)flags;
    NSB_NOSYS();
#endif
}

int nsb_capget(int pid, uint64_t *effective, uint64_t *permitted, uint64_t *inheritable)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = pid};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &hdr, data) < 0)
        return -1;
    *effective = (uint64_t)data[0].effective | ((uint64_t)data[1].effective << 32);
    *permitted = (uint64_t)data[0].permitted | ((uint64_t)data[1].permitted << 32);
    *inheritable = (uint64_t)data[0].inheritable | ((uint64_t)data[1].inheritable << 32);
    return 0;
}

int nsb_capset(int pid, uint64_t effective, uint64_t permitted, uint64_t inheritable)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = pid};
    struct __user_cap_data_struct data[2] = {
        {(uint32_t)effective, (uint32_t)permitted, (uint32_t)inheritable},
        {(uint32_t)(effective >> 32), (uint32_t)(permitted >> 32), (uint32_t)(inheritable >> 32)},
    };
    return (int)syscall(SYS_capset, &hdr, data);
}

int nsb_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)
{
    return prctl(option, a2, a3, a4, a5);
}

int nsb_prctl_set_name(const char *name) { return prctl(PR_SET_NAME, name, 0, 0, 0); }

int nsb_prctl_get_name(char *buf16) { return prctl(PR_GET_NAME, buf16, 0, 0, 0); }

int nsb_seccomp_set_filter(unsigned int flags, const void *filter, unsigned int count)
{
    struct sock_fprog prog = {.len = (unsigned short)count, .filter = (struct sock_filter *)filter};
    if (count == 0 || count > BPF_MAXINSNS) {
        errno = EINVAL;
        return -1;
    }
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

/* Feature probes: call with arguments the kernel must reject, and tell "unknown
 * call or flag" (ENOSYS, or EINVAL/E2BIG for a flag) from "known, bad argument". */
int nsb_probe(int what)
{
    long r;
    switch (what) {
    case NSB_PROBE_CLONE3:
#if NSB_HAS_CLONE3
        r = syscall(SYS_clone3, NULL, 0);
        return r < 0 && errno != ENOSYS;
#else
        return 0;
#endif
    case NSB_PROBE_CLONE_INTO_CGROUP:
#if NSB_HAS_CLONE3 && NSB_HAS_CLONE_INTO_CGROUP
    {
        /* a bad cgroup fd gives EBADF where the flag is known */
        struct clone_args args;
        long size = nsb_clone_args(&args, 0, NULL, INT_MAX, NULL, 0);
        r = syscall(SYS_clone3, &args, (size_t)size);
        if (r == 0)
            _exit(0); /* not reached: the fd cannot be valid */
        return r < 0 && errno == EBADF;
    }
#else
        return 0;
#endif
    case NSB_PROBE_NEW_MOUNT_API:
#if NSB_HAS_NEW_MOUNT_API
        r = syscall(SYS_fsopen, "", FSOPEN_CLOEXEC);
        if (r >= 0)
            close((int)r);
        return !(r < 0 && errno == ENOSYS);
#else
        return 0;
#endif
    case NSB_PROBE_MOUNT_SETATTR:
#if NSB_HAS_MOUNT_SETATTR
        r = syscall(SYS_mount_setattr, -1, "", 0, NULL, 0);
        return !(r < 0 && errno == ENOSYS);
#else
        return 0;
#endif
    case NSB_PROBE_PIDFD:
#if NSB_HAS_PIDFD
        r = syscall(SYS_pidfd_open, getpid(), 0);
        if (r >= 0)
            close((int)r);
        return r >= 0;
#else
        return 0;
#endif
    case NSB_PROBE_PIDFD_GETFD:
#if NSB_HAS_PIDFD_GETFD
        r = syscall(SYS_pidfd_getfd, -1, 0, 0);
        return !(r < 0 && errno == ENOSYS);
#else
        return 0;
#endif
    case NSB_PROBE_CLOSE_RANGE:
#if NSB_HAS_CLOSE_RANGE
        r = syscall(SYS_close_range, ~0U, ~0U, 0);
        return !(r < 0 && errno == ENOSYS);
#else
        return 0;
#endif
    case NSB_PROBE_CLOSE_RANGE_CLOEXEC:
#if NSB_HAS_CLOSE_RANGE
        r = syscall(SYS_close_range, ~0U, ~0U, CLOSE_RANGE_CLOEXEC);
        return CLOSE_RANGE_CLOEXEC != 0 && r == 0;
#else
        return 0;
#endif
    case NSB_PROBE_OPENAT2:
#if NSB_HAS_OPENAT2
        r = syscall(SYS_openat2, -1, NULL, NULL, 0);
        return !(r < 0 && errno == ENOSYS);
#else
        return 0;
#endif
    case NSB_PROBE_SECCOMP:
        r = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
        return r >= 0;
    default:
        errno = EINVAL;
        return -1;
    }
}
