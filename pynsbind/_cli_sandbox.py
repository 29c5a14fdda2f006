"""pynsbind-run sandbox [OPTIONS] -- COMMAND [ARG...]

Run COMMAND in a quick sandbox: new pid, mount, uts, ipc, net and cgroup
namespaces; the host's root read-only (or --rootfs DIR); its own /proc, a
minimal /dev, fresh /tmp, /run and /var/tmp; no network; an init at PID 1.
Always in a user namespace: as a plain user it is rootless; run by root, the
sandbox's root (or --user) is the host's unprivileged "nobody" (65534), so the
host's files and sockets see nobody.  Exits with the command's status (128+N for
a signal N, as shells do).
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    s = argparse.ArgumentParser(
        prog="pynsbind-run sandbox",
        description="Run COMMAND in a sandbox: new namespaces, the host's root read-only "
        "(or --rootfs), private /proc, /dev and /tmp, no network.",
    )
    s.add_argument(
        "--rootfs", metavar="DIR", help="root filesystem (default: the host's, read-only)"
    )
    s.add_argument("--rw", action="store_true", help="leave the root filesystem writable")
    s.add_argument(
        "--bind", metavar="SRC[:DST]", action="append", default=[], help="bind a host path"
    )
    s.add_argument(
        "--ro-bind", metavar="SRC[:DST]", action="append", default=[], help="bind read-only"
    )
    s.add_argument("--tmpfs", metavar="DST", action="append", default=[], help="a tmpfs at DST")
    s.add_argument("--net", action="store_true", help="share the host's network")
    s.add_argument("--hostname", default="sandbox")
    s.add_argument("--env", metavar="K=V", action="append", default=[], help="set a variable")
    s.add_argument("--cwd", help="working directory (default: the current one, or /)")
    s.add_argument("--user", metavar="UID[:GID]", help="run as this uid (and gid)")
    s.add_argument("--cap", metavar="CAP", action="append", help="keep only these capabilities")
    s.add_argument("--memory", metavar="SIZE", help="memory limit, e.g. 256M")
    s.add_argument("--pids", metavar="N", type=int, help="limit on the number of processes")
    s.add_argument("--timeout", type=float, help="kill the command after this many seconds")
    s.add_argument("--no-init", action="store_true", help="run the command as PID 1 itself")
    s.add_argument("--debug", action="store_true", help="print the plan before running it")
    s.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG...]")
    return s


def _binds(items: list[str], readonly: bool) -> list[object]:
    from pynsbind import Mount

    out: list[object] = []
    for item in items:
        src, _, dst = item.partition(":")
        out.append(Mount.bind(os.path.abspath(src), dst or os.path.abspath(src), readonly=readonly))
    return out


#: the host id root's sandboxes run as (nobody, nogroup)
NOBODY = 65534


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


def _sandbox(args: argparse.Namespace) -> int:
    import pynsbind
    from pynsbind import Mount, Namespace, Spec
    from pynsbind.spec import DEFAULT_PATH, default_namespaces

    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise SystemExit("pynsbind-run sandbox: give a command after --")
    env = {"PATH": DEFAULT_PATH, "HOME": "/tmp"}
    if "TERM" in os.environ:
        env["TERM"] = os.environ["TERM"]
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"pynsbind-run sandbox: --env wants K=V, not {item!r}")
        env[key] = value
    ns = default_namespaces()
    if args.net:
        ns &= ~Namespace.NET
    mounts: list[object] = list(pynsbind.default_mounts())
    if args.net:
        mounts = [m for m in mounts if getattr(m, "kind", "") != "sysfs"]
    private = ["/tmp"]
    if args.rootfs is None:
        # the host's own /run and /var/tmp hold its sockets and state: private
        # ones instead (/var/run is a link to /run on every current distribution)
        private += [d for d in ("/run", "/var/tmp") if os.path.isdir(d) and not os.path.islink(d)]
    mounts += [Mount.tmpfs(d, mode=0o1777 if d != "/run" else 0o755) for d in private]
    mounts += _binds(args.bind, False) + _binds(args.ro_bind, True)
    mounts += [Mount.tmpfs(t) for t in args.tmpfs]
    user: int | tuple[int, int] = 0
    if args.user:
        uid, _, gid = args.user.partition(":")
        user = (int(uid), int(gid or uid))
    uid, gid = (user, user) if isinstance(user, int) else user
    fields: dict[str, object] = {}
    if os.geteuid() == 0:
        # root's sandbox is nobody on the host: a user namespace whose only id
        # (the sandbox's root, or --user) is the host's 65534
        ns |= Namespace.USER
        fields["uid_map"] = [(uid, NOBODY, 1)]
        fields["gid_map"] = [(gid, NOBODY, 1)]
    cwd = args.cwd
    if cwd is None:
        # the current directory, when the sandbox shows it (the host's root, and
        # not under a tmpfs of the sandbox's) and its user may enter it; else /
        here = os.getcwd()
        hidden = any(
            here == t or here.startswith(t.rstrip("/") + "/") for t in [*private, *args.tmpfs]
        )
        visible = args.rootfs is None and not hidden
        cwd = here if visible and (os.geteuid() != 0 or _others_may_enter(here)) else "/"
    if args.memory or args.pids:
        from pynsbind.cgroups import Resources

        fields["resources"] = Resources(memory_max=args.memory, pids_max=args.pids)
    spec = Spec(
        args=argv,
        env=env,
        cwd=cwd,
        rootfs=args.rootfs,
        hostname=args.hostname,
        namespaces=ns,
        mounts=mounts,  # type: ignore[arg-type]
        readonly_rootfs=not args.rw,
        user=user,
        capabilities=args.cap,
        init=not args.no_init,
        **fields,  # type: ignore[arg-type]
    )
    if args.debug:
        print(pynsbind.explain(spec), file=sys.stderr)
    rc = pynsbind.run(spec=spec, timeout=args.timeout).returncode
    return 128 - rc if rc < 0 else rc


def main(argv: Sequence[str]) -> int:
    """``pynsbind-run sandbox ARGV``."""
    import subprocess

    from pynsbind.errors import SpawnError, SpecError

    args = _parser().parse_args(argv)
    try:
        return _sandbox(args)
    except SpecError as exc:
        print(f"pynsbind-run: invalid spec: {exc}", file=sys.stderr)
        return 125
    except SpawnError as exc:
        print(f"pynsbind-run: {exc}", file=sys.stderr)
        if exc.step and exc.step.startswith("exec"):
            return 127 if exc.errno == errno.ENOENT else 126  # as shells say it
        return 125
    except subprocess.TimeoutExpired as exc:
        print(f"pynsbind-run: timed out after {exc.timeout} seconds", file=sys.stderr)
        return 124
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
