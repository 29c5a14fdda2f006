/* floor.c - the C floor of the spawn benchmark: what a hand-written C program
 * pays for the same container profile as benchmarks/bench_spawn.py runs through
 * pynsbind.  Per container: clone3 with pid, mount, uts, ipc, net and cgroup
 * namespaces; in the child: / made private, the rootfs bound onto itself, proc
 * mounted, pivot_root, exec /bin/true; the parent waits for it.
 *
 *   floor ROOTFS N [each] [lo] [sealed=INIT] [devices]
 *
 * prints the median and mean nanoseconds per container; with "each", then every
 * container's nanoseconds, one a line, in run order (what bench_spawn.py reads);
 * with "lo", the child also brings the loopback interface up before pivot_root,
 * as pynsbind, crun, runc and bwrap do in a new network namespace.
 *
 * The two defaults of pynsbind's that a container cannot opt out of, done the
 * way a C program would:
 *   sealed=INIT  exec the command through a sealed memfd copy of the static
 *                program INIT (pynsbind's init in its "--exec" mode), made once;
 *   devices      a cgroup of its own in the v1 devices hierarchy per container:
 *                mkdir, deny all, allow the default devices, the child attached
 *                by the parent before it goes on, rmdir once it is reaped.
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
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

#define DEVICES "/sys/fs/cgroup/devices"
static const char *const ALLOW[] = {"c *:* m",   "b *:* m",    "c 1:3 rwm", "c 1:5 rwm",
                                    "c 1:7 rwm", "c 1:8 rwm",  "c 1:9 rwm", "c 5:0 rwm",
                                    "c 5:2 rwm", "c 136:* rwm"};

/* A sealed memfd copy of the program at path. */
static int sealed_copy(const char *path)
{
    static char buf[1 << 20];
    int in = open(path, O_RDONLY | O_CLOEXEC), fd;
    ssize_t n;
    if (in < 0)
        die("open the init");
    n = read(in, buf, sizeof(buf));
    close(in);
    if (n <= 0)
        die("read the init");
    fd = memfd_create("floor-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || write(fd, buf, (size_t)n) != n)
        die("memfd");
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
        die("seal");
    return fd;
}

static void write_file(int dir, const char *name, const char *const *values, int n)
{
    int fd = openat(dir, name, O_WRONLY | O_CLOEXEC), i;
    if (fd < 0)
        die(name);
    for (i = 0; i < n; i++)
        if (write(fd, values[i], strlen(values[i])) < 0)
            die(name);
    close(fd);
}

static void child(const char *rootfs, int lo, int sealed, int go)
{
    char proc[4096];
    char *argv[] = {"/bin/true", NULL};
    char *init_argv[] = {"nsb-init", "-", "2", "0", "--exec", "/bin/true", NULL};
    char *envp[] = {"PATH=/bin", NULL};
    char c;
    if (go >= 0 && read(go, &c, 1) != 1) /* the parent has attached it to its cgroup */
        die("wait for the attach");
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
    if (sealed >= 0)
        syscall(SYS_execveat, sealed, "", init_argv, envp, AT_EMPTY_PATH);
    else
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
    uint64_t flags =
        CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP;
    int n, i, each = 0, lo = 0, sealed = -1, devices = 0, base = -1;
    uint64_t *t, *sorted, sum = 0;
    for (i = 3; i < argc; i++) {
        if (strcmp(argv[i], "each") == 0)
            each = 1;
        else if (strcmp(argv[i], "lo") == 0)
            lo = 1;
        else if (strncmp(argv[i], "sealed=", 7) == 0)
            sealed = sealed_copy(argv[i] + 7);
        else if (strcmp(argv[i], "devices") == 0)
            devices = 1;
        else
            argc = 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: floor ROOTFS N [each] [lo] [sealed=INIT] [devices]\n");
        return 2;
    }
    if (devices && (base = open(DEVICES, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        die(DEVICES " (a v1 devices hierarchy)");
    n = atoi(argv[2]);
    if (n <= 0)
        return 2;
    t = calloc((size_t)n, sizeof(*t));
    sorted = calloc((size_t)n, sizeof(*sorted));
    if (t == NULL || sorted == NULL)
        die("calloc");
    for (i = 0; i < n; i++) {
        struct clone_args args;
        int status, pidfd = -1, go[2] = {-1, -1}, cg = -1, procs = -1;
        char name[64];
        uint64_t t0 = now();
        long pid;
        if (devices) {
            static const char *const deny[] = {"a"};
            snprintf(name, sizeof(name), "pynsbind-bench-floor-%d-%d", (int)getpid(), i);
            if (mkdirat(base, name, 0755) < 0)
                die("mkdir the devices cgroup");
            cg = openat(base, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (cg < 0)
                die("open the devices cgroup");
            write_file(cg, "devices.deny", deny, 1);
            write_file(cg, "devices.allow", ALLOW, (int)(sizeof(ALLOW) / sizeof(ALLOW[0])));
            procs = openat(cg, "cgroup.procs", O_WRONLY | O_CLOEXEC);
            if (procs < 0 || pipe2(go, O_CLOEXEC) < 0)
                die("cgroup.procs");
        }
        memset(&args, 0, sizeof(args));
        args.flags = flags | CLONE_PIDFD;
        args.pidfd = (uint64_t)(uintptr_t)&pidfd;
        args.exit_signal = SIGCHLD;
        pid = syscall(SYS_clone3, &args, sizeof(args));
        if (pid < 0)
            die("clone3");
        if (pid == 0)
            child(argv[1], lo, sealed, go[0]);
        if (devices) {
            if (dprintf(procs, "%ld", pid) < 0 || write(go[1], "g", 1) != 1)
                die("attach");
            close(procs);
            close(go[0]);
            close(go[1]);
        }
        if (waitpid((pid_t)pid, &status, 0) < 0)
            die("waitpid");
        close(pidfd);
        if (devices) {
            close(cg);
            while (unlinkat(base, name, AT_REMOVEDIR) < 0)
                if (errno != EBUSY)
                    die("rmdir the devices cgroup");
        }
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
