"""pynsbind._args (through pynsbind.testing.cli_args): the option syntax that
runc's callers and docker's users write.  Pure logic."""

from __future__ import annotations

import pytest

from pynsbind.testing import cli_args

Option = cli_args.Option

OPTIONS = [
    Option("--bundle", "-b", value=True, metavar="DIR", help="the bundle"),
    Option("--detach", "-d", help="detach"),
    Option("--tty", "-t", help="a terminal", group="process"),
    Option("--interactive", "-i", help="keep stdin", group="process"),
    Option("--env", "-e", many=True, metavar="K=V", help="a variable", group="process"),
    Option("--preserve-fds", value=True, default="0", help="fds"),
]


def test_every_spelling_of_an_option() -> None:
    for argv in (
        ["--bundle", "/b"],
        ["--bundle=/b"],
        ["-bundle", "/b"],  # Go's flag package: one dash, a long name
        ["-bundle=/b"],
        ["-b", "/b"],
    ):
        assert cli_args.parse(argv, OPTIONS).bundle == "/b", argv
    p = cli_args.parse([], OPTIONS)
    assert (p.bundle, p.detach, p.env, p.preserve_fds, p.args) == (None, False, [], "0", [])


def test_booleans_bundles_repeats_and_positionals() -> None:
    p = cli_args.parse(["-it", "-e", "A=1", "--env=B=2", "--detach=false", "id"], OPTIONS)
    assert (p.tty, p.interactive, p.detach, p.env, p.args) == (
        True,
        True,
        False,
        ["A=1", "B=2"],
        ["id"],
    )
    assert cli_args.parse(["--detach=true"], OPTIONS).detach is True
    # options stop at the first positional when a command line follows
    p = cli_args.parse(["-d", "id", "sh", "-c", "x", "--tty"], OPTIONS, stop_at_positional=True)
    assert p.detach and not p.tty and p.args == ["id", "sh", "-c", "x", "--tty"]
    p = cli_args.parse(["--", "-d"], OPTIONS)
    assert not p.detach and p.args == ["-d"]
    # the last of bundled shorts may take the next word as its value
    assert cli_args.parse(["-de", "X=1"], OPTIONS).env == ["X=1"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bundel", "x"], "unknown option --bundel (did you mean --bundle?)"),
        (["-x"], "unknown option -x"),
        (["--bundle"], "option --bundle needs a value (DIR)"),
        (["--detach=maybe"], "option --detach takes true or false, not 'maybe'"),
        (["-eb"], "option -e needs a value"),
    ],
)
def test_bad_options_name_themselves(argv: list[str], message: str) -> None:
    with pytest.raises(cli_args.UsageError) as info:
        cli_args.parse(argv, OPTIONS)
    assert str(info.value) == message


def test_help_lists_options_by_group() -> None:
    text = cli_args.help_text("prog [OPTIONS]", "Does things.", OPTIONS, "Examples: none")
    lines = text.splitlines()
    assert lines[0] == "usage: prog [OPTIONS]" and "Does things." in lines
    assert lines.index("options:") < lines.index("process:")
    assert any(line.split()[:3] == ["--bundle,", "-b", "DIR"] for line in lines)
    assert lines[-1] == "Examples: none"
    assert cli_args.closest("delte", ["create", "delete", "state"]) == "delete"
    assert cli_args.closest("zzz", ["start"]) is None
