"""benchmarks.request_cost: the callgrind harness runs each kind of request through a real
data plane (without valgrind here: the markers are plain system calls then)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_kind_is_proxied() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.request_cost", "--requests", "20"],
        cwd=ROOT,
        env={**os.environ, "TURNOUT_NATIVE": os.environ.get("TURNOUT_NATIVE", "auto")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for kind in ("plain", "sticky", "sticky-first", "close"):
        assert f"{kind}: 20 requests" in done.stderr
