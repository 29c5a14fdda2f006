/* cg_floor.c - the C floor of the cgroup benchmark: what a hand-written C loop
 * pays for the cgroup work of one container, with the same system calls as
 * pynsbind makes for it (benchmarks/bench_cgroup.py writes the plan).  Per
 * container, in every hierarchy: mkdir the cgroup, open it, openat+write each
 * limit, close; then write the pid into each cgroup.procs (attach), write it
 * back into the holding cgroup's (detach), and rmdir each cgroup.
 *
 *   cg_floor PLAN      for each line read on stdin (a container number), make
 *                      that container's cgroups and print the nanoseconds it took
 *
 * The benchmark drives it one container at a time, alternating with pynsbind,
 * so that both run against the same kernel state (a memory cgroup's removal
 * finishes in the background: its cost lands on whatever runs next).
 *
 * PLAN is a text file:
 *   pid P
 *   name PREFIX                     the cgroup is PREFIX<iteration>
 *   hier BASE HOLD                  a hierarchy: its base dir, the holding cgroup
 *   kv FILE VALUE                   a limit of the last hierarchy (VALUE to the end of line)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_H 16
#define MAX_KV 32

struct hier {
    char base[512];
    char hold_procs[600];
    int nkv;
    char key[MAX_KV][128];
    char value[MAX_KV][256];
    size_t len[MAX_KV];
};

static struct hier hs[MAX_H];
static int nh;

static void die(const char *what, const char *path)
{
    fprintf(stderr, "cg_floor: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static void fmt(char *buf, size_t size, const char *format, ...)
{
    va_list ap;
    int n;
    va_start(ap, format);
    n = vsnprintf(buf, size, format, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size) {
        fprintf(stderr, "cg_floor: path too long\n");
        exit(2);
    }
}

static void write_str(int dirfd, const char *path, const char *buf, size_t len)
{
    int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        die("open", path);
    if (write(fd, buf, len) < 0)
        die("write", path);
    close(fd);
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    char line[1024], name[256] = "", path[1024], pidbuf[24];
    long i;
    int pid = 0, h, k, pidlen;
    FILE *f;
    if (argc != 2) {
        fprintf(stderr, "usage: cg_floor PLAN\n");
        return 2;
    }
    f = fopen(argv[1], "r");
    if (!f)
        die("open", argv[1]);
    while (fgets(line, sizeof(line), f)) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (!strncmp(line, "pid ", 4)) {
            pid = atoi(line + 4);
        } else if (!strncmp(line, "name ", 5)) {
            fmt(name, sizeof(name), "%s", line + 5);
        } else if (!strncmp(line, "hier ", 5) && nh < MAX_H) {
            char hold[512];
            struct hier *x = &hs[nh++];
            if (sscanf(line + 5, "%511s %511s", x->base, hold) != 2)
                return 2;
            fmt(x->hold_procs, sizeof(x->hold_procs), "%s/cgroup.procs", hold);
        } else if (!strncmp(line, "kv ", 3) && nh > 0) {
            struct hier *x = &hs[nh - 1];
            char *sp = strchr(line + 3, ' ');
            if (!sp || x->nkv >= MAX_KV)
                return 2;
            *sp = 0;
            fmt(x->key[x->nkv], sizeof(x->key[0]), "%s", line + 3);
            fmt(x->value[x->nkv], sizeof(x->value[0]), "%s", sp + 1);
            x->len[x->nkv] = strlen(x->value[x->nkv]);
            x->nkv++;
        }
    }
    fclose(f);
    pidlen = snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof(line), stdin)) {
        int dirfds[MAX_H];
        long long t0;
        i = atol(line);
        t0 = now_ns();
        for (h = 0; h < nh; h++) {
            fmt(path, sizeof(path), "%s/%s%ld", hs[h].base, name, i);
            if (mkdir(path, 0755) < 0)
                die("mkdir", path);
            dirfds[h] = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dirfds[h] < 0)
                die("open", path);
            for (k = 0; k < hs[h].nkv; k++)
                write_str(dirfds[h], hs[h].key[k], hs[h].value[k], hs[h].len[k]);
            close(dirfds[h]);
        }
        for (h = 0; h < nh; h++) {
            fmt(path, sizeof(path), "%s/%s%ld/cgroup.procs", hs[h].base, name, i);
            write_str(AT_FDCWD, path, pidbuf, (size_t)pidlen);
        }
        for (h = 0; h < nh; h++)
            write_str(AT_FDCWD, hs[h].hold_procs, pidbuf, (size_t)pidlen);
        for (h = 0; h < nh; h++) {
            fmt(path, sizeof(path), "%s/%s%ld", hs[h].base, name, i);
            while (rmdir(path) < 0) {
                if (errno != EBUSY)
                    die("rmdir", path);
            }
        }
        printf("%lld\n", now_ns() - t0);
    }
    return 0;
}
