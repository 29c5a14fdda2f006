"""pynsbind-run: the reference command line.

  pynsbind-run [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS...]

An OCI runtime with runc's command line (create, start, run, state, list, kill,
delete, pause, resume, ps, exec, update, events, features, spec), which podman
and containerd drive like runc, and ``sandbox``, a quick sandbox for a command.
Each loads only what it uses: a runtime is started once per operation.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]

_OVERVIEW = """\
Run Linux containers with pynsbind.

commands:
  sandbox      run a command in a sandbox, with docker run's options (see: sandbox --help)
  create       create a container from an OCI bundle
  start        start a created container
  run          create and start a container
  state        print a container's state
  list         list containers
  kill         signal a container
  delete       delete a container
  pause        freeze a container
  resume       thaw a paused container
  ps           list a container's processes
  exec         run a process in a running container
  update       change a container's resources
  events       print a container's statistics
  features     what this runtime supports (JSON; --kernel: what this kernel can do)
  spec         write a default config.json

Each command has --help.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """The entry point of ``pynsbind-run``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["sandbox"]:
        # the sandbox's start-up is counted: nothing of the runtime is loaded
        from pynsbind._cli_sandbox import main as sandbox

        return sandbox(args[1:], exit_when_done=argv is None)
    from pynsbind._args import UsageError, help_text, parse
    from pynsbind._cli_runtime import COMMANDS, GLOBAL_OPTIONS, version_text

    try:
        g = parse(args, GLOBAL_OPTIONS, stop_at_positional=True)
    except UsageError as exc:
        sys.stderr.write(f"pynsbind-run: {exc}\n")
        return 1
    if g.version:
        sys.stdout.write(version_text())
        return 0
    if not g.args or g.help:
        usage = "pynsbind-run [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS...]"
        sys.stdout.write(help_text(usage, _OVERVIEW, GLOBAL_OPTIONS, ""))
        return 0 if g.help else 1
    command, rest = g.args[0], g.args[1:]
    if command == "sandbox":
        from pynsbind._cli_sandbox import main as sandbox

        return sandbox(rest, exit_when_done=argv is None)
    if command not in COMMANDS:
        from pynsbind._args import closest

        near = closest(command, [*COMMANDS, "sandbox"])
        hint = f" (did you mean {near}?)" if near else ""
        sys.stderr.write(f"pynsbind-run: unknown command {command!r}{hint}\n")
        return 1
    from pynsbind._cli_runtime import main as runtime

    return runtime(rest, command, g)


if __name__ == "__main__":
    sys.exit(main())
