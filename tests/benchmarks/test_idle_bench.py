"""The idle-connections memory benchmark, end to end with real proxies and a few connections."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import tools
from benchmarks.tools import turnout_command

ROOT = Path(__file__).resolve().parents[2]
CONNECTIONS = 200

BASELINES = [name for name in ("nginx", "haproxy") if tools.find(name) is not None]


def idle(tmp_path: Path, targets: str) -> tuple[str, list[dict[str, Any]]]:
    """Run `python -m benchmarks idle` on `targets`; its table and its JSON results."""
    out = tmp_path / "idle.json"
    argv = ["idle", "--connections", str(CONNECTIONS), "--targets", targets, "--json", str(out)]
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["connections"] == CONNECTIONS
    return result.stdout, data["results"]


def assert_held(result: dict[str, Any]) -> None:
    assert result["held"] == CONNECTIONS, result
    assert result["errors"] == 0, result
    assert result["first_error"] is None, result
    assert result["sample_ok"] == result["sample"] > 0, result
    assert result["rss_idle"] > result["rss_before"] > 0, result
    assert result["kib_per_connection"] > 0, result


def test_turnout_holds_every_idle_connection(tmp_path: Path) -> None:
    table, results = idle(tmp_path, "turnout")
    assert [result["target"] for result in results] == ["turnout"]
    assert_held(results[0])
    row = next(line for line in table.splitlines() if line.strip().startswith("turnout"))
    assert row.split()[1:3] == [str(CONNECTIONS), "0"], row


@pytest.mark.skipif(not BASELINES, reason="needs nginx or haproxy (Debian packages nginx, haproxy)")
def test_installed_baselines_hold_every_idle_connection(tmp_path: Path) -> None:
    _, results = idle(tmp_path, ",".join(BASELINES))
    assert [result["target"] for result in results] == BASELINES
    for result in results:
        assert_held(result)


def test_reachable_as_turnout_bench_idle() -> None:
    result = subprocess.run(
        [*turnout_command(), "bench", "idle", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "turnout bench idle" in result.stdout
    assert "--connections" in result.stdout
