"""Device rules: which device nodes the processes of a cgroup may create and open.

A rule list follows OCI ``linux.resources.devices``: each :class:`DeviceRule`
allows or denies some access (``r`` read, ``w`` write, ``m`` mknod) to some
devices (a type ``c``/``b``/``a``, a major and a minor, each possibly "any").
Rules apply in order and a later rule overrides an earlier one; what no rule
covers is allowed (the kernel's default), so a list that denies by default
starts with ``DeviceRule(allow=False)`` (deny everything).

The model is exact per access bit: the kernel asks about one device and a set
of bits (mknod asks ``m``; open asks ``r``, ``w`` or ``rw``), each bit is decided
by the last rule that covers that device and that bit, and the request passes
when every bit it asks for is allowed (:func:`allows`).  So ``deny c 1:3 w``
after ``allow c 1:3 rwm`` refuses an open for reading and writing, not only one
for writing.  A request for no access at all (``access(2)`` with ``F_OK``) is
allowed.

The kernel enforces the rules in one of two ways:

- cgroup v1, the devices controller: :func:`v1_writes` turns a list into writes
  to ``devices.deny`` and ``devices.allow`` that reset the cgroup and give it
  exactly the list's effect, and refuses a list that the controller's single
  exception list cannot express (an allow carved out of an earlier wildcard
  deny, or the reverse; ``r`` and ``w`` of one device granted by different
  rules);
- cgroup v2: :func:`bpf_program` compiles the list into a
  ``BPF_PROG_TYPE_CGROUP_DEVICE`` program (attached by pynsbind.cgroups).

Everything here is pure logic; docs/cgroups.md ("Device rules") has the rest.
"""

from __future__ import annotations

import functools
import struct
import sys
from collections.abc import Iterable, Mapping, Sequence

from pynsbind._record import record
from pynsbind.errors import SpecError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any, Literal

    DeviceType = Literal["a", "c", "b"]


__all__ = [
    "DEFAULT_DEVICE_RULES",
    "DeviceRule",
    "V1State",
    "allows",
    "bpf_program",
    "effective_rules",
    "number_text",
    "rules_for_nodes",
    "v1_update_writes",
    "v1_writes",
]


#: the largest major and minor a device number holds (12 and 20 bits)
MAJOR_MAX = (1 << 12) - 1
MINOR_MAX = (1 << 20) - 1

# the kernel's access bits (BPF_DEVCG_ACC_*, the same as the v1 controller's)
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4
ACC_ALL = ACC_MKNOD | ACC_READ | ACC_WRITE
_BIT = {"r": ACC_READ, "w": ACC_WRITE, "m": ACC_MKNOD}
# the device types (BPF_DEVCG_DEV_*)
DEV_BLOCK, DEV_CHAR = 1, 2
_DEV = {"b": DEV_BLOCK, "c": DEV_CHAR}

#: the requests the kernel makes: mknod, open for reading, writing, both
KERNEL_REQUESTS = ("m", "r", "w", "rw")


def access_bits(access: str) -> int:
    out = 0
    for ch in access:
        out |= _BIT[ch]
    return out


def access_text(bits: int) -> str:
    return "".join(ch for ch in "rwm" if bits & _BIT[ch])


def _num(value: object, where: str, hi: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(where, f"expected an integer (or None for any), got {value!r}")
    if value == -1:
        return None
    if not 0 <= value <= hi:
        raise SpecError(where, f"{value} is out of range (0..{hi}, or -1 for any)")
    return value


def _access(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise SpecError(where, f"expected a string such as 'rwm', got {value!r}")
    if not value:
        raise SpecError(where, "is empty (use a combination of r, w and m)")
    bad = sorted(set(value) - set("rwm"))
    if bad:
        raise SpecError(
            where, f"{value!r} holds {''.join(bad)!r} (use a combination of r, w and m)"
        )
    return access_text(access_bits(value))


@record(frozen=True)
class DeviceRule:
    """One OCI ``linux.resources.devices`` entry.

    ``type`` is ``c`` (character), ``b`` (block) or ``a`` (both); ``major`` and
    ``minor`` None (or -1) match any; ``access`` is a non-empty combination of
    ``r``, ``w`` and ``m``, normalised to that order."""

    allow: bool
    type: DeviceType = "a"
    major: int | None = None
    minor: int | None = None
    access: str = "rwm"

    def __post_init__(self) -> None:
        self._check("DeviceRule")

    def _check(self, where: str) -> None:
        if not isinstance(self.allow, bool):
            raise SpecError(f"{where}.allow", f"expected true or false, got {self.allow!r}")
        if self.type not in ("a", "c", "b"):
            raise SpecError(f"{where}.type", f"'a', 'c' or 'b', not {self.type!r}")
        put = object.__setattr__
        put(self, "major", _num(self.major, f"{where}.major", MAJOR_MAX))
        put(self, "minor", _num(self.minor, f"{where}.minor", MINOR_MAX))
        put(self, "access", _access(self.access, f"{where}.access"))

    @classmethod
    def from_oci(cls, data: Mapping[str, Any], where: str) -> DeviceRule:
        """An entry of OCI ``linux.resources.devices``: ``allow`` (required),
        ``type`` (default ``a``), ``major`` and ``minor`` (absent or -1: any),
        ``access`` (default ``rwm``).  SpecError names ``where`` and the key."""
        if not isinstance(data, Mapping):
            raise SpecError(
                where,
                f"expected an object such as {{'allow': false, 'access': 'rwm'}}, got {data!r}",
            )
        unknown = sorted(set(data) - {"allow", "type", "major", "minor", "access"})
        if unknown:
            raise SpecError(where, f"unknown keys {unknown}")
        if "allow" not in data:
            raise SpecError(f"{where}.allow", "is required")
        rule = object.__new__(cls)
        put = object.__setattr__
        put(rule, "allow", data["allow"])
        put(rule, "type", data.get("type", "a"))
        put(rule, "major", data.get("major"))
        put(rule, "minor", data.get("minor"))
        put(rule, "access", data.get("access", "rwm"))
        rule._check(where)
        return rule

    def to_oci(self) -> dict[str, Any]:
        out: dict[str, Any] = {"allow": self.allow, "type": self.type}
        if self.major is not None:
            out["major"] = self.major
        if self.minor is not None:
            out["minor"] = self.minor
        out["access"] = self.access
        return out

    @property
    def everything(self) -> bool:
        """Whether this rule covers every device and every access (``a *:* rwm``)."""
        return (
            self.type == "a" and self.major is None and self.minor is None and self.access == "rwm"
        )

    def __str__(self) -> str:
        verb = "allow" if self.allow else "deny"
        return (
            f"{verb} {self.type} {number_text(self.major)}:{number_text(self.minor)} {self.access}"
        )


def number_text(n: int | None) -> str:
    return "*" if n is None else str(n)


#: runc's and crun's defaults on top of a deny-all: mknod of any node, and
#: null, zero, full, random, urandom, tty, ptmx and the pty slaves (/dev/pts/*).
#: Not /dev/console (5:1: a container's console is a pty, 136:N) and not
#: /dev/net/tun (10:200, which runc dropped in 1.2.0 and put back in 1.2.4 only
#: for compatibility): add it with rules_for_nodes([("c", 10, 200)]).
DEFAULT_DEVICE_RULES: tuple[DeviceRule, ...] = (
    DeviceRule(allow=False),
    DeviceRule(allow=True, type="c", access="m"),
    DeviceRule(allow=True, type="b", access="m"),
    DeviceRule(allow=True, type="c", major=1, minor=3),  # null
    DeviceRule(allow=True, type="c", major=1, minor=5),  # zero
    DeviceRule(allow=True, type="c", major=1, minor=7),  # full
    DeviceRule(allow=True, type="c", major=1, minor=8),  # random
    DeviceRule(allow=True, type="c", major=1, minor=9),  # urandom
    DeviceRule(allow=True, type="c", major=5, minor=0),  # tty
    DeviceRule(allow=True, type="c", major=5, minor=2),  # ptmx
    DeviceRule(allow=True, type="c", major=136),  # /dev/pts/*
)


def rules_for_nodes(nodes: Iterable[tuple[str, int, int]]) -> tuple[DeviceRule, ...]:
    """``rwm`` allow rules for device nodes given as ``(type, major, minor)``
    (type ``c`` or ``b``), in order, without repeats."""
    out: list[DeviceRule] = []
    for i, node in enumerate(nodes):
        if not isinstance(node, tuple) or len(node) != 3:
            raise SpecError(f"devices[{i}]", f"expected (type, major, minor), got {node!r}")
        kind, major, minor = node
        if kind not in ("c", "b"):
            raise SpecError(f"devices[{i}].type", f"'c' or 'b', not {kind!r}")
        for name, value in (("major", major), ("minor", minor)):
            if value is None or value == -1:
                raise SpecError(f"devices[{i}].{name}", "a device node has a number, not 'any'")
        rule = DeviceRule(allow=True, type=kind, major=major, minor=minor)  # type: ignore[arg-type]
        if rule not in out:
            out.append(rule)
    return tuple(out)


def normalize_rules(value: object, where: str) -> tuple[DeviceRule, ...]:
    """A sequence of DeviceRule or OCI mappings as a tuple of DeviceRule."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise SpecError(where, f"expected a sequence of DeviceRule or OCI entries, got {value!r}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, DeviceRule):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(DeviceRule.from_oci(item, f"{where}[{i}]"))
        else:
            raise SpecError(f"{where}[{i}]", f"expected a DeviceRule or an OCI entry, got {item!r}")
    return tuple(out)


# ---- the model -----------------------------------------------------------------------


def _covers(rule: DeviceRule, kind: str, major: int, minor: int) -> bool:
    return (
        (rule.type == "a" or rule.type == kind)
        and (rule.major is None or rule.major == major)
        and (rule.minor is None or rule.minor == minor)
    )


def allows(rules: Sequence[DeviceRule], kind: str, major: int, minor: int, access: str) -> bool:
    """Whether ``rules`` let a process ask for ``access`` (``m``, ``r``, ``w``,
    ``rw``...) on the device ``kind major:minor`` (kind ``c`` or ``b``): each bit
    asked for is decided by the last rule that covers the device and the bit,
    and one no rule covers is allowed.  This is the reference both enforcement
    paths are checked against."""
    return _allows(rules, kind, major, minor, access_bits(access), True)


def _allows(
    rules: Sequence[DeviceRule], kind: str, major: int, minor: int, want: int, default: bool
) -> bool:
    for rule in reversed(rules):
        if not want:
            break
        bits = want & access_bits(rule.access)
        if bits and _covers(rule, kind, major, minor):
            if not rule.allow:
                return False
            want &= ~bits
    return default or not want


def effective_rules(rules: Sequence[DeviceRule]) -> tuple[bool, Sequence[DeviceRule]]:
    """(whether the list starts from allow-all, the rules after the last rule
    that covers everything, which makes every earlier one irrelevant)."""
    for i in range(len(rules) - 1, -1, -1):
        if rules[i].everything:
            return rules[i].allow, rules[i + 1 :]
    return True, rules


# ---- cgroup v1 -----------------------------------------------------------------------

Key = tuple[str, "int | None", "int | None"]


class V1State:
    """The state of a v1 devices cgroup as the kernel keeps it: a default
    (allow or deny) and an exception list, one entry per (type, major, minor)
    pattern with its access bits merged (security/device_cgroup.c)."""

    def __init__(self, default_allow: bool = True) -> None:
        self.default_allow = default_allow
        self.exceptions: dict[Key, int] = {}

    @classmethod
    def after(cls, writes: Iterable[tuple[str, str]]) -> V1State:
        state = cls()
        for name, value in writes:
            state.write(name, value)
        return state

    @classmethod
    def from_list(cls, text: str) -> V1State | None:
        """From devices.list; None for a cgroup in allow mode, whose deny
        exceptions the file does not show."""
        state = cls(default_allow=False)
        for line in text.splitlines():
            if not line.strip():
                continue
            kind, nums, acc = line.split()
            if kind == "a":
                return None
            major, _, minor = nums.partition(":")
            key = (kind, None if major == "*" else int(major), None if minor == "*" else int(minor))
            state.exceptions[key] = state.exceptions.get(key, 0) | access_bits(acc)
        return state

    def write(self, name: str, value: str) -> None:
        allow = name == "devices.allow"
        if value == "a":
            self.default_allow = allow
            self.exceptions = {}
            return
        kind, nums, acc = value.split()
        major, _, minor = nums.partition(":")
        key = (kind, None if major == "*" else int(major), None if minor == "*" else int(minor))
        bits = access_bits(acc)
        if allow == self.default_allow:  # an exception taken away
            left = self.exceptions.get(key, 0) & ~bits
            if left:
                self.exceptions[key] = left
            else:
                self.exceptions.pop(key, None)
        else:  # an exception added, merged with one of the same pattern
            self.exceptions[key] = self.exceptions.get(key, 0) | bits

    def near(self, major: int) -> V1State:
        """The same state with only the exceptions that can cover ``major``."""
        out = V1State(self.default_allow)
        out.exceptions = {k: v for k, v in self.exceptions.items() if k[1] is None or k[1] == major}
        return out

    def allows(self, kind: str, major: int, minor: int, access: str) -> bool:
        """The kernel's check: in allow mode, no exception may share a bit with
        the request; in deny mode, one exception must hold all of it."""
        want = access_bits(access)
        for (k, ma, mi), bits in self.exceptions.items():
            if k != kind or (ma is not None and ma != major) or (mi is not None and mi != minor):
                continue
            if self.default_allow and want & bits:
                return False
            if not self.default_allow and not want & ~bits:
                return True
        return self.default_allow

    def list_text(self) -> str:
        """What devices.list shows for this state."""
        if self.default_allow:
            return "a *:* rwm\n"
        return "".join(
            f"{k} {number_text(ma)}:{number_text(mi)} {access_text(bits)}\n"
            for (k, ma, mi), bits in self.exceptions.items()
        )


def _probe_points(rules: Sequence[DeviceRule]) -> list[tuple[int, int]]:
    """(major, minor) pairs that stand for every device: two devices that the
    same rules cover get the same answer from the model and from v1, so one
    device per class of covering rules is enough.  -1 stands for a number no
    rule names."""
    majors = {r.major for r in rules if r.major is not None and r.minor is None}
    minors = {r.minor for r in rules if r.major is None and r.minor is not None}
    points = {(ma, mi) for ma in [*majors, -1] for mi in [*minors, -1]}
    points.update((r.major, r.minor) for r in rules if r.major is not None and r.minor is not None)
    return sorted(points)


def v1_writes(
    rules: Sequence[DeviceRule], *, where: str = "resources.devices"
) -> list[tuple[str, str]]:
    """The writes (``devices.deny`` / ``devices.allow``, value) that give a v1
    devices cgroup exactly the effect of ``rules``: a reset (``a`` into
    devices.deny when the list starts from deny-all, into devices.allow
    otherwise), then one write per rule after the last rule that covers
    everything (two for an ``a`` rule, which v1 writes as ``c`` and ``b``).

    SpecError (naming ``where[i]``, the rule at fault) when v1 cannot express
    the list: the result is checked against :func:`allows` for every kind of
    device the rules tell apart and every request the kernel makes."""
    return list(_v1_writes(tuple(rules), where))


@functools.lru_cache(maxsize=256)
def _v1_writes(rules: tuple[DeviceRule, ...], where: str) -> tuple[tuple[str, str], ...]:
    default_allow, rest = effective_rules(rules)
    writes = [("devices.allow" if default_allow else "devices.deny", "a")]
    for rule in rest:
        name = "devices.allow" if rule.allow else "devices.deny"
        nums = f"{number_text(rule.major)}:{number_text(rule.minor)}"
        for kind in ("c", "b") if rule.type == "a" else (rule.type,):
            writes.append((name, f"{kind} {nums} {rule.access}"))
    state = V1State.after(writes)
    by_major: dict[int, tuple[list[DeviceRule], V1State]] = {}
    for major, minor in _probe_points(rest):
        # the rules and exceptions that can cover this major, found once for it
        near = by_major.get(major)
        if near is None:
            near = by_major[major] = (
                [r for r in rest if r.major is None or r.major == major],
                state.near(major),
            )
        for kind in ("c", "b"):
            for req in KERNEL_REQUESTS:
                want = _allows(near[0], kind, major, minor, access_bits(req), default_allow)
                if near[1].allows(kind, major, minor, req) != want:
                    raise _inexpressible(rules, where, kind, major, minor, req, want)
    return tuple(writes)


def _inexpressible(
    rules: Sequence[DeviceRule], where: str, kind: str, major: int, minor: int, req: str, want: bool
) -> SpecError:
    # the rule at fault: the last one that decides a bit of the request
    culprit = 0
    for i in range(len(rules) - 1, -1, -1):
        r = rules[i]
        if access_bits(r.access) & access_bits(req) and _covers(r, kind, major, minor):
            culprit = i
            break
    dev = f"{kind} {'N' if major < 0 else major}:{'N' if minor < 0 else minor}"
    what = {"m": "mknod", "r": "read", "w": "write", "rw": "read-write"}[req]
    return SpecError(
        f"{where}[{culprit}]",
        f"cgroup v1 cannot express {rules[culprit]} after the rules before it: the rules "
        f"{'allow' if want else 'deny'} {what} access to {dev} but the v1 devices controller "
        f"would {'deny' if want else 'allow'} it (its exception list cannot take part of an "
        "earlier wildcard rule away, nor combine r and w granted by different rules)",
    )


def v1_update_writes(current_list: str, rules: Sequence[DeviceRule]) -> list[tuple[str, str]]:
    """The writes that take a v1 devices cgroup whose devices.list reads
    ``current_list`` to the state of ``rules``.  Between two deny-by-default
    lists no reset is needed: the exceptions that go away are removed first,
    then the new ones added, so that what both lists allow stays allowed
    throughout (and a cgroup with children takes it).  Otherwise it is the full
    reset of :func:`v1_writes`."""
    writes = v1_writes(rules)
    target = V1State.after(writes)
    current = V1State.from_list(current_list)
    if current is None or target.default_allow:
        return writes
    out = []
    for (kind, ma, mi), bits in current.exceptions.items():
        dropped = bits & ~target.exceptions.get((kind, ma, mi), 0)
        if dropped:
            out.append(
                (
                    "devices.deny",
                    f"{kind} {number_text(ma)}:{number_text(mi)} {access_text(dropped)}",
                )
            )
    for (kind, ma, mi), bits in target.exceptions.items():
        gained = bits & ~current.exceptions.get((kind, ma, mi), 0)
        if gained:
            out.append(
                (
                    "devices.allow",
                    f"{kind} {number_text(ma)}:{number_text(mi)} {access_text(gained)}",
                )
            )
    return out


# ---- cgroup v2: the BPF program ------------------------------------------------------------

# eBPF opcodes (include/uapi/linux/bpf.h, bpf_common.h); the tests decode them
# with their own table, and the build checks these against the kernel headers
# (csrc/bpf.h)
LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
MOV32_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
MOV32_K = 0xB4  # BPF_ALU | BPF_MOV | BPF_K
RSH32_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
AND32_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K
JA = 0x05  # BPF_JMP | BPF_JA
EXIT = 0x95  # BPF_JMP | BPF_EXIT

# registers: r1 the context on entry, then a scratch register; r0 the answer
_R0, _R1, _TYPE, _WANT, _MAJOR, _MINOR = 0, 1, 2, 3, 4, 5

# struct bpf_cgroup_dev_ctx: access_type (type | access << 16), major, minor
_CTX_ACCESS, _CTX_MAJOR, _CTX_MINOR = 0, 4, 8

Insn = tuple[int, int, int, int, int]  # code, dst, src, off, imm


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> Insn:
    return (code, dst, src, off, imm)


def _ret(value: int) -> list[Insn]:
    return [_insn(MOV32_K, _R0, imm=value), _insn(EXIT)]


def _rule_block(rule: DeviceRule) -> list[Insn]:
    """One rule: the checks that skip to the next block (a jump to the end of
    this one), then its decision on the bits still wanted (in _WANT)."""
    tests: list[tuple[int, int]] = []
    if rule.type != "a":
        tests.append((_TYPE, _DEV[rule.type]))
    if rule.major is not None:
        tests.append((_MAJOR, rule.major))
    if rule.minor is not None:
        tests.append((_MINOR, rule.minor))
    acc = access_bits(rule.access)
    body: list[Insn]
    skip_at: list[int] = []  # instructions whose offset is "to the next block"
    if not rule.allow and acc == ACC_ALL:
        body = _ret(0)  # something is wanted (the entry check) and all of it is denied
    elif not rule.allow:
        # a wanted bit among those denied: refuse
        body = [
            _insn(MOV32_X, _R1, _WANT),
            _insn(AND32_K, _R1, imm=acc),
            _insn(JEQ_K, _R1, imm=0),
            *_ret(0),
        ]
        skip_at = [2]
    elif acc == ACC_ALL:
        body = _ret(1)  # whatever is still wanted is allowed
    else:
        # these bits are allowed; done when nothing else is wanted
        body = [_insn(AND32_K, _WANT, imm=ACC_ALL & ~acc), _insn(JNE_K, _WANT, imm=0), *_ret(1)]
        skip_at = [1]
    # each test falls through to a jump to the next rule when the value differs,
    # and jumps over it when equal: the kernel's verifier follows the fall
    # through first, so it walks all the rules with nothing learnt before it
    # meets a register whose value it learnt, and prunes those states as
    # covered (with the plain "jne to the next rule", it met the narrow states
    # first and walked every later rule again with each: quadratic)
    block: list[Insn] = []
    for reg, value in tests:
        block += [_insn(JEQ_K, reg, off=1, imm=value), _insn(JA)]
    skip_at = [i for i in range(len(block)) if i % 2] + [len(block) + i for i in skip_at]
    block += body
    for i in skip_at:
        code, dst, src, _, imm = block[i]
        block[i] = (code, dst, src, len(block) - i - 1, imm)
    return block


def bpf_program(rules: Sequence[DeviceRule]) -> bytes:
    """A ``BPF_PROG_TYPE_CGROUP_DEVICE`` program with the effect of ``rules``
    (see :func:`allows`), as eBPF instructions of 8 bytes each.

    It reads the device type, major, minor and the access bits asked for from
    ``struct bpf_cgroup_dev_ctx``, answers 1 (allow) when no bit is asked for,
    then walks the rules from the last to the first: a rule that covers the
    device and denies a wanted bit returns 0; one that allows bits takes them
    off the wanted set and returns 1 once none is left.  The walk stops at the
    last rule that covers everything (nothing before it can matter); a walk
    that runs out allows what is left, as the kernel does without rules."""
    return _encode(tuple(_program(tuple(rules))))


@functools.lru_cache(maxsize=256)
def _program(rules: tuple[DeviceRule, ...]) -> tuple[Insn, ...]:
    code = [
        _insn(LDX_MEM_W, _TYPE, _R1, _CTX_ACCESS),
        _insn(LDX_MEM_W, _MAJOR, _R1, _CTX_MAJOR),
        _insn(LDX_MEM_W, _MINOR, _R1, _CTX_MINOR),
        _insn(MOV32_X, _WANT, _TYPE),
        _insn(RSH32_K, _WANT, imm=16),
        _insn(AND32_K, _WANT, imm=ACC_ALL),  # bits the kernel may add later are ignored
        _insn(AND32_K, _TYPE, imm=0xFFFF),
        _insn(JNE_K, _WANT, off=2, imm=0),
        *_ret(1),
    ]
    falls_through = True
    for rule in reversed(rules):
        code += _rule_block(rule)
        if rule.everything:
            falls_through = False
            break
    if falls_through:
        code += _ret(1)
    return tuple(code)


_LITTLE = sys.byteorder == "little"


def _encode(insns: Sequence[Insn]) -> bytes:
    # struct bpf_insn { __u8 code; __u8 dst_reg:4, src_reg:4; __s16 off; __s32 imm; }:
    # the bit-fields fill the byte from its low end on little-endian machines
    out = bytearray()
    for code, dst, src, off, imm in insns:
        regs = (src << 4) | dst if _LITTLE else (dst << 4) | src
        out += struct.pack("=BBhi", code, regs, off, imm)
    return bytes(out)
