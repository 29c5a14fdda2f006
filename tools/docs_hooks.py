"""mkdocs hooks (mkdocs.yml ``hooks:``): the command-line reference, generated at
build time from ``pynsbind-run --help`` and each subcommand's ``--help``, so the
site never shows a copy that has gone stale.  Also usable alone:
``python tools/docs_hooks.py`` prints the page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

CLI_PAGE = "cli.md"

_INTRO = """\
# Command line: `pynsbind-run`

`pynsbind-run` is installed with the package (also `python -m pynsbind`).  This
page is generated when the site is built, from the `--help` of the command and
of each subcommand, so it is the help of the version the site was built from.

Exit status: the command's own; 128+N when it was killed by signal N; 125 when
pynsbind itself failed (an invalid spec, a step the kernel refused); 126 when the
command cannot be executed; 127 when it is not found; 124 on `--timeout`
([Errors](errors.md)).  Recipes: [Sandbox recipes](sandbox.md).
"""


def _help(*args: str) -> str:
    """The help text of ``pynsbind-run ARGS --help``, as a user's terminal of 80
    columns shows it (no colour)."""
    env = dict(os.environ, COLUMNS="80", NO_COLOR="1", PYTHON_COLORS="0")
    res = subprocess.run(
        [sys.executable, "-m", "pynsbind", *args, "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(
            f"pynsbind-run {' '.join(args)} --help: exit {res.returncode}: {res.stderr}"
        )
    return res.stdout.rstrip() + "\n"


def subcommands(top_help: str) -> list[str]:
    """The subcommands named in the top-level usage line: ``{sandbox,features}``."""
    found = re.search(r"\{([a-z0-9_,-]+)\}", top_help)
    if found is None:
        raise RuntimeError("pynsbind-run --help names no subcommand")
    return found.group(1).split(",")


def cli_page() -> str:
    """The whole command-line reference page, in Markdown."""
    top = _help()
    parts = [_INTRO, "## `pynsbind-run`\n", "```text\n" + top + "```\n"]
    for name in subcommands(top):
        parts.append(f"## `pynsbind-run {name}`\n")
        parts.append("```text\n" + _help(name) + "```\n")
    return "\n".join(parts)


def on_files(files: Any, config: Any) -> Any:
    """Add the generated cli.md to the site's files (mkdocs >= 1.6)."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, CLI_PAGE, content=cli_page()))
    return files


if __name__ == "__main__":
    sys.stdout.write(cli_page())
