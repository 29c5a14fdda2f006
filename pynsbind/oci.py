"""pynsbind.oci: the OCI runtime-spec bundle (``config.json``) as a pynsbind Spec.

OCI JSON is an input format at the edge: this module reads it, checks it and
maps it onto :class:`~pynsbind.spec.Spec`, the model the rest of pynsbind
passes around; nothing below it knows about OCI.  What it offers:

- :func:`load_bundle`: a bundle directory read and checked (``config.json``,
  ``ociVersion`` 1.0.0 to 1.3.0), with its hooks and annotations;
- :func:`spec_from_config`: the whole config mapped (docs/oci.md has the table);
- :func:`process_spec`: a ``process.json`` joined into a running container
  (``exec --process``);
- :func:`cgroup_path`, :func:`hooks_from_config`, :func:`seccomp_listener`;
- :func:`state_document`, :func:`features_document`, :func:`default_config`:
  the JSON a runtime prints for ``state``, ``features`` and ``spec``.

Every error is a :class:`~pynsbind.errors.SpecError` whose field is the JSON
path of the bad value (``process.args: must be a non-empty list``,
``linux.namespaces[2].type: unknown namespace 'foo'``).  Fields this module
does not know are ignored (OCI's rule); a field it knows and that pynsbind or
this host cannot honour is an error, never dropped.  Where runc itself only
warns (an ambient capability the kernel cannot raise, a capability this kernel
lacks) the mapping leaves it out and says so through ``warn`` (by default a
:class:`OCIWarning`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from pynsbind._record import fields, record
from pynsbind._version import __version__
from pynsbind.errors import SpecError
from pynsbind.flags import Capability, Namespace, Personality
from pynsbind.spec import (
    DEFAULT_DEVICES,
    DEFAULT_MASKED_PATHS,
    DEFAULT_PATH,
    DEFAULT_READONLY_PATHS,
    CapabilitySets,
    Device,
    IdMap,
    Mount,
    Spec,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    Warn = Callable[[str], None]

__all__ = [
    "DEFAULT_CGROUP_PARENT",
    "HOOK_NAMES",
    "OCI_VERSION",
    "OCI_VERSION_MAX",
    "OCI_VERSION_MIN",
    "SPEC_FIELD_PATHS",
    "Bundle",
    "Hook",
    "Hooks",
    "OCIWarning",
    "cgroup_path",
    "check_version",
    "config_error",
    "default_config",
    "features_document",
    "hooks_from_config",
    "load_bundle",
    "process_spec",
    "seccomp_listener",
    "spec_from_config",
    "state_document",
]

#: the runtime-spec versions a config may declare (``ociVersion``)
OCI_VERSION_MIN = "1.0.0"
OCI_VERSION_MAX = "1.3.0"
#: the version of the documents pynsbind writes (state, spec)
OCI_VERSION = "1.3.0"
#: where a relative (or absent) ``linux.cgroupsPath`` is placed: a top-level
#: cgroup of pynsbind's, never inside the subtree that holds the caller (runc
#: puts a relative path under its own cgroup, which belongs to whatever put the
#: runtime there: systemd, conmon, the machine's own manager)
DEFAULT_CGROUP_PARENT = "pynsbind-oci"
#: the hook lists of ``hooks``, in the order the lifecycle runs them
HOOK_NAMES = (
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
)
#: the JSON path of each Spec field this module fills: for errors raised later
#: (spawn, compile) about a spec made from a config
SPEC_FIELD_PATHS = {
    "args": "process.args",
    "env": "process.env",
    "cwd": "process.cwd",
    "user": "process.user",
    "groups": "process.user.additionalGids",
    "umask": "process.user.umask",
    "rlimits": "process.rlimits",
    "capabilities": "process.capabilities",
    "capability_sets": "process.capabilities",
    "no_new_privs": "process.noNewPrivileges",
    "oom_score_adj": "process.oomScoreAdj",
    "terminal": "process.terminal",
    "console_size": "process.consoleSize",
    "rootfs": "root.path",
    "readonly_rootfs": "root.readonly",
    "hostname": "hostname",
    "domainname": "domainname",
    "mounts": "mounts",
    "namespaces": "linux.namespaces",
    "join": "linux.namespaces",
    "uid_map": "linux.uidMappings",
    "gid_map": "linux.gidMappings",
    "devices": "linux.devices",
    "resources": "linux.resources",
    "cgroup": "linux.cgroupsPath",
    "sysctl": "linux.sysctl",
    "seccomp": "linux.seccomp",
    "masked_paths": "linux.maskedPaths",
    "readonly_paths": "linux.readonlyPaths",
    "rootfs_propagation": "linux.rootfsPropagation",
    "time_offsets": "linux.timeOffsets",
    "personality": "linux.personality",
}

_NAMESPACES = {
    "pid": Namespace.PID,
    "network": Namespace.NET,
    "mount": Namespace.MNT,
    "ipc": Namespace.IPC,
    "uts": Namespace.UTS,
    "user": Namespace.USER,
    "cgroup": Namespace.CGROUP,
    "time": Namespace.TIME,
}
_ID_MAX = 2**32 - 1


class OCIWarning(UserWarning):
    """What runc would only log: part of a config left out because the kernel
    cannot give it (and runc does not either)."""


def _default_warn(message: str) -> None:
    import warnings

    warnings.warn(message, OCIWarning, stacklevel=4)


# ---- reading JSON with paths ----------------------------------------------------------


def _obj(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(path, f"expected an object, got {_kind(value)}")
    return value


def _opt_obj(parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = parent.get(key)
    return {} if value is None else _obj(value, path)


def _str(value: object, path: str, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise SpecError(path, f"expected a string, got {_kind(value)}")
    if "\0" in value:
        raise SpecError(path, f"contains a NUL byte: {value!r}")
    if not empty and not value:
        raise SpecError(path, "must not be empty")
    return value


def _bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(path, f"expected true or false, got {_kind(value)}")
    return value


def _int(value: object, path: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(path, f"expected an integer, got {_kind(value)}")
    if not lo <= value <= hi:
        raise SpecError(path, f"{value} is out of range ({lo}..{hi})")
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise SpecError(path, f"expected an array, got {_kind(value)}")
    return list(value)


def _str_list(value: object, path: str) -> list[str]:
    return [_str(v, f"{path}[{i}]") for i, v in enumerate(_list(value, path))]


def _kind(value: object) -> str:
    """A JSON value described as the JSON type it is."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({json.dumps(value)})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


def _absolute(value: object, path: str) -> str:
    text = _str(value, path, empty=False)
    if not text.startswith("/"):
        raise SpecError(path, f"must be an absolute path, not {text!r}")
    return text


def _host_path(value: object, path: str, bundle: str) -> str:
    """A host path of the config: absolute, or relative to the bundle; its
    symlinks resolved (pynsbind refuses a host path that goes through one,
    so that none can be swapped in later; the kernel would follow them)."""
    text = _str(value, path, empty=False)
    return os.path.realpath(os.path.join(bundle, text))


# ---- the version ----------------------------------------------------------------------


def _semver(text: str) -> tuple[tuple[int, int, int], bool] | None:
    """(major, minor, patch), and whether it is a pre-release; None when
    ``text`` is not SemVer (build metadata after ``+`` is ignored)."""
    core, _, _build = text.partition("+")
    core, dash, _pre = core.partition("-")
    parts = core.split(".")
    if len(parts) != 3 or not all(p.isdigit() and p.isascii() for p in parts):
        return None
    major, minor, patch = (int(p) for p in parts)
    return (major, minor, patch), bool(dash)


def check_version(config: Mapping[str, Any]) -> str:
    """``ociVersion`` of a config, checked to be a version pynsbind reads
    (1.0.0 to 1.3.0; a pre-release of a later patch counts, ``1.0.2-dev``)."""
    if "ociVersion" not in config:
        raise SpecError("ociVersion", "is required")
    text = _str(config["ociVersion"], "ociVersion", empty=False)
    parsed = _semver(text)
    if parsed is None:
        raise SpecError("ociVersion", f"{text!r} is not a version such as '1.0.2'")
    version, pre = parsed
    low, _ = _semver(OCI_VERSION_MIN) or ((1, 0, 0), False)
    high, _ = _semver(OCI_VERSION_MAX) or ((1, 3, 0), False)
    if version < low or (version == low and pre) or version > high:
        raise SpecError(
            "ociVersion",
            f"{text!r} is not supported: pynsbind reads {OCI_VERSION_MIN} to {OCI_VERSION_MAX}",
        )
    return text


# ---- hooks ----------------------------------------------------------------------------


@record(frozen=True)
class Hook:
    """One hook: ``path`` (absolute) run with ``args`` (its argv, ``[path]``
    when the config gives none) and ``env``, killed after ``timeout`` seconds
    (None: no limit).  The lifecycle runs it with the state on its stdin."""

    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None


@record(frozen=True, kw_only=True)
class Hooks:
    """The hooks of a config, by the lifecycle step that runs them."""

    prestart: tuple[Hook, ...] = ()
    create_runtime: tuple[Hook, ...] = ()
    create_container: tuple[Hook, ...] = ()
    start_container: tuple[Hook, ...] = ()
    poststart: tuple[Hook, ...] = ()
    poststop: tuple[Hook, ...] = ()


_HOOK_FIELDS = {
    "prestart": "prestart",
    "createRuntime": "create_runtime",
    "createContainer": "create_container",
    "startContainer": "start_container",
    "poststart": "poststart",
    "poststop": "poststop",
}


def hooks_from_config(config: Mapping[str, Any]) -> Hooks:
    """The ``hooks`` of a config, checked (``path`` absolute, ``timeout`` a
    positive number of seconds), as data for the lifecycle to run."""
    section = _opt_obj(config, "hooks", "hooks")
    found: dict[str, tuple[Hook, ...]] = {}
    for name, attr in _HOOK_FIELDS.items():
        if section.get(name) is None:
            continue
        hooks = []
        for i, item in enumerate(_list(section[name], f"hooks.{name}")):
            where = f"hooks.{name}[{i}]"
            entry = _obj(item, where)
            if "path" not in entry:
                raise SpecError(f"{where}.path", "is required")
            path = _absolute(entry["path"], f"{where}.path")
            args = tuple(_str_list(entry.get("args") or [], f"{where}.args")) or (path,)
            env = tuple(_str_list(entry.get("env") or [], f"{where}.env"))
            timeout = None
            if entry.get("timeout") is not None:
                timeout = _int(entry["timeout"], f"{where}.timeout", 1, 2**31 - 1)
            hooks.append(Hook(path, args, env, timeout))
        found[attr] = tuple(hooks)
    return Hooks(**found)


# ---- the bundle -----------------------------------------------------------------------


@record(frozen=True, eq=False)
class Bundle:
    """A bundle read from disk: its absolute ``path``, the parsed ``config``,
    its ``oci_version``, ``annotations`` (kept for the state; pynsbind acts on
    none), ``hooks``, and ``raw``, the bytes of config.json as read."""

    path: str
    config: Mapping[str, Any]
    oci_version: str
    annotations: Mapping[str, str]
    hooks: Hooks
    raw: bytes = b""

    def spec(self, **options: Any) -> Spec:
        """:func:`spec_from_config` of this bundle (``options`` as it takes them)."""
        return spec_from_config(self.config, self.path, **options)


def load_bundle(bundle_dir: str | os.PathLike[str]) -> Bundle:
    """Read ``BUNDLE/config.json``: valid JSON, an object, a supported
    ``ociVersion``, annotations of strings, hooks well-formed.  The rest is
    checked by :func:`spec_from_config`."""
    path = os.path.abspath(os.fspath(bundle_dir))
    if not os.path.isdir(path):
        raise SpecError("bundle", f"{path!r} is not a directory")
    file = os.path.join(path, "config.json")
    try:
        with open(file, "rb") as f:
            data = f.read()
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise SpecError("config.json", f"{file}: {reason}") from None
    try:
        config = json.loads(data)
    except UnicodeDecodeError as exc:
        raise SpecError("config.json", f"{file}: not UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise SpecError(
            "config.json",
            f"{file}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
        ) from None
    if not isinstance(config, dict):
        raise SpecError("config.json", f"{file}: expected an object, got {_kind(config)}")
    version = check_version(config)
    annotations = {}
    for key, value in _opt_obj(config, "annotations", "annotations").items():
        annotations[key] = _str(value, f"annotations[{key!r}]")
    return Bundle(path, config, version, annotations, hooks_from_config(config), data)


# ---- process --------------------------------------------------------------------------


def _env(value: object, path: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for i, item in enumerate(_list(value, path)):
        text = _str(item, f"{path}[{i}]")
        key, sep, val = text.partition("=")
        if not sep or not key:
            raise SpecError(f"{path}[{i}]", f"expected KEY=VALUE, got {text!r}")
        env[key] = val  # as execve would see the last one
    return env


# ---- HOME, from the container's /etc/passwd -------------------------------------------

_MAX_LINKS = 40
_PASSWD_MAX = 1 << 20


def _open_in_root(root: int, path: str) -> int | None:
    """A regular file at ``path`` inside the directory ``root`` (an fd), opened
    for reading: each component looked up with O_NOFOLLOW, symlinks followed
    by hand and never out of ``root`` (``..`` stops there, an absolute link
    starts there again), as openat2's RESOLVE_IN_ROOT does.  None when it is
    not there."""
    import stat

    names = [p for p in path.split("/") if p not in ("", ".")]
    dirs = [os.dup(root)]
    links = 0
    try:
        while names:
            name = names.pop(0)
            if name == "..":
                if len(dirs) > 1:
                    os.close(dirs.pop())
                continue
            try:
                fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirs[-1])
            except OSError:
                return None
            mode = os.fstat(fd).st_mode
            if stat.S_ISLNK(mode):
                os.close(fd)
                links += 1
                try:
                    target = os.readlink(name, dir_fd=dirs[-1])
                except OSError:
                    return None
                if links > _MAX_LINKS:
                    return None
                if target.startswith("/"):
                    while len(dirs) > 1:
                        os.close(dirs.pop())
                names = [p for p in target.split("/") if p not in ("", ".")] + names
            elif names and stat.S_ISDIR(mode):
                dirs.append(fd)
            elif not names and stat.S_ISREG(mode):
                try:
                    return os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    return None
                finally:
                    os.close(fd)
            else:
                os.close(fd)
                return None
        return None
    finally:
        for d in dirs:
            os.close(d)


def _home_of(root: str | int, path: str, uid: int) -> str:
    """The home of ``uid`` in the passwd file at ``path`` inside ``root`` (a
    directory, or an fd of one); ``/`` when there is none, as runc says."""
    fd = -1
    try:
        base = root if isinstance(root, int) else os.open(root, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return "/"
    try:
        found = _open_in_root(base, path)
        if found is None:
            return "/"
        fd = found
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(_PASSWD_MAX)
    except OSError:
        return "/"
    finally:
        if fd >= 0:
            os.close(fd)
        if not isinstance(root, int):
            os.close(base)
    for line in data.decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[2].isdigit() and int(fields[2]) == uid:
            return fields[5] or "/"
    return "/"


def _home(found: dict[str, Any], mounts: Sequence[Mount]) -> None:
    """HOME, when the config's env has none (or an empty one): the user's home
    in the container's /etc/passwd, or ``/`` (runc's rule).  The passwd file is
    the one the container will see: a bind of /etc/passwd or of /etc, or the
    image's (read inside the rootfs, where no symlink can lead out)."""
    env = found["env"]
    if env.get("HOME"):
        return
    uid = found["user"][0]
    root: str | None = found.get("rootfs")
    where = "etc/passwd"
    for m in mounts:
        if m.target == "/etc/passwd" and m.kind == "bind" and m.source is not None:
            root, where = os.path.dirname(m.source), os.path.basename(m.source)
        elif m.target in ("/", "/etc") and m.kind == "bind" and m.source is not None:
            root, where = m.source, "passwd" if m.target == "/etc" else "etc/passwd"
        elif m.target in ("/etc", "/etc/passwd") and m.kind == "tmpfs" and not m.copy_up:
            root = None
    env.pop("HOME", None)
    env["HOME"] = "/" if root is None else _home_of(root, where, uid)


def _capability_names(value: object, path: str, last_cap: int, warn: Warn) -> frozenset[Capability]:
    out = set()
    for i, item in enumerate(_list(value, path)):
        name = _str(item, f"{path}[{i}]")
        short = name.removeprefix("CAP_")
        if not name.startswith("CAP_") or short not in Capability.__members__:
            warn(f"{path}[{i}]: unknown capability {name!r}: left out (runc does the same)")
            continue
        cap = Capability[short]
        if cap > last_cap:
            warn(f"{path}[{i}]: {name} is not known to this kernel: left out")
            continue
        out.add(cap)
    return frozenset(out)


def _capabilities(value: object, path: str, warn: Warn) -> CapabilitySets:
    from pynsbind._features import features

    section = _obj(value, path)
    last = features().cap_last_cap
    sets = {
        name: _capability_names(section.get(name) or [], f"{path}.{name}", last, warn)
        for name in ("bounding", "effective", "permitted", "inheritable", "ambient")
    }
    # the kernel raises an ambient capability only if it is permitted and
    # inheritable: runc warns and leaves it out (podman exec asks for such ones)
    allowed = sets["permitted"] & sets["inheritable"]
    for cap in sorted(sets["ambient"] - allowed):
        missing = "permitted" if cap not in sets["permitted"] else "inheritable"
        warn(
            f"{path}.ambient: CAP_{cap.name} is not {missing}: the kernel cannot raise it "
            "(left out, as runc does)"
        )
    sets["ambient"] = sets["ambient"] & allowed
    for cap in sorted(sets["effective"] - sets["permitted"]):
        raise SpecError(
            f"{path}.effective",
            f"CAP_{cap.name} is not in the permitted set (capset keeps the effective set "
            "within the permitted set)",
        )
    return CapabilitySets(**sets)


def _rlimits(value: object, path: str) -> dict[str, tuple[int, int]]:
    import resource

    out: dict[str, tuple[int, int]] = {}
    for i, item in enumerate(_list(value, path)):
        where = f"{path}[{i}]"
        entry = _obj(item, where)
        for key in ("type", "soft", "hard"):
            if key not in entry:
                raise SpecError(f"{where}.{key}", "is required")
        kind = _str(entry["type"], f"{where}.type")
        if not kind.startswith("RLIMIT_") or not hasattr(resource, kind):
            raise SpecError(f"{where}.type", f"unknown limit {kind!r}")
        if kind in out:
            raise SpecError(f"{where}.type", f"{kind} is given twice")
        soft = _int(entry["soft"], f"{where}.soft", 0, 2**64 - 1)
        hard = _int(entry["hard"], f"{where}.hard", 0, 2**64 - 1)
        if soft > hard:
            raise SpecError(where, f"the soft limit {soft} is above the hard limit {hard}")
        out[kind] = (soft, hard)
    return out


def _refuse_lsm(value: object, path: str, what: str) -> None:
    """An AppArmor profile or SELinux label: pynsbind applies none; an empty
    one asks for nothing."""
    text = _str(value, path)
    if not text:
        return
    if what == "AppArmor":
        enabled = _read("/sys/module/apparmor/parameters/enabled").strip() == "Y"
    else:
        enabled = os.path.exists("/sys/fs/selinux/enforce")
    host = "pynsbind does not apply it" if enabled else f"{what} is not enabled on this host"
    raise SpecError(path, f"{text!r}: {host}")


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _terminal_fields(process: Mapping[str, Any], path: str) -> dict[str, Any]:
    """``terminal`` and ``consoleSize``, for a pynsbind whose Spec has them."""
    out: dict[str, Any] = {}
    terminal = process.get("terminal")
    if terminal is None:
        return out
    terminal = _bool(terminal, f"{path}.terminal")
    names = {f.name for f in fields(Spec)}
    if not terminal:
        if "terminal" in names:
            out["terminal"] = False
        return out
    if "terminal" not in names:
        raise SpecError(f"{path}.terminal", "this pynsbind has no terminal support")
    out["terminal"] = True
    size = process.get("consoleSize")
    if size is not None and "console_size" in names:
        box = _obj(size, f"{path}.consoleSize")
        for key in ("height", "width"):
            if key not in box:
                raise SpecError(f"{path}.consoleSize.{key}", "is required")
        rows = _int(box["height"], f"{path}.consoleSize.height", 0, 65535)
        cols = _int(box["width"], f"{path}.consoleSize.width", 0, 65535)
        if rows or cols:  # 0x0: the kernel's own size, as for no consoleSize
            out["console_size"] = (rows, cols)
    return out


def _process_fields(process: Mapping[str, Any], path: str, warn: Warn) -> dict[str, Any]:
    """What a ``process`` object (of config.json, or a process.json) sets."""
    out: dict[str, Any] = {}
    args = process.get("args")
    if args is None or not isinstance(args, (list, tuple)) or not args:
        raise SpecError(f"{path}.args", "must be a non-empty list")
    out["args"] = [_str(a, f"{path}.args[{i}]") for i, a in enumerate(args)]
    if not out["args"][0]:
        raise SpecError(f"{path}.args[0]", "must not be empty")
    out["env"] = _env(process.get("env") or [], f"{path}.env")
    if "cwd" not in process:
        raise SpecError(f"{path}.cwd", "is required")
    out["cwd"] = _absolute(process["cwd"], f"{path}.cwd")
    user = _opt_obj(process, "user", f"{path}.user")
    uid = _int(user.get("uid", 0), f"{path}.user.uid", 0, _ID_MAX - 1)
    gid = _int(user.get("gid", 0), f"{path}.user.gid", 0, _ID_MAX - 1)
    out["user"] = (uid, gid)
    groups = user.get("additionalGids") or []
    out["groups"] = [
        _int(g, f"{path}.user.additionalGids[{i}]", 0, _ID_MAX - 1)
        for i, g in enumerate(_list(groups, f"{path}.user.additionalGids"))
    ]
    if user.get("umask") is not None:
        out["umask"] = _int(user["umask"], f"{path}.user.umask", 0, 0o777)
    if process.get("capabilities") is not None:
        out["capability_sets"] = _capabilities(
            process["capabilities"], f"{path}.capabilities", warn
        )
    out["rlimits"] = _rlimits(process.get("rlimits") or [], f"{path}.rlimits")
    nnp = process.get("noNewPrivileges")
    out["no_new_privs"] = False if nnp is None else _bool(nnp, f"{path}.noNewPrivileges")
    if process.get("oomScoreAdj") is not None:
        out["oom_score_adj"] = _int(process["oomScoreAdj"], f"{path}.oomScoreAdj", -1000, 1000)
    if process.get("apparmorProfile") is not None:
        _refuse_lsm(process["apparmorProfile"], f"{path}.apparmorProfile", "AppArmor")
    if process.get("selinuxLabel") is not None:
        _refuse_lsm(process["selinuxLabel"], f"{path}.selinuxLabel", "SELinux")
    for key in ("ioPriority", "scheduler", "execCPUAffinity"):
        if process.get(key):
            raise SpecError(f"{path}.{key}", "is not supported by pynsbind")
    out.update(_terminal_fields(process, path))
    return out


# ---- mounts ---------------------------------------------------------------------------

# options that ask for the default, or for nothing pynsbind must do (silent
# only quiets the kernel's log about the mount)
_NO_OPS = frozenset(
    "defaults rw suid exec async nolazytime nomand loud silent noiversion rrw rsuid rexec "
    "notmpcopyup".split()
)
_FLAG_OPTIONS = {
    "ro": "readonly",
    "rro": "readonly",
    "nosuid": "nosuid",
    "rnosuid": "nosuid",
    "noexec": "noexec",
    "rnoexec": "noexec",
    "nodev": "nodev",
    "rnodev": "nodev",
    "nodiratime": "nodiratime",
    "rnodiratime": "nodiratime",
    "nosymfollow": "nosymfollow",
    "rnosymfollow": "nosymfollow",
}
_UNFLAG_OPTIONS = {
    "diratime": "nodiratime",
    "rdiratime": "nodiratime",
    "symfollow": "nosymfollow",
    "rsymfollow": "nosymfollow",
}
_ATIME_OPTIONS = {
    "atime": None,
    "ratime": None,
    "noatime": "noatime",
    "rnoatime": "noatime",
    "relatime": "relatime",
    "rrelatime": "relatime",
    "norelatime": "strictatime",
    "rnorelatime": "strictatime",
    "strictatime": "strictatime",
    "rstrictatime": "strictatime",
    "nostrictatime": None,
    "rnostrictatime": None,
}
_PROPAGATION_OPTIONS = {
    "private": "private",
    "rprivate": "private",
    "slave": "slave",
    "rslave": "slave",
    "shared": "shared",
    "rshared": "shared",
    "unbindable": "unbindable",
    "runbindable": "unbindable",
}
# flags of the filesystem itself: passed to a new one, meaningless for a bind
_SB_OPTIONS = frozenset(("sync", "dirsync", "lazytime"))
_REFUSED_OPTIONS = {
    "dev": "pynsbind mounts every filesystem nodev but /dev's own nodes and devpts "
    "(give device nodes in linux.devices)",
    "rdev": "pynsbind mounts every filesystem nodev but /dev's own nodes and devpts "
    "(give device nodes in linux.devices)",
    "remount": "is not supported by pynsbind (every mount is a new one)",
    "idmap": "idmapped mounts are not supported by pynsbind",
    "ridmap": "idmapped mounts are not supported by pynsbind",
    "mand": "mandatory locks are gone from Linux (5.15)",
    "iversion": "is not supported by pynsbind",
    "acl": "is not supported by pynsbind",
    "noacl": "is not supported by pynsbind",
}
_FS_KINDS = {
    "tmpfs": "tmpfs",
    "proc": "proc",
    "sysfs": "sysfs",
    "devpts": "devpts",
    "mqueue": "mqueue",
    "cgroup": "cgroup",
    "cgroup2": "cgroup",
    "overlay": "overlay",
}
#: every option a config's mounts may hold (features_document's mountOptions)
MOUNT_OPTIONS = sorted(
    {
        *_NO_OPS,
        *_FLAG_OPTIONS,
        *_UNFLAG_OPTIONS,
        *_ATIME_OPTIONS,
        *_PROPAGATION_OPTIONS,
        *_SB_OPTIONS,
        "bind",
        "rbind",
        "tmpcopyup",
    }
    - {"notmpcopyup"}
)


def _mount(item: object, path: str, bundle: str, warn: Warn) -> Mount:
    entry = _obj(item, path)
    if "destination" not in entry:
        raise SpecError(f"{path}.destination", "is required")
    dest = _str(entry["destination"], f"{path}.destination", empty=False)
    if not dest.startswith("/"):
        dest = "/" + dest  # relative destinations (deprecated) are relative to /
    fstype = "" if entry.get("type") is None else _str(entry["type"], f"{path}.type")
    options = _str_list(entry.get("options") or [], f"{path}.options")
    for key in ("uidMappings", "gidMappings"):
        if entry.get(key):
            raise SpecError(f"{path}.{key}", "idmapped mounts are not supported by pynsbind")
    bind = fstype == "bind" or "bind" in options or "rbind" in options
    if bind:
        kind = "bind"
    elif fstype == "tmpfs" and os.path.normpath(dest) == "/dev":
        kind = "dev"  # the container's /dev: its device nodes go in it
    elif fstype in _FS_KINDS:
        kind = _FS_KINDS[fstype]
    else:
        supported = ", ".join(sorted(set(_FS_KINDS) | {"bind"}))
        raise SpecError(
            f"{path}.type",
            f"{fstype or 'no type'!r} is not supported (pynsbind mounts {supported})",
        )
    flags: dict[str, Any] = {"recursive": "bind" not in options or "rbind" in options}
    atime: str | None = None
    fs_options: list[tuple[str, str | None]] = []
    for i, opt in enumerate(options):
        where = f"{path}.options[{i}]"
        if opt in ("bind", "rbind") or opt in _NO_OPS:
            continue
        if opt == "tmpcopyup":
            if kind != "tmpfs":
                raise SpecError(where, "tmpcopyup is for a tmpfs only")
            flags["copy_up"] = True
        elif opt in _FLAG_OPTIONS:
            flags[_FLAG_OPTIONS[opt]] = True
        elif opt in _UNFLAG_OPTIONS:
            flags[_UNFLAG_OPTIONS[opt]] = False
        elif opt in _ATIME_OPTIONS:
            atime = _ATIME_OPTIONS[opt]
        elif opt in _PROPAGATION_OPTIONS:
            flags["propagation"] = _PROPAGATION_OPTIONS[opt]
        elif opt in _REFUSED_OPTIONS:
            raise SpecError(where, f"{opt!r}: {_REFUSED_OPTIONS[opt]}")
        elif bind:
            if opt in _SB_OPTIONS:
                raise SpecError(
                    where, f"{opt!r} is a flag of the filesystem, which a bind mount cannot change"
                )
            # the kernel ignores data for a bind (runc passes it along): left out
            warn(f"{where}: {opt!r} means nothing to a bind mount: left out")
        else:
            key, sep, value = opt.partition("=")
            if not key or "," in opt:
                raise SpecError(where, f"bad option {opt!r}")
            fs_options.append((key, value if sep else None))
    flags["atime"] = atime
    if kind == "bind":
        if entry.get("source") is None:
            raise SpecError(f"{path}.source", "a bind mount needs a source")
        host = _host_path(entry["source"], f"{path}.source", bundle)
        return _build_mount("bind", dest, host, flags, (), path)
    label = fstype if entry.get("source") is None else _str(entry["source"], f"{path}.source")
    return _build_mount(kind, dest, label or fstype, flags, tuple(fs_options), path)


def _build_mount(
    kind: str,
    dest: str,
    source: str,
    flags: dict[str, Any],
    options: tuple[tuple[str, str | None], ...],
    path: str,
) -> Mount:
    try:
        return Mount(kind, dest, source=source, options=options, **flags)  # type: ignore[arg-type]
    except SpecError as exc:
        detail = str(exc)[len(exc.field) + 2 :]
        raise SpecError(path, detail) from None


def _mounts(config: Mapping[str, Any], bundle: str, warn: Warn) -> list[Mount]:
    mounts = [
        _mount(item, f"mounts[{i}]", bundle, warn)
        for i, item in enumerate(_list(config.get("mounts") or [], "mounts"))
    ]
    if not any(m.target == "/dev" for m in mounts):
        # runc makes the default device nodes in the image's own /dev; pynsbind
        # makes them only in a /dev of its own: a minimal one, before anything
        # the config mounts under /dev
        first = next((i for i, m in enumerate(mounts) if m.target.startswith("/dev/")), None)
        mounts.insert(len(mounts) if first is None else first, Mount.dev())
    return mounts


def _devices(linux: Mapping[str, Any], mounts: Sequence[Mount]) -> list[Device]:
    """The default nodes plus linux.devices (one of its own replaces a
    default one at the same path, as runc does)."""
    given: list[Device] = []
    for i, item in enumerate(_list(linux.get("devices") or [], "linux.devices")):
        where = f"linux.devices[{i}]"
        entry = _obj(item, where)
        for key in ("type", "path"):
            if key not in entry:
                raise SpecError(f"{where}.{key}", "is required")
        kind = _str(entry["type"], f"{where}.type")
        if kind == "u":
            kind = "c"  # an unbuffered character device is a character device
        if kind not in ("c", "b", "p"):
            raise SpecError(f"{where}.type", f"{kind!r}: not 'c', 'b', 'u' or 'p'")
        dpath = _absolute(entry["path"], f"{where}.path")
        major = minor = 0
        for key in ("major", "minor") if kind != "p" else ():
            if key not in entry:
                raise SpecError(f"{where}.{key}", "is required")
        if kind != "p":  # a FIFO's numbers mean nothing (runtime-spec: ignored)
            major = _int(entry["major"], f"{where}.major", 0, 2**12 - 1)
            minor = _int(entry["minor"], f"{where}.minor", 0, 2**20 - 1)
        mode = 0o666
        if entry.get("fileMode") is not None:
            mode = _int(entry["fileMode"], f"{where}.fileMode", 0, 2**32 - 1) & 0o7777
        for key in ("uid", "gid"):
            if entry.get(key) not in (None, 0):
                owner = _int(entry[key], f"{where}.{key}", 0, _ID_MAX - 1)
                raise SpecError(
                    f"{where}.{key}", f"pynsbind makes device nodes owned by 0, not {owner}"
                )
        try:
            given.append(Device(dpath, kind, major, minor, mode))  # type: ignore[arg-type]
        except SpecError as exc:
            raise SpecError(where, str(exc)[len(exc.field) + 2 :]) from None
    if given and not any(m.kind == "dev" for m in mounts):
        raise SpecError(
            "linux.devices", "pynsbind makes device nodes in a /dev tmpfs only (mounts has none)"
        )
    paths = {d.path for d in given}
    return [d for d in DEFAULT_DEVICES if d.path not in paths] + given


# ---- linux ----------------------------------------------------------------------------


def _namespaces(
    linux: Mapping[str, Any],
) -> tuple[Namespace, dict[Namespace, str], dict[Namespace, int]]:
    """(namespaces to create, {kind: path} to join, {kind: index in the list})."""
    create = Namespace(0)
    join: dict[Namespace, str] = {}
    index: dict[Namespace, int] = {}
    for i, item in enumerate(_list(linux.get("namespaces") or [], "linux.namespaces")):
        where = f"linux.namespaces[{i}]"
        entry = _obj(item, where)
        if "type" not in entry:
            raise SpecError(f"{where}.type", "is required")
        name = _str(entry["type"], f"{where}.type")
        kind = _NAMESPACES.get(name)
        if kind is None:
            raise SpecError(f"{where}.type", f"unknown namespace {name!r}")
        if kind in index:
            raise SpecError(f"{where}.type", f"{name!r} is given twice")
        index[kind] = i
        if entry.get("path"):
            join[kind] = _absolute(entry["path"], f"{where}.path")
        else:
            create |= kind
    return create, join, index


def _id_maps(value: object, path: str) -> list[IdMap]:
    maps = []
    for i, item in enumerate(_list(value, path)):
        where = f"{path}[{i}]"
        entry = _obj(item, where)
        for key in ("containerID", "hostID", "size"):
            if key not in entry:
                raise SpecError(f"{where}.{key}", "is required")
        inside = _int(entry["containerID"], f"{where}.containerID", 0, _ID_MAX - 1)
        outside = _int(entry["hostID"], f"{where}.hostID", 0, _ID_MAX - 1)
        size = _int(entry["size"], f"{where}.size", 1, _ID_MAX)
        try:
            maps.append(IdMap(inside, outside, size))
        except SpecError as exc:
            raise SpecError(where, str(exc)[len(exc.field) + 2 :]) from None
    if not maps:
        raise SpecError(path, "must not be empty")
    return maps


def _joined_maps(path: str, which: str) -> list[IdMap] | None:
    """The uid or gid map of a joined user namespace named /proc/PID/ns/user."""
    parts = path.split("/")
    if len(parts) != 5 or parts[1] != "proc" or parts[3] != "ns" or not parts[2].isdigit():
        return None
    text = _read(f"/proc/{parts[2]}/{which}_map")
    if not text:
        return None
    return [IdMap(*(int(x) for x in line.split())) for line in text.splitlines() if line.strip()]


def _user_maps(
    linux: Mapping[str, Any],
    create: Namespace,
    join: Mapping[Namespace, str],
    index: Mapping[Namespace, int],
    warn: Warn,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    given = {
        name: linux.get(key)
        for name, key in (("uid", "uidMappings"), ("gid", "gidMappings"))
        if linux.get(key)
    }
    if create & Namespace.USER:
        for name, key in (("uid", "uidMappings"), ("gid", "gidMappings")):
            if name not in given:
                raise SpecError(f"linux.{key}", "a new user namespace needs its mappings")
            out[f"{name}_map"] = _id_maps(given[name], f"linux.{key}")
        return out
    if not given:
        return out
    if Namespace.USER not in join:
        key = "uidMappings" if "uid" in given else "gidMappings"
        raise SpecError(
            f"linux.{key}", "needs a user namespace (a 'user' entry in linux.namespaces)"
        )
    # a joined user namespace keeps its own maps: the config's must say the same
    path = join[Namespace.USER]
    for name, key in (("uid", "uidMappings"), ("gid", "gidMappings")):
        if name not in given:
            continue
        wanted = _id_maps(given[name], f"linux.{key}")
        found = _joined_maps(path, name)
        if found is None:
            warn(
                f"linux.{key}: the maps of the joined user namespace "
                f"(linux.namespaces[{index[Namespace.USER]}].path) cannot be read to compare: "
                "its own apply"
            )
        elif sorted(found, key=repr) != sorted(wanted, key=repr):
            raise SpecError(
                f"linux.{key}",
                f"differs from the maps of the joined user namespace {path!r}",
            )
    return out


def _sysctl(linux: Mapping[str, Any]) -> dict[str, str]:
    section = _opt_obj(linux, "sysctl", "linux.sysctl")
    return {key: _str(value, f"linux.sysctl[{key!r}]") for key, value in section.items()}


def _time_offsets(linux: Mapping[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for clock, item in _opt_obj(linux, "timeOffsets", "linux.timeOffsets").items():
        where = f"linux.timeOffsets.{clock}"
        if clock not in ("monotonic", "boottime"):
            raise SpecError(where, "the clocks of a time namespace are monotonic and boottime")
        entry = _obj(item, where)
        secs = _int(entry.get("secs", 0), f"{where}.secs", -(2**63), 2**63 - 1)
        nsecs = _int(entry.get("nanosecs", 0), f"{where}.nanosecs", 0, 999_999_999)
        if nsecs:
            raise SpecError(f"{where}.nanosecs", "pynsbind sets whole seconds only")
        out[clock] = secs
    return out


def _personality(linux: Mapping[str, Any]) -> int | None:
    if linux.get("personality") is None:
        return None
    section = _obj(linux["personality"], "linux.personality")
    if "domain" not in section:
        raise SpecError("linux.personality.domain", "is required")
    domain = _str(section["domain"], "linux.personality.domain")
    if domain not in ("LINUX", "LINUX32"):
        raise SpecError("linux.personality.domain", f"'LINUX' or 'LINUX32', not {domain!r}")
    if section.get("flags"):
        flags = _str_list(section["flags"], "linux.personality.flags")
        raise SpecError(
            "linux.personality.flags", f"{flags}: the runtime-spec defines no personality flag"
        )
    return int(Personality.LINUX32 if domain == "LINUX32" else Personality.LINUX)


def _resolve_seccomp_rules(data: Mapping[str, Any], warn: Warn) -> dict[str, Any]:
    """The rules of an OCI seccomp object as libseccomp (and so runc) applies
    them: for a call with a rule without conditions, that rule wins over the
    rules of other effects with conditions, and the first such rule over later
    ones (pynsbind's profiles refuse the overlap; podman's profile has it)."""
    syscalls = data.get("syscalls")
    if not isinstance(syscalls, (list, tuple)):
        return dict(data)

    def effect(rule: Mapping[str, Any]) -> tuple[object, object]:
        errno = rule.get("errnoRet")
        action = rule.get("action")
        if action in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE") and errno is None:
            errno = 1  # EPERM, the default
        return action, errno

    default = effect({"action": data.get("defaultAction"), "errnoRet": data.get("defaultErrnoRet")})
    plain: dict[str, tuple[int, tuple[object, object]]] = {}
    for i, rule in enumerate(syscalls):
        if not isinstance(rule, Mapping) or not isinstance(rule.get("names"), (list, tuple)):
            continue
        if effect(rule) != default and not rule.get("args"):
            for name in rule["names"]:
                plain.setdefault(name, (i, effect(rule)))
    out = []
    for i, rule in enumerate(syscalls):
        if not isinstance(rule, Mapping) or not isinstance(rule.get("names"), (list, tuple)):
            out.append(rule)
            continue
        mine = effect(rule)
        kept = []
        for name in rule["names"]:
            winner = plain.get(name)
            if mine != default and winner is not None and winner[0] != i and winner[1] != mine:
                warn(
                    f"linux.seccomp.syscalls[{i}]: {name!r} is left to syscalls[{winner[0]}], "
                    "which has no conditions (libseccomp, and so runc, ignore this rule)"
                )
                continue
            kept.append(name)
        if kept:
            out.append({**rule, "names": kept})
    return {**data, "syscalls": out}


def _seccomp(linux: Mapping[str, Any], warn: Warn) -> Any:
    from pynsbind.seccomp import SeccompProfile

    if linux.get("seccomp") is None:
        return "unconfined"
    data = dict(_obj(linux["seccomp"], "linux.seccomp"))
    flags = data.get("flags")
    if isinstance(flags, (list, tuple)) and "SECCOMP_FILTER_FLAG_TSYNC" in flags:
        # the filter is loaded by a single-threaded process: TSYNC changes nothing
        data["flags"] = [f for f in flags if f != "SECCOMP_FILTER_FLAG_TSYNC"]
    profile = SeccompProfile.from_oci(_resolve_seccomp_rules(data, warn), "linux.seccomp")
    if profile.notifies and not data.get("listenerPath"):
        raise SpecError(
            "linux.seccomp.listenerPath",
            "SCMP_ACT_NOTIFY needs an agent to answer: give its socket in listenerPath",
        )
    return profile


def seccomp_listener(config: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(listenerPath, listenerMetadata)`` of a config whose profile notifies
    (the lifecycle sends the listener there, with the container's state), or
    None."""
    linux = _opt_obj(config, "linux", "linux")
    section = _opt_obj(linux, "seccomp", "linux.seccomp")
    if not section.get("listenerPath"):
        return None
    where = _absolute(section["listenerPath"], "linux.seccomp.listenerPath")
    meta = section.get("listenerMetadata")
    return where, "" if meta is None else _str(meta, "linux.seccomp.listenerMetadata")


def cgroup_path(
    config: Mapping[str, Any],
    *,
    container_id: str | None = None,
    parent: str = DEFAULT_CGROUP_PARENT,
) -> str | None:
    """Where the container's cgroup is, relative to the root of each hierarchy:
    an absolute ``linux.cgroupsPath`` as it is; a relative one under
    ``parent``; none given: ``parent/container_id`` (None without an id: a
    cgroup pynsbind names itself)."""
    from pynsbind.resources import normalize_cgroup_path

    linux = _opt_obj(config, "linux", "linux")
    value = linux.get("cgroupsPath")
    if value is None or value == "":
        if container_id is None:
            return None
        text = f"{parent}/{container_id}"
        where = "container id"
    else:
        text = _str(value, "linux.cgroupsPath")
        where = "linux.cgroupsPath"
        if ":" in text and "/" not in text:
            raise SpecError(
                where,
                f"{text!r} is a systemd unit (slice:prefix:name): pynsbind manages cgroupfs "
                "paths only",
            )
        if not text.startswith("/"):
            text = f"{parent}/{text}"
    try:
        return normalize_cgroup_path(text)
    except ValueError as exc:
        raise SpecError(where, str(exc)) from None


def _resources(linux: Mapping[str, Any], config_has_cgroup: bool) -> Any:
    from pynsbind.devices import DEFAULT_DEVICE_RULES, normalize_rules
    from pynsbind.resources import Resources

    section = dict(_opt_obj(linux, "resources", "linux.resources"))
    known = {"memory", "cpu", "pids", "blockIO", "hugepageLimits", "unified", "network", "rdma"}
    given = section.get("devices")
    rules = []
    if given is not None:
        entries = []
        for i, item in enumerate(_list(given, "linux.resources.devices")):
            entry = _obj(item, f"linux.resources.devices[{i}]")
            entries.append({k: v for k, v in entry.items() if k in _RULE_KEYS})
        rules = list(normalize_rules(entries, "linux.resources.devices"))
    if not section and not config_has_cgroup and os.geteuid() != 0:
        return None  # rootless, no limits: no cgroup (pynsbind's default)
    # deny everything first (runc's emulator starts there), the config's rules,
    # then the nodes every container has (runc appends the same)
    devices = [DEFAULT_DEVICE_RULES[0], *rules, *DEFAULT_DEVICE_RULES[1:]]
    try:
        res = Resources.from_oci({k: v for k, v in section.items() if k in known})
    except SpecError as exc:
        name = exc.field.replace("resources.oci", "linux.resources", 1)
        raise SpecError(name, str(exc)[len(exc.field) + 2 :]) from None
    from pynsbind._record import replace

    return replace(res, devices=devices)


_RULE_KEYS = frozenset(("allow", "type", "major", "minor", "access"))


def _refuse_linux(linux: Mapping[str, Any]) -> None:
    if linux.get("mountLabel") is not None:
        _refuse_lsm(linux["mountLabel"], "linux.mountLabel", "SELinux")
    for key in ("intelRdt", "memoryPolicy", "netDevices"):
        if linux.get(key):
            raise SpecError(f"linux.{key}", "is not supported by pynsbind")


def _rootfs_propagation(linux: Mapping[str, Any]) -> str | None:
    from pynsbind.spec import ROOTFS_PROPAGATIONS

    value = linux.get("rootfsPropagation")
    if value is None or value == "":
        return None
    text = _str(value, "linux.rootfsPropagation")
    if text not in ROOTFS_PROPAGATIONS:
        raise SpecError(
            "linux.rootfsPropagation", f"one of {', '.join(ROOTFS_PROPAGATIONS)}, not {text!r}"
        )
    return text


def _paths(linux: Mapping[str, Any], key: str) -> list[str]:
    return [
        _absolute(p, f"linux.{key}[{i}]")
        for i, p in enumerate(_list(linux.get(key) or [], f"linux.{key}"))
    ]


# ---- the spec -------------------------------------------------------------------------


def _make_spec(found: dict[str, Any]) -> Spec:
    """Spec(**found), a SpecError naming the JSON path of the field."""
    try:
        return Spec(**found)
    except SpecError as exc:
        raise config_error(exc) from None


def config_error(exc: SpecError) -> SpecError:
    """A SpecError of a Spec made from a config (made, or found when it was
    spawned) as the config's error: its field named by the JSON path
    (``rootfs`` -> ``root.path``); ``exc`` itself when no path is known."""
    head = exc.field.split("[", 1)[0].split(" ", 1)[0].split(".", 1)[0]
    path = SPEC_FIELD_PATHS.get(head)
    if path is None:
        return exc
    # the Spec's own words, with its field where it says more than the path
    detail = str(exc)[len(exc.field) + 2 :] if exc.field == head else str(exc)
    return SpecError(path, detail)


def spec_from_config(
    config: Mapping[str, Any],
    bundle: str | os.PathLike[str],
    *,
    container_id: str | None = None,
    cgroup_parent: str = DEFAULT_CGROUP_PARENT,
    warn: Warn | None = None,
) -> Spec:
    """The Spec of an OCI ``config.json`` (parsed), for the bundle at
    ``bundle`` (relative paths of the config are relative to it).

    ``container_id`` names the cgroup when the config gives none
    (``cgroup_parent/ID``); ``warn`` receives what is left out as runc leaves
    it out (default: an :class:`OCIWarning`).  The hooks are not part of the
    spec: :func:`hooks_from_config` gives them to the lifecycle.  SpecError
    names the JSON path of what is wrong.  docs/oci.md has the whole mapping."""
    say = warn or _default_warn
    config = _obj(config, "config.json")
    check_version(config)
    base = os.path.abspath(os.fspath(bundle))
    if config.get("process") is None:
        raise SpecError("process", "is required (pynsbind runs it when the container starts)")
    found = _process_fields(_obj(config["process"], "process"), "process", say)
    root = _opt_obj(config, "root", "root")
    if "path" not in root:
        raise SpecError("root.path", "is required")
    found["rootfs"] = _host_path(root["path"], "root.path", base)
    readonly = root.get("readonly")
    found["readonly_rootfs"] = False if readonly is None else _bool(readonly, "root.readonly")
    for key in ("hostname", "domainname"):
        if config.get(key):
            found[key] = _str(config[key], key)
    linux = _opt_obj(config, "linux", "linux")
    _refuse_linux(linux)
    create, join, index = _namespaces(linux)
    found["namespaces"] = create
    found["join"] = join
    found.update(_user_maps(linux, create, join, index, say))
    mounts = _mounts(config, base, say)
    found["mounts"] = mounts
    _home(found, mounts)
    found["devices"] = _devices(linux, mounts)
    found["masked_paths"] = _paths(linux, "maskedPaths")
    found["readonly_paths"] = _paths(linux, "readonlyPaths")
    found["sysctl"] = _sysctl(linux)
    found["time_offsets"] = _time_offsets(linux)
    found["personality"] = _personality(linux)
    found["rootfs_propagation"] = _rootfs_propagation(linux)
    found["seccomp"] = _seccomp(linux, say)
    found["cgroup"] = cgroup_path(config, container_id=container_id, parent=cgroup_parent)
    found["resources"] = _resources(linux, found["cgroup"] is not None)
    return _make_spec(found)


def process_spec(
    process: Mapping[str, Any],
    config: Mapping[str, Any],
    *,
    pid: int,
    pidfd: int | None = None,
    container_id: str | None = None,
    cgroup_parent: str = DEFAULT_CGROUP_PARENT,
    warn: Warn | None = None,
) -> Spec:
    """The Spec of a ``process.json`` (``exec --process``) joined into the
    running container made from ``config``, whose first process is ``pid``.

    Every namespace the config lists (made or joined) is joined: all at once
    through ``pidfd`` when given (no pid-reuse race), else each through
    /proc/PID/ns; the container's root comes with its mount namespace.  The
    process joins the container's cgroup (as :func:`cgroup_path` finds it:
    give the same ``container_id`` and ``cgroup_parent`` as at create) and
    gets the container's seccomp profile and personality; the rest is the
    process's own (args, env, cwd, user, capabilities, rlimits,
    noNewPrivileges, oomScoreAdj, terminal)."""
    say = warn or _default_warn
    process = _obj(process, "process")
    config = _obj(config, "config.json")
    found = _process_fields(process, "process", say)
    linux = _opt_obj(config, "linux", "linux")
    create, joined, _ = _namespaces(linux)
    kinds = create
    for kind in joined:
        kinds |= kind
    _int(pid, "pid", 1, 2**31 - 1)
    found["namespaces"] = Namespace(0)
    if not kinds:
        found["join"] = {}
    elif pidfd is not None:
        found["join"] = {kinds: _int(pidfd, "pidfd", 0, 2**31 - 1)}
    else:
        found["join"] = {
            kind: f"/proc/{pid}/ns/{kind.proc_name}" for kind in Namespace if kind & kinds
        }
    found["seccomp"] = _seccomp(linux, say)
    found["personality"] = _personality(linux)
    found["cgroup"] = cgroup_path(config, container_id=container_id, parent=cgroup_parent)
    if not found["env"].get("HOME"):
        found["env"].pop("HOME", None)
        try:
            root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            found["env"]["HOME"] = "/"
        else:
            try:
                found["env"]["HOME"] = _home_of(root, "etc/passwd", found["user"][0])
            finally:
                os.close(root)
    return _make_spec(found)


# ---- documents ------------------------------------------------------------------------

_STATUSES = ("creating", "created", "running", "stopped", "paused")


def state_document(
    container_id: str,
    status: str,
    *,
    bundle: str | os.PathLike[str],
    pid: int | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The runtime-spec state of a container (``state ID``, and what hooks
    read on their stdin): ``pid`` is given while it is created or running."""
    _str(container_id, "id", empty=False)
    if status not in _STATUSES:
        raise SpecError("status", f"one of {', '.join(_STATUSES)}, not {status!r}")
    out: dict[str, Any] = {"ociVersion": OCI_VERSION, "id": container_id, "status": status}
    if pid is not None:
        out["pid"] = _int(pid, "pid", 0, 2**31 - 1)
    elif status in ("created", "running"):
        raise SpecError("pid", f"a {status} container has a pid")
    out["bundle"] = os.path.abspath(os.fspath(bundle))
    out["annotations"] = dict(annotations or {})
    return out


def features_document() -> dict[str, Any]:
    """The runtime-spec features of pynsbind-run (``features``): what the
    config mapping accepts, whatever this host offers."""
    from pynsbind.seccomp import ARCHITECTURES, FLAGS, Action, libseccomp_version

    ops = ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT"]
    ops += ["SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"]
    annotations = {"org.pynsbind.version": __version__}
    try:
        annotations["io.github.seccomp.libseccomp.version"] = ".".join(
            str(n) for n in libseccomp_version()
        )
    except (ImportError, OSError):
        pass
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": list(HOOK_NAMES),
        "mountOptions": list(MOUNT_OPTIONS),
        "linux": {
            "namespaces": sorted(_NAMESPACES),
            "capabilities": sorted(f"CAP_{c.name}" for c in Capability),
            "cgroup": {
                "v1": True,
                "v2": True,
                "systemd": False,
                "systemdUser": False,
                "rdma": False,
            },
            "seccomp": {
                "enabled": True,
                "actions": sorted(a.value for a in Action),
                "operators": ops,
                "archs": sorted(ARCHITECTURES),
                "knownFlags": sorted({*FLAGS, "SECCOMP_FILTER_FLAG_TSYNC"}),
                "supportedFlags": sorted({*FLAGS, "SECCOMP_FILTER_FLAG_TSYNC"}),
            },
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": annotations,
    }


def default_config(rootless: bool = False) -> dict[str, Any]:
    """A config.json to start from (``spec``), as runc writes one: ``sh`` in
    ``rootfs`` (busybox will do), read-only, pid/network/ipc/uts/mount/cgroup
    namespaces, runc's default mounts, three capabilities, pynsbind's masked
    and read-only paths, every device denied but the defaults.  ``rootless``
    adds a user namespace mapping root to the caller and leaves out what a
    plain user cannot have (the cgroup limits and mount, devpts's gid=5)."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    terminal = "terminal" in {f.name for f in fields(Spec)}
    process: dict[str, Any] = {
        "terminal": terminal,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": [f"PATH={DEFAULT_PATH}", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    }
    devpts = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": devpts if rootless else [*devpts, "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
    ]
    if not rootless:
        mounts.append(
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
            }
        )
    namespaces = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")]
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "maskedPaths": list(DEFAULT_MASKED_PATHS),
        "readonlyPaths": list(DEFAULT_READONLY_PATHS),
    }
    if rootless:
        namespaces.append({"type": "user"})
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    else:
        linux["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    return {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "pynsbind",
        "mounts": mounts,
        "linux": linux,
    }
