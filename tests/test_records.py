"""pynsbind._record (through pynsbind.testing.records): the model's classes made
without dataclasses, and still dataclasses to the dataclasses module.  Pure
logic: no kernel."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys

import pytest

from pynsbind.testing import records

record, field = records.record, records.field


@record(frozen=True)
class Point:
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()


@record()
class Box:
    items: list[int] = field(default_factory=list)
    label: str = "box"
    hidden: int = field(default=7, repr=False, compare=False)


@record(frozen=True, kw_only=True)
class Options:
    a: int
    b: str = "b"
    made: list[str] = field(default_factory=lambda: ["made"])

    def __post_init__(self) -> None:
        if self.a < 0:
            raise ValueError("a must not be negative")
        object.__setattr__(self, "b", self.b.upper())


def test_init_defaults_factories_and_post_init() -> None:
    assert (Point(1).x, Point(1).y, Point(1, 2).y, Point(x=3, y=4).y) == (1, 0, 2, 4)
    a, b = Box(), Box()
    assert a.items == [] and a.items is not b.items  # a fresh list each
    assert Options(a=1).b == "B" and Options(a=1).made == ["made"]
    with pytest.raises(ValueError, match="negative"):
        Options(a=-1)
    with pytest.raises(TypeError):
        Options(1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, 2, (), 4)  # type: ignore[call-arg]


def test_repr_eq_hash_follow_dataclasses() -> None:
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags=())"
    assert repr(Box([1])) == "Box(items=[1], label='box')"  # repr=False field left out
    assert Point(1, 2) == Point(1, 2) and Point(1, 2) != Point(2, 1)
    assert Point(1) != (1, 0, ())  # another class never compares equal
    assert hash(Point(1, 2)) == hash(Point(1, 2)) and len({Point(1), Point(1)}) == 1
    assert Box([1], hidden=1) == Box([1], hidden=2)  # compare=False
    with pytest.raises(TypeError):
        hash(Box())  # eq without frozen: unhashable, as a dataclass


def test_frozen_refuses_assignment_and_deletion() -> None:
    p = Point(1)
    with pytest.raises(records.FrozenInstanceError, match="'x'"):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.x  # type: ignore[misc]
    b = Box()
    b.label = "new"
    assert b.label == "new"


def test_replace_fields_copy_and_pickle() -> None:
    p = Point(1, 2, ("a",))
    assert records.replace(p, y=5) == Point(1, 5, ("a",))
    assert [f.name for f in records.fields(Point)] == ["x", "y", "tags"]
    with pytest.raises(TypeError, match="not a record"):
        records.fields(object())
    with pytest.raises(TypeError):
        records.replace(p, z=1)
    for twin in (copy.copy(p), copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
        assert twin == p and twin is not p


def test_records_are_dataclasses_to_the_dataclasses_module() -> None:
    assert dataclasses.is_dataclass(Point(1)) and dataclasses.is_dataclass(Options)
    assert dataclasses.replace(Point(1), y=3) == Point(1, 3)
    assert dataclasses.asdict(Options(a=2)) == {"a": 2, "b": "B", "made": ["made"]}
    assert [f.name for f in dataclasses.fields(Box)] == ["items", "label", "hidden"]
    # registering changed no behaviour: still frozen, same repr and equality
    with pytest.raises(records.FrozenInstanceError):
        Point(1).x = 3  # type: ignore[misc]
    assert repr(Point(1)) == "Point(x=1, y=0, tags=())"


def test_public_model_types_work_with_dataclasses_replace() -> None:
    import pynsbind

    m = pynsbind.Mount.tmpfs("/x")
    assert dataclasses.replace(m, readonly=True).readonly
    spec = pynsbind.Spec(args=["/bin/true"])
    assert dataclasses.replace(spec, hostname="h").hostname == "h"


def test_the_model_imports_neither_dataclasses_nor_typing() -> None:
    code = (
        "import sys; before = set(sys.modules)\n"
        "import pynsbind; pynsbind.Spec(args=['x'], hostname='h'); pynsbind.Mount.tmpfs('/x')\n"
        "heavy = ('typing', 'dataclasses', 'inspect', 're', 'subprocess')\n"
        "print(*sorted(m for m in heavy if m in set(sys.modules) - before))"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == []
