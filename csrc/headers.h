/* headers.h - the system headers every pynsbind C file sees, in an order that
 * compiles with glibc and the kernel's uapi headers together, plus the NSB_HAS_*
 * build-time feature flags.  Where a header lacks a constant, the constant is
 * defined as 0 and its NSB_HAS_* flag is 0: the Python layer then raises
 * NotImplementedError instead of passing a meaningless value to the kernel.
 */
#ifndef NSB_HEADERS_H
#define NSB_HEADERS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <net/if.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/nsfs.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#endif
#if __has_include(<linux/close_range.h>)
#include <linux/close_range.h>
#endif

#if defined(SYS_clone3) && defined(CLONE_ARGS_SIZE_VER0)
#define NSB_HAS_CLONE3 1
#else
#define NSB_HAS_CLONE3 0
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0
#endif
#ifdef CLONE_INTO_CGROUP
#define NSB_HAS_CLONE_INTO_CGROUP 1
#else
#define NSB_HAS_CLONE_INTO_CGROUP 0
#define CLONE_INTO_CGROUP 0
#endif
#ifdef CLONE_NEWTIME
#define NSB_HAS_TIME_NS 1
#else
#define NSB_HAS_TIME_NS 0
#define CLONE_NEWTIME 0
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0
#endif
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0
#endif

#if defined(SYS_fsopen) && defined(SYS_open_tree) && defined(FSOPEN_CLOEXEC)
#define NSB_HAS_NEW_MOUNT_API 1
#else
#define NSB_HAS_NEW_MOUNT_API 0
#endif
#if defined(SYS_mount_setattr) && defined(MOUNT_ATTR_IDMAP)
#define NSB_HAS_MOUNT_SETATTR 1
#else
#define NSB_HAS_MOUNT_SETATTR 0
#define MOUNT_ATTR_IDMAP 0
#endif
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_send_signal)
#define NSB_HAS_PIDFD 1
#else
#define NSB_HAS_PIDFD 0
#endif
#ifdef SYS_pidfd_getfd
#define NSB_HAS_PIDFD_GETFD 1
#else
#define NSB_HAS_PIDFD_GETFD 0
#endif
#ifdef SYS_close_range
#define NSB_HAS_CLOSE_RANGE 1
#else
#define NSB_HAS_CLOSE_RANGE 0
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC 0
#endif
#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE 0
#endif
#if defined(SYS_openat2) && defined(RESOLVE_IN_ROOT)
#define NSB_HAS_OPENAT2 1
#else
#define NSB_HAS_OPENAT2 0
#endif
#ifdef NS_GET_OWNER_UID
#define NSB_HAS_NS_IOCTLS 1
#else
#define NSB_HAS_NS_IOCTLS 0
#define NS_GET_USERNS 0
#define NS_GET_PARENT 0
#define NS_GET_NSTYPE 0
#define NS_GET_OWNER_UID 0
#endif
#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 0
#endif
#ifndef MOUNT_ATTR_NOSYMFOLLOW
#define MOUNT_ATTR_NOSYMFOLLOW 0
#endif
#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 0
#define PR_CAP_AMBIENT_IS_SET 0
#define PR_CAP_AMBIENT_RAISE 0
#define PR_CAP_AMBIENT_LOWER 0
#define PR_CAP_AMBIENT_CLEAR_ALL 0
#endif
#ifndef CAP_PERFMON
#define CAP_PERFMON (-1)
#endif
#ifndef CAP_BPF
#define CAP_BPF (-1)
#endif
#ifndef CAP_CHECKPOINT_RESTORE
#define CAP_CHECKPOINT_RESTORE (-1)
#endif
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER 0
#endif

#if defined(__x86_64__)
#define NSB_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NSB_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#define NSB_AUDIT_ARCH 0
#endif

#define NSB_SECCOMP_DATA_ARGS offsetof(struct seccomp_data, args)

#endif
