"""A small command-line parser for pynsbind-run: what its callers send, parsed
without argparse (which costs more to import than a container costs to start).

It takes options the way runc's callers (Go's flag package) and docker's users
write them: ``--name value``, ``--name=value``, ``-name value`` (one dash, a
long name), ``-n value``, bundled short booleans (``-it``), ``--flag=false``;
options stop at the first positional argument (for commands that take a
command line after their own arguments) or at ``--``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Option", "Parsed", "UsageError", "closest", "help_text", "parse"]

_TRUE = ("true", "1", "yes", "t")
_FALSE = ("false", "0", "no", "f")


class UsageError(Exception):
    """A command line that does not parse: the message names the option."""


class Option:
    """One option: its names (``("--bundle", "-b")``), whether it takes a value
    (``value``) and may repeat (``many``), its default, its help line and the
    group its help is listed under."""

    __slots__ = ("default", "dest", "group", "help", "many", "metavar", "names", "value")

    def __init__(
        self,
        *names: str,
        value: bool = False,
        many: bool = False,
        default: object = None,
        metavar: str = "VALUE",
        help: str = "",
        group: str = "options",
    ) -> None:
        self.names = names
        # the first long name (--volume of -v, --volume), else the first
        first = next((n for n in names if n.startswith("--")), names[0])
        self.dest = first.lstrip("-").replace("-", "_")
        self.value = value or many
        self.many = many
        if default is None:
            default = [] if many else (None if self.value else False)
        self.default = default
        self.metavar = metavar
        self.help = help
        self.group = group


class Parsed:
    """The options by ``dest`` (``parsed.bundle``) and the positional arguments
    (``parsed.args``)."""

    def __init__(self, values: dict[str, object], args: list[str]) -> None:
        self.values = values
        self.args = args

    def __getattr__(self, name: str) -> object:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def get(self, name: str) -> object:
        return self.values.get(name)


def _distance(a: str, b: str) -> int:
    """Edits from a to b: insertions, deletions, substitutions and swaps of two
    neighbours (the optimal string alignment distance)."""
    rows = [list(range(len(b) + 1))]
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            best = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                best = min(best, rows[-2][j - 2] + 1)
            row.append(best)
        rows.append(row)
    return rows[-1][-1]


def closest(word: str, names: Sequence[str]) -> str | None:
    """The known name nearest to ``word`` (for "did you mean"): the fewest
    edits (a swap of two letters is one), at most a third of its length."""
    limit = len(word) // 3
    found = sorted((_distance(word, name), name) for name in names)
    return found[0][1] if found and found[0][0] <= limit else None


def parse(
    argv: Sequence[str], options: Sequence[Option], *, stop_at_positional: bool = False
) -> Parsed:
    """Parse ``argv``; UsageError names a bad option (and the nearest known one)."""
    by_name: dict[str, Option] = {}
    for known in options:
        for name in known.names:
            by_name[name] = known
            if name.startswith("--"):
                by_name[name[1:]] = known  # Go's flag package: -name is --name
    values: dict[str, object] = {}
    for o in options:
        values[o.dest] = list(o.default) if isinstance(o.default, list) else o.default
    args: list[str] = []
    i = 0
    argv = list(argv)
    while i < len(argv):
        word = argv[i]
        i += 1
        if word == "--":
            args += argv[i:]
            break
        if not word.startswith("-") or word == "-":
            args.append(word)
            if stop_at_positional:
                args += argv[i:]
                break
            continue
        name, eq, inline = word.partition("=")
        opt: Option | None = by_name.get(name)
        if opt is None and not name.startswith("--") and len(name) > 2 and not eq:
            # bundled short options: -it is -i -t (the last may take a value)
            shorts = [by_name.get("-" + c) for c in name[1:]]
            if all(short is not None for short in shorts):
                for j, short in enumerate(shorts):
                    assert short is not None
                    if short.value:
                        if j != len(shorts) - 1:
                            raise UsageError(f"option -{name[j + 1]} needs a value")
                        if i >= len(argv):
                            raise UsageError(f"option -{name[j + 1]} needs a value")
                        _store(values, short, argv[i])
                        i += 1
                    else:
                        values[short.dest] = True
                continue
        if opt is None:
            longs = sorted(n for n in by_name if n.startswith("--"))
            near = closest(name if name.startswith("--") else "-" + name, longs)
            hint = f" (did you mean {near}?)" if near else ""
            raise UsageError(f"unknown option {name}{hint}")
        if not opt.value:
            if eq:
                low = inline.lower()
                if low not in _TRUE + _FALSE:
                    raise UsageError(f"option {name} takes true or false, not {inline!r}")
                values[opt.dest] = low in _TRUE
            else:
                values[opt.dest] = True
            continue
        if eq:
            value = inline
        else:
            if i >= len(argv):
                raise UsageError(f"option {name} needs a value ({opt.metavar})")
            value = argv[i]
            i += 1
        _store(values, opt, value)
    return Parsed(values, args)


def _store(values: dict[str, object], opt: Option, value: str) -> None:
    if opt.many:
        found = values[opt.dest]
        assert isinstance(found, list)
        found.append(value)
    else:
        values[opt.dest] = value


def help_text(usage: str, description: str, options: Sequence[Option], epilog: str = "") -> str:
    """A help page: usage, description, the options by group, then the epilog."""
    out = [f"usage: {usage}", "", description.strip(), ""]
    groups: dict[str, list[Option]] = {}
    for opt in options:
        groups.setdefault(opt.group, []).append(opt)
    for group, opts in groups.items():
        out.append(f"{group}:")
        for opt in opts:
            names = ", ".join(opt.names)
            if opt.value:
                names += f" {opt.metavar}"
            if len(names) <= 26:
                out.append(f"  {names:<26} {opt.help}".rstrip())
            else:
                out.append(f"  {names}")
                out.append(f"  {'':<26} {opt.help}".rstrip())
        out.append("")
    if epilog:
        out.append(epilog.strip())
        out.append("")
    return "\n".join(out)
