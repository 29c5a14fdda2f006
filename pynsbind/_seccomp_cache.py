"""The on-disk cache of compiled seccomp programs (below pynsbind.seccomp: a
plan whose program is cached never imports that module, nor builds the profile).

Compiling the default profile takes libseccomp about 30 ms, and a command-line
runtime compiles it once per run.  The programs are kept in pynsbind._diskcache's
``seccomp`` cache (a directory of the caller's alone; see there), looked up by a
key made of everything that makes them: the profile (for the default one:
pynsbind's version, the files its rules come from, the capabilities and
setid_files; for another, its OCI form), libseccomp's version, the machine and
the kernel.  Any doubt (a file of another owner, or that others may write, of
the wrong size, another key inside) means compiling again.
``PYNSBIND_SECCOMP_CACHE=0`` turns it off.

An entry is ``(program, flags, notify, skipped)``: what
:class:`pynsbind.seccomp.CompiledFilter` holds.
"""

from __future__ import annotations

import os

from pynsbind import _diskcache
from pynsbind._version import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterable

    Entry = tuple[bytes, int, bool, tuple[str, ...]]

__all__ = ["cache_dir", "get_default", "get_profile", "put_default", "put_profile", "reset"]

_FORMAT = b"2\n"
_MAX_PROGRAM = 4096 * 8  # BPF_MAXINSNS instructions
_HERE = os.path.dirname(os.path.abspath(__file__))
#: the modules whose code makes the default profile
_SOURCES = ("seccomp.py", "_seccomp_default.py", "flags.py")


def _environment() -> tuple[str, ...] | None:
    """What besides the profile makes the program: libseccomp's version (from
    the library pynsbind's extension loads), the machine, the kernel, pynsbind's
    version; None when libseccomp cannot be loaded."""
    try:
        __import__("pynsbind._seccomp")  # (a compiled module: see pynsbind._ffi)
    except ImportError:
        return None
    import sys

    v = sys.modules["pynsbind._seccomp"].lib.seccomp_version()
    uname = os.uname()
    return (f"{v.major}.{v.minor}.{v.micro}", uname.machine, uname.release, __version__)


def default_key(caps: Iterable[int], setid_files: bool) -> str | None:
    """The default profile's key, without building the profile: the files its
    rules come from stand for them (their size, time and inode)."""
    env = _environment()
    if env is None:
        return None
    sources = []
    for name in _SOURCES:
        try:
            st = os.stat(os.path.join(_HERE, name))
        except OSError:
            return None  # a build without its sources: no cache
        sources.append(f"{name}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}")
    mask = 0
    for cap in caps:
        mask |= 1 << int(cap)
    return "\n".join(("default", f"{mask:x}", str(int(setid_files)), *env, *sources))


def profile_key(oci_text: str) -> str | None:
    env = _environment()
    return None if env is None else "\n".join(("profile", *env, oci_text))


#: what this process read or wrote, by key
_memo: dict[str, Entry] = {}


def cache_dir() -> str | None:
    """Where compiled programs are kept (pynsbind._diskcache): None when off."""
    return _diskcache.cache_dir("seccomp")


def reset() -> None:
    """Forget what was read and the directory opened (the next lookup opens
    it again, as the environment then says, and reads the disk)."""
    _diskcache.reset()
    _memo.clear()


def _get(key: str | None) -> Entry | None:
    if key is None:
        return None
    found = _memo.get(key)
    if found is None:
        data = _diskcache.read("seccomp", key.encode())
        found = None if data is None else _decode(data)
        if found is not None:
            _memo[key] = found
    return found


def _put(key: str | None, entry: Entry) -> None:
    if key is None:
        return
    _memo[key] = entry
    _diskcache.write("seccomp", key.encode(), _encode(entry))


def _encode(entry: Entry) -> bytes:
    program, flags, notify, skipped = entry
    names = "\0".join(skipped).encode()
    return b"".join(
        (
            _FORMAT,
            flags.to_bytes(8, "little"),
            bytes([int(notify)]),
            len(names).to_bytes(4, "little"),
            names,
            len(program).to_bytes(4, "little"),
            program,
        )
    )


def _decode(data: bytes) -> Entry | None:
    if not data.startswith(_FORMAT):
        return None  # another format in this file
    at = len(_FORMAT)
    if len(data) < at + 17:
        return None
    flags = int.from_bytes(data[at : at + 8], "little")
    notify = data[at + 8]
    n = int.from_bytes(data[at + 9 : at + 13], "little")
    names = data[at + 13 : at + 13 + n]
    at += 13 + n
    size = int.from_bytes(data[at : at + 4], "little")
    program = data[at + 4 :]
    if len(names) != n or notify > 1 or size != len(program):
        return None
    if not program or size % 8 or size > _MAX_PROGRAM:
        return None
    skipped = tuple(names.decode().split("\0")) if names else ()
    return (program, flags, bool(notify), skipped)


def get_default(caps: Iterable[int], setid_files: bool) -> Entry | None:
    """The default profile's program for these capabilities, if kept."""
    return _get(default_key(caps, setid_files))


def put_default(caps: Iterable[int], setid_files: bool, entry: Entry) -> None:
    _put(default_key(caps, setid_files), entry)


def get_profile(oci_text: str) -> Entry | None:
    """A profile's program, by its OCI form (JSON, keys sorted), if kept."""
    return _get(profile_key(oci_text))


def put_profile(oci_text: str, entry: Entry) -> None:
    _put(profile_key(oci_text), entry)
