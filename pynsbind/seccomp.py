"""pynsbind.seccomp: OCI seccomp profiles, compiled by libseccomp, and seccomp
user notifications served from asyncio.

- :class:`SeccompProfile` (with :class:`SyscallRule`, :class:`ArgCondition` and
  :class:`Action`) is the model of an OCI ``linux.seccomp`` object: frozen,
  validated, hashable.  :meth:`SeccompProfile.from_oci` reads the JSON form and
  :meth:`SeccompProfile.to_oci` writes it.
- :meth:`SeccompProfile.compile` turns a profile into a :class:`CompiledFilter`:
  the classic BPF program that ``seccomp(SECCOMP_SET_MODE_FILTER)`` loads, and the
  flags to load it with.  libseccomp does the compiling (syscall numbers of every
  architecture come from its tables, none from ours); the result is cached.
- :func:`default_profile` is pynsbind's default, with the effect of podman's and
  Docker's: see docs/seccomp.md for what it refuses and why.
- :func:`serve` answers a container's ``SCMP_ACT_NOTIFY`` calls from asyncio;
  :func:`notif_recv`, :func:`notif_send` and :func:`notif_id_valid` are the 1:1
  ioctls underneath.

Importing this module is cheap: libseccomp (``pynsbind._seccomp``) is loaded on
the first compile or notification, and asyncio only by :func:`serve`.
"""

from __future__ import annotations

import enum
import errno as _errno
import functools
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from pynsbind import _seccomp_cache as _cache
from pynsbind._record import record
from pynsbind._regex import regex
from pynsbind._version import __version__
from pynsbind.errors import SpecError, strerror
from pynsbind.flags import Capability

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any, TypeAlias

__all__ = [
    "DEFAULT_CAPABILITIES",
    "Action",
    "ArgCondition",
    "CompiledFilter",
    "Notification",
    "Response",
    "SeccompProfile",
    "SyscallRule",
    "compile_default",
    "default_profile",
    "notif_id_valid",
    "notif_recv",
    "notif_send",
    "serve",
    "syscall_number",
]


class Action(str, enum.Enum):
    """What a rule (or the profile's default) does with a call, by its OCI name."""

    KILL = "SCMP_ACT_KILL"  #: kill the calling thread (SIGSYS), as KILL_THREAD
    KILL_THREAD = "SCMP_ACT_KILL_THREAD"
    KILL_PROCESS = "SCMP_ACT_KILL_PROCESS"  #: kill the whole process (SIGSYS, core dump)
    TRAP = "SCMP_ACT_TRAP"  #: send SIGSYS, which the process may catch
    ERRNO = "SCMP_ACT_ERRNO"  #: fail with ``errno_ret`` (EPERM when unset)
    TRACE = "SCMP_ACT_TRACE"  #: stop for a ptrace tracer (ENOSYS without one)
    ALLOW = "SCMP_ACT_ALLOW"
    LOG = "SCMP_ACT_LOG"  #: allow, and log to the audit log
    NOTIFY = "SCMP_ACT_NOTIFY"  #: ask the listener (see :func:`serve`)


#: What a container has by default (runc's set; the same as
#: ``pynsbind.spec.DEFAULT_CAPABILITIES``).
DEFAULT_CAPABILITIES: frozenset[Capability] = frozenset(
    Capability[name]
    for name in (
        "CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP "
        "NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE"
    ).split()
)

_OPS = (
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
)
#: The architecture names of the OCI runtime spec; libseccomp's are the same in
#: lower case without ``SCMP_ARCH_``.
ARCHITECTURES = (
    "SCMP_ARCH_X86 SCMP_ARCH_X86_64 SCMP_ARCH_X32 SCMP_ARCH_ARM SCMP_ARCH_AARCH64 "
    "SCMP_ARCH_MIPS SCMP_ARCH_MIPS64 SCMP_ARCH_MIPS64N32 SCMP_ARCH_MIPSEL SCMP_ARCH_MIPSEL64 "
    "SCMP_ARCH_MIPSEL64N32 SCMP_ARCH_PPC SCMP_ARCH_PPC64 SCMP_ARCH_PPC64LE SCMP_ARCH_S390 "
    "SCMP_ARCH_S390X SCMP_ARCH_PARISC SCMP_ARCH_PARISC64 SCMP_ARCH_RISCV64 "
    "SCMP_ARCH_LOONGARCH64 SCMP_ARCH_M68K SCMP_ARCH_SH SCMP_ARCH_SHEB"
).split()
#: The filter flags a profile may ask for (OCI names).
FLAGS = (
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
)
_U64 = 2**64 - 1
_MAX_ERRNO = 4095  # the kernel caps SECCOMP_RET_ERRNO's data there
_NAME = r"[a-z0-9_]{1,64}"


# ---- the compiled layer, loaded on first use --------------------------------------


@functools.cache
def _native() -> tuple[Any, Any]:
    try:
        __import__("pynsbind._seccomp")  # (a compiled module: see pynsbind._ffi)
        mod = sys.modules["pynsbind._seccomp"]
    except ImportError as exc:  # pragma: no cover - only without a build
        raise ImportError(
            "pynsbind's libseccomp extension (pynsbind._seccomp) is not built or libseccomp "
            f"is missing ({exc}); install libseccomp and reinstall pynsbind"
        ) from exc
    built = mod.ffi.string(mod.lib.nsb_scmp_build_version()).decode()
    if built != __version__:
        raise ImportError(
            f"pynsbind's libseccomp extension is version {built} but the package is "
            f"{__version__}: the build is stale; reinstall with `pip install --force-reinstall .`"
        )
    return mod.ffi, mod.lib


def libseccomp_version() -> tuple[int, int, int]:
    """The version of the libseccomp pynsbind runs with."""
    _, lib = _native()
    v = lib.seccomp_version()
    return (int(v.major), int(v.minor), int(v.micro))


# ---- validation helpers -------------------------------------------------------------


def _int(value: object, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(where, f"expected an int, got {type(value).__name__}: {value!r}")
    if not lo <= value <= hi:
        raise SpecError(where, f"{value} is out of range ({lo}..{hi})")
    return int(value)


def _seq(value: object, where: str) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise SpecError(where, f"expected a list, got {type(value).__name__}: {value!r}")
    return tuple(value)


def _opt_seq(data: Mapping[str, Any], key: str, where: str) -> tuple[Any, ...]:
    value = data.get(key)
    return () if value is None else _seq(value, f"{where}.{key}")


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise SpecError(where, f"expected a string, got {type(value).__name__}: {value!r}")
    return value


def _action(value: object, where: str) -> Action:
    if isinstance(value, Action):
        return value
    text = _str(value, where)
    try:
        return Action(text)
    except ValueError:
        raise SpecError(where, f"unknown action {text!r}") from None


def _errno_ret(action: Action, value: object, where: str) -> int | None:
    if value is None:
        return None
    if action is Action.ERRNO:
        return _int(value, where, 0, _MAX_ERRNO)
    if action is Action.TRACE:
        return _int(value, where, 0, 0xFFFF)
    raise SpecError(where, f"only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one, not {action.value}")


def _unique(items: tuple[str, ...], where: str, what: str) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item in seen:
            raise SpecError(f"{where}[{i}]", f"{what} {item!r} is listed twice")
        seen.add(item)


# ---- the model --------------------------------------------------------------------


@record(frozen=True)
class ArgCondition:
    """A comparison of the call's argument ``index`` (0-5) with ``value``.

    With ``SCMP_CMP_MASKED_EQ`` the argument is masked with ``value`` and compared
    with ``value_two`` (as OCI and runc have it); the other comparisons ignore
    ``value_two``, which must then be 0.  Arguments are compared as 64-bit
    unsigned integers (32-bit on a 32-bit architecture)."""

    index: int
    value: int
    value_two: int = 0
    op: str = "SCMP_CMP_EQ"

    def __post_init__(self) -> None:
        _int(self.index, "ArgCondition.index", 0, 5)
        _int(self.value, "ArgCondition.value", 0, _U64)
        _int(self.value_two, "ArgCondition.value_two", 0, _U64)
        op = _str(self.op, "ArgCondition.op")
        if op not in _OPS:
            raise SpecError("ArgCondition.op", f"unknown comparison {op!r}")
        if self.value_two and op != "SCMP_CMP_MASKED_EQ":
            raise SpecError("ArgCondition.value_two", f"only SCMP_CMP_MASKED_EQ uses it, not {op}")


@record(frozen=True)
class SyscallRule:
    """``action`` for the calls ``names`` (when every condition in ``args`` holds).

    ``errno_ret`` is the errno of ``SCMP_ACT_ERRNO`` (EPERM when None, as runc) or
    the message of ``SCMP_ACT_TRACE``.  A name libseccomp does not know is skipped
    when the profile is compiled (see :attr:`CompiledFilter.skipped`)."""

    names: tuple[str, ...]
    action: Action
    errno_ret: int | None = None
    args: tuple[ArgCondition, ...] = ()

    def __post_init__(self) -> None:
        names = _seq(self.names, "SyscallRule.names")
        if not names:
            raise SpecError("SyscallRule.names", "must name at least one call")
        for i, name in enumerate(names):
            if not regex(_NAME).fullmatch(_str(name, f"SyscallRule.names[{i}]")):
                raise SpecError(f"SyscallRule.names[{i}]", f"not a system call name: {name!r}")
        _unique(names, "SyscallRule.names", "call")
        object.__setattr__(self, "names", names)
        action = _action(self.action, "SyscallRule.action")
        object.__setattr__(self, "action", action)
        _errno_ret(action, self.errno_ret, "SyscallRule.errno_ret")
        args = _seq(self.args, "SyscallRule.args")
        seen: set[int] = set()
        for i, arg in enumerate(args):
            if not isinstance(arg, ArgCondition):
                raise SpecError(f"SyscallRule.args[{i}]", f"expected an ArgCondition, got {arg!r}")
            if arg.index in seen:
                raise SpecError(
                    f"SyscallRule.args[{i}]",
                    f"a second condition on argument {arg.index}: libseccomp compares each "
                    "argument once per rule (write another rule)",
                )
            seen.add(arg.index)
        object.__setattr__(self, "args", args)


@record(frozen=True)
class CompiledFilter:
    """A profile compiled by libseccomp."""

    #: classic BPF, 8 bytes per instruction: what seccomp(SECCOMP_SET_MODE_FILTER) takes
    program: bytes
    #: the seccomp(2) filter flags to load it with (NEW_LISTENER with any NOTIFY)
    flags: int
    #: True if the filter notifies: loading it returns a listener fd
    notify: bool
    #: the names no architecture of the filter knows (libseccomp's tables), skipped
    skipped: tuple[str, ...] = ()

    @property
    def instructions(self) -> int:
        return len(self.program) // 8


@record(frozen=True)
class SeccompProfile:
    """An OCI seccomp profile: ``default_action`` for every call no rule matches.

    ``architectures`` are OCI names (``SCMP_ARCH_X86_64``...); the native one is
    always in the filter, and () means the native one only.  A call made through
    an architecture the filter does not have kills the process.  ``flags`` are
    filter flags (``SECCOMP_FILTER_FLAG_LOG``, ``_SPEC_ALLOW``,
    ``_WAIT_KILLABLE_RECV``); ``SECCOMP_FILTER_FLAG_TSYNC`` is refused: the filter
    is loaded by a single-threaded process just before it execs."""

    default_action: Action
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()
    syscalls: tuple[SyscallRule, ...] = ()
    flags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        action = _action(self.default_action, "SeccompProfile.default_action")
        object.__setattr__(self, "default_action", action)
        _errno_ret(action, self.default_errno_ret, "SeccompProfile.default_errno_ret")
        archs = _seq(self.architectures, "SeccompProfile.architectures")
        for i, arch in enumerate(archs):
            if _str(arch, f"SeccompProfile.architectures[{i}]") not in ARCHITECTURES:
                raise SpecError(
                    f"SeccompProfile.architectures[{i}]", f"unknown architecture {arch!r}"
                )
        _unique(archs, "SeccompProfile.architectures", "architecture")
        object.__setattr__(self, "architectures", archs)
        rules = _seq(self.syscalls, "SeccompProfile.syscalls")
        for i, rule in enumerate(rules):
            if not isinstance(rule, SyscallRule):
                raise SpecError(
                    f"SeccompProfile.syscalls[{i}]", f"expected a SyscallRule, got {rule!r}"
                )
        object.__setattr__(self, "syscalls", rules)
        _check_overlaps(action, self.default_errno_ret, rules)
        flags = _seq(self.flags, "SeccompProfile.flags")
        for i, flag in enumerate(flags):
            where = f"SeccompProfile.flags[{i}]"
            if _str(flag, where) == "SECCOMP_FILTER_FLAG_TSYNC":
                raise SpecError(
                    where,
                    "SECCOMP_FILTER_FLAG_TSYNC is not meaningful here: the filter is loaded "
                    "by a single-threaded process just before it execs",
                )
            if flag not in FLAGS:
                raise SpecError(where, f"unknown flag {flag!r}")
        _unique(flags, "SeccompProfile.flags", "flag")
        object.__setattr__(self, "flags", flags)
        if "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" in flags and not self.notifies:
            raise SpecError(
                "SeccompProfile.flags",
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs an SCMP_ACT_NOTIFY action",
            )

    @property
    def notifies(self) -> bool:
        """True if the default action or a rule is ``SCMP_ACT_NOTIFY``."""
        return self.default_action is Action.NOTIFY or any(
            r.action is Action.NOTIFY for r in self.syscalls
        )

    # ---- OCI JSON ---------------------------------------------------------------

    @classmethod
    def from_oci(cls, data: Mapping[str, Any], where: str = "linux.seccomp") -> SeccompProfile:
        """The profile of an OCI ``linux.seccomp`` object (parsed JSON).  Errors name
        the JSON path: ``linux.seccomp.syscalls[3].action: unknown action ...``.
        Fields OCI does not define, or that pynsbind does not use
        (``listenerPath``, ``listenerMetadata``), are ignored."""
        if not isinstance(data, Mapping):
            raise SpecError(where, f"expected an object, got {type(data).__name__}")
        if "defaultAction" not in data:
            raise SpecError(f"{where}.defaultAction", "is required")
        rules: list[SyscallRule] = []
        for i, item in enumerate(_opt_seq(data, "syscalls", where)):
            path = f"{where}.syscalls[{i}]"
            if not isinstance(item, Mapping):
                raise SpecError(path, f"expected an object, got {type(item).__name__}")
            for key in ("names", "action"):
                if key not in item:
                    raise SpecError(f"{path}.{key}", "is required")
            conds: list[ArgCondition] = []
            for j, arg in enumerate(_opt_seq(item, "args", path)):
                apath = f"{path}.args[{j}]"
                if not isinstance(arg, Mapping):
                    raise SpecError(apath, f"expected an object, got {type(arg).__name__}")
                for key in ("index", "value", "op"):
                    if key not in arg:
                        raise SpecError(f"{apath}.{key}", "is required")
                conds.append(
                    _oci_build(
                        ArgCondition,
                        apath,
                        index=arg["index"],
                        value=arg["value"],
                        value_two=arg.get("valueTwo", 0),
                        op=arg["op"],
                    )
                )
            rules.append(
                _oci_build(
                    SyscallRule,
                    path,
                    names=_seq(item["names"], f"{path}.names"),
                    action=item["action"],
                    errno_ret=item.get("errnoRet"),
                    args=tuple(conds),
                )
            )
        profile: SeccompProfile = _oci_build(
            cls,
            where,
            default_action=data["defaultAction"],
            default_errno_ret=data.get("defaultErrnoRet"),
            architectures=_opt_seq(data, "architectures", where),
            syscalls=tuple(rules),
            flags=_opt_seq(data, "flags", where),
        )
        return profile

    def to_oci(self) -> dict[str, Any]:
        """The OCI ``linux.seccomp`` object (JSON-ready); from_oci reads it back."""
        out: dict[str, Any] = {"defaultAction": self.default_action.value}
        if self.default_errno_ret is not None:
            out["defaultErrnoRet"] = self.default_errno_ret
        if self.architectures:
            out["architectures"] = list(self.architectures)
        if self.flags:
            out["flags"] = list(self.flags)
        if self.syscalls:
            out["syscalls"] = [_rule_to_oci(rule) for rule in self.syscalls]
        return out

    # ---- compiling --------------------------------------------------------------

    def compile(self) -> CompiledFilter:
        """The classic BPF program of this profile, compiled by libseccomp (cached
        in memory, and on disk: see pynsbind._seccomp_cache).

        Raises SpecError naming the rule when libseccomp refuses it, and when the
        program is larger than the kernel takes (BPF_MAXINSNS instructions)."""
        compiled: CompiledFilter | None = self.__dict__.get("_compiled")
        if compiled is None:
            compiled = _compiled(self)
            object.__setattr__(self, "_compiled", compiled)
        return compiled


def _effect(action: Action, errno_ret: int | None) -> tuple[Action, int | None]:
    """What libseccomp makes of an action (KILL is KILL_THREAD, errno EPERM if unset)."""
    if action is Action.KILL:
        return (Action.KILL_THREAD, None)
    if action in (Action.ERRNO, Action.TRACE):
        return (action, _errno.EPERM if errno_ret is None else errno_ret)
    return (action, None)


def _show(effect: tuple[Action, int | None]) -> str:
    return effect[0].value + ("" if effect[1] is None else f"({effect[1]})")


def _check_overlaps(
    default: Action, default_errno: int | None, rules: tuple[SyscallRule, ...]
) -> None:
    """Refuse what libseccomp would silently drop: a call with a rule without
    conditions and another rule (with or without) of a different action.  libseccomp
    keeps the rule without conditions and ignores the other."""
    base = _effect(default, default_errno)
    # per call: its rule without conditions, and the first rule of each effect
    plain: dict[str, tuple[int, tuple[Action, int | None]]] = {}
    effects: dict[str, dict[tuple[Action, int | None], int]] = {}
    for i, rule in enumerate(rules):
        effect = _effect(rule.action, rule.errno_ret)
        if effect == base:
            continue  # not compiled: the default does the same
        for name in rule.names:
            seen = effects.setdefault(name, {})
            if name in plain:
                clash: tuple[int, tuple[Action, int | None]] | None = plain[name]
            elif not rule.args:
                clash = next(((j, e) for e, j in seen.items() if e != effect), None)
            else:
                clash = None
            if clash is not None and clash[1] != effect:
                raise SpecError(
                    f"SeccompProfile.syscalls[{i}]",
                    f"{name!r} also has a {_show(clash[1])} rule (syscalls[{clash[0]}]) and one "
                    "of them has no conditions: libseccomp would ignore the other",
                )
            seen.setdefault(effect, i)
            if not rule.args:
                plain.setdefault(name, (i, effect))


_OCI_NAMES = {
    "errno_ret": "errnoRet",
    "value_two": "valueTwo",
    "default_action": "defaultAction",
    "default_errno_ret": "defaultErrnoRet",
}


def _oci_build(cls: Callable[..., Any], path: str, **fields: Any) -> Any:
    """cls(**fields), with the field of a SpecError renamed to its JSON path."""
    try:
        return cls(**fields)
    except SpecError as exc:
        message = str(exc)[len(exc.field) + 2 :]
        _, _, rest = exc.field.partition(".")
        head, sep, tail = rest.partition("[")
        raise SpecError(f"{path}.{_OCI_NAMES.get(head, head)}{sep}{tail}", message) from None


def _rule_to_oci(rule: SyscallRule) -> dict[str, Any]:
    out: dict[str, Any] = {"names": list(rule.names), "action": rule.action.value}
    if rule.errno_ret is not None:
        out["errnoRet"] = rule.errno_ret
    if rule.args:
        out["args"] = [
            {"index": a.index, "value": a.value, "valueTwo": a.value_two, "op": a.op}
            for a in rule.args
        ]
    return out


# ---- compiling through libseccomp ---------------------------------------------------


def _action_value(lib: Any, action: Action, errno_ret: int | None) -> int:
    if action is Action.ERRNO:
        return int(lib.nsb_scmp_act_errno(_errno.EPERM if errno_ret is None else errno_ret))
    if action is Action.TRACE:
        return int(lib.nsb_scmp_act_trace(_errno.EPERM if errno_ret is None else errno_ret))
    return int(
        {
            Action.KILL: lib.SCMP_ACT_KILL,
            Action.KILL_THREAD: lib.SCMP_ACT_KILL_THREAD,
            Action.KILL_PROCESS: lib.SCMP_ACT_KILL_PROCESS,
            Action.TRAP: lib.SCMP_ACT_TRAP,
            Action.ALLOW: lib.SCMP_ACT_ALLOW,
            Action.LOG: lib.SCMP_ACT_LOG,
            Action.NOTIFY: lib.SCMP_ACT_NOTIFY,
        }[action]
    )


def _describe(rule: SyscallRule) -> str:
    act = rule.action.value
    if rule.errno_ret is not None:
        act += f"({rule.errno_ret})"
    if rule.args:
        act += f", {len(rule.args)} condition{'s' if len(rule.args) > 1 else ''}"
    return act


@functools.lru_cache(maxsize=64)
def _compiled(profile: SeccompProfile) -> CompiledFilter:
    """A profile's program: from this process's memory, the disk, or libseccomp."""
    import json

    text = json.dumps(profile.to_oci(), sort_keys=True, separators=(",", ":"))
    found = _cache.get_profile(text)
    if found is not None:
        return CompiledFilter(*found)
    compiled = _compile(profile)
    _cache.put_profile(text, _entry(compiled))
    return compiled


def _compile(profile: SeccompProfile) -> CompiledFilter:
    ffi, lib = _native()
    flags = 0
    for i, name in enumerate(profile.flags):
        value = int(getattr(lib, name))
        if value == 0:
            raise SpecError(
                f"seccomp.flags[{i}]", f"the headers pynsbind was built with lack {name}"
            )
        flags |= value
    if profile.notifies:
        flags |= int(lib.SECCOMP_FILTER_FLAG_NEW_LISTENER)
    default = _action_value(lib, profile.default_action, profile.default_errno_ret)
    ctx = lib.seccomp_init(default)
    if ctx == ffi.NULL:
        raise SpecError(
            "seccomp.default_action",
            f"libseccomp refused {profile.default_action.value} (the kernel may not have it)",
        )
    try:
        _setup(lib, ctx, profile)
        skipped: dict[str, None] = {}
        ops = {name: getattr(lib, name) for name in _OPS}
        for i, rule in enumerate(profile.syscalls):
            action = _action_value(lib, rule.action, rule.errno_ret)
            if action == default:
                continue  # libseccomp refuses a rule that does what the default does
            conds = ffi.new("struct scmp_arg_cmp[]", max(len(rule.args), 1))
            for j, arg in enumerate(rule.args):
                conds[j].arg = arg.index
                conds[j].op = ops[arg.op]
                conds[j].datum_a = arg.value
                conds[j].datum_b = arg.value_two
            for name in rule.names:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr == -1:  # __NR_SCMP_ERROR: no architecture knows the name
                    skipped[name] = None
                    continue
                rc = lib.seccomp_rule_add_array(ctx, action, nr, len(rule.args), conds)
                if rc < 0:
                    raise SpecError(
                        f"seccomp.syscalls[{i}]",
                        f"libseccomp refused {name!r} ({_describe(rule)}): {strerror(-rc)}",
                    )
        program = _export(ffi, lib, ctx)
    finally:
        lib.seccomp_release(ctx)
    return CompiledFilter(
        program=program, flags=flags, notify=profile.notifies, skipped=tuple(skipped)
    )


def _setup(lib: Any, ctx: Any, profile: SeccompProfile) -> None:
    """The filter's attributes and architectures."""
    for attr, value, what in (
        # the engine sets no_new_privs itself, and loads the filter on one thread
        (lib.SCMP_FLTATR_CTL_NNP, 0, "no_new_privs"),
        (lib.SCMP_FLTATR_CTL_TSYNC, 0, "thread sync"),
        # a call of an architecture the filter lacks kills the process, not a thread
        (lib.SCMP_FLTATR_ACT_BADARCH, lib.SCMP_ACT_KILL_PROCESS, "bad-architecture action"),
        # the syscall numbers in a binary tree: shorter runs, smaller programs
        (lib.SCMP_FLTATR_CTL_OPTIMIZE, 2, "binary-tree optimisation"),
    ):
        rc = lib.seccomp_attr_set(ctx, attr, value)
        if rc < 0:
            raise SpecError("seccomp", f"libseccomp refused the {what} attribute: {strerror(-rc)}")
    native = lib.seccomp_arch_native()
    for i, name in enumerate(profile.architectures):
        token = lib.seccomp_arch_resolve_name(name.removeprefix("SCMP_ARCH_").lower().encode())
        if token == 0:
            ver = ".".join(map(str, libseccomp_version()))
            raise SpecError(f"seccomp.architectures[{i}]", f"libseccomp {ver} does not know {name}")
        if token == native:
            continue
        rc = lib.seccomp_arch_add(ctx, token)
        if rc < 0 and rc != -_errno.EEXIST:
            raise SpecError(
                f"seccomp.architectures[{i}]", f"libseccomp refused {name}: {strerror(-rc)}"
            )


def _export(ffi: Any, lib: Any, ctx: Any) -> bytes:
    limit = int(lib.BPF_MAXINSNS)
    buf = ffi.new("unsigned char[]", limit * 8)
    size = lib.nsb_scmp_export(ctx, buf, limit * 8)
    if size < 0:
        raise SpecError("seccomp", f"libseccomp could not export the filter: {strerror(-size)}")
    if size > limit * 8:
        raise SpecError(
            "seccomp",
            f"the compiled filter has {size // 8} instructions, more than the kernel's "
            f"limit of {limit}",
        )
    return bytes(ffi.buffer(buf, size))


# ---- the default profile ------------------------------------------------------------


def compile_default(
    capabilities: Iterable[Capability] = DEFAULT_CAPABILITIES, *, setid_files: bool = True
) -> CompiledFilter:
    """``default_profile(capabilities, setid_files=...).compile()``, looked up in
    the on-disk cache (pynsbind._seccomp_cache) before the profile is even built."""
    caps = frozenset(capabilities)
    key = ("default", caps, bool(setid_files))
    compiled = _defaults.get(key)
    if compiled is not None:
        return compiled
    found = _cache.get_default(caps, bool(setid_files))
    if found is not None:
        compiled = CompiledFilter(*found)
    else:
        compiled = default_profile(caps, setid_files=setid_files).compile()
        _cache.put_default(caps, bool(setid_files), _entry(compiled))
    _defaults[key] = compiled
    return compiled


def _entry(compiled: CompiledFilter) -> tuple[bytes, int, bool, tuple[str, ...]]:
    return (compiled.program, compiled.flags, compiled.notify, compiled.skipped)


_defaults: dict[tuple[str, frozenset[Capability], bool], CompiledFilter] = {}


def default_profile(
    capabilities: Iterable[Capability] = DEFAULT_CAPABILITIES, *, setid_files: bool = True
) -> SeccompProfile:
    """pynsbind's default profile for a container with ``capabilities``.

    Calls are refused with ENOSYS unless known; the dangerous ones with EPERM,
    unless a capability that the kernel checks for them is given (CAP_SYS_ADMIN
    allows the mount calls, unshare, setns, namespace flags of clone, clone3...).
    The filter covers the native architecture and its compat ones (x86_64: x86 and
    x32; aarch64: arm).

    ``setid_files=False``: no setuid or setgid file can be made (chmod, open,
    creat and mknod with those mode bits get EPERM; openat2, whose mode cannot be
    read, ENOSYS): for a container whose root writes files as the host's root
    (an idmapped mount), with CAP_FSETID and CAP_SETFCAP dropped too, so that
    it cannot leave the host a setuid or file-capable program.  See
    docs/seccomp.md."""
    caps = frozenset(capabilities)
    for cap in caps:
        if not isinstance(cap, Capability):
            raise SpecError("capabilities", f"expected a Capability, got {cap!r}")
    return _default_profile(caps, bool(setid_files))


@functools.lru_cache(maxsize=32)
def _default_profile(caps: frozenset[Capability], setid_files: bool = True) -> SeccompProfile:
    from pynsbind import _seccomp_default as data
    from pynsbind.flags import Namespace

    _, lib = _native()
    native = lib.seccomp_arch_native()
    archs: tuple[str, ...] = ()
    if native == lib.SCMP_ARCH_X86_64:
        archs = ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
    elif native == lib.SCMP_ARCH_AARCH64:
        archs = ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM")
    admin = Capability["SYS_ADMIN"] in caps
    allowed_again: set[str] = set()
    allowed = data.ALLOWED
    if not setid_files:
        guarded = set(data.SETID_MODE_ARG) | {"openat2"}
        allowed = tuple(n for n in allowed if n not in guarded)
    rules = [SyscallRule(allowed, Action.ALLOW)]
    for need, names in data.BY_CAPABILITY:
        if data.capability_allows(need, caps):
            allowed_again.update(names)
            rules.append(SyscallRule(tuple(names), Action.ALLOW))
    denied = tuple(n for n in data.DENIED if n not in allowed_again)
    rules.append(SyscallRule(denied, Action.ERRNO, errno_ret=_errno.EPERM))
    eperm = functools.partial(SyscallRule, action=Action.ERRNO, errno_ret=_errno.EPERM)
    # clone: namespace flags only with CAP_SYS_ADMIN.  Its flags are argument 0
    # (1 on s390); CLONE_NEWTIME is not among them: clone(2) has the exit signal
    # in those bits, so a time namespace needs clone3 or unshare.
    # clone3: its flags sit behind a pointer, which seccomp cannot read; ENOSYS
    # (the default) makes the C library fall back to clone.
    if admin:
        rules.append(SyscallRule(("clone", "clone3"), Action.ALLOW))
    else:
        flags_arg = 1 if native in (lib.SCMP_ARCH_S390, lib.SCMP_ARCH_S390X) else 0
        ns = [int(n) for n in Namespace if n is not Namespace.TIME and int(n)]
        mask = functools.reduce(int.__or__, ns)
        rules.append(
            SyscallRule(
                ("clone",),
                Action.ALLOW,
                args=(ArgCondition(flags_arg, mask, 0, "SCMP_CMP_MASKED_EQ"),),
            )
        )
        for bit in ns:
            rules.append(
                eperm(("clone",), args=(ArgCondition(flags_arg, bit, bit, "SCMP_CMP_MASKED_EQ"),))
            )
        rules.append(SyscallRule(("clone3",), Action.ERRNO, errno_ret=_errno.ENOSYS))
    # personality: the usual personas, and the query; EPERM otherwise (the catch-all
    # comparison comes after the equalities in libseccomp's tree)
    for persona in sorted(
        {lib.PER_LINUX, lib.PER_LINUX32, lib.UNAME26, lib.PER_LINUX32 | lib.UNAME26}
        | {data.PERSONALITY_QUERY}
    ):
        rules.append(SyscallRule(("personality",), Action.ALLOW, args=(ArgCondition(0, persona),)))
    rules.append(eperm(("personality",), args=(ArgCondition(0, 0, op="SCMP_CMP_GE"),)))
    # ioctl: not TIOCSTI (push input into the terminal: another session's shell
    # runs it) nor TIOCLINUX; the request is an int, so only its low 32 bits count
    for request in (lib.TIOCSTI, lib.TIOCLINUX):
        rules.append(
            eperm(("ioctl",), args=(ArgCondition(1, 0xFFFFFFFF, request, "SCMP_CMP_MASKED_EQ"),))
        )
    rules.append(
        SyscallRule(("ioctl",), Action.ALLOW, args=(ArgCondition(1, 0, op="SCMP_CMP_GE"),))
    )
    # socket: not AF_VSOCK, which reaches the hypervisor's host whatever the
    # network namespace; the family is an int, so only its low 32 bits count
    rules.append(
        eperm(("socket",), args=(ArgCondition(0, 0xFFFFFFFF, lib.AF_VSOCK, "SCMP_CMP_MASKED_EQ"),))
    )
    rules.append(
        SyscallRule(("socket",), Action.ALLOW, args=(ArgCondition(0, 0, op="SCMP_CMP_GE"),))
    )
    if not setid_files:
        # the mode argument of each: allowed without S_ISUID and S_ISGID
        setid = 0o4000 | 0o2000
        for name, arg in data.SETID_MODE_ARG.items():
            rules.append(
                SyscallRule(
                    (name,),
                    Action.ALLOW,
                    args=(ArgCondition(arg, setid, 0, "SCMP_CMP_MASKED_EQ"),),
                )
            )
            for bit in (0o4000, 0o2000):
                rules.append(
                    eperm((name,), args=(ArgCondition(arg, bit, bit, "SCMP_CMP_MASKED_EQ"),))
                )
    return SeccompProfile(
        default_action=Action.ERRNO,
        default_errno_ret=_errno.ENOSYS,
        architectures=archs,
        syscalls=tuple(rules),
    )


# ---- seccomp user notification ------------------------------------------------------


@record(frozen=True)
class Notification:
    """A call that met ``SCMP_ACT_NOTIFY``: the target thread waits for the answer."""

    id: int
    #: the target, in the pid namespace of the process that received this (0 if unseen)
    pid: int
    #: the AUDIT_ARCH_* of the call
    arch: int
    nr: int
    #: the name libseccomp gives (arch, nr), or "" if it knows none
    syscall: str
    args: tuple[int, ...]
    instruction_pointer: int


@record(frozen=True)
class Response:
    """The answer to a notification: ``value`` returned, or ``error`` (a positive
    errno) as the call's failure, or ``continue_``: let the kernel run the call.

    ``continue_`` is not a security decision: the target may change what its
    pointer arguments point to after the handler looked at them."""

    value: int = 0
    error: int = 0
    continue_: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise TypeError(f"Response.value must be an int, not {self.value!r}")
        if not -(2**63) <= self.value < 2**63:
            raise ValueError(f"Response.value must fit in 64 bits (signed), not {self.value}")
        if isinstance(self.error, bool) or not isinstance(self.error, int):
            raise TypeError(f"Response.error must be an int, not {self.error!r}")
        if not 0 <= self.error <= _MAX_ERRNO:
            raise ValueError(f"Response.error must be an errno (0..{_MAX_ERRNO}), not {self.error}")
        if not isinstance(self.continue_, bool):
            raise TypeError(f"Response.continue_ must be a bool, not {self.continue_!r}")
        if self.continue_ and (self.value or self.error):
            raise ValueError("Response.continue_ takes no value and no error")

    @classmethod
    def allow(cls) -> Response:
        """Let the kernel run the call (SECCOMP_USER_NOTIF_FLAG_CONTINUE)."""
        return cls(continue_=True)

    @classmethod
    def fail(cls, err: int) -> Response:
        """Fail the call with errno ``err``."""
        if err == 0:
            raise ValueError("Response.fail needs a nonzero errno")
        return cls(error=err)

    @classmethod
    def ok(cls, value: int = 0) -> Response:
        """The call returns ``value`` without running."""
        return cls(value=value)


def _listener(fd: object) -> int:
    if isinstance(fd, bool) or not isinstance(fd, int):
        raise TypeError(f"listener_fd must be an int, not {type(fd).__name__}")
    if not 0 <= fd < 2**31:
        raise ValueError(f"listener_fd must be a file descriptor, not {fd}")
    return fd


def syscall_number(name: str) -> int:
    """The native number of the system call ``name`` from libseccomp's tables
    (-1 when it knows none by that name)."""
    _, lib = _native()
    return int(lib.seccomp_syscall_resolve_name(name.encode()))


def _syscall_name(lib: Any, ffi: Any, arch: int, nr: int) -> str:
    buf = ffi.new("char[]", 128)
    n = lib.nsb_scmp_syscall_name(arch, nr, buf, 128)
    return ffi.string(buf).decode() if n >= 0 else ""


def notif_recv(listener_fd: int) -> Notification:
    """SECCOMP_IOCTL_NOTIF_RECV: the next notification (blocks until one is
    pending; poll the fd for POLLIN first).  OSError with ENOENT when the target
    went away between the poll and this call."""
    fd = _listener(listener_fd)
    ffi, lib = _native()
    if not lib.NSB_SCMP_HAS_NOTIFY:
        raise NotImplementedError("seccomp notify: this build of pynsbind has no support for it")
    buf = ffi.new("struct seccomp_notif *")
    while True:
        rc = lib.nsb_notif_recv(fd, buf)
        if rc != -_errno.EINTR:
            break
    if rc < 0:
        raise OSError(-rc, f"ioctl(SECCOMP_IOCTL_NOTIF_RECV) on fd {fd}: {strerror(-rc)}")
    data = buf.data
    return Notification(
        id=int(buf.id),
        pid=int(buf.pid),
        arch=int(data.arch),
        nr=int(data.nr),
        syscall=_syscall_name(lib, ffi, int(data.arch), int(data.nr)),
        args=tuple(int(a) for a in data.args),
        instruction_pointer=int(data.instruction_pointer),
    )


def notification_from_bytes(data: bytes) -> Notification:
    """A Notification from the kernel's ``struct seccomp_notif`` as raw bytes
    (80 bytes, native byte order): what the spawn engine hands over when the
    command's first notification reached it before the caller's handler."""
    import struct

    if len(data) < 80:
        raise ValueError(f"a struct seccomp_notif is 80 bytes, not {len(data)}")
    nid, pid, _flags, nr, arch, ip, *args = struct.unpack_from("=QIIiIQ6Q", data)
    ffi, lib = _native()
    return Notification(
        id=nid,
        pid=pid,
        arch=arch,
        nr=nr,
        syscall=_syscall_name(lib, ffi, arch, nr),
        args=tuple(args),
        instruction_pointer=ip,
    )


def notif_send(listener_fd: int, resp_id: int, response: Response) -> bool:
    """SECCOMP_IOCTL_NOTIF_SEND: answer notification ``resp_id``.  Returns False
    when the target no longer waits (it was killed, or a signal interrupted its
    call: ENOENT); raises OSError for any other failure."""
    fd = _listener(listener_fd)
    if not isinstance(response, Response):
        raise TypeError(f"response must be a Response, not {type(response).__name__}")
    if isinstance(resp_id, bool) or not isinstance(resp_id, int) or not 0 <= resp_id <= _U64:
        raise ValueError(f"resp_id must be a notification id (u64), not {resp_id!r}")
    _, lib = _native()
    if not lib.NSB_SCMP_HAS_NOTIFY:
        raise NotImplementedError("seccomp notify: this build of pynsbind has no support for it")
    flags = 0
    if response.continue_:
        if not lib.NSB_SCMP_HAS_NOTIF_CONTINUE:
            raise NotImplementedError(
                "Response.allow(): the headers pynsbind was built with lack "
                "SECCOMP_USER_NOTIF_FLAG_CONTINUE"
            )
        flags = int(lib.SECCOMP_USER_NOTIF_FLAG_CONTINUE)
    rc = lib.nsb_notif_send(fd, resp_id, response.value, -response.error, flags)
    if rc == -_errno.ENOENT:
        return False
    if rc < 0:
        raise OSError(-rc, f"ioctl(SECCOMP_IOCTL_NOTIF_SEND) on fd {fd}: {strerror(-rc)}")
    return True


def notif_id_valid(listener_fd: int, notif_id: int) -> bool:
    """SECCOMP_IOCTL_NOTIF_ID_VALID: True while the target of ``notif_id`` still
    waits for an answer (check it after reading the target's memory, before
    trusting what was read)."""
    fd = _listener(listener_fd)
    if isinstance(notif_id, bool) or not isinstance(notif_id, int) or not 0 <= notif_id <= _U64:
        raise ValueError(f"notif_id must be a notification id (u64), not {notif_id!r}")
    _, lib = _native()
    if not lib.NSB_SCMP_HAS_NOTIFY:
        raise NotImplementedError("seccomp notify: this build of pynsbind has no support for it")
    rc = lib.nsb_notif_id_valid(fd, notif_id)
    if rc < 0:
        raise OSError(-rc, f"ioctl(SECCOMP_IOCTL_NOTIF_ID_VALID) on fd {fd}: {strerror(-rc)}")
    return bool(rc)


#: A notification handler: returns the Response, or an awaitable of it.
Handler: TypeAlias = Callable[[Notification], "Response | Awaitable[Response]"]


async def serve(listener_fd: int, handler: Handler, pending: Sequence[Notification] = ()) -> None:
    """Answer the notifications of ``listener_fd`` with ``handler`` until every
    process using the filter has exited and been reaped (the listener hangs up).

    Each notification is received in the event loop and handled in its own task,
    so async handlers run concurrently; a plain function runs in the loop and
    should be quick.  If the handler raises (or returns something other than a
    Response) the call fails with EPERM, the exception is logged on the
    ``pynsbind.seccomp`` logger, serving goes on, and the first such exception is
    raised when serve returns.  ``pending``: notifications already received (from
    the fd) and not yet answered, handled first.  Cancelling serve answers the calls in flight with
    EPERM.  serve never closes the fd: the caller does, after serve returns (a
    call that meets NOTIFY once no listener is open fails with ENOSYS)."""
    import asyncio
    import inspect
    import logging
    import select

    fd = _listener(listener_fd)
    _native()
    log = logging.getLogger("pynsbind.seccomp")
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()
    tasks: set[asyncio.Task[None]] = set()
    errors: list[BaseException] = []
    poller = select.poll()
    poller.register(fd, select.POLLIN)

    async def answer(note: Notification) -> None:
        try:
            result = handler(note)
            if inspect.isawaitable(result):
                result = await result
            if not isinstance(result, Response):
                raise TypeError(
                    f"the seccomp handler returned {type(result).__name__}, not a Response"
                )
        except asyncio.CancelledError:
            try:
                notif_send(fd, note.id, Response.fail(_errno.EPERM))
            except OSError:
                pass
            raise
        except Exception as exc:
            log.error(
                "seccomp handler failed on %s (pid %d)", note.syscall, note.pid, exc_info=True
            )
            errors.append(exc)
            result = Response.fail(_errno.EPERM)
        try:
            notif_send(fd, note.id, result)
        except OSError as exc:  # e.g. EINVAL for a response the kernel refuses
            errors.append(exc)
            try:
                notif_send(fd, note.id, Response.fail(_errno.EPERM))
            except OSError:
                pass

    def readable() -> None:
        if finished.done():
            return
        events = poller.poll(0)
        revents = events[0][1] if events else 0
        if revents & select.POLLNVAL:
            finished.set_exception(OSError(_errno.EBADF, f"seccomp listener fd {fd} was closed"))
        elif revents & select.POLLIN:
            try:
                note = notif_recv(fd)
            except OSError as exc:
                if exc.errno != _errno.ENOENT:  # ENOENT: the target is gone already
                    finished.set_exception(exc)
                return
            task = loop.create_task(answer(note))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        elif revents & (select.POLLHUP | select.POLLERR):
            finished.set_result(None)

    for note in pending:  # received before serve was called: answered first
        task = loop.create_task(answer(note))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    loop.add_reader(fd, readable)
    try:
        await finished
    finally:
        loop.remove_reader(fd)
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
    if errors:
        raise errors[0]
