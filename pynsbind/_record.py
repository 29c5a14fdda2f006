"""Records: what ``dataclasses.dataclass`` makes, without its import cost.

``dataclasses`` imports ``inspect`` (and with it ``ast``, ``dis``, ``tokenize``,
``re``...) and builds each class's methods through several layers: together
more than half of what the model cost to import.  A command-line runtime pays
that on every call, so the model's classes are made here instead:

    @record(frozen=True)
    class Mount:
        kind: str
        target: str
        options: tuple[str, ...] = ()
        extra: list[str] = field(default_factory=list)

gives ``__init__`` (positional or keyword, ``kw_only=True`` for keyword only;
``__post_init__`` called last), ``__repr__``, ``__eq__`` and, for a frozen
record, ``__hash__`` and the refusal of assignment (``FrozenInstanceError``).
A record is also a dataclass to the ``dataclasses`` module (``replace``,
``asdict``, ``fields``, ``is_dataclass``): the first time that module asks, the
class is registered with it.  Type checkers see ``dataclass_transform``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    from typing_extensions import dataclass_transform

    T = TypeVar("T")
else:

    def dataclass_transform(**_kwargs: object) -> Callable[[T], T]:
        return lambda f: f


__all__ = ["FrozenInstanceError", "field", "fields", "record", "replace"]


class FrozenInstanceError(AttributeError):
    """An assignment to a field of a frozen record (as dataclasses raises)."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Field:
    """One field of a record: its name, its default or default factory, and
    whether it takes part in ``__init__``, ``__repr__`` and comparisons."""

    __slots__ = ("compare", "default", "default_factory", "init", "kw_only", "name", "repr")

    def __init__(
        self,
        default: Any,
        default_factory: Any,
        init: bool,
        repr: bool,
        compare: bool,
        kw_only: bool,
    ) -> None:
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.init = init
        self.repr = repr
        self.compare = compare
        self.kw_only = kw_only


def field(
    *,
    default: Any = MISSING,
    default_factory: Any = MISSING,
    init: bool = True,
    repr: bool = True,
    compare: bool = True,
    kw_only: bool = False,
) -> Any:
    """A field with options, as ``dataclasses.field``."""
    if default is not MISSING and default_factory is not MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return Field(default, default_factory, init, repr, compare, kw_only)


def fields(obj: object) -> tuple[Field, ...]:
    """The fields of a record class or instance, in order."""
    found: dict[str, Field] | None = getattr(obj, "__record_fields__", None)
    if found is None:
        raise TypeError(f"{obj!r} is not a record")
    return tuple(found.values())


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of the record ``obj`` with ``changes``, through ``__init__``."""
    for f in fields(obj):
        if not f.init:
            if f.name in changes:
                raise ValueError(f"field {f.name} is not an __init__ parameter")
            continue
        if f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return obj.__class__(**changes)


class _AsDataclass:
    """``__dataclass_fields__`` until ``dataclasses`` first asks for it: then the
    class is registered with the module (no method of it is replaced)."""

    def __get__(self, obj: object, owner: type) -> Any:
        if owner.__dict__.get("__dataclass_fields__") is not self:
            return None  # a subclass that is not a record itself
        import dataclasses

        dataclasses.dataclass(owner, init=False, repr=False, eq=False)
        return owner.__dict__["__dataclass_fields__"]


def _is_classvar(annotation: object) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _frozen_setattr(self: object, name: str, value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _build(cls: type, frozen: bool, kw_only: bool, eq: bool) -> type:
    found: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        found.update(base.__dict__.get("__record_fields__", {}))
    # (inspect.get_annotations would import inspect: what this module avoids)
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
        if _is_classvar(annotation):
            continue
        value = cls.__dict__.get(name, MISSING)
        f = value if isinstance(value, Field) else Field(value, MISSING, True, True, True, False)
        f.name = name
        f.kw_only = f.kw_only or kw_only
        if isinstance(value, Field):
            if f.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        found.pop(name, None)
        found[name] = f
    namespace: dict[str, Any] = {"MISSING": MISSING, "setattr": object.__setattr__}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    for f in found.values():
        if not f.init:
            if f.default_factory is not MISSING:
                namespace[f"f_{f.name}"] = f.default_factory
                value = f"f_{f.name}()"
            elif f.default is not MISSING:
                namespace[f"d_{f.name}"] = f.default
                value = f"d_{f.name}"
            else:
                continue
        else:
            value = f.name
            if f.default_factory is not MISSING:
                namespace[f"f_{f.name}"] = f.default_factory
                param = f"{f.name}=MISSING"
                value = f"f_{f.name}() if {f.name} is MISSING else {f.name}"
            elif f.default is not MISSING:
                namespace[f"d_{f.name}"] = f.default
                param = f"{f.name}=d_{f.name}"
            else:
                param = f.name
                if positional and not f.kw_only and "=" in positional[-1]:
                    raise TypeError(f"non-default argument {f.name!r} follows default argument")
            (keyword if f.kw_only else positional).append(param)
        if frozen:
            body.append(f"    setattr(self, {f.name!r}, {value})")
        else:
            body.append(f"    self.{f.name} = {value}")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    params = ["self", *positional]
    if keyword:
        params += ["*", *keyword]
    source = f"def __init__({', '.join(params)}) -> None:\n" + ("\n".join(body) or "    pass")
    exec(source, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    shown = tuple(f.name for f in found.values() if f.repr)
    compared = tuple(f.name for f in found.values() if f.compare)

    def __repr__(self: object) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in shown)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self: object, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return tuple(getattr(self, n) for n in compared) == tuple(
            getattr(other, n) for n in compared
        )

    def __hash__(self: object) -> int:
        return hash(tuple(getattr(self, n) for n in compared))

    cls.__record_fields__ = found  # type: ignore[attr-defined]
    cls.__init__ = init  # type: ignore[misc]
    if "__repr__" not in cls.__dict__:
        cls.__repr__ = __repr__  # type: ignore[assignment]
    if eq and "__eq__" not in cls.__dict__:
        cls.__eq__ = __eq__  # type: ignore[assignment]
        if frozen and "__hash__" not in cls.__dict__:
            cls.__hash__ = __hash__  # type: ignore[assignment]
        elif not frozen and "__hash__" not in cls.__dict__:
            cls.__hash__ = None  # type: ignore[assignment]
    if frozen:
        cls.__setattr__ = _frozen_setattr  # type: ignore[assignment]
        cls.__delattr__ = _frozen_delattr  # type: ignore[assignment]
    cls.__dataclass_fields__ = _AsDataclass()  # type: ignore[attr-defined]
    match = tuple(f.name for f in found.values() if f.init and not f.kw_only)
    setattr(cls, "__match_args__", match)  # noqa: B010 - mypy refuses the plain assignment
    return cls


@dataclass_transform(field_specifiers=(field,))
def record(
    *, frozen: bool = False, kw_only: bool = False, eq: bool = True
) -> Callable[[type[T]], type[T]]:
    """Make the decorated class a record (see the module's doc)."""

    def wrap(cls: type[T]) -> type[T]:
        return _build(cls, frozen, kw_only, eq)

    return wrap
