#!/usr/bin/env python3
"""What the benchmark scripts share: statistics, timing a command, the OCI
runtimes as pluggable contenders, and the helper process that runs a runtime in
a private mount namespace (crun on a hybrid cgroup host).

A contender that is an OCI command line runtime is one :class:`OciRuntime`
entry of :data:`OCI_RUNTIMES`; every section of the suite (start, stop,
density, exec, peak RSS) drives it through the same verbs (``run``, or
``create`` + ``start``; ``kill``, ``delete``, ``state``, ``exec``), here or in
the helper, and skips it with the reason when its program or one of those
subcommands is missing.

Run as a script with ``--helper`` this module is that helper: it reads one JSON
request a line (``{"op": NAME, "args": {...}}``), runs the operation of
:class:`CliOps` with that name and answers with one JSON line.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CGROUP_ROOT = Path("/sys/fs/cgroup")
UNIFIED = CGROUP_ROOT / "unified"

#: pynsbind's default capability set (pynsbind.spec.DEFAULT_CAPABILITIES, runc's
#: and Docker's default); crun and runc get the same in their config.json.
DEFAULT_CAPS = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
)
OCI_NAMESPACES = ("pid", "mount", "uts", "ipc", "network", "cgroup")


# ---- statistics ------------------------------------------------------------------


def percentile(sorted_ns: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(q * len(sorted_ns)))
    return sorted_ns[rank - 1]


def summarize(times: Sequence[float]) -> dict[str, float]:
    """count, median, mean, p90 (nearest rank), min and max of a sample."""
    s = sorted(times)
    return {
        "count": len(s),
        "median_ns": float(statistics.median(s)),
        "mean_ns": float(statistics.fmean(s)),
        "p90_ns": float(percentile(s, 0.9)),
        "min_ns": float(s[0]),
        "max_ns": float(s[-1]),
    }


# ---- commands -----------------------------------------------------------------------


class Failed(Exception):
    """A contender did not do what it was asked (it is dropped, with this reason)."""


def timed(argv: Sequence[str]) -> int:
    """Run argv (output to this process's), nanoseconds of wall time; Failed
    unless it exits 0."""
    t0 = time.perf_counter_ns()
    res = subprocess.run(argv)
    dt = time.perf_counter_ns() - t0
    if res.returncode != 0:
        raise Failed(f"{' '.join(argv[:4])}: exit status {res.returncode}")
    return dt


def quiet(argv: Sequence[str], timeout: float = 120) -> str:
    """Run argv with its output captured: "" when it exits 0, else why not."""
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{argv[0]}: {exc}"
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or [""]
        return f"{' '.join(argv[:3])}: exit status {res.returncode}: {tail[0][:200]}"
    return ""


check_command = quiet


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages: was anything else running?"""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def version(argv: list[str]) -> str:
    """The first line a program prints for its version, or "?"."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (out.strip().splitlines() or ["?"])[0]


PR_SET_CHILD_SUBREAPER = 36


def set_subreaper() -> None:
    """Make this process the reaper of its orphaned descendants: the process of a
    container started detached (``run -d``) is then this process's to reap once
    the runtime's command has exited, so that its end can be waited for."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}")


def cgroup_mounts() -> list[str]:
    """The mount points of the cgroup hierarchies this process sees (cgroup and
    cgroup2 mounts in its mountinfo), under /sys/fs/cgroup."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        point, fstype = left.split()[4], right.split()[0]
        if fstype in ("cgroup", "cgroup2") and point.startswith(str(CGROUP_ROOT)):
            out.append(point)
    return sorted(set(out))


def cgroup_dirs(rel: str) -> list[str]:
    """The directory of cgroup ``rel`` in every hierarchy this process sees."""
    return [os.path.join(m, rel) for m in cgroup_mounts()]


def remove_hidden(prefix: str) -> list[str]:
    """In a mount namespace where a hierarchy is unmounted (the helper's, where
    the cgroup2 mount of a hybrid host is gone), crun 1.8 still makes its cgroup
    directories there, as plain directories of the tmpfs under /sys/fs/cgroup
    that no other namespace sees (crun's writes become plain files in them).
    Remove those under ``prefix``, bottom up; what could not be removed."""
    mounted = set(cgroup_mounts())
    left = []
    for name in sorted(os.listdir(CGROUP_ROOT)):
        top = CGROUP_ROOT / name
        if str(top) in mounted or not top.is_dir() or top.is_symlink():
            continue
        for entry in os.listdir(top):
            if not entry.startswith(prefix):
                continue
            for dirpath, _, files in os.walk(top / entry, topdown=False):
                try:
                    for f in files:  # crun's writes: plain files here
                        os.unlink(os.path.join(dirpath, f))
                    os.rmdir(dirpath)
                except OSError:
                    left.append(dirpath)
    return left


def wait_gone(paths: Sequence[str], limit: float = 30.0) -> None:
    """Poll until none of the paths exists; Failed at the limit (a failure
    detector: the time it takes is part of what is measured)."""
    end = time.monotonic() + limit
    while any(os.path.exists(p) for p in paths):
        if time.monotonic() > end:
            raise Failed(f"still there after {limit} s: {[p for p in paths if os.path.exists(p)]}")
        time.sleep(0.0002)


# ---- OCI runtimes: the pluggable contenders -------------------------------------------


@dataclass(frozen=True)
class OciRuntime:
    """An OCI runtime driven through its command line, one line per entry.

    ``start`` is ``"run"`` (one command runs the container to its end; ``run -d``
    starts it detached) or ``"create+start"`` (``create --pid-file``, ``start``,
    wait for the exit, ``delete``; detached: ``create`` + ``start``).
    ``private_mount_ns``: run it from the helper, in a private mount namespace
    where the cgroup2 mount of a hybrid host is unmounted (crun 1.8 refuses a
    hybrid layout)."""

    label: str
    exe: str
    start: str = "run"
    private_mount_ns: bool = False

    def which(self) -> str | None:
        """The program: on $PATH, else next to this Python (a venv's
        ``pynsbind-run`` without the venv activated)."""
        return shutil.which(self.exe) or shutil.which(
            self.exe, path=os.path.dirname(sys.executable)
        )

    def subcommands(self) -> tuple[str, ...]:
        verbs = ("run",) if self.start == "run" else ("create", "start")
        return (*verbs, "state", "kill", "delete", "exec")

    def why_missing(self) -> str:
        """Why this runtime cannot run here ("" when it can): its program, or a
        subcommand of it (``EXE SUB --help`` must exit 0)."""
        path = self.which()
        if path is None:
            pkg = {"bwrap": "bubblewrap"}.get(self.exe, self.exe)
            return f"{self.exe} is not installed (Debian: apt-get install {pkg})"
        for sub in self.subcommands():
            try:
                res = subprocess.run(
                    [path, sub, "--help"], capture_output=True, text=True, timeout=30
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                return f"{self.exe} {sub} --help: {exc}"
            if res.returncode != 0:
                return f"{self.exe} has no {sub!r} subcommand ({self.exe} {sub} --help failed)"
        return ""


#: The OCI command line runtimes compared: ``run`` each, and pynsbind-run also
#: as podman and containerd drive a runtime (``create``, ``start``).
OCI_RUNTIMES: list[OciRuntime] = [
    OciRuntime("crun run", "crun", private_mount_ns=True),
    OciRuntime("runc run", "runc"),
    OciRuntime("pynsbind-run run", "pynsbind-run"),
    OciRuntime("pynsbind-run create+start", "pynsbind-run", start="create+start"),
]


def oci_config(
    rootfs: Path | str,
    cgroups_path: str,
    args: Sequence[str] = ("/bin/true",),
    resources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The config.json of the suite's container profile: the same six
    namespaces as the pynsbind spec, only a proc mount, no seccomp, no masked or
    read-only paths, the 14 default capabilities, no_new_privs, an absolute
    ``cgroupsPath`` (under the benchmark's own top-level name)."""
    caps = [f"CAP_{c}" for c in DEFAULT_CAPS]
    linux: dict[str, Any] = {
        "namespaces": [{"type": t} for t in OCI_NAMESPACES],
        # absolute: under our own prefix at the top of each hierarchy,
        # never relative to the cgroup this process sits in
        "cgroupsPath": cgroups_path,
    }
    if resources:
        linux["resources"] = resources
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": ["PATH=/bin"],
            "cwd": "/",
            "capabilities": {
                k: caps for k in ("bounding", "effective", "permitted", "inheritable")
            },
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs), "readonly": False},
        "mounts": [
            {
                "destination": "/proc",
                "type": "proc",
                "source": "proc",
                "options": ["nosuid", "nodev", "noexec"],
            }
        ],
        "linux": linux,
    }


def write_bundle(
    bundle: Path,
    rootfs: Path | str,
    cgroups_path: str,
    args: Sequence[str] = ("/bin/true",),
    resources: dict[str, Any] | None = None,
) -> Path:
    """A bundle directory holding config.json (the rootfs given by its path)."""
    bundle.mkdir(parents=True, exist_ok=True)
    config = oci_config(rootfs, cgroups_path, args, resources)
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


# ---- what is done with an OCI runtime (here, or in the helper) --------------------------


def _rt(rt: dict[str, Any] | OciRuntime) -> OciRuntime:
    return rt if isinstance(rt, OciRuntime) else OciRuntime(**rt)


class CliOps:
    """The operations on an OCI runtime, each a function of JSON-able arguments
    so that the helper can run them as they run here.  ``root`` is the
    runtime's state directory (``--root``).  This process must be a subreaper
    (:func:`set_subreaper`) for the waits of detached containers."""

    def __init__(self) -> None:
        self.exe: dict[str, str] = {}

    def _exe(self, rt: OciRuntime) -> str:
        if rt.exe not in self.exe:
            self.exe[rt.exe] = rt.which() or rt.exe
        return self.exe[rt.exe]

    def _cmd(self, rt: OciRuntime, root: str, *args: str) -> list[str]:
        return [self._exe(rt), "--root", root, *args]

    # -- one container, start to end --

    def lifecycle(self, rt: OciRuntime, root: str, bundle: str, cid: str) -> None:
        """Run one container to its end: ``run``, or ``create`` + ``start`` +
        its exit + ``delete``."""
        if rt.start == "run":
            if subprocess.run(self._cmd(rt, root, "run", "--bundle", bundle, cid)).returncode:
                raise Failed(f"{rt.exe} run failed")
            return
        pidfile = os.path.join(root, f"{cid}.pid")
        create = self._cmd(rt, root, "create", "--bundle", bundle, "--pid-file", pidfile, cid)
        if subprocess.run(create, stdin=subprocess.DEVNULL).returncode:
            raise Failed(f"{rt.exe} create failed")
        pid = int(Path(pidfile).read_text())
        os.unlink(pidfile)
        if subprocess.run(self._cmd(rt, root, "start", cid)).returncode:
            raise Failed(f"{rt.exe} start failed")
        os.waitpid(pid, 0)  # a subreaper's: the container's process is ours once create exits
        if subprocess.run(self._cmd(rt, root, "delete", cid)).returncode:
            raise Failed(f"{rt.exe} delete failed")

    def check(self, rt: dict[str, Any], root: str, bundle: str, cid: str) -> str:
        """One container with its output captured: "" when it ran, else why not."""
        r = _rt(rt)
        if r.start == "run":
            return quiet(self._cmd(r, root, "run", "--bundle", bundle, cid))
        try:
            self.lifecycle(r, root, bundle, cid)
        except (Failed, OSError, ValueError) as exc:
            return str(exc)
        return ""

    def start_times(self, rt: dict[str, Any], root: str, bundle: str, ids: list[str]) -> list[int]:
        """The wall time of each container's lifecycle, one after another."""
        r = _rt(rt)
        out = []
        for cid in ids:
            t0 = time.perf_counter_ns()
            self.lifecycle(r, root, bundle, cid)
            out.append(time.perf_counter_ns() - t0)
        return out

    def parallel(self, rt: dict[str, Any], root: str, jobs: list[list[list[str]]]) -> int:
        """Workers at once, each running its [bundle, id] pairs one after
        another; the wall time of the whole, in nanoseconds."""
        r = _rt(rt)
        errors: list[str] = []
        start = threading.Barrier(len(jobs) + 1)

        def work(pairs: list[list[str]]) -> None:
            start.wait()
            for bundle, cid in pairs:
                try:
                    self.lifecycle(r, root, bundle, cid)
                except (Failed, OSError) as exc:
                    errors.append(str(exc))
                    return

        pool = [threading.Thread(target=work, args=(j,)) for j in jobs]
        for th in pool:
            th.start()
        start.wait()
        t0 = time.perf_counter_ns()
        for th in pool:
            th.join()
        dt = time.perf_counter_ns() - t0
        if errors:
            raise Failed(errors[0])
        return dt

    def output(self, rt: dict[str, Any], root: str, bundle: str, cid: str) -> str:
        """``run`` one container to its end; what it printed on stdout."""
        r = _rt(rt)
        argv = self._cmd(r, root, "run", "--bundle", bundle, cid)
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if res.returncode:
            raise Failed(f"{r.exe} run: exit status {res.returncode}: {res.stderr.strip()[-200:]}")
        return res.stdout

    def maxrss(self, rt: dict[str, Any], root: str, bundle: str, cid: str, launcher: str) -> int:
        """Peak RSS (bytes) of the runtime's ``run`` of one container: wait4's
        ru_maxrss, the largest of the process and the descendants it waited
        for (the container's /bin/true among them)."""
        r = _rt(rt)
        argv = self._cmd(r, root, "run", "--bundle", bundle, cid)
        return maxrss_of(argv, launcher)

    # -- detached containers: stop, density, exec --

    def start_detached(
        self, rt: dict[str, Any], root: str, jobs: list[list[str]], keep_going: bool = False
    ) -> dict[str, Any]:
        """Start containers detached, one after another: ``run -d`` (or
        ``create`` + ``start``).  Returns the time of each start, the pid of each
        container's process (from ``state``, after the timed part) and, with
        keep_going, the first failure instead of raising it."""
        r = _rt(rt)
        times: list[int] = []
        pids: list[int] = []
        error = ""
        err = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
        for bundle, cid in jobs:
            if r.start == "run":
                steps = [self._cmd(r, root, "run", "-d", "--bundle", bundle, cid)]
            else:
                steps = [
                    self._cmd(r, root, "create", "--bundle", bundle, cid),
                    self._cmd(r, root, "start", cid),
                ]
            t0 = time.perf_counter_ns()
            why = ""
            for argv in steps:
                # a file, not a pipe: the detached container keeps what it inherits
                err.seek(0)
                err.truncate()
                res = subprocess.run(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
                )
                if res.returncode:
                    err.seek(0)
                    why = f"{r.exe} {argv[3]} {cid}: {err.read().decode(errors='replace')[-200:]}"
                    break
            dt = time.perf_counter_ns() - t0
            if why:
                self.force_delete(rt, root, [cid])
                if not keep_going:
                    raise Failed(why.strip())
                error = why.strip()
                break
            times.append(dt)
            pids.append(self.pid_of(r, root, cid))
        err.close()
        return {"times": times, "pids": pids, "error": error}

    def pid_of(self, rt: OciRuntime, root: str, cid: str) -> int:
        res = subprocess.run(self._cmd(rt, root, "state", cid), capture_output=True, text=True)
        if res.returncode:
            raise Failed(f"{rt.exe} state {cid}: {res.stderr.strip()[-200:]}")
        return int(json.loads(res.stdout)["pid"])

    def count_procs(self, dirs: list[str]) -> int:
        """The processes in a cgroup (its first hierarchy's cgroup.procs)."""
        try:
            return len(Path(dirs[0], "cgroup.procs").read_text().split())
        except OSError:
            return -1

    def wait_procs(self, dirs: list[str], count: int, limit: float = 30.0) -> None:
        """Wait until a cgroup holds count processes (a failure detector)."""
        end = time.monotonic() + limit
        while self.count_procs(dirs) < count:
            if time.monotonic() > end:
                raise Failed(f"{dirs[0]} holds {self.count_procs(dirs)} of {count} processes")
            time.sleep(0.002)

    def stop(self, rt: dict[str, Any], root: str, cid: str, pid: int, rel: str) -> int:
        """From the stop request to the container reaped and its cgroup gone:
        ``kill ID KILL``, the wait for its process (ours: a subreaper), then
        ``delete ID`` and its cgroup directories gone (``rel`` in every hierarchy
        this process sees).  Nanoseconds."""
        r = _rt(rt)
        dirs = cgroup_dirs(rel)
        t0 = time.perf_counter_ns()
        if subprocess.run(self._cmd(r, root, "kill", cid, "KILL")).returncode:
            raise Failed(f"{r.exe} kill {cid} failed")
        os.waitpid(pid, 0)
        if subprocess.run(self._cmd(r, root, "delete", cid)).returncode:
            raise Failed(f"{r.exe} delete {cid} failed")
        wait_gone(dirs)
        return time.perf_counter_ns() - t0

    def stop_all(
        self, rt: dict[str, Any], root: str, ids: list[str], pids: list[int], rels: list[str]
    ) -> int:
        """Stop every container: all the kills, then the waits, then the deletes,
        then every cgroup directory gone.  Nanoseconds for the whole."""
        r = _rt(rt)
        dirs = [d for rel in rels for d in cgroup_dirs(rel)]
        t0 = time.perf_counter_ns()
        for cid in ids:
            if subprocess.run(self._cmd(r, root, "kill", cid, "KILL")).returncode:
                raise Failed(f"{r.exe} kill {cid} failed")
        for pid in pids:
            os.waitpid(pid, 0)
        for cid in ids:
            if subprocess.run(self._cmd(r, root, "delete", cid)).returncode:
                raise Failed(f"{r.exe} delete {cid} failed")
        wait_gone(dirs, limit=120)
        return time.perf_counter_ns() - t0

    def exec_times(self, rt: dict[str, Any], root: str, cid: str, k: int) -> list[int]:
        """``exec ID /bin/true`` k times into a running container."""
        r = _rt(rt)
        argv = self._cmd(r, root, "exec", cid, "/bin/true")
        return [timed(argv) for _ in range(k)]

    def force_delete(self, rt: dict[str, Any], root: str, ids: list[str]) -> list[str]:
        """Best effort: ``delete --force`` each container, then reap what is ours;
        the ids whose state could not be removed."""
        r = _rt(rt)
        left = []
        for cid in ids:
            argv = self._cmd(r, root, "delete", "--force", cid)
            if quiet(argv) and os.path.exists(os.path.join(root, cid)):
                left.append(cid)
        reap_orphans()
        return left

    def remove_hidden(self, prefix: str) -> list[str]:
        return remove_hidden(prefix)

    def true_times(self, k: int) -> list[int]:
        """subprocess.run(['/bin/true']) k times: a reference."""
        return [timed(["/bin/true"]) for _ in range(k)]


def reap_orphans() -> None:
    """Reap any exited child (what a subreaper collects)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def maxrss_of(argv: Sequence[str], launcher: str) -> int:
    """Peak RSS in bytes of one run of argv, from wait4 (the process and the
    descendants it waited for), measured by ``launcher rss`` (benchmarks/work.c:
    a small static program, since a process's peak counts the memory of the
    process it was forked from); Failed unless it exits 0."""
    exe = shutil.which(argv[0]) or argv[0]
    res = subprocess.run(
        [launcher, "rss", exe, *argv[1:]], stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    if res.returncode:
        raise Failed(f"{argv[0]}: exit status {res.returncode}: {res.stderr.strip()[-200:]}")
    return int(res.stdout.split()[-1]) * 1024


class Runner:
    """Where a runtime's operations run: here (``call`` runs the CliOps method)."""

    def __init__(self) -> None:
        self.ops = CliOps()

    def call(self, op: str, **args: Any) -> Any:
        fn: Callable[..., Any] = getattr(self.ops, op)
        return fn(**args)

    def close(self) -> None:
        pass


class Helper(Runner):
    """A long-lived Python process in a private mount namespace where the
    cgroup2 mount of a hybrid host is unmounted (crun 1.8 refuses hybrid
    layouts).  It runs the operations with subprocess exactly as this process
    does, so crun pays no per-call unshare wrapper."""

    def __init__(self, unmount_unified: bool) -> None:
        me = [sys.executable, str(Path(__file__).resolve()), "--helper"]
        if unmount_unified:
            argv = [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                f'umount {UNIFIED} && exec "$0" "$@"',
                *me,
            ]
        else:
            argv = me
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.lock = threading.Lock()
        ready = self._recv()
        if not ready.get("ready"):
            raise Failed(f"the helper did not start: {ready}")

    def _recv(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise Failed(f"the helper exited (status {self.proc.wait()})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def call(self, op: str, **args: Any) -> Any:
        assert self.proc.stdin is not None
        with self.lock:
            self.proc.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
            self.proc.stdin.flush()
            reply = self._recv()
        if "error" in reply:
            raise Failed(reply["error"])
        return reply["result"]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def helper_main() -> int:
    """The --helper side: one JSON request a line, one JSON answer a line, on
    duplicates of fds 0 and 1; the commands it runs get /dev/null and stderr."""
    proto_in = os.fdopen(os.dup(0), "r")
    proto_out = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    set_subreaper()
    ops = CliOps()

    def send(obj: dict[str, Any]) -> None:
        proto_out.write(json.dumps(obj) + "\n")
        proto_out.flush()

    send({"ready": True})
    for line in proto_in:
        req = json.loads(line)
        try:
            result = getattr(ops, req["op"])(**req["args"])
            reap_orphans()  # what was left to this subreaper (each op waits for its own)
            send({"result": result})
        except (Failed, OSError, ValueError, KeyError) as exc:
            send(
                {
                    "error": f"{type(exc).__name__}: {exc}"
                    if not isinstance(exc, Failed)
                    else str(exc)
                }
            )
    reap_orphans()
    return 0


def runtime_dict(rt: OciRuntime) -> dict[str, Any]:
    """An OciRuntime as the helper's requests carry it."""
    return asdict(rt)


if __name__ == "__main__":
    if sys.argv[1:] == ["--helper"]:
        sys.exit(helper_main())
    sys.exit(f"usage: {sys.argv[0]} --helper (the benchmarks start it themselves)")
