"""pynsbind-run: the reference command line.

  pynsbind-run sandbox [OPTIONS] -- COMMAND [ARG...]
      Run COMMAND in a quick sandbox (see: pynsbind-run sandbox --help).
  pynsbind-run features
      What this kernel and build support.

Each command loads only what it uses (argparse and the engine are not free to
import, and a command line is started once per use).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]

_USAGE = """\
usage: pynsbind-run COMMAND [OPTIONS] [ARGS...]

Run Linux containers with pynsbind.

commands:
  sandbox      run a command in a sandbox, with docker run's options (see: sandbox --help)
  features     what this kernel and build support
"""


def _features() -> int:
    from pynsbind import features
    from pynsbind._record import fields

    found = features()
    for f in fields(found):
        print(f"{f.name}: {getattr(found, f.name)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The entry point of ``pynsbind-run``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(_USAGE)
        return 0 if args else 1
    command, rest = args[0], args[1:]
    if command == "sandbox":
        from pynsbind._cli_sandbox import main as sandbox

        return sandbox(rest, exit_when_done=argv is None)
    if command == "features":
        if rest in (["-h"], ["--help"]):
            sys.stdout.write("usage: pynsbind-run features\n\nWhat this kernel supports.\n")
            return 0
        if rest:
            sys.stderr.write(f"pynsbind-run features: unexpected arguments {rest}\n")
            return 1
        return _features()
    from pynsbind._args import closest

    near = closest(command, ["sandbox", "features"])
    hint = f" (did you mean {near}?)" if near else ""
    sys.stderr.write(f"pynsbind-run: unknown command {command!r}{hint}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
