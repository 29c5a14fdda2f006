"""pynsbind.cgroups: cgroup v2, v1 and hybrid hosts (work in progress)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pynsbind.cgroups._detect import mode
from pynsbind.errors import SpecError

if TYPE_CHECKING:
    from pynsbind.spec import Spec

__all__ = ["mode"]


class Cgroup:  # replaced by the real class in the cgroups issue
    pass


class Resources:
    pass


def _check_spec_fields(spec: Spec) -> None:
    raise SpecError("cgroup", "cgroup placement is not available in this version")


def _plan_attach(compiler: Any, spec: Spec) -> list[dict[str, Any]]:
    return []


def _spawn_cgroup(spec: Spec, plan: Any) -> Any:
    return None
