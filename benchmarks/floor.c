/* floor.c - the C floor of the spawn benchmark: what a hand-written C program
 * pays for the same container profile as benchmarks/bench_spawn.py runs through
 * pynsbind.  Per container: clone3 with pid, mount, uts, ipc, net and cgroup
 * namespaces; in the child: / made private, the rootfs bound onto itself, proc
 * mounted, pivot_root, exec /bin/true; the parent waits for it.
 *
 *   floor ROOTFS N [each] [lo]
 *
 * prints the median and mean nanoseconds per container; with "each", then every
 * container's nanoseconds, one a line, in run order (what bench_spawn.py reads);
 * with "lo", the child also brings the loopback interface up before pivot_root,
 * as pynsbind, crun, runc and bwrap do in a new network namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
    _exit(127);
}

static void loopback_up(void)
{
    struct ifreq ifr;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        die("socket");
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        die("get lo flags");
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        die("bring lo up");
    close(s);
}

static void child(const char *rootfs, int lo)
{
    char proc[4096];
    char *argv[] = {"/bin/true", NULL};
    char *envp[] = {"PATH=/bin", NULL};
    if (lo)
        loopback_up();
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        die("make / private");
    if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        die("bind rootfs");
    snprintf(proc, sizeof(proc), "%s/proc", rootfs);
    if (mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        die("mount proc");
    if (chdir(rootfs) < 0)
        die("chdir");
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        die("pivot_root");
    if (umount2(".", MNT_DETACH) < 0)
        die("umount old root");
    if (chdir("/") < 0)
        die("chdir /");
    execve(argv[0], argv, envp);
    die("execve");
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    uint64_t flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET |
                     CLONE_NEWCGROUP;
    int n, i, each = 0, lo = 0;
    uint64_t *t, *sorted, sum = 0;
    for (i = 3; i < argc; i++) {
        if (strcmp(argv[i], "each") == 0)
            each = 1;
        else if (strcmp(argv[i], "lo") == 0)
            lo = 1;
        else
            argc = 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: floor ROOTFS N [each] [lo]\n");
        return 2;
    }
    n = atoi(argv[2]);
    if (n <= 0)
        return 2;
    t = calloc((size_t)n, sizeof(*t));
    sorted = calloc((size_t)n, sizeof(*sorted));
    if (t == NULL || sorted == NULL)
        die("calloc");
    for (i = 0; i < n; i++) {
        struct clone_args args;
        int status, pidfd = -1;
        uint64_t t0 = now();
        long pid;
        memset(&args, 0, sizeof(args));
        args.flags = flags | CLONE_PIDFD;
        args.pidfd = (uint64_t)(uintptr_t)&pidfd;
        args.exit_signal = SIGCHLD;
        pid = syscall(SYS_clone3, &args, sizeof(args));
        if (pid < 0)
            die("clone3");
        if (pid == 0)
            child(argv[1], lo);
        if (waitpid((pid_t)pid, &status, 0) < 0)
            die("waitpid");
        close(pidfd);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "floor: child failed with status %d\n", status);
            return 1;
        }
        t[i] = now() - t0;
        sum += t[i];
    }
    memcpy(sorted, t, (size_t)n * sizeof(*t));
    qsort(sorted, (size_t)n, sizeof(*sorted), cmp);
    printf("%llu %llu\n", (unsigned long long)sorted[n / 2],
           (unsigned long long)(sum / (uint64_t)n));
    for (i = 0; each && i < n; i++)
        printf("%llu\n", (unsigned long long)t[i]);
    free(sorted);
    free(t);
    return 0;
}
