"""mkdocs hooks (mkdocs.yml ``hooks:``), so that the site never shows a copy that
has gone stale:

- the command-line reference (cli.md), generated at build time from
  ``pynsbind-run --help`` and each subcommand's ``--help``;
- in the API reference, the Sphinx roles of the docstrings (:func:`spawn`,
  :class:`~pynsbind.cgroups.Cgroup`) are shown as code, as Sphinx shows them;
- in performance.md, the comment ``<!-- generated: spawn-numbers -->`` becomes the
  section "Numbers on the development machine" of benchmarks/README.md, and
  ``<!-- generated: charts -->`` the charts found in docs/img/benchmarks/ (only
  files that exist: none is a sentence that says so).

``python tools/docs_hooks.py`` prints the command-line page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

CLI_PAGE = "cli.md"
CHECKOUT = Path(__file__).resolve().parent.parent
BENCH_README = CHECKOUT / "benchmarks" / "README.md"
NUMBERS_HEADING = "### Numbers on the development machine"
CHARTS = CHECKOUT / "docs" / "img" / "benchmarks"

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


def subcommands(top_help: str) -> dict[str, str]:
    """The commands the top-level help lists, with their one-line descriptions:
    an argparse ``{sandbox,features}`` with its ``positional arguments``, or a
    ``commands:`` section of ``NAME   description`` lines."""
    found: dict[str, str] = {}
    section = re.search(r"^commands:\n((?:  \S.*\n?)+)", top_help, re.M)
    if section is not None:
        for line in section.group(1).splitlines():
            name, _, what = line.strip().partition(" ")
            found[name] = what.strip()
    else:
        choices = re.search(r"\{([a-z0-9_,-]+)\}", top_help)
        for name in choices.group(1).split(",") if choices else ():
            what = re.search(rf"^    {re.escape(name)}\s+(.*)$", top_help, re.M)
            found[name] = what.group(1).strip() if what else ""
    if not found:
        raise RuntimeError("pynsbind-run --help names no command")
    return found


def cli_page() -> str:
    """The whole command-line reference page, in Markdown.  A command whose
    ``--help`` prints no usage line (it has no options) is described by its line
    of the top-level help."""
    top = _help()
    parts = [_INTRO, "## `pynsbind-run`\n", "```text\n" + top + "```\n"]
    for name, what in subcommands(top).items():
        parts.append(f"## `pynsbind-run {name}`\n")
        text = _help(name)
        if text.startswith("usage:"):
            parts.append("```text\n" + text + "```\n")
        else:
            parts.append(f"`pynsbind-run {name}`: {what}.  It takes no option.\n")
    return "\n".join(parts)


def spawn_numbers() -> str:
    """The section of benchmarks/README.md with the spawn benchmark's numbers,
    its heading left out (the page gives its own)."""
    text = BENCH_README.read_text()
    start = text.find(NUMBERS_HEADING)
    if start < 0:
        raise RuntimeError(f"{BENCH_README}: no section {NUMBERS_HEADING!r}")
    body = text[start + len(NUMBERS_HEADING) :]
    end = re.search(r"^#{1,3} ", body, re.M)
    return (body[: end.start()] if end else body).strip() + "\n"


def charts() -> str:
    """Markdown that shows every chart in docs/img/benchmarks/, or says there is none."""
    found = sorted(p for p in CHARTS.glob("*") if p.suffix in (".svg", ".png"))
    if not found:
        return (
            "No chart has been generated in this checkout: the benchmarks write them "
            "into `docs/img/benchmarks/`.\n"
        )
    parts = []
    for chart in found:
        title = chart.stem.replace("-", " ").replace("_", " ")
        parts.append(f"![{title}](img/benchmarks/{chart.name})\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Fill the generated parts of performance.md."""
    if page.file.src_uri != "performance.md":
        return markdown
    markdown = markdown.replace("<!-- generated: spawn-numbers -->", spawn_numbers())
    return markdown.replace("<!-- generated: charts -->", charts())


ROLE = re.compile(r":(?:func|meth|class|mod|attr|data|exc|obj):<code>(~?)([^<]+)</code>")


def sphinx_roles(html: str) -> str:
    """``:func:<code>x</code>`` (a role as Markdown renders it) becomes ``<code>x</code>``;
    ``~a.b.C`` shows ``C``, as Sphinx does."""

    def show(m: re.Match[str]) -> str:
        name = m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2)
        return f"<code>{name}</code>"

    return ROLE.sub(show, html)


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Clean the roles out of the pages generated from docstrings."""
    if page.file.src_uri.startswith("reference/"):
        return sphinx_roles(html)
    return html


def on_files(files: Any, config: Any) -> Any:
    """Add the generated cli.md to the site's files (mkdocs >= 1.6)."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, CLI_PAGE, content=cli_page()))
    return files


if __name__ == "__main__":
    sys.stdout.write(cli_page())
