"""The compiled layer: ``ffi`` and ``lib`` from pynsbind._native, checked against
the package version so that a stale build never runs."""

from __future__ import annotations

import sys

from pynsbind._version import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any

try:
    # __import__: importlib is not free to import, and the compiled module is not
    # a Python file that the layer check could place
    __import__("pynsbind._native")
    _native = sys.modules["pynsbind._native"]
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "pynsbind's C extension is not built; install the package with `pip install .`"
    ) from exc

ffi: Any = _native.ffi
lib: Any = _native.lib

_BUILT = ffi.string(lib.nsb_version()).decode()
if __version__ != _BUILT:
    raise ImportError(
        f"pynsbind's C extension is version {_BUILT} but the package is {__version__}: "
        "the build is stale; reinstall with `pip install --force-reinstall .`"
    )
