/* seccomp_glue.h - what pynsbind._seccomp (csrc/build_seccomp.py) declares: the
 * part of <seccomp.h> pynsbind uses, and small helpers of ours (csrc/seccomp_glue.c)
 * for what libseccomp's API leaves awkward from Python: exporting the compiled
 * program into memory, and the seccomp user-notification ioctls.  Mirrors
 * pynsbind/seccomp.py.  Helpers return a negative errno on failure.
 *
 * The part between BEGIN CDEF and END CDEF is given to cffi verbatim; the
 * declarations taken from <seccomp.h> and <linux/seccomp.h>, and the constants,
 * are listed in csrc/build_seccomp.py and filled by the compiler.
 */
#ifndef NSB_SECCOMP_GLUE_H
#define NSB_SECCOMP_GLUE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/socket.h>
#if __has_include(<seccomp.h>) && !defined(NSB_SECCOMP_COMPAT)
#include <seccomp.h>
#else
#include "seccomp_compat.h" /* the library without its headers (see there) */
#endif
#include <linux/filter.h>
#include <linux/seccomp.h>

/* What the headers had: a flag the headers lack is 0 and its NSB_SCMP_HAS_* is 0,
 * so that Python refuses it instead of passing a meaningless value. */
#if defined(SECCOMP_IOCTL_NOTIF_RECV) && defined(SECCOMP_IOCTL_NOTIF_SEND) && \
    defined(SECCOMP_IOCTL_NOTIF_ID_VALID) && defined(SECCOMP_GET_NOTIF_SIZES)
#define NSB_SCMP_HAS_NOTIFY 1
#else
#define NSB_SCMP_HAS_NOTIFY 0
#define SECCOMP_IOCTL_NOTIF_RECV 0
#define SECCOMP_IOCTL_NOTIF_SEND 0
#define SECCOMP_IOCTL_NOTIF_ID_VALID 0
#endif
#ifdef SECCOMP_USER_NOTIF_FLAG_CONTINUE
#define NSB_SCMP_HAS_NOTIF_CONTINUE 1
#else
#define NSB_SCMP_HAS_NOTIF_CONTINUE 0
#define SECCOMP_USER_NOTIF_FLAG_CONTINUE 0
#endif
#ifndef SECCOMP_FILTER_FLAG_LOG
#define SECCOMP_FILTER_FLAG_LOG 0
#endif
#ifndef SECCOMP_FILTER_FLAG_SPEC_ALLOW
#define SECCOMP_FILTER_FLAG_SPEC_ALLOW 0
#endif
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER 0
#endif
#ifdef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define NSB_SCMP_HAS_WAIT_KILLABLE_RECV 1
#else
#define NSB_SCMP_HAS_WAIT_KILLABLE_RECV 0
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV 0
#endif

/* BEGIN CDEF */
const char *nsb_scmp_build_version(void);
uint32_t nsb_scmp_act_errno(uint16_t err);
uint32_t nsb_scmp_act_trace(uint16_t msg);
long nsb_scmp_export(scmp_filter_ctx ctx, unsigned char *buf, size_t cap);
int nsb_scmp_syscall_name(uint32_t arch, int nr, char *buf, size_t cap);
int nsb_notif_recv(int fd, struct seccomp_notif *out);
int nsb_notif_send(int fd, uint64_t id, int64_t val, int32_t error, uint32_t flags);
int nsb_notif_id_valid(int fd, uint64_t id);
/* END CDEF */

#endif
