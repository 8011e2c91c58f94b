"""Ratios to the baselines, run by run, and their median and spread over repeated runs.

A single run's figures move a lot on a shared machine (a p99 ratio by ±0.6 on its own), so
`--repeat N` measures every target N times, interleaved run by run. Ratios are taken within a
run (turnout's run 2 against nginx's run 2, measured moments apart under the same conditions),
and only then summarised: the median and the spread (min-max) of the N per-run ratios.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from benchmarks.runner import Measurement, Results


@dataclass(frozen=True, slots=True)
class Ratio:
    scenario: str
    target: str
    rps_vs_nginx: float | None
    p99_vs_nginx: float | None
    rps_vs_direct: float | None
    run: int = 1


def ratios(results: Results) -> list[Ratio]:
    """Each proxy's requests/s and p99 relative to nginx as a proxy, and to no proxy at all,
    in the same run."""
    by_key = {(m.scenario, m.target, m.run): m for m in results.measurements}
    rows = []
    for m in results.measurements:
        if m.target == "direct":
            continue
        nginx = by_key.get((m.scenario, "nginx", m.run))
        direct = by_key.get((m.scenario, "direct", m.run))
        rows.append(
            Ratio(
                scenario=m.scenario,
                target=m.target,
                rps_vs_nginx=_ratio(m.load.requests_per_s, nginx.load.requests_per_s)
                if nginx
                else None,
                p99_vs_nginx=_ratio(m.load.latency_ms["p99"], nginx.load.latency_ms["p99"])
                if nginx
                else None,
                rps_vs_direct=_ratio(m.load.requests_per_s, direct.load.requests_per_s)
                if direct
                else None,
                run=m.run,
            )
        )
    return rows


def _ratio(value: float, reference: float) -> float | None:
    return value / reference if reference > 0 else None


@dataclass(frozen=True, slots=True)
class Spread:
    """The median of a figure over the runs, and its lowest and highest value."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Spread | None:
        """None when any run lacks the figure (a ratio to a reference measuring 0)."""
        known = list(values)
        if not known or any(value is None for value in known):
            return None
        numbers = [value for value in known if value is not None]
        return cls(statistics.median(numbers), min(numbers), max(numbers))

    def to_json(self, digits: int) -> dict[str, float]:
        return {
            "median": round(self.median, digits),
            "min": round(self.low, digits),
            "max": round(self.high, digits),
        }


@dataclass(frozen=True, slots=True)
class Summary:
    """One (scenario, target) over every run."""

    scenario: str
    target: str
    runs: int
    rps: Spread
    p99_ms: Spread
    rps_vs_nginx: Spread | None
    p99_vs_nginx: Spread | None
    rps_vs_direct: Spread | None


def summarise(results: Results) -> list[Summary]:
    """Per (scenario, target), in the order they were first measured."""
    measured: dict[tuple[str, str], list[Measurement]] = {}
    for m in results.measurements:
        measured.setdefault((m.scenario, m.target), []).append(m)
    per_run: dict[tuple[str, str], list[Ratio]] = {}
    for r in ratios(results):
        per_run.setdefault((r.scenario, r.target), []).append(r)
    rows = []
    for (scenario, target), runs in measured.items():
        found = per_run.get((scenario, target))
        rps = Spread.of(m.load.requests_per_s for m in runs)
        p99 = Spread.of(m.load.latency_ms["p99"] for m in runs)
        assert rps is not None
        assert p99 is not None
        rows.append(
            Summary(
                scenario=scenario,
                target=target,
                runs=len(runs),
                rps=rps,
                p99_ms=p99,
                rps_vs_nginx=Spread.of(r.rps_vs_nginx for r in found) if found else None,
                p99_vs_nginx=Spread.of(r.p99_vs_nginx for r in found) if found else None,
                rps_vs_direct=Spread.of(r.rps_vs_direct for r in found) if found else None,
            )
        )
    return rows


def summary_json(rows: list[Summary]) -> list[dict[str, Any]]:
    def ratio(spread: Spread | None) -> dict[str, float] | None:
        return None if spread is None else spread.to_json(3)

    return [
        {
            "scenario": s.scenario,
            "target": s.target,
            "runs": s.runs,
            "requests_per_s": s.rps.to_json(1),
            "p99_ms": s.p99_ms.to_json(3),
            "requests_per_s_vs_nginx": ratio(s.rps_vs_nginx),
            "p99_vs_nginx": ratio(s.p99_vs_nginx),
            "requests_per_s_vs_direct": ratio(s.rps_vs_direct),
        }
        for s in rows
    ]
