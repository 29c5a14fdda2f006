"""pynsbind: Linux containers from Python.

``pynsbind.run`` and ``pynsbind.spawn`` start containers described by a
``pynsbind.Spec``; ``pynsbind.lowlevel`` wraps the kernel calls underneath;
``pynsbind.cgroups`` handles cgroups.  Importing this package is cheap: it
imports no other module (not even ``typing`` or ``__future__``); the names below
load on first use, and nothing probes the kernel until asked.
"""

import sys

from pynsbind._version import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

    from pynsbind._features import Features, features
    from pynsbind.cgroups import Resources, cleanup
    from pynsbind.errors import SpawnError, SpecError
    from pynsbind.flags import Capability, Namespace
    from pynsbind.process import (
        DEVNULL,
        PIPE,
        STDOUT,
        CompletedContainer,
        Process,
        explain,
        run,
        spawn,
        start_gate,
    )
    from pynsbind.sandbox import sandbox
    from pynsbind.spec import Device, IdMap, Mount, Spec, default_mounts

__all__ = [
    "DEVNULL",
    "PIPE",
    "STDOUT",
    "Capability",
    "CompletedContainer",
    "Device",
    "Features",
    "IdMap",
    "Mount",
    "Namespace",
    "Process",
    "Resources",
    "SpawnError",
    "Spec",
    "SpecError",
    "__version__",
    "cleanup",
    "default_mounts",
    "explain",
    "features",
    "run",
    "sandbox",
    "spawn",
    "start_gate",
]

_WHERE = {
    "Features": "pynsbind._features",
    "Resources": "pynsbind.cgroups",
    "cleanup": "pynsbind.cgroups",
    "features": "pynsbind._features",
    "SpawnError": "pynsbind.errors",
    "SpecError": "pynsbind.errors",
    "Capability": "pynsbind.flags",
    "Namespace": "pynsbind.flags",
    "DEVNULL": "pynsbind.process",
    "PIPE": "pynsbind.process",
    "STDOUT": "pynsbind.process",
    "CompletedContainer": "pynsbind.process",
    "Process": "pynsbind.process",
    "explain": "pynsbind.process",
    "run": "pynsbind.process",
    "spawn": "pynsbind.process",
    "sandbox": "pynsbind.sandbox",
    "start_gate": "pynsbind.process",
    "Device": "pynsbind.spec",
    "IdMap": "pynsbind.spec",
    "Mount": "pynsbind.spec",
    "Spec": "pynsbind.spec",
    "default_mounts": "pynsbind.spec",
}


_SUBMODULES = {
    "cgroups",
    "cli",
    "devices",
    "errors",
    "flags",
    "lowlevel",
    "oci",
    "process",
    "resources",
    "seccomp",
    "spec",
    "testing",
}


def _module(name: str) -> "Any":
    """The module ``name``, imported (``__import__``: importlib is not free)."""
    __import__(name)
    return sys.modules[name]


def __getattr__(name: str) -> "Any":
    if name in _SUBMODULES:
        return _module(f"pynsbind.{name}")
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'pynsbind' has no attribute {name!r}")
    value = getattr(_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
