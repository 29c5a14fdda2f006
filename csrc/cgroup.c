/* cgroup.c - the fast path for cgroup files: a batch of openat+write on one
 * cgroup directory fd, with no Python between the writes (see nsb.h).  Part of
 * the 1:1 layer: each function returns -1 with errno on failure. */
#include <stdio.h>
#include <sys/inotify.h>

#include "headers.h"
#include "nsb.h"

/* Write value (len bytes) into each key under dirfd, in order.  Writes in a
 * row to the same file (devices.allow, one rule each) share one open: a cgroup
 * file takes each write() as a whole value.  On failure, *failed is the index
 * of the write that failed and errno says why. */
int nsb_cg_write_batch(int dirfd, const struct nsb_kv *kvs, int n, int *failed)
{
    int i, fd = -1;
    for (i = 0; i < n; i++) {
        ssize_t w;
        if (fd < 0 || strcmp(kvs[i].key, kvs[i - 1].key) != 0) {
            if (fd >= 0)
                close(fd);
            fd = openat(dirfd, kvs[i].key, O_WRONLY | O_CLOEXEC);
            if (fd < 0) {
                *failed = i;
                return -1;
            }
        }
        do
            w = write(fd, kvs[i].value, kvs[i].len);
        while (w < 0 && errno == EINTR);
        if (w >= 0 && (size_t)w != kvs[i].len) {
            errno = EIO; /* a cgroup file takes a value whole: never part of one */
            w = -1;
        }
        if (w < 0) {
            int e = errno;
            close(fd);
            errno = e;
            *failed = i;
            return -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return 0;
}

/* Write a pid into an open cgroup.procs (or tasks) file. */
int nsb_cg_write_pid(int fd, int pid)
{
    char buf[16]; /* an int has at most 11 characters */
    int len = snprintf(buf, sizeof(buf), "%d", pid);
    ssize_t w;
    do
        w = write(fd, buf, (size_t)len);
    while (w < 0 && errno == EINTR);
    if (w >= 0 && w != len) {
        errno = EIO; /* a cgroup file takes a value whole: never part of one */
        return -1;
    }
    return w < 0 ? -1 : 0;
}

/* BASE/REL[/leaf] into buf; -1 (ENAMETOOLONG) when it does not fit. */
static int nsb_cg_path(char *buf, size_t size, const char *base, const char *rel, const char *leaf)
{
    int len = snprintf(buf, size, "%s/%s%s", base, rel, leaf);
    if (len < 0 || (size_t)len >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* Make one cgroup in every hierarchy, with its limits (see nsb.h). */
int nsb_cg_create(const struct nsb_cg_dir *dirs, int n, const char *rel, int32_t *fds,
                  int *failed_dir, int *failed_kv)
{
    char path[PATH_MAX];
    int i, fd;
    for (i = 0; i < n; i++) {
        *failed_dir = i;
        *failed_kv = -1;
        if (nsb_cg_path(path, sizeof(path), dirs[i].base, rel, "") < 0 || mkdir(path, 0755) < 0)
            return -1;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            *failed_kv = -2;
            return -1;
        }
        if (fds)
            fds[i] = fd;
        /* the device program first: before the directory is handed out, the
         * cgroup never holds a process without it */
        if (dirs[i].prog_fd >= 0 && nsb_bpf_attach_device(fd, dirs[i].prog_fd, -1) < 0)
            *failed_kv = -3;
        if (*failed_kv == -3 || nsb_cg_write_batch(fd, dirs[i].kvs, dirs[i].nkv, failed_kv) < 0) {
            if (!fds) {
                int e = errno;
                close(fd);
                errno = e;
            }
            return -1;
        }
        if (!fds)
            close(fd);
    }
    return 0;
}

/* Attach pid to a cgroup in each hierarchy (see nsb.h). */
int nsb_cg_attach(const struct nsb_cg_dir *dirs, int n, const char *rel, int pid, int *failed)
{
    char path[PATH_MAX];
    int i;
    for (i = 0; i < n; i++) {
        int fd, r, e;
        *failed = i;
        if (nsb_cg_path(path, sizeof(path), dirs[i].base, rel, "/cgroup.procs") < 0)
            return -1;
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return -1;
        r = nsb_cg_write_pid(fd, pid);
        e = errno;
        close(fd);
        if (r < 0) {
            errno = e;
            return -1;
        }
    }
    return 0;
}

/* Remove a cgroup from each hierarchy (see nsb.h). */
int nsb_cg_rmdir(const struct nsb_cg_dir *dirs, int n, const char *rel, int *failed)
{
    char path[PATH_MAX];
    int i;
    for (i = 0; i < n; i++) {
        *failed = i;
        if (nsb_cg_path(path, sizeof(path), dirs[i].base, rel, "") < 0)
            return -1;
        if (rmdir(path) < 0 && errno != ENOENT)
            return -1;
    }
    return 0;
}

/* An inotify instance for cgroup events (see nsb.h). */
int nsb_cg_inotify(void) { return inotify_init1(IN_NONBLOCK | IN_CLOEXEC); }

/* Watch a cgroup events file (cgroupfs signals IN_MODIFY when its content
 * changes), or with `children` a cgroup directory for the removal of a child:
 * a watched events file of a removed cgroup gets no event of its own. */
int nsb_cg_watch(int ifd, const char *path, int children)
{
    return inotify_add_watch(ifd, path, children ? (IN_DELETE | IN_ONLYDIR) : IN_MODIFY);
}
