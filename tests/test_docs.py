"""The documentation runs: every ```python, ```pycon, ```console and ```sh block of
README.md and docs/ is executed, page by page, and the output a page shows is
the output printed (tests/doc_blocks.py says how, and how a block is marked not
to run).  Also: the diagrams are those tools/diagrams.py makes, the command-line
reference is generated from the real --help, and the site builds offline with
``mkdocs build --strict`` (when the ``docs`` extra is installed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.doc_blocks import RUN, Block, console_commands, dump, output_matches, pages, parse
from tests.helpers import find_busybox, pynsbind_cgroups, remove_cgroups

if TYPE_CHECKING:
    from collections.abc import Iterator

CHECKOUT = Path(__file__).resolve().parent.parent


def _blocks() -> dict[str, list[Block]]:
    found = {}
    for page in pages(CHECKOUT):
        rel = str(page.relative_to(CHECKOUT))
        blocks = parse(page.read_text(), rel)
        if any(b.lang in RUN and b.skip is None and b.file is None for b in blocks):
            found[rel] = blocks
    return found


BLOCKS = _blocks()


# ---- the parser and the matcher themselves (pure) ----------------------------------------


def test_parse_finds_languages_marks_and_lines() -> None:
    text = (
        "# t\n\n```python\nx = 1\n```\n\n<!-- doc-test: skip a fragment -->\n"
        "```python\ny(\n```\n\n```text\nout\n```\n"
    )
    blocks = parse(text, "p.md")
    assert [(b.line, b.lang, b.code, b.skip) for b in blocks] == [
        (3, "python", "x = 1\n", None),
        (8, "python", "y(\n", "a fragment"),
        (12, "text", "out\n", None),
    ]


def test_a_skip_needs_a_reason_and_marks_are_known() -> None:
    with pytest.raises(ValueError, match="needs its reason"):
        parse("<!-- doc-test: skip -->\n```sh\ntrue\n```\n", "p.md")
    with pytest.raises(ValueError, match="plain file name"):
        parse("<!-- doc-test: file ../x -->\n```python\npass\n```\n", "p.md")
    assert parse("<!-- doc-test: file x.py -->\n```python\npass\n```\n", "p.md")[0].file == "x.py"
    with pytest.raises(ValueError, match="unknown doc-test mark"):
        parse("<!-- doc-test: maybe -->\n```sh\ntrue\n```\n", "p.md")


def test_console_blocks_split_into_commands_and_output() -> None:
    code = "$ echo a \\\n  b\na b\n$ true\n"
    assert console_commands(code) == [("echo a \\\n  b", ["a b"]), ("true", [])]
    with pytest.raises(ValueError, match="expected"):
        console_commands("output first\n")


def test_output_matching_with_ellipsis() -> None:
    assert output_matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert output_matches(["a", "...", "d"], ["a", "d"])
    assert output_matches(["pid ..."], ["pid 2"])
    assert not output_matches(["a", "d"], ["a", "b", "d"])
    assert not output_matches(["a"], ["a", "b"])
    assert not output_matches(["pid ..."], ["uid 2"])


def test_every_page_has_its_skips_justified() -> None:
    """Exceptions stay few: at most a handful of skipped blocks in all the docs."""
    skipped = [b.where for blocks in BLOCKS.values() for b in blocks if b.skip is not None]
    assert len(skipped) <= 12, skipped


# ---- the pages, run --------------------------------------------------------------------


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A directory every user can reach (a rootless example's container must
    reach its rootfs), with ``.venv`` pointing at the environment of the tests."""
    top = Path(tempfile.mkdtemp(prefix="pynsbind-docs-"))
    os.chmod(top, 0o755)
    (top / ".venv").symlink_to(sys.prefix)
    yield top
    shutil.rmtree(top, ignore_errors=True)


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(BLOCKS))
def test_page_runs(page: str, workdir: Path, tmp_path: Path, host_unchanged: object) -> None:
    if find_busybox() is None:
        pytest.skip("the examples use a static busybox (Debian: busybox-static)")
    spec = tmp_path / "blocks.json"
    dump(BLOCKS[page], spec)
    env = dict(os.environ, PYTHONPATH=str(CHECKOUT))
    worker = subprocess.Popen(
        [sys.executable, str(CHECKOUT / "tests" / "doc_blocks.py"), str(spec)],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        out, err = worker.communicate(timeout=500)
    finally:
        worker.kill()
        worker.wait()
        # what a failed example left (its cgroups carry the worker's pid), so that
        # one failure does not spread; a page that passes must have left nothing
        left = sorted(pynsbind_cgroups(pid=worker.pid))
        remove_cgroups(left, kill=True)
    assert worker.returncode == 0, out[-6000:] + err[-6000:]
    ran = re.findall(r"^== (\S+) \((\w+)\)$", out, re.M)
    runnable = [b for b in BLOCKS[page] if (b.lang in RUN or b.file) and b.skip is None]
    assert [w for w, _ in ran] == [b.where for b in runnable]
    assert left == [], "an example left a cgroup"


# ---- what the site is built from -------------------------------------------------------------


def _docs_hooks() -> Any:
    """tools/docs_hooks.py, the mkdocs hooks (not a package: loaded by path)."""
    sys.path.insert(0, str(CHECKOUT / "tools"))
    try:
        import docs_hooks
    finally:
        sys.path.remove(str(CHECKOUT / "tools"))
    return docs_hooks


def test_diagrams_are_those_the_script_makes() -> None:
    res = subprocess.run(
        [sys.executable, str(CHECKOUT / "tools" / "diagrams.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr


def test_cli_reference_is_the_real_help() -> None:
    docs_hooks = _docs_hooks()
    page = docs_hooks.cli_page()
    top = subprocess.run(
        [sys.executable, "-m", "pynsbind", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, COLUMNS="80"),
    ).stdout
    names = docs_hooks.subcommands(top)
    assert {"sandbox", "features"} <= set(names)
    for name in names:
        assert f"## `pynsbind-run {name}`" in page
    assert "usage: pynsbind-run sandbox" in page
    assert "--rootfs DIR" in page


def test_cli_commands_are_found_in_either_form_of_help() -> None:
    docs_hooks = _docs_hooks()
    argparse_help = (
        "usage: pynsbind-run [-h] {sandbox,features} ...\n\npositional arguments:\n"
        "  {sandbox,features}\n    sandbox           run a command in a quick sandbox\n"
        "    features          what this kernel and build support\n"
    )
    listed = (
        "usage: x\n\ncommands:\n  sandbox      run a command\n  features     what it supports\n"
    )
    assert docs_hooks.subcommands(argparse_help) == {
        "sandbox": "run a command in a quick sandbox",
        "features": "what this kernel and build support",
    }
    assert docs_hooks.subcommands(listed) == {
        "sandbox": "run a command",
        "features": "what it supports",
    }
    with pytest.raises(RuntimeError, match="names no command"):
        docs_hooks.subcommands("usage: nothing\n")


def test_sphinx_roles_become_code() -> None:
    docs_hooks = _docs_hooks()
    html = "Made by :func:<code>spawn</code>; a :class:<code>~pynsbind.cgroups.Cgroup</code>."
    assert docs_hooks.sphinx_roles(html) == "Made by <code>spawn</code>; a <code>Cgroup</code>."


def test_site_builds_offline_and_strict(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).parent / "mkdocs"
    if not mkdocs.exists():
        pytest.skip("the docs extra is not installed (pip install -e '.[docs]')")
    site = tmp_path / "site"
    res = subprocess.run(
        [
            str(mkdocs),
            "build",
            "--strict",
            "-q",
            "-f",
            str(CHECKOUT / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    loads = []
    for page in site.rglob("*.html"):
        html = page.read_text()
        loads += re.findall(r'(?:src|srcset)="((?:https?:)?//[^"]+)"', html)
        loads += re.findall(r'<link[^>]+href="((?:https?:)?//[^"]+)"', html)
        assert 'class="mermaid"' not in html, f"{page}: mermaid loads its script from a CDN"
    for css in site.rglob("*.css"):
        loads += re.findall(r"url\(['\"]?((?:https?:)?//[^)'\"]+)", css.read_text())
    assert loads == [], "the site loads from the network"
    for name in ("cli.html", "tutorial.html", "reference/pynsbind.html", "img/layers.svg"):
        assert (site / name).exists(), name
