"""The compiled layer: ``ffi`` and ``lib`` from pynsbind._native, checked against
the package version so that a stale build never runs."""

from __future__ import annotations

import importlib
from typing import Any

from pynsbind._version import __version__

try:
    _native = importlib.import_module("pynsbind._native")
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
