"""pynsbind's on-disk caches: what a command-line runtime, started once per
operation, would otherwise compute again each time (compiled seccomp programs:
pynsbind._seccomp_cache; compiled plans: pynsbind._replay).

Each cache is a directory of the caller's own, ``$XDG_CACHE_HOME/pynsbind/NAME``
or ``~/.cache/pynsbind/NAME``: mode 0700, owned by the caller, reached from /
one directory at a time, never through a symlink, each directory on the way
the caller's or root's and writable by nobody else (or sticky, as /tmp is);
each file owned by the caller and writable by nobody else, written whole
under a temporary name and renamed into place.  A file holds its whole key,
compared when it is read: any doubt
(a file of another owner, or that others may write, too large, another key
inside) reads as a miss; a directory that cannot be made or is not the
caller's alone means no cache.  ``PYNSBIND_<NAME>_CACHE=0`` turns one off.
"""

from __future__ import annotations

import os

__all__ = ["cache_dir", "entries", "file_name", "read", "reset", "write"]

_MAX_FILE = 1 << 20
#: the open directory of each cache: an fd, or -1 (none)
_dir_fds: dict[str, int] = {}


def cache_dir(name: str) -> str | None:
    """The directory of cache ``name``: under ``$XDG_CACHE_HOME/pynsbind``, or
    ``~/.cache/pynsbind`` where ``~`` is $HOME when it is the caller's own
    (owned by its effective uid: under sudo, root's files never go to the
    user's directory), else the home of its passwd entry; None when the cache
    is off (``PYNSBIND_<NAME>_CACHE=0``)."""
    if os.environ.get(f"PYNSBIND_{name.upper()}_CACHE", "1") == "0":
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
    return os.path.join(base, "pynsbind", name)


def reset() -> None:
    """Forget the directories opened (the next lookup opens them again, as the
    environment then says)."""
    for fd in _dir_fds.values():
        if fd >= 0:
            os.close(fd)
    _dir_fds.clear()


def _open_dir(name: str) -> int:
    """The cache directory, open, made if missing; -1 when there is none or it
    is not the caller's alone."""
    fd = _dir_fds.get(name)
    if fd is not None:
        return fd
    path = cache_dir(name)
    fd = -1 if path is None else _open_safe(path)
    _dir_fds[name] = fd
    return fd


def _open_safe(path: str) -> int:
    """``path`` opened one component at a time from /, never through a
    symlink, each directory on the way the caller's or root's and writable by
    nobody else (or sticky, as /tmp is), the last one the caller's alone (mode
    0700 at most): so that nobody else can choose what the caller reads, not
    even through an XDG_CACHE_HOME or a HOME that sudo kept.  Missing
    directories are made (mode 0700).  -1 when it cannot be trusted."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    euid = os.geteuid()
    parts = [p for p in path.split("/") if p]
    fd = os.open("/", flags)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                nxt = os.open(part, flags, dir_fd=fd)
            except FileNotFoundError:
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
                nxt = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = nxt
            st = os.fstat(fd)
            if last:
                ok = st.st_uid == euid and not st.st_mode & 0o077
            else:
                ok = st.st_uid in (euid, 0) and (
                    not st.st_mode & 0o022 or bool(st.st_mode & 0o1000)  # sticky
                )
            if not ok or part in (".", ".."):
                os.close(fd)
                return -1
        return fd
    except OSError:
        os.close(fd)
        return -1


def file_name(key: bytes) -> str:
    """A file name for a key (the key itself is kept in the file): its 64-bit
    FNV-1a hash (zlib's crc32 would cost more to import than this to compute)."""
    h = 0xCBF29CE484222325
    for byte in key:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}-{len(key):x}"


def _header(name: str, key: bytes) -> bytes:
    return b"".join((b"pynsbind ", name.encode(), b" cache\n", len(key).to_bytes(4, "little"), key))


def _read_file(dfd: int, file: str) -> bytes | None:
    """A file of the cache directory, if it can be trusted: a regular file of
    the caller's that nobody else may write, not too large."""
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (
            (st.st_mode & 0o170000) != 0o100000  # not a regular file
            or st.st_uid != os.geteuid()
            or st.st_mode & 0o022
            or st.st_size > _MAX_FILE
        ):
            return None
        data = b""
        while len(data) < st.st_size:
            chunk = os.read(fd, st.st_size - len(data))
            if not chunk:
                break
            data += chunk
        return data
    except OSError:
        return None
    finally:
        os.close(fd)


def read(name: str, key: bytes) -> bytes | None:
    """What cache ``name`` keeps under ``key``; None when it keeps nothing (or
    nothing it can trust)."""
    dfd = _open_dir(name)
    data = None if dfd < 0 else _read_file(dfd, file_name(key))
    head = _header(name, key)
    if data is None or not data.startswith(head):
        return None  # another key (or format) in this file
    return data[len(head) :]


def entries(name: str) -> list[tuple[bytes, bytes]]:
    """Every (key, value) that cache ``name`` keeps and can be trusted."""
    dfd = _open_dir(name)
    found = []
    prefix = _header(name, b"")[:-4]
    for file in [] if dfd < 0 else sorted(os.listdir(dfd)):
        data = _read_file(dfd, file)
        if data is None or not data.startswith(prefix):
            continue
        at = len(prefix) + 4
        key = data[at : at + int.from_bytes(data[len(prefix) : at], "little")]
        if file == file_name(key):
            found.append((key, data[at + len(key) :]))
    return found


def write(name: str, key: bytes, value: bytes, *, max_files: int = 0) -> None:
    """Keep ``value`` under ``key`` (nothing happens when there is no cache, or
    the write fails).  ``max_files``: when the directory holds more, it is
    emptied first (the entries of a key are rebuilt on their next miss)."""
    dfd = _open_dir(name)
    if dfd < 0:
        return
    if max_files:
        try:
            names = os.listdir(dfd)
            if len(names) >= max_files:
                for old in names:
                    os.unlink(old, dir_fd=dfd)
        except OSError:
            pass
    target = file_name(key)
    tmp = f".{target}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        try:
            view = memoryview(_header(name, key) + value)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.rename(tmp, target, src_dir_fd=dfd, dst_dir_fd=dfd)
    except OSError:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
