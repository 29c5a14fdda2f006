/* rawsys.h - system calls that never touch errno, and small freestanding helpers.
 *
 * Used by the cloned child (csrc/child.c) and by the container init (csrc/init.c).
 * A child cloned with CLONE_VM shares the caller's memory, including the calling
 * thread's TLS and therefore its errno: it must not call libc's syscall(), which
 * writes errno on failure.  Every call here returns -errno instead.
 *
 * NSB_RAW_SYSCALLS is 1 where the inline assembly below exists (x86_64, aarch64).
 * Elsewhere the fallback goes through libc's syscall(), and the engine never uses
 * CLONE_VM (see spawn.c).
 */
#ifndef NSB_RAWSYS_H
#define NSB_RAWSYS_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NSB_RAW_SYSCALLS 1
static inline long nsb_sys6(long n, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#elif defined(__aarch64__)
#define NSB_RAW_SYSCALLS 1
static inline long nsb_sys6(long n, long a, long b, long c, long d, long e, long f)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory", "cc");
    return x0;
}
#else
#define NSB_RAW_SYSCALLS 0
#include <errno.h>
#include <unistd.h>
static inline long nsb_sys6(long n, long a, long b, long c, long d, long e, long f)
{
    long r = syscall(n, a, b, c, d, e, f);
    return r == -1 ? -(long)errno : r;
}
#endif

#define NSB_L(x) ((long)(x))
#define nsb_sys0(n) nsb_sys6((n), 0, 0, 0, 0, 0, 0)
#define nsb_sys1(n, a) nsb_sys6((n), NSB_L(a), 0, 0, 0, 0, 0)
#define nsb_sys2(n, a, b) nsb_sys6((n), NSB_L(a), NSB_L(b), 0, 0, 0, 0)
#define nsb_sys3(n, a, b, c) nsb_sys6((n), NSB_L(a), NSB_L(b), NSB_L(c), 0, 0, 0)
#define nsb_sys4(n, a, b, c, d) nsb_sys6((n), NSB_L(a), NSB_L(b), NSB_L(c), NSB_L(d), 0, 0)
#define nsb_sys5(n, a, b, c, d, e) \
    nsb_sys6((n), NSB_L(a), NSB_L(b), NSB_L(c), NSB_L(d), NSB_L(e), 0)

/* Retry a raw call that failed with -EINTR. */
#define NSB_RETRY(expr)                 \
    ({                                  \
        long nsb_r_;                    \
        do                              \
            nsb_r_ = (expr);            \
        while (nsb_r_ == -4 /*EINTR*/); \
        nsb_r_;                         \
    })

static inline size_t nsb_strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static inline int nsb_streq(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

static inline void nsb_memcpy(void *dst, const void *src, size_t n)
{
    volatile unsigned char *d = dst; /* volatile: keep the compiler from calling memcpy */
    const unsigned char *s = src;
    while (n--)
        *d++ = *s++;
}

static inline void nsb_memzero(void *dst, size_t n)
{
    volatile unsigned char *d = dst;
    while (n--)
        *d++ = 0;
}

/* Write the decimal form of v into buf (at least 24 bytes); returns the length. */
static inline size_t nsb_utoa(unsigned long v, char *buf)
{
    char tmp[24];
    size_t n = 0, i;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return n;
}

/* Parse a non-negative decimal of at most 9 digits (an fd, an op index);
 * -EINVAL for anything else. */
static inline long nsb_atou(const char *s)
{
    long v = 0;
    if (!*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 100000000L)
            return -EINVAL;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* One candidate of a PATH search: the dir entry (dlen bytes; empty: the current
 * directory), "/" and name into buf (NSB_SEARCH_MAX bytes).  -ENAMETOOLONG when it
 * does not fit, which is what execve says of a path that long (PATH_MAX). */
#define NSB_SEARCH_MAX 4096
static inline long nsb_search_path(char *buf, const char *dir, size_t dlen, const char *name,
                                   size_t nlen)
{
    if (dlen == 0) {
        dir = ".";
        dlen = 1;
    }
    if (dlen + 1 + nlen + 1 > NSB_SEARCH_MAX)
        return -ENAMETOOLONG;
    nsb_memcpy(buf, dir, dlen);
    buf[dlen] = '/';
    nsb_memcpy(buf + dlen + 1, name, nlen + 1);
    return 0;
}

/* Whether a PATH search goes on after a candidate failed with r: as execvp, a
 * candidate that is not there (or whose path is too long) is passed over. */
static inline int nsb_search_on(long r)
{
    return r == -EACCES || r == -ENOENT || r == -ENOTDIR || r == -ESTALE || r == -ENAMETOOLONG;
}

/* execve `name` searched in the colon-separated `path`, as execvp does: an
 * empty entry is the current directory; the result is ENOENT unless some
 * candidate was found but refused (EACCES); any other error stops the search.
 * Returns -errno (it returns only when nothing could be executed). */
static inline long nsb_exec_search(const char *name, const char *path, char *const *argv,
                                   char *const *envp)
{
    char buf[NSB_SEARCH_MAX];
    size_t nlen = nsb_strlen(name);
    long r, err = -ENOENT;
    const char *dir = path;
    for (;;) {
        const char *end = dir;
        while (*end && *end != ':')
            end++;
        r = nsb_search_path(buf, dir, (size_t)(end - dir), name, nlen);
        if (r == 0)
            r = nsb_sys3(SYS_execve, buf, argv, envp);
        if (r == -EACCES)
            err = r;
        else if (!nsb_search_on(r))
            return r;
        if (!*end)
            break;
        dir = end + 1;
    }
    return err;
}

/* Whether execve(path) could work: executable for this process and a regular
 * file; 0 or -errno (what execve would most likely say). */
static inline long nsb_can_exec(const char *path)
{
    struct stat st;
    long r = nsb_sys4(SYS_faccessat, AT_FDCWD, path, X_OK, 0);
    if (r < 0)
        return r;
    r = nsb_sys4(SYS_newfstatat, AT_FDCWD, path, &st, 0);
    if (r < 0)
        return r;
    return S_ISREG(st.st_mode) ? 0 : -EACCES;
}

/* What execve of `name` would find, searched in the colon-separated `path`
 * (NULL: the name as it is) as nsb_exec_search does: 0 or -errno. */
static inline long nsb_find_exec(const char *name, const char *path)
{
    char buf[NSB_SEARCH_MAX];
    size_t nlen = nsb_strlen(name);
    long r, err = -ENOENT;
    const char *dir = path;
    if (!path)
        return nsb_can_exec(name);
    for (;;) {
        const char *end = dir;
        while (*end && *end != ':')
            end++;
        r = nsb_search_path(buf, dir, (size_t)(end - dir), name, nlen);
        if (r == 0)
            r = nsb_can_exec(buf);
        if (r == 0)
            return 0;
        if (r == -EACCES)
            err = r;
        else if (!nsb_search_on(r))
            return r;
        if (!*end)
            break;
        dir = end + 1;
    }
    return err;
}

#endif
