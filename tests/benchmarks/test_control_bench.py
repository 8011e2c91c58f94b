"""`turnout bench control`: the control plane's figures as the configuration grows."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

from test_benchmarks import ROOT, bench

from benchmarks.control_bench import layout, turnout_config
from benchmarks.tools import turnout_command
from proxy.config import load_config


def test_configuration_has_5_backends_a_pool_and_2_pools_a_route(tmp_path: Path) -> None:
    assert layout(2000) == (400, 200)
    assert layout(20) == (4, 2)
    path = tmp_path / "turnout.toml"
    path.write_text(turnout_config(8080, 9901, list(range(10000, 10020))))
    _, snapshot = load_config(path)
    assert len(snapshot.routes) == 2
    assert sum(len(pool.backends) for pool in snapshot.pools.values()) == 20
    assert {len(pool.backends) for pool in snapshot.pools.values()} == {5}
    health = tomllib.loads(path.read_text())["health"]
    assert health["enabled"] is True
    assert health["interval"] == 1.0


def test_every_figure_is_measured(tmp_path: Path) -> None:
    out = tmp_path / "control.json"
    result = bench("control", "--backends", "20", "--duration", "2", "--json", str(out))
    assert result.returncode == 0, result.stderr
    (size,) = json.loads(out.read_text())["sizes"]
    assert (size["backends"], size["pools"], size["routes"]) == (20, 4, 2)
    for figure in (
        "ready_s",
        "cpu_percent",
        "cpu_us_per_probe",
        "probes_per_s",
        "write_ms_median",
        "write_ms_max",
        "metrics_ms_median",
        "metrics_bytes",
    ):
        assert size[figure] > 0, (figure, size)
    assert size["write_ms_median"] <= size["write_ms_max"]
    # Probed about once a second each (the first and last seconds may fall either side).
    assert 10 <= size["probes_per_s"] <= 30, size
    row = next(line for line in result.stdout.splitlines() if line.split()[:3] == ["20", "4", "2"])
    assert len(row.split()) == 11, row


def test_sizes_must_be_multiples_of_10() -> None:
    result = bench("control", "--backends", "25")
    assert result.returncode == 2
    assert "multiple of 10" in result.stderr


def test_reachable_as_turnout_bench_control() -> None:
    result = subprocess.run(
        [*turnout_command(), "bench", "control", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "turnout bench control" in result.stdout
    assert "--backends" in result.stdout
