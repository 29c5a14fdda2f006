/* nsb.h - the ABI between pynsbind's Python layer and its C layer.
 *
 * Everything between BEGIN CDEF and END CDEF is read by csrc/build.py and given
 * to cffi as the declaration of the extension: it must stay plain C that cffi can
 * parse (no preprocessor inside it).  Constants named in the cdef with "..." are
 * filled by the compiler from the kernel and libc headers at build time.
 *
 * Errors: one convention per layer.
 *   - The child (child.c, child_fs.c), the container init (init.c) and what they
 *     share (rawsys.h, msg.h, clone.h, nsb_clone_vm in spawn.c): raw system calls,
 *     and every function that can fail returns a long, >= 0 on success and -errno
 *     on failure.  errno is never read or written (a CLONE_VM child shares the
 *     caller's).  The child sends its first failure to the parent as {stage, op,
 *     errno} and exits 127.
 *   - The parent half (spawn.c): every helper returns >= 0 on success and -errno
 *     on failure; errno is taken right after the libc call that set it and never
 *     relied on after a helper returns.  nsb_spawn() returns 0, or -1 with the
 *     first failure in struct nsb_result {stage, op, err}; it leaves errno
 *     meaningless.
 *   - The 1:1 layer for Python (lowlevel.c, pyfork.c, cgroup.c, bpf.c): -1 with
 *     errno set, as the system calls they wrap (cffi saves errno right after the
 *     call, Python reads ffi.errno); out-parameters say which item of a batch
 *     failed.
 *   - pynsbind._seccomp's helpers (seccomp_glue.c): a negative errno (see
 *     seccomp_glue.h).
 * Nothing is cut or skipped silently: a value that does not fit its buffer or
 * field is an error (ENAMETOOLONG, E2BIG, EINVAL; EBADF for an fd slot or a
 * register the plan does not have), or a comment says why it cannot happen.
 */
#ifndef NSB_H
#define NSB_H

#include <stdint.h>

/* BEGIN CDEF */
/* ---- plan: what the child executes, built by pynsbind/_plan.py ---------- */

enum nsb_op_kind {
    NSB_OP_SETNS = 1,     /* setns(fd slot `fd`, or open(s1)), nstype a */
    NSB_OP_UNSHARE = 2,   /* unshare(a) */
    NSB_OP_SYNC = 3,      /* tell the parent "step a reached", wait for its go */
    NSB_OP_FORK = 4,      /* second fork (CLONE_PARENT | a); the middle process exits */
    NSB_OP_PDEATHSIG = 5, /* prctl(PR_SET_PDEATHSIG, a), then check the parent is alive */
    NSB_OP_MOUNT = 6,     /* mount(s1, s2, s3, a, p) */
    NSB_OP_FSMOUNT = 7,   /* fsopen(s3) + fsconfig(p) + fsmount(attr a) + move_mount to s2 */
    NSB_OP_BIND = 8,      /* open_tree(s1 or register reg) + mount_setattr(a, b, c)
                             + move_mount to s2 */
    NSB_OP_PREOPEN = 9,   /* open_tree(s1) (an O_PATH fd with NSB_F_LEGACY) into register out */
    NSB_OP_SETATTR = 10,  /* mount_setattr(s2, set a, clear b, propagation c) */
    NSB_OP_REMOUNT = 11,  /* legacy: remount s2 (bind) adding flags a, keeping its locked flags */
    NSB_OP_MKDIRS = 12,   /* mkdir -p s2, mode a */
    NSB_OP_MKFILE = 13,   /* mkdir -p dirname(s2), create an empty file s2 when missing */
    NSB_OP_MKNOD = 14,    /* mknod(s2, mode a, dev b) */
    NSB_OP_SYMLINK = 15,  /* symlink(s1, s2) */
    NSB_OP_PIVOT = 16,    /* pivot_root into s2 (fallback: move + chroot when flag
                             NSB_F_FALLBACK) */
    NSB_OP_MASK = 17,     /* hide s2 (resolved from register reg): the /dev/null of register b
                             over a file, a read-only tmpfs over a directory; c: the filesystem
                             magic it must be on */
    NSB_OP_ROPATH = 18,   /* bind s2 (resolved from register reg) onto itself read-only; c as
                             MASK */
    NSB_OP_LOOPBACK = 19, /* bring lo up */
    NSB_OP_HOSTNAME = 20, /* sethostname(s1) */
    NSB_OP_DOMAINNAME = 21,
    NSB_OP_RLIMIT = 22, /* prlimit(0, a, {b, c}) */
    NSB_OP_WRITE = 23,  /* write s1 into the existing file s2 */
    NSB_OP_KEEPCAPS = 24,
    NSB_OP_SETGROUPS = 25, /* setgroups(a, p) */
    NSB_OP_SETGID = 26,    /* setresgid(a, a, a) */
    NSB_OP_SETUID = 27,    /* setresuid(a, a, a) */
    NSB_OP_CAPS = 28,      /* p: uint64_t[5] bounding, effective, permitted, inheritable,
                              ambient; b: last cap */
    NSB_OP_NNP = 29,       /* prctl(PR_SET_NO_NEW_PRIVS) */
    NSB_OP_SECCOMP = 30,   /* seccomp(SECCOMP_SET_MODE_FILTER, flags b, {a, p}); a listener is
                              taken by the parent (flag NEW_LISTENER), then closed here */
    NSB_OP_UMASK = 31,
    NSB_OP_CHDIR = 32,
    NSB_OP_FDS = 33,      /* stdio from slots 0-2, keep the a fds in p, move the sync fd to b
                             (if >= 0), keep fd slot c - 1 (c > 0: the gate), close the rest */
    NSB_OP_EXEC = 34,     /* execve p (argv) q (envp): s1 the name, s2 the PATH to search, or
                             execveat fd slot `fd` */
    NSB_OP_SETSID = 35,   /* setsid(): a new session, no controlling terminal */
    NSB_OP_DUMPABLE = 37, /* prctl(PR_SET_DUMPABLE, a) */
    NSB_OP_KEYRING = 38,  /* join a new anonymous session keyring */
    NSB_OP_WIPE = 39,     /* zero this process's memory from a to b (its copy of the caller's
                             argv and environ, before a process of it becomes visible) */
    NSB_OP_FINDEXEC = 40, /* what execve of s1 (searched in s2 with NSB_F_SEARCH_PATH) would
                             find, or its errno: an exec that cannot report its own failure
                             follows */
    NSB_OP_TERMINAL = 41, /* a new pty from the ptmx s1: its slave the controlling terminal and
                             stdio slots 0-2, window a rows by b columns (0: as the kernel
                             makes it); the master sent to the parent (TERMINAL), then closed */
    NSB_OP_GATE = 42,     /* tell the parent the set-up is done (READY), then wait: for a byte
                             on the FIFO of fd slot `fd`, or (the slot holds -1) for GO on the
                             sync socket */

    /* what OCI configs need besides (pynsbind.oci): 45-49 */
    NSB_OP_SYSCTL = 45,      /* write s1 into the file s2 resolved beneath register reg (the
                                container's proc), which must be on the filesystem of magic c */
    NSB_OP_PERSONALITY = 46, /* personality(a) */
    NSB_OP_COPYUP = 47       /* copy the tree of the directory in register b (opened before the
                                tmpfs was mounted over it) into s2 (the new tmpfs, resolved as
                                the flags say): files, directories, symlinks, device nodes and
                                FIFOs with their modes, owners and times; a: the depth limit */
};

/* Detached mount trees the parent makes for the child (idmapped volumes, the
 * lower layer of an overlay root), numbered apart from the kinds above: an op,
 * the parent action that answers it and their message. */
enum nsb_tree_op {
    NSB_OP_RECVFD = 50 /* sync step a: tell the parent, and keep the fd it answers with
                          (message NSB_MSG_FD, SCM_RIGHTS) in register out */
};
enum nsb_tree_pact {
    NSB_PACT_IDMAP_TREE = 5 /* a detached clone of the host path name (no symlink in it),
                               idmapped with the child's user namespace, sent to the child
                               (message NSB_MSG_FD) in place of GO; data: uint64_t[2], the
                               mount attributes to set besides MOUNT_ATTR_IDMAP, and 1 for a
                               recursive clone */
};
enum nsb_tree_msg {
    NSB_MSG_FD = 10 /* parent -> child: the fd made at sync step val, as SCM_RIGHTS, in
                       place of GO */
};

/* nsb_op.flags */
#define NSB_F_IGNORE_ENOENT 1 /* a missing path is not an error */
#define NSB_F_RECURSIVE 2
#define NSB_F_IN_ROOT 4      /* s2 is relative to the container root (register 0), resolved in it */
#define NSB_F_FALLBACK 8     /* PIVOT: fall back to MS_MOVE + chroot */
#define NSB_F_SEARCH_PATH 16 /* EXEC: search s2 for s1 */
#define NSB_F_ROOT_REG 64    /* BIND/MOUNT: after the op, keep an O_PATH fd of s2 in register 0 */
#define NSB_F_SRC_IN_ROOT 128    /* BIND: s1 is resolved in the container root too */
#define NSB_F_BENEATH 256        /* s2 is relative to register reg, resolved beneath it */
#define NSB_F_KEEP_PERMITTED 512 /* CAPS: leave the permitted set whole (exec derives it) */
/* BIND/MOUNT: s1, a host path, must have no symlink (its canonical form was taken when the
 * plan was made) */
#define NSB_F_SRC_NOSYMLINKS 1024
/* PREOPEN: an O_PATH fd; MASK, ROPATH: with mount(2), not the new mount API */
#define NSB_F_LEGACY 2048

struct nsb_op {
    uint32_t kind;
    uint32_t flags;
    int32_t fd;  /* an index into the spawn's fd table, or -1 */
    int32_t reg; /* a child-local register (an fd the child opened), or -1 */
    int32_t out; /* FSMOUNT/BIND/PREOPEN: the register that keeps the result, or -1 */
    int32_t spare;
    uint64_t a;
    uint64_t b;
    uint64_t c;
    const char *s1;
    const char *s2;
    const char *s3;
    const void *p;
    const void *q;
};

/* parent actions, run by the parent when the child reaches a sync step */
enum nsb_pact_kind {
    NSB_PACT_PROC_WRITE = 1,   /* write data into /proc/<pid>/<name> */
    NSB_PACT_FD_WRITE_PID = 2, /* write the pid into fd slot `fd` (cgroup.procs) */
    NSB_PACT_HELPER = 3,       /* run argv (argv[pid_arg] becomes the pid) and wait for exit 0 */
    NSB_PACT_HOOK = 4          /* call the caller's hook: nsb_hook_call(key of the spawn, index of
                                  this pact, pid) must return 1; else it fails with ECANCELED */
};

struct nsb_pact {
    uint32_t step;
    uint32_t kind;
    int32_t fd;
    int32_t pid_arg;
    const char *name;
    const char *data;
    uint64_t len;
    char **argv;
};

/* nsb_plan.flags */
#define NSB_PLAN_PIDFD 1        /* ask for a pidfd (CLONE_PIDFD) */
#define NSB_PLAN_NO_CLONE_VM 2  /* clone like fork instead of sharing memory until exec */
#define NSB_PLAN_LEGACY_CLONE 4 /* use clone(2), never clone3 */
#define NSB_PLAN_KEEP_SYNC 8    /* the init keeps the sync socket: wait for EXEC_OK, return it */
#define NSB_PLAN_NO_OPENAT2 16  /* resolve paths in the root without openat2 (legacy mount mode) */
#define NSB_PLAN_WATCH_STOPS 32 /* the child is visible to others while set up: a stop fails it */

struct nsb_plan {
    uint32_t abi;
    uint32_t flags;
    uint64_t clone_flags; /* CLONE_NEW* given to clone */
    int32_t cgroup_slot;  /* fd slot of a cgroup directory for CLONE_INTO_CGROUP, or -1 */
    int32_t nops;
    int32_t npacts;
    int32_t nregs;
    const struct nsb_op *ops;
    const struct nsb_pact *pacts;
};

/* where a spawn failed */
enum nsb_stage {
    NSB_STAGE_NONE = 0,
    NSB_STAGE_PARENT = 1, /* before or at clone, in the caller */
    NSB_STAGE_PACT = 2,   /* a parent action (op = its index) */
    NSB_STAGE_HELPER = 3, /* a helper exited non-zero (err = its status) */
    NSB_STAGE_CHILD = 4,  /* an op in the child (op = its index) */
    NSB_STAGE_INIT = 5,   /* the container init (op = the exec op) */
    NSB_STAGE_STOPPED = 6 /* the process being set up was stopped (SIGSTOP) from inside */
};

struct nsb_result {
    int32_t pid;
    int32_t pidfd;
    int32_t sync_fd; /* NSB_PLAN_KEEP_SYNC: the parent's end, for the init's exit report */
    int32_t stage;
    int32_t op;
    int32_t err;
    int32_t listener_fd;  /* the seccomp notify listener of the container's filter, or -1 */
    int32_t has_pending;  /* a notification of the command's, received and not answered: */
    uint64_t pending[10]; /* its struct seccomp_notif (80 bytes) */
    int32_t terminal_fd;  /* the master of the container's terminal (TERMINAL op), or -1 */
};

/* messages on the sync socket (SOCK_SEQPACKET) */
enum nsb_msg_type {
    NSB_MSG_SYNC = 1,     /* child -> parent: step val reached */
    NSB_MSG_GO = 2,       /* parent -> child: carry on past step val */
    NSB_MSG_PID = 3,      /* middle -> parent: the process that goes on is val */
    NSB_MSG_ERROR = 4,    /* child -> parent: {stage, op, err}, then exit 127 */
    NSB_MSG_EXEC_OK = 5,  /* init -> parent: the command runs */
    NSB_MSG_EXIT = 6,     /* init -> parent: the command ended with wait status val */
    NSB_MSG_LISTENER = 7, /* child -> parent: a notify listener will be fd val: take it
                             (pidfd_getfd) */
    NSB_MSG_TERMINAL = 8, /* child -> parent: the pty master, with it as SCM_RIGHTS */
    NSB_MSG_READY = 9     /* child -> parent: set up, waiting at the gate (op val) */
};

struct nsb_msg {
    uint32_t type;
    int32_t stage;
    int32_t op;
    int32_t err;
    int64_t val;
};

/* key: given back to the plan's hooks (NSB_PACT_HOOK) of this spawn */
int nsb_spawn(const struct nsb_plan *plan, const int32_t *fds, int32_t nfds, int64_t key,
              struct nsb_result *res);
/* Let a child that nsb_spawn left waiting at its gate (READY) go on: send GO on
 * sync_fd (go != 0; else the caller has written into the gate's FIFO), then
 * converse until it has exec'd, as nsb_spawn does (init_fd: the sealed init,
 * listener: the container's notify listener or -1).  0, or -1 with the failure
 * in res and the child killed (not reaped: the caller owns it).  sync_fd and
 * listener stay the caller's. */
int nsb_start(const struct nsb_plan *plan, int32_t init_fd, int32_t pid, int32_t sync_fd,
              int32_t listener, int32_t go, struct nsb_result *res);
const char *nsb_version(void);
int nsb_clone_vm_supported(void);

/* ---- cgroups: a batch of writes into one cgroup directory -------------- */
struct nsb_kv {
    const char *key;
    const char *value;
    uint64_t len;
};
int nsb_cg_write_batch(int dirfd, const struct nsb_kv *kvs, int n, int *failed);
int nsb_cg_write_pid(int fd, int pid);
/* One cgroup, at the relative path `rel` under the base directory of each of n
 * hierarchies, with the limits of each (kvs, nkv; none for attach and rmdir). */
struct nsb_cg_dir {
    const char *base;
    const struct nsb_kv *kvs;
    int32_t nkv;
    int32_t prog_fd; /* a device program to attach (cgroup2), or -1 */
};
/* For each hierarchy: mkdir BASE/REL (0755), open it, attach its device program
 * (prog_fd >= 0), write its batch, then keep the fd in fds[i] (fds not NULL) or
 * close it.  On failure *failed_dir is the hierarchy and *failed_kv -1 (mkdir
 * failed: that one was not made), -2 (open), -3 (attach) or the index of the
 * write, with errno; the directories before it (and the failed one, unless mkdir
 * failed) exist, their fds (if kept) in fds. */
int nsb_cg_create(const struct nsb_cg_dir *dirs, int n, const char *rel, int32_t *fds,
                  int *failed_dir, int *failed_kv);
/* Write pid into BASE/REL/cgroup.procs of each hierarchy. */
int nsb_cg_attach(const struct nsb_cg_dir *dirs, int n, const char *rel, int pid, int *failed);
/* rmdir BASE/REL in each hierarchy (ENOENT counts as done); stops at the first
 * other error, with *failed its index. */
int nsb_cg_rmdir(const struct nsb_cg_dir *dirs, int n, const char *rel, int *failed);
/* events: an inotify fd (non-blocking, close-on-exec) and watches: IN_MODIFY on a
 * file (cgroup.events, memory.events: the kernel signals their changes), or with
 * `children` IN_DELETE on a directory (a child cgroup removed by rmdir) */
int nsb_cg_inotify(void);
int nsb_cg_watch(int ifd, const char *path, int children);
/* device programs for cgroup v2 (bpf.c): BPF_PROG_TYPE_CGROUP_DEVICE, named
 * pynsbind_dev; every fd returned is close-on-exec; -1 with errno on failure */
int nsb_bpf_load_device_prog(const void *insns, int n, char *log, int loglen);
/* attach with BPF_F_ALLOW_MULTI; replace_fd >= 0: in place of that program */
int nsb_bpf_attach_device(int cgroup_fd, int prog_fd, int replace_fd);
int nsb_bpf_detach_device(int cgroup_fd, int prog_fd);
/* ids of the programs attached to the cgroup itself; *n: room in, count out */
int nsb_bpf_query_device(int cgroup_fd, uint32_t *ids, uint32_t *n);
int nsb_bpf_prog_fd(uint32_t id);
/* id, program type and name (16 bytes, NUL-terminated) */
int nsb_bpf_prog_info(int prog_fd, uint32_t *id, uint32_t *type, char *name);
/* END CDEF */

/* The hooks of a plan (NSB_PACT_HOOK) call back into Python: cffi defines this
 * function (extern "Python+C" in csrc/build.py), pynsbind.process attaches the
 * Python side (ffi.def_extern), which runs the hook of spawn `key` with the GIL
 * taken again.  1: done; anything else: the hook failed (0 too when nothing is
 * attached). */
int nsb_hook_call(int64_t key, int32_t pact, int32_t pid);

#define NSB_ABI_VERSION 6
#define NSB_MAX_FDS 1024
#define NSB_MAX_REGS 64

#endif
