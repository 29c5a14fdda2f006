"""pynsbind.cgroups, pure logic: parsing, conversions, layout detection and what the
writers write, against fake hosts in a temporary directory (no real cgroup)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pynsbind import Resources, Spec, SpecError
from pynsbind.cgroups import (
    AUTO_PREFIX,
    Cgroup,
    Hierarchy,
    Host,
    check_placement,
    detect,
    mode,
    normalize,
)
from pynsbind.devices import DeviceRule
from pynsbind.resources import (
    blkio_weight_to_io_weight,
    format_cpuset,
    io_weight_to_blkio_weight,
    parse_cpuset,
    parse_size,
    shares_to_weight,
    weight_to_shares,
)
from pynsbind.testing import cgroups_v1 as _v1
from pynsbind.testing import cgroups_v2 as _v2
from pynsbind.testing import compile_program, lib, parse_proc_cgroup
from pynsbind.testing import parse_auto_name as _parse_auto
from tests.helpers import in_child

# ---- sizes and values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (0, 0),
        (4096, 4096),
        ("4096", 4096),
        ("64M", 64 << 20),
        ("64m", 64 << 20),
        ("1G", 1 << 30),
        ("512KiB", 512 << 10),
        ("2 MB", 2 << 20),
        (" 3k ", 3 << 10),
        ("1T", 1 << 40),
        ("max", "max"),
    ],
)
def test_parse_size(text: Any, size: Any) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("12Q", "cannot parse '12Q' as a size"),
        ("-5", "cannot parse '-5'"),
        (-5, "-5 is negative (use 'max' for no limit)"),
        (-1, "-1 is negative"),
        ("1.5G", "cannot parse '1.5G'"),
        ("", "cannot parse ''"),
        (True, "expected a size"),
        (1.5, "expected an int or a string"),
        (2**64, "too large"),
    ],
)
def test_parse_size_rejects(text: Any, message: str) -> None:
    with pytest.raises(SpecError, match=r"^resources\.memory_max: ") as info:
        Resources(memory_max=text)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_resources_normalise_and_hash() -> None:
    a = Resources(
        memory_max="64M",
        cpus="1,0",
        io_max={"8:0": {"wbps": "1M", "rbps": 100}},
        hugetlb={"2M": "4M"},
        unified={"memory.high": 1000},
    )
    assert a.memory_max == 64 << 20
    assert a.cpus == "0-1"
    assert a.io_max == (("8:0", (("rbps", 100), ("wbps", 1 << 20))),)
    assert a.hugetlb == (("2MB", 4 << 20),)
    assert a.unified == (("memory.high", "1000"),)
    b = Resources(
        memory_max=64 << 20,
        cpus={0, 1},
        io_max={(8, 0): {"rbps": 100, "wbps": 1 << 20}},
        hugetlb={"2MB": 4 << 20},
        unified={"memory.high": "1000"},
    )
    assert a == b
    assert hash(a) == hash(b)
    assert {a: 1}[b] == 1
    # a Spec holding one stays hashable (plans are cached by spec)
    hash(Spec(args=["true"], resources=a))
    assert a.controllers() == {"memory", "cpuset", "io", "hugetlb"}


@pytest.mark.parametrize(
    ("kw", "field", "message"),
    [
        ({"cpu_weight": 0}, "cpu_weight", "0 is out of range (1..10000)"),
        ({"cpu_weight": 10001}, "cpu_weight", "out of range"),
        ({"cpu_shares": 1}, "cpu_shares", "1 is out of range (2..262144)"),
        ({"cpu_shares": 512, "cpu_weight": 20}, "cpu_shares", "not both"),
        ({"cpu_quota": -1}, "cpu_quota", "-1 is negative (use 'max' for no limit)"),
        ({"cpu_quota": 10}, "cpu_quota", "10 is out of range"),
        ({"cpu_period": 10**7}, "cpu_period", "out of range"),
        ({"pids_max": 0}, "pids_max", "0 is out of range"),
        ({"pids_max": "12Q"}, "pids_max", "expected an int or 'max'"),
        ({"pids_max": -3}, "pids_max", "-3 is negative"),
        ({"memory_max": 0}, "memory_max", "below the minimum of 1"),
        ({"cpus": "0-"}, "cpus", "cannot parse '0-'"),
        ({"cpus": "3-1"}, "cpus", "bad range"),
        ({"cpus": ""}, "cpus", "must not be empty"),
        ({"mems": "a"}, "mems", "cannot parse 'a'"),
        ({"io_weight": 0}, "io_weight", "out of range"),
        ({"io_max": {"sda": {"rbps": 1}}}, "io_max", "a device is 'MAJOR:MINOR'"),
        ({"io_max": {"8:0": {"xbps": 1}}}, "io_max", "unknown key 'xbps'"),
        ({"io_max": {"8:0": {"rbps": "12Q"}}}, "io_max[8:0].rbps", "cannot parse"),
        ({"hugetlb": {"huge": 1}}, "hugetlb", "a huge page size is such as '2MB'"),
        ({"hugetlb": {"2MB": -1}}, "hugetlb[2MB]", "negative"),
        ({"unified": {"../x": "1"}}, "unified", "not a cgroup v2 file name"),
        ({"unified": {"cgroup.procs": "1"}}, "unified", "core cgroup files are not limits"),
        ({"unified": {"memory.high": None}}, "unified", "expected a string value"),
    ],
)
def test_resources_reject(kw: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        Resources(**kw)
    assert info.value.field == f"resources.{field}"
    assert message in str(info.value)


def test_resources_and_host_pickle(tmp_path: Path) -> None:
    import pickle

    res = Resources(memory_max="1M", io_max={"8:0": {"rbps": 1}})
    hash(res)
    back = pickle.loads(pickle.dumps(res))
    assert back == res
    assert "_hash" not in back.__dict__  # recomputed here, never carried over
    h = fake_unified(tmp_path)
    hash(h)
    object.__setattr__(h, "_cdirs", object())  # stands for the C arrays kept with it
    assert pickle.loads(pickle.dumps(h)) == h


def test_cpuset_lists() -> None:
    assert parse_cpuset("0-3,8,10-11") == frozenset({0, 1, 2, 3, 8, 10, 11})
    assert parse_cpuset("\n") == frozenset()
    assert format_cpuset([5, 0, 1, 2, 7, 8]) == "0-2,5,7-8"


@given(st.frozensets(st.integers(0, 300), min_size=1))
def test_cpuset_round_trip(nums: frozenset[int]) -> None:
    assert parse_cpuset(format_cpuset(nums)) == nums


# ---- conversions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shares", "weight"),
    [(1, 1), (2, 1), (1024, 100), (2000, 170), (262144, 10000), (500000, 10000)],
)
def test_shares_to_weight(shares: int, weight: int) -> None:
    # the fixed points of runc >= 1.3.2 / crun >= 1.23, and runc issue #4896's example
    assert shares_to_weight(shares) == weight


def test_weight_to_shares_fixed_points() -> None:
    assert weight_to_shares(1) == 2
    assert weight_to_shares(100) == 1024
    assert weight_to_shares(10000) == 262144


@given(st.integers(2, 262144))
def test_shares_weight_round_trip(shares: int) -> None:
    weight = shares_to_weight(shares)
    assert 1 <= weight <= 10000
    back = weight_to_shares(weight)
    # ceil() in the forward formula loses at most one weight step
    assert shares_to_weight(back) == weight or abs(shares_to_weight(back) - weight) <= 1
    assert 2 <= back <= 262144


@given(st.integers(1, 9999))
def test_weight_to_shares_monotonic(weight: int) -> None:
    assert weight_to_shares(weight) <= weight_to_shares(weight + 1)


def test_blkio_weights() -> None:
    assert blkio_weight_to_io_weight(10) == 1
    assert blkio_weight_to_io_weight(1000) == 10000
    assert blkio_weight_to_io_weight(500) == 1 + 490 * 9999 // 990
    assert io_weight_to_blkio_weight(1) == 10
    assert io_weight_to_blkio_weight(10000) == 1000
    assert io_weight_to_blkio_weight(100) == 10 + 99 * 990 // 9999


# ---- OCI ----------------------------------------------------------------------------------


def test_from_oci() -> None:
    oci = {
        "devices": [{"allow": False, "access": "rwm"}],
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20, "kernel": -1},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 32},
        "blockIO": {
            "weight": 500,
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
        },
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "unified": {"memory.high": "50000000"},
    }
    res = Resources.from_oci(oci)
    assert res == Resources(
        memory_max=64 << 20,
        memory_reservation=32 << 20,
        memory_swap_max=32 << 20,  # memory+swap 96M minus memory 64M
        cpu_shares=1024,  # exact on v1; cpu.weight 100 on v2
        cpu_quota=50000,
        cpu_period=100000,
        cpus="0",
        mems="0",
        pids_max=32,
        io_weight=blkio_weight_to_io_weight(500),
        io_max={"8:0": {"rbps": 1048576, "wiops": 100}},
        hugetlb={"2MB": 4194304},
        unified={"memory.high": "50000000"},
        devices=[DeviceRule(allow=False)],  # the list as given
    )


@pytest.mark.parametrize(
    ("memory", "swap_max"),
    [
        ({"limit": -1}, "max"),  # unlimited memory, swap unset: both unlimited (runc)
        ({"limit": 100, "swap": -1}, "max"),
        ({"limit": 100, "swap": 100}, 0),  # memory == memory+swap: no swap
        ({"limit": -1, "swap": 300}, 300),
        ({"limit": 100}, None),
    ],
)
def test_from_oci_swap(memory: dict[str, int], swap_max: Any) -> None:
    assert Resources.from_oci({"memory": memory}).memory_swap_max == swap_max


@pytest.mark.parametrize(
    ("oci", "field"),
    [
        ({"memory": {"swap": 100}}, "resources.oci.memory.swap"),
        ({"memory": {"limit": 200, "swap": 100}}, "resources.oci.memory.swap"),
        ({"memory": {"limit": -2}}, "resources.oci.memory.limit"),
        ({"memory": {"limit": "64M"}}, "resources.oci.memory.limit"),
        ({"cpu": {"realtimeRuntime": 100}}, "resources.oci.cpu.realtimeRuntime"),
        ({"blockIO": {"weight": 5}}, "resources.oci.blockIO.weight"),
        (
            {"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 10}]}},
            "resources.oci.blockIO.weightDevice",
        ),
        ({"network": {"classID": 1}}, "resources.oci.network"),
        ({"bogus": 1}, "resources.oci"),
        ({"cpu": {"cpus": "x"}}, "resources.cpus"),
    ],
)
def test_from_oci_rejects(oci: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        Resources.from_oci(oci)
    assert info.value.field == field


# ---- paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "norm"),
    [("a", "a"), ("/a//b/", "a/b"), ("./a/./b", "a/b"), ("pynsbind/x-1", "pynsbind/x-1")],
)
def test_normalize(path: str, norm: str) -> None:
    assert normalize(path) == norm


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../x", "contains '..'"),
        ("a/../../b", "contains '..'"),
        ("", "names the root"),
        ("/", "names the root"),
        ("a\0b", "NUL"),
        ("a/cgroup.procs", "not a valid cgroup name"),
        ("x" * 300, "longer than 255 bytes"),
    ],
)
def test_normalize_rejects(path: str, message: str) -> None:
    with pytest.raises(ValueError, match="cgroup path") as info:
        normalize(path)
    assert message in str(info.value)


def test_spec_fields() -> None:
    spec = Spec(args=["true"], cgroup="/pynsbind//x/")
    assert spec.cgroup == "/pynsbind//x/"  # as given
    assert spec.normalized.cgroup == "pynsbind/x"
    with pytest.raises(SpecError, match=r"^cgroup: cgroup path '\.\./x' contains '\.\.'"):
        Spec(args=["true"], cgroup="../x")
    with pytest.raises(SpecError, match=r"^cgroup: expected a Cgroup or a path, got int"):
        Spec(args=["true"], cgroup=5)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=r"^resources: expected a pynsbind\.Resources, got dict"):
        Spec(args=["true"], resources={"memory_max": 1})  # type: ignore[arg-type]


def test_auto_names() -> None:
    assert _parse_auto(f"{AUTO_PREFIX}12-345-6") == (12, 345)
    assert _parse_auto(f"{AUTO_PREFIX}12-345") is None
    assert _parse_auto("pynsbind-bench-12") is None
    assert _parse_auto(f"{AUTO_PREFIX}a-1-2") is None


# ---- fake hosts ----------------------------------------------------------------------------

V1_FILES = {
    "memory": [
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
        "memory.soft_limit_in_bytes",
    ],
    "cpu": ["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"],
    "cpuset": ["cpuset.cpus", "cpuset.mems"],
    "pids": ["pids.max"],
    "blkio": [
        "blkio.bfq.weight",
        *[
            f"blkio.throttle.{k}_device"
            for k in ("read_bps", "write_bps", "read_iops", "write_iops")
        ],
    ],
}
V2_FILES = [
    "cgroup.procs",
    "cgroup.subtree_control",
    "memory.max",
    "memory.swap.max",
    "memory.low",
    "cpu.weight",
    "cpu.max",
    "cpuset.cpus",
    "cpuset.mems",
    "pids.max",
    "io.weight",
    "io.max",
    "hugetlb.2MB.max",
]


def _touch(d: Path, names: list[str]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for n in names:
        (d / n).write_text("")


def fake_sys(tmp: Path) -> Path:
    sys = tmp / "sys"
    (sys / "devices/system/cpu").mkdir(parents=True)
    (sys / "devices/system/cpu/online").write_text("0-3\n")
    (sys / "devices/system/node").mkdir(parents=True)
    (sys / "devices/system/node/online").write_text("0\n")
    (sys / "kernel/mm/hugepages/hugepages-2048kB").mkdir(parents=True)
    (sys / "kernel/mm/hugepages/hugepages-1048576kB").mkdir(parents=True)
    (sys / "dev/block/8:0").mkdir(parents=True)
    return sys


def fake_hybrid(tmp: Path, own_memory: str = "/") -> Host:
    """/cg/{cpu,cpuset,memory,pids,blkio} v1 and /cg/unified (hugetlb) in a mountinfo."""
    root = tmp / "cg"
    lines = []
    for i, ctrl in enumerate(["cpu", "cpuset", "memory", "pids", "blkio"]):
        _touch(root / ctrl, ["cgroup.procs"])
        lines.append(f"{30 + i} 20 0:{40 + i} / {root}/{ctrl} rw - cgroup cgroup rw,{ctrl}")
    _touch(root / "systemd", ["cgroup.procs"])
    lines.append(f"50 20 0:50 / {root}/systemd rw - cgroup cgroup rw,name=systemd")
    _touch(root / "unified", ["cgroup.procs", "cgroup.subtree_control"])
    (root / "unified/cgroup.controllers").write_text("hugetlb\n")
    lines.append(f"51 20 0:51 / {root}/unified rw - cgroup2 cgroup2 rw")
    (tmp / "mountinfo").write_text("\n".join(lines) + "\n")
    (tmp / "cgroup").write_text(
        f"5:memory:{own_memory}\n4:pids:/\n3:cpu:/\n2:cpuset:/\n1:blkio:/\n6:name=systemd:/\n0::/\n"
    )
    return detect(str(root), str(tmp / "mountinfo"), str(tmp / "cgroup"), str(fake_sys(tmp)))


def fake_unified(tmp: Path, own: str = "/") -> Host:
    root = tmp / "cg"
    _touch(root, ["cgroup.procs", "cgroup.subtree_control"])
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids\n")
    (tmp / "mountinfo").write_text(f"40 20 0:40 / {root} rw - cgroup2 cgroup2 rw,nsdelegate\n")
    (tmp / "cgroup").write_text(f"0::{own}\n")
    return detect(str(root), str(tmp / "mountinfo"), str(tmp / "cgroup"), str(fake_sys(tmp)))


def test_mode(tmp_path: Path) -> None:
    h = fake_hybrid(tmp_path)
    assert mode(str(tmp_path / "cg"), str(tmp_path / "mountinfo")) == "hybrid"
    assert h.mode == "hybrid"
    (tmp_path / "mi").write_text(f"1 2 0:1 / {tmp_path}/cg/cpu rw - cgroup cgroup rw,cpu\n")
    assert mode(str(tmp_path / "cg"), str(tmp_path / "mi")) == "legacy"
    (tmp_path / "mi").write_text(f"1 2 0:1 / {tmp_path}/cg rw - cgroup2 cgroup2 rw\n")
    assert mode(str(tmp_path / "cg"), str(tmp_path / "mi")) == "unified"
    assert mode(str(tmp_path / "cg"), str(tmp_path / "missing")) == "none"


def test_detect_hybrid(tmp_path: Path) -> None:
    h = fake_hybrid(tmp_path, own_memory="/process_api/abc")
    names = [x.name for x in h.hierarchies]
    assert names == ["unified", "blkio", "cpu", "cpuset", "memory", "pids"]  # v2 first, no name=
    assert h.v2 is not None
    assert h.v2.controllers == {"hugetlb"}
    assert h.home("memory") is h.v1("memory")
    assert h.home("hugetlb") is h.v2
    assert h.home("io") is h.v1("blkio")
    assert h.home("freezer") is None
    assert h.v1("memory").own == "process_api/abc"  # type: ignore[union-attr]
    assert h.cpus == {0, 1, 2, 3}
    assert h.mems == {0}
    assert h.hugepage_sizes == {"2MB", "1GB"}
    assert h.problem is None
    assert not h.rootless


def test_proc_cgroup() -> None:
    text = "2:cpu,cpuacct:/a\n1:name=systemd:/b\n0::/c/d\n"
    assert parse_proc_cgroup(text) == {"cpu,cpuacct": "/a", "name=systemd": "/b", "": "/c/d"}


def test_placement_guard(tmp_path: Path) -> None:
    h = fake_hybrid(tmp_path, own_memory="/process_api/abc")
    for bad in ("process_api", "process_api/x", "process_api/abc/y"):
        with pytest.raises(ValueError, match="subtree that holds this process"):
            check_placement(h, bad)
    check_placement(h, "pynsbind/x")
    check_placement(h, "process_apix")
    # a path the caller chose (an OCI runtime's cgroupsPath next to conmon's
    # cgroup): only this process's own cgroup and those above it are refused
    check_placement(h, "process_api/x", callers_choice=True)
    check_placement(h, "process_api/abc/y", callers_choice=True)
    for bad in ("process_api", "process_api/abc"):
        with pytest.raises(ValueError, match="holds this process"):
            check_placement(h, bad, callers_choice=True)
    with pytest.raises(ValueError, match="subtree that holds this process"):
        Cgroup.create("process_api/x", host=h)
    assert not (tmp_path / "cg/memory/process_api").exists()


# ---- what gets written ----------------------------------------------------------------------


def test_program_hybrid(tmp_path: Path) -> None:
    h = fake_hybrid(tmp_path)
    res = Resources(
        memory_max="64M",
        memory_swap_max="16M",
        memory_reservation="32M",
        cpu_weight=100,
        cpu_quota=50000,
        cpu_period=100000,
        cpus="0-1",
        pids_max=10,
        io_weight=100,
        io_max={"8:0": {"rbps": "1M", "wiops": "max"}},
        hugetlb={"2MB": "4M"},
    )
    prog = compile_program(res, h)
    assert prog.kvs["memory"] == [
        ("memory.limit_in_bytes", str(64 << 20)),
        ("memory.memsw.limit_in_bytes", str(80 << 20)),  # memory + swap
        ("memory.soft_limit_in_bytes", str(32 << 20)),
    ]
    assert prog.kvs["cpu"] == [
        ("cpu.shares", "1024"),
        ("cpu.cfs_period_us", "100000"),
        ("cpu.cfs_quota_us", "50000"),
    ]
    assert prog.kvs["cpuset"] == [("cpuset.cpus", "0-1")]
    assert prog.kvs["pids"] == [("pids.max", "10")]
    assert prog.kvs["blkio"] == [
        ("blkio.throttle.read_bps_device", "8:0 1048576"),
        ("blkio.throttle.write_iops_device", "8:0 0"),  # v1: 0 lifts the limit
    ]
    assert prog.choices["blkio"] == [(("blkio.weight", "19"), ("blkio.bfq.weight", "19"))]
    assert prog.kvs["unified"] == [("hugetlb.2MB.max", str(4 << 20))]
    assert prog.v2_controllers == {"hugetlb"}


def test_cpu_shares_are_exact_on_v1_and_a_weight_on_v2(tmp_path: Path) -> None:
    # what OCI configs give: a round trip through cpu.weight would turn 512 into 521
    res = Resources(cpu_shares=512)
    v1 = compile_program(res, fake_hybrid(tmp_path / "h"))
    assert v1.kvs["cpu"] == [("cpu.shares", "512")]
    v2 = compile_program(res, fake_unified(tmp_path / "u"))
    assert v2.kvs["unified"] == [("cpu.weight", str(shares_to_weight(512)))]
    assert res.controllers() == {"cpu"}


def test_oom_kill_disable_and_swappiness_on_v1_refused_on_v2(tmp_path: Path) -> None:
    res = Resources.from_oci({"memory": {"limit": 1 << 26, "disableOOMKiller": True}})
    assert res.memory_oom_kill_disable and res.controllers() == {"memory"}
    v1 = compile_program(res, fake_hybrid(tmp_path / "h"))
    assert ("memory.oom_control", "1") in v1.kvs["memory"]
    with pytest.raises(SpecError, match="memory_oom_kill_disable: cgroup v2 cannot"):
        compile_program(res, fake_unified(tmp_path / "u"))
    assert not Resources.from_oci({"memory": {"disableOOMKiller": False}}).memory_oom_kill_disable
    swap = Resources.from_oci({"memory": {"swappiness": 30}})
    assert swap.memory_swappiness == 30
    assert compile_program(swap, fake_hybrid(tmp_path / "h2")).kvs["memory"] == [
        ("memory.swappiness", "30")
    ]
    with pytest.raises(SpecError, match="memory_swappiness: cgroup v2 has no swappiness"):
        compile_program(swap, fake_unified(tmp_path / "u2"))
    with pytest.raises(SpecError, match="swappiness: 101 is above 100"):
        Resources.from_oci({"memory": {"swappiness": 101}})
    assert Resources.from_oci({"memory": {"swappiness": 2**64 - 1}}).memory_swappiness is None


def test_program_unified(tmp_path: Path) -> None:
    h = fake_unified(tmp_path)
    res = Resources(
        memory_max="64M",
        memory_swap_max=0,
        cpu_weight=100,
        cpu_quota="max",
        cpu_period=100000,
        pids_max="max",
        io_max={"8:0": {"rbps": "1M", "wiops": "max"}},
        unified={"memory.high": "48M"},
    )
    prog = compile_program(res, h)
    assert prog.kvs == {
        "unified": [
            ("memory.max", str(64 << 20)),
            ("memory.swap.max", "0"),
            ("cpu.weight", "100"),
            ("cpu.max", "max 100000"),
            ("pids.max", "max"),
            ("io.max", "8:0 rbps=1048576 wiops=max"),
            ("memory.high", "48M"),
        ]
    }
    assert prog.v2_controllers == {"memory", "cpu", "pids", "io"}
    assert _v2.cpu_max(20000, None) == "20000"


@pytest.mark.parametrize(
    ("res", "field", "message"),
    [
        (Resources(cpus="0-7"), "resources.cpus", "cpu 4-7 does not exist (this host has 0-3)"),
        (Resources(mems="1"), "resources.mems", "memory node 1 does not exist"),
        (Resources(hugetlb={"64KB": 1}), "resources.hugetlb", "huge page size 64KB does not exist"),
        (
            Resources(io_max={"9:9": {"rbps": 1}}),
            "resources.io_max",
            "block device 9:9 does not exist",
        ),
        (
            Resources(unified={"nosuch.max": "1"}),
            "resources.unified",
            "the nosuch controller is not available",
        ),
        (Resources(unified={"memory.high": "1"}), "resources.unified", "bound to cgroup v1 here"),
        (Resources(memory_swap_max="1M"), "resources.memory_swap_max", "needs memory_max"),
    ],
)
def test_program_rejects_and_creates_nothing(
    tmp_path: Path, res: Resources, field: str, message: str
) -> None:
    h = fake_hybrid(tmp_path)
    before = sorted(p for p in (tmp_path / "cg").rglob("*"))
    with pytest.raises(SpecError) as info:
        Cgroup.create("pynsbind/t", res, host=h)
    assert info.value.field == field
    assert message in str(info.value)
    assert sorted(p for p in (tmp_path / "cg").rglob("*")) == before


def test_program_missing_controller(tmp_path: Path) -> None:
    h = fake_unified(tmp_path)
    (tmp_path / "cg/cgroup.controllers").write_text("memory\n")
    h = detect(str(tmp_path / "cg"), str(tmp_path / "mountinfo"), str(tmp_path / "cgroup"), h.sys)
    with pytest.raises(
        SpecError, match="the pids controller is not available on this host"
    ) as info:
        compile_program(Resources(pids_max=3), h)
    assert info.value.field == "resources.pids_max"


def _fake_cgroup_dirs(h: Host, rel: str) -> None:
    for hier in h.hierarchies:
        d = Path(hier.dir(rel))
        if hier.version == 2:
            parts = rel.split("/")
            for i in range(1, len(parts)):
                _touch(Path(hier.dir("/".join(parts[:i]))), ["cgroup.subtree_control"])
            _touch(d, V2_FILES)
        else:
            _touch(d, ["cgroup.procs"] + [f for c in hier.controllers for f in V1_FILES.get(c, [])])


def test_update_writes_files(tmp_path: Path) -> None:
    """The C batch writer, on a fake cgroup directory: each file gets its value."""
    h = fake_unified(tmp_path)
    _fake_cgroup_dirs(h, "pynsbind/t")
    cg = Cgroup.open("pynsbind/t", host=h)
    assert not cg.owned
    cg.update(Resources(memory_max="64M", cpu_quota=20000, pids_max=7, io_weight=300))
    d = tmp_path / "cg/pynsbind/t"
    assert (d / "memory.max").read_text() == str(64 << 20)
    assert (d / "cpu.max").read_text() == "20000"
    assert (d / "pids.max").read_text() == "7"
    assert (d / "io.weight").read_text() == "default 300"
    # the controllers were passed down from the base to the cgroup's parent
    assert (tmp_path / "cg/cgroup.subtree_control").read_text() == "+cpu +io +memory +pids"
    assert (tmp_path / "cg/pynsbind/cgroup.subtree_control").read_text() == "+cpu +io +memory +pids"
    # a period alone keeps the quota already there (same length: a plain file is
    # not truncated by the write, a cgroup file has no such problem)
    (d / "cpu.max").write_text("20000 10000")
    cg.update(Resources(cpu_period=50000))
    assert (d / "cpu.max").read_text() == "20000 50000"


def test_update_v1_memory_order(tmp_path: Path) -> None:
    h = fake_hybrid(tmp_path)
    _fake_cgroup_dirs(h, "t")
    d = Path(h.v1("memory").dir("t"))  # type: ignore[union-attr]
    (d / "memory.limit_in_bytes").write_text(str(32 << 20))
    kvs = _v1.writes(Resources(memory_max="64M", memory_swap_max="64M"), frozenset({"memory"}))[0]
    # raising: memsw first (it must stay >= the limit after each write)
    assert [k for k, _ in _v1.memory_order(str(d), kvs)][:2] == [
        "memory.memsw.limit_in_bytes",
        "memory.limit_in_bytes",
    ]
    (d / "memory.limit_in_bytes").write_text(str(1 << 30))
    assert [k for k, _ in _v1.memory_order(str(d), kvs)][:2] == [
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
    ]
    cg = Cgroup.open("t", host=h)
    cg.update(Resources(memory_max="64M", memory_swap_max="64M", pids_max=3, cpu_weight=10000))
    assert (d / "memory.memsw.limit_in_bytes").read_text() == str(128 << 20)
    assert (Path(h.v1("pids").dir("t")) / "pids.max").read_text() == "3"  # type: ignore[union-attr]
    assert (Path(h.v1("cpu").dir("t")) / "cpu.shares").read_text() == "262144"  # type: ignore[union-attr]


def test_open_needs_every_hierarchy(tmp_path: Path) -> None:
    h = fake_hybrid(tmp_path)
    with pytest.raises(FileNotFoundError, match="no cgroup nope in any hierarchy"):
        Cgroup.open("nope", host=h)
    (tmp_path / "cg/pids/half").mkdir()
    with pytest.raises(FileNotFoundError, match="cgroup half is missing from"):
        Cgroup.open("half", host=h)


def test_create_on_fake_host(tmp_path: Path) -> None:
    """mkdir in each hierarchy from its base, and back out on failure."""
    h = fake_unified(tmp_path)
    cg = Cgroup.create("pynsbind/a/b", host=h)
    assert cg.owned
    assert (tmp_path / "cg/pynsbind/a/b").is_dir()
    cg.delete()
    assert not (tmp_path / "cg/pynsbind").exists()  # the parents create() made, too
    # a write that fails (no memory.max in a plain directory) removes what was made
    with pytest.raises(OSError, match=r"memory\.max: no such file"):
        Cgroup.create("pynsbind/c", Resources(memory_max="1M"), host=h)
    assert not (tmp_path / "cg/pynsbind").exists()
    (tmp_path / "cg/x").mkdir()
    with pytest.raises(FileExistsError, match="cgroup x already exists"):
        Cgroup.create("x", host=h)


# ---- the plan -------------------------------------------------------------------------------


def _attach_plan(h: Host, spec: Spec, *, clone_into: bool, legacy_clone: bool = False) -> Any:
    """The plan of ``spec`` on the fake host ``h`` (compile_plan's ``host``)."""
    import dataclasses

    from pynsbind import features
    from pynsbind.testing import Options, compile_plan

    feats = dataclasses.replace(features(), clone_into_cgroup=clone_into)
    return compile_plan(spec, feats, Options(legacy_clone=legacy_clone), host=h)


def _attach_acts(plan: Any) -> list[str]:
    return [pa.desc for pa in plan.pacts if pa.desc.startswith("attach")]


@pytest.mark.parametrize("clone_into", [True, False])
def test_plan_attach(tmp_path: Path, clone_into: bool) -> None:
    h = fake_hybrid(tmp_path)
    # a spec that asks for no cgroup still gets one for its device rules, in the
    # hierarchy that enforces them alone: here (no v1 devices) the cgroup2 tree
    plan = _attach_plan(h, Spec(args=["true"]), clone_into=clone_into)
    assert plan.cgroup_host is not None and [x.name for x in plan.cgroup_host.hierarchies] == [
        "unified"
    ]
    if clone_into:
        assert _attach_acts(plan) == [] and plan.cgroup_slot == plan.slots.index("cgroup")
    else:
        assert _attach_acts(plan) == ["attach to the cgroup v2 cgroup"]
        assert "cgv2" in plan.slots and plan.cgroup_slot == -1
    plan = _attach_plan(
        h, Spec(args=["true"], resources=Resources(pids_max=5)), clone_into=clone_into
    )
    v1 = ["blkio", "cpu", "cpuset", "memory", "pids"]
    v1_acts = [f"attach to the v1 {n} cgroup" for n in v1]
    if clone_into:
        assert plan.cgroup_slot == plan.slots.index("cgroup")
        assert _attach_acts(plan) == v1_acts
    else:
        assert plan.cgroup_slot == -1
        assert _attach_acts(plan) == ["attach to the cgroup v2 cgroup", *v1_acts]
    assert all(pa.kind == lib.NSB_PACT_FD_WRITE_PID for pa in plan.pacts if pa.desc in v1_acts)
    slots = ["cgroup" if clone_into else "cgv2"] + [f"cgv1:{n}" for n in v1]
    assert [s for s in plan.slots if s.startswith("cg")] == slots
    with pytest.raises(SpecError, match="cpu 9 does not exist"):
        _attach_plan(h, Spec(args=["true"], resources=Resources(cpus="9")), clone_into=True)


def test_plan_attach_legacy_clone(tmp_path: Path) -> None:
    plan = _attach_plan(
        fake_unified(tmp_path),
        Spec(args=["true"], cgroup="pynsbind/x"),
        clone_into=True,
        legacy_clone=True,
    )
    # clone(2) has no CLONE_INTO_CGROUP: the parent attaches through cgroup.procs
    assert plan.cgroup_slot == -1
    assert _attach_acts(plan) == ["attach to the cgroup v2 cgroup"]


# ---- delegation (needs root to make a tree owned by someone else) --------------------------


@pytest.fixture
def open_tmp() -> Any:
    """A temporary directory others can enter (pytest's tmp_path is private)."""
    import shutil
    import tempfile

    d = tempfile.mkdtemp(prefix="pynsbind-unit-")
    os.chmod(d, 0o755)
    yield Path(d)
    shutil.rmtree(d)


@pytest.mark.root
def test_detect_delegated(open_tmp: Path) -> None:
    """An unprivileged caller: its writable subtree is the base, and where there is
    none (or the caller sits in the delegated cgroup itself) detect() says why."""
    tmp_path = open_tmp
    h = fake_unified(tmp_path, own="/user.slice/user@1000.service/app/leaf")
    root = tmp_path / "cg"
    deleg = root / "user.slice/user@1000.service"
    _touch(deleg / "app/leaf", ["cgroup.procs", "cgroup.subtree_control"])
    _touch(deleg / "app", ["cgroup.procs", "cgroup.subtree_control"])
    _touch(deleg, ["cgroup.procs", "cgroup.subtree_control"])
    (deleg / "cgroup.controllers").write_text("memory pids\n")
    for p in [tmp_path, *tmp_path.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    for d in (deleg, deleg / "app", deleg / "app/leaf"):
        for p in (d, d / "cgroup.procs", d / "cgroup.subtree_control"):
            os.chown(p, 65534, 65534)
    args = (str(root), str(tmp_path / "mountinfo"), str(tmp_path / "cgroup"), h.sys)
    got = in_child(lambda: _describe(detect(*args)), uid=65534)
    assert got == ("unified", True, None, str(deleg), "app/leaf", "memory pids")
    # the caller in the delegated cgroup itself
    (tmp_path / "cgroup").write_text("0::/user.slice/user@1000.service\n")
    got = in_child(lambda: _describe(detect(*args)), uid=65534)
    assert "holds this process itself" in got[2]
    # nothing delegated
    (tmp_path / "cgroup").write_text("0::/user.slice/session-1.scope\n")
    got = in_child(lambda: _describe(detect(*args)), uid=65534)
    assert got[2].startswith("no delegated cgroup v2 subtree for uid 65534")


def _describe(h: Host) -> tuple[Any, ...]:
    v2 = h.v2
    return (
        h.mode,
        h.rootless,
        h.problem,
        v2.base if v2 else None,
        v2.own if v2 else None,
        " ".join(sorted(v2.controllers)) if v2 else None,
    )


def test_hierarchy_dir() -> None:
    h = Hierarchy("unified", 2, "/sys/fs/cgroup", "/sys/fs/cgroup", frozenset())
    assert h.dir("a/b") == "/sys/fs/cgroup/a/b"
    assert h.dir("") == "/sys/fs/cgroup"
