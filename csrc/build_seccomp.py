"""cffi builder (API mode) for pynsbind._seccomp: libseccomp and the seccomp
user-notification ioctls.

setup.py names this file in ``cffi_modules`` next to csrc/build.py.  It is a
separate extension so that ``pynsbind._native`` does not depend on libseccomp, and
it is loaded only when a seccomp profile is compiled or a notification served.
It declares only what pynsbind.seccomp uses from ``<seccomp.h>`` and
``<linux/seccomp.h>``; constants are ``...`` so that the compiler fills them from
the headers (with a few the default profile compares arguments with:
personalities, tty ioctls, an address family), and ``NSB_SCMP_HAS_*`` say what the
headers had.  Our helpers are
declared in the ``BEGIN CDEF``/``END CDEF`` block of csrc/seccomp_glue.h.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent

LIBSECCOMP_CDEF = """
typedef void *scmp_filter_ctx;
typedef uint64_t scmp_datum_t;
enum scmp_filter_attr {
    SCMP_FLTATR_ACT_DEFAULT, SCMP_FLTATR_ACT_BADARCH, SCMP_FLTATR_CTL_NNP,
    SCMP_FLTATR_CTL_TSYNC, SCMP_FLTATR_CTL_OPTIMIZE, ...
};
enum scmp_compare {
    SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT,
    SCMP_CMP_MASKED_EQ, ...
};
struct scmp_arg_cmp {
    unsigned int arg;
    enum scmp_compare op;
    scmp_datum_t datum_a;
    scmp_datum_t datum_b;
};
struct scmp_version { unsigned int major; unsigned int minor; unsigned int micro; };
const struct scmp_version *seccomp_version(void);
scmp_filter_ctx seccomp_init(uint32_t def_action);
void seccomp_release(scmp_filter_ctx ctx);
uint32_t seccomp_arch_resolve_name(const char *arch_name);
uint32_t seccomp_arch_native(void);
int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);
int seccomp_attr_set(scmp_filter_ctx ctx, enum scmp_filter_attr attr, uint32_t value);
int seccomp_syscall_resolve_name(const char *name);
int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall,
                           unsigned int arg_cnt, const struct scmp_arg_cmp *arg_array);

typedef int... __u32;
typedef int... __u64;
typedef int... __s32;
typedef int... __s64;
struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; };
struct seccomp_notif { __u64 id; __u32 pid; __u32 flags; struct seccomp_data data; ...; };
struct seccomp_notif_resp { __u64 id; __s64 val; __s32 error; __u32 flags; ...; };
"""

CONSTANTS = """
SCMP_ACT_KILL_PROCESS SCMP_ACT_KILL_THREAD SCMP_ACT_KILL SCMP_ACT_TRAP SCMP_ACT_LOG
SCMP_ACT_ALLOW SCMP_ACT_NOTIFY SCMP_ARCH_NATIVE SCMP_ARCH_X86_64 SCMP_ARCH_X86 SCMP_ARCH_X32
SCMP_ARCH_AARCH64 SCMP_ARCH_ARM SCMP_ARCH_S390 SCMP_ARCH_S390X
SECCOMP_FILTER_FLAG_TSYNC SECCOMP_FILTER_FLAG_LOG SECCOMP_FILTER_FLAG_SPEC_ALLOW
SECCOMP_FILTER_FLAG_NEW_LISTENER SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
SECCOMP_USER_NOTIF_FLAG_CONTINUE SECCOMP_IOCTL_NOTIF_RECV SECCOMP_IOCTL_NOTIF_SEND
SECCOMP_IOCTL_NOTIF_ID_VALID BPF_MAXINSNS
PER_LINUX PER_LINUX32 UNAME26 TIOCSTI TIOCLINUX AF_VSOCK
NSB_SCMP_HAS_NOTIFY NSB_SCMP_HAS_NOTIF_CONTINUE NSB_SCMP_HAS_WAIT_KILLABLE_RECV
""".split()


def _version() -> str:
    text = (ROOT / "pynsbind" / "_version.py").read_text()
    match = re.search(r'__version__ = "([^"]+)"', text)
    if match is None:
        raise RuntimeError("pynsbind/_version.py has no __version__")
    return match.group(1)


def _glue_cdef() -> str:
    text = (HERE / "seccomp_glue.h").read_text()
    start = text.index("/* BEGIN CDEF */") + len("/* BEGIN CDEF */")
    return text[start : text.index("/* END CDEF */")]


def _has_header() -> bool:
    """Whether the C compiler finds <seccomp.h> (libseccomp's development files)."""
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        return True  # let the build say what is missing
    res = subprocess.run(
        [cc, "-E", "-x", "c", "-"], input="#include <seccomp.h>\n", capture_output=True, text=True
    )
    return res.returncode == 0


def _libseccomp() -> tuple[list[str], list[str], list[str], list[str]]:
    """Include dirs, library dirs, libraries and link arguments for libseccomp:
    from pkg-config where its development files are installed, else the plain
    ``-lseccomp``; without them (no header), the library itself by its soname,
    with pynsbind's own declarations (csrc/seccomp_compat.h)."""
    pkg_config = shutil.which("pkg-config")
    if pkg_config is not None:
        res = subprocess.run(
            [pkg_config, "--cflags", "--libs", "libseccomp"], capture_output=True, text=True
        )
        if res.returncode == 0:
            flags = res.stdout.split()
            return (
                [f[2:] for f in flags if f.startswith("-I")],
                [f[2:] for f in flags if f.startswith("-L")],
                [f[2:] for f in flags if f.startswith("-l")] or ["seccomp"],
                [],
            )
    if _has_header():
        return [], [], ["seccomp"], []
    return [], [], [], ["-l:libseccomp.so.2"]


_include_dirs, _library_dirs, _libraries, _link_args = _libseccomp()

ffi = FFI()
ffi.cdef(LIBSECCOMP_CDEF + _glue_cdef() + "\n".join(f"#define {name} ..." for name in CONSTANTS))
ffi.set_source(
    "pynsbind._seccomp",
    '#include "seccomp_glue.h"\n',
    sources=["csrc/seccomp_glue.c"],
    include_dirs=["csrc", *_include_dirs],
    library_dirs=_library_dirs,
    libraries=_libraries,
    define_macros=[("NSB_VERSION", f'"{_version()}"')],
    extra_compile_args=["-std=gnu11", "-Wall", "-Wextra", "-fvisibility=hidden"],
    extra_link_args=["-Wl,-z,now", *_link_args],
)

if __name__ == "__main__":
    ffi.compile(verbose=True)
