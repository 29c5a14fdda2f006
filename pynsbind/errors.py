"""pynsbind's exceptions: two of them, each also a builtin.

- :class:`SpecError` (a ``ValueError``): the spec itself is wrong; raised before any
  clone, naming the field and the value.
- :class:`SpawnError` (an ``OSError``): the kernel refused a step of a spawn; it
  carries ``errno``, the ``stage`` (where it happened) and ``op`` (which step of the
  plan, 1-based), and its message names the step and its path:
  ``mount proc on /proc: permission denied (op 4 of 11)``.  A SpawnError is also the
  builtin ``OSError`` subclass of its errno (``FileNotFoundError`` for ENOENT,
  ``PermissionError`` for EPERM/EACCES...), as a plain ``OSError`` would be.
"""

from __future__ import annotations

import errno as _errno
import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any, ClassVar

__all__ = ["SpawnError", "SpecError"]


class SpecError(ValueError):
    """An invalid Spec (or argument of run/spawn); ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _builtin_for(err: int) -> type[OSError] | None:
    cls = type(OSError(err, ""))
    return None if cls is OSError else cls


class SpawnError(OSError):
    """A spawn step failed; ``errno``, ``stage`` and ``op`` say which and why."""

    _combined: ClassVar[dict[type[OSError], type[SpawnError]]] = {}

    def __new__(cls, err: int, message: str, **kwargs: Any) -> SpawnError:
        target: type[SpawnError] = cls
        builtin = _builtin_for(err)
        if cls is SpawnError and builtin is not None:
            target = SpawnError._combined.get(builtin) or _combine(builtin)
        return super().__new__(target, err, message)

    def __init__(
        self,
        err: int,
        message: str,
        *,
        stage: str = "child",
        op: int | None = None,
        op_count: int | None = None,
        step: str | None = None,
    ) -> None:
        super().__init__(err, message)
        self.stage = stage
        self.op = op
        self.op_count = op_count
        self.step = step

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (self.errno, self.strerror, self.stage, self.op, self.op_count, self.step),
        )


def _rebuild(
    err: int, message: str, stage: str, op: int | None, op_count: int | None, step: str | None
) -> SpawnError:
    return SpawnError(err, message, stage=stage, op=op, op_count=op_count, step=step)


def _combine(builtin: type[OSError]) -> type[SpawnError]:
    combined = type(
        f"SpawnError[{builtin.__name__}]",
        (SpawnError, builtin),
        {"__module__": __name__, "__qualname__": f"SpawnError[{builtin.__name__}]"},
    )
    SpawnError._combined[builtin] = combined
    return combined


def strerror(err: int) -> str:
    """The lower-case message of an errno, as pynsbind's messages use it."""
    try:
        return os.strerror(err).lower()
    except ValueError:  # pragma: no cover - an errno the C library does not know
        return f"error {err} ({_errno.errorcode.get(err, '?')})"
