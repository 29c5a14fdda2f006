"""Device rules (pynsbind.devices): the model, the v1 writes, the BPF
program, and both on the real kernel.

The pure half checks the BPF generator with a small interpreter of the eBPF
instructions it emits (its own opcode table, from the kernel's instruction set
document) and the v1 writes with an emulation of the v1 devices controller,
both against the reference model :func:`allows`, over generated rule lists.

The real half (marked ``root`` and ``cgroup``) forks a Python child, moves it
into a cgroup with rules and has it mknod and open device nodes: the v1
devices controller (where the host has one) and a BPF program on the cgroup2
tree (here the hybrid host's /sys/fs/cgroup/unified; all of a pure v2 host).
Each starts with the same child outside any rules, so that the test can fail.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import itertools
import os
import shutil
import stat
import struct
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pynsbind import Resources, SpecError
from pynsbind import devices as D
from pynsbind.cgroups import (
    DEFAULT_DEVICE_RULES,
    Cgroup,
    DeviceRule,
    Hierarchy,
    Host,
    device_host,
    host,
    rules_for_nodes,
)
from pynsbind.devices import V1State as _V1State
from pynsbind.devices import allows, bpf_program, v1_update_writes, v1_writes
from pynsbind.testing import bpf_program_cache, compile_program, lib
from pynsbind.testing import cgroups_bpf as _bpf
from tests.helpers import (
    HostState,
    Unavailable,
    checkpoint,
    examples,
    in_child,
    loop_device,
    pynsbind_cgroups,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

PID = os.getpid()
_n = itertools.count(1)
ACCESSES = ["", "r", "w", "m", "rw", "rm", "wm", "rwm"]
R = DeviceRule

# ---- the rules themselves ---------------------------------------------------------------


def test_rule_normalises() -> None:
    assert R(allow=True, type="c", major=1, minor=-1, access="mwr") == R(True, "c", 1, None, "rwm")
    assert R(False, access="wrw").access == "rw"
    assert str(R(True, "c", 136)) == "allow c 136:* rwm"
    assert str(R(False)) == "deny a *:* rwm"
    assert R(False).everything and not R(False, access="rw").everything
    assert hash(R(True, "b", 7, 0)) == hash(R(True, "b", 7, 0))


@pytest.mark.parametrize(
    ("kw", "field", "message"),
    [
        ({"allow": "yes"}, "DeviceRule.allow", "expected true or false"),
        ({"allow": True, "type": "x"}, "DeviceRule.type", "'a', 'c' or 'b', not 'x'"),
        ({"allow": True, "major": 4096}, "DeviceRule.major", "4096 is out of range (0..4095"),
        ({"allow": True, "minor": -2}, "DeviceRule.minor", "-2 is out of range"),
        ({"allow": True, "major": "1"}, "DeviceRule.major", "expected an integer"),
        ({"allow": True, "access": ""}, "DeviceRule.access", "is empty"),
        ({"allow": True, "access": "rx"}, "DeviceRule.access", "holds 'x'"),
        ({"allow": True, "access": None}, "DeviceRule.access", "expected a string"),
    ],
)
def test_rule_rejects(kw: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        R(**kw)
    assert info.value.field == field
    assert message in str(info.value)


def test_oci_round_trip() -> None:
    data = {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rw"}
    rule = R.from_oci(data, "x")
    assert rule == R(True, "c", 10, 200, "rw")
    assert rule.to_oci() == data
    # absent and -1 mean any; a missing type is "a", a missing access "rwm"
    assert R.from_oci({"allow": False}, "x") == R(False)
    assert R.from_oci({"allow": False, "major": -1, "minor": -1}, "x").to_oci() == {
        "allow": False,
        "type": "a",
        "access": "rwm",
    }


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        ({"type": "c"}, "resources.devices[1].allow", "is required"),
        ({"allow": 1}, "resources.devices[1].allow", "expected true or false"),
        ({"allow": True, "type": "p"}, "resources.devices[1].type", "not 'p'"),
        ({"allow": True, "major": 1 << 20}, "resources.devices[1].major", "out of range"),
        ({"allow": True, "access": "rwmx"}, "resources.devices[1].access", "holds 'x'"),
        ({"allow": True, "path": "/dev/x"}, "resources.devices[1]", "unknown keys ['path']"),
        ("c 1:3 rwm", "resources.devices[1]", "expected a DeviceRule or an OCI entry"),
    ],
)
def test_resources_devices_reject(entry: Any, field: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        Resources(devices=[R(False), entry])
    assert info.value.field == field
    assert message in str(info.value)
    # the same through OCI, named from there
    if isinstance(entry, dict):
        with pytest.raises(SpecError) as info:
            Resources.from_oci({"devices": [{"allow": False}, entry]})
        assert info.value.field == field.replace("resources.", "resources.oci.")


def test_resources_devices() -> None:
    a = Resources(devices=[{"allow": False, "access": "rwm"}, {"allow": True, "type": "c"}])
    b = Resources(devices=(R(False), R(True, "c")))
    assert a == b and hash(a) == hash(b)
    assert a.devices == (R(False), R(True, "c"))
    assert a.controllers() == {"devices"}
    assert Resources(devices=[]).devices == ()  # set, and empty: no rules at all
    assert Resources().controllers() == frozenset()
    with pytest.raises(SpecError, match=r"resources\.devices: expected a sequence"):
        Resources(devices="a *:* rwm")
    oci = Resources.from_oci({"devices": [r.to_oci() for r in DEFAULT_DEVICE_RULES]})
    assert oci.devices == DEFAULT_DEVICE_RULES
    assert Resources.from_oci({"devices": []}).devices is None  # empty: unset
    with pytest.raises(SpecError, match=r"resources\.oci\.devices: expected an array"):
        Resources.from_oci({"devices": {"allow": False}})


def test_default_rules() -> None:
    rules = DEFAULT_DEVICE_RULES
    assert rules[0] == R(False)
    # mknod of anything, but open only of the listed devices
    for kind, major, minor in [("c", 1, 1), ("b", 7, 0), ("c", 10, 200), ("c", 5, 1)]:
        assert allows(rules, kind, major, minor, "m")
        assert not allows(rules, kind, major, minor, "r")
        assert not allows(rules, kind, major, minor, "rw")
    for major, minor in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 2),
        (136, 0),
        (136, 7),
    ]:
        assert allows(rules, "c", major, minor, "rw")
        assert allows(rules, "c", major, minor, "rwm")
        assert not allows(rules, "b", major, minor, "r")


def test_rules_for_nodes() -> None:
    nodes = [("c", 10, 200), ("b", 7, 3), ("c", 10, 200)]
    assert rules_for_nodes(nodes) == (R(True, "c", 10, 200), R(True, "b", 7, 3))
    with pytest.raises(SpecError, match=r"devices\[0\]\.type: 'c' or 'b', not 'a'"):
        rules_for_nodes([("a", 1, 3)])
    with pytest.raises(SpecError, match=r"devices\[0\]\.minor: a device node has a number"):
        rules_for_nodes([("c", 1, -1)])


def test_model_is_per_access_bit() -> None:
    # a later deny of w refuses an open for reading and writing, not only one for writing
    rules = [R(False), R(True, "c", 1, 3), R(False, "c", 1, 3, "w")]
    assert allows(rules, "c", 1, 3, "r")
    assert not allows(rules, "c", 1, 3, "w")
    assert not allows(rules, "c", 1, 3, "rw")
    # r and w granted by different rules add up
    rules = [R(False), R(True, "c", 1, None, "r"), R(True, "c", 1, 3, "w")]
    assert allows(rules, "c", 1, 3, "rw")
    assert not allows(rules, "c", 1, 4, "rw")
    # no rule: allowed (the kernel's default); no access asked: allowed
    assert allows([], "b", 8, 0, "rwm")
    assert allows([R(False)], "b", 8, 0, "")


# ---- the BPF program, run by a small interpreter --------------------------------------------

# the eBPF instruction set (Documentation/bpf/standardization/instruction-set.rst)
CLS_LDX, CLS_ALU, CLS_JMP = 0x01, 0x04, 0x05
MODE_MEM, SIZE_W, SRC_X = 0x60, 0x00, 0x08
OP_MOV, OP_RSH, OP_AND = 0xB0, 0x70, 0x50
OP_JA, OP_JEQ, OP_JNE, OP_EXIT = 0x00, 0x10, 0x50, 0x90
KNOWN = {
    CLS_LDX | MODE_MEM | SIZE_W,
    CLS_ALU | OP_MOV,
    CLS_ALU | OP_MOV | SRC_X,
    CLS_ALU | OP_RSH,
    CLS_ALU | OP_AND,
    CLS_JMP | OP_JA,
    CLS_JMP | OP_JEQ,
    CLS_JMP | OP_JNE,
    CLS_JMP | OP_EXIT,
}


def decode(code: bytes) -> list[tuple[int, int, int, int, int]]:
    assert len(code) % 8 == 0
    out = []
    for i in range(0, len(code), 8):
        op, regs, off, imm = struct.unpack("=BBhi", code[i : i + 8])
        dst, src = (regs & 0xF, regs >> 4) if sys.byteorder == "little" else (regs >> 4, regs & 0xF)
        out.append((op, dst, src, off, imm))
    return out


def check_static(insns: Sequence[tuple[int, int, int, int, int]]) -> None:
    """What the kernel's verifier checks before it runs anything: known opcodes,
    jumps forward and inside the program, no instruction unreachable, no way to
    fall off the end."""
    reach = {0}
    for pc, (op, _, _, off, _) in enumerate(insns):
        assert op in KNOWN, f"insn {pc}: opcode {op:#x}"
        if pc not in reach:
            raise AssertionError(f"insn {pc} is unreachable")
        if op == CLS_JMP | OP_EXIT:
            continue
        if op & 0x07 == CLS_JMP:
            assert off >= 0, f"insn {pc}: a backward jump"
            reach.add(pc + 1 + off)
            if op == CLS_JMP | OP_JA:
                continue
        reach.add(pc + 1)
    assert max(reach) < len(insns), "the program can run off its end"


def run_bpf(code: bytes, kind: str, major: int, minor: int, access: str) -> int:
    """Run a device program on one request, as the kernel would."""
    insns = decode(code)
    check_static(insns)
    acc = sum({"m": 1, "r": 2, "w": 4}[c] for c in access)
    ctx = struct.pack("=III", {"b": 1, "c": 2}[kind] | acc << 16, major, minor)
    regs: dict[int, Any] = {1: "ctx"}
    pc = 0
    while True:
        op, dst, src, off, imm = insns[pc]
        cls = op & 0x07
        if cls == CLS_LDX:
            assert regs[src] == "ctx" and off in (0, 4, 8)
            regs[dst] = struct.unpack_from("=I", ctx, off)[0]
        elif cls == CLS_ALU:
            value = regs[src] if op & SRC_X else imm & 0xFFFFFFFF
            assert isinstance(value, int)
            if op & 0xF0 == OP_MOV:
                regs[dst] = value
            elif op & 0xF0 == OP_RSH:
                regs[dst] = (regs[dst] & 0xFFFFFFFF) >> value
            else:
                regs[dst] = regs[dst] & value & 0xFFFFFFFF
        elif op == CLS_JMP | OP_EXIT:
            assert regs[0] in (0, 1), "a device program answers 0 or 1"
            return int(regs[0])
        elif op == CLS_JMP | OP_JA:
            pc += off
        else:
            # 64-bit compare with the immediate sign-extended
            left, right = regs[dst], imm & 0xFFFFFFFFFFFFFFFF
            assert isinstance(left, int)
            if (left == right) == (op & 0xF0 == OP_JEQ):
                pc += off
        pc += 1


def test_opcodes_match_the_kernel_headers() -> None:
    assert lib.BPF_LDX | lib.BPF_MEM | lib.BPF_W == D.LDX_MEM_W
    assert lib.BPF_ALU | lib.BPF_MOV | lib.BPF_X == D.MOV32_X
    assert lib.BPF_ALU | lib.BPF_MOV | lib.BPF_K == D.MOV32_K
    assert lib.BPF_ALU | lib.BPF_RSH | lib.BPF_K == D.RSH32_K
    assert lib.BPF_ALU | lib.BPF_AND | lib.BPF_K == D.AND32_K
    assert lib.BPF_JMP | lib.BPF_JEQ | lib.BPF_K == D.JEQ_K
    assert lib.BPF_JMP | lib.BPF_JNE | lib.BPF_K == D.JNE_K
    assert lib.BPF_JMP | lib.BPF_JA == D.JA
    assert lib.BPF_JMP | lib.BPF_EXIT == D.EXIT
    assert (lib.BPF_DEVCG_ACC_MKNOD, lib.BPF_DEVCG_ACC_READ, lib.BPF_DEVCG_ACC_WRITE) == (1, 2, 4)
    assert (lib.BPF_DEVCG_DEV_BLOCK, lib.BPF_DEVCG_DEV_CHAR) == (D.DEV_BLOCK, D.DEV_CHAR)
    # and the interpreter's own table agrees with the generator's numbers
    assert {D.LDX_MEM_W, D.MOV32_X, D.MOV32_K, D.RSH32_K, D.AND32_K} <= KNOWN
    assert {D.JA, D.JEQ_K, D.JNE_K, D.EXIT} <= KNOWN


def test_bpf_program_shapes() -> None:
    # no rules: allow everything; a deny-all ends the walk
    assert run_bpf(bpf_program([]), "c", 1, 1, "rw") == 1
    code = bpf_program(DEFAULT_DEVICE_RULES)
    assert len(code) % 8 == 0
    assert run_bpf(code, "c", 1, 3, "rw") == 1
    assert run_bpf(code, "c", 1, 1, "r") == 0
    assert run_bpf(code, "b", 7, 0, "m") == 1
    # rules before one that covers everything leave no trace
    assert bpf_program([R(True, "c", 1, 3), R(False)]) == bpf_program([R(False)])


ALL_PROBES = [
    (kind, major, minor, acc)
    for kind in "cb"
    for major in (1, 7, 9)
    for minor in (3, 5, 6)
    for acc in ACCESSES
]

rule_st = st.builds(
    DeviceRule,
    allow=st.booleans(),
    type=st.sampled_from(["a", "c", "b"]),
    major=st.sampled_from([None, 1, 7]),
    minor=st.sampled_from([None, 3, 5]),
    access=st.sampled_from(ACCESSES[1:]),
)
rules_st = st.one_of(
    st.lists(rule_st, max_size=8),
    st.lists(rule_st, max_size=8).map(lambda rs: [R(False), *rs]),
    st.lists(rule_st, max_size=4).map(lambda rs: [*DEFAULT_DEVICE_RULES, *rs]),
)


@settings(max_examples=examples(300))
@given(rules=rules_st)
@example(rules=list(DEFAULT_DEVICE_RULES))
@example(rules=[R(False), R(True, "c", 1, 3), R(False, "c", 1, 3, "w")])
@example(rules=[R(True, "a", None, None, "rw"), R(False, "b", 7, None, "r")])
def test_bpf_program_follows_the_model(rules: list[DeviceRule]) -> None:
    code = bpf_program(rules)
    for kind, major, minor, acc in ALL_PROBES:
        want = int(allows(rules, kind, major, minor, acc))
        assert run_bpf(code, kind, major, minor, acc) == want, (kind, major, minor, acc)


# ---- cgroup v1: the writes, checked with an emulation of the controller --------------------

KERNEL_PROBES = [p for p in ALL_PROBES if p[3] in D.KERNEL_REQUESTS]


def _naive_v1(rules: Sequence[DeviceRule]) -> _V1State:
    """The v1 controller after one write per rule from a reset, with no check."""
    default_allow, rest = D.effective_rules(rules)
    state = _V1State(default_allow)
    for r in rest:
        for kind in ("c", "b") if r.type == "a" else (r.type,):
            value = f"{kind} {D.number_text(r.major)}:{D.number_text(r.minor)} {r.access}"
            state.write("devices.allow" if r.allow else "devices.deny", value)
    return state


@settings(max_examples=examples(300))
@given(rules=rules_st)
@example(rules=list(DEFAULT_DEVICE_RULES))
def test_v1_writes_are_exact_or_refused(rules: list[DeviceRule]) -> None:
    """v1_writes either gives the model's answers on every request the kernel
    makes, or refuses, and refuses only what v1 would get wrong."""
    naive = _naive_v1(rules)
    wrong = [p for p in KERNEL_PROBES if naive.allows(*p) != allows(rules, *p)]
    try:
        writes = v1_writes(rules)
    except SpecError as exc:
        assert wrong, f"refused, but v1 would get it right: {exc}"
        assert exc.field.startswith("resources.devices[")
        assert "cgroup v1 cannot express" in str(exc)
        return
    assert not wrong, f"accepted, but v1 answers {wrong[0]} differently"
    state = _V1State.after(writes)
    assert writes[0][1] == "a"  # always from a reset
    for probe in KERNEL_PROBES:
        assert state.allows(*probe) == allows(rules, *probe), probe


def test_v1_writes() -> None:
    assert v1_writes(DEFAULT_DEVICE_RULES)[:3] == [
        ("devices.deny", "a"),
        ("devices.allow", "c *:* m"),
        ("devices.allow", "b *:* m"),
    ]
    assert v1_writes([]) == [("devices.allow", "a")]
    assert v1_writes([R(True, "c", 1, 3), R(False), R(True, "a", 5, None, "r")]) == [
        ("devices.deny", "a"),
        ("devices.allow", "c 5:* r"),  # an "a" rule is a "c" and a "b" rule on v1
        ("devices.allow", "b 5:* r"),
    ]
    # r and w of one device from two rules: v1 merges them into one exception
    rules = [R(False), R(True, "c", 1, 3, "r"), R(True, "c", 1, 3, "w")]
    assert _V1State.after(v1_writes(rules)).list_text() == "c 1:3 rw\n"


@pytest.mark.parametrize(
    ("rules", "index", "why"),
    [
        # a hole in an earlier wildcard allow
        (
            [R(False), R(True, "c", access="m"), R(False, "c", 1, 3, "m")],
            2,
            "deny mknod access to c 1:3",
        ),
        # r and w from different rules of different patterns
        ([R(False), R(True, "c", 1, None, "r"), R(True, "c", 1, 3, "w")], 2, "allow read-write"),
        # an allow carved out of an earlier wildcard deny
        ([R(False, "c", 1, None), R(True, "c", 1, 3, "r")], 1, "allow read access to c 1:3"),
    ],
)
def test_v1_refuses(rules: list[DeviceRule], index: int, why: str) -> None:
    with pytest.raises(SpecError) as info:
        v1_writes(rules)
    assert info.value.field == f"resources.devices[{index}]"
    assert why in str(info.value)


deny_first_st = st.lists(rule_st, max_size=6).map(lambda rs: [R(False), *rs])


@settings(max_examples=examples(200))
@given(old=st.one_of(deny_first_st, rules_st), new=st.one_of(deny_first_st, rules_st))
def test_v1_update_reaches_the_new_rules(old: list[DeviceRule], new: list[DeviceRule]) -> None:
    try:
        state = _V1State.after(v1_writes(old))
        target = _V1State.after(v1_writes(new))
    except SpecError:
        return
    writes = v1_update_writes(state.list_text(), new)
    if not state.default_allow and not target.default_allow:
        assert all(v != "a" for _, v in writes)  # no reset between deny-by-default lists
        # removals first: what both lists allow is never taken away meanwhile
        names = [n for n, _ in writes]
        assert names == sorted(names, key=lambda n: n != "devices.deny")
    for name, value in writes:
        state.write(name, value)
    assert state.default_allow == target.default_allow
    assert state.exceptions == target.exceptions
    for probe in KERNEL_PROBES:
        assert state.allows(*probe) == allows(new, *probe), probe


def test_v1_state_reads_devices_list() -> None:
    text = "c 1:3 rwm\nb *:* m\nc 136:* rw\n"
    state = _V1State.from_list(text)
    assert state is not None and not state.default_allow
    assert state.list_text() == text
    assert _V1State.from_list("a *:* rwm\n") is None  # allow mode: its denies are not shown


# ---- where the rules go, on fake hosts -------------------------------------------------------


def _fake_host(tmp: Path, v1: bool, v2: bool) -> Host:
    tmp.mkdir(exist_ok=True)
    hs = []
    if v2:
        (tmp / "unified").mkdir()
        hs.append(Hierarchy("unified", 2, str(tmp / "unified"), str(tmp / "unified"), frozenset()))
    if v1:
        for name in ("devices", "memory"):
            (tmp / name).mkdir()
            hs.append(Hierarchy(name, 1, str(tmp / name), str(tmp / name), frozenset([name])))
    return Host("hybrid" if v1 and v2 else "legacy" if v1 else "unified", tuple(hs))


def test_program_places_the_rules(tmp_path: Path) -> None:
    res = Resources(devices=DEFAULT_DEVICE_RULES, memory_max="64M")
    hybrid = _fake_host(tmp_path / "h", v1=True, v2=True)
    prog = compile_program(res, hybrid)
    assert prog.kvs["devices"] == v1_writes(DEFAULT_DEVICE_RULES)
    assert prog.devices_v1 == "devices" and prog.n_devices == len(prog.kvs["devices"])
    assert prog.bpf is None
    unified = _fake_host(tmp_path / "u", v1=False, v2=True)
    prog = compile_program(Resources(devices=DEFAULT_DEVICE_RULES), unified)
    assert prog.bpf == bpf_program(DEFAULT_DEVICE_RULES) and prog.bpf_hier == "unified"
    assert prog.kvs == {} and prog.v2_controllers == frozenset()
    # v1 cannot express it, v2 can
    odd = Resources(devices=[R(False), R(True, "c", access="m"), R(False, "c", 1, 3, "m")])
    assert compile_program(odd, unified).bpf is not None
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(SpecError, match=r"resources\.devices\[2\]: cgroup v1 cannot express"):
        Cgroup.create("pynsbind/x", odd, host=hybrid)
    assert sorted(tmp_path.rglob("*")) == before
    with pytest.raises(SpecError, match="neither a v1 devices hierarchy nor cgroup v2"):
        compile_program(res, Host("legacy", (hybrid.hierarchies[2],)))


def test_device_host(tmp_path: Path) -> None:
    hybrid = _fake_host(tmp_path / "h", v1=True, v2=True)
    dh = device_host(hybrid)
    assert dh is not None and [h.name for h in dh.hierarchies] == ["devices"]
    assert device_host(hybrid) is dh  # cached: its laid-out writes stay with it
    unified = _fake_host(tmp_path / "u", v1=False, v2=True)
    assert [h.name for h in device_host(unified).hierarchies] == ["unified"]  # type: ignore[union-attr]
    assert device_host(dataclasses.replace(unified, rootless=True)) is None
    assert device_host(dataclasses.replace(unified, problem="no")) is None
    assert device_host(Host("none")) is None


@pytest.mark.root
def test_attach_failure_leaves_nothing(tmp_path: Path) -> None:
    """A cgroup2 directory that is no cgroup (a plain one, on a fake host) takes
    no program: the error names it and the directory is gone."""
    unified = _fake_host(tmp_path, v1=False, v2=True)
    res = Resources(devices=DEFAULT_DEVICE_RULES)
    for path in ("pynsbind/x", None):
        with pytest.raises(OSError, match="attach the device program to") as info:
            Cgroup.create(path, res, host=unified)
        assert info.value.errno == errno.EBADF
        assert list((tmp_path / "unified").iterdir()) == []


@pytest.mark.root
def test_refused_program_says_why() -> None:
    with pytest.raises(OSError) as info:
        _bpf.load(struct.pack("=BBhi", D.EXIT, 0, 0, 0))  # returns r0, never set
    assert info.value.errno == errno.EACCES
    assert "load a device program (1 instructions): permission denied (verifier:" in str(info.value)
    assert "R0" in str(info.value)


# ---- the real kernel ---------------------------------------------------------------------------


@functools.cache
def v2_host() -> Host | None:
    """This host's cgroup2 tree alone (all of it on a unified host)."""
    h = host()
    if h.problem is not None or h.v2 is None:
        return None
    return dataclasses.replace(h, hierarchies=(h.v2,))


def v1_host() -> Host | None:
    dh = device_host(host())
    return dh if dh is not None and dh.hierarchies[0].version == 1 else None


HOSTS = ["v1", "v2"]


def host_for(which: str) -> Host:
    h = v1_host() if which == "v1" else v2_host()
    if h is None:
        pytest.skip(
            f"this host has no {which} devices hierarchy" if which == "v1" else "no cgroup2"
        )
    return h


class Loop:
    """A loop device: its path, number and content."""

    def __init__(self, path: str, major: int, minor: int, content: bytes) -> None:
        self.path, self.major, self.minor, self.content = path, major, minor, content

    def __repr__(self) -> str:
        return f"Loop({self.path} {self.major}:{self.minor})"


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Loop]:
    """A loop device over a file of known content (removed after)."""
    backing = tmp_path / "disk"
    content = b"".join(b"pynsbind device rules %05d\n" % i for i in range(2048))[: 1 << 16]
    backing.write_bytes(content)
    with contextlib.ExitStack() as stack:
        try:
            dev, major, minor = stack.enter_context(loop_device(backing))
        except Unavailable as exc:
            pytest.skip(str(exc))
        yield Loop(dev, major, minor, content)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Path]:
    """A directory where device nodes work (a filesystem without nodev)."""
    for base in (tmp_path, Path("/dev")):
        d = base / f"pynsbind-nodes-{PID}-{next(_n)}"
        d.mkdir()
        try:
            os.mknod(d / "try", stat.S_IFCHR | 0o600, os.makedev(1, 3))
            os.close(os.open(d / "try", os.O_RDWR))
        except OSError:
            shutil.rmtree(d)
            continue
        try:
            yield d
        finally:
            shutil.rmtree(d)
        return
    pytest.skip("no directory here can hold device nodes")


def _op(op: list[Any]) -> str:
    try:
        if op[0] == "mknod":
            _, path, kind, major, minor = op
            mode = (stat.S_IFCHR if kind == "c" else stat.S_IFBLK) | 0o600
            os.mknod(path, mode, os.makedev(major, minor))
            return "ok"
        if op[0] == "open":
            _, path, acc = op
            flags = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}[acc]
            os.close(os.open(path, flags | os.O_CLOEXEC | os.O_NONBLOCK))
            return "ok"
        _, path, n = op  # read
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return os.read(fd, n).decode("latin-1")
        finally:
            os.close(fd)
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))


def run_in(cg: Cgroup | None, ops: list[list[Any]]) -> list[str]:
    """Fork a child, move it into ``cg`` (None: leave it where it is), let it
    run ``ops`` (mknod, open, read) and report each: "ok", the data read, or
    the errno's name."""

    def move(pid: int, _: object) -> None:
        if cg is not None:
            cg.add(pid)

    def body() -> list[str]:
        checkpoint()  # the parent moves this process meanwhile
        return [_op(op) for op in ops]

    return list(in_child(body, during=move))


def _list(cg: Cgroup) -> str:
    with open(cg.dirs["devices"] + "/devices.list") as f:
        return f.read()


def _programs(cg: Cgroup) -> list[tuple[int, str]]:
    d = cg.dirs["unified"]
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _bpf.attached(fd, d)
    finally:
        os.close(fd)


@pytest.fixture
def warm() -> None:
    """Load the programs the tests use before host_unchanged looks at the fds:
    a loaded program's fd stays open for the process, by design."""
    if v2_host() is not None:
        for rules in (DEFAULT_DEVICE_RULES,):
            _bpf.cached_fd(bpf_program(rules))


@pytest.mark.root
@pytest.mark.cgroup
@pytest.mark.parametrize("which", HOSTS)
def test_default_rules_confine_a_process(
    which: str, loop: Loop, nodes: Path, warm: None, host_unchanged: Any, no_leftovers: None
) -> None:
    h = host_for(which)
    if which == "v2" and host().v1("devices") is not None:
        # on a hybrid host the child stays in the v1 root, which allows all:
        # what it cannot do, the BPF program refused
        assert "a *:* rwm" in Path("/sys/fs/cgroup/devices/devices.list").read_text()
        assert ":devices:/\n" in Path("/proc/self/cgroup").read_text()
    ops: list[list[Any]] = [
        ["open", "/dev/null", "rw"],
        ["mknod", str(nodes / "null"), "c", 1, 3],
        ["open", str(nodes / "null"), "rw"],
        ["mknod", str(nodes / "loop"), "b", loop.major, loop.minor],
        ["read", str(nodes / "loop"), 64],
        ["mknod", str(nodes / "kmsg"), "c", 1, 11],
        ["open", str(nodes / "kmsg"), "r"],
        ["open", "/dev/full", "w"],
    ]
    # without rules (the same child, its own cgroups): everything works
    free = run_in(None, ops)
    assert free == ["ok", "ok", "ok", "ok", loop.content[:64].decode(), "ok", "ok", "ok"]
    for name in ("null", "loop", "kmsg"):
        os.unlink(nodes / name)
    with Cgroup.create(None, Resources(devices=DEFAULT_DEVICE_RULES), host=h) as cg:
        assert list(cg.dirs) == [h.hierarchies[0].name]  # one hierarchy: nothing else
        if which == "v1":
            assert _V1State.from_list(_list(cg)) is not None  # deny by default
        else:
            assert [name for _, name in _programs(cg)] == ["pynsbind_dev"]
        got = run_in(cg, ops)
        assert got == ["ok", "ok", "ok", "ok", "EPERM", "ok", "EPERM", "ok"]


@pytest.mark.root
@pytest.mark.cgroup
@pytest.mark.parametrize(
    "resources", [None, Resources(pids_max=64)], ids=["no resources", "resources"]
)
def test_a_container_cgroup_made_at_a_path_has_the_default_rules(
    resources: Resources | None, no_leftovers: None
) -> None:
    """Spec(cgroup=PATH), with or without resources: the cgroup pynsbind makes at
    that path confines devices as the fresh one it makes otherwise does."""
    import pynsbind

    path = f"pynsbind-dev-{PID}-{next(_n)}"
    ns = pynsbind.Namespace.PID | pynsbind.Namespace.MNT
    spec = pynsbind.Spec(args=["sleep", "1000"], namespaces=ns, cgroup=path, resources=resources)
    with pynsbind.spawn(spec) as proc:
        cg = proc.cgroup
        assert cg is not None and cg.path == path
        got = run_in(cg, [["open", "/dev/kmsg", "r"], ["open", "/dev/zero", "r"]])
        assert got == ["EPERM", "ok"]


@pytest.mark.root
@pytest.mark.cgroup
@pytest.mark.parametrize("which", HOSTS)
def test_update_replaces_the_rules(which: str, loop: Loop, nodes: Path, no_leftovers: None) -> None:
    h = host_for(which)
    os.mknod(nodes / "loop", stat.S_IFBLK | 0o600, os.makedev(loop.major, loop.minor))
    read = [["read", str(nodes / "loop"), 16], ["open", "/dev/null", "rw"]]
    with_loop = (*DEFAULT_DEVICE_RULES, *rules_for_nodes([("b", loop.major, loop.minor)]))
    with Cgroup.create(None, Resources(devices=DEFAULT_DEVICE_RULES), host=h) as cg:
        assert run_in(cg, read) == ["EPERM", "ok"]
        first = _programs(cg) if which == "v2" else None
        cg.update(Resources(devices=with_loop))
        assert run_in(cg, read) == [loop.content[:16].decode(), "ok"]
        if which == "v1":
            want = _V1State.after(v1_writes(with_loop)).list_text()
            assert sorted(_list(cg).splitlines()) == sorted(want.splitlines())
        else:
            now = _programs(cg)
            assert len(now) == 1 and now != first  # replaced, not added
        cg.update(Resources(devices=with_loop))  # the same again: no change
        if which == "v2":
            assert _programs(cg) == now
        cg.update(Resources(devices=DEFAULT_DEVICE_RULES))
        assert run_in(cg, read) == ["EPERM", "ok"]
        cg.update(Resources(devices=[]))  # no rules: everything allowed again
        assert run_in(cg, read) == [loop.content[:16].decode(), "ok"]
        cg.update(Resources())  # devices not given: left as they are
        assert run_in(cg, read)[0] != "EPERM"


@pytest.mark.root
@pytest.mark.cgroup
@pytest.mark.parametrize("which", HOSTS)
def test_update_adds_rules_to_a_cgroup_without_any(which: str, no_leftovers: None) -> None:
    h = host_for(which)
    with Cgroup.create(None, host=h) as cg:
        assert run_in(cg, [["open", "/dev/kmsg", "r"]]) == ["ok"]
        cg.update(Resources(devices=DEFAULT_DEVICE_RULES))
        assert run_in(cg, [["open", "/dev/kmsg", "r"], ["open", "/dev/zero", "r"]]) == [
            "EPERM",
            "ok",
        ]


@pytest.mark.root
@pytest.mark.cgroup
def test_v1_update_with_child_cgroups(no_leftovers: None) -> None:
    h = host_for("v1")
    path = f"pynsbind-dev-{PID}-{next(_n)}"
    with Cgroup.create(path, Resources(devices=DEFAULT_DEVICE_RULES), host=h) as cg:
        child = cg.dirs["devices"] + "/sub"
        os.mkdir(child)
        try:
            # deny-by-default to deny-by-default: no reset, so the kernel takes it
            cg.update(Resources(devices=[*DEFAULT_DEVICE_RULES, R(True, "c", 10, 200)]))
            assert "c 10:200 rwm" in _list(cg)
            # to allow-by-default takes a reset, which v1 refuses with a child
            with pytest.raises(
                OSError, match="cgroup v1 takes no reset of a cgroup that has"
            ) as info:
                cg.update(Resources(devices=[R(False, "c", 1, 1)]))
            assert info.value.errno == errno.EINVAL
        finally:
            os.rmdir(child)


@pytest.mark.root
@pytest.mark.cgroup
def test_bad_rules_create_nothing(host_unchanged: HostState, no_leftovers: None) -> None:
    h = v1_host()
    if h is None:
        pytest.skip("needs a v1 devices hierarchy (v2 can express any list)")
    odd = Resources(devices=[R(False), R(True, "c", access="m"), R(False, "c", 1, 3, "m")])
    before = pynsbind_cgroups(pid=PID)
    for path in (None, f"pynsbind-dev-{PID}-{next(_n)}"):
        with pytest.raises(SpecError) as info:
            Cgroup.create(path, odd, host=h)
        assert info.value.field == "resources.devices[2]"
        assert pynsbind_cgroups(pid=PID) == before
    assert host_unchanged.diff(HostState.now()) == {}


@pytest.mark.root
@pytest.mark.cgroup
def test_stale_program_fd_is_loaded_again(no_leftovers: None) -> None:
    """The cached program fd, closed and reused behind pynsbind's back (here:
    an fd of /dev/null in its place): the attach fails, the program is loaded
    again, the cgroup gets it."""
    h = host_for("v2")
    rules = (R(False), R(True, "c", 1, 5))
    code = bpf_program(rules)
    res = Resources(devices=rules)
    Cgroup.create(None, res, host=h).delete()  # the fast path is laid out
    real = bpf_program_cache()[code]
    bogus = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.dup2(bogus, real)  # the number now holds something else
        cg = Cgroup.create(None, res, host=h)
        try:
            assert bpf_program_cache()[code] != real
            assert run_in(cg, [["open", "/dev/zero", "r"], ["open", "/dev/null", "r"]]) == [
                "ok",
                "EPERM",
            ]
        finally:
            cg.delete()
    finally:
        os.close(bogus)
        os.close(real)


@pytest.mark.root
@pytest.mark.cgroup
def test_a_long_list_passes_the_verifier(no_leftovers: None) -> None:
    """1500 rules: the kernel's verifier walks the program in linear work (a
    layout that made it quadratic went past its limit of a million steps)."""
    h = host_for("v2")
    many = rules_for_nodes([("c", 300 + i, i) for i in range(1500)])
    rules = (*DEFAULT_DEVICE_RULES, *many)
    with Cgroup.create(None, Resources(devices=rules), host=h) as cg:
        got = run_in(cg, [["open", "/dev/null", "rw"], ["open", "/dev/kmsg", "r"]])
        assert got == ["ok", "EPERM"]


@pytest.mark.root
@pytest.mark.cgroup
def test_device_host_cgroup(no_leftovers: None) -> None:
    """device_host(): create (twice: the second is the one-call fast path),
    add, delete, in that one hierarchy."""
    dh = device_host(host())
    if dh is None:
        pytest.skip("no device hierarchy here")
    res = Resources(devices=DEFAULT_DEVICE_RULES)
    for _ in range(2):
        cg = Cgroup.create(None, res, host=dh)
        try:
            assert [os.path.dirname(d) for d in cg.dirs.values()] == [dh.hierarchies[0].base]
            assert run_in(cg, [["open", "/dev/kmsg", "r"]]) == ["EPERM"]
        finally:
            cg.delete()
        assert not cg.exists()


# ---- the real kernel against the model ----------------------------------------------------


#: a placeholder minor in generated rules: the loop device's, at run time
LOOP_MINOR = 99
real_rule_st = st.builds(
    DeviceRule,
    allow=st.booleans(),
    type=st.sampled_from(["a", "c", "b"]),
    major=st.sampled_from([None, 1, 7]),
    minor=st.sampled_from([None, 3, 5, LOOP_MINOR]),
    access=st.sampled_from(ACCESSES[1:]),
)
real_rules_st = st.one_of(
    st.lists(real_rule_st, max_size=6),
    st.lists(real_rule_st, max_size=6).map(lambda rs: [R(False), *rs]),
)


@pytest.mark.root
@pytest.mark.cgroup
@pytest.mark.slow
@settings(max_examples=examples(4))
@given(rules=real_rules_st)
@example(rules=[*DEFAULT_DEVICE_RULES, R(True, "b", 7, LOOP_MINOR, "r")])
def test_kernel_agrees_with_the_model(rules: list[DeviceRule], loop: Loop, nodes: Path) -> None:
    """Generated rule lists, on the real kernel (v1 where the host has it and v1
    can express the list, and v2): mknod and open of null, zero and the loop
    device give EPERM exactly where the model says no."""
    if loop.major != 7:
        pytest.skip(f"loop devices have major {loop.major} here")
    rules = [
        dataclasses.replace(r, minor=loop.minor) if r.minor == LOOP_MINOR else r for r in rules
    ]
    devs = [("c", 1, 3), ("c", 1, 5), ("b", loop.major, loop.minor)]
    n = next(_n)
    ops: list[list[Any]] = []
    for kind, major, minor in devs:
        ops.append(["mknod", str(nodes / f"m{n}-{kind}{major}-{minor}"), kind, major, minor])
        node = nodes / f"o{n}-{kind}{major}-{minor}"
        os.mknod(
            node, (stat.S_IFCHR if kind == "c" else stat.S_IFBLK) | 0o600, os.makedev(major, minor)
        )
        ops += [["open", str(node), acc] for acc in ("r", "w", "rw")]
    want = []
    for kind, major, minor in devs:
        want += [
            "ok" if allows(rules, kind, major, minor, acc) else "EPERM" for acc in D.KERNEL_REQUESTS
        ]
    for which in HOSTS:
        h = v1_host() if which == "v1" else v2_host()
        if h is None:
            continue
        try:
            cg = Cgroup.create(None, Resources(devices=rules), host=h)
        except SpecError:
            assert which == "v1"
            continue
        try:
            got = run_in(cg, ops)
        finally:
            cg.delete()
            for p in nodes.glob(f"m{n}-*"):
                p.unlink()
        assert got == want, (which, [str(r) for r in rules])
