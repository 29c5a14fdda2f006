"""The package as users get it: `python -m build` makes an sdist and a wheel; the
sdist alone builds and installs in a fresh venv, runs a container, and the
compiled extension refuses to load against another package version."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.root]


def run(*cmd: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, timeout=900)
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
        "csrc/build.py", "csrc/nsb.h", "csrc/child.c", "csrc/init.c", "setup.py", "pyproject.toml",
        "csrc/build_seccomp.py", "csrc/seccomp_glue.c", "csrc/seccomp_glue.h",
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
    # a stale build: the extension's version no longer matches the package's
    site = run(py, "-c", "import pynsbind, os; print(os.path.dirname(pynsbind.__file__))", cwd=tmp_path).stdout.strip()
    version_file = Path(site) / "_version.py"
    version_file.write_text('__version__ = "0.0.0-stale"\n')
    res = subprocess.run([py, "-c", "import pynsbind.lowlevel"], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode != 0
    assert "ImportError" in res.stderr and "stale" in res.stderr and "0.0.0-stale" in res.stderr
