"""The short version of the reliability soak (benchmarks/soak.py): sequential
spawns without growth, threads next to GIL-free workers, and the spawner killed
at several steps of the plan, with pynsbind.cleanup() leaving nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.slow]

SOAK = Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"


def test_short_soak(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    res = subprocess.run(
        [
            sys.executable,
            str(SOAK),
            "--spawns",
            "800",
            "--threads",
            "8",
            "--per-thread",
            "25",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = json.loads(out.read_text())
    assert res.returncode == 0, (res.stdout, res.stderr)
    phases = {(r["phase"], r.get("cgroup")): r for r in report["results"]}
    assert set(phases) == {("sequential", None), ("threads", None), ("kill", False), ("kill", True)}
    for r in report["results"]:
        assert r["ok"], r
        assert r["leaks"] == {}
    assert phases[("threads", None)]["done"] == 200
    assert phases[("kill", True)]["runs"] >= 7
