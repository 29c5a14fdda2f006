"""The on-disk cache of compiled seccomp programs (below pynsbind.seccomp: a
plan whose program is cached never imports that module, nor builds the profile).

Compiling the default profile takes libseccomp about 30 ms, and a command-line
runtime compiles it once per run.  The programs are kept on disk, in a
directory of the caller's own: mode 0700, owned by it (checked through the open
directory, never followed through a symlink), each file owned by it and
writable by nobody else, written whole under a temporary name and renamed into
place.  A program is looked up by a key made of everything that makes it: the
profile (for the default one: pynsbind's version, the files its rules come
from, the capabilities and setid_files; for another, its OCI form), libseccomp's
version, the machine and the kernel.  The whole key is written in the file and
compared when it is read.  Any doubt (a file of another owner, or that others
may write, of the wrong size, another key inside) means compiling again; a
directory that cannot be made or is not the caller's alone means no cache.
``PYNSBIND_SECCOMP_CACHE=0`` turns it off.

An entry is ``(program, flags, notify, skipped)``: what
:class:`pynsbind.seccomp.CompiledFilter` holds.
"""

from __future__ import annotations

import os

from pynsbind._version import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterable

    Entry = tuple[bytes, int, bool, tuple[str, ...]]

__all__ = ["cache_dir", "get_default", "get_profile", "put_default", "put_profile", "reset"]

_MAGIC = b"pynsbind seccomp cache 2\n"
_MAX_PROGRAM = 4096 * 8  # BPF_MAXINSNS instructions
_dir_fd: list[int] = []  # [fd], [-1] (none), or [] (not opened yet)
_HERE = os.path.dirname(os.path.abspath(__file__))
#: the modules whose code makes the default profile
_SOURCES = ("seccomp.py", "_seccomp_default.py", "flags.py")


def cache_dir() -> str | None:
    """Where compiled programs are kept: ``$XDG_CACHE_HOME/pynsbind/seccomp``, or
    ``~/.cache/pynsbind/seccomp`` where ``~`` is $HOME when it is the caller's
    own (owned by its effective uid: under sudo, root's programs never go to
    the user's directory), else the home of its passwd entry; None when the
    cache is off (``PYNSBIND_SECCOMP_CACHE=0``)."""
    if os.environ.get("PYNSBIND_SECCOMP_CACHE", "1") == "0":
        return None
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not base.startswith("/"):
        home = os.environ.get("HOME", "")
        try:
            mine = home.startswith("/") and os.stat(home).st_uid == os.geteuid()
        except OSError:
            mine = False
        if not mine:
            import pwd

            try:
                home = pwd.getpwuid(os.geteuid()).pw_dir
            except KeyError:
                return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "pynsbind", "seccomp")


def reset() -> None:
    """Forget the directory opened and what was read (the next lookup opens it
    again, as the environment then says, and reads the disk)."""
    for fd in _dir_fd:
        if fd >= 0:
            os.close(fd)
    _dir_fd.clear()
    _memo.clear()


def _open_dir() -> int:
    """The cache directory, open, made if missing; -1 when there is none or it
    is not the caller's alone."""
    if _dir_fd:
        return _dir_fd[0]
    import stat

    fd = -1
    path = cache_dir()
    if path is not None:
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            try:
                fd = os.open(path, flags)
            except FileNotFoundError:
                os.makedirs(path, mode=0o700, exist_ok=True)
                fd = os.open(path, flags)
            st = os.fstat(fd)
            if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077:
                os.close(fd)  # not ours alone: no cache
                fd = -1
        except OSError:
            if fd >= 0:
                os.close(fd)
            fd = -1
    _dir_fd.append(fd)
    return fd


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


def _name(key: str) -> str:
    """A file name for a key (the key itself is kept in the file)."""
    import zlib

    data = key.encode()
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}-{len(data):x}"


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


def _get(key: str | None) -> Entry | None:
    if key is None:
        return None
    found = _memo.get(key)
    if found is None:
        found = _read(key)
        if found is not None:
            _memo[key] = found
    return found


def _read(key: str) -> Entry | None:
    import stat

    dfd = _open_dir()
    if dfd < 0:
        return None
    try:
        fd = os.open(_name(key), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (
            not stat.S_ISREG(st.st_mode)
            or st.st_uid != os.geteuid()
            or stat.S_IMODE(st.st_mode) & 0o022
            or st.st_size > 1 << 20
        ):
            return None
        data = b""
        while len(data) < st.st_size:
            chunk = os.read(fd, st.st_size - len(data))
            if not chunk:
                break
            data += chunk
    except OSError:
        return None
    finally:
        os.close(fd)
    return _decode(key, data)


def _put(key: str | None, entry: Entry) -> None:
    if key is None:
        return
    _memo[key] = entry
    dfd = _open_dir()
    if dfd < 0:
        return
    name = _name(key)
    tmp = f".{name}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        try:
            view = memoryview(_encode(key, entry))
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except OSError:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass


def _encode(key: str, entry: Entry) -> bytes:
    program, flags, notify, skipped = entry
    k = key.encode()
    names = "\0".join(skipped).encode()
    return b"".join(
        (
            _MAGIC,
            len(k).to_bytes(4, "little"),
            k,
            flags.to_bytes(8, "little"),
            bytes([int(notify)]),
            len(names).to_bytes(4, "little"),
            names,
            len(program).to_bytes(4, "little"),
            program,
        )
    )


def _decode(key: str, data: bytes) -> Entry | None:
    k = key.encode()
    head = _MAGIC + len(k).to_bytes(4, "little") + k
    if not data.startswith(head):
        return None  # another key (or format) in this file
    at = len(head)
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
