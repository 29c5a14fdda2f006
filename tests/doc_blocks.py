"""The code blocks of the documentation (docs/**/*.md and README.md), and what
runs them.  tests/test_docs.py collects the pages; each page runs in a fresh
Python process (``python tests/doc_blocks.py BLOCKS.json``), in a temporary
directory, its blocks in order, sharing one namespace as a reader who types
them one after the other would.

What runs, by the fence's language:

- ``python``: executed; it must not raise (examples check themselves with
  ``assert`` where that helps the reader);
- ``pycon``: ``>>>`` examples, run with doctest in the same namespace; the
  output shown must be the output printed (``...`` matches anything), also what
  a container writes to the terminal;
- ``console``: ``$ command`` lines run by bash, each followed by the output it
  must print (stdout and stderr together; ``...`` on a line of its own matches
  any lines, inside a line any text); each command must exit 0;
- ``sh``: the whole block run by ``bash -euo pipefail``; it must exit 0.

Any other language (``text``, ``c``, none) is shown, never run.  A block that
must not run (a fragment, a command that runs the whole CI) is marked by the
HTML comment ``<!-- doc-test: skip REASON -->`` on the line just before its
fence; the reason is required.  ``<!-- doc-test: file NAME -->`` there writes
the block to the file NAME instead of running it (a script that a later
``console`` block runs, as another user for instance).

In the directory a page runs in, ``.venv`` is the virtual environment the tests
run from, and its ``bin`` comes first in ``PATH`` (``pynsbind-run``,
``python3``), as for a reader who has installed pynsbind.
"""

from __future__ import annotations

import doctest
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RUN = ("python", "pycon", "console", "sh")
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>[^`]*)$")
MARK = re.compile(r"^<!--\s*doc-test:\s*(?P<what>[a-z-]+)\s*(?P<arg>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    page: str  # the path of the page, relative to the checkout
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: str | None  # the reason, for a block marked skip
    file: str | None = None  # the file to write the block to, for a block marked file

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def parse(text: str, page: str) -> list[Block]:
    """Every fenced block of a Markdown page, with its language and its mark."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if opened is None:
            i += 1
            continue
        indent, fence = len(opened["indent"]), opened["fence"]
        lang = opened["info"].strip().split(" ")[0].strip("{}.") if opened["info"].strip() else ""
        mark = MARK.match(lines[i - 1].strip()) if i > 0 else None
        body = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        skip = file = None
        if mark is not None:
            if mark["what"] not in ("skip", "file"):
                raise ValueError(f"{page}:{i}: unknown doc-test mark {mark['what']!r}")
            if mark["what"] == "skip" and not mark["arg"]:
                raise ValueError(f"{page}:{i}: a doc-test skip needs its reason")
            if mark["what"] == "file" and not re.fullmatch(r"[\w.-]+", mark["arg"]):
                raise ValueError(f"{page}:{i}: a doc-test file needs a plain file name")
            skip = mark["arg"] if mark["what"] == "skip" else None
            file = mark["arg"] if mark["what"] == "file" else None
        blocks.append(Block(page, i + 1, lang, "\n".join(body) + "\n", skip, file))
        i = j + 1
    return blocks


def pages(checkout: Path) -> list[Path]:
    """The pages whose blocks are tested: README.md and every page of the site."""
    return [checkout / "README.md", *sorted((checkout / "docs").rglob("*.md"))]


# ---- matching output ----------------------------------------------------------------


def _line_matches(want: str, got: str) -> bool:
    if "..." not in want:
        return want == got
    pattern = ".*".join(re.escape(part) for part in want.split("..."))
    return re.fullmatch(pattern, got) is not None


def output_matches(want: list[str], got: list[str]) -> bool:
    """``want`` (lines, ``...`` alone matching any lines) against ``got``."""
    if not want:
        return not got
    if want[0] == "...":
        return any(output_matches(want[1:], got[k:]) for k in range(len(got) + 1))
    return bool(got) and _line_matches(want[0], got[0]) and output_matches(want[1:], got[1:])


def console_commands(code: str) -> list[tuple[str, list[str]]]:
    """``$ command`` lines (a trailing backslash continues one) and their output."""
    steps: list[tuple[str, list[str]]] = []
    lines = code.rstrip("\n").splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            raise ValueError(f"console block: expected '$ command', got {lines[i]!r}")
        cmd = lines[i][2:]
        while cmd.endswith("\\") and i + 1 < len(lines):
            i += 1
            cmd = cmd + "\n" + lines[i]
        i += 1
        out = []
        while i < len(lines) and not lines[i].startswith("$ "):
            out.append(lines[i].rstrip())
            i += 1
        steps.append((cmd, out))
    return steps


# ---- running a page (in the worker process) ----------------------------------------------


class Failed(Exception):
    pass


def _run_console(block: Block, env: dict[str, str]) -> None:
    for cmd, want in console_commands(block.code):
        res = subprocess.run(
            ["bash", "-o", "pipefail", "-c", cmd],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        got = [line.rstrip() for line in res.stdout.rstrip("\n").splitlines()]
        if res.returncode != 0:
            raise Failed(f"$ {cmd}\nexited {res.returncode}; it printed:\n{res.stdout}")
        if not output_matches(want, got):
            raise Failed(
                f"$ {cmd}\nprinted:\n" + "\n".join(got) + "\nthe page shows:\n" + "\n".join(want)
            )


def _run_sh(block: Block, env: dict[str, str]) -> None:
    res = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if res.returncode != 0:
        raise Failed(f"exited {res.returncode}:\n{res.stdout}{res.stderr}")


def fd_capture(source: str, namespace: dict[str, Any], mode: str = "single") -> None:
    """Run ``source`` with fds 1 and 2 (what a container inherits) and sys.stdout
    going to one file, then hand what was written to the current sys.stdout
    (doctest's): the output as a terminal would have shown it, in order."""
    sys.stdout.flush()
    real_stdout = sys.stdout
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        sys.stdout = io.TextIOWrapper(os.fdopen(os.dup(1), "wb"), write_through=True)
        try:
            exec(compile(source, "<doc>", mode), namespace)
        finally:
            sys.stdout.close()
            sys.stdout = real_stdout
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            out.seek(0)
            real_stdout.write(out.read().decode(errors="replace"))


def _run_pycon(block: Block, namespace: dict[str, Any]) -> None:
    namespace["__doc_fd_capture__"] = fd_capture
    parser = doctest.DocTestParser()
    # doctest runs in a copy of the namespace: what the examples define is copied back
    test = parser.get_doctest(block.code, namespace, block.where, block.page, block.line)
    for example in test.examples:
        example.source = f"__doc_fd_capture__({example.source!r}, globals())\n"
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    result = runner.run(test, out=report.write, clear_globs=False)
    namespace.update(test.globs)
    if result.failed:
        raise Failed(report.getvalue())


def run_page(blocks: list[Block]) -> None:
    """Run the blocks of one page in order, in the current directory."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for block in blocks:
        if block.skip is not None or (block.lang not in RUN and block.file is None):
            continue
        print(f"== {block.where} ({block.lang})", flush=True)
        try:
            if block.file is not None:
                Path(block.file).write_text(block.code)
                os.chmod(block.file, 0o644)
            elif block.lang == "python":
                exec(compile(block.code, block.where, "exec"), namespace)
            elif block.lang == "pycon":
                _run_pycon(block, namespace)
            elif block.lang == "console":
                _run_console(block, env)
            else:
                _run_sh(block, env)
        except Failed as exc:
            raise Failed(f"{block.where} ({block.lang}):\n{exc}") from None
        except Exception:
            raise Failed(f"{block.where} ({block.lang}):\n{traceback.format_exc()}") from None


def main() -> int:
    blocks = [Block(**b) for b in json.loads(Path(sys.argv[1]).read_text())]
    try:
        run_page(blocks)
    except Failed as exc:
        print(f"\nFAILED {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


def dump(blocks: list[Block], path: Path) -> None:
    path.write_text(json.dumps([asdict(b) for b in blocks]))


if __name__ == "__main__":
    sys.exit(main())
