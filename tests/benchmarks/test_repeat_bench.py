"""`--repeat N` (medians and spreads of per-run ratios) and the `sticky-first` scenario."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import cast

import pytest
from test_benchmarks import bench

from benchmarks.backends import BackendServer
from benchmarks.load import LoadResult
from benchmarks.processes import Child
from benchmarks.runner import Measurement, Results
from benchmarks.summary import Spread, summarise
from benchmarks.targets import TargetName, turnout_toml
from proxy.config import load_config


def measured(target: TargetName, run: int, rps: float, p99: float) -> Measurement:
    load = LoadResult(int(rps), 1.0, rps, {"p50": p99 / 2, "p90": p99, "p99": p99, "max": p99})
    return Measurement("small", target, load, None, None, {}, None, run=run)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([2.0], Spread(2.0, 2.0, 2.0)),
        ([3.0, 1.0], Spread(2.0, 1.0, 3.0)),
        ([0.5, 1.0, 0.5], Spread(0.5, 0.5, 1.0)),
        ([], None),
        ([1.0, None], None),
    ],
)
def test_spread_is_median_min_max(values: list[float | None], expected: Spread | None) -> None:
    assert Spread.of(values) == expected


def test_ratios_are_taken_within_each_run_then_summarised() -> None:
    """Not the ratio of the medians (40 / 60 = 0.67): the median of the per-run ratios."""
    results = Results(machine={}, parameters={"repeat": 3})
    for run, (turnout, nginx) in enumerate([(30, 60), (40, 40), (50, 100)], start=1):
        results.measurements += [
            measured("turnout", run, turnout, p99=2.0 * run),
            measured("nginx", run, nginx, p99=1.0),
        ]
    rows = {row.target: row for row in summarise(results)}
    turnout = rows["turnout"]
    assert turnout.runs == 3
    assert turnout.rps == Spread(40, 30, 50)
    assert turnout.rps_vs_nginx == Spread(0.5, 0.5, 1.0)
    assert turnout.p99_vs_nginx == Spread(4.0, 2.0, 6.0)
    assert turnout.rps_vs_direct is None
    assert rows["nginx"].rps_vs_nginx == Spread(1.0, 1.0, 1.0)


def test_repeat_reports_medians_and_spreads(tmp_path: Path) -> None:
    out, html = tmp_path / "repeat.json", tmp_path / "repeat.html"
    result = bench(
        *("--scenario", "small", "--targets", "turnout,direct", "--duration", "1"),
        *("--warmup", "0", "--repeat", "2", "--json", str(out), "--html", str(html)),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["parameters"]["repeat"] == 2
    # Interleaved run by run: every target's run 1 before any target's run 2.
    assert [(m["target"], m["run"]) for m in data["measurements"]] == [
        ("turnout", 1),
        ("direct", 1),
        ("turnout", 2),
        ("direct", 2),
    ]
    assert [(r["target"], r["run"]) for r in data["ratios"]] == [("turnout", 1), ("turnout", 2)]
    summary = {row["target"]: row for row in data["summary"]}
    assert set(summary) == {"turnout", "direct"}
    for row in summary.values():
        assert row["runs"] == 2
        for figure in ("requests_per_s", "p99_ms"):
            spread = row[figure]
            assert 0 < spread["min"] <= spread["median"] <= spread["max"], row
    per_run = [r["requests_per_s_vs_direct"] for r in data["ratios"]]
    vs_direct = summary["turnout"]["requests_per_s_vs_direct"]
    assert vs_direct["min"] == pytest.approx(min(per_run), abs=1e-3)
    assert vs_direct["max"] == pytest.approx(max(per_run), abs=1e-3)
    assert vs_direct["median"] == pytest.approx(sum(per_run) / 2, abs=1e-3)
    assert "Medians of 2 runs" in result.stdout
    lines = result.stdout.splitlines()
    row = next(line for line in lines if line.split()[:2] == ["small", "turnout"])
    # req/s, p99, and the ratio to direct, each "median (min-max)".
    assert len(re.findall(r"[\d.,]+x? \([\d.,]+x?-[\d.,]+x?\)", row)) == 3, row
    assert "median of 2 runs" in html.read_text()


def test_turnout_configuration_issuing_the_cookie_is_valid(tmp_path: Path) -> None:
    backends = [
        BackendServer("stable", "stable-1", 9001, child=cast(Child, None)),
        BackendServer("canary", "canary-1", 9002, child=cast(Child, None)),
    ]
    path = tmp_path / "turnout.toml"
    path.write_text(turnout_toml(8080, (("stable", 50), ("canary", 50)), backends, issue=True))
    _, snapshot = load_config(path)
    (route,) = snapshot.routes
    assert route.sticky is not None
    assert route.sticky.issue


def test_sticky_first_issues_the_cookie_on_every_cookieless_request(tmp_path: Path) -> None:
    """turnout makes up an id per request (the split stays 50/50) and sends Set-Cookie; nginx,
    where installed, hashes the missing cookie as an empty key: round robin, no cookie."""
    baseline = "nginx" if shutil.which("wrk") and shutil.which("nginx") else "direct"
    out = tmp_path / "first.json"
    result = bench(
        *("--scenario", "sticky-first", "--targets", f"turnout,{baseline}"),
        *("--duration", "1", "--warmup", "0", "--json", str(out)),
        *("--html", str(tmp_path / "first.html")),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["parameters"]["scenarios"]["sticky-first"]["issues_cookie"] is True
    found = {m["target"]: m for m in data["measurements"]}
    turnout = found["turnout"]
    assert turnout["set_cookie"].startswith("turnout-id="), turnout["set_cookie"]
    assert turnout["errors"] == 0
    shares = sorted(pool["share_pct"] for pool in turnout["split"].values())
    assert 40 < shares[0] <= shares[1] < 60, shares
    if baseline == "nginx":
        assert found["nginx"].get("set_cookie") is None
        shares = sorted(pool["share_pct"] for pool in found["nginx"]["split"].values())
        assert 40 < shares[0] <= shares[1] < 60, shares
    assert "Cookies issued" in result.stdout
    assert "sticky-first -> turnout: turnout-id=" in result.stdout
