"""Hypothesis strategies for specs: valid ones (to check isolation properties on
the real kernel) and hostile ones (to check that anything wrong is refused
cleanly)."""

from __future__ import annotations

import os
import string
from typing import Any

from hypothesis import strategies as st

from pynsbind import Capability, IdMap, Mount, Namespace
from pynsbind.spec import DEFAULT_PATH, CapabilitySets

# ---- pieces of valid specs ----------------------------------------------------------

label = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?\Z")
hostnames = st.lists(label, min_size=1, max_size=3).map(".".join).filter(lambda h: len(h) <= 64)
domainnames = st.one_of(st.none(), hostnames)

OPTIONAL_NS = [
    Namespace.PID,
    Namespace.UTS,
    Namespace.IPC,
    Namespace.NET,
    Namespace.CGROUP,
    Namespace.TIME,
]


@st.composite
def namespace_sets(draw: st.DrawFn, *, user: bool = True, mnt: bool | None = None) -> Namespace:
    """A set of namespace kinds to create; MNT when ``mnt`` (random when None)."""
    ns = Namespace(0)
    for kind in OPTIONAL_NS:
        if draw(st.booleans()):
            ns |= kind
    if mnt or (mnt is None and draw(st.booleans())):
        ns |= Namespace.MNT
    if user and draw(st.booleans()):
        ns |= Namespace.USER
    return ns


env_names = st.from_regex(r"\A[A-Z_][A-Z0-9_]{0,11}\Z").filter(lambda n: n != "PATH")
env_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\0"),
    max_size=30,
)
environments = st.dictionaries(env_names, env_values, max_size=5).map(
    lambda d: {"PATH": DEFAULT_PATH, **d}
)


@st.composite
def id_maps(draw: st.DrawFn) -> tuple[list[IdMap], list[IdMap]]:
    """uid and gid maps of one to three non-overlapping lines, inside 0..70000,
    outside in 100000..."""

    def one() -> list[IdMap]:
        n = draw(st.integers(1, 3))
        cuts = sorted(
            draw(st.lists(st.integers(1, 70000), min_size=2 * n, max_size=2 * n, unique=True))
        )
        out_base = draw(st.integers(100000, 200000))
        maps = []
        for i in range(n):
            inside, end = cuts[2 * i] - 1, cuts[2 * i + 1]
            maps.append(IdMap(inside, out_base + inside, end - inside))
        return maps

    return one(), one()


capability_sets = st.frozensets(st.sampled_from(sorted(Capability)), max_size=6)
CHECKED_CAPS = [
    "SYS_ADMIN",
    "CHOWN",
    "NET_RAW",
    "MKNOD",
    "SYS_CHROOT",
    "SETUID",
    "SETGID",
    "DAC_OVERRIDE",
]
checked_cap_sets = st.frozensets(st.sampled_from(CHECKED_CAPS)).map(
    lambda names: frozenset(Capability[n] for n in names)
)

rlimit_sets = st.fixed_dictionaries(
    {},
    optional={
        "NOFILE": st.tuples(st.integers(16, 512), st.integers(512, 1024)),
        "CORE": st.integers(0, 2**20).map(lambda v: (v, v)),
        "FSIZE": st.tuples(st.integers(2**20, 2**24), st.just(2**24)),
    },
)

mount_names = st.from_regex(r"\A[a-z]{1,8}\Z")


@st.composite
def mount_lists(draw: st.DrawFn, scratch: str) -> list[tuple[Mount, str]]:
    """Extra mounts under /mnt, each with the kind of check it allows: ``ro``
    (writes fail with EROFS), ``rw`` (writes work)."""
    names = draw(st.lists(mount_names, max_size=4, unique=True))
    out = []
    for name in names:
        kind = draw(st.sampled_from(["bind", "tmpfs"]))
        ro = draw(st.booleans())
        if kind == "bind":
            src = os.path.join(scratch, name)
            os.makedirs(src, exist_ok=True)
            os.chmod(src, 0o777)
            m = Mount.bind(src, f"/mnt/{name}", readonly=ro)
        else:
            m = Mount.tmpfs(
                f"/mnt/{name}",
                size=draw(st.sampled_from(["1m", "4m", 65536])),
                readonly=ro,
                mode=0o777,
            )
        out.append((m, "ro" if ro else "rw"))
    return out


# ---- hostile input -----------------------------------------------------------------

weird_text = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=10),
    st.sampled_from(
        [
            "",
            "..",
            "../..",
            "/..",
            "a/../../b",
            "\0",
            "a\0b",
            "/proc/self/root",
            " ",
            "\udcff",
            "\U0001d518\U0001d52b\U0001d526",
        ]
    ),
    st.binary(max_size=12),
)
weird_numbers = st.one_of(
    st.integers(),
    st.sampled_from([-1, 0, 2**31, 2**32, 2**63, 2**64, -(2**63), 10**30]),
    st.floats(allow_nan=True),
    st.booleans(),
)
weird_values = st.one_of(
    weird_text,
    weird_numbers,
    st.none(),
    st.lists(st.one_of(weird_text, weird_numbers), max_size=3),
    st.dictionaries(
        st.one_of(weird_text, st.integers()), st.one_of(weird_text, weird_numbers), max_size=3
    ),
    st.just(object()),
)

FIELDS = [
    "args",
    "env",
    "cwd",
    "rootfs",
    "hostname",
    "domainname",
    "namespaces",
    "join",
    "uid_map",
    "gid_map",
    "user",
    "groups",
    "umask",
    "mounts",
    "readonly_rootfs",
    "masked_paths",
    "readonly_paths",
    "devices",
    "rlimits",
    "capabilities",
    "no_new_privs",
    "oom_score_adj",
    "pass_fds",
    "die_with_parent",
    "init",
    "seccomp",
    "time_offsets",
    "sysctl",
    "capability_sets",
    "personality",
    "rootfs_propagation",
]
PLAUSIBLE: dict[str, Any] = {
    "cwd": st.sampled_from(["/nope", "/proc/1", "/etc/passwd", "/../..", "/tmp/" + "x" * 300]),
    "hostname": st.text(alphabet=string.ascii_letters + "-._ ", max_size=70),
    "namespaces": st.integers(0, 2**32).map(lambda v: Namespace(v & Namespace.all())),
    "join": st.dictionaries(
        st.sampled_from(list(Namespace)),
        st.one_of(
            st.integers(-2, 400), st.sampled_from(["/proc/1/ns/net", "/nope", "/proc/self/ns/pid"])
        ),
        max_size=2,
    ),
    "uid_map": st.lists(
        st.tuples(st.integers(-1, 2**32), st.integers(-1, 2**32), st.integers(-1, 2**33)),
        max_size=3,
    ),
    "user": st.one_of(
        st.integers(-1, 2**33), st.tuples(st.integers(-5, 70000), st.integers(-5, 70000))
    ),
    "groups": st.lists(st.integers(-5, 2**32), max_size=3),
    "umask": st.integers(-1, 0o10000),
    "mounts": st.lists(
        st.one_of(
            st.builds(
                Mount.tmpfs,
                st.sampled_from(["/tmp", "/proc", "/", "/dev/null", "/etc/passwd/x", "/a b"]),
                size=st.sampled_from(["1m", "0", "12Q", "-1"]),
            ),
            st.builds(
                Mount.bind,
                st.sampled_from(["/nope", "/etc/hostname", "/proc/self/fd/0", "/dev/null"]),
                st.sampled_from(["/x", "/etc", "/bin/sh"]),
            ),
        ),
        max_size=3,
    ),
    "rlimits": st.dictionaries(
        st.sampled_from(["NOFILE", "NPROC", "CORE", "STACK", "AS", "nofile", "nope"]),
        st.one_of(
            st.integers(-2, 2**65), st.tuples(st.integers(-2, 2**40), st.integers(-2, 2**40))
        ),
        max_size=3,
    ),
    "oom_score_adj": st.integers(-2000, 2000),
    "pass_fds": st.lists(st.integers(-1, 70000), max_size=3),
    "time_offsets": st.dictionaries(
        st.sampled_from(["monotonic", "boottime", "realtime"]),
        st.integers(-(2**45), 2**45),
        max_size=2,
    ),
    "seccomp": st.binary(max_size=40),
    "sysctl": st.dictionaries(
        st.sampled_from(
            [
                "net.ipv4.ip_forward",
                "net/ipv4/ping_group_range",
                "kernel.shmmax",
                "kernel.sem",
                "fs.mqueue.msg_max",
                "kernel.domainname",
                "kernel.hostname",
                "user.max_user_namespaces",
                "vm.swappiness",
                "kernel.panic",
                "net..x",
                "net.ipv4.conf.lo.forwarding",
            ]
        ),
        st.one_of(st.sampled_from(["1", "0 0", "-1", "x" * 5000, "", "2\n"]), weird_text),
        max_size=3,
    ),
    "capability_sets": st.sampled_from(
        [
            CapabilitySets(),
            CapabilitySets(
                bounding=["SYS_ADMIN"], permitted=["SYS_ADMIN"], effective=["SYS_ADMIN"]
            ),
            CapabilitySets(permitted=["KILL"], inheritable=["KILL"], ambient=["KILL"]),
        ]
    ),
    "personality": st.one_of(
        st.integers(-1, 2**33), st.sampled_from([8, 0x0040008, 0x0400000, 0x100, 0xFFFFFFFF])
    ),
    "rootfs_propagation": st.sampled_from(
        ["rslave", "shared", "runbindable", "private", "bogus", "", "RSHARED"]
    ),
}


@st.composite
def hostile_fields(draw: st.DrawFn) -> dict[str, Any]:
    """One to three fields of a spec set to something odd: of the wrong type, out
    of range, plausible but wrong for the kernel."""
    fields: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3, unique=True)):
        plausible = PLAUSIBLE.get(name)
        if plausible is not None and draw(st.booleans()):
            fields[name] = draw(plausible)
        else:
            fields[name] = draw(weird_values)
    return fields
