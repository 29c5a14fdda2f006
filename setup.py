"""The build: the cffi extensions (csrc/build.py, csrc/build_seccomp.py), the
container init (pyproject.toml's ext-modules), and pynsbind-run's launcher.

pynsbind-run is a C program (csrc/launcher.c, with the spawn engine): it runs a
sandbox whose plan is kept without starting Python, and hands everything else
to pynsbind-run.py, the Python command line, installed beside it.  build_scripts
builds it into the scripts it installs (pip copies a program as it is, and
writes its interpreter's path on pynsbind-run.py's first line)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sysconfig
from pathlib import Path

from setuptools import setup

# (setuptools, imported first, provides distutils: its own copy)
from distutils.command.build_scripts import build_scripts  # isort: skip

ROOT = Path(__file__).resolve().parent
LAUNCHER_SOURCES = [
    "launcher.c",
    "launcher_oci.c",
    "cgroup.c",
    "bpf.c",
    "spawn.c",
    "child.c",
    "child_fs.c",
]


class BuildScripts(build_scripts):
    """build_scripts, and the launcher (csrc/launcher.c) as pynsbind-run."""

    def run(self) -> None:
        super().run()
        out = Path(self.build_dir) / "pynsbind-run"
        sources = [ROOT / "csrc" / name for name in LAUNCHER_SOURCES]
        newest = max(p.stat().st_mtime for p in [*sources, *(ROOT / "csrc").glob("*.h")])
        if out.exists() and out.stat().st_mtime >= newest and not self.force:
            return
        cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
        argv = [
            *cc,
            "-std=gnu11",
            "-O2",
            "-Wall",
            "-Wextra",
            "-fvisibility=hidden",
            f"-I{ROOT / 'csrc'}",
            f'-DNSB_VERSION="{self.distribution.get_version()}"',
            *map(str, sources),
            "-Wl,-z,now",
            "-o",
            str(out),
        ]
        self.announce(" ".join(argv), level=2)
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(argv, check=True)
        out.chmod(0o755)


setup(
    cffi_modules=["csrc/build.py:ffi", "csrc/build_seccomp.py:ffi"],
    cmdclass={"build_scripts": BuildScripts},
)
