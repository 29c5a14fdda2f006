"""pynsbind-run as an OCI runtime: runc's command line, for podman (through
conmon), containerd's shim and people.

Each command is one operation of :class:`pynsbind.container.Container`.  Errors
are one line on stderr (and, with ``--log FILE``, a line of the log, as JSON
with ``--log-format json``, the way runc writes them), exit status 1.
"""

from __future__ import annotations

import os
import signal
import sys

from pynsbind._args import Option, UsageError, help_text, parse
from pynsbind._version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from pynsbind._args import Parsed
    from pynsbind.container import Container

__all__ = ["COMMANDS", "GLOBAL_OPTIONS", "main"]

SPEC_VERSION = "1.2.0"

GLOBAL_OPTIONS = [
    Option("--root", value=True, metavar="DIR", help="where container states live"),
    Option("--log", value=True, metavar="FILE", help="also write errors to FILE"),
    Option("--log-format", value=True, metavar="text|json", default="text", help="log format"),
    Option("--debug", help="more output on errors"),
    Option("--systemd-cgroup", help="place cgroups through systemd (not supported)"),
    Option("--rootless", value=True, metavar="true|false|auto", help="accepted, ignored"),
    Option("--criu", value=True, metavar="PATH", help="accepted, ignored (no checkpoints)"),
    Option("--help", "-h", help="show this help"),
    Option("--version", "-v", help="print the version"),
]

_BUNDLE = Option("--bundle", "-b", value=True, metavar="DIR", help="the bundle (default: .)")
_CONSOLE = Option(
    "--console-socket",
    value=True,
    metavar="PATH",
    help="send the terminal's master to this unix socket",
)
_PIDFILE = Option("--pid-file", value=True, metavar="FILE", help="write the process's pid here")
_PRESERVE = Option(
    "--preserve-fds", value=True, metavar="N", default="0", help="pass fds 3 to 3+N-1 on"
)
_ACCEPTED = [
    Option("--no-pivot", help="accepted, ignored (pivot_root is always used where it can)"),
    Option("--no-new-keyring", help="accepted, ignored (a new session keyring is made)"),
]


class _Command:
    def __init__(
        self,
        usage: str,
        description: str,
        options: list[Option],
        run: Callable[[Parsed, Parsed], int],
        *,
        positional: bool = False,
    ) -> None:
        self.usage = usage
        self.description = description
        self.options = [*options, Option("--help", "-h", help="show this help")]
        self.run = run
        self.positional = positional


class _Failure(Exception):
    """An error to report and exit 1 with."""


# ---- helpers --------------------------------------------------------------------------


def _root(g: Parsed) -> str:
    from pynsbind.container import default_root

    root = g.root
    return os.path.abspath(root) if isinstance(root, str) else default_root()


def _one_id(args: Parsed, what: str) -> str:
    if not args.args:
        raise _Failure(f"{what}: give a container id")
    if len(args.args) > 1 and what not in ("kill", "exec", "ps"):
        raise _Failure(f"{what}: one container id, not {len(args.args)} arguments")
    return args.args[0]


def _load(g: Parsed, cid: str) -> Container:
    from pynsbind.container import Container

    return Container.load(cid, root=_root(g))


def _signal(text: str) -> int:
    """A signal by number (podman sends them so) or name, with or without SIG."""
    if text.isdigit():
        number = int(text)
        if not 0 < number < 65:
            raise _Failure(f"unknown signal {text!r}")
        return number
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    found = getattr(signal, name, None)
    if not isinstance(found, int) or name.startswith("SIG_"):
        raise _Failure(f"unknown signal {text!r}")
    return int(found)


def _json(doc: object) -> None:
    import json

    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


# ---- the commands -------------------------------------------------------------------------


#: the options pynsbind-run's launcher takes when it creates a container from
#: a kept plan (csrc/launcher_oci.c): any other keeps no plan
_LAUNCHER_GLOBALS = frozenset({"root", "log", "log_format"})
_LAUNCHER_OPTIONS = frozenset({"bundle", "pid_file", "detach", "no_pivot", "no_new_keyring"})


def _plan_key(g: Parsed, a: Parsed, command: str) -> bytes | None:
    """The key under which this create (or run) keeps its container's plan for
    the launcher (pynsbind._replay.container_key), or None when the launcher
    would not take this command line: an option given that it does not take."""
    for parsed, options, allowed in (
        (g, GLOBAL_OPTIONS, _LAUNCHER_GLOBALS),
        (a, COMMANDS[command].options, _LAUNCHER_OPTIONS),
    ):
        for option in options:
            if option.dest not in allowed and parsed.get(option.dest) != option.default:
                return None
    if os.environ.get("PYNSBIND_PLANS_CACHE") == "0":
        return None
    from pynsbind._replay import container_key

    return container_key(_str(g.root), _str(a.bundle))


def _create(g: Parsed, a: Parsed) -> int:
    from pynsbind.container import HELD_SIGNALS, Container

    cid = _one_id(a, "create")
    # held from here to this process's end once the container is made: it
    # exits 0 with it made, or (a signal came, create undid it) ends on the signal
    old = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
    try:
        Container.create(
            cid,
            str(a.bundle or "."),
            root=_root(g),
            console_socket=_str(a.console_socket),
            pid_file=_str(a.pid_file),
            preserve_fds=_count(a.preserve_fds, "--preserve-fds"),
            plan_key=_plan_key(g, a, "create"),
        )
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        raise
    return 0


def _start(g: Parsed, a: Parsed) -> int:
    _load(g, _one_id(a, "start")).start()
    return 0


def _run(g: Parsed, a: Parsed) -> int:
    from pynsbind.container import HELD_SIGNALS, Container

    cid = _one_id(a, "run")
    root = _root(g)
    # held until the container runs, then forwarded to it (one that comes
    # while create makes it undoes it and ends this process)
    old = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
    try:
        c = Container.create(
            cid,
            str(a.bundle or "."),
            root=root,
            console_socket=_str(a.console_socket),
            pid_file=_str(a.pid_file),
            preserve_fds=_count(a.preserve_fds, "--preserve-fds"),
            plan_key=_plan_key(g, a, "run"),
        )
        try:
            c.start()
        except BaseException:
            c.delete(force=True)
            raise
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        raise
    if a.detach:
        return 0
    status = _wait_forwarding(c.pid, old)
    if not a.keep:
        Container.load(cid, root=root).delete(force=True)
    return status


def _wait_forwarding(pid: int, mask: set[int | signal.Signals] | None = None) -> int:
    """Wait for our child ``pid`` (the container's first process), forwarding
    the signals a terminal or a supervisor sends us (those held meanwhile
    too, once the signal ``mask`` is set back); its exit status, 128+N for a
    signal N."""
    forwarded = (
        signal.SIGINT,
        signal.SIGTERM,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
        signal.SIGWINCH,
    )

    def forward(sig: int, _frame: object) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    for sig in forwarded:
        signal.signal(sig, forward)
    if mask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            return 255
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _state(g: Parsed, a: Parsed) -> int:
    _json(_load(g, _one_id(a, "state")).state())
    return 0


def _list(g: Parsed, a: Parsed) -> int:
    from pynsbind.container import list_containers

    found = [c.state() for c in list_containers(_root(g))]
    if a.quiet:
        for doc in found:
            print(doc["id"])
    elif a.format == "json":
        _json(found)
    elif a.format in (None, "table"):
        print(f"{'ID':<20} {'PID':<8} {'STATUS':<10} {'BUNDLE':<40} {'CREATED':<30} OWNER")
        for doc in found:
            print(
                f"{doc['id']:<20} {doc['pid']:<8} {doc['status']:<10} {doc['bundle']:<40} "
                f"{doc['created']:<30} {doc['owner']}"
            )
    else:
        raise _Failure(f"list: unknown format {a.format!r} (table or json)")
    return 0


def _kill(g: Parsed, a: Parsed) -> int:
    if not a.args or len(a.args) > 2:
        raise _Failure("kill: give a container id and, optionally, a signal")
    sig = _signal(a.args[1]) if len(a.args) == 2 else signal.SIGTERM
    _load(g, a.args[0]).kill(sig, all_processes=bool(a.all))
    return 0


def _delete(g: Parsed, a: Parsed) -> int:
    from pynsbind.container import ContainerError

    cid = _one_id(a, "delete")
    try:
        c = _load(g, cid)
    except ContainerError as exc:
        if a.force and exc.errno == 2:  # already gone: what --force asks for
            return 0
        raise
    c.delete(force=bool(a.force))
    return 0


def _pause(g: Parsed, a: Parsed) -> int:
    c = _load(g, _one_id(a, "pause"))
    with c.lock():
        c.pause()
    return 0


def _resume(g: Parsed, a: Parsed) -> int:
    c = _load(g, _one_id(a, "resume"))
    with c.lock():
        c.resume()
    return 0


def _ps(g: Parsed, a: Parsed) -> int:
    if not a.args:
        raise _Failure("ps: give a container id")
    pids = _load(g, a.args[0]).processes()
    if a.format == "json":
        _json(pids)
        return 0
    import subprocess

    ps_args = a.args[1:] or ["-ef"]
    out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=False)
    lines = out.stdout.splitlines()
    if not lines:
        raise _Failure(f"ps: {out.stderr.strip()}")
    header = lines[0].split()
    column = header.index("PID") if "PID" in header else 1
    print(lines[0])
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in pids:
            print(line)
    return 0


def _update(g: Parsed, a: Parsed) -> int:
    import json

    c = _load(g, _one_id(a, "update"))
    resources: dict[str, Any] = {}
    if a.resources is not None:
        source = str(a.resources)
        try:
            if source == "-":
                resources = json.load(sys.stdin)
            else:
                with open(source, "rb") as f:
                    resources = json.load(f)
        except (OSError, ValueError) as exc:
            raise _Failure(f"update: --resources {source}: {exc}") from None
        if not isinstance(resources, dict):
            raise _Failure(f"update: --resources {source}: not a JSON object")
    _update_flags(a, resources)
    with c.lock():
        c.update(resources)
    return 0


def _update_flags(a: Parsed, resources: dict[str, Any]) -> None:
    """runc update's flags, into the OCI linux.resources they name."""

    def number(name: str) -> int | None:
        value = a.get(name)
        if value is None:
            return None
        text = str(value)
        try:
            return int(text)
        except ValueError:
            from pynsbind.resources import parse_size

            try:
                size = parse_size(text, name)
            except ValueError as exc:
                raise _Failure(f"update: --{name.replace('_', '-')}: {exc}") from None
            return -1 if size == "max" else size

    table = (
        ("memory", "memory", "limit"),
        ("memory_reservation", "memory", "reservation"),
        ("memory_swap", "memory", "swap"),
        ("cpu_share", "cpu", "shares"),
        ("cpu_quota", "cpu", "quota"),
        ("cpu_period", "cpu", "period"),
        ("blkio_weight", "blockIO", "weight"),
        ("pids_limit", "pids", "limit"),
    )
    for name, group, key in table:
        value = number(name)
        if value is not None:
            resources.setdefault(group, {})[key] = value
    for name, key in (("cpuset_cpus", "cpus"), ("cpuset_mems", "mems")):
        text = a.get(name)
        if text is not None:
            resources.setdefault("cpu", {})[key] = str(text)


def _events(g: Parsed, a: Parsed) -> int:
    import json
    import time

    c = _load(g, _one_id(a, "events"))
    interval = _seconds(str(a.interval or "5s"))
    while True:
        doc = {"type": "stats", "id": c.id, "data": c.stats()}
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()
        if a.stats:
            return 0
        time.sleep(interval)
        if c.status == "stopped":
            return 0


def _seconds(text: str) -> float:
    """A Go duration as runc takes it: 5s, 100ms, 1m."""
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * scale
    raise _Failure(f"events: --interval {text!r} is not a duration such as 5s or 100ms")


def _exec(g: Parsed, a: Parsed) -> int:
    from pynsbind.container import exec_in

    if not a.args:
        raise _Failure("exec: give a container id")
    c = _load(g, a.args[0])
    code = exec_in(
        c,
        process_file=_str(a.process),
        args=a.args[1:],
        env=list(a.env),  # type: ignore[call-overload]
        cwd=_str(a.cwd),
        user=_str(a.user),
        additional_gids=list(a.additional_gids),  # type: ignore[call-overload]
        tty=bool(a.tty),
        caps=list(a.cap),  # type: ignore[call-overload]
        no_new_privs=bool(a.no_new_privs),
        detach=bool(a.detach),
        console_socket=_str(a.console_socket),
        pid_file=_str(a.pid_file),
        preserve_fds=_count(a.preserve_fds, "--preserve-fds"),
        ignore_paused=bool(a.ignore_paused),
    )
    return code


def _features(g: Parsed, a: Parsed) -> int:
    if a.kernel:
        from pynsbind import features
        from pynsbind._record import fields

        found = features()
        for f in fields(found):
            sys.stdout.write(f"{f.name}: {getattr(found, f.name)}\n")
        return 0
    from pynsbind import oci

    _json(oci.features_document())
    return 0


def _spec(g: Parsed, a: Parsed) -> int:
    import json

    from pynsbind import oci

    bundle = str(a.bundle or ".")
    path = os.path.join(bundle, "config.json")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise _Failure(f"spec: {path} exists already") from None
    except OSError as exc:
        raise _Failure(f"spec: {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(oci.default_config(rootless=bool(a.rootless)), indent=2) + "\n")
    return 0


def _unsupported(name: str) -> Callable[[Parsed, Parsed], int]:
    def run(g: Parsed, a: Parsed) -> int:
        raise _Failure(f"{name} is not supported by pynsbind-run (no CRIU support)")

    return run


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _count(value: object, name: str) -> int:
    text = str(value or "0")
    if not text.isdigit():
        raise _Failure(f"{name} takes a number, not {text!r}")
    return int(text)


COMMANDS: dict[str, _Command] = {
    "create": _Command(
        "pynsbind-run create [OPTIONS] ID",
        "Create a container from an OCI bundle; its process waits for `start`.",
        [_BUNDLE, _CONSOLE, _PIDFILE, _PRESERVE, *_ACCEPTED],
        _create,
    ),
    "start": _Command("pynsbind-run start ID", "Start a created container.", [], _start),
    "run": _Command(
        "pynsbind-run run [OPTIONS] ID",
        "Create and start a container; wait for it unless --detach, then delete it unless --keep.",
        [
            _BUNDLE,
            _CONSOLE,
            _PIDFILE,
            _PRESERVE,
            Option("--detach", "-d", help="return once the container runs"),
            Option("--keep", help="keep the container's state after it exits"),
            Option("--no-subreaper", help="accepted, ignored"),
            *_ACCEPTED,
        ],
        _run,
    ),
    "state": _Command(
        "pynsbind-run state ID", "Print the state of a container (JSON).", [], _state
    ),
    "list": _Command(
        "pynsbind-run list [OPTIONS]",
        "List the containers under the root.",
        [
            Option("--format", "-f", value=True, metavar="table|json", help="output format"),
            Option("--quiet", "-q", help="ids only"),
        ],
        _list,
    ),
    "kill": _Command(
        "pynsbind-run kill [OPTIONS] ID [SIGNAL]",
        "Send a signal (default SIGTERM; a number or a name) to the container's first process.",
        [Option("--all", "-a", help="to every process of the container")],
        _kill,
    ),
    "delete": _Command(
        "pynsbind-run delete [OPTIONS] ID",
        "Delete a stopped container: its cgroup and state.",
        [Option("--force", "-f", help="kill it first if it runs; no error if it is gone")],
        _delete,
    ),
    "pause": _Command("pynsbind-run pause ID", "Freeze every process of a container.", [], _pause),
    "resume": _Command("pynsbind-run resume ID", "Thaw a paused container.", [], _resume),
    "ps": _Command(
        "pynsbind-run ps [OPTIONS] ID [PS ARGS]",
        "List the processes of a container.",
        [Option("--format", "-f", value=True, metavar="table|json", help="output format")],
        _ps,
        positional=True,
    ),
    "exec": _Command(
        "pynsbind-run exec [OPTIONS] ID [COMMAND [ARG...]]",
        "Run a new process in a running container.",
        [
            Option("--process", "-p", value=True, metavar="FILE", help="the process (JSON)"),
            _CONSOLE,
            Option("--cwd", value=True, metavar="DIR", help="working directory"),
            Option("--env", "-e", many=True, metavar="K=V", help="set a variable"),
            Option("--tty", "-t", help="a terminal"),
            Option("--user", "-u", value=True, metavar="UID[:GID]", help="run as"),
            Option("--additional-gids", "-g", many=True, metavar="GID", help="more groups"),
            Option("--cap", "-c", many=True, metavar="CAP", help="add a capability"),
            Option("--no-new-privs", help="set no_new_privs"),
            Option("--detach", "-d", help="return at once"),
            _PIDFILE,
            _PRESERVE,
            Option("--ignore-paused", help="exec even if the container is paused"),
            Option("--process-label", value=True, help="accepted if empty (no SELinux)"),
            Option("--apparmor", value=True, help="accepted if empty (no AppArmor)"),
            Option("--cgroup", value=True, help="accepted, ignored"),
        ],
        _exec,
        positional=True,
    ),
    "update": _Command(
        "pynsbind-run update [OPTIONS] ID",
        "Change the resources of a container (OCI linux.resources JSON, or flags).",
        [
            Option("--resources", "-r", value=True, metavar="FILE", help="JSON, - for stdin"),
            Option("--memory", value=True),
            Option("--memory-reservation", value=True),
            Option("--memory-swap", value=True),
            Option("--cpu-share", value=True),
            Option("--cpu-quota", value=True),
            Option("--cpu-period", value=True),
            Option("--cpuset-cpus", value=True),
            Option("--cpuset-mems", value=True),
            Option("--blkio-weight", value=True),
            Option("--pids-limit", value=True),
        ],
        _update,
    ),
    "events": _Command(
        "pynsbind-run events [OPTIONS] ID",
        "Print a container's statistics (JSON lines).",
        [
            Option("--stats", help="once, then exit"),
            Option("--interval", value=True, default="5s", help="between lines"),
        ],
        _events,
    ),
    "features": _Command(
        "pynsbind-run features [--kernel]",
        "What this runtime supports (the runtime-spec features document).",
        [Option("--kernel", help="what this kernel can do instead, one probe a line")],
        _features,
    ),
    "spec": _Command(
        "pynsbind-run spec [OPTIONS]",
        "Write a default config.json into the bundle.",
        [_BUNDLE, Option("--rootless", help="for a user without root")],
        _spec,
    ),
    "checkpoint": _Command(
        "pynsbind-run checkpoint ID", "Not supported.", [], _unsupported("checkpoint")
    ),
    "restore": _Command("pynsbind-run restore ID", "Not supported.", [], _unsupported("restore")),
}


def version_text() -> str:
    python = sys.version.split()[0]
    return f"pynsbind-run version {__version__}\nspec: {SPEC_VERSION}\npython: {python}\n"


def _report(g: Parsed | None, message: str, level: str = "error") -> None:
    """An error (or a warning): in the log when there is one, as runc writes it
    (podman reads the message of the last error line); on stderr, one line (a
    warning only when there is no log)."""
    logged = g is not None and bool(g.log)
    if level == "error" or not logged:
        prefix = "" if level == "error" else "warning: "
        sys.stderr.write(f"pynsbind-run: {prefix}{message}\n")
    if g is None or not logged:
        return
    import json
    import time

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if g.log_format == "json":
        line = json.dumps({"level": level, "msg": message, "time": now})
    else:
        line = f'time="{now}" level={level} msg={json.dumps(message)}'
    try:
        with open(str(g.log), "a") as f:
            f.write(line + "\n")
    except OSError:
        pass


def _warnings_to_log(g: Parsed) -> None:
    """Python warnings (an OCI config's ignored field) as the log's warnings,
    one line each, never a source line on stderr."""
    import warnings

    def show(message: Warning | str, *_args: object, **_kw: object) -> None:
        _report(g, str(message), "warning")

    warnings.showwarning = show


def main(argv: Sequence[str], command: str, g: Parsed) -> int:
    """Run runtime ``command`` with its arguments ``argv`` (the global options
    parsed already into ``g``)."""
    from pynsbind.container import ContainerError
    from pynsbind.errors import SpawnError, SpecError

    cmd = COMMANDS[command]
    _warnings_to_log(g)
    try:
        a = parse(argv, cmd.options, stop_at_positional=cmd.positional)
        if a.help:
            sys.stdout.write(help_text(cmd.usage, cmd.description, cmd.options))
            return 0
        if g.systemd_cgroup:
            raise _Failure("--systemd-cgroup is not supported: use the cgroupfs manager")
        return cmd.run(g, a)
    except (UsageError, _Failure, ContainerError) as exc:
        _report(g, f"{command}: {exc}" if isinstance(exc, UsageError) else str(exc))
    except SpecError as exc:
        _report(g, f"invalid configuration: {exc}")
    except ValueError as exc:  # a cgroup placement refused, a bad value from the caller
        _report(g, f"{command}: {exc}")
    except SpawnError as exc:
        _report(g, str(exc))
    except OSError as exc:
        _report(g, f"{command}: {exc}")
    return 1
