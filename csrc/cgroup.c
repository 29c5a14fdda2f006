/* cgroup.c - the fast path for cgroup files: a batch of openat+write on one
 * cgroup directory fd, with no Python between the writes (see nsb.h). */
#include <stdio.h>
#include <sys/inotify.h>

#include "headers.h"
#include "nsb.h"

/* Write value (len bytes) into each key under dirfd, in order.  On failure,
 * *failed is the index of the write that failed and errno says why. */
int nsb_cg_write_batch(int dirfd, const struct nsb_kv *kvs, int n, int *failed)
{
    int i;
    for (i = 0; i < n; i++) {
        int fd = openat(dirfd, kvs[i].key, O_WRONLY | O_CLOEXEC);
        ssize_t w;
        if (fd < 0) {
            *failed = i;
            return -1;
        }
        do
            w = write(fd, kvs[i].value, kvs[i].len);
        while (w < 0 && errno == EINTR);
        if (w < 0) {
            int e = errno;
            close(fd);
            errno = e;
            *failed = i;
            return -1;
        }
        close(fd);
    }
    return 0;
}

/* Write a pid into an open cgroup.procs (or tasks) file. */
int nsb_cg_write_pid(int fd, int pid)
{
    char buf[24];
    int len = snprintf(buf, sizeof(buf), "%d", pid);
    ssize_t w;
    do
        w = write(fd, buf, (size_t)len);
    while (w < 0 && errno == EINTR);
    return w < 0 ? -1 : 0;
}

/* An inotify instance for cgroup events (see nsb.h). */
int nsb_cg_inotify(void)
{
    return inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
}

/* Watch a cgroup events file: cgroupfs signals IN_MODIFY when its content
 * changes; IN_IGNORED follows when the cgroup is removed. */
int nsb_cg_watch(int ifd, const char *path)
{
    return inotify_add_watch(ifd, path, IN_MODIFY);
}
