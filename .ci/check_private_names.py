#!/usr/bin/env python3
"""No private name crosses a module boundary (docs/architecture.md).

For each Python file given (or found under the directories given):

1. ``from M import _name``: a private name of another module;
2. ``import a._m`` / ``from a._m import x``: a private module, from outside the
   package that holds it (pynsbind._ffi is pynsbind's, pynsbind.cgroups._v1 is
   pynsbind.cgroups');
3. ``obj._name``: a private attribute that the file does not define itself
   (a method, attribute or module name of its own), so it must be another
   module's.

Tests reach internals only through ``pynsbind.testing``, the documented seam,
which is the one module allowed to name them.
Exits 1 and lists the places when it finds any.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

#: private names that are public API elsewhere (the standard library's)
ALLOWED_ATTRS = {"_exit", "_replace", "_asdict", "_fields", "_make", "_getframe", "_current_frames"}
#: private modules of the standard library taken on purpose: _signal, the C half
#: of signal (whose import builds enums: 4 ms, more than a sandbox of /bin/true)
ALLOWED_MODULES = {"_signal"}


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_module_owner(dotted: str) -> str | None:
    """The package that owns the first private component of ``dotted``."""
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if is_private(part):
            return ".".join(parts[:i])
    return None


def defined_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
    return names


def check(path: Path, root: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    mine = defined_names(tree)
    problems = []

    def inside(owner: str) -> bool:
        return package == owner or package.startswith(owner + ".")

    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "__future__":
                continue
            owner = private_module_owner(node.module)
            if owner is not None and not inside(owner):
                problems.append(f"{where}: imports the private module {node.module}")
            for alias in node.names:
                if not is_private(alias.name):
                    continue
                target = f"{node.module}.{alias.name}"
                # a private submodule of one's own package is the package's business
                if not inside(node.module):
                    problems.append(f"{where}: imports the private name {target}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                owner = private_module_owner(alias.name)
                if owner is not None and not inside(owner) and alias.name not in ALLOWED_MODULES:
                    problems.append(f"{where}: imports the private module {alias.name}")
        elif isinstance(node, ast.Attribute) and is_private(node.attr):
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                continue
            if (
                isinstance(base, ast.Call)
                and isinstance(base.func, ast.Name)
                and base.func.id == "super"
            ):
                continue
            if node.attr in ALLOWED_ATTRS or node.attr in mine:
                continue
            problems.append(f"{where}: uses the private attribute .{node.attr} of another module")
    return problems


def main(argv: list[str]) -> int:
    root = Path.cwd()
    files: list[Path] = []
    for arg in argv or ["pynsbind", "tests", "benchmarks"]:
        p = Path(arg)
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    seam = (root / "pynsbind" / "testing.py").resolve()
    problems = [msg for f in files if f.resolve() != seam for msg in check(f.resolve(), root)]
    for msg in problems:
        print(msg)
    if problems:
        print(f"{len(problems)} private names cross a module boundary", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
