/* launcher.c - pynsbind-run itself: what runs from a kept plan runs from C.
 *
 * `pynsbind-run sandbox [OPTIONS] -- COMMAND [ARG...]` (or `sandbox COMMAND...`
 * with no option) looks up the plan that an earlier run of the same command
 * line kept, checks that the conditions it was made under still hold, and
 * spawns it with the engine (spawn.c, child.c, child_fs.c), the command put in:
 * no Python starts.  pynsbind/_replay.py defines both halves of that contract
 * and writes the plans: the key (_replay.key), the cache directory and its
 * checks (pynsbind/_diskcache.py) and the file's layout (_replay.encode).
 *
 * The OCI commands that run from kept plans (create, run) and from a
 * container's state (start, kill, delete, state) are launcher_oci.c's; the
 * kept files of both are read here (launcher.h).
 *
 * Everything else - another command, other words, no plan, a plan that cannot
 * be trusted or whose conditions do not hold, a spawn that fails before the
 * command runs - goes to the Python command line: pynsbind-run.py beside this
 * program (pip writes the path of its interpreter on its first line), exec'd
 * with the same arguments, which does the work (and says what is wrong) and
 * keeps a plan for next time.
 *
 * Errors: every helper returns 0 (or a count, a pointer) on success and -1
 * (NULL) on failure, and a failure anywhere before the spawn means "take the
 * Python path": nothing here reports an error of its own but the one that
 * stops even that path (pynsbind-run.py missing).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/seccomp.h>

#include "launcher.h"

#ifndef NSB_VERSION
#error "NSB_VERSION must be defined by the build (setup.py)"
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define NSB_MAX_FILE (1 << 20) /* pynsbind/_diskcache.py's _MAX_FILE */

/* The kept plans have no hook of the caller's (pynsbind._replay.without_command
 * refuses them): the engine never calls this here. */
int nsb_hook_call(int64_t key, int32_t pact, int32_t pid)
{
    (void)key;
    (void)pact;
    (void)pid;
    return 0;
}

/* ---- the Python path ------------------------------------------------------------- */

void python_path(char **argv)
{
    char self[PATH_MAX];
    char script[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;
    if (n > 0) {
        self[n] = '\0';
        slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            snprintf(script, sizeof(script), "%s/pynsbind-run.py", self);
            argv[0] = script;
            execv(script, argv);
        }
    }
    fprintf(stderr, "pynsbind-run: cannot run pynsbind-run.py beside %s: %s (reinstall pynsbind)\n",
            n > 0 ? self : "this program", strerror(errno));
    exit(125);
}

/* ---- the key and the cache file ------------------------------------------------------ */

int buf_add(struct buf *b, const void *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = (b->len + len + 1) * 2;
        char *grown = realloc(b->data, cap);
        if (grown == NULL)
            return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int key_word(struct buf *b, const char *word)
{
    if (b->len > 0 && buf_add(b, "", 1) < 0)
        return -1;
    return buf_add(b, word, strlen(word));
}

/* the words every key begins with (pynsbind._replay.key, container_key):
 * `magic`, the version, the ABI, the boot id, the caller's uid, gid and
 * working directory */
int key_head(struct buf *key, const char *magic)
{
    char boot[64], num[32], cwd[PATH_MAX];
    ssize_t n;
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, boot, sizeof(boot) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    while (n > 0 && (boot[n - 1] == '\n' || boot[n - 1] == ' '))
        n--;
    boot[n] = '\0';
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return -1;
    if (key_word(key, magic) < 0 || key_word(key, NSB_VERSION) < 0)
        return -1;
    snprintf(num, sizeof(num), "%d", NSB_ABI_VERSION);
    if (key_word(key, num) < 0 || key_word(key, boot) < 0)
        return -1;
    snprintf(num, sizeof(num), "%u", (unsigned)geteuid());
    if (key_word(key, num) < 0)
        return -1;
    snprintf(num, sizeof(num), "%u", (unsigned)getegid());
    return key_word(key, num) < 0 || key_word(key, cwd) < 0 ? -1 : 0;
}

/* pynsbind._replay.key: the words joined by NULs */
static int make_key(struct buf *key, char **prefix, int nprefix, const char *command)
{
    if (key_head(key, "pynsbind sandbox plan") < 0)
        return -1;
    if (key_word(key, strchr(command, '/') != NULL ? "path" : "name") < 0)
        return -1;
    for (int i = 0; i < nprefix; i++)
        if (key_word(key, prefix[i]) < 0)
            return -1;
    return 0;
}

/* pynsbind._diskcache._open_safe: the path opened one component at a time
 * from /, never through a symlink, each directory on the way the caller's or
 * root's and writable by nobody else (or sticky), the last the caller's alone */
static int open_safe(const char *path)
{
    char part[NAME_MAX + 1];
    const char *at = path;
    struct stat st;
    int fd = open("/", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    while (fd >= 0) {
        size_t len;
        int next, last;
        while (*at == '/')
            at++;
        if (*at == '\0')
            break;
        len = strcspn(at, "/");
        if (len > NAME_MAX) {
            close(fd);
            return -1;
        }
        memcpy(part, at, len);
        part[len] = '\0';
        at += len;
        last = at[strspn(at, "/")] == '\0';
        next = -1;
        if (strcmp(part, ".") != 0 && strcmp(part, "..") != 0)
            next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        fd = next;
        if (fd < 0 || fstat(fd, &st) < 0)
            break;
        if (last ? st.st_uid != geteuid() || (st.st_mode & 077) != 0
                 : (st.st_uid != geteuid() && st.st_uid != 0) ||
                       ((st.st_mode & 022) != 0 && (st.st_mode & S_ISVTX) == 0)) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* pynsbind._diskcache.cache_dir("plans"), opened by open_safe (never made
 * here: the Python half makes it) */
static int open_cache_dir(void)
{
    char path[PATH_MAX];
    const char *base = getenv("XDG_CACHE_HOME");
    const char *off = getenv("PYNSBIND_PLANS_CACHE");
    struct stat st;
    int n;
    if (off != NULL && strcmp(off, "0") == 0)
        return -1;
    if (base != NULL && base[0] == '/') {
        n = snprintf(path, sizeof(path), "%s/pynsbind/plans", base);
    } else {
        const char *home = getenv("HOME");
        if (home == NULL || home[0] != '/' || stat(home, &st) < 0 || st.st_uid != geteuid()) {
            struct passwd *pw = getpwuid(geteuid());
            if (pw == NULL)
                return -1;
            home = pw->pw_dir;
        }
        n = snprintf(path, sizeof(path), "%s/.cache/pynsbind/plans", home);
    }
    if (n < 0 || (size_t)n >= sizeof(path))
        return -1;
    return open_safe(path);
}

char *read_fd(int fd, size_t size)
{
    size_t got = 0;
    char *data = malloc(size + 1);
    while (data != NULL && got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n <= 0) {
            free(data);
            return NULL;
        }
        got += (size_t)n;
    }
    if (data != NULL)
        data[size] = '\0';
    return data;
}

/* the value kept under the key (pynsbind._diskcache.read): a malloc'd copy of
 * the file, *start where the value begins */
char *read_kept(const struct buf *key, size_t *len, size_t *start)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    char name[64], head[32];
    struct stat st;
    char *data;
    size_t got = 0, hlen;
    int dfd, fd;
    for (size_t i = 0; i < key->len; i++)
        h = (h ^ (unsigned char)key->data[i]) * 0x100000001b3ULL;
    snprintf(name, sizeof(name), "%016llx-%zx", (unsigned long long)h, key->len);
    dfd = open_cache_dir();
    if (dfd < 0)
        return NULL;
    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    close(dfd);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 022) != 0 || st.st_size > NSB_MAX_FILE) {
        close(fd);
        return NULL;
    }
    data = read_fd(fd, (size_t)st.st_size);
    got = data == NULL ? 0 : (size_t)st.st_size;
    close(fd);
    /* "pynsbind plans cache\n", the key's length (u32 LE) and the key */
    memcpy(head, "pynsbind plans cache\n", 21);
    for (int i = 0; i < 4; i++)
        head[21 + i] = (char)((key->len >> (8 * i)) & 0xff);
    hlen = 25;
    if (data == NULL || got != (size_t)st.st_size || got < hlen + key->len ||
        memcmp(data, head, hlen) != 0 || memcmp(data + hlen, key->data, key->len) != 0) {
        free(data);
        return NULL;
    }
    *len = got;
    *start = hlen + key->len;
    return data;
}

/* ---- the plan's file (pynsbind._replay.encode) ----------------------------------------- */

uint64_t take_uint(struct reader *r, size_t size)
{
    uint64_t v = 0;
    if (r->bad || size > r->len - r->at) {
        r->bad = 1;
        return 0;
    }
    for (size_t i = 0; i < size; i++)
        v |= (uint64_t)(unsigned char)r->data[r->at + i] << (8 * i);
    r->at += size;
    return v;
}

static uint32_t u32(struct reader *r) { return (uint32_t)take_uint(r, 4); }
static int32_t i32(struct reader *r) { return (int32_t)(uint32_t)take_uint(r, 4); }
static uint64_t u64(struct reader *r) { return take_uint(r, 8); }

/* len bytes and the NUL after them, in place */
static char *take_bytes(struct reader *r, uint64_t len)
{
    char *s;
    if (r->bad || len >= r->len - r->at || r->data[r->at + len] != '\0') {
        r->bad = 1;
        return NULL;
    }
    s = r->data + r->at;
    r->at += len + 1;
    return s;
}

char *take_str(struct reader *r) { return take_bytes(r, u32(r)); }

char *take_str_len(struct reader *r, size_t *len)
{
    uint32_t n = u32(r);
    *len = n;
    return take_bytes(r, n);
}

/* NULL for length 0 */
static char *ostr(struct reader *r)
{
    uint32_t n = u32(r);
    return n == 0 ? NULL : take_bytes(r, n - 1);
}

/* a NULL-terminated array of `count` strings with room for `extra` more; NULL
 * when the list itself is NULL (*is_null) or on failure (r->bad) */
static char **olist(struct reader *r, int extra, int *count)
{
    uint32_t n = u32(r);
    char **out;
    *count = 0;
    if (r->bad || n == 0)
        return NULL;
    if (n - 1 > (r->len - r->at) / 5) { /* each takes 5 bytes at least */
        r->bad = 1;
        return NULL;
    }
    out = calloc((size_t)n + (size_t)extra, sizeof(char *));
    if (out == NULL) {
        r->bad = 1;
        return NULL;
    }
    for (uint32_t i = 0; i + 1 < n; i++)
        out[i] = take_str(r);
    *count = (int)(n - 1);
    return out;
}

/* a count (at most 4096) and a zeroed array of that many items */
static void *take_array(struct reader *r, size_t size, uint32_t *n)
{
    void *items;
    *n = u32(r);
    if (r->bad || *n > 4096) {
        r->bad = 1;
        return NULL;
    }
    items = calloc(*n ? *n : 1, size);
    if (items == NULL)
        r->bad = 1;
    return items;
}

/* pynsbind._replay.holds */
static int condition_holds(struct reader *r)
{
    char kind = (char)take_uint(r, 1);
    const char *name = take_str(r);
    struct stat st;
    if (r->bad)
        return 0;
    if (kind == 'e') {
        int present = (int)take_uint(r, 1);
        const char *want = take_str(r);
        const char *now = getenv(name);
        if (r->bad)
            return 0;
        return present ? (now != NULL && strcmp(now, want) == 0) : now == NULL;
    }
    if (kind == 'l' || kind == 's') {
        uint32_t mode = u32(r);
        if (r->bad || (kind == 'l' ? lstat(name, &st) : stat(name, &st)) < 0)
            return 0;
        return st.st_mode == mode;
    }
    if (kind == 'f') {
        uint32_t mode = u32(r);
        uint64_t size = u64(r), mtime = u64(r), ino = u64(r);
        int64_t now_mtime;
        if (r->bad || stat(name, &st) < 0)
            return 0;
        now_mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        return st.st_mode == mode && (uint64_t)st.st_size == size && (uint64_t)now_mtime == mtime &&
               (uint64_t)st.st_ino == ino;
    }
    r->bad = 1;
    return 0;
}

int proc_stat(const char *path, int first, int n, uint64_t *out, char *state)
{
    char data[4096];
    const char *at;
    ssize_t got;
    int field = 3, fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    got = read(fd, data, sizeof(data) - 1);
    close(fd);
    if (got <= 0)
        return -1;
    data[got] = '\0';
    at = strrchr(data, ')'); /* (the name may hold anything, ")" too) */
    if (at == NULL || at[1] != ' ')
        return -1;
    at += 2;
    if (state != NULL)
        *state = *at;
    for (; *at != '\0' && field < first + n; field++) {
        if (field >= first)
            out[field - first] = (uint64_t)strtoull(at, NULL, 10);
        at = strchr(at, ' ');
        if (at == NULL)
            return field + 1 == first + n ? 0 : -1;
        at++;
    }
    return field == first + n ? 0 : -1;
}

/* where this process's argv and environ strings are: fields 48-51 of
 * /proc/self/stat (arg_start, arg_end, env_start, env_end) */
static int own_arg_env(uint64_t out[4]) { return proc_stat("/proc/self/stat", 48, 4, out, NULL); }

/* The kept plan, laid out for the engine with the command put in (as
 * pynsbind._replay.lay_out and with_command do); -1 when it is malformed or a
 * condition does not hold.  Its strings stay in r->data. */
int load_plan(struct reader *r, struct kept *k, char **command, int ncommand, int gated)
{
    struct nsb_op *ops;
    struct nsb_pact *pacts;
    uint32_t n;
    int execs = 0, wipes = 0;
    uint64_t own[4] = {0, 0, 0, 0};
    if (r->len - r->at < 8 || memcmp(r->data + r->at, "NSBPLAN1", 8) != 0)
        return -1;
    r->at += 8;
    k->inherit_stdin = (int)take_uint(r, 1);
    k->init = take_str(r);
    n = u32(r);
    for (uint32_t i = 0; i < n && !r->bad; i++)
        if (!condition_holds(r))
            return -1;
    k->plan.abi = NSB_ABI_VERSION;
    k->plan.flags = u32(r);
    k->plan.clone_flags = u64(r);
    k->plan.cgroup_slot = i32(r);
    k->plan.nregs = i32(r);
    ops = take_array(r, sizeof(*ops), &n);
    if (ops == NULL)
        return -1;
    k->plan.nops = (int32_t)n;
    k->plan.ops = ops;
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        struct nsb_op *o = &ops[i];
        uint8_t ptype;
        int count;
        o->kind = u32(r);
        o->flags = u32(r);
        o->fd = i32(r);
        o->reg = i32(r);
        o->out = i32(r);
        o->a = u64(r);
        o->b = u64(r);
        o->c = u64(r);
        o->s1 = ostr(r);
        o->s2 = ostr(r);
        o->s3 = ostr(r);
        ptype = (uint8_t)take_uint(r, 1);
        if (ptype == 1) { /* P_BYTES */
            o->p = ostr(r);
        } else if (ptype == 2) { /* P_ARGV: the exec's gets the command */
            int exec = o->kind == NSB_OP_EXEC && command != NULL;
            char **argv = olist(r, exec ? ncommand : 0, &count);
            if (exec && argv != NULL) {
                for (int j = 0; j < ncommand; j++)
                    argv[count + j] = command[j];
                o->s1 = command[0];
            }
            o->p = argv;
        } else if (ptype == 3 || ptype == 4) { /* P_INT32, P_UINT32 */
            uint32_t m = u32(r);
            uint32_t *ints;
            if (r->bad || m > (r->len - r->at) / 4)
                return -1;
            ints = calloc(m ? m : 1, sizeof(uint32_t));
            if (ints == NULL)
                return -1;
            for (uint32_t j = 0; j < m; j++)
                ints[j] = u32(r);
            o->p = ints;
        } else if (ptype != 0) {
            return -1;
        }
        if (o->kind == NSB_OP_FINDEXEC && command != NULL)
            o->s1 = command[0];
        o->q = olist(r, 0, &count);
        /* what pynsbind._replay.without_command keeps: one exec with an argv,
         * no terminal, gate, wipe or notify listener (the Process that would
         * hold them is not here) */
        if (o->kind == NSB_OP_EXEC)
            execs += ptype == 2 && o->p != NULL ? 1 : 2;
        if (o->kind == NSB_OP_TERMINAL ||
            (!gated && (o->kind == NSB_OP_GATE || o->kind == NSB_OP_WIPE)) ||
            (o->kind == NSB_OP_SECCOMP && (o->b & SECCOMP_FILTER_FLAG_NEW_LISTENER)))
            return -1;
        if (o->kind == NSB_OP_WIPE) {
            /* the plan's were its maker's argv and environ
             * (pynsbind._replay.wipes_fit): this process's instead */
            if (wipes == 0 && own_arg_env(own) < 0)
                return -1;
            if (wipes >= 2)
                return -1;
            o->a = own[2 * wipes];
            o->b = own[2 * wipes + 1];
            wipes++;
        }
    }
    if (execs != 1)
        return -1;
    pacts = take_array(r, sizeof(*pacts), &n);
    if (pacts == NULL)
        return -1;
    k->plan.npacts = (int32_t)n;
    k->plan.pacts = pacts;
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        struct nsb_pact *pa = &pacts[i];
        uint32_t len;
        int count;
        pa->step = u32(r);
        pa->kind = u32(r);
        pa->fd = i32(r);
        pa->pid_arg = i32(r);
        pa->name = ostr(r);
        len = u32(r);
        pa->data = len == 0 ? NULL : take_bytes(r, len - 1);
        pa->len = len == 0 ? 0 : len - 1;
        pa->argv = olist(r, 0, &count);
        if (pa->kind == NSB_PACT_HOOK)
            return -1;
    }
    return r->bad || r->at != r->len ? -1 : 0;
}

/* pynsbind._replay.init_fd: a sealed in-memory copy of the init */
int sealed_init(const char *path)
{
    char chunk[65536];
    ssize_t n;
    int src = open(path, O_RDONLY | O_CLOEXEC);
    int fd;
    if (src < 0)
        return -1;
    fd = memfd_create("pynsbind-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL) /* a kernel before 6.3, without MFD_EXEC */
        fd = memfd_create("pynsbind-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        close(src);
        return -1;
    }
    while ((n = read(src, chunk, sizeof(chunk))) > 0) {
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(fd, chunk + done, (size_t)(n - done));
            if (w <= 0) {
                n = -1;
                break;
            }
            done += w;
        }
        if (n < 0)
            break;
    }
    close(src);
    if (n < 0 || fchmod(fd, 0555) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int wait_exit(const struct nsb_result *res)
{
    siginfo_t info;
    struct nsb_msg msg;
    int code;
    memset(&info, 0, sizeof(info));
    while ((res->pidfd >= 0 ? waitid((idtype_t)P_PIDFD, (id_t)res->pidfd, &info, WEXITED)
                            : waitid(P_PID, (id_t)res->pid, &info, WEXITED)) < 0)
        if (errno != EINTR)
            return -1;
    code = info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
    /* the init relays the command's own wait status */
    while (res->sync_fd >= 0 && read(res->sync_fd, &msg, sizeof(msg)) == (ssize_t)sizeof(msg)) {
        if (msg.type == NSB_MSG_EXIT) {
            int status = (int)msg.val;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
    }
    return code;
}

/* ---- signals: SIGINT, SIGTERM and SIGHUP go to the sandbox's init ------------------ */

static volatile sig_atomic_t target = -1;     /* the init's pidfd once it runs */
static volatile sig_atomic_t target_pid = -1; /* its pid, where there is no pidfd */
static volatile sig_atomic_t running;
static volatile sig_atomic_t pending[NSIG];
static volatile sig_atomic_t interrupts;

static void forward(int sig)
{
    if (sig == SIGINT && ++interrupts > 1)
        sig = SIGKILL; /* a second Ctrl-C ends a sandbox that ignores the first */
    if (target >= 0)
        syscall(SYS_pidfd_send_signal, (int)target, sig, NULL, 0);
    else if (target_pid > 0)
        kill((pid_t)target_pid, sig);
}

static void on_signal(int sig)
{
    int saved = errno;
    if (!running)
        pending[sig] = 1; /* before the spawn is done: sent once it is */
    else
        forward(sig);
    errno = saved;
}

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP};

/* ---- main ---------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct buf key = {NULL, 0, 0};
    struct reader r = {NULL, 0, 0, 0};
    struct kept k;
    struct nsb_result res;
    struct sigaction sa;
    sigset_t all;
    int32_t fds[4];
    char **command;
    int cmd, ncommand, code;

    /* the command: after the first "--", or at once when the first word after
     * "sandbox" is no option */
    if (argc >= 2 && strcmp(argv[1], "sandbox") != 0)
        oci_main(argc, argv);
    if (argc < 3 || strcmp(argv[1], "sandbox") != 0)
        python_path(argv);
    cmd = 2;
    if (argv[2][0] == '-') {
        while (cmd < argc && strcmp(argv[cmd], "--") != 0)
            cmd++;
        cmd++;
    }
    if (cmd >= argc)
        python_path(argv);
    command = argv + cmd;
    ncommand = argc - cmd;
    if (make_key(&key, argv + 2, cmd - 2, command[0]) < 0)
        python_path(argv);
    r.data = read_kept(&key, &r.len, &r.at);
    free(key.data);
    memset(&k, 0, sizeof(k));
    if (r.data == NULL || load_plan(&r, &k, command, ncommand, 0) < 0)
        python_path(argv);

    fds[0] = 0;
    if (!k.inherit_stdin && (fds[0] = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
        python_path(argv);
    fds[1] = 1;
    fds[2] = 2;
    fds[3] = sealed_init(k.init);
    if (fds[3] < 0)
        python_path(argv);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        sigaction(forwarded[i], &sa, NULL);
    memset(&res, 0, sizeof(res));
    if (nsb_spawn(&k.plan, fds, 4, 0, &res) < 0) {
        /* undone by the engine, the command never ran: the Python path runs
         * it (exec resets the handlers) and says what is wrong */
        python_path(argv);
    }
    if (fds[0] > 2)
        close(fds[0]);
    close(fds[3]);
    if (res.listener_fd >= 0) /* (never kept: without_command refuses them) */
        close(res.listener_fd);
    if (res.terminal_fd >= 0)
        close(res.terminal_fd);

    target = res.pidfd;
    target_pid = res.pid;
    running = 1;
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
        if (pending[forwarded[i]]) {
            pending[forwarded[i]] = 0;
            forward(forwarded[i]);
        }
    }
    code = wait_exit(&res);
    if (code < 0) {
        perror("pynsbind-run: waitid");
        return 125;
    }
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    running = 0; /* before it is closed (or reaped): no signal to a number reused */
    target = -1;
    target_pid = -1;
    if (res.pidfd >= 0)
        close(res.pidfd);
    if (res.sync_fd >= 0)
        close(res.sync_fd);
    return code;
}
