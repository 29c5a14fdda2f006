"""The package as users get it: `python -m build` makes an sdist and a wheel; the
sdist alone builds and installs in a fresh venv, runs a container, and the
compiled extension refuses to load against another package version."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.root]


def run(*cmd: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, timeout=900
    )
    assert res.returncode == 0, (cmd, res.stdout[-2000:], res.stderr[-2000:])
    return res


def test_sdist_and_wheel_build_install_and_guard_their_version(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--sdist", "--wheel", "-o", dist, ROOT)
    sdists = list(dist.glob("pynsbind-*.tar.gz"))
    wheels = list(dist.glob("pynsbind-*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1
    names = run("tar", "tzf", sdists[0]).stdout.split()
    for needed in (
        "csrc/build.py",
        "csrc/nsb.h",
        "csrc/child.c",
        "csrc/init.c",
        "setup.py",
        "pyproject.toml",
        "csrc/build_seccomp.py",
        "csrc/seccomp_glue.c",
        "csrc/seccomp_glue.h",
    ):
        assert any(n.endswith(needed) for n in names), needed
    listing = run(sys.executable, "-m", "zipfile", "-l", wheels[0]).stdout
    assert "pynsbind/_native" in listing and "pynsbind/_nsbinit" in listing
    assert "pynsbind/_seccomp" in listing
    # the sdist alone: build it in a new venv, as pip does for users
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    run(py, "-m", "pip", "install", "-q", sdists[0])
    code = (
        "import pynsbind, sys\n"
        "from pynsbind import Namespace\n"
        "r = pynsbind.run(['/bin/sh', '-c', 'hostname'], namespaces=Namespace.UTS, hostname='pkg', capture_output=True)\n"
        "from pynsbind.seccomp import default_profile\n"
        "assert default_profile().compile().instructions > 0\n"
        "print(r.returncode, r.stdout.decode().strip(), pynsbind.__version__)\n"
    )
    out = run(py, "-c", code, cwd=tmp_path).stdout.split()
    if out[:2] != ["0", "pkg"]:
        pytest.fail(f"the installed package did not run a container: {out}")
    # in a regular install (no editable finder importing things first),
    # importing the package imports nothing else
    code = "import sys; b = set(sys.modules); import pynsbind; print(*sorted(set(sys.modules) - b))"
    brought = run(py, "-I", "-c", code, cwd=tmp_path).stdout.split()
    assert brought == ["pynsbind", "pynsbind._version"]
    # a stale build: the extension's version no longer matches the package's
    site = run(
        py, "-c", "import pynsbind, os; print(os.path.dirname(pynsbind.__file__))", cwd=tmp_path
    ).stdout.strip()
    version_file = Path(site) / "_version.py"
    version_file.write_text('__version__ = "0.0.0-stale"\n')
    res = subprocess.run(
        [py, "-c", "import pynsbind.lowlevel"], capture_output=True, text=True, cwd=tmp_path
    )
    assert res.returncode != 0
    assert "ImportError" in res.stderr and "stale" in res.stderr and "0.0.0-stale" in res.stderr


_VALUES = """
#include <stdio.h>
#include "seccomp_glue.h"
int main(void) {
    const struct scmp_version *v = seccomp_version();
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(1), seccomp_syscall_resolve_name("mkdir"),
                                    0, NULL);
    printf("%u %d\\n", v->major, rc);
    printf("%u %u %u %u %u %u %u %u %u\\n", SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD,
           SCMP_ACT_KILL, SCMP_ACT_TRAP, SCMP_ACT_NOTIFY, SCMP_ACT_ERRNO(13), SCMP_ACT_TRACE(7),
           SCMP_ACT_LOG, SCMP_ACT_ALLOW);
    printf("%u %u %u %u %u %u %u %u\\n", SCMP_ARCH_NATIVE, SCMP_ARCH_X86, SCMP_ARCH_X86_64,
           SCMP_ARCH_X32, SCMP_ARCH_ARM, SCMP_ARCH_AARCH64, SCMP_ARCH_S390, SCMP_ARCH_S390X);
    printf("%d %d %d %d %d %d\\n", SCMP_FLTATR_ACT_DEFAULT, SCMP_FLTATR_ACT_BADARCH,
           SCMP_FLTATR_CTL_NNP, SCMP_FLTATR_CTL_TSYNC, SCMP_FLTATR_CTL_OPTIMIZE,
           SCMP_FLTATR_API_SYSRAWRC);
    printf("%d %d %d %d %d %d %d\\n", SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ,
           SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ);
    printf("%zu %zu\\n", sizeof(struct scmp_arg_cmp), offsetof(struct scmp_arg_cmp, datum_b));
    seccomp_release(ctx);
    return 0;
}
"""


def test_libseccomp_without_its_headers(tmp_path: Path) -> None:
    """A machine with libseccomp but not its development files builds
    pynsbind._seccomp with csrc/seccomp_compat.h, linked by soname: each value
    and layout there matches <seccomp.h> (installed here), and the library
    answers through those declarations."""
    if (
        subprocess.run(
            ["cc", "-E", "-x", "c", "-"],
            input="#include <seccomp.h>\n",
            capture_output=True,
            text=True,
        ).returncode
        != 0
    ):
        pytest.skip("no <seccomp.h> here to compare with")
    src = tmp_path / "values.c"
    src.write_text(_VALUES)
    out = {}
    for name, extra in (
        ("header", ["-lseccomp"]),
        ("compat", ["-DNSB_SECCOMP_COMPAT", "-l:libseccomp.so.2"]),
    ):
        exe = tmp_path / name
        run("cc", "-std=gnu11", "-Wall", "-Werror", f"-I{ROOT / 'csrc'}", "-o", exe, src, *extra)
        out[name] = run(exe).stdout
    assert out["compat"] == out["header"]
    assert out["compat"].split("\n")[0].split()[1] == "0"  # the rule was taken


def _readme_first_command() -> str:
    text = (ROOT / "README.md").read_text()
    block = text[text.index("```sh\n") + len("```sh\n") :]
    return block[: block.index("```")].strip()


@pytest.mark.parametrize("who", ["root", "user"])
def test_the_readmes_first_command_works_as_written(who: str) -> None:
    """The README's first command, exactly as written, in a copy of the
    checkout: as root (no sudo) and as an unprivileged user made for the test."""
    import shutil
    import tempfile

    command = _readme_first_command()
    tmp_path = Path(tempfile.mkdtemp(prefix="pynsbind-readme-"))
    try:
        res = _run_readme(command, tmp_path, who)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)
    lines = res.stdout.splitlines()
    assert lines[:2] == ["sandbox", "    PID COMMAND"], (res.stdout, res.stderr[-2000:])
    assert lines[2].split() == ["1", "nsb-init"], res.stdout  # the init is PID 1
    assert lines[3].split() == ["2", "sh"], res.stdout
    assert lines[-2].startswith("uid=0(root)"), res.stdout
    assert lines[-1] == "lo", res.stdout  # no network but loopback
    assert res.stderr.strip().endswith("cannot touch '/etc/x': Read-only file system")
    assert res.returncode == 1  # touch's status


def _run_readme(command: str, tmp_path: Path, who: str) -> subprocess.CompletedProcess[str]:
    """Run command in a copy of the checkout under tmp_path, as root or as a user
    made for it; what it did."""
    import pwd
    import shutil

    work = tmp_path / "checkout"
    files = run("git", "ls-files", cwd=ROOT).stdout.split("\n")
    for name in filter(None, files):
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, work / name)
    argv = ["sh", "-c", command]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    user = "pynsbind-readme"
    if who == "user":
        if shutil.which("useradd") is None:
            pytest.skip("no useradd")
        subprocess.run(["useradd", "-M", "-d", str(tmp_path), user], capture_output=True)
        pw = pwd.getpwnam(user)
        for path in (tmp_path, *tmp_path.rglob("*")):
            os.lchown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(tmp_path, 0o755)
        argv = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups", *argv]
    try:
        res = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    finally:
        if who == "user":
            subprocess.run(["userdel", user], capture_output=True)
    return res
