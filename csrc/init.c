/* init.c - the container init of Spec(init=True): PID 1 that forwards signals to
 * the command and reaps zombies, like tini.
 *
 * A freestanding program: no libc, raw system calls only (rawsys.h), its own
 * entry point.  It is linked without any relocation, so that the kernel can run
 * it as it is inside any root filesystem (the spawn engine execs it through an
 * fd opened before pivot_root).  It is built by setuptools as an extension
 * target, pynsbind/_nsbinit*.so, though it is not a Python module.
 *
 *   argv: nsb-init SYNC_FD ABI EXEC_OP -- COMMAND [ARG...]
 *
 * It reports to the spawner on the sync socket: EXEC_OK once COMMAND runs,
 * ERROR {NSB_STAGE_INIT, EXEC_OP, errno} if it cannot be run, and EXIT with
 * COMMAND's wait status when it ends (then it exits itself, which as PID 1 ends
 * every other process of the container).
 *
 *   argv: nsb-init SYNC_FD ABI EXEC_OP --exec COMMAND [ARG...]
 *
 * The sealed exec of every container without an init: the spawn engine execs
 * this program from a sealed memfd copy first, so that the container's command
 * is exec'd by a process whose /proc/self/exe is that copy, never a host file
 * (a "#!/proc/self/exe" script then reaches this program, read-only, and not
 * the spawner's interpreter: runc's CVE-2019-5736).  It execs COMMAND with the
 * sync socket close-on-exec; if that fails it reports ERROR {NSB_STAGE_CHILD,
 * EXEC_OP, errno}, as the child would have.
 *
 * Both modes first make the process non-dumpable: it may be visible in a pid
 * namespace whose processes are hostile, and holds the socket to the spawner.
 *
 * A container with a terminal (Spec.terminal): when fd 0 is this session's
 * controlling terminal with the init's group in the foreground, COMMAND gets a
 * process group of its own and the foreground (as a shell gives a job), so that
 * ^C, ^Z and the window's signals reach COMMAND and its children, not the init
 * (which forwards what it is sent to COMMAND alone).
 *
 * Errors are -errno (see nsb.h).  The calls whose result is not looked at
 * cannot fail with the arguments given (prctl, rt_sigprocmask, close), or fail
 * only when there is nobody left to tell (a send to a spawner that is gone).
 */
#include "headers.h"
#include "msg.h"
#include "nsb.h"
#include "rawsys.h"

#if defined(__x86_64__)
__asm__(".text\n"
        ".globl nsb_init_entry\n"
        ".type nsb_init_entry,@function\n"
        "nsb_init_entry:\n"
        "    xor %ebp, %ebp\n"
        "    mov %rsp, %rdi\n"
        "    and $-16, %rsp\n"
        "    call nsb_init_main\n"
        "    hlt\n");
#elif defined(__aarch64__)
__asm__(".text\n"
        ".globl nsb_init_entry\n"
        ".type nsb_init_entry,@function\n"
        "nsb_init_entry:\n"
        "    mov x29, #0\n"
        "    mov x30, #0\n"
        "    mov x0, sp\n"
        "    bl nsb_init_main\n"
        "    brk #0\n");
#else
#error "the container init needs an entry point for this architecture"
#endif

__attribute__((used, noreturn)) void nsb_init_main(long *sp);

static __attribute__((noreturn)) void init_exit(int code)
{
    for (;;)
        nsb_sys1(SYS_exit_group, code);
}

/* A failed send means the spawner is gone: nobody is left to tell. */
static void init_send(int fd, uint32_t type, int32_t op, int32_t err, int64_t val)
{
    nsb_send_msg(fd, type, NSB_STAGE_INIT, op, err, val);
}

static void init_puts(const char *s) { nsb_sys3(SYS_write, 2, s, nsb_strlen(s)); }

static const char *init_getenv(char **envp, const char *name)
{
    size_t n = nsb_strlen(name);
    for (; *envp; envp++) {
        size_t i;
        for (i = 0; i < n && (*envp)[i] == name[i]; i++)
            ;
        if (i == n && (*envp)[n] == '=')
            return *envp + n + 1;
    }
    return 0;
}

/* execvp: search PATH (the container's) unless the name has a slash */
static long init_exec(char **argv, char **envp)
{
    const char *path, *p;
    for (p = argv[0]; *p; p++)
        if (*p == '/')
            return nsb_sys3(SYS_execve, argv[0], argv, envp);
    path = init_getenv(envp, "PATH");
    if (!path)
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    return nsb_exec_search(argv[0], path, argv, envp);
}

void nsb_init_main(long *sp)
{
    long argc = sp[0], sync_fd, abi, exec_op, r, child;
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    uint64_t all = ~0ULL, none = 0;
    int pipefd[2], status = 0, main_done = 0, no_sync, fg = 0, pgrp = 0;
    int32_t err;

    /* first of all: exec resets dumpability, and no process of the container
     * may read this one's fds (the socket to the spawner) or memory */
    nsb_sys5(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (argc < 6 || !(nsb_streq(argv[4], "--") || nsb_streq(argv[4], "--exec"))) {
        init_puts("nsb-init: the container init of pynsbind, started by its spawn engine\n");
        init_exit(2);
    }
    /* "-" with --exec: no socket (a sealed exec in a pid namespace that has
     * other processes already: it may not hold one there; the spawn checked the
     * command first); anything else must be an fd */
    no_sync = argv[4][2] && nsb_streq(argv[1], "-");
    sync_fd = no_sync ? -1 : nsb_atou(argv[1]);
    abi = nsb_atou(argv[2]);
    exec_op = nsb_atou(argv[3]);
    if ((sync_fd < 0 && !no_sync) || exec_op < 0) {
        init_puts("nsb-init: bad arguments\n");
        init_exit(2);
    }
    if (no_sync) {
        nsb_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, 8);
        r = init_exec(argv + 5, envp);
        init_puts("nsb-init: cannot exec ");
        init_puts(argv[5]);
        init_puts(r == -ENOENT    ? ": no such file or directory\n"
                  : r == -EACCES  ? ": permission denied\n"
                  : r == -ENOEXEC ? ": exec format error\n"
                                  : ": exec failed\n");
        init_exit(r == -ENOENT ? 127 : 126);
    }
    if (abi != NSB_ABI_VERSION) {
        init_send((int)sync_fd, NSB_MSG_ERROR, (int32_t)exec_op, EPROTO, 0);
        init_exit(127);
    }
    if (argv[4][2]) {
        /* --exec: become COMMAND; the socket closes when that works */
        r = nsb_sys3(SYS_fcntl, sync_fd, F_SETFD, FD_CLOEXEC);
        if (r >= 0) {
            /* the command starts with no signal blocked (the spawn blocked
             * them all until this process had a memory of its own) */
            nsb_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, 8);
            r = init_exec(argv + 5, envp);
        }
        nsb_send_msg((int)sync_fd, NSB_MSG_ERROR, NSB_STAGE_CHILD, (int32_t)exec_op, (int32_t)-r,
                     0);
        init_exit(127);
    }
    nsb_sys5(SYS_prctl, PR_SET_NAME, "nsb-init", 0, 0, 0);
    /* signals: all blocked here, taken with sigtimedwait below */
    nsb_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &all, 0, 8);
    if (nsb_sys0(SYS_getpid) != 1)
        nsb_sys5(SYS_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

    /* the terminal's foreground is ours: it will be the command's (ENOTTY, or
     * another group: no terminal of this session, nothing to hand on) */
    if (nsb_sys3(SYS_ioctl, 0, TIOCGPGRP, &fg) >= 0 && fg == nsb_sys1(SYS_getpgid, 0))
        pgrp = 1;

    /* a close-on-exec pipe tells whether the command's exec worked */
    r = nsb_sys2(SYS_pipe2, pipefd, O_CLOEXEC);
    if (r < 0) {
        init_send((int)sync_fd, NSB_MSG_ERROR, (int32_t)exec_op, (int32_t)-r, 0);
        init_exit(127);
    }
    child = nsb_sys5(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (child < 0) {
        init_send((int)sync_fd, NSB_MSG_ERROR, (int32_t)exec_op, (int32_t)-child, 0);
        init_exit(127);
    }
    if (child == 0) {
        nsb_sys1(SYS_close, pipefd[0]);
        nsb_sys1(SYS_close, sync_fd);
        r = 0;
        if (pgrp) {
            /* a group of its own, made the foreground (SIGTTOU is blocked
             * here: a background group may take it) */
            int self = (int)nsb_sys0(SYS_getpid);
            r = nsb_sys2(SYS_setpgid, 0, 0);
            if (r >= 0)
                r = nsb_sys3(SYS_ioctl, 0, TIOCSPGRP, &self);
        }
        nsb_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, 8);
        err = (int32_t) - (r < 0 ? r : init_exec(argv + 5, envp));
        /* cannot fail: 4 bytes into an empty pipe whose reader is open go in
         * whole and at once (and a signal cannot interrupt a write that does
         * not wait) */
        NSB_RETRY(nsb_sys3(SYS_write, pipefd[1], &err, sizeof(err)));
        init_exit(127);
    }
    nsb_sys1(SYS_close, pipefd[1]);
    r = NSB_RETRY(nsb_sys3(SYS_read, pipefd[0], &err, sizeof(err)));
    nsb_sys1(SYS_close, pipefd[0]);
    if (r != 0) {
        /* the command could not be run (err); or, which a pipe never does, the
         * read failed or came short: the command must not run unreported */
        if (r != (long)sizeof(err)) {
            err = r < 0 ? (int32_t)-r : EPROTO;
            nsb_sys2(SYS_kill, child, SIGKILL);
        }
        NSB_RETRY(nsb_sys4(SYS_wait4, child, 0, 0, 0));
        init_send((int)sync_fd, NSB_MSG_ERROR, (int32_t)exec_op, err, 0);
        init_exit(127);
    }
    init_send((int)sync_fd, NSB_MSG_EXEC_OK, (int32_t)exec_op, 0, child);

    for (;;) {
        siginfo_t info;
        long sig = nsb_sys4(SYS_rt_sigtimedwait, &all, &info, 0, 8);
        if (sig < 0)
            continue;
        if (sig != SIGCHLD) {
            nsb_sys2(SYS_kill, child, sig); /* ESRCH: it ended, SIGCHLD is next */
            continue;
        }
        for (;;) {
            int st = 0;
            long pid = nsb_sys4(SYS_wait4, -1, &st, WNOHANG, 0);
            if (pid <= 0)
                break;
            if (pid == child) {
                status = st;
                main_done = 1;
            }
        }
        if (main_done)
            break;
    }
    init_send((int)sync_fd, NSB_MSG_EXIT, (int32_t)exec_op, 0, status);
    if (WIFEXITED(status))
        init_exit(WEXITSTATUS(status));
    init_exit(128 + WTERMSIG(status));
}
