/* launcher_oci.c - pynsbind-run's OCI commands that run from C: `create` and
 * `run` of a container whose plan an earlier create of the same bundle kept,
 * and `start` and `delete` of containers without hooks.
 *
 * `pynsbind-run [--root DIR] [--log FILE] [--log-format F] create|run
 * [--bundle DIR] [--pid-file FILE] [-d] ID` looks up the plan kept under
 * pynsbind._replay.container_key (the root and bundle as given, the caller's
 * ids and working directory, the version and the boot), checks that the
 * bundle's config.json still holds the bytes it was made from and that the
 * other conditions hold, and does what pynsbind.container.Container.create
 * does: the container's directory under the root (locked), the copy of its
 * config, its cgroup with its limits (nsb_cg_create), the gate, the spawn
 * (the plan's own, the gate in it), state.json and the pid file.  `run` then
 * opens the gate, waits for the container (forwarding the signals a terminal
 * or a supervisor sends) and deletes it unless -d.
 *
 * `start ID` opens the gate of a created container; `delete ID` removes a
 * stopped one (its cgroup, its directory).  Both only for states whose
 * `hooks` is false (the Python half writes that member too).  `kill ID
 * [SIGNAL]` signals its first process; `state ID` prints its state document.
 *
 * Anything else - other options or commands, no plan, a condition that does
 * not hold, any failure before the container runs (undone first), a state
 * that needs more than this (hooks, a container still running, a cgroup that
 * will not go) - goes to the Python command line with the same arguments,
 * which does the work and reports what is wrong.  pynsbind/container.py is
 * the reference for every step here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "launcher.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define STATE "state.json"
#define CONFIG "config.json"
#define GATE "exec.fifo"
#define MAX_HIER 32

/* ---- the command line ---------------------------------------------------------------- */

struct cmdline {
    const char *root;     /* --root as given, or NULL */
    const char *verb;     /* create, run, start, delete, kill, state */
    const char *bundle;   /* --bundle as given, or NULL */
    const char *pid_file; /* --pid-file, or NULL */
    const char *id;
    const char *signal; /* kill's, or NULL */
    int detach, force;
};

/* `--name VALUE` or `--name=VALUE` (or the short form) at argv[*i]: 1 and the
 * value (*i past it), 0 when it is another word, -1 when the value is missing */
static int opt_value(char **argv, int argc, int *i, const char *name, const char *short_name,
                     const char **value)
{
    const char *a = argv[*i];
    size_t len = strlen(name);
    if (strcmp(a, name) == 0 || (short_name != NULL && strcmp(a, short_name) == 0)) {
        if (*i + 1 >= argc)
            return -1;
        *value = argv[*i + 1];
        *i += 2;
        return 1;
    }
    if (strncmp(a, name, len) == 0 && a[len] == '=') {
        *value = a + len + 1;
        *i += 1;
        return 1;
    }
    return 0;
}

/* the words pynsbind/_cli_runtime.py's _plan_key allows; 0, or -1 for any
 * other (the Python path parses them) */
static int parse_cmdline(int argc, char **argv, struct cmdline *c)
{
    int i = 1, r;
    const char *ignored;
    memset(c, 0, sizeof(*c));
    while (i < argc && argv[i][0] == '-') {
        if ((r = opt_value(argv, argc, &i, "--root", NULL, &c->root)) != 0 ||
            (r = opt_value(argv, argc, &i, "--log", NULL, &ignored)) != 0 ||
            (r = opt_value(argv, argc, &i, "--log-format", NULL, &ignored)) != 0) {
            if (r < 0)
                return -1;
            continue;
        }
        return -1;
    }
    if (i >= argc)
        return -1;
    c->verb = argv[i++];
    if (strcmp(c->verb, "create") != 0 && strcmp(c->verb, "run") != 0 &&
        strcmp(c->verb, "start") != 0 && strcmp(c->verb, "delete") != 0 &&
        strcmp(c->verb, "kill") != 0 && strcmp(c->verb, "state") != 0)
        return -1;
    while (i < argc) {
        int creates = c->verb[0] == 'c' || c->verb[0] == 'r';
        const char *a = argv[i];
        if (a[0] != '-') {
            if (c->id == NULL)
                c->id = a;
            else if (c->signal == NULL && strcmp(c->verb, "kill") == 0)
                c->signal = a; /* kill ID SIGNAL */
            else
                return -1;
            i++;
            continue;
        }
        if (creates && ((r = opt_value(argv, argc, &i, "--bundle", "-b", &c->bundle)) != 0 ||
                        (r = opt_value(argv, argc, &i, "--pid-file", NULL, &c->pid_file)) != 0)) {
            if (r < 0)
                return -1;
            continue;
        }
        if (creates && (strcmp(a, "--no-pivot") == 0 || strcmp(a, "--no-new-keyring") == 0)) {
            i++;
            continue;
        }
        if (strcmp(c->verb, "run") == 0 && (strcmp(a, "-d") == 0 || strcmp(a, "--detach") == 0)) {
            c->detach = 1;
            i++;
            continue;
        }
        if (strcmp(c->verb, "delete") == 0 && (strcmp(a, "-f") == 0 || strcmp(a, "--force") == 0)) {
            c->force = 1;
            i++;
            continue;
        }
        return -1;
    }
    return c->id == NULL ? -1 : 0;
}

/* pynsbind.container.check_id: letters, digits and _+-., not . or .. */
static int good_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 1024 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '+' || ch == '-' || ch == '.'))
            return 0;
    }
    return 1;
}

/* pynsbind.container.default_root, or the --root given when it is absolute
 * (a relative one: the Python path) */
static int state_root(const struct cmdline *c, char *out, size_t size)
{
    int n;
    if (c->root != NULL) {
        if (c->root[0] != '/')
            return -1;
        n = snprintf(out, size, "%s", c->root);
    } else if (geteuid() == 0) {
        n = snprintf(out, size, "/run/pynsbind");
    } else if (getenv("XDG_RUNTIME_DIR") != NULL && getenv("XDG_RUNTIME_DIR")[0] != '\0') {
        const char *rt = getenv("XDG_RUNTIME_DIR");
        if (rt[0] != '/')
            return -1;
        n = snprintf(out, size, "%s/pynsbind", rt);
    } else {
        n = snprintf(out, size, "/tmp/pynsbind-%u", (unsigned)geteuid());
    }
    if (n < 0 || (size_t)n >= size)
        return -1;
    /* os.path.abspath's normal form: no trailing slash, no "//", ".", ".." */
    if (strstr(out, "//") != NULL || strstr(out, "/./") != NULL || strstr(out, "/../") != NULL)
        return -1;
    n = (int)strlen(out);
    if (n > 1 && out[n - 1] == '/')
        return -1;
    if ((n >= 2 && strcmp(out + n - 2, "/.") == 0) || (n >= 3 && strcmp(out + n - 3, "/..") == 0))
        return -1;
    return 0;
}

/* ---- small file helpers ------------------------------------------------------------------ */

/* the whole file at dirfd/name (NUL-terminated, malloc'd), at most max bytes */
static char *read_file(int dirfd, const char *name, size_t max, size_t *len)
{
    struct stat st;
    char *data;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        close(fd);
        return NULL;
    }
    data = read_fd(fd, (size_t)st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return data;
}

/* pynsbind.container._write_atomic: a temporary file renamed over name */
static int write_atomic(int dirfd, const char *name, const char *data, size_t len, mode_t mode)
{
    char tmp[PATH_MAX];
    size_t done = 0;
    int fd = -1;
    /* a name nobody can guess, made new (a pid file's directory may be
     * writable by others: nobody else's file is ever written and renamed) */
    for (int tries = 0; fd < 0 && tries < 8; tries++) {
        uint64_t nonce = 0;
        if (getrandom(&nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce) ||
            snprintf(tmp, sizeof(tmp), "%s.%016llx.tmp", name, (unsigned long long)nonce) >=
                (int)sizeof(tmp))
            return -1;
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0 && errno != EEXIST)
            return -1;
    }
    if (fd < 0)
        return -1;
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n <= 0) {
            close(fd);
            unlinkat(dirfd, tmp, 0);
            return -1;
        }
        done += (size_t)n;
    }
    if (close(fd) < 0 || renameat(dirfd, tmp, dirfd, name) < 0) {
        unlinkat(dirfd, tmp, 0);
        return -1;
    }
    return 0;
}

/* field 22 of /proc/PID/stat (when it started); -1 when gone or a zombie */
static long long start_time(int pid)
{
    char path[64], state = 0;
    uint64_t started;
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if (proc_stat(path, 22, 1, &started, &state) < 0 || state == 'Z' || state == 'X')
        return -1;
    return (long long)started;
}

/* the directory dirfd/name emptied (its files: a container's directory has
 * no subdirectory) and removed */
static void remove_dir(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    struct dirent *e;
    if (d != NULL) {
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlinkat(fd, e->d_name, 0);
        closedir(d);
    } else if (fd >= 0) {
        close(fd);
    }
    unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* rmdir of each cgroup directory, waiting up to 0.1 s for the exiting
 * processes to leave (EBUSY); -1 when one stays */
static int remove_cgroup(char **dirs, int n)
{
    for (int i = 0; i < n; i++) {
        for (int tries = 0; rmdir(dirs[i]) < 0 && errno != ENOENT; tries++) {
            struct timespec ts = {0, 2000000};
            if (errno != EBUSY || tries >= 50)
                return -1;
            nanosleep(&ts, NULL);
        }
    }
    return 0;
}

/* ---- state.json, read -------------------------------------------------------------------- */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* past the strict JSON value at p (RFC 8259, in ASCII: what json.dumps and
 * this program write), at most depth levels deep; NULL for anything else,
 * which Python's json might read otherwise (or refuse) */
static const char *json_value(const char *p, int depth)
{
    p = skip_ws(p);
    if (depth <= 0)
        return NULL;
    if (*p == '"') {
        for (p++; *p != '"'; p++) {
            if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                return NULL;
            if (*p != '\\')
                continue;
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (strchr("0123456789abcdefABCDEF", p[i]) == NULL || p[i] == '\0')
                        return NULL;
                p += 4;
            } else if (*p == '\0' || strchr("\"\\/bfnrt", *p) == NULL) {
                return NULL;
            }
        }
        return p + 1;
    }
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = skip_ws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            if (close == '}') {
                if (*p != '"' || (p = json_value(p, 1)) == NULL)
                    return NULL;
                p = skip_ws(p);
                if (*p++ != ':')
                    return NULL;
            }
            if ((p = json_value(p, depth - 1)) == NULL)
                return NULL;
            p = skip_ws(p);
            if (*p == close)
                return p + 1;
            if (*p++ != ',')
                return NULL;
            p = skip_ws(p);
        }
    }
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0)
        return p + 4;
    if (strncmp(p, "false", 5) == 0)
        return p + 5;
    /* a number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        p += strspn(p, "0123456789");
    else
        return NULL;
    if (*p == '.') {
        size_t n = strspn(p + 1, "0123456789");
        if (n == 0)
            return NULL;
        p += 1 + n;
    }
    if (*p == 'e' || *p == 'E') {
        size_t n;
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if ((n = strspn(p, "0123456789")) == 0)
            return NULL;
        p += n;
    }
    return p;
}

/* the next member of an object json_value checked: p is past its '{' or
 * past the value of the member before; the member's name (its token, quotes
 * included) in *name and *len, its value at *value; past the value, or NULL
 * once the object ends */
static const char *next_member(const char *p, const char **name, size_t *len, const char **value)
{
    const char *end;
    p = skip_ws(p);
    if (*p == ',')
        p = skip_ws(p + 1);
    if (*p != '"')
        return NULL;
    end = json_value(p, 1);
    *name = p;
    *len = (size_t)(end - p);
    *value = skip_ws(skip_ws(end) + 1); /* (past the ':') */
    return json_value(*value, 64);
}

/* whether the object at obj (checked by json_value) names no member twice
 * (Python's json keeps the last value, member() finds the first) and has at
 * most 256 */
static int distinct_members(const char *obj)
{
    const char *names[256], *name, *value, *p = skip_ws(obj) + 1;
    size_t lens[256], len;
    int n = 0;
    while ((p = next_member(p, &name, &len, &value)) != NULL) {
        if (n >= 256)
            return 0;
        for (int i = 0; i < n; i++)
            if (lens[i] == len && memcmp(names[i], name, len) == 0)
                return 0;
        names[n] = name;
        lens[n++] = len;
    }
    return 1;
}

/* the value of the member `key` of the object at obj (checked by
 * json_value); NULL when there is none */
static const char *member(const char *obj, const char *key)
{
    const char *name, *value, *p = skip_ws(obj) + 1;
    size_t len, klen = strlen(key);
    while ((p = next_member(p, &name, &len, &value)) != NULL)
        if (len == klen + 2 && memcmp(name + 1, key, klen) == 0)
            return value;
    return NULL;
}

/* an integer member (an int's range); -1 when missing or not one */
static long long int_member(const char *json, const char *key)
{
    const char *v = member(json, key);
    char *end;
    long long n;
    if (v == NULL || *v < '0' || *v > '9')
        return -1;
    errno = 0;
    n = strtoll(v, &end, 10);
    /* (an integer as it is written: 1.0 or 1e3 are Python's to read) */
    if (end == v || errno != 0 || n > INT_MAX || *end == '.' || *end == 'e' || *end == 'E')
        return -1;
    return n;
}

/* the strings of an array member (copies of plain strings: no escapes),
 * NULL-terminated; *n 0 and a list of none when the member is missing;
 * NULL when malformed or a string has an escape */
static char **strings_member(const char *json, const char *key, int *n)
{
    const char *p = member(json, key);
    char **out = calloc(MAX_HIER + 1, sizeof(char *));
    *n = 0;
    if (out == NULL || p == NULL)
        return out;
    if (*p++ != '[')
        goto bad;
    p = skip_ws(p);
    if (*p == ']')
        return out;
    for (;;) {
        const char *end;
        p = skip_ws(p);
        if (*p != '"' || *n >= MAX_HIER)
            goto bad;
        end = strpbrk(p + 1, "\"\\");
        if (end == NULL || *end != '"')
            goto bad;
        out[*n] = strndup(p + 1, (size_t)(end - p - 1));
        if (out[*n] == NULL)
            goto bad;
        (*n)++;
        p = skip_ws(end + 1);
        if (*p == ']')
            return out;
        if (*p++ != ',')
            goto bad;
    }
bad:
    for (int i = 0; i < *n; i++)
        free(out[i]);
    free(out);
    return NULL;
}

static void free_strings(char **list, int n)
{
    for (int i = 0; list != NULL && i < n; i++)
        free(list[i]);
    free(list);
}

/* ---- a container's directory, locked ------------------------------------------------------ */

struct box {
    char root[PATH_MAX];
    int rootfd; /* the root */
    int dirfd;  /* root/ID, flock'd */
};

/* open root/ID and (lock) lock it (pynsbind.container._Lock); -1 when it is
 * not there, or the root is not the caller's alone */
static int open_box(const struct cmdline *c, struct box *b, int lock)
{
    struct stat st;
    b->rootfd = b->dirfd = -1;
    if (!good_id(c->id) || state_root(c, b->root, sizeof(b->root)) < 0)
        return -1;
    b->rootfd = open(b->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (b->rootfd < 0)
        return -1;
    /* what create makes and checks: the caller's, writable by it alone (else
     * somebody else may have written the state this acts on) */
    if (fstat(b->rootfd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
        close(b->rootfd);
        return -1;
    }
    b->dirfd = openat(b->rootfd, c->id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (b->dirfd < 0 || (lock && flock(b->dirfd, LOCK_EX) < 0)) {
        if (b->dirfd >= 0)
            close(b->dirfd);
        close(b->rootfd);
        return -1;
    }
    return 0;
}

static void close_box(struct box *b)
{
    if (b->dirfd >= 0)
        close(b->dirfd); /* releases the lock */
    if (b->rootfd >= 0)
        close(b->rootfd);
    b->dirfd = b->rootfd = -1;
}

/* state.json, a whole JSON object, strict and with no member twice; NULL
 * when it is not one, or not there */
static char *read_state(const struct box *b)
{
    size_t len;
    char *state = read_file(b->dirfd, STATE, 1 << 20, &len);
    const char *end = state == NULL || skip_ws(state)[0] != '{' ? NULL : json_value(state, 64);
    if (end == NULL || *skip_ws(end) != '\0' || !distinct_members(state)) {
        free(state);
        return NULL;
    }
    return state;
}

/* the state of a container that has no hooks (its `hooks` false), as
 * read_state reads it; NULL for any other, or none */
static char *hookless_state(const struct box *b)
{
    char *state = read_state(b);
    const char *hooks = state == NULL ? NULL : member(state, "hooks");
    if (hooks == NULL || strncmp(hooks, "false", 5) != 0) { /* (checked JSON: the literal) */
        free(state);
        return NULL;
    }
    return state;
}

/* ---- the gate ------------------------------------------------------------------------- */

/* pynsbind.process.start_gate: a byte into the FIFO, wait until the waiting
 * process has taken it and closed its end, remove the FIFO; -1 (before any
 * byte is written) when there is no gate or nobody waits at it */
static int open_gate(int dirfd)
{
    struct stat st, now;
    struct pollfd pfd;
    int fd;
    if (fstatat(dirfd, GATE, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISFIFO(st.st_mode))
        return -1;
    fd = openat(dirfd, GATE, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    if (fstat(fd, &now) < 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino ||
        write(fd, "", 1) != 1) {
        close(fd);
        return -1;
    }
    pfd.fd = fd;
    pfd.events = 0;
    while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
        ;
    if (fstatat(dirfd, GATE, &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_dev == st.st_dev &&
        now.st_ino == st.st_ino)
        unlinkat(dirfd, GATE, 0);
    close(fd);
    return 0;
}

/* pynsbind.process._Gate: the FIFO made (nothing may be there), opened
 * read-write for the child, checked to be the one made; its fd, or -1 */
static int make_gate(int dirfd)
{
    struct stat made, st;
    int fd;
    if (mkfifoat(dirfd, GATE, 0600) < 0)
        return -1;
    if (fstatat(dirfd, GATE, &made, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISFIFO(made.st_mode) ||
        made.st_uid != geteuid())
        return -1;
    fd = openat(dirfd, GATE, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || st.st_dev != made.st_dev || st.st_ino != made.st_ino ||
        fchmod(fd, 0600) < 0 || fcntl(fd, F_SETFL, O_RDWR) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- signals: what `run` forwards to the container's first process ----------------------- */

static volatile sig_atomic_t fwd_pidfd = -1;
static volatile sig_atomic_t fwd_running;
static volatile sig_atomic_t fwd_pending[NSIG];
static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
/* those of them that end a process by default: create holds them while it
 * makes the container (pynsbind.container._HELD) */
static const int ending[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

/* whether one of held is pending and not ignored (an ignored one is dropped
 * once unblocked) */
static int held_signal(const sigset_t *held)
{
    sigset_t pending;
    struct sigaction now;
    if (sigpending(&pending) < 0)
        return 0;
    for (size_t i = 0; i < sizeof(ending) / sizeof(ending[0]); i++)
        if (sigismember(held, ending[i]) == 1 && sigismember(&pending, ending[i]) == 1 &&
            sigaction(ending[i], NULL, &now) == 0 && now.sa_handler != SIG_IGN)
            return 1;
    return 0;
}

static void on_signal(int sig)
{
    int saved = errno;
    if (fwd_running && fwd_pidfd >= 0)
        syscall(SYS_pidfd_send_signal, (int)fwd_pidfd, sig, NULL, 0);
    else
        fwd_pending[sig] = 1; /* sent once it runs */
    errno = saved;
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        sigaction(forwarded[i], &sa, NULL);
}

/* ---- create ------------------------------------------------------------------------------ */

/* what a kept container holds (pynsbind._replay.encode_container) */
struct kept_container {
    const char *config_path, *config, *root, *state, *cgroup;
    size_t config_len;
    int cgroup_id;
    int nhier;
    struct nsb_cg_dir hier[MAX_HIER];
    const char *prog[MAX_HIER]; /* a device program's instructions (cgroup2) */
    size_t prog_len[MAX_HIER];
    uint32_t nslots;
    char slot_kind[64];
    int32_t slot_hier[64];
    struct kept kept;
};

static int load_container(struct reader *r, struct kept_container *kc)
{
    if (r->len - r->at < 8 || memcmp(r->data + r->at, "NSBOCI01", 8) != 0)
        return -1;
    r->at += 8;
    kc->config_path = take_str(r);
    kc->config = take_str_len(r, &kc->config_len);
    kc->root = take_str(r);
    kc->state = take_str(r);
    kc->cgroup = take_str(r);
    kc->cgroup_id = (int)take_uint(r, 1);
    kc->nhier = (int)(uint32_t)take_uint(r, 4);
    if (r->bad || kc->nhier > MAX_HIER)
        return -1;
    for (int i = 0; i < kc->nhier; i++) {
        uint32_t nkv;
        struct nsb_kv *kvs;
        kc->hier[i].base = take_str(r);
        nkv = (uint32_t)take_uint(r, 4);
        if (r->bad || nkv > 4096)
            return -1;
        kvs = calloc(nkv ? nkv : 1, sizeof(*kvs));
        if (kvs == NULL)
            return -1;
        for (uint32_t j = 0; j < nkv; j++) {
            size_t len = 0;
            kvs[j].key = take_str(r);
            kvs[j].value = take_str_len(r, &len);
            kvs[j].len = len;
        }
        kc->hier[i].kvs = kvs;
        kc->hier[i].nkv = (int32_t)nkv;
        kc->hier[i].prog_fd = -1;
        kc->prog[i] = take_str_len(r, &kc->prog_len[i]);
        if (r->bad || kc->prog_len[i] % 8 != 0 || kc->prog_len[i] > (1u << 20))
            return -1;
    }
    kc->nslots = (uint32_t)take_uint(r, 4);
    if (r->bad || kc->nslots > sizeof(kc->slot_kind))
        return -1;
    for (uint32_t i = 0; i < kc->nslots; i++) {
        kc->slot_kind[i] = (char)take_uint(r, 1);
        kc->slot_hier[i] = (int32_t)(uint32_t)take_uint(r, 4);
        if (strchr("012igdp", kc->slot_kind[i]) == NULL || kc->slot_kind[i] == '\0' ||
            ((kc->slot_kind[i] == 'd' || kc->slot_kind[i] == 'p') &&
             (kc->slot_hier[i] < 0 || kc->slot_hier[i] >= kc->nhier)))
            return -1;
    }
    if (r->bad || load_plan(r, &kc->kept, NULL, 0, 1) < 0)
        return -1;
    /* the slots are the plan's: stdio first, as every plan has them */
    return kc->nslots >= 3 && kc->slot_kind[0] == '0' && kc->slot_kind[1] == '1' &&
                   kc->slot_kind[2] == '2'
               ? 0
               : -1;
}

static void close_programs(struct kept_container *kc)
{
    for (int i = 0; i < kc->nhier; i++) {
        if (kc->hier[i].prog_fd >= 0)
            close(kc->hier[i].prog_fd);
        kc->hier[i].prog_fd = -1;
    }
}

/* what a create made, to take back when it fails */
struct made {
    int rootfd;
    const char *id;
    int dir_made;
    char *cg_dirs[MAX_HIER];
    int ncg;
    int cg_fds[MAX_HIER];
    int slot_fds[64];
    int nslot_fds;
};

static void undo(struct made *m)
{
    for (int i = 0; i < m->nslot_fds; i++)
        if (m->slot_fds[i] > 2)
            close(m->slot_fds[i]);
    m->nslot_fds = 0;
    for (int i = 0; i < m->ncg; i++) {
        if (m->cg_fds[i] >= 0)
            close(m->cg_fds[i]);
        m->cg_fds[i] = -1;
    }
    for (int i = m->ncg - 1; i >= 0; i--)
        rmdir(m->cg_dirs[i]);
    m->ncg = 0;
    if (m->dir_made)
        remove_dir(m->rootfd, m->id);
    m->dir_made = 0;
}

static void timestamp(char *out, size_t size)
{
    struct timespec ts;
    struct tm tm;
    char head[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(head, sizeof(head), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, size, "%s.%09ldZ", head, (long)ts.tv_nsec);
}

/* the pid file (pynsbind.container._write_atomic of its absolute path) */
static int write_pid_file(const char *path, int pid)
{
    char num[32], dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int dfd, r;
    int n = snprintf(num, sizeof(num), "%d", pid);
    if (slash == NULL) {
        dfd = AT_FDCWD;
    } else {
        size_t len = (size_t)(slash - path);
        if (len >= sizeof(dir))
            return -1;
        memcpy(dir, path, len);
        dir[len] = '\0';
        dfd = open(len == 0 ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            return -1;
    }
    r = write_atomic(dfd, slash == NULL ? path : slash + 1, num, (size_t)n, 0644);
    if (dfd >= 0)
        close(dfd);
    return r;
}

/* create (and, for run, start, wait and delete) from the kept plan; returns
 * only when the Python path must do it, with nothing left behind */
static void create_container(const struct cmdline *c, char **argv)
{
    struct buf key = {NULL, 0, 0};
    struct reader r = {NULL, 0, 0, 0};
    struct kept_container kc;
    struct made m;
    struct nsb_result res;
    struct stat st;
    char rel[PATH_MAX], created[64], num[64];
    char *config = NULL;
    struct buf state = {NULL, 0, 0};
    size_t config_len = 0;
    int32_t fds[64];
    int rootfd, dirfd = -1, gate = -1, init = -1;
    long long pid_start;
    sigset_t held, saved_mask;

    sigprocmask(SIG_SETMASK, NULL, &saved_mask);
    if (!good_id(c->id) || key_head(&key, "pynsbind container plan") < 0 ||
        key_word(&key, c->root != NULL ? c->root : "") < 0 ||
        key_word(&key, c->bundle != NULL ? c->bundle : "") < 0)
        return;
    r.data = read_kept(&key, &r.len, &r.at);
    free(key.data);
    memset(&kc, 0, sizeof(kc));
    if (r.data == NULL || load_container(&r, &kc) < 0)
        return;
    /* the bundle's config, as it was */
    config = read_file(AT_FDCWD, kc.config_path, 1 << 22, &config_len);
    if (config == NULL || config_len != kc.config_len || memcmp(config, kc.config, config_len) != 0)
        return;
    if (kc.cgroup[0] != '\0') {
        int n = snprintf(rel, sizeof(rel), "%s%s", kc.cgroup, kc.cgroup_id ? c->id : "");
        if (n < 0 || (size_t)n >= sizeof(rel))
            return;
    }
    /* the root: made if missing, the caller's and writable by it alone */
    if (mkdir(kc.root, 0700) < 0 && errno != EEXIST)
        return;
    rootfd = open(kc.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return;
    if (fstat(rootfd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
        close(rootfd);
        return;
    }
    memset(&m, 0, sizeof(m));
    m.rootfd = rootfd;
    m.id = c->id;
    /* from the first thing made on: run holds the signals that would end it
     * until the container runs, then forwards them; create blocks them until
     * the container is made (or undone) */
    sigemptyset(&held);
    for (size_t i = 0; i < sizeof(ending) / sizeof(ending[0]); i++)
        sigaddset(&held, ending[i]);
    if (strcmp(c->verb, "run") == 0)
        catch_signals();
    else
        sigprocmask(SIG_BLOCK, &held, &saved_mask);
    if (mkdirat(rootfd, c->id, 0700) < 0)
        goto fail_late; /* (it exists: the Python path says so) */
    m.dir_made = 1;
    dirfd = openat(rootfd, c->id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (dirfd < 0 || flock(dirfd, LOCK_EX) < 0 ||
        write_atomic(dirfd, CONFIG, config, config_len, 0600) < 0)
        goto fail;
    /* the cgroup, with its limits, in every hierarchy */
    if (kc.cgroup[0] != '\0') {
        int failed_dir, failed_kv;
        int r_create;
        for (int i = 0; i < kc.nhier; i++) {
            m.cg_fds[i] = -1;
            if (kc.prog_len[i] > 0 && (kc.hier[i].prog_fd = nsb_bpf_load_device_prog(
                                           kc.prog[i], (int)(kc.prog_len[i] / 8), NULL, 0)) < 0) {
                close_programs(&kc);
                goto fail;
            }
        }
        r_create = nsb_cg_create(kc.hier, kc.nhier, rel, m.cg_fds, &failed_dir, &failed_kv);
        close_programs(&kc); /* (attached: the cgroup holds them now) */
        if (r_create < 0) {
            /* made: those before the failed one, and it unless its mkdir failed */
            int made_n = failed_dir + (failed_kv != -1);
            int opened = failed_dir + (failed_kv >= 0 || failed_kv == -3);
            for (int i = opened; i < kc.nhier; i++)
                m.cg_fds[i] = -1;
            for (int i = 0; i < made_n; i++)
                if (asprintf(&m.cg_dirs[m.ncg], "%s/%s", kc.hier[i].base, rel) >= 0)
                    m.ncg++;
            goto fail;
        }
        for (int i = 0; i < kc.nhier; i++) {
            if (asprintf(&m.cg_dirs[i], "%s/%s", kc.hier[i].base, rel) < 0) {
                m.cg_dirs[i] = NULL;
                goto fail;
            }
            m.ncg = i + 1;
        }
    }
    /* the fd table of the plan's slots */
    for (uint32_t i = 0; i < kc.nslots; i++) {
        int fd = -1;
        switch (kc.slot_kind[i]) {
        case '0':
        case '1':
        case '2':
            fd = kc.slot_kind[i] - '0';
            break;
        case 'i':
            fd = init = sealed_init(kc.kept.init);
            break;
        case 'g':
            fd = gate = make_gate(dirfd);
            break;
        case 'd':
            fd = m.ncg > 0 ? m.cg_fds[kc.slot_hier[i]] : -1;
            break;
        case 'p':
            fd = m.ncg > 0 ? openat(m.cg_fds[kc.slot_hier[i]], "cgroup.procs", O_WRONLY | O_CLOEXEC)
                           : -1;
            if (fd >= 0)
                m.slot_fds[m.nslot_fds++] = fd;
            break;
        }
        if (fd < 0)
            goto fail;
        fds[i] = fd;
    }
    memset(&res, 0, sizeof(res));
    if (nsb_spawn(&kc.kept.plan, fds, (int)kc.nslots, 0, &res) < 0)
        goto fail; /* undone by the engine: nothing of it runs */
    if (res.listener_fd >= 0)
        close(res.listener_fd);
    if (res.terminal_fd >= 0)
        close(res.terminal_fd);
    close(gate);
    gate = -1;
    close(init);
    init = -1;
    for (int i = 0; i < kc.nhier && m.ncg > 0; i++) {
        close(m.cg_fds[i]);
        m.cg_fds[i] = -1;
    }
    for (int i = 0; i < m.nslot_fds; i++)
        close(m.slot_fds[i]);
    m.nslot_fds = 0;

    /* state.json: the members pynsbind.container.Container.create writes */
    pid_start = start_time(res.pid);
    timestamp(created, sizeof(created));
    if (buf_add(&state, "{\"id\": \"", 8) < 0 || buf_add(&state, c->id, strlen(c->id)) < 0 ||
        buf_add(&state, "\", \"created\": \"", 15) < 0 ||
        buf_add(&state, created, strlen(created)) < 0 || buf_add(&state, "\", ", 3) < 0 ||
        buf_add(&state, kc.state, strlen(kc.state)) < 0)
        goto kill;
    if (m.ncg > 0) {
        if (buf_add(&state, ", \"cgroup\": \"", 13) < 0 || buf_add(&state, rel, strlen(rel)) < 0 ||
            buf_add(&state, "\", \"cgroup_dirs\": [", 19) < 0)
            goto kill;
        for (int i = 0; i < m.ncg; i++) {
            if ((i > 0 && buf_add(&state, ", ", 2) < 0) || buf_add(&state, "\"", 1) < 0 ||
                buf_add(&state, m.cg_dirs[i], strlen(m.cg_dirs[i])) < 0 ||
                buf_add(&state, "\"", 1) < 0)
                goto kill;
        }
        if (buf_add(&state, "]", 1) < 0)
            goto kill;
    }
    snprintf(num, sizeof(num), ", \"pid\": %d, \"pid_start\": ", (int)res.pid);
    if (buf_add(&state, num, strlen(num)) < 0)
        goto kill;
    snprintf(num, sizeof(num), pid_start < 0 ? "null}" : "%lld}", pid_start);
    if (buf_add(&state, num, strlen(num)) < 0 ||
        write_atomic(dirfd, STATE, state.data, state.len, 0600) < 0)
        goto kill;
    if (c->pid_file != NULL && write_pid_file(c->pid_file, (int)res.pid) < 0) {
        unlinkat(dirfd, STATE, 0);
        goto kill;
    }
    free(state.data);
    free(config);
    state.data = config = NULL;

    if (strcmp(c->verb, "create") == 0) {
        if (held_signal(&held)) {
            /* it came while the container was made: it wins, nothing is left
             * (pynsbind.container does the same), and it ends this process
             * once unblocked */
            if (c->pid_file != NULL)
                unlink(c->pid_file);
            unlinkat(dirfd, STATE, 0);
            goto kill;
        }
        /* the container outlives this process: its caller (a subreaper) reaps it */
        close(dirfd);
        exit(0);
    }

    /* run: start it (a first process gone already is waited for below, its
     * status the answer), and unless -d wait for it and delete it */
    (void)open_gate(dirfd);
    close(dirfd);
    dirfd = -1;
    if (c->detach) {
        exit(0);
    }
    {
        int code;
        fwd_pidfd = res.pidfd;
        fwd_running = 1;
        for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
            if (fwd_pending[forwarded[i]])
                on_signal(forwarded[i]);
        code = wait_exit(&res);
        if (code < 0) {
            perror("pynsbind-run: waitid");
            exit(255);
        }
        fwd_running = 0;
        fwd_pidfd = -1;
        if (res.pidfd >= 0)
            close(res.pidfd);
        if (res.sync_fd >= 0)
            close(res.sync_fd);
        /* delete it, locked: its cgroup and its directory (the Python delete
         * --force when its cgroup will not go: processes left in it) */
        dirfd = openat(rootfd, c->id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dirfd >= 0 && flock(dirfd, LOCK_EX) == 0 && remove_cgroup(m.cg_dirs, m.ncg) == 0) {
            remove_dir(rootfd, c->id);
        } else {
            if (dirfd >= 0)
                close(dirfd); /* (the lock: Python's to take) */
            dirfd = -1;
            pid_t helper = fork();
            if (helper == 0) {
                char *del[8];
                int n = 0;
                del[n++] = argv[0];
                if (c->root != NULL) {
                    del[n++] = (char *)"--root";
                    del[n++] = (char *)c->root;
                }
                del[n++] = (char *)"delete";
                del[n++] = (char *)"--force";
                del[n++] = (char *)c->id;
                del[n] = NULL;
                python_path(del);
            }
            if (helper > 0)
                while (waitpid(helper, NULL, 0) < 0 && errno == EINTR)
                    ;
        }
        exit(code);
    }

kill:
    /* spawned, but it may not stay (its state could not be written, or a
     * signal came): the process goes first */
    if (res.pidfd >= 0) {
        syscall(SYS_pidfd_send_signal, res.pidfd, SIGKILL, NULL, 0);
        waitid((idtype_t)P_PIDFD, (id_t)res.pidfd, NULL, WEXITED);
        close(res.pidfd);
    } else {
        kill(res.pid, SIGKILL);
        waitpid(res.pid, NULL, 0);
    }
    if (res.sync_fd >= 0)
        close(res.sync_fd);
    remove_cgroup(m.cg_dirs, m.ncg);
    m.ncg = 0;
    goto fail_late;
fail:
    if (gate >= 0)
        close(gate);
    if (init >= 0)
        close(init);
fail_late:
    if (dirfd >= 0)
        close(dirfd);
    undo(&m);
    close(rootfd);
    free(state.data);
    free(config);
    if (strcmp(c->verb, "create") == 0) {
        sigprocmask(SIG_SETMASK, &saved_mask, NULL); /* (exec keeps a mask) */
    } else {
        /* run: a signal that came meanwhile ends it now, everything undone
         * (the Python path would not know of it) */
        for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
            signal(forwarded[i], SIG_DFL);
        for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
            if (fwd_pending[forwarded[i]])
                raise(forwarded[i]);
    }
}

/* ---- start, delete, kill -------------------------------------------------------------- */

/* whether dirs are the container's cgroup (its `cgroup`, relative, without
 * "." or ".." components) in hierarchies of cgroup filesystems: nothing else
 * is removed, whatever the state says; none when it has no cgroup */
static int cgroups_of(const char *state, char **dirs, int n)
{
    const char *v = member(state, "cgroup");
    char rel[PATH_MAX];
    const char *end;
    size_t len;
    if (v == NULL)
        return n == 0;
    if (*v != '"' || (end = strpbrk(v + 1, "\"\\")) == NULL || *end != '"' || n == 0)
        return 0;
    len = (size_t)(end - v - 1);
    if (len == 0 || len >= sizeof(rel))
        return 0;
    memcpy(rel, v + 1, len);
    rel[len] = '\0';
    if (rel[0] == '/' || strstr(rel, "//") != NULL || strcmp(rel, ".") == 0 ||
        strncmp(rel, "./", 2) == 0 || strncmp(rel, "../", 3) == 0 || strstr(rel, "/./") != NULL ||
        strstr(rel, "/../") != NULL || strcmp(rel, "..") == 0 ||
        (len >= 3 && strcmp(rel + len - 3, "/..") == 0) ||
        (len >= 2 && strcmp(rel + len - 2, "/.") == 0))
        return 0;
    for (int i = 0; i < n; i++) {
        size_t dlen = strlen(dirs[i]);
        struct statfs fs;
        if (dirs[i][0] != '/' || dlen <= len + 1 || dirs[i][dlen - len - 1] != '/' ||
            strcmp(dirs[i] + dlen - len, rel) != 0)
            return 0;
        if (statfs(dirs[i], &fs) == 0) {
            if (fs.f_type != CGROUP_SUPER_MAGIC && fs.f_type != CGROUP2_SUPER_MAGIC)
                return 0;
        } else if (errno != ENOENT) {
            return 0;
        }
    }
    return 1;
}

/* a container's state, read in its directory (locked for start and delete) */
struct loaded {
    struct box box;
    char *state;
    long long pid, started; /* its first process, when it started */
    char **dirs;            /* its cgroup, checked by cgroups_of */
    int ndirs;
};

static void unload(struct loaded *l)
{
    free_strings(l->dirs, l->ndirs);
    free(l->state);
    close_box(&l->box);
}

/* the state of root/ID (hookless: only a container without hooks), checked:
 * a whole object, a pid, its cgroup where cgroups are; -1 (nothing held) for
 * anything else */
static int load_state(const struct cmdline *c, int lock, int hookless, struct loaded *l)
{
    memset(l, 0, sizeof(*l));
    if (open_box(c, &l->box, lock) < 0)
        return -1;
    l->state = hookless ? hookless_state(&l->box) : read_state(&l->box);
    l->dirs = l->state == NULL ? NULL : strings_member(l->state, "cgroup_dirs", &l->ndirs);
    if (l->dirs != NULL && cgroups_of(l->state, l->dirs, l->ndirs)) {
        l->pid = int_member(l->state, "pid");
        l->started = int_member(l->state, "pid_start");
        if (l->pid > 0)
            return 0;
    }
    unload(l);
    return -1;
}

/* whether its first process is alive, and the process it started */
static int alive(const struct loaded *l)
{
    return l->started >= 0 && start_time((int)l->pid) == l->started;
}

/* start ID: the gate opened, when the container is created and has no hooks */
static void start_container(const struct cmdline *c)
{
    struct loaded l;
    if (load_state(c, 1, 1, &l) < 0)
        return;
    if (alive(&l) && open_gate(l.box.dirfd) == 0) {
        unload(&l);
        exit(0);
    }
    unload(&l);
}

/* delete [-f] ID: a stopped container without hooks removed (its cgroup, its
 * directory); one that runs, or any doubt, goes the Python way */
static void delete_container(const struct cmdline *c)
{
    struct loaded l;
    if (load_state(c, 1, 1, &l) < 0)
        return;
    if (!alive(&l) && remove_cgroup(l.dirs, l.ndirs) == 0) {
        remove_dir(l.box.rootfd, c->id);
        unload(&l);
        exit(0);
    }
    unload(&l);
}

/* a signal by number or name, with or without SIG (pynsbind._cli_runtime's
 * _signal); -1 for any other word */
static int signal_number(const char *text)
{
    static const struct {
        const char *name;
        int number;
    } names[] = {
        {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},     {"ILL", SIGILL},
        {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"IOT", SIGIOT},       {"BUS", SIGBUS},
        {"FPE", SIGFPE},       {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},
        {"USR2", SIGUSR2},     {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM},
        {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP},
        {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
        {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
        {"WINCH", SIGWINCH},   {"IO", SIGIO},     {"POLL", SIGPOLL},     {"PWR", SIGPWR},
        {"SYS", SIGSYS},
    };
    char upper[16];
    const char *name;
    size_t n = strlen(text);
    if (n > 0 && strspn(text, "0123456789") == n) {
        long v = n <= 2 ? strtol(text, NULL, 10) : 0;
        return v > 0 && v < 65 ? (int)v : -1;
    }
    if (n == 0 || n >= sizeof(upper))
        return -1;
    for (size_t i = 0; i <= n; i++)
        upper[i] = (char)(text[i] >= 'a' && text[i] <= 'z' ? text[i] - 'a' + 'A' : text[i]);
    name = strncmp(upper, "SIG", 3) == 0 ? upper + 3 : upper;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i].name) == 0)
            return names[i].number;
    return -1;
}

/* a small file of a pseudo filesystem (its size says 0) into buf, NUL
 * terminated: 1, or 0 when it is not there or cannot be read */
static int read_small(int dirfd, const char *name, char *buf, size_t size)
{
    ssize_t n;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return 0;
    buf[n] = '\0';
    return 1;
}

/* whether the container's cgroup is frozen as Cgroup.frozen reads it (a v1
 * freezer.state of FROZEN, or a cgroup.events that says frozen): what
 * Container.status calls paused, and what Container.kill thaws after a
 * SIGKILL */
static int frozen(char **dirs, int n)
{
    for (int i = 0; i < n; i++) {
        char text[512];
        const char *f;
        int fd = open(dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int is = 0;
        if (fd < 0)
            continue;
        if (read_small(fd, "freezer.state", text, sizeof(text)))
            is = strcmp(text, "FROZEN\n") == 0 || strcmp(text, "FROZEN") == 0;
        if (!is && read_small(fd, "cgroup.events", text, sizeof(text))) {
            f = strncmp(text, "frozen ", 7) == 0 ? text : strstr(text, "\nfrozen ");
            is = f != NULL && f[f[0] == '\n' ? 8 : 7] == '1';
        }
        close(fd);
        if (is)
            return 1;
    }
    return 0;
}

/* kill ID [SIGNAL]: the signal to the container's first process, through a
 * pidfd checked to be it (pynsbind.container.Container.kill, no lock taken);
 * SIGKILL to a frozen container (which its thaw must follow), --all, a
 * container not created, running or paused: the Python way */
static void kill_container(const struct cmdline *c)
{
    struct loaded l;
    int sig = c->signal == NULL ? SIGTERM : signal_number(c->signal), done = 0;
    if (sig < 0 || load_state(c, 0, 0, &l) < 0)
        return;
    if (alive(&l) && (sig != SIGKILL || !frozen(l.dirs, l.ndirs))) {
        int fd = (int)syscall(SYS_pidfd_open, (pid_t)l.pid, 0);
        /* the pid is still the container's once the pidfd holds it */
        if (fd >= 0 && alive(&l) && syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) == 0)
            done = 1;
        if (fd >= 0)
            close(fd);
    }
    unload(&l);
    if (done)
        exit(0);
}

/* ---- state ----------------------------------------------------------------------------- */

/* text added to a buffer: 0, or -1 (no memory) */
static int add(struct buf *b, const char *text) { return buf_add(b, text, strlen(text)); }

/* past the JSON string token at p when it is one json.dumps writes (its
 * default ensure_ascii: printable ASCII as it is, but for the escaped quote
 * and backslash; \b \f \n \r \t; \u and four lowercase hex digits for any
 * other control character and all beyond ASCII), so that copying it prints what
 * Python would; NULL for any other */
static const char *dumps_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    for (;;) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"')
            return p + 1;
        if (ch < 0x20 || ch > 0x7e)
            return NULL;
        if (ch != '\\') {
            p++;
            continue;
        }
        if (p[1] != '\0' && strchr("\"\\bfnrt", p[1]) != NULL) {
            p += 2;
            continue;
        }
        if (p[1] != 'u')
            return NULL;
        unsigned v = 0;
        for (int i = 2; i < 6; i++) {
            char h = p[i];
            if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f')))
                return NULL;
            v = v * 16 + (unsigned)(h <= '9' ? h - '0' : h - 'a' + 10);
        }
        if ((v >= 0x20 && v < 0x7f) || v == 8 || v == 9 || v == 10 || v == 12 || v == 13)
            return NULL; /* written otherwise */
        p += 6;
    }
}

/* a string member of state.json as json.dumps wrote it, into out (the empty
 * string "" when missing); -1 when it is there but not such a string */
static int string_member(const char *state, const char *key, struct buf *out)
{
    const char *v = member(state, key), *end;
    if (v == NULL)
        return add(out, "\"\"");
    end = dumps_string(v);
    return end == NULL ? -1 : buf_add(out, v, (size_t)(end - v));
}

/* the annotations, as json.dumps(..., indent=2) prints them in the state
 * document: none for a missing, null or empty object; -1 for anything else
 * than an object of strings with distinct keys */
static int annotations(const char *state, struct buf *out)
{
    const char *p = member(state, "annotations"), *name, *value, *end;
    size_t len;
    int n = 0;
    if (p == NULL || strncmp(p, "null", 4) == 0)
        return 0;
    if (*p != '{' || !distinct_members(p))
        return -1;
    for (p = skip_ws(p) + 1; (p = next_member(p, &name, &len, &value)) != NULL; n++) {
        if (dumps_string(name) != name + len || (end = dumps_string(value)) == NULL ||
            add(out, n == 0 ? ",\n  \"annotations\": {\n    " : ",\n    ") < 0 ||
            buf_add(out, name, len) < 0 || add(out, ": ") < 0 ||
            buf_add(out, value, (size_t)(end - value)) < 0)
            return -1;
    }
    return n == 0 ? 0 : add(out, "\n  }");
}

/* state ID: the state document as pynsbind-run's Python half prints it
 * (json.dumps(Container.state(), indent=2)): the status read now (stopped,
 * created while the gate is there, paused, running), the strings as
 * state.json holds them; any other state (creating, a member json.dumps
 * would not have written), the Python way */
static void state_container(const struct cmdline *c)
{
    struct loaded l;
    struct buf out = {0};
    const char *status;
    char head[1536];
    struct stat st;
    int n, ok;
    if (load_state(c, 0, 0, &l) < 0)
        return;
    if (l.started < 0 && member(l.state, "pid_start") != NULL) {
        unload(&l); /* (not an integer as this reads one: the Python way) */
        return;
    }
    if (!alive(&l))
        status = "stopped";
    else if (fstatat(l.box.dirfd, GATE, &st, 0) == 0)
        status = "created";
    else
        status = frozen(l.dirs, l.ndirs) ? "paused" : "running";
    n = snprintf(head, sizeof(head),
                 "{\n  \"ociVersion\": \"1.2.0\",\n  \"id\": \"%s\",\n  \"status\": \"%s\",\n"
                 "  \"pid\": %lld,\n  \"bundle\": ",
                 c->id, status, strcmp(status, "stopped") == 0 ? 0 : l.pid);
    ok = n > 0 && (size_t)n < sizeof(head) && buf_add(&out, head, (size_t)n) == 0 &&
         string_member(l.state, "bundle", &out) == 0 && add(&out, ",\n  \"rootfs\": ") == 0 &&
         string_member(l.state, "rootfs", &out) == 0 && add(&out, ",\n  \"created\": ") == 0 &&
         string_member(l.state, "created", &out) == 0 && add(&out, ",\n  \"owner\": ") == 0 &&
         string_member(l.state, "owner", &out) == 0 && annotations(l.state, &out) == 0 &&
         add(&out, "\n}\n") == 0;
    unload(&l);
    if (ok) {
        /* (nothing was written before: a state that cannot be printed is the
         * Python half's, whole) */
        size_t done = 0;
        while (done < out.len) {
            ssize_t w = write(STDOUT_FILENO, out.data + done, out.len - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                exit(1);
            done += (size_t)w;
        }
        exit(0);
    }
    free(out.data);
}

void oci_main(int argc, char **argv)
{
    struct cmdline c;
    if (getenv("PYNSBIND_PLANS_CACHE") != NULL && strcmp(getenv("PYNSBIND_PLANS_CACHE"), "0") == 0)
        return;
    if (parse_cmdline(argc, argv, &c) < 0)
        return;
    if (strcmp(c.verb, "create") == 0 || strcmp(c.verb, "run") == 0)
        create_container(&c, argv);
    else if (strcmp(c.verb, "start") == 0)
        start_container(&c);
    else if (strcmp(c.verb, "kill") == 0)
        kill_container(&c);
    else if (strcmp(c.verb, "state") == 0)
        state_container(&c);
    else
        delete_container(&c);
}
