"""pynsbind-run sandbox [OPTIONS] [--] COMMAND [ARG...]: pynsbind.sandbox() from
the shell, with the options of ``docker run`` (parsed by pynsbind._args, which
costs nothing to import: a sandbox's start-up is measured against bubblewrap's).
"""

from __future__ import annotations

# the C half of the signal module: `signal` builds enums at import, which costs
# more than a sandbox of /bin/true takes to run
import _signal  # type: ignore[import-not-found]
import os
import sys

from pynsbind._args import Option, UsageError, help_text, parse

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from pynsbind.process import Process
    from pynsbind.sandbox import Prepared

__all__ = ["main"]

_PROG = "pynsbind-run sandbox"

_FS, _PROC, _LIM, _SEC, _NET, _OUT = (
    "filesystem",
    "process",
    "limits",
    "security",
    "network",
    "output and debugging",
)

OPTIONS = [
    Option(
        "--rootfs",
        value=True,
        metavar="DIR",
        help="use DIR as the root instead of the host's /",
        group=_FS,
    ),
    Option(
        "--writable",
        help="an overlay on the root: write anything, gone at exit",
        group=_FS,
    ),
    Option(
        "--keep-changes",
        value=True,
        metavar="DIR",
        help="--writable, the changes kept in DIR (its upper layer)",
        group=_FS,
    ),
    Option(
        "--unsafe-writable-root",
        help="write the root in place: the host's / really changes",
        group=_FS,
    ),
    Option("--read-only", help="keep the root read-only (the default)", group=_FS),
    Option(
        "-v",
        "--volume",
        many=True,
        metavar="SRC:DST[:ro]",
        help="the host's SRC at DST (by root: read, written as root)",
        group=_FS,
    ),
    Option(
        "--mount",
        many=True,
        metavar="SPEC",
        help="type=bind,src=SRC,dst=DST[,ro] or type=tmpfs,dst=DST",
        group=_FS,
    ),
    Option(
        "--tmpfs",
        many=True,
        metavar="DST[:OPTS]",
        help="a tmpfs at DST (size=64m,mode=1777,ro,exec)",
        group=_FS,
    ),
    Option("--bind", many=True, metavar="SRC[:DST]", help="bubblewrap's -v SRC:DST", group=_FS),
    Option(
        "--ro-bind", many=True, metavar="SRC[:DST]", help="bubblewrap's -v SRC:DST:ro", group=_FS
    ),
    Option(
        "-w",
        "--workdir",
        value=True,
        metavar="DIR",
        help="working directory (default: the current one, or /)",
        group=_FS,
    ),
    Option(
        "-e",
        "--env",
        many=True,
        metavar="K=V|K",
        help="set a variable (K alone: pass yours)",
        group=_PROC,
    ),
    Option(
        "--env-file", many=True, metavar="FILE", help="variables from FILE (K=V lines)", group=_PROC
    ),
    Option(
        "-u",
        "--user",
        value=True,
        metavar="USER[:GROUP]",
        help="run as USER (a name or a number)",
        group=_PROC,
    ),
    Option(
        "--hostname",
        value=True,
        metavar="NAME",
        default="sandbox",
        help="the host name (default: sandbox)",
        group=_PROC,
    ),
    Option(
        "--init",
        default=True,
        help="an init at PID 1 (the default; --init=false: none)",
        group=_PROC,
    ),
    Option("-i", "--interactive", help="keep stdin open (without it: /dev/null)", group=_PROC),
    Option(
        "-t",
        "--tty",
        help="a terminal of its own (yours raw, its size kept)",
        group=_PROC,
    ),
    Option("--rm", help="accepted: a sandbox leaves nothing behind anyway", group=_PROC),
    Option(
        "-m", "--memory", value=True, metavar="SIZE", help="memory limit (512m, 2g)", group=_LIM
    ),
    Option(
        "--memory-swap",
        value=True,
        metavar="SIZE",
        help="memory plus swap (-1: unlimited swap)",
        group=_LIM,
    ),
    Option("--cpus", value=True, metavar="N", help="CPUs' worth of time (1.5)", group=_LIM),
    Option(
        "--pids-limit", value=True, metavar="N", help="processes and threads at most", group=_LIM
    ),
    Option(
        "--ulimit",
        many=True,
        metavar="NAME=SOFT[:HARD]",
        help="a resource limit (nofile=1024)",
        group=_LIM,
    ),
    Option(
        "--timeout",
        value=True,
        metavar="SECONDS",
        help="kill the whole sandbox then (exit status 124)",
        group=_LIM,
    ),
    Option(
        "--cap-add", many=True, metavar="CAP", help="add a capability (ALL: every one)", group=_SEC
    ),
    Option(
        "--cap-drop",
        many=True,
        metavar="CAP",
        help="drop a capability (ALL: every one)",
        group=_SEC,
    ),
    Option(
        "--security-opt",
        many=True,
        metavar="OPT",
        help="seccomp=FILE.json|unconfined, no-new-privileges[=false]",
        group=_SEC,
    ),
    Option(
        "--net",
        "--network",
        value=True,
        metavar="none|host",
        default="none",
        help="none: loopback only (default); host: the host's",
        group=_NET,
    ),
    Option(
        "--json-status",
        value=True,
        metavar="FILE",
        help="how it ended, as JSON (- for stdout): status, OOM, times, memory",
        group=_OUT,
    ),
    Option("--debug", help="print the sandbox's plan before running it", group=_OUT),
    Option("-h", "--help", help="show this help", group=_OUT),
]

_DESCRIPTION = """\
Run COMMAND in a sandbox on this machine: the host's own root, read-only, with a
fresh /proc, a minimal /dev and private /tmp, /run and /var/tmp; every namespace;
no network but loopback; a seccomp filter; an init at PID 1.  As a plain user it
runs rootless; run by root, its processes are the host's "nobody", so the host's
files and sockets see nobody.  Options are docker run's, spelled the same.

Exit status: the command's (128+N when a signal N ended it), 124 after --timeout,
125 when the sandbox itself fails, 126 when the command cannot run, 127 when it
is not found."""

_EPILOG = """\
examples:
  pynsbind-run sandbox -- sh -c 'hostname; id; touch /etc/x'
  pynsbind-run sandbox -v "$PWD:/work" -w /work -m 512m --pids-limit 128 -- make
  pynsbind-run sandbox --writable -- sh -c 'echo 127.0.0.2 box >> /etc/hosts; cat /etc/hosts'
  pynsbind-run sandbox --timeout 10 --json-status status.json -- python3 job.py

More: docs/sandbox.md."""


def _say(message: str) -> None:
    sys.stderr.write(f"{_PROG}: {message}\n")


def _bind_words(items: list[str], readonly: bool) -> list[str]:
    """bubblewrap's SRC[:DST] as docker's SRC:DST[:ro]."""
    out = []
    for item in items:
        src, _, dst = item.partition(":")
        full = os.path.abspath(src)
        out.append(f"{full}:{dst or full}" + (":ro" if readonly else ""))
    return out


def _security(opts: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for opt in opts:
        key, eq, value = opt.partition("=")
        if not eq and ":" in opt:  # docker's older spelling: no-new-privileges:true
            key, _, value = opt.partition(":")
            eq = "="
        if key == "seccomp" and eq:
            out["seccomp"] = value
        elif key == "no-new-privileges":
            low = value.lower() if eq else "true"
            if low not in ("true", "false", "1", "0"):
                raise UsageError(f"--security-opt {opt}: true or false, not {value!r}")
            out["no_new_privileges"] = low in ("true", "1")
        else:
            raise UsageError(
                f"--security-opt {opt}: this sandbox takes seccomp=PROFILE.json, "
                "seccomp=unconfined and no-new-privileges"
            )
    return out


def _options(parsed: Any) -> dict[str, Any]:
    """The keywords of pynsbind.sandbox.prepare from the parsed command line."""

    def strs(name: str) -> list[str]:
        value = parsed.get(name)
        assert isinstance(value, list)
        return [str(v) for v in value]

    volumes = strs("volume") + _bind_words(strs("bind"), False) + _bind_words(strs("ro_bind"), True)
    return {
        "rootfs": parsed.rootfs,
        "writable": bool(parsed.writable),
        "keep_changes": parsed.keep_changes,
        "unsafe_writable_root": bool(parsed.unsafe_writable_root),
        "read_only": bool(parsed.read_only),
        "volumes": volumes,
        "mounts": strs("mount"),
        "tmpfs": strs("tmpfs"),
        "workdir": parsed.workdir,
        "env": strs("env"),
        "env_files": strs("env_file"),
        "user": parsed.user,
        "hostname": parsed.hostname,
        "init": bool(parsed.init),
        "network": parsed.net,
        "memory": parsed.memory,
        "memory_swap": parsed.memory_swap,
        "cpus": parsed.cpus,
        "pids_limit": parsed.pids_limit,
        "ulimits": strs("ulimit"),
        "cap_add": strs("cap_add"),
        "cap_drop": strs("cap_drop"),
        **_security(strs("security_opt")),
        "tty": bool(parsed.tty),
        "status": parsed.json_status is not None,
    }


# ---- kept plans ------------------------------------------------------------------

#: the options a kept plan is replayed for: the plan is made of their values
#: (with what the key and the conditions hold: the caller's ids and working
#: directory, TERM...); the others read files (-v, --rootfs, --env-file, -u
#: names, seccomp=FILE), make a cgroup (limits, --json-status) or watch the
#: sandbox (-t, --timeout)
_REPLAYED = frozenset(
    {
        "read_only",
        "tmpfs",
        "workdir",
        "env",
        "hostname",
        "init",
        "interactive",
        "rm",
        "ulimit",
        "cap_add",
        "cap_drop",
        "security_opt",
        "net",
    }
)


def _replay_key(argv: Sequence[str], parsed: Any) -> bytes | None:
    """The key of the plan of this command line (pynsbind._replay.key: the
    words before the command, the caller's ids and directory...), or None when
    it cannot be kept: options outside _REPLAYED, or a ``--`` that is not the
    one before the command (pynsbind-run's launcher finds the command after
    the first ``--``, or at once when the first word is no option)."""
    for option in OPTIONS:
        value = parsed.get(option.dest)
        if value == option.default:
            continue
        if option.dest not in _REPLAYED:
            return None
        if option.dest == "security_opt":
            assert isinstance(value, list)
            if any(v.startswith("seccomp") and v != "seccomp=unconfined" for v in value):
                return None
    prefix = list(argv[: len(argv) - len(parsed.args)])
    if "--" in prefix[:-1]:
        return None
    if prefix[-1:] == ["--"]:
        # the launcher's split: the "--" must be the separator for any command
        # after it, not an option's value (-e --): the options before it parse
        # alone, to the same values
        try:
            alone = parse(prefix[:-1], OPTIONS)
        except UsageError:
            return None
        if alone.args or alone.values != {**parsed.values}:
            return None
    from pynsbind._replay import key

    return key(prefix, parsed.args[0])


def _conditions(parsed: Any) -> list[tuple[str, str, Any]]:
    """What of the host and the caller, besides the key, made the plan: TERM
    and the variables passed by name, which of the private directories exist,
    whether nobody may enter the working directory, and the package's files."""
    from pynsbind._replay import source_conditions
    from pynsbind.sandbox import PRIVATE_DIRS  # (imported already: the sandbox ran)

    names = ["TERM", *(v for v in parsed.env if "=" not in v)]
    out: list[tuple[str, str, Any]] = [("env", n, os.environ.get(n)) for n in names]
    out += [("lstat", d, os.lstat(d).st_mode) for d in PRIVATE_DIRS]
    parts = [p for p in os.getcwd().split("/") if p]
    for i in range(len(parts) + 1):
        d = "/" + "/".join(parts[:i])
        out.append(("stat", d, os.stat(d).st_mode))
    return out + source_conditions()


class _Replayed:
    """A sandbox started from a kept plan: what _Forwarder reads of it."""

    terminal = None
    returncode: int | None = None

    def __init__(self, pid: int, pidfd: int) -> None:
        self.pid = pid
        self.pidfd = pidfd


def _replay(key: bytes, parsed: Any) -> int | None:
    """Run the sandbox from the plan kept under ``key``: its exit status, or
    None when there is no plan, or it failed to start (the full path then runs
    it, and says why).  (pynsbind-run's launcher does the same in C.)"""
    from pynsbind import _replay

    kept = _replay.load(key)
    if kept is None:
        return None
    data = kept.data
    stdin = 0
    if not kept.inherit_stdin:
        stdin = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    forward = _Forwarder()
    forward.install()
    try:
        try:
            started = _replay.spawn(_replay.with_command(data, parsed.args), (stdin, 1, 2))
        finally:
            if stdin:
                os.close(stdin)
        if started is None:
            return None
        pid, pidfd, sync_fd = started
        proc = _Replayed(pid, pidfd)
        forward.start(proc)
        try:
            rc = _replay.wait(pid, pidfd, sync_fd)
        finally:
            proc.pidfd = -1  # before it is closed: no signal to a number reused
            for fd in (pidfd, sync_fd):
                if fd >= 0:
                    os.close(fd)
    finally:
        forward.stop()
    return 128 - rc if rc < 0 else rc


class _Forwarder:
    """SIGINT, SIGTERM and SIGHUP, forwarded to the sandbox's init (which hands
    them to the command) while it runs; a second Ctrl-C kills the sandbox."""

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")

    def __init__(self) -> None:
        self.proc: Process | _Replayed | None = None
        self.interrupts = 0
        self.old: dict[int, Any] = {}
        self.pending: list[int] = []

    def install(self) -> None:
        """Before the spawn: a signal that comes meanwhile waits for the sandbox."""
        for name in self.SIGNALS:
            sig = getattr(_signal, name)
            self.old[sig] = _signal.signal(sig, self._forward)

    def start(self, proc: Process | _Replayed) -> None:
        """The sandbox runs: what came before goes to it now; with a terminal,
        the caller's window size follows (SIGWINCH)."""
        self.proc = proc
        if proc.terminal is not None:
            self.old[_signal.SIGWINCH] = _signal.signal(_signal.SIGWINCH, self._resize)
        pending, self.pending = self.pending, []
        for sig in pending:
            self._forward(sig, None)

    def _resize(self, _sig: int, _frame: object) -> None:
        from pynsbind.sandbox import terminal_size

        size = terminal_size()
        if size is not None and self.proc is not None and self.proc.terminal is not None:
            try:
                self.proc.resize(*size)
            except (OSError, ValueError):
                pass  # the terminal is closed: the sandbox is gone

    def _forward(self, sig: int, _frame: object) -> None:
        """(In the main thread, which may be inside the Process's own wait,
        holding its lock: straight to the pidfd, never through the Process.)"""
        proc = self.proc
        if proc is None:
            self.pending.append(sig)
            return
        if sig == _signal.SIGINT:
            self.interrupts += 1
            if self.interrupts > 1:
                sig = _signal.SIGKILL
        fd = proc.pidfd
        try:
            if fd >= 0:
                _signal.pidfd_send_signal(fd, sig)
            elif proc.returncode is None:
                os.kill(proc.pid, sig)
        except OSError:
            pass  # gone meanwhile: its status says how it ended

    def stop(self) -> None:
        for sig, old in self.old.items():
            _signal.signal(sig, old)
        self.old = {}


def _run(prepared: Prepared, parsed: Any, key: bytes | None = None) -> int:
    timeout = None
    if parsed.timeout is not None:
        try:
            timeout = float(parsed.timeout)
        except ValueError:
            raise UsageError(f"--timeout takes seconds, not {parsed.timeout!r}") from None
        if timeout <= 0:
            raise UsageError(f"--timeout takes a positive number of seconds, not {parsed.timeout}")
    forward = _Forwarder()
    raw = None
    if parsed.tty:
        # the terminal is relayed: the caller's input (with -i) and output;
        # the caller's own terminal in raw mode, so that every key (^C too)
        # reaches the sandbox's
        stdin: Any = 0 if parsed.interactive else None
        if parsed.interactive and os.isatty(0):
            import termios
            import tty

            raw = termios.tcgetattr(0)
            tty.setraw(0, termios.TCSANOW)  # (not TCSAFLUSH: keep what was typed ahead)
    else:
        stdin = None if parsed.interactive else -3  # DEVNULL

    def started(proc: Process) -> None:
        forward.start(proc)
        if key is not None:
            # it runs: its plan is kept for the next sandbox like it
            from pynsbind import _replay
            from pynsbind.process import plan_data

            data = _replay.without_command(plan_data(proc.spec), parsed.args)
            if data is not None:
                try:
                    conditions = _conditions(parsed)
                    init = _replay.installed_init()
                except OSError:
                    return  # (the host changed meanwhile: nothing is kept)
                _replay.store(key, _replay.Kept(data, conditions, bool(parsed.interactive), init))

    forward.install()
    try:
        result = prepared.run(stdin=stdin, timeout=timeout, on_start=started)
    finally:
        forward.stop()
        if raw is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, raw)
    status = result.status
    assert status is not None
    if status.timed_out:
        _say(f"timed out after {parsed.timeout} seconds: the sandbox was killed")
    if parsed.json_status is not None:
        import json

        text = json.dumps(status.to_json(), indent=2) + "\n"
        if parsed.json_status == "-":
            sys.stdout.flush()
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            try:
                with open(parsed.json_status, "w", encoding="utf-8") as f:
                    f.write(text)
            except OSError as exc:
                _say(f"--json-status {parsed.json_status}: {(exc.strerror or str(exc)).lower()}")
                return 125
    return status.returncode


def main(argv: Sequence[str], *, exit_when_done: bool = False) -> int:
    """``pynsbind-run sandbox ARGV``; its exit status.  With ``exit_when_done``
    (the command line's own process) the process exits there, once stdout and
    stderr are flushed: an interpreter that ran one sandbox has nothing left to
    tear down but its modules, which takes longer than some sandboxes."""
    code = _main(argv)
    if exit_when_done:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    return code


def _main(argv: Sequence[str]) -> int:
    try:
        parsed = parse(argv, OPTIONS, stop_at_positional=True)
    except UsageError as exc:
        _say(f"{exc} (see: {_PROG} --help)")
        return 125
    if parsed.help:
        sys.stdout.write(
            help_text(f"{_PROG} [OPTIONS] [--] COMMAND [ARG...]", _DESCRIPTION, OPTIONS, _EPILOG)
        )
        return 0
    if not parsed.args:
        _say(
            f"give a command to run: {_PROG} [OPTIONS] [--] COMMAND [ARG...] (see: {_PROG} --help)"
        )
        return 125
    key = _replay_key(argv, parsed)
    if key is not None:
        code = _replay(key, parsed)
        if code is not None:
            return code
    from pynsbind.errors import SpawnError, SpecError

    try:
        from pynsbind.sandbox import explain_error, prepare

        prepared = prepare(parsed.args, **_options(parsed))
        if parsed.debug:
            from pynsbind import explain

            sys.stderr.write(explain(prepared.spec) + "\n")
        return _run(prepared, parsed, key)
    except UsageError as exc:
        _say(str(exc))
        return 125
    except (SpecError, SpawnError) as exc:
        message, code = explain_error(exc)
        _say(message)
        return code
    except KeyboardInterrupt:
        return 130
