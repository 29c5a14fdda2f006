"""The harness that drives an OCI runtime the way podman and containerd do
(a plain module, like tests/helpers.py: no fixtures, no pytest, no pynsbind
at module level; what this machine lacks raises :class:`Unavailable`).

- the runtimes: :data:`RUNTIMES` (name -> how to find it and whether it must be
  wrapped on this host), :data:`OCI_TEST_RUNTIMES` (those tests/test_podman.py
  and tests/test_containerd.py run against: adding ``"pynsbind-run"`` there is
  the one line that points them at pynsbind), :func:`runtimes_under_test`,
  :func:`resolve_runtime` (an executable path for a name, wrapped as needed),
  :func:`trace_wrapper` (a runtime behind a script that logs every call);
- the image: :func:`image_rootfs` (busybox-static, its applets, a ``/pause``),
  :func:`rootfs_tar`, :func:`oci_archive` (an OCI image layout made here);
- :class:`PodmanEnv`: podman with private containers.conf, storage.conf and
  registries.conf, storage under its root directory, the cgroupfs manager,
  containers under ``/pynsbind-podman-PID-N``, the busybox image imported;
- :class:`ContainerdEnv`: a private containerd daemon (own config, root,
  state and sockets), the same image imported, ``ctr`` bound to it.

Both clean up everything they made (containers, pods, mounts, cgroups,
processes, files): ``cleanup()`` returns what it had to force, which a test
asserts to be empty.  Nothing touches /var/lib/containers,
/var/lib/containerd, /run/containerd or a registry.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import itertools
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.helpers import (
    BUSYBOX_APPLETS,
    Unavailable,
    cgroup_roots,
    find_busybox,
    make_rootfs,
    remove_cgroups,
    wait_gone,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

# ---- the runtimes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Runtime:
    """How to find an OCI runtime: program names looked up on $PATH (or the
    script ``venv_script`` next to this Python), and whether it refuses a
    hybrid cgroup layout (then it runs in a private mount namespace without
    the cgroup2 mount at /sys/fs/cgroup/unified, as benchmarks/bench_spawn.py
    does for crun)."""

    name: str
    programs: tuple[str, ...] = ()
    venv_script: str = ""
    refuses_hybrid: bool = False
    install: str = ""

    def find(self) -> str:
        """The runtime's executable, or Unavailable."""
        if self.venv_script:
            cand = Path(sys.executable).parent / self.venv_script
            if cand.exists():
                return str(cand)
        for prog in self.programs:
            found = shutil.which(prog, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
            if found:
                return found
        raise Unavailable(f"{self.name} is not installed ({self.install or 'not found'})")


#: every runtime the harness knows
RUNTIMES: dict[str, Runtime] = {
    "runc": Runtime("runc", ("runc",), install="Debian: runc"),
    "crun": Runtime("crun", ("crun",), refuses_hybrid=True, install="Debian: crun"),
    "pynsbind-run": Runtime("pynsbind-run", venv_script="pynsbind-run", install="pip install -e ."),
}

#: the runtimes the podman and containerd tests run against (their fixture
#: parameter): the reference runtimes and pynsbind-run
OCI_TEST_RUNTIMES: tuple[str, ...] = ("runc", "crun", "pynsbind-run")


def runtimes_under_test() -> list[str]:
    """OCI_TEST_RUNTIMES, or the comma-separated names in
    $PYNSBIND_OCI_RUNTIMES (e.g. ``runc,pynsbind-run``)."""
    env = os.environ.get("PYNSBIND_OCI_RUNTIMES", "")
    return [n for n in env.split(",") if n] if env else list(OCI_TEST_RUNTIMES)


def hybrid_cgroups() -> bool:
    """True on a host with cgroup v1 controllers and a cgroup2 mount at
    /sys/fs/cgroup/unified (this machine)."""
    return os.path.ismount("/sys/fs/cgroup/unified")


def _script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def hybrid_wrapper(binary: str, dest: Path) -> str:
    """A script at dest that runs binary in a private mount namespace where
    /sys/fs/cgroup/unified is unmounted (the host's mounts are not touched)."""
    return _script(
        dest,
        "#!/bin/sh\n"
        "# run the runtime without the hybrid layout's cgroup2 mount\n"
        "exec unshare --mount --propagation private /bin/sh -c "
        '\'umount /sys/fs/cgroup/unified && exec "$0" "$@"\' '
        f"'{binary}' \"$@\"\n",
    )


def trace_wrapper(binary: str, log_dir: Path, dest: Path) -> str:
    """A script at dest that appends each call's argv, working directory, parent
    command line, environment variables of interest and open fds to
    log_dir/calls.log, copies the files it is handed (the bundle's
    config.json, exec's process.json, update's resources) to log_dir as
    NNN-NAME, then execs binary."""
    log_dir.mkdir(parents=True, exist_ok=True)
    return _script(
        dest,
        f"""#!/bin/sh
LOG='{log_dir}'
n=$(date +%s%N)-$$
# the fds as the caller passed them (read before the log's redirection)
fds=$(for fd in 0 1 2 3 4 5 6 7 8 9; do
  [ -e /proc/$$/fd/$fd ] && printf 'fd %s -> %s\\n' $fd "$(readlink /proc/$$/fd/$fd)"
done)
{{
  printf '=== %s cwd=%s\\n' "$n" "$(pwd)"
  printf 'argv:'; for a in "$@"; do printf ' %s' "$a"; done; printf '\\n'
  printf 'parent: %s\\n' "$(tr '\\0' ' ' < /proc/$PPID/cmdline | cut -c1-300)"
  env | grep -E '^(_OCI_|NOTIFY_SOCKET|LISTEN_|XDG_RUNTIME_DIR|GOMAXPROCS)' | sed 's/^/env: /'
  printf '%b\\n' "$fds"
}} >> "$LOG/calls.log" 2>&1
bundle=
prev=
for a in "$@"; do
  case "$prev" in --bundle|-b) bundle=$a;; esac
  case "$a" in --bundle=*) bundle=${{a#--bundle=}};; --resources=*) cp "${{a#--resources=}}" "$LOG/$n-resources.json";; esac
  case "$prev" in --process|-p|--resources|-r) [ -f "$a" ] && cp "$a" "$LOG/$n-$(basename "$a")";; esac
  prev=$a
done
for a in "$@"; do case "$a" in create|run) [ -z "$bundle" ] && bundle=$(pwd);; esac; done
[ -n "$bundle" ] && [ -f "$bundle/config.json" ] && cp "$bundle/config.json" "$LOG/$n-config.json"
exec '{binary}' "$@"
""",
    )


def resolve_runtime(name_or_path: str, workdir: Path, *, trace: Path | None = None) -> str:
    """An executable for a runtime of RUNTIMES (or a path to one): the binary,
    or a wrapper script in workdir (crun on a hybrid host), and behind a
    :func:`trace_wrapper` logging to trace when given.  Unavailable when the
    runtime is missing."""
    rt = RUNTIMES.get(name_or_path)
    if rt is None:
        if not os.access(name_or_path, os.X_OK):
            raise Unavailable(f"no runtime {name_or_path!r} (known: {', '.join(RUNTIMES)})")
        path, base = os.path.abspath(name_or_path), os.path.basename(name_or_path)
    else:
        path, base = rt.find(), rt.name
        if rt.refuses_hybrid and hybrid_cgroups():
            path = hybrid_wrapper(path, workdir / f"{base}-hybrid")
    if trace is not None:
        path = trace_wrapper(path, trace, workdir / f"{base}-trace")
    return path


# ---- the image --------------------------------------------------------------------------

#: the applets of the image (more than the engine tests' rootfs)
IMAGE_APPLETS = (
    *BUSYBOX_APPLETS,
    *"dd tr cut printf seq tty sed awk chmod chown nproc sort uniq cmp mkfifo".split(),
)
IMAGE_NAME = "localhost/pynsbind-busybox:latest"
#: containers.conf's default_capabilities: podman 4.3's built-in list less
#: NET_RAW, MKNOD and AUDIT_WRITE (so that the tests see podman pass its own)
DEFAULT_CAPABILITIES = (
    "CHOWN DAC_OVERRIDE FOWNER FSETID KILL NET_BIND_SERVICE SETFCAP SETGID SETPCAP SETUID SYS_CHROOT"
).split()
#: the pod infra command of the image: waits for TERM (PID 1 has no default action)
PAUSE = '#!/bin/sh\ntrap "exit 0" TERM INT\nwhile :; do sleep 1000 & wait $!; done\n'


def image_rootfs(root: Path) -> Path:
    """A root filesystem for the image at root: static busybox and
    IMAGE_APPLETS, /etc/passwd and group, /pause."""
    busybox = find_busybox()
    if busybox is None:
        raise Unavailable("needs a static busybox (Debian: busybox-static)")
    make_rootfs(root, busybox, applets=IMAGE_APPLETS)
    _script(root / "pause", PAUSE)
    return root


def _tar_bytes(root: Path) -> bytes:
    """root as an uncompressed tar, its entries sorted, owned by root."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*")):

            def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                return info

            tar.add(
                path, arcname=str(path.relative_to(root)), recursive=False, filter=owned_by_root
            )
    return buf.getvalue()


def rootfs_tar(root: Path, dest: Path) -> Path:
    """root as a tar file at dest (for ``podman import``)."""
    dest.write_bytes(_tar_bytes(root))
    return dest


def _blob(blobs: dict[str, bytes], data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return digest


def oci_archive(root: Path, dest: Path, name: str = IMAGE_NAME) -> Path:
    """root as a one-layer image in an OCI image layout, tarred at dest (for
    ``ctr images import``); its index names it ``name``."""
    layer_tar = _tar_bytes(root)
    layer = gzip.compress(layer_tar, mtime=0)
    blobs: dict[str, bytes] = {}
    layer_digest = _blob(blobs, layer)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/"},
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()],
            },
            "history": [{"created_by": "pynsbind tests/oci_runtimes.py"}],
        }
    ).encode()
    config_digest = _blob(blobs, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest,
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    manifest_digest = _blob(blobs, manifest)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": len(manifest),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
                },
            }
        ],
    }
    files = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index).encode(),
        **{f"blobs/sha256/{d.split(':', 1)[1]}": b for d, b in blobs.items()},
    }
    with tarfile.open(dest, "w") as tar:
        for arcname, data in files.items():
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return dest


# ---- what an environment leaves ------------------------------------------------------------

_SEQ = itertools.count()


def cgroup_dirs(parent: str) -> list[str]:
    """Every cgroup directory at or beneath parent (an absolute cgroup path)
    in every hierarchy."""
    out: list[str] = []
    for top in cgroup_roots():
        base = top + parent
        if os.path.isdir(base):
            out.extend(d for d, _, _ in os.walk(base))
    return out


def mounts_under(path: Path) -> list[str]:
    """The mount points of this mount namespace at or beneath path."""
    prefix = str(path)
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            out.append(point)
    return out


def processes_naming(text: str) -> list[int]:
    """The pids whose command line contains text (other than this process)."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in cmd:
            found.append(int(entry))
    return found


def _force_gone(root: Path, parent: str) -> list[str]:
    """Kill what still runs with root on its command line or in the cgroups
    beneath parent, unmount what is mounted under root, remove the cgroups:
    what had to be forced, as sentences (empty when all was clean)."""
    forced = []
    for pid in processes_naming(str(root)):
        forced.append(f"process {pid} still running: killed")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_gone(pid, 10)
    for point in sorted(mounts_under(root), key=len, reverse=True):
        forced.append(f"{point} still mounted: unmounted")
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    dirs = cgroup_dirs(parent)
    busy = []
    for d in dirs:
        with contextlib.suppress(OSError), open(d + "/cgroup.procs") as f:
            if f.read().split():
                busy.append(d)
    if busy:
        forced.append(f"processes left in cgroups (killed): {sorted(busy)}")
    left = remove_cgroups(dirs, kill=True)
    forced.extend(f"cgroup {d} cannot be removed" for d in left)
    return forced


def _run(
    argv: Sequence[str],
    env: dict[str, str],
    input: str | None,
    timeout: float,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


def run_in_pty(
    argv: Sequence[str], env: dict[str, str], input: str | None = None, timeout: float = 60
) -> tuple[int, str]:
    """argv with a new pseudo-terminal as its stdin, stdout and stderr (``ctr
    -t`` takes its console size from its stdin and fails without a
    terminal): (exit status, everything it wrote, with CR LF as the terminal
    made it).  input is typed in once it runs."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            list(argv), stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
    finally:
        os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        if input is not None:
            os.write(master, input.encode())
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                raise subprocess.TimeoutExpired(list(argv), timeout)
            ready, _, _ = select.select([master], [], [], min(left, 0.2))
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every slave end is closed
                    data = b""
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=max(deadline - time.monotonic(), 1)), b"".join(chunks).decode(
            errors="replace"
        )
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _need(*programs: str, install: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        raise Unavailable(f"needs {', '.join(missing)} ({install})")


def private_lib_run(
    argv: Sequence[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """argv in a private mount namespace with a tmpfs on /var/lib: what it
    writes there (containers/image's blob-info cache, which podman keeps in
    /var/lib/containers/cache whatever its configuration) vanishes with it."""
    script = 'mount -t tmpfs -o mode=0755 tmpfs /var/lib && exec "$@"'
    return _run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv],
        env,
        None,
        timeout,
    )


# ---- podman -----------------------------------------------------------------------------


class PodmanEnv:
    """podman, configured by files of its own under root_dir, running
    containers with the runtime at runtime_path (named runtime_name in
    containers.conf: the executable's name by default).

    - storage (overlay; vfs where overlay cannot mount) in root_dir/storage,
      run state in root_dir/run, podman's tmp dir, volumes, events (a file)
      and locks (files) under root_dir;
    - cgroup manager cgroupfs; every container and pod made by :meth:`run`
      gets ``--cgroup-parent`` :attr:`cgroup_parent`
      (``/pynsbind-podman-PID-N``) unless it names one or joins a pod;
    - network none unless a test asks; ``default_ulimits`` nofile and nproc
      at or below this process's hard limits (root here lacks
      CAP_SYS_RESOURCE, and podman would otherwise ask for nproc 4194304);
    - :data:`IMAGE_NAME` imported with ``podman import`` from
      :func:`image_rootfs`; it is also the pod infra image (``/pause``), so
      that nothing is pulled or built.

    :meth:`run` runs ``podman ARGS``; :meth:`cleanup` removes everything."""

    def __init__(
        self,
        runtime_path: str,
        root_dir: Path | str,
        *,
        runtime_name: str | None = None,
        storage_driver: str = "overlay",
    ) -> None:
        _need("podman", "conmon", install="Debian: podman conmon")
        self.runtime_path = runtime_path
        self.runtime_name = runtime_name or os.path.basename(runtime_path)
        self.root = Path(root_dir).resolve()
        self.cgroup_parent = f"/pynsbind-podman-{os.getpid()}-{next(_SEQ)}"
        self.image = IMAGE_NAME
        self.root.mkdir(parents=True, exist_ok=True)
        for d in ("tmp", "tmpfiles", "cwd"):
            (self.root / d).mkdir(exist_ok=True)
        self.conf = self.root / "containers.conf"
        self.storage_conf = self.root / "storage.conf"
        self.registries_conf = self.root / "registries.conf"
        self.policy = self.root / "policy.json"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CONTAINERS_")}
        self.env.update(
            CONTAINERS_CONF=str(self.conf),
            CONTAINERS_STORAGE_CONF=str(self.storage_conf),
            CONTAINERS_REGISTRIES_CONF=str(self.registries_conf),
            TMPDIR=str(self.root / "tmpfiles"),
        )
        self._write_config(storage_driver)
        try:
            self._import_image()
        except BaseException:
            self.cleanup()
            raise

    def _write_config(self, storage_driver: str) -> None:
        def limit(res: int, want: int) -> str:
            hard = resource.getrlimit(res)[1]
            n = want if hard == resource.RLIM_INFINITY else min(want, hard)
            return f"{n}:{n}"

        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        # conmon runs `podman container cleanup` when a container exits, with
        # conmon_env_vars as its environment: it must read these files too
        conmon_env = [
            f"PATH={path}",
            f"CONTAINERS_CONF={self.conf}",
            f"CONTAINERS_STORAGE_CONF={self.storage_conf}",
            f"CONTAINERS_REGISTRIES_CONF={self.registries_conf}",
            f"TMPDIR={self.root / 'tmpfiles'}",
        ]
        r = self.root
        ulimits = [
            f"nofile={limit(resource.RLIMIT_NOFILE, 1024)}",
            f"nproc={limit(resource.RLIMIT_NPROC, 4096)}",
        ]
        self.conf.write_text(
            f"""# written by tests/oci_runtimes.py PodmanEnv
[containers]
default_capabilities = {json.dumps(DEFAULT_CAPABILITIES)}
default_ulimits = {json.dumps(ulimits)}
netns = "none"
log_driver = "k8s-file"
cgroups = "enabled"
pids_limit = 0

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{r}/events.log"
lock_type = "file"
tmp_dir = "{r}/tmp"
volume_path = "{r}/volumes"
conmon_env_vars = {json.dumps(conmon_env)}
runtime = "{self.runtime_name}"
runtime_supports_json = {json.dumps(sorted({"runc", "crun", self.runtime_name}))}
infra_image = "{IMAGE_NAME}"
infra_command = "/pause"
stop_timeout = 10
image_copy_tmp_dir = "{r}/tmpfiles"

[engine.runtimes]
{json.dumps(self.runtime_name)} = [{json.dumps(self.runtime_path)}]

[network]
network_config_dir = "{r}/net"
"""
        )
        # static_dir is left to default to the graph root's libpod/: the
        # cleanup process that conmon starts is given --root, which moves it
        self.storage_conf.write_text(
            f"""[storage]
driver = "{storage_driver}"
graphroot = "{r}/storage"
runroot = "{r}/run"
"""
        )
        self.registries_conf.write_text("unqualified-search-registries = []\n")
        # nothing is pulled: only podman import's own transport is accepted
        accept = {"": [{"type": "insecureAcceptAnything"}]}
        policy = {"default": [{"type": "reject"}], "transports": {"tarball": accept}}
        self.policy.write_text(json.dumps(policy))

    def _import_image(self) -> None:
        tree = image_rootfs(self.root / "image-rootfs")
        tar = rootfs_tar(tree, self.root / "image.tar")
        shutil.rmtree(tree)
        argv = [
            "podman",
            "import",
            "--signature-policy",
            str(self.policy),
            "--change",
            'CMD=["/bin/sh"]',
            "--change",
            "ENV=PATH=/bin",
            str(tar),
            self.image,
        ]
        res = private_lib_run(argv, self.env)
        tar.unlink()
        if res.returncode != 0:
            raise Unavailable(f"podman import failed: {res.stderr.strip()[-500:]}")

    def argv(self, *args: str) -> list[str]:
        """``podman ARGS``, with --cgroup-parent added to run, create and pod
        create (unless given, or the container joins a pod), and
        ``--infra-command /pause`` to pod create."""
        out = list(args)
        if out and any("--cgroup-parent" in a for a in out):
            return ["podman", *out]
        if out[:1] in (["run"], ["create"]) and not any(
            a == "--pod" or a.startswith("--pod=") for a in out
        ):
            out[1:1] = ["--cgroup-parent", self.cgroup_parent]
        elif out[:2] == ["pod", "create"]:
            out[2:2] = ["--cgroup-parent", self.cgroup_parent]
            if not any(a.startswith("--infra-command") for a in out):
                # the image's CMD, not containers.conf's infra_command, would run
                out[2:2] = ["--infra-command", "/pause"]
        return ["podman", *out]

    def run(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """``podman ARGS`` (stdin from input, else /dev/null; output captured
        as text), in root_dir/cwd: conmon 2.1.6, which podman 4.3 starts in
        its own working directory, writes a file ``oom`` there when the
        container is OOM-killed."""
        return _run(self.argv(*args), self.env, input, timeout, cwd=self.root / "cwd")

    def popen(self, *args: str, **kw: Any) -> subprocess.Popen[str]:
        """``podman ARGS`` started, for a test that talks to it while it runs."""
        kw.setdefault("cwd", self.root / "cwd")
        return subprocess.Popen(self.argv(*args), env=self.env, text=True, **kw)

    def ok(self, *args: str, input: str | None = None, timeout: float = 60) -> str:
        """``podman ARGS`` that must succeed: its stdout, stripped."""
        res = self.run(*args, input=input, timeout=timeout)
        if res.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args)}: exit {res.returncode}: {res.stderr.strip()}"
            )
        return res.stdout.strip()

    def inspect(self, name: str, *, kind: str = "container") -> dict[str, Any]:
        """``podman inspect`` of one container (or pod), parsed."""
        args = ("pod", "inspect", name) if kind == "pod" else ("inspect", "--type", kind, name)
        data = json.loads(self.ok(*args))
        found: dict[str, Any] = data[0] if isinstance(data, list) else data
        return found

    def cgroup_path(self, name: str) -> str:
        """The memory cgroup path (in its hierarchy) of a running container."""
        pid = self.inspect(name)["State"]["Pid"]
        return cgroup_of(pid, "memory")

    def cleanup(self) -> list[str]:
        """Remove every pod, container and volume, then make sure nothing of
        this environment is left: processes, mounts under root_dir, cgroups
        under cgroup_parent; remove root_dir.  What had to be forced (a
        leak), as sentences: empty when podman cleaned up after itself."""
        forced = []
        if (self.root / "storage").exists():
            for args in (
                ("pod", "rm", "--all", "--force", "--time", "0"),
                ("rm", "--all", "--force", "--volumes", "--time", "0"),
                ("volume", "prune", "--force"),
            ):
                try:
                    res = self.run(*args, timeout=120)
                except subprocess.TimeoutExpired:
                    forced.append(f"podman {' '.join(args)} timed out")
                    continue
                if res.returncode != 0:
                    forced.append(f"podman {' '.join(args)}: {res.stderr.strip()}")
            left = self.run("ps", "--all", "--quiet")
            if left.stdout.strip():
                forced.append(f"containers left: {left.stdout.split()}")
            # the storage driver's own mounts (overlay keeps none between runs)
            self.run("system", "reset", "--force", timeout=120)
        forced.extend(_force_gone(self.root, self.cgroup_parent))
        shutil.rmtree(self.root, ignore_errors=True)
        return forced


def cgroup_of(pid: int, controller: str) -> str:
    """The cgroup path of pid in the v1 hierarchy of controller (or the
    cgroup2 path for controller "")."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if controller in ctrls.split(",") or (controller == "" and ctrls == ""):
            return path
    raise KeyError(f"{controller} not in /proc/{pid}/cgroup")


def cgroup_file(pid: int, controller: str, name: str) -> str:
    """A cgroup v1 file of pid's cgroup, read from the host."""
    return (
        Path(f"/sys/fs/cgroup/{controller}{cgroup_of(pid, controller)}/{name}").read_text().strip()
    )


# ---- containerd -------------------------------------------------------------------------


class ContainerdEnv:
    """A containerd daemon of its own: config, root, state, temp and its
    grpc, ttrpc and debug sockets under root_dir, no CRI plugin, in a private
    mount namespace whose /run is a tmpfs (the shims' sockets and the runc
    root, which containerd 1.6 keeps under /run/containerd, live and die
    there; the containers' rootfs mounts too).  :data:`IMAGE_NAME` is imported
    from an OCI image layout made by :func:`oci_archive` into namespace
    :attr:`namespace` (``pynsbind-containerd-PID-N``, the name of
    :attr:`cgroup_parent`, where ctr places a container it is not told a
    cgroup for).  The daemon's shims find the runtime as ``runc`` on their
    $PATH, and ``ctr run`` is also given ``--runc-binary``.

    :meth:`ctr` runs ``ctr ARGS`` against it; :meth:`run_args` builds a ``ctr
    run`` that uses the runtime (``--runc-binary``) and puts the container in
    ``cgroup_parent/ID``; :meth:`cleanup` stops the daemon and removes
    everything."""

    def __init__(self, runtime_path: str, root_dir: Path | str) -> None:
        _need("containerd", "ctr", "containerd-shim-runc-v2", install="Debian: containerd")
        self.runtime_path = runtime_path
        self.root = Path(root_dir).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.cgroup_parent = f"/pynsbind-containerd-{os.getpid()}-{next(_SEQ)}"
        # ctr puts a container without --cgroup in /NAMESPACE/ID: this one's
        # namespace is its cgroup parent's name
        self.namespace = self.cgroup_parent[1:]
        self.image = IMAGE_NAME
        self.address = str(self.root / "containerd.sock")
        self.config = self.root / "config.toml"
        self.log = self.root / "containerd.log"
        self.env = dict(os.environ)
        self.daemon: subprocess.Popen[bytes] | None = None
        self._write_config()
        try:
            self._start()
            self._import_image()
        except BaseException:
            self.cleanup()
            raise

    def _write_config(self) -> None:
        r = self.root
        disabled = [
            "io.containerd.grpc.v1.cri",
            "io.containerd.internal.v1.opt",
            "io.containerd.internal.v1.tracing",
            "io.containerd.tracing.processor.v1.otlp",
            "io.containerd.snapshotter.v1.aufs",
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.snapshotter.v1.zfs",
        ]
        self.config.write_text(
            f"""# written by tests/oci_runtimes.py ContainerdEnv
version = 2
root = "{r}/root"
state = "{r}/state"
temp = "{r}/tmp"
disabled_plugins = {json.dumps(disabled)}

[grpc]
  address = "{self.address}"

[ttrpc]
  address = "{self.address}.ttrpc"

[debug]
  address = "{r}/debug.sock"
  level = "info"

[metrics]
  address = ""

[cgroup]
  path = ""
"""
        )
        (r / "tmp").mkdir(exist_ok=True)

    def _start(self) -> None:
        # the shim runs `runc` from its $PATH unless told otherwise (ctr run
        # --runc-binary; ctr containers create cannot say): the daemon's $PATH
        # starts with a directory whose runc is the runtime
        bindir = self.root / "bin"
        bindir.mkdir(exist_ok=True)
        (bindir / "runc").symlink_to(self.runtime_path)
        env = dict(
            self.env, PATH=f"{bindir}:{self.env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        )
        script = 'mount -t tmpfs -o mode=0755 tmpfs /run && exec containerd --config "$0"'
        with self.log.open("ab") as log:
            self.daemon = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    script,
                    str(self.config),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        end = time.monotonic() + 30
        while True:
            res = _run(["ctr", "--address", self.address, "version"], self.env, None, 30)
            if res.returncode == 0:
                return
            if self.daemon.poll() is not None or time.monotonic() > end:
                tail = self.log.read_text(errors="replace")[-1500:]
                raise Unavailable(f"containerd did not start: {tail}")
            time.sleep(0.05)

    def _import_image(self) -> None:
        tree = image_rootfs(self.root / "image-rootfs")
        archive = oci_archive(tree, self.root / "image-oci.tar")
        shutil.rmtree(tree)
        self.ok("images", "import", str(archive), timeout=120)
        archive.unlink()

    def argv(self, *args: str) -> list[str]:
        """``ctr --address SOCK --namespace NS ARGS``, with ``--fifo-dir``
        under root_dir added to run, task start and task exec (ctr makes its
        IO fifos in /run/containerd/fifo otherwise)."""
        out = list(args)
        if out[:1] == ["run"]:
            out[1:1] = ["--fifo-dir", str(self.root / "fifo")]
        elif out[:1] in (["task"], ["tasks"], ["t"]) and out[1:2] in (["start"], ["exec"]):
            out[2:2] = ["--fifo-dir", str(self.root / "fifo")]
        return ["ctr", "--address", self.address, "--namespace", self.namespace, *out]

    def ctr(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """``ctr ARGS`` against this daemon (see :meth:`argv`)."""
        return _run(self.argv(*args), self.env, input, timeout)

    def popen(self, *args: str, **kw: Any) -> subprocess.Popen[str]:
        """``ctr ARGS`` started, for a test that talks to it while it runs."""
        return subprocess.Popen(self.argv(*args), env=self.env, text=True, **kw)

    def ok(self, *args: str, input: str | None = None, timeout: float = 60) -> str:
        """``ctr ARGS`` that must succeed: its stdout, stripped."""
        res = self.ctr(*args, input=input, timeout=timeout)
        if res.returncode != 0:
            raise AssertionError(
                f"ctr {' '.join(args)}: exit {res.returncode}: {res.stderr.strip()}"
            )
        return res.stdout.strip()

    def run_args(self, cid: str, *cmd: str, opts: Sequence[str] = ()) -> list[str]:
        """The arguments of ``ctr run`` for container cid running cmd in the
        image, with this environment's runtime and cgroup."""
        return [
            "run",
            "--runc-binary",
            self.runtime_path,
            "--cgroup",
            f"{self.cgroup_parent}/{cid}",
            *opts,
            self.image,
            cid,
            *cmd,
        ]

    def task_pid(self, cid: str) -> int:
        """The host pid of a container's task (``ctr task ls``)."""
        for line in self.ok("task", "ls").splitlines()[1:]:
            fields = line.split()
            if fields[0] == cid:
                return int(fields[1])
        raise KeyError(cid)

    def task_status(self, cid: str) -> str | None:
        for line in self.ok("task", "ls").splitlines()[1:]:
            fields = line.split()
            if fields[0] == cid:
                return fields[2]
        return None

    def stop(self) -> list[str]:
        """Kill and delete every task and container, remove the image, stop
        the daemon: what went wrong, as sentences."""
        forced: list[str] = []
        if self.daemon is not None and self.daemon.poll() is None:
            try:
                for line in self.ok("task", "ls").splitlines()[1:]:
                    cid = line.split()[0]
                    self.ctr("task", "kill", "--signal", "SIGKILL", cid)
                    self.ctr("task", "delete", "--force", cid)
                for cid in self.ok("containers", "ls", "--quiet").split():
                    res = self.ctr("containers", "rm", cid)
                    if res.returncode != 0:
                        forced.append(f"ctr containers rm {cid}: {res.stderr.strip()}")
                self.ctr("images", "rm", "--sync", self.image, timeout=120)
            except (AssertionError, subprocess.TimeoutExpired) as exc:
                forced.append(f"containerd cleanup: {exc}")
            self.daemon.terminate()
            try:
                self.daemon.wait(30)
            except subprocess.TimeoutExpired:
                forced.append("containerd ignored SIGTERM: killed")
                self.daemon.kill()
                self.daemon.wait()
        return forced

    def cleanup(self) -> list[str]:
        """:meth:`stop`, then make sure nothing is left (processes naming
        root_dir, the shims included; cgroups under cgroup_parent) and remove
        root_dir.  What had to be forced, as sentences: empty when containerd
        and the runtime cleaned up after themselves."""
        forced = self.stop()
        # the containers' mounts lived in the daemon's mount namespace, gone
        # with it and its shims; none of them was in this one
        forced.extend(_force_gone(self.root, self.cgroup_parent))
        shutil.rmtree(self.root, ignore_errors=True)
        return forced
