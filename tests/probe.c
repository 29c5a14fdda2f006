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
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
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

static void result_errno(int ok)
{
    printf("{\"errno\": %d}\n", ok ? 0 : errno);
}

static void info(void)
{
    static const char *kinds[] = {"user", "pid", "mnt", "net", "uts", "ipc", "cgroup", "time"};
    static const struct {
        const char *name;
        int res;
    } limits[] = {{"NOFILE", RLIMIT_NOFILE}, {"NPROC", RLIMIT_NPROC}, {"CORE", RLIMIT_CORE},
                  {"STACK", RLIMIT_STACK},   {"AS", RLIMIT_AS},       {"FSIZE", RLIMIT_FSIZE},
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
