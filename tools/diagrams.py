"""The diagrams of the documentation, drawn as SVG files (docs/img/*.svg).

The site must read offline, and mermaid in mkdocs-material loads mermaid.js from
a CDN when the page is viewed; so the diagrams are plain SVG, made by this script
from the data below and committed.  ``python tools/diagrams.py`` writes them;
``python tools/diagrams.py --check`` fails when a committed file differs from
what the script makes (tests/test_docs.py runs that check).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

IMG = Path(__file__).resolve().parent.parent / "docs" / "img"

MONO = "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace"
SANS = "system-ui, 'DejaVu Sans', Helvetica, Arial, sans-serif"
INK = "#1f2937"
MUTED = "#4b5563"
LINE = "#6b7280"


@dataclass
class Svg:
    """A tiny SVG writer: rectangles, text, lines and arrows, in order."""

    width: int
    height: int
    items: list[str] = field(default_factory=list)

    def rect(self, x: float, y: float, w: float, h: float, fill: str, stroke: str = LINE) -> None:
        self.items.append(
            f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" rx="4" '
            f'fill="{fill}" stroke="{stroke}"/>'
        )

    def text(
        self,
        x: float,
        y: float,
        s: str,
        *,
        size: int = 13,
        mono: bool = False,
        anchor: str = "start",
        color: str = INK,
        bold: bool = False,
    ) -> None:
        weight = ' font-weight="bold"' if bold else ""
        family = MONO if mono else SANS
        self.items.append(
            f'<text x="{x:g}" y="{y:g}" font-family="{family}" font-size="{size}" '
            f'text-anchor="{anchor}" fill="{color}"{weight}>{escape(s)}</text>'
        )

    def line(
        self, x1: float, y1: float, x2: float, y2: float, *, dash: bool = False, arrow: bool = False
    ) -> None:
        extra = ' stroke-dasharray="5 4"' if dash else ""
        head = ' marker-end="url(#arrow)"' if arrow else ""
        self.items.append(
            f'<line x1="{x1:g}" y1="{y1:g}" x2="{x2:g}" y2="{y2:g}" stroke="{LINE}" '
            f'stroke-width="1.5"{extra}{head}/>'
        )

    def render(self, title: str) -> str:
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.width} {self.height}" '
            f'width="{self.width}" height="{self.height}" role="img">\n'
            f"<title>{escape(title)}</title>\n"
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" '
            f'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            f'fill="{LINE}"/></marker></defs>\n'
            f'<rect width="{self.width}" height="{self.height}" fill="#ffffff"/>\n'
        )
        return head + "\n".join(self.items) + "\n</svg>\n"


# ---- the layers (the import-linter contract in pyproject.toml) -------------------------

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
CONTRACT = "pynsbind's layers go one way"

# what each layer of the contract holds, and its group in the drawing
ABOUT: dict[str, tuple[str, str]] = {
    "pynsbind.testing": ("the test seam (documented, unstable)", "surface"),
    "pynsbind.cli": ("pynsbind-run", "surface"),
    "pynsbind._cli_sandbox | pynsbind._cli_runtime": (
        "pynsbind-run sandbox; runc's commands",
        "surface",
    ),
    "pynsbind.sandbox | pynsbind.container": (
        "sandbox(); OCI containers and their state",
        "surface",
    ),
    "pynsbind.oci": ("OCI bundles: config.json -> Spec, state, features", "surface"),
    "pynsbind.process": ("run, spawn, Process, explain", "surface"),
    "pynsbind._container_cgroup": ("the container's cgroup at spawn time", "engine"),
    "pynsbind._plan": ("Spec -> Plan (the compiler)", "engine"),
    "pynsbind._ops": ("the op record and its typed builders", "engine"),
    "pynsbind._features": ("what this kernel can do", "engine"),
    "pynsbind.cgroups": ("layouts, limits, Cgroup (usable alone)", "cgroups"),
    "pynsbind.spec": ("Spec, Mount, Device, IdMap", "model"),
    "pynsbind.resources": ("Resources", "model"),
    "pynsbind.devices | pynsbind.seccomp": ("device rules, seccomp profiles", "model"),
    "pynsbind._seccomp_default | pynsbind._seccomp_cache": (
        "the default profile's lists, compiled programs kept",
        "model",
    ),
    "pynsbind.errors": ("SpawnError, SpecError", "model"),
    "pynsbind.lowlevel": ("1:1 wrappers of system calls", "kernel"),
    "pynsbind.flags": ("Namespace, Capability, MountFlags... (enums)", "kernel"),
    "pynsbind._replay": ("plans as data: laid out, kept on disk, replayed", "kernel"),
    "pynsbind._ffi": ("the compiled module (cffi, csrc/)", "kernel"),
    "pynsbind._version": ("the version", "kernel"),
    "pynsbind._record | pynsbind._spec_types | pynsbind._regex | pynsbind._args "
    "| pynsbind._mountinfo | pynsbind._diskcache": (
        "records, typing names, lazy regexes, argv parser, mountinfo, disk caches",
        "base",
    ),
}


def contract_layers(text: str) -> list[str]:
    """The layers of the import-linter contract CONTRACT in pyproject.toml, top
    first (the drawing follows what lint-imports enforces)."""
    start = text.index(f'name = "{CONTRACT}"')
    block = text[text.index("layers = [", start) : text.index("]", text.index("layers = [", start))]
    return re.findall(r'"([^"]+)"', block)


def layers() -> list[tuple[str, str, str]]:
    """(module as drawn, what, group) for each layer of the contract."""
    out = []
    for layer in contract_layers(PYPROJECT.read_text()):
        if layer not in ABOUT:
            raise SystemExit(f"tools/diagrams.py: describe the layer {layer!r} in ABOUT")
        what, group = ABOUT[layer]
        shown = layer.replace(" | pynsbind.", ", .")
        out.append((shown, what, group))
    return out


GROUPS = {
    "surface": ("#e0e7ff", "what callers use"),
    "engine": ("#fef3c7", "the compiler and its helpers"),
    "cgroups": ("#dcfce7", "cgroups"),
    "model": ("#fce7f3", "the model"),
    "kernel": ("#e5e7eb", "the kernel interface"),
    "base": ("#f3f4f6", "helpers below every layer"),
}


def layers_svg() -> str:
    drawn = layers()
    row, top, left = 30, 46, 20
    name_w = max(len(module) for module, _, _ in drawn) * 7.9 + 24  # 13px monospace
    what_w = max(len(what) for _, what, _ in drawn) * 7.0 + 20
    box_w = name_w + what_w
    svg = Svg(width=int(left + box_w + 250), height=top + row * len(drawn) + 40)
    svg.text(left, 24, "pynsbind's layers: each imports only from the layers below it", bold=True)
    for i, (module, what, group) in enumerate(drawn):
        y = top + i * row
        fill = GROUPS[group][0]
        svg.rect(left, y, box_w, row - 6, fill)
        svg.text(left + 10, y + 17, module, mono=True)
        svg.text(left + name_w, y + 17, what, color=MUTED)
    # a bracket and a name for each group
    start = 0
    for i in range(1, len(drawn) + 1):
        if i == len(drawn) or drawn[i][2] != drawn[start][2]:
            y0 = top + start * row
            y1 = top + i * row - 6
            x = left + box_w + 14
            svg.line(x, y0, x, y1)
            svg.line(x - 5, y0, x, y0)
            svg.line(x - 5, y1, x, y1)
            svg.text(x + 10, (y0 + y1) / 2 + 5, GROUPS[drawn[start][2]][1], color=MUTED)
            start = i
    bottom = top + row * len(drawn)
    svg.text(
        left, bottom + 16, "csrc/: spawn.c (parent half), child.c and child_fs.c (the", size=12
    )
    svg.text(
        left, bottom + 32, "cloned child), init.c, lowlevel.c, cgroup.c, bpf.c", size=12, color=INK
    )
    return svg.render("pynsbind's layers")


# ---- the spawn and its sync protocol (docs/architecture.md, csrc/spawn.c) -------------

# (who, text): who is "P" (the parent), "C" (the child), "P>C" or "C>P" (a message)
SPAWN: list[tuple[str, str]] = [
    ("P", "1  socketpair(SOCK_SEQPACKET); the child's end at fd >= 3"),
    ("P", "2  with CLONE_VM: mmap the child's stack"),
    ("P", "3  block every signal in this thread"),
    ("P>C", "4  clone3(CLONE_PIDFD | CLONE_INTO_CGROUP | namespaces)"),
    ("P", "5  restore the signal mask, close the child's end"),
    ("C", "5  close the parent's end, copy the fd table, walk the ops"),
    ("C>P", "6  SYNC 1 (a user namespace, a v1 cgroup)"),
    ("P", "   write uid_map, gid_map; attach to v1 cgroups"),
    ("P>C", "   GO 1"),
    ("C>P", "   SYNC 2 (a time namespace and its offsets)"),
    ("P", "   write timens_offsets"),
    ("P>C", "   GO 2"),
    ("C>P", "   PID n (the middle process of a second fork)"),
    ("C>P", "   LISTENER n (a seccomp filter with notify rules)"),
    ("P", "   take it with pidfd_getfd"),
    ("P>C", "   GO n"),
    ("C", "   mounts, pivot_root, ids, capabilities, fds, seccomp"),
    ("C", "   execveat(the sealed init) -> the command"),
    ("C>P", "   EOF: the socket was close-on-exec, exec succeeded"),
    ("C>P", "   (init=True: the init holds the socket, sends EXEC_OK, later EXIT)"),
    ("C>P", "   or ERROR {stage, op, errno}, then exit 127"),
    ("P", "7  reap the middle process; on failure kill and reap the child"),
    ("P", "8  unmap the stacks; return pid, pidfd (and the init's socket)"),
]


def spawn_svg() -> str:
    row, top, width = 28, 96, 1000
    px, cx = 230, 770  # the two lifelines
    char = 6.8  # the width of one character of the 11px monospace font, with margin
    svg = Svg(width=width, height=top + row * len(SPAWN) + 30)
    svg.text(20, 24, "nsb_spawn(): the parent (P) and the cloned child (C)", bold=True)
    svg.text(
        20,
        42,
        "messages are fixed-size struct nsb_msg {type, stage, op, err, val}; "
        "each SYNC, PID and LISTENER step happens only when the plan needs it",
        size=12,
    )
    for x, name in ((px, "P: the caller's thread"), (cx, "C: the child")):
        svg.rect(x - 100, 54, 200, 26, "#e0e7ff")
        svg.text(x, 72, name, anchor="middle", bold=True)
        svg.line(x, 80, x, top + row * len(SPAWN) + 10, dash=True)
    for i, (who, text) in enumerate(SPAWN):
        y = top + i * row + 10
        w = len(text) * char + 14
        if who == "P":
            svg.rect(20, y - 13, w, 20, "#fef3c7")
            svg.text(27, y + 1, text, size=11, mono=True)
        elif who == "C":
            svg.rect(width - 20 - w, y - 13, w, 20, "#dcfce7")
            svg.text(width - 13 - w, y + 1, text, size=11, mono=True)
        else:
            x1, x2 = (px, cx) if who == "P>C" else (cx, px)
            svg.line(x1, y + 4, x2, y + 4, arrow=True)
            svg.text((px + cx) / 2, y - 2, text, size=11, mono=True, anchor="middle")
    return svg.render("the spawn's sync steps")


DIAGRAMS = {"layers.svg": layers_svg, "spawn-sync.svg": spawn_svg}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--check", action="store_true", help="fail if a committed file is stale")
    args = ap.parse_args(argv)
    stale = []
    for name, make in DIAGRAMS.items():
        path = IMG / name
        text = make()
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            IMG.mkdir(exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"stale diagrams (run python tools/diagrams.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
