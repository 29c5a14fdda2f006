/* seccomp_compat.h - the part of libseccomp's <seccomp.h> that pynsbind uses,
 * for a build on a machine that has the library (libseccomp.so.2, which every
 * current distribution installs: its package manager or systemd needs it) but
 * not its development files.  csrc/build_seccomp.py links it then by the
 * library's soname.
 *
 * The actions are the kernel's SECCOMP_RET_* values and the architectures its
 * AUDIT_ARCH_* values (libseccomp's ABI says so, and the compiler takes both
 * from the kernel headers); only the two enums below are libseccomp's own
 * numbers, part of its stable ABI since 2.x.  tests/test_packaging.py checks
 * every value here against <seccomp.h> wherever that header is installed. */
#ifndef NSB_SECCOMP_COMPAT_H
#define NSB_SECCOMP_COMPAT_H

#include <stdint.h>
#include <linux/audit.h>
#include <linux/elf-em.h>
#include <linux/seccomp.h>

typedef void *scmp_filter_ctx;
typedef uint64_t scmp_datum_t;

enum scmp_filter_attr {
    _SCMP_FLTATR_MIN = 0,
    SCMP_FLTATR_ACT_DEFAULT = 1,
    SCMP_FLTATR_ACT_BADARCH = 2,
    SCMP_FLTATR_CTL_NNP = 3,
    SCMP_FLTATR_CTL_TSYNC = 4,
    SCMP_FLTATR_API_TSKIP = 5,
    SCMP_FLTATR_CTL_LOG = 6,
    SCMP_FLTATR_CTL_SSB = 7,
    SCMP_FLTATR_CTL_OPTIMIZE = 8,
    SCMP_FLTATR_API_SYSRAWRC = 9,
    _SCMP_FLTATR_MAX
};

enum scmp_compare {
    _SCMP_CMP_MIN = 0,
    SCMP_CMP_NE = 1,
    SCMP_CMP_LT = 2,
    SCMP_CMP_LE = 3,
    SCMP_CMP_EQ = 4,
    SCMP_CMP_GE = 5,
    SCMP_CMP_GT = 6,
    SCMP_CMP_MASKED_EQ = 7,
    _SCMP_CMP_MAX
};

struct scmp_arg_cmp {
    unsigned int arg;
    enum scmp_compare op;
    scmp_datum_t datum_a;
    scmp_datum_t datum_b;
};

struct scmp_version {
    unsigned int major;
    unsigned int minor;
    unsigned int micro;
};

#define SCMP_ARCH_NATIVE 0
#define SCMP_ARCH_X86 AUDIT_ARCH_I386
#define SCMP_ARCH_X86_64 AUDIT_ARCH_X86_64
#define SCMP_ARCH_X32 (EM_X86_64 | __AUDIT_ARCH_LE)
#define SCMP_ARCH_ARM AUDIT_ARCH_ARM
#define SCMP_ARCH_AARCH64 AUDIT_ARCH_AARCH64
#define SCMP_ARCH_S390 AUDIT_ARCH_S390
#define SCMP_ARCH_S390X AUDIT_ARCH_S390X

#define SCMP_ACT_KILL_PROCESS SECCOMP_RET_KILL_PROCESS
#define SCMP_ACT_KILL_THREAD SECCOMP_RET_KILL_THREAD
#define SCMP_ACT_KILL SCMP_ACT_KILL_THREAD
#define SCMP_ACT_TRAP SECCOMP_RET_TRAP
#define SCMP_ACT_NOTIFY SECCOMP_RET_USER_NOTIF
#define SCMP_ACT_ERRNO(x) (SECCOMP_RET_ERRNO | (SECCOMP_RET_DATA & (x)))
#define SCMP_ACT_TRACE(x) (SECCOMP_RET_TRACE | (SECCOMP_RET_DATA & (x)))
#define SCMP_ACT_LOG SECCOMP_RET_LOG
#define SCMP_ACT_ALLOW SECCOMP_RET_ALLOW

const struct scmp_version *seccomp_version(void);
scmp_filter_ctx seccomp_init(uint32_t def_action);
void seccomp_release(scmp_filter_ctx ctx);
uint32_t seccomp_arch_resolve_name(const char *arch_name);
uint32_t seccomp_arch_native(void);
int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);
int seccomp_attr_set(scmp_filter_ctx ctx, enum scmp_filter_attr attr, uint32_t value);
int seccomp_syscall_resolve_name(const char *name);
char *seccomp_syscall_resolve_num_arch(uint32_t arch_token, int num);
int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall, unsigned int arg_cnt,
                           const struct scmp_arg_cmp *arg_array);
int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd);

#endif
