/* bpf.c - BPF_PROG_TYPE_CGROUP_DEVICE programs for cgroup v2: load one,
 * attach it to a cgroup directory (or replace an older one), and find which
 * are attached.  The instructions come from pynsbind/cgroups/devices.py.  Each
 * function returns -1 with errno on failure, like the rest of cgroup.c. */
#include <stdio.h>

#include "headers.h"
#include "bpf.h"
#include "nsb.h"

/* the opcodes devices.py writes as numbers, checked against the headers */
_Static_assert((BPF_LDX | BPF_MEM | BPF_W) == 0x61, "ldxw");
_Static_assert((BPF_ALU | BPF_MOV | BPF_X) == 0xbc, "mov32 reg");
_Static_assert((BPF_ALU | BPF_MOV | BPF_K) == 0xb4, "mov32 imm");
_Static_assert((BPF_ALU | BPF_RSH | BPF_K) == 0x74, "rsh32 imm");
_Static_assert((BPF_ALU | BPF_AND | BPF_K) == 0x54, "and32 imm");
_Static_assert((BPF_JMP | BPF_JEQ | BPF_K) == 0x15, "jeq imm");
_Static_assert((BPF_JMP | BPF_JNE | BPF_K) == 0x55, "jne imm");
_Static_assert((BPF_JMP | BPF_JA) == 0x05, "ja");
_Static_assert((BPF_JMP | BPF_EXIT) == 0x95, "exit");
_Static_assert(BPF_DEVCG_ACC_MKNOD == 1 && BPF_DEVCG_ACC_READ == 2 && BPF_DEVCG_ACC_WRITE == 4,
               "access bits");
_Static_assert(BPF_DEVCG_DEV_BLOCK == 1 && BPF_DEVCG_DEV_CHAR == 2, "device types");
_Static_assert(sizeof(struct bpf_insn) == 8, "instruction size");
_Static_assert(sizeof(NSB_BPF_DEV_NAME) <= BPF_OBJ_NAME_LEN, "program name");

static int nsb_bpf(int cmd, union bpf_attr *attr)
{
    long r = syscall(SYS_bpf, cmd, attr, sizeof(*attr));
    return r < 0 ? -1 : (int)r;
}

/* Make sure of close-on-exec: the kernel sets it on every bpf fd, but the fd
 * must never reach a container, so do not rely on it. */
static int nsb_bpf_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC))
        flags = fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    if (flags < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Load a device program of n instructions; its fd (close-on-exec).  With log
 * (loglen > 0) the verifier's report of a refusal is written there, as much of
 * it as fits (NUL-terminated by the kernel; only a hint for the error).  The
 * license only matters to programs that call GPL-only helpers; ours calls
 * none, so it is pynsbind's own. */
int nsb_bpf_load_device_prog(const void *insns, int n, char *log, int loglen)
{
    union bpf_attr attr;
    int fd;
    if (!insns || n <= 0) {
        errno = EINVAL; /* (n is the kernel's u32: a negative one is no count) */
        return -1;
    }
    memset(&attr, 0, sizeof(attr));
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = (uint64_t)(uintptr_t)insns;
    attr.insn_cnt = (uint32_t)n;
    attr.license = (uint64_t)(uintptr_t) "Apache-2.0";
    memcpy(attr.prog_name, NSB_BPF_DEV_NAME, sizeof(NSB_BPF_DEV_NAME));
    if (log && loglen > 0) {
        log[0] = '\0';
        attr.log_buf = (uint64_t)(uintptr_t)log;
        attr.log_size = (uint32_t)loglen;
        attr.log_level = 1;
    }
    fd = nsb_bpf(BPF_PROG_LOAD, &attr);
    return fd < 0 ? -1 : nsb_bpf_cloexec(fd);
}

static int nsb_bpf_attach(int cgroup_fd, int prog_fd, int replace_fd)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.target_fd = (uint32_t)cgroup_fd;
    attr.attach_bpf_fd = (uint32_t)prog_fd;
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = BPF_F_ALLOW_MULTI;
#if NSB_HAS_BPF_F_REPLACE
    if (replace_fd >= 0) {
        attr.attach_flags |= BPF_F_REPLACE;
        attr.replace_bpf_fd = (uint32_t)replace_fd;
    }
#else
    (void)replace_fd;
#endif
    return nsb_bpf(BPF_PROG_ATTACH, &attr);
}

/* Detach one program from a cgroup; one that is not attached counts as done. */
int nsb_bpf_detach_device(int cgroup_fd, int prog_fd)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.target_fd = (uint32_t)cgroup_fd;
    attr.attach_bpf_fd = (uint32_t)prog_fd;
    attr.attach_type = BPF_CGROUP_DEVICE;
    if (nsb_bpf(BPF_PROG_DETACH, &attr) < 0 && errno != ENOENT)
        return -1;
    return 0;
}

/* Attach prog_fd to the cgroup directory cgroup_fd, next to the programs
 * already there (BPF_F_ALLOW_MULTI: a device is allowed when every program on
 * the cgroup and its ancestors allows it).  With replace_fd >= 0, the new
 * program takes the place of that one: atomically where the kernel has
 * BPF_F_REPLACE (5.6), else attached first and the old one detached after, so
 * that the cgroup is never without a program (meanwhile both apply: the
 * stricter of the two).  When that detach fails, both stay attached and -1 is
 * returned. */
int nsb_bpf_attach_device(int cgroup_fd, int prog_fd, int replace_fd)
{
    if (replace_fd >= 0 && NSB_HAS_BPF_F_REPLACE) {
        if (nsb_bpf_attach(cgroup_fd, prog_fd, replace_fd) == 0)
            return 0;
        if (errno != EINVAL)
            return -1;
        /* a kernel before BPF_F_REPLACE, or replace_fd no longer attached */
    }
    if (nsb_bpf_attach(cgroup_fd, prog_fd, -1) < 0)
        return -1;
    if (replace_fd >= 0 && replace_fd != prog_fd)
        return nsb_bpf_detach_device(cgroup_fd, replace_fd);
    return 0;
}

/* The ids of the device programs attached to the cgroup itself (not those it
 * inherits): *n holds the room in ids, and becomes the number attached (more
 * than the room: -1 with ENOSPC). */
int nsb_bpf_query_device(int cgroup_fd, uint32_t *ids, uint32_t *n)
{
    union bpf_attr attr;
    int r;
    memset(&attr, 0, sizeof(attr));
    attr.query.target_fd = (uint32_t)cgroup_fd;
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
    attr.query.prog_cnt = *n;
    r = nsb_bpf(BPF_PROG_QUERY, &attr);
    *n = attr.query.prog_cnt;
    return r;
}

/* An fd (close-on-exec) of the program with this id. */
int nsb_bpf_prog_fd(uint32_t id)
{
    union bpf_attr attr;
    int fd;
    memset(&attr, 0, sizeof(attr));
    attr.prog_id = id;
    fd = nsb_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
    return fd < 0 ? -1 : nsb_bpf_cloexec(fd);
}

/* The id, type and name (NUL-terminated, name has 16 bytes) of a program. */
int nsb_bpf_prog_info(int prog_fd, uint32_t *id, uint32_t *type, char *name)
{
    union bpf_attr attr;
    struct bpf_prog_info info;
    memset(&attr, 0, sizeof(attr));
    memset(&info, 0, sizeof(info));
    attr.info.bpf_fd = (uint32_t)prog_fd;
    attr.info.info_len = sizeof(info);
    attr.info.info = (uint64_t)(uintptr_t)&info;
    if (nsb_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) < 0)
        return -1;
    *id = info.id;
    *type = info.type;
    /* the kernel keeps at most BPF_OBJ_NAME_LEN - 1 characters and a NUL: the
     * last byte set again cuts nothing */
    memcpy(name, info.name, BPF_OBJ_NAME_LEN);
    name[BPF_OBJ_NAME_LEN - 1] = '\0';
    return 0;
}
