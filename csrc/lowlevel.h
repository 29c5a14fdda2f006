/* lowlevel.h - 1:1 wrappers of the kernel calls that Python's os module lacks.
 * Mirrors pynsbind/lowlevel.py.  Every wrapper returns -1 and sets errno on
 * failure (cffi saves errno right after the call, and releases the GIL during it).
 * The constant list lives in csrc/build.py: each is declared "..." to cffi and
 * filled from the headers included by csrc/headers.h.
 */
#ifndef NSB_LOWLEVEL_H
#define NSB_LOWLEVEL_H

#include <stddef.h>
#include <stdint.h>

/* BEGIN CDEF */
int nsb_unshare(int flags);
int nsb_setns(int fd, int nstype);
int nsb_ioctl_ns(int fd, unsigned long request);
int nsb_ns_owner_uid(int fd, uint32_t *uid);
int nsb_mount(const char *source, const char *target, const char *fstype, unsigned long flags,
              const char *data);
int nsb_umount2(const char *target, int flags);
int nsb_pivot_root(const char *new_root, const char *put_old);
int nsb_open_tree(int dfd, const char *path, unsigned int flags);
int nsb_move_mount(int from_dfd, const char *from_path, int to_dfd, const char *to_path,
                   unsigned int flags);
int nsb_fsopen(const char *fsname, unsigned int flags);
int nsb_fsconfig(int fd, unsigned int cmd, const char *key, const void *value, int aux);
int nsb_fsmount(int fd, unsigned int flags, unsigned int attr_flags);
int nsb_fspick(int dfd, const char *path, unsigned int flags);
int nsb_mount_setattr(int dfd, const char *path, unsigned int flags, uint64_t attr_set,
                      uint64_t attr_clr, uint64_t propagation, uint64_t userns_fd);
int nsb_sethostname(const char *name, size_t len);
int nsb_setdomainname(const char *name, size_t len);
int nsb_pidfd_open(int pid, unsigned int flags);
int nsb_pidfd_send_signal(int pidfd, int sig, unsigned int flags);
int nsb_pidfd_getfd(int pidfd, int targetfd, unsigned int flags);
int nsb_close_range(unsigned int first, unsigned int last, unsigned int flags);
int nsb_capget(int pid, uint64_t *effective, uint64_t *permitted, uint64_t *inheritable);
int nsb_capset(int pid, uint64_t effective, uint64_t permitted, uint64_t inheritable);
int nsb_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5);
int nsb_prctl_set_name(const char *name);
int nsb_prctl_get_name(char *buf16);
int nsb_seccomp_set_filter(unsigned int flags, const void *filter, unsigned int count);
int nsb_clone_fork(uint64_t flags, int want_pidfd, int cgroup_fd, int legacy, int *pidfd_out);
int nsb_probe(int what);
/* nsb_probe(what): returns 1 supported, 0 not, computed by trying the call */
enum nsb_probe_what {
    NSB_PROBE_CLONE3 = 1,
    NSB_PROBE_CLONE_INTO_CGROUP = 2,
    NSB_PROBE_NEW_MOUNT_API = 3,
    NSB_PROBE_MOUNT_SETATTR = 4,
    NSB_PROBE_PIDFD = 5,
    NSB_PROBE_CLOSE_RANGE = 6,
    NSB_PROBE_OPENAT2 = 7,
    NSB_PROBE_SECCOMP = 8,
    NSB_PROBE_PIDFD_GETFD = 9,
    NSB_PROBE_CLOSE_RANGE_CLOEXEC = 10
};
/* END CDEF */

#endif
