"""pynsbind.seccomp without the kernel: profiles (validation, OCI JSON), their
compilation by libseccomp, the default profile's lists, the import cost, and
Response.  The filters on the kernel and seccomp notify are in
tests/test_seccomp_kernel.py.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pynsbind import lowlevel as L
from pynsbind.errors import SpecError
from pynsbind.seccomp import (
    Action,
    ArgCondition,
    Response,
    SeccompProfile,
    SyscallRule,
    default_profile,
    notif_id_valid,
    notif_recv,
    notif_send,
)

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parent.parent
Cap = L.Capability


# ---- validation -----------------------------------------------------------------------


def test_actions_are_the_oci_names() -> None:
    assert {a.value for a in Action} == {
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
    }
    assert Action("SCMP_ACT_ALLOW") is Action.ALLOW


@pytest.mark.parametrize(
    ("make", "field", "text"),
    [
        (lambda: ArgCondition(6, 0), "ArgCondition.index", "out of range (0..5)"),
        (lambda: ArgCondition(-1, 0), "ArgCondition.index", "out of range"),
        (lambda: ArgCondition(True, 0), "ArgCondition.index", "expected an int"),  # type: ignore[arg-type]
        (lambda: ArgCondition(0, 2**64), "ArgCondition.value", "out of range"),
        (lambda: ArgCondition(0, -1), "ArgCondition.value", "out of range"),
        (
            lambda: ArgCondition(0, 1, 2**64, "SCMP_CMP_MASKED_EQ"),
            "ArgCondition.value_two",
            "out of range",
        ),
        (
            lambda: ArgCondition(0, 1, op="SCMP_CMP_FOO"),
            "ArgCondition.op",
            "unknown comparison 'SCMP_CMP_FOO'",
        ),
        (lambda: ArgCondition(0, 1, op=4), "ArgCondition.op", "expected a string"),  # type: ignore[arg-type]
        (
            lambda: ArgCondition(0, 1, 2, "SCMP_CMP_EQ"),
            "ArgCondition.value_two",
            "only SCMP_CMP_MASKED_EQ",
        ),
        (lambda: SyscallRule((), Action.ALLOW), "SyscallRule.names", "at least one"),
        (lambda: SyscallRule("read", Action.ALLOW), "SyscallRule.names", "expected a list"),  # type: ignore[arg-type]
        (
            lambda: SyscallRule(("read", "read"), Action.ALLOW),
            "SyscallRule.names[1]",
            "listed twice",
        ),
        (
            lambda: SyscallRule(("read", ""), Action.ALLOW),
            "SyscallRule.names[1]",
            "not a system call name",
        ),
        (
            lambda: SyscallRule(("Read x",), Action.ALLOW),
            "SyscallRule.names[0]",
            "not a system call name",
        ),
        (lambda: SyscallRule((3,), Action.ALLOW), "SyscallRule.names[0]", "expected a string"),  # type: ignore[arg-type]
        (
            lambda: SyscallRule(("read",), "SCMP_ACT_FOO"),
            "SyscallRule.action",
            "unknown action 'SCMP_ACT_FOO'",
        ),  # type: ignore[arg-type]
        (
            lambda: SyscallRule(("read",), Action.ERRNO, 4096),
            "SyscallRule.errno_ret",
            "out of range (0..4095)",
        ),
        (lambda: SyscallRule(("read",), Action.ERRNO, -1), "SyscallRule.errno_ret", "out of range"),
        (
            lambda: SyscallRule(("read",), Action.TRACE, 65536),
            "SyscallRule.errno_ret",
            "out of range",
        ),
        (
            lambda: SyscallRule(("read",), Action.ALLOW, 1),
            "SyscallRule.errno_ret",
            "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE",
        ),
        (
            lambda: SyscallRule(("read",), Action.ALLOW, args=(1,)),
            "SyscallRule.args[0]",
            "expected an ArgCondition",
        ),  # type: ignore[arg-type]
        (
            lambda: SyscallRule(
                ("read",), Action.ALLOW, args=(ArgCondition(0, 1), ArgCondition(0, 2))
            ),
            "SyscallRule.args[1]",
            "a second condition on argument 0",
        ),
        (lambda: SeccompProfile("SCMP_ACT_FOO"), "SeccompProfile.default_action", "unknown action"),  # type: ignore[arg-type]
        (
            lambda: SeccompProfile(Action.KILL, 1),
            "SeccompProfile.default_errno_ret",
            "only SCMP_ACT_ERRNO",
        ),
        (
            lambda: SeccompProfile(Action.ERRNO, 5000),
            "SeccompProfile.default_errno_ret",
            "out of range",
        ),
        (
            lambda: SeccompProfile(Action.ALLOW, architectures=("x86_64",)),
            "SeccompProfile.architectures[0]",
            "unknown architecture 'x86_64'",
        ),
        (
            lambda: SeccompProfile(Action.ALLOW, architectures=("SCMP_ARCH_X86", "SCMP_ARCH_X86")),
            "SeccompProfile.architectures[1]",
            "listed twice",
        ),
        (
            lambda: SeccompProfile(Action.ALLOW, syscalls=("read",)),
            "SeccompProfile.syscalls[0]",
            "expected a SyscallRule",
        ),  # type: ignore[arg-type]
        (
            lambda: SeccompProfile(Action.ALLOW, flags=("SECCOMP_FILTER_FLAG_TSYNC",)),
            "SeccompProfile.flags[0]",
            "not meaningful here",
        ),
        (
            lambda: SeccompProfile(Action.ALLOW, flags=("SECCOMP_FILTER_FLAG_FOO",)),
            "SeccompProfile.flags[0]",
            "unknown flag",
        ),
        (
            lambda: SeccompProfile(
                Action.ALLOW, flags=("SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_LOG")
            ),
            "SeccompProfile.flags[1]",
            "listed twice",
        ),
        (
            lambda: SeccompProfile(Action.ALLOW, flags=("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",)),
            "SeccompProfile.flags",
            "needs an SCMP_ACT_NOTIFY action",
        ),
    ],
)
def test_constructors_refuse_bad_values_naming_the_field(
    make: Callable[[], object], field: str, text: str
) -> None:
    with pytest.raises(SpecError) as info:
        make()
    assert info.value.field == field
    assert text in str(info.value)
    assert str(info.value).startswith(f"{field}: ")


def test_constructors_normalise_lists_and_names() -> None:
    rule = SyscallRule(["read", "write"], "SCMP_ACT_ERRNO", 13, [ArgCondition(0, 1)])  # type: ignore[arg-type]
    assert (
        rule.names == ("read", "write")
        and rule.action is Action.ERRNO
        and rule.args == (ArgCondition(0, 1),)
    )
    profile = SeccompProfile("SCMP_ACT_ALLOW", syscalls=[rule], architectures=["SCMP_ARCH_X86"])  # type: ignore[arg-type]
    assert profile.default_action is Action.ALLOW and profile.syscalls == (rule,)
    assert hash(profile) == hash(SeccompProfile(Action.ALLOW, None, ("SCMP_ARCH_X86",), (rule,)))


def oci_example() -> dict[str, Any]:
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "listenerPath": "/run/ignored.sock",
        "comment": "unknown fields are ignored",
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18, "comment": "x"},
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}],
            },
            {
                "names": ["clone"],
                "action": "SCMP_ACT_ALLOW",
                "args": [
                    {"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
                ],
            },
        ],
    }


def test_from_oci_reads_every_field() -> None:
    p = SeccompProfile.from_oci(oci_example())
    assert p.default_action is Action.ERRNO and p.default_errno_ret == 38
    assert p.architectures == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86")
    assert p.flags == ("SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW")
    assert p.syscalls[0] == SyscallRule(("read", "write"), Action.ALLOW)
    assert p.syscalls[1] == SyscallRule(("getppid",), Action.ERRNO, 18)
    assert p.syscalls[2].args == (ArgCondition(0, 8, 0, "SCMP_CMP_EQ"),)
    assert p.syscalls[3].args == (ArgCondition(0, 0x7E020000, 0, "SCMP_CMP_MASKED_EQ"),)
    assert SeccompProfile.from_oci({"defaultAction": "SCMP_ACT_ALLOW"}) == SeccompProfile(
        Action.ALLOW
    )


def test_oci_round_trips() -> None:
    p = SeccompProfile.from_oci(oci_example())
    assert SeccompProfile.from_oci(json.loads(json.dumps(p.to_oci()))) == p
    for caps in ((), (Cap.SYS_ADMIN,), tuple(Cap)):
        d = default_profile(caps)
        assert SeccompProfile.from_oci(json.loads(json.dumps(d.to_oci()))) == d
    out = SeccompProfile(Action.ALLOW).to_oci()
    assert out == {"defaultAction": "SCMP_ACT_ALLOW"}


@pytest.mark.parametrize(
    ("edit", "path", "text"),
    [
        (lambda d: d.pop("defaultAction"), "linux.seccomp.defaultAction", "is required"),
        (
            lambda d: d.update(defaultAction="SCMP_ACT_FOO"),
            "linux.seccomp.defaultAction",
            "unknown action 'SCMP_ACT_FOO'",
        ),
        (
            lambda d: d.update(defaultErrnoRet="1"),
            "linux.seccomp.defaultErrnoRet",
            "expected an int",
        ),
        (
            lambda d: d.update(architectures="SCMP_ARCH_X86"),
            "linux.seccomp.architectures",
            "expected a list",
        ),
        (
            lambda d: d.update(architectures=["SCMP_ARCH_X86", "SCMP_ARCH_PDP11"]),
            "linux.seccomp.architectures[1]",
            "unknown architecture",
        ),
        (
            lambda d: d.update(flags=["SECCOMP_FILTER_FLAG_TSYNC"]),
            "linux.seccomp.flags[0]",
            "not meaningful",
        ),
        (lambda d: d.update(syscalls={"names": []}), "linux.seccomp.syscalls", "expected a list"),
        (lambda d: d["syscalls"].append(3), "linux.seccomp.syscalls[4]", "expected an object"),
        (
            lambda d: d["syscalls"][3].update(action="SCMP_ACT_FOO"),
            "linux.seccomp.syscalls[3].action",
            "unknown action 'SCMP_ACT_FOO'",
        ),
        (
            lambda d: d["syscalls"][1].pop("action"),
            "linux.seccomp.syscalls[1].action",
            "is required",
        ),
        (lambda d: d["syscalls"][1].pop("names"), "linux.seccomp.syscalls[1].names", "is required"),
        (
            lambda d: d["syscalls"][1].update(names="getppid"),
            "linux.seccomp.syscalls[1].names",
            "expected a list",
        ),
        (
            lambda d: d["syscalls"][0].update(names=[]),
            "linux.seccomp.syscalls[0].names",
            "at least one",
        ),
        (
            lambda d: d["syscalls"][0].update(names=["read", "read"]),
            "linux.seccomp.syscalls[0].names[1]",
            "listed twice",
        ),
        (
            lambda d: d["syscalls"][1].update(errnoRet=99999),
            "linux.seccomp.syscalls[1].errnoRet",
            "out of range",
        ),
        (
            lambda d: d["syscalls"][0].update(errnoRet=1),
            "linux.seccomp.syscalls[0].errnoRet",
            "only SCMP_ACT_ERRNO",
        ),
        (
            lambda d: d["syscalls"][2].update(args={"index": 0}),
            "linux.seccomp.syscalls[2].args",
            "expected a list",
        ),
        (
            lambda d: d["syscalls"][2]["args"].append("x"),
            "linux.seccomp.syscalls[2].args[1]",
            "expected an object",
        ),
        (
            lambda d: d["syscalls"][2]["args"][0].pop("op"),
            "linux.seccomp.syscalls[2].args[0].op",
            "is required",
        ),
        (
            lambda d: d["syscalls"][2]["args"][0].pop("value"),
            "linux.seccomp.syscalls[2].args[0].value",
            "is required",
        ),
        (
            lambda d: d["syscalls"][2]["args"][0].update(index=6),
            "linux.seccomp.syscalls[2].args[0].index",
            "out of range",
        ),
        (
            lambda d: d["syscalls"][2]["args"][0].update(op="SCMP_CMP_XX"),
            "linux.seccomp.syscalls[2].args[0].op",
            "unknown comparison",
        ),
        (
            lambda d: d["syscalls"][2]["args"][0].update(value=2**64),
            "linux.seccomp.syscalls[2].args[0].value",
            "out of range",
        ),
        (
            lambda d: d["syscalls"][3]["args"][0].update(valueTwo=-1),
            "linux.seccomp.syscalls[3].args[0].valueTwo",
            "out of range",
        ),
        (
            lambda d: d["syscalls"][2]["args"][0].update(valueTwo=1),
            "linux.seccomp.syscalls[2].args[0].valueTwo",
            "only SCMP_CMP_MASKED_EQ",
        ),
        (
            lambda d: d["syscalls"][2]["args"].append(
                {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}
            ),
            "linux.seccomp.syscalls[2].args[1]",
            "a second condition on argument 0",
        ),
    ],
)
def test_from_oci_errors_name_the_json_path(
    edit: Callable[[dict[str, Any]], object], path: str, text: str
) -> None:
    data = oci_example()
    edit(data)
    with pytest.raises(SpecError) as info:
        SeccompProfile.from_oci(data)
    assert info.value.field == path, str(info.value)
    assert text in str(info.value)


def test_from_oci_where_and_not_an_object() -> None:
    with pytest.raises(SpecError, match=r"^seccomp: expected an object"):
        SeccompProfile.from_oci([], where="seccomp")  # type: ignore[arg-type]
    with pytest.raises(SpecError) as info:
        SeccompProfile.from_oci({"defaultAction": 1}, where="x.y")
    assert info.value.field == "x.y.defaultAction"


# ---- compiling ------------------------------------------------------------------------


def every_action_profile() -> SeccompProfile:
    rules = [
        SyscallRule(("getppid",), Action.ERRNO, 18),
        SyscallRule(("getpgrp",), Action.ERRNO),
        SyscallRule(("getsid",), Action.KILL),
        SyscallRule(("getpgid",), Action.KILL_THREAD),
        SyscallRule(("getpriority",), Action.KILL_PROCESS),
        SyscallRule(("sched_yield",), Action.TRAP),
        SyscallRule(("sched_getscheduler",), Action.TRACE, 7),
        SyscallRule(("sched_getparam",), Action.LOG),
        SyscallRule(("getcpu",), Action.NOTIFY),
        SyscallRule(("read", "write"), Action.ALLOW),
    ]
    ops = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT")
    for i, op in enumerate(ops):
        rules.append(
            SyscallRule(("getrusage",), Action.ERRNO, i + 1, (ArgCondition(i % 6, 10 + i, op=op),))
        )
    rules.append(
        SyscallRule(
            ("times",), Action.ERRNO, 9, (ArgCondition(0, 0xF0, 0x10, "SCMP_CMP_MASKED_EQ"),)
        )
    )
    return SeccompProfile(
        Action.LOG,
        architectures=("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"),
        syscalls=tuple(rules),
        flags=(
            "SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        ),
    )


def test_compile_every_action_op_and_flag() -> None:
    c = every_action_profile().compile()
    assert c.notify
    assert c.flags == (
        L.SECCOMP_FILTER_FLAG_LOG
        | L.SECCOMP_FILTER_FLAG_SPEC_ALLOW
        | L.SECCOMP_FILTER_FLAG_NEW_LISTENER
        | 32  # SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, from <linux/seccomp.h>
    )
    assert len(c.program) % 8 == 0 and 0 < c.instructions <= 4096
    assert c.skipped == ()
    # every action's SECCOMP_RET_* value is in some return instruction
    rets = set()
    for i in range(c.instructions):
        code, _, _, k = (
            int.from_bytes(c.program[i * 8 : i * 8 + 2], "little"),
            0,
            0,
            int.from_bytes(c.program[i * 8 + 4 : i * 8 + 8], "little"),
        )
        if code == L.BPF_RET | L.BPF_K:
            rets.add(k)
    assert {
        L.SECCOMP_RET_ERRNO | 18,
        L.SECCOMP_RET_ERRNO | errno.EPERM,
        L.SECCOMP_RET_KILL_THREAD,
        L.SECCOMP_RET_KILL_PROCESS,
        L.SECCOMP_RET_TRAP,
        L.SECCOMP_RET_TRACE | 7,
        L.SECCOMP_RET_LOG,
        L.SECCOMP_RET_ALLOW,
        0x7FC00000,  # SECCOMP_RET_USER_NOTIF
    } <= rets


def test_compile_is_cached() -> None:
    p = every_action_profile()
    assert p.compile() is p.compile()
    assert every_action_profile().compile() is p.compile()  # equal profiles share it


def test_a_rule_that_does_what_the_default_does_is_skipped() -> None:
    same = SeccompProfile(Action.ERRNO, 38, syscalls=(SyscallRule(("clone3",), Action.ERRNO, 38),))
    assert same.compile().program == SeccompProfile(Action.ERRNO, 38).compile().program
    other = SeccompProfile(Action.ERRNO, 38, syscalls=(SyscallRule(("clone3",), Action.ERRNO, 1),))
    assert other.compile().program != same.compile().program


def test_unknown_names_are_skipped_and_reported() -> None:
    p = SeccompProfile(
        Action.ALLOW,
        syscalls=(
            SyscallRule(("no_such_call", "getppid", "another_unknown"), Action.ERRNO),
            SyscallRule(("arm_fadvise64_64",), Action.ERRNO),  # known to libseccomp, another arch
        ),
    )
    c = p.compile()
    assert c.skipped == ("no_such_call", "another_unknown")
    only = SeccompProfile(Action.ALLOW, syscalls=(SyscallRule(("getppid",), Action.ERRNO),))
    assert c.program == only.compile().program


def test_architectures_add_to_the_program() -> None:
    rule = (SyscallRule(("getppid",), Action.ERRNO),)
    native = SeccompProfile(Action.ALLOW, syscalls=rule).compile()
    also = SeccompProfile(
        Action.ALLOW, architectures=("SCMP_ARCH_X86_64", "SCMP_ARCH_X86"), syscalls=rule
    ).compile()
    assert also.instructions > native.instructions


def test_an_architecture_libseccomp_lacks_is_named() -> None:
    from pynsbind.seccomp import libseccomp_version

    if libseccomp_version() >= (2, 6, 0):
        pytest.skip("this libseccomp knows every OCI architecture")
    with pytest.raises(
        SpecError,
        match=r"^seccomp\.architectures\[1\]: libseccomp 2\.\d+\.\d+ does not know SCMP_ARCH_LOONGARCH64",
    ):
        SeccompProfile(
            Action.ALLOW, architectures=("SCMP_ARCH_X86", "SCMP_ARCH_LOONGARCH64")
        ).compile()


def test_a_program_over_the_kernel_limit_is_refused() -> None:
    rules = tuple(
        SyscallRule(("getppid",), Action.ERRNO, 1 + i % 100, (ArgCondition(0, i),))
        for i in range(3000)
    )
    with pytest.raises(
        SpecError,
        match=r"^seccomp: the compiled filter has \d+ instructions, more than the kernel's limit of 4096$",
    ) as info:
        SeccompProfile(Action.ALLOW, syscalls=rules).compile()
    assert int(str(info.value).split()[5]) > 4096


def test_libseccomp_refusals_name_the_rule() -> None:
    # the same conditions with two actions: libseccomp refuses the second (EEXIST)
    cond = (ArgCondition(0, 1),)
    p = SeccompProfile(
        Action.ALLOW,
        syscalls=(
            SyscallRule(("getppid", "getpid"), Action.ERRNO, 1, cond),
            SyscallRule(("getpid",), Action.ERRNO, 2, cond),
        ),
    )
    with pytest.raises(SpecError) as info:
        p.compile()
    assert str(info.value) == (
        "seccomp.syscalls[1]: libseccomp refused 'getpid' (SCMP_ACT_ERRNO(2), 1 condition): file exists"
    )


@pytest.mark.parametrize(
    "rules",
    [
        # an unconditional rule hides a conditional one of another action, either order
        (
            SyscallRule(("ioctl",), Action.ALLOW),
            SyscallRule(("ioctl",), Action.ERRNO, args=(ArgCondition(1, 5),)),
        ),
        (
            SyscallRule(("ioctl",), Action.ERRNO, args=(ArgCondition(1, 5),)),
            SyscallRule(("read", "ioctl"), Action.ALLOW),
        ),
        (
            SyscallRule(("read", "getppid"), Action.ERRNO, 1),
            SyscallRule(("getppid",), Action.ERRNO, 2),
        ),
        (SyscallRule(("getppid",), Action.KILL), SyscallRule(("getppid",), Action.KILL_PROCESS)),
    ],
)
def test_rules_libseccomp_would_drop_are_refused(rules: tuple[SyscallRule, ...]) -> None:
    with pytest.raises(SpecError) as info:
        SeccompProfile(Action.ERRNO, 38, syscalls=rules)
    assert info.value.field == "SeccompProfile.syscalls[1]"
    assert (
        "rule (syscalls[0]) and one of them has no conditions: libseccomp would ignore the other"
        in str(info.value)
    )
    data = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "syscalls": [
            SeccompProfile(Action.LOG, syscalls=(r,)).to_oci()["syscalls"][0] for r in rules
        ],
    }
    with pytest.raises(SpecError) as info:
        SeccompProfile.from_oci(data)
    assert info.value.field == "linux.seccomp.syscalls[1]"


def test_rules_that_agree_or_only_have_conditions_are_kept() -> None:
    rules = (
        SyscallRule(("getppid",), Action.ERRNO, 1),
        SyscallRule(("getppid",), Action.ERRNO, 1, (ArgCondition(0, 2),)),  # same effect
        SyscallRule(("getppid",), Action.ERRNO, 38),  # what the default does: not compiled
        SyscallRule(("getpid",), Action.ERRNO, 1, (ArgCondition(0, 2),)),
        SyscallRule(("getpid",), Action.ALLOW, args=(ArgCondition(0, 3),)),
        SyscallRule(("getsid",), Action.KILL),
        SyscallRule(("getsid",), Action.KILL_THREAD),  # the same action
    )
    profile = SeccompProfile(Action.ERRNO, 38, syscalls=rules)  # no SpecError
    assert profile.syscalls == rules
    compiled = profile.compile()  # libseccomp takes them all
    assert compiled.instructions > 0 and compiled.skipped == ()


# ---- the default profile (pure) -------------------------------------------------------


def test_default_profile_lists_are_consistent() -> None:
    from pynsbind.testing import seccomp_default as data

    assert not set(data.ALLOWED) & set(data.DENIED)
    assert len(set(data.ALLOWED)) == len(data.ALLOWED)
    for _, names in data.BY_CAPABILITY:
        assert set(names) <= set(data.DENIED), names
    # the spawn engine's own calls after the filter is loaded
    for name in (
        "execve execveat fcntl close close_range sendto write exit exit_group "
        "rt_sigprocmask rt_sigaction getpid prctl"
    ).split():
        assert name in data.ALLOWED, name
    for name in (
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "open_by_handle_at",
        "keyctl",
    ):
        assert name not in data.ALLOWED


def test_default_profile_compiles_small_and_knows_its_names() -> None:
    from pynsbind.testing import seccomp_default as data

    for caps in ((), (Cap.SYS_ADMIN,), tuple(Cap)):
        c = default_profile(caps).compile()
        assert 0 < c.instructions <= 4096
        assert not c.notify and c.flags == 0
        assert set(c.skipped) <= data.RECENT, c.skipped


def test_default_profile_is_cached_per_capability_set() -> None:
    assert default_profile() is default_profile()
    assert default_profile([Cap.SYS_ADMIN]) is default_profile({Cap.SYS_ADMIN})
    assert default_profile([Cap.SYS_ADMIN]) != default_profile()
    with pytest.raises(SpecError, match=r"^capabilities: expected a Capability"):
        default_profile(["SYS_ADMIN"])  # type: ignore[list-item]


def test_default_capabilities_are_the_specs() -> None:
    from pynsbind import seccomp, spec

    assert seccomp.DEFAULT_CAPABILITIES == spec.DEFAULT_CAPABILITIES


def _unconditional(profile: SeccompProfile) -> dict[str, tuple[Action, int | None]]:
    out: dict[str, tuple[Action, int | None]] = {}
    for rule in profile.syscalls:
        if not rule.args:
            for name in rule.names:
                assert name not in out, f"{name} has two unconditional rules"
                out[name] = (rule.action, rule.errno_ret)
    return out


def test_default_profile_capabilities_allow_what_docker_allows() -> None:
    base = _unconditional(default_profile())
    admin = _unconditional(default_profile([Cap.SYS_ADMIN]))
    for name in (
        "mount",
        "umount2",
        "unshare",
        "setns",
        "pivot_root",
        "fsopen",
        "bpf",
        "perf_event_open",
        "clone",
        "clone3",
    ):
        assert admin[name] == (Action.ALLOW, None), name
    for name in (
        "mount",
        "umount2",
        "unshare",
        "setns",
        "pivot_root",
        "fsopen",
        "bpf",
        "perf_event_open",
    ):
        assert base[name] == (Action.ERRNO, errno.EPERM), name
    assert "clone" not in base  # only conditional rules
    for cap, names in (
        (Cap.SYS_BOOT, ["reboot"]),
        (Cap.SYS_MODULE, ["init_module", "finit_module", "delete_module"]),
        (Cap.SYS_TIME, ["settimeofday", "clock_settime", "adjtimex"]),
        (Cap.SYSLOG, ["syslog"]),
        (Cap.SYS_RAWIO, ["iopl", "ioperm"]),
        (Cap.SYS_PACCT, ["acct"]),
        (Cap.SYS_NICE, ["get_mempolicy", "mbind", "set_mempolicy"]),
        (Cap.DAC_READ_SEARCH, ["open_by_handle_at"]),
        (Cap.BPF, ["bpf"]),
        (Cap.PERFMON, ["perf_event_open"]),
    ):
        with_cap = _unconditional(default_profile([cap]))
        for name in names:
            assert base[name] == (Action.ERRNO, errno.EPERM), name
            assert with_cap[name] == (Action.ALLOW, None), (cap, name)
    # never allowed, whatever the capabilities
    every = _unconditional(default_profile(tuple(Cap)))
    for name in (
        "keyctl",
        "add_key",
        "request_key",
        "kexec_load",
        "io_uring_setup",
        "userfaultfd",
        "swapon",
        "vm86",
    ):
        assert every[name] == (Action.ERRNO, errno.EPERM), name
    assert every["ptrace"] == (Action.ALLOW, None) == base["ptrace"]


def test_docs_table_names_every_denied_call() -> None:
    from pynsbind.testing import seccomp_default as data

    text = (ROOT / "docs" / "seccomp.md").read_text()
    for name in data.DENIED:
        assert f"`{name}`" in text, name
    for name in ("clone", "clone3", "personality", "ioctl", "socket", "TIOCSTI", "AF_VSOCK"):
        assert f"`{name}`" in text, name


# ---- import cost and the compiled layer ------------------------------------------------


def test_import_loads_neither_libseccomp_nor_asyncio() -> None:
    code = (
        "import sys, pynsbind.seccomp as s\n"
        "print('pynsbind._seccomp' in sys.modules, 'asyncio' in sys.modules)\n"
        "s.SeccompProfile(s.Action.ALLOW)\n"
        "print('pynsbind._seccomp' in sys.modules)\n"
        "s.default_profile().compile()\n"
        "print('pynsbind._seccomp' in sys.modules, 'asyncio' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "False", "False", "True", "False"]


def test_a_stale_extension_refuses_to_load(monkeypatch: pytest.MonkeyPatch) -> None:
    from pynsbind import seccomp
    from pynsbind.testing import seccomp_extension

    seccomp_extension().cache_clear()
    monkeypatch.setattr(seccomp, "__version__", "0.0.0-stale")
    try:
        with pytest.raises(
            ImportError, match=r"is version .* but the package is 0\.0\.0-stale: the build is stale"
        ):
            seccomp_extension()()
    finally:
        seccomp_extension().cache_clear()


# ---- Response -------------------------------------------------------------------------


def test_responses() -> None:
    assert Response.allow() == Response(0, 0, True)
    assert Response.fail(errno.EACCES) == Response(error=errno.EACCES)
    assert Response.ok(4242) == Response(value=4242)
    assert Response.ok(-5).value == -5
    for bad in (
        lambda: Response(continue_=True, value=1),
        lambda: Response(continue_=True, error=1),
        lambda: Response(error=-1),
        lambda: Response(error=4096),
        lambda: Response(value=2**63),
        lambda: Response.fail(0),
    ):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(TypeError):
        Response(value="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Response(continue_=1)  # type: ignore[arg-type]


def test_notify_calls_check_their_arguments() -> None:
    with pytest.raises(TypeError):
        notif_recv("3")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        notif_send(-1, 1, Response())
    with pytest.raises(TypeError):
        notif_send(3, 1, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        notif_id_valid(3, -1)
    with open(os.devnull) as f:  # not a listener
        with pytest.raises(OSError, match=r"ioctl\(SECCOMP_IOCTL_NOTIF_RECV\) on fd \d+: ") as info:
            notif_recv(f.fileno())
        assert info.value.errno in (errno.ENOTTY, errno.EINVAL)


# ---- the on-disk cache of compiled programs ---------------------------------------------


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An empty seccomp cache under tmp_path (XDG_CACHE_HOME), forgotten after."""
    from pynsbind.testing import seccomp_cache_reset

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    seccomp_cache_reset()
    yield tmp_path / "cache" / "pynsbind" / "seccomp"
    seccomp_cache_reset()


def _small_profile() -> SeccompProfile:
    return SeccompProfile(Action.ALLOW, syscalls=(SyscallRule(("mkdirat",), Action.ERRNO, 13),))


def test_compiled_programs_are_kept_on_disk_safely(fresh_cache: Path) -> None:
    """A program compiled once is read from the disk by the next process (here:
    after forgetting it): the cache directory is the caller's, mode 0700; a file
    there that another user owns, or that others may write, is not trusted."""
    from pynsbind.testing import seccomp_cache_dir, seccomp_cache_reset

    assert seccomp_cache_dir() == str(fresh_cache)
    first = _small_profile().compile()
    st = os.stat(fresh_cache)
    assert oct(st.st_mode & 0o777) == "0o700" and st.st_uid == os.geteuid()
    (entry,) = fresh_cache.iterdir()
    assert oct(entry.stat().st_mode & 0o777) == "0o600"
    # what the next process finds is what it loads: a changed program (of a
    # valid length) proves the disk is read, libseccomp not asked
    data = entry.read_bytes()
    forged = data[: -len(first.program)] + bytes(len(first.program))
    entry.write_bytes(forged)
    seccomp_cache_reset()
    assert _small_profile().compile().program == bytes(len(first.program))
    # another owner's file, or one others may write: compiled again
    for change in ("owner", "mode"):
        entry.write_bytes(forged)
        os.chmod(entry, 0o600)
        if change == "owner":
            os.chown(entry, 65534, 65534)
        else:
            os.chmod(entry, 0o622)
        seccomp_cache_reset()
        assert _small_profile().compile().program == first.program, change
        os.chown(entry, os.geteuid(), os.getegid())
    # a file whose key inside is another's, or cut short: compiled again
    for bad in (data.replace(entry.name.encode(), b"x" * len(entry.name)), data[:-3]):
        entry.write_bytes(bad)
        os.chmod(entry, 0o600)
        seccomp_cache_reset()
        assert _small_profile().compile().program == first.program


def test_a_cache_directory_others_may_use_is_not_used(fresh_cache: Path) -> None:
    from pynsbind.testing import seccomp_cache_reset

    fresh_cache.mkdir(parents=True)
    os.chmod(fresh_cache, 0o755)
    seccomp_cache_reset()
    assert _small_profile().compile().instructions > 0
    assert list(fresh_cache.iterdir()) == [], "wrote into a directory others may read"


def test_the_default_profile_is_cached_without_building_it(fresh_cache: Path) -> None:
    """compile_default: the same program as compiling the profile; the second
    process reads it without building the profile (a forged entry shows it);
    other capabilities or setid_files are other entries."""
    from pynsbind.seccomp import compile_default, default_profile
    from pynsbind.spec import DEFAULT_CAPABILITIES
    from pynsbind.testing import seccomp_cache_reset

    def defaults() -> list[Path]:
        return [p for p in fresh_cache.iterdir() if b"default\n" in p.read_bytes()[:64]]

    cached = compile_default(DEFAULT_CAPABILITIES)
    assert cached.program == default_profile(DEFAULT_CAPABILITIES).compile().program
    seccomp_cache_reset()
    (entry,) = defaults()
    data = entry.read_bytes()
    entry.write_bytes(data[: -len(cached.program)] + bytes(len(cached.program)))
    assert compile_default(DEFAULT_CAPABILITIES).program == bytes(len(cached.program))
    seccomp_cache_reset()
    entry.write_bytes(data)
    no_setid = compile_default(DEFAULT_CAPABILITIES, setid_files=False)
    assert no_setid.program != cached.program
    compile_default(DEFAULT_CAPABILITIES - {next(iter(DEFAULT_CAPABILITIES))})
    assert len(defaults()) == 3


def test_the_cache_is_in_home_only_when_home_is_the_callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$HOME counts when the caller owns it (under sudo, root's programs do not
    go into the user's directory): else the passwd entry's home."""
    import pwd

    from pynsbind.testing import seccomp_cache_dir

    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    mine = tmp_path / "mine"
    mine.mkdir()
    monkeypatch.setenv("HOME", str(mine))
    assert seccomp_cache_dir() == str(mine / ".cache" / "pynsbind" / "seccomp")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    monkeypatch.setenv("HOME", str(theirs))
    home = pwd.getpwuid(os.geteuid()).pw_dir
    assert seccomp_cache_dir() == os.path.join(home, ".cache", "pynsbind", "seccomp")
