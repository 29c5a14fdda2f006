"""pynsbind.sandbox(): run a command in a sandbox on the machine you have, with
the options of ``docker run``; ``pynsbind-run sandbox`` is its command line.

    import pynsbind
    res = pynsbind.sandbox(["python3", "job.py"], volumes=["./data:/data:ro"],
                           memory="256m", cpus=0.5, pids_limit=64, timeout=60,
                           capture_output=True)

The sandbox, unless told otherwise:

- its root is the host's own ``/``, read-only, with a fresh ``/proc``, a minimal
  ``/dev``, and private tmpfs ``/tmp``, ``/run`` and ``/var/tmp``; ``writable``
  puts an overlay on top whose changes vanish at exit (``keep_changes=DIR``
  keeps them), ``rootfs=DIR`` uses a directory instead; writing the root in
  place takes ``unsafe_writable_root``;
- every namespace (user, pid, mount, uts, ipc, net, cgroup); no network but
  loopback (``network="host"`` shares the host's);
- as a plain user it is rootless; run by root, its processes are the host's
  unprivileged ``nobody`` (65534), so the host's files and sockets see nobody;
  a volume is then an idmapped mount, which its root reads and writes as the
  caller (podman's ``:idmap``);
- the default seccomp profile, no_new_privs, docker's default capabilities
  (all in the sandbox's own user namespace), an init at PID 1.

:func:`sandbox` returns what :func:`pynsbind.run` returns (a
:class:`SandboxResult`, a ``CompletedContainer`` with a ``status``: exit or
signal, OOM kill, wall and CPU time, peak memory).  :func:`prepare` checks the
options and builds the :class:`~pynsbind.Spec` without running it.
"""

from __future__ import annotations

import os
import signal as _signal
import sys
import time
import types

from pynsbind._record import record, replace
from pynsbind.errors import SpawnError, SpecError
from pynsbind.flags import Capability, Namespace
from pynsbind.process import PIPE, CompletedContainer, Process, spawn
from pynsbind.spec import (
    DEFAULT_CAPABILITIES,
    DEFAULT_PATH,
    Mount,
    Overlay,
    Spec,
    default_namespaces,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any

    from pynsbind.cgroups import Cgroup
    from pynsbind.resources import Resources
    from pynsbind.seccomp import SeccompProfile

__all__ = [
    "NOBODY",
    "Prepared",
    "SandboxResult",
    "SandboxStatus",
    "parse_env_file",
    "parse_mount",
    "parse_tmpfs",
    "parse_ulimit",
    "parse_volume",
    "prepare",
    "sandbox",
    "terminal_size",
]

#: the host id a sandbox started by root runs as (nobody, nogroup)
NOBODY = 65534

#: the host's directories the sandbox gets private tmpfs instead of
PRIVATE_DIRS = ("/tmp", "/run", "/var/tmp")
#: where the host's own mounts are not kept under an overlay root
_REPLACED = ("/proc", "/sys", "/dev", *PRIVATE_DIRS)


# ---- the result ----------------------------------------------------------------------


@record(frozen=True)
class SandboxStatus:
    """How a sandbox ended, and what it used.

    ``exit_code`` is the command's exit status (None when a signal ended it);
    ``signal`` the number of that signal; ``returncode`` the status a shell would
    give (the exit code, or 128 + the signal; 124 after a timeout).
    ``oom_killed``: the kernel's OOM killer killed a process of the sandbox
    (None where nothing can tell: no memory cgroup).  Times in seconds;
    ``peak_memory`` in bytes (the memory cgroup's peak, or else the largest
    resident set of its processes)."""

    exit_code: int | None
    signal: int | None
    returncode: int
    timed_out: bool
    oom_killed: bool | None
    wall_time: float
    user_time: float | None
    system_time: float | None
    cpu_time: float | None
    peak_memory: int | None

    def to_json(self) -> dict[str, Any]:
        """A dict for json.dumps (signal_name added)."""
        name = None
        if self.signal is not None:
            try:
                name = _signal.Signals(self.signal).name
            except ValueError:
                name = None
        return {
            "exit_code": self.exit_code,
            "signal": self.signal,
            "signal_name": name,
            "returncode": self.returncode,
            "timed_out": self.timed_out,
            "oom_killed": self.oom_killed,
            "wall_time": round(self.wall_time, 6),
            "user_time": None if self.user_time is None else round(self.user_time, 6),
            "system_time": None if self.system_time is None else round(self.system_time, 6),
            "cpu_time": None if self.cpu_time is None else round(self.cpu_time, 6),
            "peak_memory": self.peak_memory,
        }


@record(frozen=True)
class SandboxResult(CompletedContainer):
    """What :func:`sandbox` returns: a ``CompletedContainer`` (args, returncode,
    stdout, stderr; ``returncode`` is ``-N`` for a signal N, as ``run`` gives it)
    with the sandbox's :class:`SandboxStatus`."""

    status: SandboxStatus | None = None


# ---- docker's option syntax ---------------------------------------------------------


def _split_opts(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _bool_text(value: str, where: str) -> bool:
    low = value.strip().lower()
    if low in ("1", "true", "yes", ""):
        return True
    if low in ("0", "false", "no"):
        return False
    raise SpecError(where, f"expected true or false, not {value!r}")


def _host_source(path: str, where: str) -> str:
    """An existing host path, absolute and without symlinks (resolved now: the
    engine refuses a bind source that holds one)."""
    if not path:
        raise SpecError(where, "the source is empty")
    full = os.path.realpath(os.path.abspath(os.path.expanduser(path)))
    if not os.path.exists(full):
        raise SpecError(where, f"the source {path} does not exist")
    return full


def _container_path(path: str, where: str) -> str:
    if not path.startswith("/"):
        raise SpecError(where, f"the target must be an absolute path in the sandbox, not {path!r}")
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise SpecError(where, f"the target must not contain '..': {path!r}")
    return "/" + "/".join(parts)


def parse_volume(text: str, where: str = "-v") -> Mount:
    """docker's ``-v SRC:DST[:OPTS]`` (OPTS: ``ro``, ``rw``, comma-separated;
    SELinux's ``z``/``Z`` are accepted and mean nothing here): a bind of the host
    path SRC (absolute, or relative to the current directory) at DST."""
    parts = text.split(":")
    if len(parts) < 2 or len(parts) > 3:
        raise SpecError(
            where,
            f"expected SRC:DST[:ro|rw], not {text!r} (docker's anonymous volumes are not kept)",
        )
    src, dst = parts[0], parts[1]
    if src and "/" not in src and not src.startswith(".") and not src.startswith("~"):
        raise SpecError(
            where, f"{src!r} is a named volume (docker's); give a host path (/abs or ./rel)"
        )
    readonly = False
    for opt in _split_opts(parts[2]) if len(parts) == 3 else []:
        if opt in ("ro", "readonly"):
            readonly = True
        elif opt == "rw":
            readonly = False
        elif opt in ("z", "Z", "rbind", "bind", "rprivate", "private"):
            continue
        else:
            raise SpecError(where, f"unknown volume option {opt!r} in {text!r} (ro or rw)")
    where_src = f"{where} {text}"
    return Mount.bind(
        _host_source(src, where_src),
        _container_path(dst, where_src),
        readonly=readonly,
        nosuid=True,
    )


def parse_tmpfs(text: str, where: str = "--tmpfs") -> Mount:
    """docker's ``--tmpfs DST[:OPTS]``: OPTS as mount(8) takes them for tmpfs
    (``size=64m``, ``mode=1777``, ``ro``, ``exec``/``noexec``, ``suid``/``nosuid``;
    docker's defaults: noexec, nosuid, nodev)."""
    dst, _, rest = text.partition(":")
    target = _container_path(dst, f"{where} {text}")
    size: str | None = None
    mode: int | None = None
    readonly, noexec, nosuid = False, True, True
    for opt in _split_opts(rest):
        key, eq, value = opt.partition("=")
        if key == "size" and eq:
            size = value
        elif key == "mode" and eq:
            try:
                mode = int(value, 8)
            except ValueError:
                raise SpecError(where, f"mode={value!r} is not an octal mode") from None
        elif key in ("ro", "rw"):
            readonly = key == "ro"
        elif key in ("exec", "noexec"):
            noexec = key == "noexec"
        elif key in ("suid", "nosuid"):
            nosuid = key == "nosuid"
        elif key in ("nodev", "dev"):
            continue  # every filesystem of a sandbox is nodev
        else:
            raise SpecError(
                where, f"unknown tmpfs option {opt!r} (size, mode, ro, rw, exec, noexec, suid)"
            )
    return Mount.tmpfs(
        target, size=size, mode=mode, readonly=readonly, noexec=noexec, nosuid=nosuid
    )


def parse_mount(text: str, where: str = "--mount") -> Mount:
    """docker's ``--mount type=bind|tmpfs,...``: ``source``/``src``,
    ``destination``/``dst``/``target``, ``readonly``/``ro``, ``bind-propagation``,
    ``bind-recursive`` (``enabled``/``disabled``), ``tmpfs-size``, ``tmpfs-mode``."""
    fields: dict[str, str] = {}
    for item in _split_opts(text):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if key in ("readonly", "ro") and not eq:
            value = "true"
        fields[key] = value
    kind = fields.pop("type", "volume")
    target = (
        fields.pop("destination", None) or fields.pop("dst", None) or fields.pop("target", None)
    )
    for alias in ("dst", "target", "destination"):
        fields.pop(alias, None)
    if not target:
        raise SpecError(where, f"{text!r} has no destination (dst=...)")
    dst = _container_path(target, f"{where} {text}")
    readonly = _bool_text(fields.pop("readonly", fields.pop("ro", "false")), where)
    if kind == "bind":
        src = fields.pop("source", None) or fields.pop("src", None)
        if not src:
            raise SpecError(where, f"{text!r} has no source (src=...)")
        propagation = fields.pop("bind-propagation", None)
        if propagation is not None:
            propagation = propagation.removeprefix("r")
        recursive = fields.pop("bind-recursive", "enabled") != "disabled"
        if fields:
            raise SpecError(where, f"unknown bind option {sorted(fields)[0]!r} in {text!r}")
        return Mount.bind(
            _host_source(src, f"{where} {text}"),
            dst,
            readonly=readonly,
            nosuid=True,
            recursive=recursive,
            propagation=propagation,
        )
    if kind == "tmpfs":
        opts = []
        if "tmpfs-size" in fields:
            opts.append("size=" + fields.pop("tmpfs-size"))
        if "tmpfs-mode" in fields:
            opts.append("mode=" + fields.pop("tmpfs-mode"))
        if readonly:
            opts.append("ro")
        if fields:
            raise SpecError(where, f"unknown tmpfs option {sorted(fields)[0]!r} in {text!r}")
        return parse_tmpfs(dst + (":" + ",".join(opts) if opts else ""), where)
    raise SpecError(where, f"type={kind}: this sandbox mounts type=bind and type=tmpfs")


def parse_ulimit(text: str, where: str = "--ulimit") -> tuple[str, tuple[int, int]]:
    """docker's ``--ulimit NAME=SOFT[:HARD]`` (``-1`` or ``unlimited``: none)."""
    name, eq, values = text.partition("=")
    if not eq or not name:
        raise SpecError(where, f"expected NAME=SOFT[:HARD], not {text!r}")
    soft_t, _, hard_t = values.partition(":")

    def num(v: str) -> int:
        v = v.strip()
        if v in ("-1", "unlimited", "infinity"):
            return -1
        try:
            n = int(v)
        except ValueError:
            raise SpecError(where, f"{text!r}: {v!r} is not a number") from None
        if n < 0:
            raise SpecError(where, f"{text!r}: {n} is negative")
        return n

    soft = num(soft_t)
    return name.strip().lower(), (soft, num(hard_t) if hard_t else soft)


def parse_env_file(path: str, environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """docker's ``--env-file``: ``NAME=VALUE`` lines (``NAME`` alone: the
    caller's value, left out when it has none); blank lines and ``#`` comments
    skipped."""
    environ = os.environ if environ is None else environ
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise SpecError("--env-file", f"{path}: {(exc.strerror or str(exc)).lower()}") from None
    out = []
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, eq, value = line.lstrip().partition("=")
        if not key or " " in key or "\t" in key:
            raise SpecError("--env-file", f"{path}:{n}: {line!r} is not NAME=VALUE")
        if eq:
            out.append((key, value))
        elif key in environ:
            out.append((key, environ[key]))
    return out


def _env_items(env: Mapping[str, str] | Iterable[str] | None) -> list[tuple[str, str]]:
    """``{"K": "V"}``, or docker's ``-e`` words: ``K=V``, ``K`` (the caller's value)."""
    if env is None:
        return []
    if hasattr(env, "items"):
        return [(str(k), str(v)) for k, v in env.items()]
    out = []
    for item in env:
        key, eq, value = str(item).partition("=")
        if not key:
            raise SpecError("--env", f"{item!r} has no name")
        if eq:
            out.append((key, value))
        elif key in os.environ:
            out.append((key, os.environ[key]))
    return out


# ---- pieces of the spec ---------------------------------------------------------------


def _lookup(root: str, user: str) -> tuple[int, int | None]:
    """A user name or number, and its primary group, from the sandbox root's
    /etc/passwd (docker's rule: a number not listed has group 0)."""
    found: tuple[int, int] | None = None
    try:
        with open(os.path.join(root, "etc/passwd"), encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                named = len(parts) >= 4 and user in (parts[0], parts[2])
                if named and parts[2].isdigit() and parts[3].isdigit():
                    found = (int(parts[2]), int(parts[3]))
                    break
    except OSError:
        pass
    if found is not None:
        return found
    if user.isdigit():
        return int(user), None
    raise SpecError("--user", f"no user {user!r} in the sandbox's /etc/passwd")


def _group(root: str, group: str) -> int:
    if group.isdigit():
        return int(group)
    try:
        with open(os.path.join(root, "etc/group"), encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 3 and parts[0] == group and parts[2].isdigit():
                    return int(parts[2])
    except OSError:
        pass
    raise SpecError("--user", f"no group {group!r} in the sandbox's /etc/group")


def _user(root: str, user: int | str | tuple[int, int] | None) -> tuple[int, int]:
    if user is None:
        return 0, 0
    if isinstance(user, tuple):
        return int(user[0]), int(user[1])
    if isinstance(user, int) and not isinstance(user, bool):
        return user, _lookup(root, str(user))[1] or 0
    name, _, group = str(user).partition(":")
    if not name:
        raise SpecError("--user", f"expected USER[:GROUP], not {user!r}")
    uid, gid = _lookup(root, name)
    if group:
        gid = _group(root, group)
    return uid, gid or 0


def _capabilities(
    add: Iterable[str | Capability], drop: Iterable[str | Capability]
) -> frozenset[Capability] | None:
    """docker's rules: the default set, plus ``add``, minus ``drop``; ``ALL`` in
    ``add`` starts from every capability, in ``drop`` from none.  None: the
    default set untouched."""

    def names(items: Iterable[str | Capability], where: str) -> tuple[set[Capability], bool]:
        out: set[Capability] = set()
        every = False
        for item in items:
            if isinstance(item, Capability):
                out.add(item)
                continue
            name = str(item).upper().removeprefix("CAP_")
            if name == "ALL":
                every = True
                continue
            if name not in Capability.__members__:
                from pynsbind._args import closest

                near = closest(name, list(Capability.__members__))
                hint = f" (did you mean {near}?)" if near else ""
                raise SpecError(where, f"unknown capability {item!r}{hint}")
            out.add(Capability[name])
        return out, every

    added, add_all = names(add, "--cap-add")
    dropped, drop_all = names(drop, "--cap-drop")
    if not (added or dropped or add_all or drop_all):
        return None
    if add_all:
        return frozenset(set(Capability) - dropped)
    if drop_all:
        return frozenset(added)
    return frozenset((set(DEFAULT_CAPABILITIES) | added) - dropped)


def _seccomp(
    value: str | SeccompProfile | None, caps: frozenset[Capability]
) -> str | SeccompProfile:
    if value is None or value == "default":
        return "default"
    if value == "unconfined":
        return "unconfined"
    if not isinstance(value, str):
        return value
    import json

    from pynsbind.seccomp import SeccompProfile

    try:
        with open(value, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise SpecError(
            "--security-opt seccomp", f"{value}: {(exc.strerror or '').lower()}"
        ) from None
    except ValueError as exc:
        raise SpecError("--security-opt seccomp", f"{value}: not JSON: {exc}") from None
    if isinstance(data, dict) and ("archMap" in data or _has_conditions(data)):
        data = _docker_profile(data, caps)
    return SeccompProfile.from_oci(data, where=f"seccomp profile {value}")


def _has_conditions(data: Mapping[str, Any]) -> bool:
    return any(
        isinstance(s, dict) and ("includes" in s or "excludes" in s)
        for s in data.get("syscalls") or ()
    )


def _docker_profile(data: Mapping[str, Any], caps: frozenset[Capability]) -> dict[str, Any]:
    """A profile in docker's format (archMap, rules with includes/excludes by
    capability, architecture and kernel) as OCI's, for this sandbox."""
    uname = os.uname()
    native = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}.get(uname.machine)
    cap_names = {f"CAP_{c.name}" for c in caps}
    try:
        kernel = tuple(int(x) for x in uname.release.split("-")[0].split(".")[:2])
    except ValueError:
        kernel = (0, 0)
    out = {k: v for k, v in data.items() if k not in ("archMap", "syscalls")}
    for arch in data.get("archMap") or ():
        if isinstance(arch, dict) and arch.get("architecture") == native:
            out["architectures"] = [native, *(arch.get("subArchitectures") or [])]
    rules = []
    for rule in data.get("syscalls") or ():
        if not isinstance(rule, dict):
            rules.append(rule)
            continue
        inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
        if inc.get("caps") and not set(inc["caps"]) <= cap_names:
            continue
        if inc.get("arches") and native not in inc["arches"] and uname.machine not in inc["arches"]:
            continue
        if inc.get("minKernel"):
            try:
                want = tuple(int(x) for x in str(inc["minKernel"]).split(".")[:2])
            except ValueError:
                want = (0, 0)
            if kernel < want:
                continue
        if exc.get("caps") and set(exc["caps"]) & cap_names:
            continue
        if exc.get("arches") and (native in exc["arches"] or uname.machine in exc["arches"]):
            continue
        names = rule.get("names") or ([rule["name"]] if "name" in rule else [])
        rules.append(
            {k: v for k, v in rule.items() if k not in ("includes", "excludes", "name", "comment")}
            | {"names": names}
        )
    out["syscalls"] = rules
    return out


def _resources(
    memory: int | str | None,
    memory_swap: int | str | None,
    cpus: float | str | None,
    pids_limit: int | str | None,
) -> Resources | None:
    if memory is None and memory_swap is None and cpus is None and pids_limit is None:
        return None
    from pynsbind.resources import Resources, parse_size

    fields: dict[str, Any] = {}

    def size(value: int | str, where: str) -> int | str:
        try:
            return parse_size(value, where, minimum=1)
        except SpecError as exc:
            raise SpecError(where, str(exc).split(": ", 1)[-1]) from None

    if memory is not None:
        fields["memory_max"] = size(memory, "--memory")
    if memory_swap is not None:
        if memory is None:
            raise SpecError("--memory-swap", "needs --memory (the swap limit is memory plus swap)")
        if str(memory_swap).strip() in ("-1", "max"):
            fields["memory_swap_max"] = "max"
        else:
            total = size(memory_swap, "--memory-swap")
            mem = fields["memory_max"]
            assert isinstance(total, int)
            assert isinstance(mem, int)
            if total < mem:
                raise SpecError(
                    "--memory-swap", "is memory plus swap: it must be at least --memory"
                )
            fields["memory_swap_max"] = total - mem
    if cpus is not None:
        try:
            n = float(cpus)
        except ValueError:
            raise SpecError("--cpus", f"{cpus!r} is not a number") from None
        have = os.cpu_count() or 1
        if not 0.01 <= n <= have:
            raise SpecError("--cpus", f"{cpus} is out of range (0.01 to {have}, this host's CPUs)")
        fields["cpu_quota"] = max(1000, round(n * 100_000))
        fields["cpu_period"] = 100_000
    if pids_limit is not None:
        try:
            p = int(pids_limit)
        except ValueError:
            raise SpecError("--pids-limit", f"{pids_limit!r} is not a number") from None
        fields["pids_max"] = "max" if p <= 0 else p
    return Resources(**fields)


def _others_may_enter(path: str) -> bool:
    """Whether a user with no claim on it (nobody) can reach ``path``: every
    directory on the way searchable by others."""
    parts = [p for p in path.split("/") if p]
    for i in range(len(parts) + 1):
        d = "/" + "/".join(parts[:i])
        try:
            if not os.stat(d).st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _host_submounts() -> list[str]:
    """The host's mount points below / that an overlay root does not hold (an
    overlay layer is one filesystem): the top ones, outside what the sandbox
    replaces."""
    from pynsbind._mountinfo import mounts

    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            found = mounts(f.read())
    except OSError:
        return []
    points = {
        point
        for _, point, _, _ in found
        if point != "/" and not any(_under(point, r) for r in _REPLACED)
    }
    tops: list[str] = []
    for p in sorted(points, key=len):
        if not any(_under(p, t) for t in tops):
            tops.append(p)
    return tops


# ---- the sandbox ----------------------------------------------------------------------


class Prepared:
    """A checked sandbox, ready to run: its :attr:`spec`, and the limits its
    cgroup gets (``resources``; None: no cgroup of its own)."""

    def __init__(
        self, spec: Spec, resources: Resources | None, *, stats: bool, limit_names: list[str]
    ) -> None:
        self.spec = spec
        self.resources = resources
        self.stats = stats
        self._limit_names = limit_names

    def __repr__(self) -> str:
        return f"<pynsbind.sandbox.Prepared args={list(self.spec.normalized.args)!r}>"

    def _cgroup(self) -> Cgroup | None:
        """The sandbox's own cgroup, with its limits and the device rules: made
        when it has limits, or when its status is asked for (where this caller
        can make cgroups at all)."""
        if self.resources is None and not self.stats:
            return None
        from pynsbind.cgroups import DEFAULT_DEVICE_RULES, Cgroup, Resources, host, rules_for_nodes

        h = host()
        if h.problem is not None or not h.hierarchies:
            if self.resources is None:
                return None  # the status does without: rusage
            if h.rootless:
                why = (
                    f"its cgroups ({h.mode} layout) are not delegated to uid {os.geteuid()}; "
                    "run as root, or in a delegated cgroup v2 subtree "
                    "(systemd-run --user --scope -p Delegate=yes)"
                )
            else:
                why = (h.problem or "no cgroup hierarchy is mounted").split("; ")[0]
            raise SpecError(self._limit_names[0], f"this host cannot enforce it: {why}")
        nodes = rules_for_nodes(
            (d.type, d.major, d.minor) for d in self.spec.normalized.devices if d.type != "p"
        )
        res = self.resources or Resources()
        if not h.rootless:
            res = replace(res, devices=DEFAULT_DEVICE_RULES + nodes)
        try:
            return Cgroup.create(None, res, host=h)
        except SpecError as exc:
            raise SpecError(
                self._limit_names[0] if self._limit_names else "cgroup", _tail(exc)
            ) from None
        except OSError as exc:
            if self.resources is None:
                return None
            raise SpecError(
                self._limit_names[0],
                f"this host cannot enforce it here: {(exc.strerror or str(exc)).lower()}",
            ) from None

    def run(
        self,
        *,
        stdin: Any = None,
        stdout: Any = None,
        stderr: Any = None,
        input: bytes | str | None = None,
        capture_output: bool = False,
        text: bool = False,
        check: bool = False,
        timeout: float | None = None,
        on_start: Callable[[Process], None] | None = None,
    ) -> SandboxResult:
        """Run it to completion (stdio as :func:`pynsbind.run` takes it).  On
        ``timeout`` the whole sandbox is killed and ``status.timed_out`` set
        (no exception); ``on_start(process)`` is called once it runs.

        A sandbox with a terminal (``tty=True``) relays it: what comes from the
        fd ``stdin`` (None: nothing) goes to the terminal, and what the
        sandbox writes there goes to the fd ``stdout`` (None: 1)."""
        import resource

        terminal = self.spec.normalized.terminal
        if terminal and (input is not None or capture_output or stderr is not None):
            raise ValueError("a sandbox with a terminal relays it between two fds: stdin, stdout")
        if input is not None:
            if stdin is not None:
                raise ValueError("stdin and input cannot both be given")
            stdin = PIPE
            if isinstance(input, str):
                input = input.encode()
        if capture_output:
            if stdout is not None or stderr is not None:
                raise ValueError("stdout and stderr cannot be given with capture_output")
            stdout = stderr = PIPE
        cg = self._cgroup()
        spec = self.spec if cg is None else self.spec.replace(cgroup=cg)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        timed_out = False
        out: bytes | None = None
        err: bytes | None = None
        try:
            if terminal:
                proc = spawn(spec)
            else:
                proc = spawn(spec, stdin=stdin, stdout=stdout, stderr=stderr)
            with proc:
                if on_start is not None:
                    on_start(proc)
                try:
                    if terminal:
                        _relay(proc, stdin, 1 if stdout is None else stdout, timeout)
                    elif proc.stdin is None and proc.stdout is None and proc.stderr is None:
                        proc.wait(timeout)
                    else:
                        out, err = proc.communicate(input, timeout)
                except Exception as exc:
                    import subprocess  # (not free to import: only now)

                    if not isinstance(exc, subprocess.TimeoutExpired):
                        raise
                    timed_out = True
                    proc.kill()
                    if cg is not None:
                        cg.kill()
                    proc.wait()
                    if proc.stdout is not None or proc.stderr is not None:
                        out = getattr(exc, "output", None)
                        err = getattr(exc, "stderr", None)
            wall = time.monotonic() - start
            rc = proc.returncode
            assert rc is not None
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            status = self._status(rc, timed_out, wall, cg, before, after)
        finally:
            if cg is not None:
                try:
                    cg.kill()
                    cg.delete()
                except OSError:
                    pass
        res_out: bytes | str | None = out
        res_err: bytes | str | None = err
        if text:
            res_out = None if out is None else out.decode()
            res_err = None if err is None else err.decode()
        result = SandboxResult(spec.normalized.args, rc, res_out, res_err, status=status)
        if check:
            result.check_returncode()
        return result

    def _status(
        self,
        rc: int,
        timed_out: bool,
        wall: float,
        cg: Cgroup | None,
        before: Any,
        after: Any,
    ) -> SandboxStatus:
        user = after.ru_utime - before.ru_utime
        system = after.ru_stime - before.ru_stime
        cpu: float | None = user + system
        # without a memory cgroup nothing tells the sandbox's peak: the rusage of
        # the process reaped here counts the caller's memory it shared until exec
        peak: int | None = None
        oom: bool | None = None
        if cg is not None:
            try:
                stats = cg.stats()
            except OSError:
                stats = None
            if stats is not None:
                if stats.cpu.usage_usec is not None:
                    cpu = stats.cpu.usage_usec / 1e6
                if stats.cpu.user_usec is not None:
                    user = stats.cpu.user_usec / 1e6
                if stats.cpu.system_usec is not None:
                    system = stats.cpu.system_usec / 1e6
                if stats.memory.peak is not None:
                    peak = stats.memory.peak
                if stats.memory.oom_kill is not None:
                    oom = stats.memory.oom_kill > 0
        code = None if rc < 0 else rc
        sig = -rc if rc < 0 else None
        shell = 124 if timed_out else (128 - rc if rc < 0 else rc)
        return SandboxStatus(
            exit_code=code,
            signal=sig,
            returncode=shell,
            timed_out=timed_out,
            oom_killed=oom,
            wall_time=wall,
            user_time=user,
            system_time=system,
            cpu_time=cpu,
            peak_memory=peak,
        )


def _relay(proc: Process, in_fd: int | None, out_fd: int, timeout: float | None) -> None:
    """Copy in_fd to the sandbox's terminal and the terminal to out_fd until the
    sandbox has exited and the terminal is drained (its read says EIO); then
    reap it.  subprocess.TimeoutExpired after ``timeout`` seconds."""
    import select

    assert proc.terminal is not None
    master = proc.terminal.fileno()
    os.set_blocking(master, False)
    deadline = None if timeout is None else time.monotonic() + timeout
    to_term = b""
    exited = False
    while True:
        rlist = [master]
        if in_fd is not None and not to_term:
            rlist.append(in_fd)
        if not exited and proc.pidfd >= 0:
            rlist.append(proc.pidfd)
        wlist = [master] if to_term else []
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if exited:
            left = 0.05 if left is None else min(left, 0.05)
        try:
            readable, writable, _ = select.select(rlist, wlist, [], left)
        except InterruptedError:  # (PEP 475 retries; a signal handler may have run)
            continue
        if deadline is not None and time.monotonic() >= deadline and not exited:
            import subprocess

            raise subprocess.TimeoutExpired(list(proc.args), timeout or 0.0)
        if proc.pidfd in readable or (proc.pidfd < 0 and proc.poll() is not None):
            exited = True
        if master in readable:
            try:
                data = os.read(master, 65536)
            except BlockingIOError:
                data = b""
            except OSError:  # EIO: every end of the slave is closed
                break
            if not data and exited:
                break
            view = memoryview(data)
            while view:
                view = view[os.write(out_fd, view) :]
        elif exited and not readable:
            break  # nothing more came: drained
        if in_fd is not None and in_fd in readable:
            chunk = os.read(in_fd, 65536)
            if chunk:
                to_term += chunk
            else:
                in_fd = None  # the caller's input ended: the terminal's end-of-file
                to_term += b"\x04"
        if master in writable and to_term:
            try:
                to_term = to_term[os.write(master, to_term) :]
            except BlockingIOError:
                pass
    proc.wait()


def _tail(exc: SpecError) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith(exc.field + ": ") else text


def prepare(
    args: Sequence[str],
    *,
    rootfs: str | os.PathLike[str] | None = None,
    writable: bool = False,
    keep_changes: str | os.PathLike[str] | None = None,
    unsafe_writable_root: bool = False,
    read_only: bool = False,
    volumes: Sequence[str | Mount] = (),
    mounts: Sequence[str | Mount] = (),
    tmpfs: Sequence[str | Mount] = (),
    workdir: str | None = None,
    env: Mapping[str, str] | Sequence[str] | None = None,
    env_files: Sequence[str] = (),
    user: int | str | tuple[int, int] | None = None,
    hostname: str = "sandbox",
    init: bool = True,
    network: str = "none",
    memory: int | str | None = None,
    memory_swap: int | str | None = None,
    cpus: float | str | None = None,
    pids_limit: int | str | None = None,
    ulimits: Mapping[str, int | tuple[int, int]] | Sequence[str] = (),
    cap_add: Sequence[str | Capability] = (),
    cap_drop: Sequence[str | Capability] = (),
    seccomp: str | SeccompProfile | None = "default",
    no_new_privileges: bool = True,
    tty: bool = False,
    status: bool = False,
) -> Prepared:
    """Check the options and build the sandbox's Spec (nothing runs).  The
    options are :func:`sandbox`'s; ``tty``: the sandbox's stdio is a terminal
    of its own (its window the size of the caller's stdout's, when that is a
    terminal), which :meth:`Prepared.run` relays; ``status``: make a cgroup for
    the sandbox's statistics even without limits (where this caller can)."""
    argv = list(args)
    if not argv:
        raise SpecError("args", "give the command to run")
    euid = os.geteuid()
    if rootfs is not None:
        root = os.path.realpath(os.fspath(rootfs))
        if not os.path.isdir(root):
            raise SpecError("--rootfs", f"{os.fspath(rootfs)} is not a directory")
    else:
        root = "/"
    if read_only and (writable or keep_changes is not None or unsafe_writable_root):
        raise SpecError(
            "--read-only", "and --writable, --keep-changes or --unsafe-writable-root: pick one"
        )
    if unsafe_writable_root and (writable or keep_changes is not None):
        raise SpecError(
            "--unsafe-writable-root",
            "writes the root in place; --writable puts an overlay on it: pick one",
        )
    overlay = None
    if writable or keep_changes is not None:
        upper = None
        if keep_changes is not None:
            upper = os.path.realpath(os.fspath(keep_changes))
        if euid != 0 and rootfs is None:
            raise SpecError(
                "--writable",
                "an overlay over the host's root needs root: a plain user's user namespace "
                "cannot map the host's owners, so nothing of theirs could be changed; "
                "give --rootfs DIR, or -v for what must be writable",
            )
        overlay = Overlay(upper=upper, idmap=euid == 0)

    # the environment: docker's order, the command line's -e last
    environ: dict[str, str] = {"PATH": DEFAULT_PATH, "HOME": "/tmp"}
    if "TERM" in os.environ:
        environ["TERM"] = os.environ["TERM"]
    for path in env_files:
        environ.update(parse_env_file(path))
    environ.update(_env_items(env))
    for key in environ:
        if not key or "=" in key or "\0" in key:
            raise SpecError("--env", f"bad variable name {key!r}")

    ns = default_namespaces() | Namespace.USER
    if network == "host":
        ns = Namespace(int(ns) & ~int(Namespace.NET))  # (Flag.__invert__ is slow)
    elif network != "none":
        raise SpecError("--net", f"none (loopback only) or host, not {network!r}")

    base: list[Mount] = [Mount.proc(), Mount.dev()]
    if network != "host":
        base.append(Mount.sysfs())
    private = [d for d in PRIVATE_DIRS if os.path.isdir(os.path.join(root, d.lstrip("/")))]
    if rootfs is None:
        private = [d for d in private if not os.path.islink(d)]
    base += [Mount.tmpfs(d, mode=0o1777 if d != "/run" else 0o755) for d in private]
    if overlay is not None and rootfs is None:
        # an overlay layer is one filesystem: the host's others, read-only
        base += [Mount.bind(p, readonly=True, nosuid=True) for p in _host_submounts()]

    user_mounts: list[Mount] = []
    for v in volumes:
        user_mounts.append(v if isinstance(v, Mount) else _idmapped(parse_volume(v), euid))
    for m in mounts:
        user_mounts.append(m if isinstance(m, Mount) else _idmapped(parse_mount(m), euid))
    for t in tmpfs:
        user_mounts.append(t if isinstance(t, Mount) else parse_tmpfs(t))
    # docker's order: by the depth of the target, so that a mount goes on top of
    # the one that holds its target
    user_mounts.sort(key=lambda m: m.target.rstrip("/").count("/"))
    for m in user_mounts:
        if m.target in ("/", "/proc", "/dev", "/sys"):
            raise SpecError("-v", f"{m.target} is the sandbox's own: mount elsewhere")
        if overlay is None and rootfs is None:
            _check_target(m, private, user_mounts)

    # Root's sandbox writes an idmapped volume (or kept changes) as the host's
    # root: so that it cannot leave the host a setuid or file-capable program
    # there, it makes no setuid or setgid file (seccomp), keeps no such bit when
    # it writes one (no CAP_FSETID) and writes no file capability (no CAP_SETFCAP)
    as_root = any(m.idmap for m in user_mounts) or (
        overlay is not None and overlay.idmap and overlay.upper is not None
    )
    uid, gid = _user(root, user)
    fields: dict[str, Any] = {}
    if euid == 0:
        # root's sandbox is nobody on the host: a user namespace whose only id
        # (the sandbox's root, or the user asked for) is the host's 65534
        fields["uid_map"] = [(uid, NOBODY, 1)]
        fields["gid_map"] = [(gid, NOBODY, 1)]
    caps = _capabilities(cap_add, cap_drop)
    bounding = DEFAULT_CAPABILITIES if caps is None else caps
    profile = _seccomp(seccomp, bounding)
    if as_root:
        asked = {str(c).upper().removeprefix("CAP_") for c in cap_add}
        keep = {n for n in ("FSETID", "SETFCAP") if n in asked or "ALL" in asked}
        bounding = frozenset(c for c in bounding if c.name not in {"FSETID", "SETFCAP"} - keep)
        caps = bounding
        if profile == "default":
            from pynsbind.seccomp import default_profile

            profile = default_profile(bounding, setid_files=False)
    rlimits: dict[str | int, Any] = {}
    items = ulimits.items() if hasattr(ulimits, "items") else [parse_ulimit(u) for u in ulimits]
    for name, value in items:
        rlimits[str(name).upper()] = value

    cwd = workdir
    if cwd is None:
        # the current directory, when the sandbox shows it (the host's root, not
        # under a tmpfs of the sandbox's) and its user may enter it; else /
        try:
            here = os.getcwd()
        except OSError:
            here = "/"
        tmpfs_targets = [m.target for m in user_mounts if m.kind == "tmpfs"]
        hidden = any(_under(here, t) for t in [*private, *tmpfs_targets])
        visible = rootfs is None and not hidden
        cwd = here if visible and (euid != 0 or _others_may_enter(here)) else "/"
    elif not cwd.startswith("/"):
        raise SpecError("--workdir", f"must be an absolute path in the sandbox, not {workdir!r}")

    resources = _resources(memory, memory_swap, cpus, pids_limit)
    limit_names = [
        n
        for n, v in (
            ("--memory", memory),
            ("--memory-swap", memory_swap),
            ("--cpus", cpus),
            ("--pids-limit", pids_limit),
        )
        if v is not None
    ]
    try:
        spec = Spec(
            args=argv,
            env=environ,
            cwd=cwd,
            rootfs=None if rootfs is None else root,
            hostname=hostname,
            namespaces=ns,
            mounts=[*base, *user_mounts],
            readonly_rootfs=None if overlay is not None else not unsafe_writable_root,
            user=(uid, gid),
            capabilities=caps,
            no_new_privs=no_new_privileges,
            init=init,
            # the sandbox ends with its caller (a killed pynsbind-run)
            die_with_parent=True,
            seccomp=profile,
            rlimits=rlimits,
            overlay=overlay,
            terminal=tty,
            console_size=terminal_size() if tty else None,
            **fields,
        )
    except SpecError as exc:
        raise SpecError(_OPTION.get(exc.field, exc.field), _tail(exc)) from None
    if overlay is not None and overlay.upper is not None:
        # made last, once everything else is known good: a failure leaves nothing
        try:
            os.makedirs(overlay.upper, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise SpecError(
                "--keep-changes", f"{overlay.upper}: {(exc.strerror or str(exc)).lower()}"
            ) from None
    return Prepared(spec, resources, stats=status, limit_names=limit_names or ["--json-status"])


#: the option that sets each Spec field, for messages
_OPTION = {
    "hostname": "--hostname",
    "cwd": "--workdir",
    "rlimits": "--ulimit",
    "capabilities": "--cap-add",
    "user": "--user",
    "user uid": "--user",
    "user gid": "--user",
    "env": "--env",
}


def terminal_size(fd: int = 1) -> tuple[int, int] | None:
    """(rows, columns) of the caller's terminal on fd (then on stdin), if any."""
    for f in (fd, 0):
        try:
            size = os.get_terminal_size(f)
        except OSError:
            continue
        if size.lines > 0 and size.columns > 0:
            return (size.lines, size.columns)
    return None


def _idmapped(m: Mount, euid: int) -> Mount:
    """A volume of root's sandbox is idmapped: its root reads and writes it as
    the caller (root); a plain user's sandbox root is that user already."""
    return replace(m, idmap=True) if euid == 0 and m.kind == "bind" else m


def _check_target(m: Mount, private: list[str], mounts: list[Mount]) -> None:
    """With the host's root read-only, a mount's target must exist there, unless
    a tmpfs of the sandbox holds it (the mount point is then made in it)."""
    assert m.target is not None
    if any(_under(m.target, t) and m.target != t for t in private):
        return
    if any(
        o.kind == "tmpfs" and _under(m.target, o.target) and m.target != o.target for o in mounts
    ):
        return
    if not os.path.lexists(m.target):
        raise SpecError(
            "-v" if m.kind == "bind" else "--tmpfs",
            f"the target {m.target} does not exist in the sandbox's root (the host's /, "
            "read-only): use an existing directory, or --writable",
        )


def sandbox(
    args: Sequence[str],
    *,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    input: bytes | str | None = None,
    capture_output: bool = False,
    text: bool = False,
    check: bool = False,
    timeout: float | None = None,
    **options: Any,
) -> SandboxResult:
    """Run ``args`` in a sandbox and wait for it, like :func:`pynsbind.run`.

    Options (docker run's, as keywords): ``rootfs``, ``writable``,
    ``keep_changes``, ``unsafe_writable_root``, ``read_only``, ``volumes``
    (``"SRC:DST[:ro]"`` or Mount), ``mounts`` (``"type=bind,src=...,dst=..."``
    or Mount), ``tmpfs`` (``"DST[:size=64m]"``), ``workdir``, ``env`` (a
    mapping, or ``"K=V"``/``"K"`` words), ``env_files``, ``user``, ``hostname``,
    ``init``, ``network`` (``"none"``, ``"host"``), ``memory``, ``memory_swap``,
    ``cpus``, ``pids_limit``, ``ulimits``, ``cap_add``, ``cap_drop``,
    ``seccomp`` (``"default"``, ``"unconfined"``, a JSON file, a
    SeccompProfile), ``no_new_privileges``.  See docs/sandbox.md.

    Raises SpecError (a ValueError naming the option) for bad options and
    SpawnError when the sandbox cannot start; a ``timeout`` kills the whole
    sandbox and sets ``status.timed_out`` (``returncode`` is then -9)."""
    prepared = prepare(args, status=True, **options)
    return prepared.run(
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        input=input,
        capture_output=capture_output,
        text=text,
        check=check,
        timeout=timeout,
    )


def explain_error(exc: BaseException) -> tuple[str, int]:
    """The one line a person reads for a failed sandbox, and the exit status
    (docker's: 125 the sandbox's own failure, 126 a command that cannot be run,
    127 one not found)."""
    import errno

    if isinstance(exc, SpawnError):
        if exc.step and exc.step.startswith("exec"):
            return str(exc), 127 if exc.errno == errno.ENOENT else 126
        return str(exc), 125
    return str(exc), 125


class _CallableModule(types.ModuleType):
    """``pynsbind.sandbox`` names this module and its function at once (the
    package exports the function; importing the module makes the package's
    attribute the module): calling the module calls the function."""

    def __call__(self, args: Sequence[str], **kwargs: Any) -> SandboxResult:
        return sandbox(args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
