"""pynsbind.testing: the seam through which tests, benchmarks and debuggers reach
pynsbind's internals.

Everything here is an implementation detail exported under a public name, so
that no private name crosses a module boundary anywhere else (.ci/run checks
that).  Nothing here is a stable API: it changes with the engine.

- the compiled layer: ``ffi``, ``lib``;
- the plan: ``compile_plan``, ``Plan``, ``Op``, ``OpKind``, ``OpFlag``, ``ops`` (the op
  builders), ``Pact``, ``Options`` (the engine's
  fallbacks: the legacy mount API, clone(2), no CLONE_VM), ``spawn_with``, and
  ``run_plan`` (one spawn of a compiled plan, below pynsbind.spawn);
- the per-process state a test may look at or reset: ``sealed_init_fd``,
  ``dropped_processes``, ``cgroup_fast_paths``, ``bpf_program_cache``,
  ``seccomp_extension``, ``seccomp_cache_dir``, ``seccomp_cache_reset``;
- the plans kept on disk for ``pynsbind-run sandbox``: ``kept_plans``, ``keep_plan``,
  ``encode_plan``, ``decode_plan``;
- the cgroup machinery's modules and parsers: ``cgroups_v1``, ``cgroups_v2``,
  ``cgroups_bpf``, ``compile_program``, ``Dirs``, ``parse_proc_cgroup``,
  ``parse_auto_name``, ``prepare_cgroup``;
- the default seccomp profile's data: ``seccomp_default``;
- the command line's parser (runc's and docker's option syntax): ``cli_args``;
- the model's record maker (dataclasses without their import cost): ``records``
  (``record``, ``field``, ``fields``, ``replace``, ``FrozenInstanceError``).
"""

from __future__ import annotations

from typing import Any

from pynsbind import _args as cli_args
from pynsbind import _diskcache, _replay
from pynsbind import _ops as ops
from pynsbind import _record as records
from pynsbind import _seccomp_default as seccomp_default
from pynsbind import seccomp as _seccomp_mod
from pynsbind._container_cgroup import prepare as prepare_cgroup
from pynsbind._ffi import ffi, lib
from pynsbind._ops import Op, OpFlag, OpKind
from pynsbind._plan import Options, Pact, Plan, compile_plan
from pynsbind.cgroups import _bpf as cgroups_bpf
from pynsbind.cgroups import _fast as _cgroup_fast
from pynsbind.cgroups import _parse_auto as parse_auto_name
from pynsbind.cgroups import _v1 as cgroups_v1
from pynsbind.cgroups import _v2 as cgroups_v2
from pynsbind.cgroups._common import Dirs
from pynsbind.cgroups._detect import parse_proc_cgroup
from pynsbind.cgroups._program import compile_program
from pynsbind.process import _active, _fd_table, _init_exe_fd, _run_engine, spawn_with

__all__ = [
    "Dirs",
    "Op",
    "OpFlag",
    "OpKind",
    "Options",
    "Pact",
    "Plan",
    "bpf_program_cache",
    "cgroup_fast_paths",
    "cgroups_bpf",
    "cgroups_v1",
    "cgroups_v2",
    "cli_args",
    "compile_plan",
    "compile_program",
    "decode_plan",
    "dropped_processes",
    "encode_plan",
    "ffi",
    "keep_plan",
    "kept_plans",
    "lib",
    "ops",
    "parse_auto_name",
    "parse_proc_cgroup",
    "prepare_cgroup",
    "records",
    "run_plan",
    "sealed_init_fd",
    "seccomp_cache_dir",
    "seccomp_cache_reset",
    "seccomp_default",
    "seccomp_extension",
    "spawn_with",
]


def run_plan(plan: Plan, stdio: list[int], extra: dict[str, int] | None = None) -> Any:
    """One spawn of ``plan`` by the C engine: stdio (three fds, -1 to inherit)
    and the fds of the plan's other slots by name (the sealed init's is
    filled in); returns the engine's ``struct nsb_result``, raises SpawnError."""
    return _run_engine(plan, _fd_table(plan, stdio, extra or {}))


def kept_plans() -> dict[bytes, Any]:
    """The plans kept on disk for pynsbind-run sandbox (pynsbind._replay.Kept),
    by key, as the environment now says where (the directory is opened again)."""
    _diskcache.reset()
    return {key: _replay.decode(value) for key, value in _diskcache.entries("plans")}


encode_plan = _replay.encode
decode_plan = _replay.decode


def keep_plan(key: bytes, kept: Any) -> None:
    """Keep ``kept`` (a plan of kept_plans(), changed; or bytes, the file's
    content after its header) under ``key``."""
    _diskcache.write("plans", key, kept if isinstance(kept, bytes) else _replay.encode(kept))


def sealed_init_fd() -> int:
    """The sealed memfd copy of the init this process execs containers through
    (made on first use, kept for the process's life)."""
    return _init_exe_fd()


def dropped_processes() -> list[Any]:
    """The Process objects dropped while running, reaped by a later spawn."""
    return _active


def cgroup_fast_paths() -> dict[Any, Any]:
    """Cgroup.create's laid-out fast paths, by (resources, host)."""
    return _cgroup_fast


def bpf_program_cache() -> dict[bytes, int]:
    """The loaded device programs, by program: their fds."""
    return cgroups_bpf._cache


def seccomp_cache_dir() -> str | None:
    """Where compiled seccomp programs are kept (None: the cache is off)."""
    from pynsbind import _seccomp_cache

    return _seccomp_cache.cache_dir()


def seccomp_cache_reset() -> None:
    """Forget the seccomp cache directory this process opened (so that the next
    compile looks for it again, as $XDG_CACHE_HOME now says) and the programs it
    compiled or read (so that the next compile reads the disk, or compiles)."""
    from pynsbind import _seccomp_cache

    _seccomp_cache.reset()
    _seccomp_mod._compiled.cache_clear()
    _seccomp_mod._defaults.clear()


def seccomp_extension() -> Any:
    """The loader of pynsbind._seccomp (cached; ``.cache_clear()`` to load it
    again, as after an upgrade)."""
    return _seccomp_mod._native
