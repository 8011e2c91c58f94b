"""The bundled benchmark: wrk's report parsed right, a real run end to end, the router bench."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest

from benchmarks.backends import BackendServer
from benchmarks.baselines import Server, servers
from benchmarks.load import parse_wrk
from benchmarks.processes import Child
from benchmarks.shifter import settings
from benchmarks.targets import turnout_toml
from proxy.config import load_config

ROOT = Path(__file__).resolve().parents[2]

# Captured from `wrk -t1 -c50 -d2s --latency` (wrk 4.1.0) against an nginx on loopback.
WRK_FAST = """\
Running 2s test @ http://127.0.0.1:18081/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   513.69us  505.01us   8.44ms   97.28%
    Req/Sec    86.11k     3.11k   90.69k    75.00%
  Latency Distribution
     50%  455.00us
     75%  519.00us
     90%  655.00us
     99%    3.03ms
  171444 requests in 2.01s, 27.30MB read
Requests/sec:  85480.99
Transfer/sec:     13.61MB
"""

# Captured from `wrk -t1 -c20 -d4s --timeout 2s --latency` against a server sleeping 0.5-2.6 s
# and answering 503 half the time: seconds as a unit, socket errors, non-2xx responses. wrk
# pads second-valued percentiles with a trailing space, kept here.
WRK_SLOW = (
    "Running 4s test @ http://127.0.0.1:18090/\n"
    "  1 threads and 20 connections\n"
    "  Thread Stats   Avg      Stdev     Max   +/- Stdev\n"
    "    Latency     1.19s   481.26ms   1.96s    51.43%\n"
    "    Req/Sec    13.52      8.13    30.00     72.00%\n"
    "  Latency Distribution\n"
    "     50%    1.23s \n"
    "     75%    1.67s \n"
    "     90%    1.84s \n"
    "     99%    1.96s \n"
    "  45 requests in 4.01s, 7.09KB read\n"
    "  Socket errors: connect 0, read 0, write 0, timeout 10\n"
    "  Non-2xx or 3xx responses: 22\n"
    "Requests/sec:     11.22\n"
    "Transfer/sec:      1.77KB\n"
)


def test_wrk_report_in_microseconds_and_milliseconds() -> None:
    result = parse_wrk(WRK_FAST)
    assert result.requests == 171444
    assert result.duration_s == pytest.approx(2.01)
    assert result.requests_per_s == pytest.approx(85480.99)
    assert result.latency_ms == pytest.approx(
        {"p50": 0.455, "p90": 0.655, "p99": 3.03, "max": 8.44}
    )
    assert result.socket_errors == {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    assert result.http_errors == 0
    assert result.errors == 0


def test_wrk_report_in_seconds_with_errors() -> None:
    result = parse_wrk(WRK_SLOW)
    assert result.requests == 45
    assert result.requests_per_s == pytest.approx(11.22)
    assert result.latency_ms == pytest.approx(
        {"p50": 1230.0, "p90": 1840.0, "p99": 1960.0, "max": 1960.0}
    )
    assert result.socket_errors == {"connect": 0, "read": 0, "write": 0, "timeout": 10}
    assert result.http_errors == 22
    assert result.errors == 32


def test_wrk_report_without_latency_distribution_is_refused() -> None:
    without = re.sub(r"  Latency Distribution\n(.*%.*\n)+", "", WRK_FAST)
    with pytest.raises(ValueError, match="--latency"):
        parse_wrk(without)


def test_pool_weights_become_equivalent_backend_weights() -> None:
    backends = [("stable", "stable-1", 1), ("stable", "stable-2", 2), ("canary", "canary-1", 3)]
    assert servers((("stable", 90), ("canary", 10)), backends) == [
        Server("stable-1", 1, 9),
        Server("stable-2", 2, 9),
        Server("canary-1", 3, 2),
    ]
    # haproxy takes weights up to 256; a pool at weight 0 gets no server at all.
    capped = servers((("stable", 999), ("canary", 1), ("idle", 0)), backends)
    assert max(server.weight for server in capped) <= 256
    assert [server.name for server in capped] == ["stable-1", "stable-2", "canary-1"]


def test_turnout_configuration_is_valid(tmp_path: Path) -> None:
    backends = [
        BackendServer("stable", "stable-1", 9001, child=cast(Child, None)),
        BackendServer("canary", "canary-1", 9002, child=cast(Child, None)),
    ]
    path = tmp_path / "turnout.toml"
    path.write_text(turnout_toml(8080, (("stable", 50), ("canary", 50)), backends))
    _, snapshot = load_config(path)
    (route,) = snapshot.routes
    assert route.sticky is not None
    assert not route.sticky.issue
    assert [rule.name for rule in route.rules] == ["testers"]


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
        check=False,
    )


def run_end_to_end(tmp_path: Path, *extra: str) -> Any:
    out = tmp_path / "result.json"
    result = bench(
        *("--scenario", "small", "--targets", "turnout,direct", "--duration", "1"),
        *("--warmup", "0", "--json", str(out), "--html", str(tmp_path / "result.html"), *extra),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    measurements = {m["target"]: m for m in data["measurements"]}
    assert set(measurements) == {"turnout", "direct"}
    for measurement in measurements.values():
        assert measurement["requests_per_s"] > 0
    split = measurements["turnout"]["split"]
    assert split["stable"]["requests"] > 0
    assert split["canary"]["requests"] > 0
    assert "<svg" in (tmp_path / "result.html").read_text()
    assert "Ratios" in result.stdout
    return data


def test_end_to_end_with_what_is_installed(tmp_path: Path) -> None:
    """wrk and nginx where installed, the built-in generator and backend where not."""
    data = run_end_to_end(tmp_path)
    assert data["parameters"]["load_generator"] in ("wrk", "builtin")


def test_end_to_end_with_builtin_load_generator_and_backends(tmp_path: Path) -> None:
    data = run_end_to_end(tmp_path, "--load-generator", "builtin", "--backend", "builtin")
    assert data["parameters"]["load_generator"] == "builtin"
    assert data["parameters"]["backend"] == "builtin"
    assert data["load_generator_ceiling_requests_per_s"]["small"] > 0


def test_router_micro_benchmark_reports_every_path(tmp_path: Path) -> None:
    out = tmp_path / "router.json"
    result = bench("router", "--iterations", "200", "--repeats", "2", "--json", str(out))
    assert result.returncode == 0, result.stderr
    for case in ("weighted random", "sticky cookie", "header rule", "blue-green", "pick_backend"):
        line = next(line for line in result.stdout.splitlines() if case in line)
        assert re.search(r"\d+\.\d\s+\d+\.\d\s+[\d,]+$", line), line
    figures = json.loads(out.read_text())["ns_per_call"]
    assert all(figure["median"] > 0 for figure in figures.values())


def test_shifting_swings_the_first_pool_between_90_and_10_percent() -> None:
    high, low = settings(["stable", "canary"])
    assert 100 * high["stable"] / sum(high.values()) == 90
    assert 100 * low["stable"] / sum(low.values()) == 10
    high, low = settings(["stable", "canary", "extra"])
    assert 100 * high["stable"] / sum(high.values()) == 90
    assert 100 * low["stable"] / sum(low.values()) == 10
    assert high["canary"] == high["extra"]
    assert low["canary"] == low["extra"]


def test_weights_shift_during_the_load_without_errors(tmp_path: Path) -> None:
    out = tmp_path / "shifting.json"
    result = bench(
        *("--scenario", "shifting", "--scenario", "small", "--targets", "turnout,turnout-py"),
        *("--duration", "2", "--warmup", "0", "--json", str(out)),
        *("--html", str(tmp_path / "shifting.html")),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    expected = {"turnout", "turnout-py"}
    if data["parameters"]["load_generator"] == "builtin":
        # Without wrk the runner adds `direct` to measure the built-in generator's ceiling.
        expected.add("direct")
    shifting = [m for m in data["measurements"] if m["scenario"] == "shifting"]
    assert {m["target"] for m in shifting} == expected
    for measurement in (m for m in shifting if m["target"] != "direct"):
        changes = measurement["weight_changes"]
        # Every 100 ms for 2 s, each acknowledged by the worker before the next.
        assert changes["changes"] >= 8, changes
        assert changes["failed"] == 0
        assert measurement["errors"] == 0
        stable = measurement["split"]["stable"]
        # The set share averaged over time is near 50 %, and the backends saw that split.
        assert 30 < stable["weight_pct"] < 70, stable
        assert abs(stable["deviation_pp"]) < 5, stable
    assert "Weight changes during the load" in result.stdout
    # The configured weights are back for the next scenario.
    for measurement in data["measurements"]:
        if measurement["scenario"] == "small" and measurement["target"] != "direct":
            assert measurement["split"]["stable"]["weight_pct"] == 50
            assert abs(measurement["split"]["stable"]["deviation_pp"]) < 5, measurement["split"]


@pytest.mark.parametrize("proxy", ["nginx", "haproxy"])
def test_the_baselines_are_sticky_as_turnout_is(tmp_path: Path, proxy: str) -> None:
    """With the sticky cookie one user stays on one pool; without it, the weighted split."""
    for tool in ("wrk", "nginx", proxy):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (Debian package {tool})")
    out = tmp_path / "sticky.json"
    result = bench(
        *("--scenario", "sticky", "--scenario", "small", "--targets", f"turnout,{proxy}"),
        *("--duration", "1", "--warmup", "0", "--json", str(out)),
        *("--html", str(tmp_path / "sticky.html")),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    shares = {
        (m["scenario"], m["target"]): sorted(p["share_pct"] for p in m["split"].values())
        for m in data["measurements"]
    }
    # The same one user lands in one pool, whichever proxy hashes the cookie.
    assert shares[("sticky", proxy)] == shares[("sticky", "turnout")] == [0.0, 100.0]
    low, high = shares[("small", proxy)]
    assert 40 < low <= high < 60, shares
