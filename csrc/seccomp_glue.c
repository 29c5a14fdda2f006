/* seccomp_glue.c - the small C helpers of pynsbind._seccomp (see seccomp_glue.h).
 *
 * The filter itself is compiled by libseccomp, called from Python through cffi;
 * these helpers only do what is awkward there: the program is exported into a
 * memfd and read back (libseccomp 2.5 exports to an fd only), the libseccomp
 * macros that take an argument become functions, and the user-notification
 * ioctls get buffers of the size the running kernel asks for (its structs may be
 * larger than the ones this was built with, and it checks that the unused tail is
 * zero).  Every helper returns a negative errno on failure and keeps no state.
 */
#include "seccomp_glue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

const char *nsb_scmp_build_version(void) { return NSB_VERSION; }

uint32_t nsb_scmp_act_errno(uint16_t err) { return SCMP_ACT_ERRNO(err); }

uint32_t nsb_scmp_act_trace(uint16_t msg) { return SCMP_ACT_TRACE(msg); }

/* Export the filter as classic BPF: returns the program's size in bytes and
 * copies as much of it as fits into buf (the caller retries with a larger buffer
 * when the size exceeds cap). */
long nsb_scmp_export(scmp_filter_ctx ctx, unsigned char *buf, size_t cap)
{
    int fd = memfd_create("pynsbind-seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    long ret = seccomp_export_bpf(ctx, fd);
    if (ret == 0) {
        off_t size = lseek(fd, 0, SEEK_END);
        if (size < 0) {
            ret = -errno;
        } else {
            size_t want = (size_t)size < cap ? (size_t)size : cap;
            size_t done = 0;
            while (done < want) {
                ssize_t n = pread(fd, buf + done, want - done, (off_t)done);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0) {
                    ret = n < 0 ? -errno : -EIO;
                    break;
                }
                done += (size_t)n;
            }
            if (ret == 0)
                ret = (long)size;
        }
    }
    close(fd);
    return ret;
}

/* The name libseccomp gives syscall nr of an architecture (an AUDIT_ARCH_* value,
 * which is what libseccomp's architecture tokens are).  x32 calls arrive as
 * x86_64 with __X32_SYSCALL_BIT set in the number.  Returns the name's length,
 * -ENOENT for a number libseccomp does not know, -ERANGE if buf is too small. */
int nsb_scmp_syscall_name(uint32_t arch, int nr, char *buf, size_t cap)
{
#if defined(__X32_SYSCALL_BIT) && defined(SCMP_ARCH_X32)
    if (arch == SCMP_ARCH_X86_64 && (nr & __X32_SYSCALL_BIT))
        arch = SCMP_ARCH_X32;
#endif
    char *name = seccomp_syscall_resolve_num_arch(arch, nr);
    if (name == NULL)
        return -ENOENT;
    size_t len = strlen(name);
    int ret = -ERANGE;
    if (len < cap) {
        memcpy(buf, name, len + 1);
        ret = (int)len;
    }
    free(name);
    return ret;
}

#if NSB_SCMP_HAS_NOTIFY
/* Room for the kernel's notification structs, however large it says they are. */
#define NSB_NOTIF_BUF 1024
union nsb_notif_buf {
    struct seccomp_notif notif;
    struct seccomp_notif_resp resp;
    unsigned char bytes[NSB_NOTIF_BUF];
};

static int notif_sizes(struct seccomp_notif_sizes *sizes)
{
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, sizes) < 0)
        return -errno;
    if (sizes->seccomp_notif > NSB_NOTIF_BUF || sizes->seccomp_notif_resp > NSB_NOTIF_BUF)
        return -E2BIG;
    return 0;
}
#endif

/* SECCOMP_IOCTL_NOTIF_RECV: blocks until a notification is pending (poll the fd
 * first); -ENOENT when its target went away between the two. */
int nsb_notif_recv(int fd, struct seccomp_notif *out)
{
#if NSB_SCMP_HAS_NOTIFY
    struct seccomp_notif_sizes sizes;
    union nsb_notif_buf buf;
    int ret = notif_sizes(&sizes);
    if (ret < 0)
        return ret;
    memset(&buf, 0, sizeof(buf));
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &buf) < 0)
        return -errno;
    /* the fields of this build's struct: a newer kernel's are larger only by
     * fields this build cannot name */
    memcpy(out, &buf.notif, sizeof(*out));
    return 0;
#else
    (void)fd;
    (void)out;
    return -ENOSYS;
#endif
}

/* SECCOMP_IOCTL_NOTIF_SEND: error is a negative errno or 0; -ENOENT when the
 * target is gone (killed, or its call interrupted by a signal). */
int nsb_notif_send(int fd, uint64_t id, int64_t val, int32_t error, uint32_t flags)
{
#if NSB_SCMP_HAS_NOTIFY
    struct seccomp_notif_sizes sizes;
    union nsb_notif_buf buf;
    int ret = notif_sizes(&sizes);
    if (ret < 0)
        return ret;
    memset(&buf, 0, sizeof(buf));
    buf.resp.id = id;
    buf.resp.val = val;
    buf.resp.error = error;
    buf.resp.flags = flags;
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &buf) < 0)
        return -errno;
    return 0;
#else
    (void)fd;
    (void)id;
    (void)val;
    (void)error;
    (void)flags;
    return -ENOSYS;
#endif
}

/* SECCOMP_IOCTL_NOTIF_ID_VALID: 1 while the notification's target still waits
 * for an answer, 0 when it is gone, or a negative errno. */
int nsb_notif_id_valid(int fd, uint64_t id)
{
#if NSB_SCMP_HAS_NOTIFY
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0)
        return 1;
    return errno == ENOENT ? 0 : -errno;
#else
    (void)fd;
    (void)id;
    return -ENOSYS;
#endif
}
