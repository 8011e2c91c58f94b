"""`turnout bench judge`: the rollout judge alone, simulated (pure, seeded, no I/O).

Each rollout is a stream of reports, as the controller makes them: per report a batch of
requests split between baseline and canary at random in the given share, errors and latencies
drawn per pool, and the increments folded into the real judge (`observe`, then `verdict`).
Latency is lognormal (median 50 ms, sigma 0.5); a response is slow above the bucket bound of the
baseline's 90th percentile (the default histogram buckets), calibrated from the baseline's first
reports as the controller does. A rollout is aborted at the first report whose verdict is worse;
the figure is the canary requests seen by then.

Beside it, Flagger's absolute threshold (`request-success-rate` min 99 % per interval, rollback
after `threshold` failed checks) by exact binomial arithmetic, for comparison.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proxy.config_sections import DEFAULT_BUCKETS
from proxy.control.rollout.judge import LATENCY_WARMUP, Test, observe, slow_bound, verdict
from proxy.control.rollout.model import JudgeSettings

BOUNDS = tuple(DEFAULT_BUCKETS)
LATENCY_MEDIAN = 0.050
LATENCY_SIGMA = 0.5
RATE = 200
"""Requests a second over both pools."""
REPORTS_PER_SECOND = 1


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    baseline_errors: float
    canary_errors: float
    split: float = 0.05
    slower: float = 1.0
    """The canary's latency, as a multiple of the baseline's."""
    canary_requests: int = 10_000
    """Each rollout runs until this many canary requests, or until aborted."""
    healthy_first: int = 0
    """Canary requests during which the canary is as good as the baseline, before it turns."""
    batch: int | None = None
    """Requests a report, if not a second's worth."""


IDENTICAL = Case("identical canary (1 % errors, same latency)", 0.01, 0.01)

CASES = (
    Case("errors 1 % → 2 %", 0.01, 0.02),
    Case("errors 0.1 % → 1.1 %", 0.001, 0.011),
    Case("100 %-broken canary", 0.01, 1.0),
    # About one canary request a report: the figure is not rounded up to a report's worth.
    Case("100 %-broken, reports every 0.1 s", 0.01, 1.0, batch=RATE // 10),
    Case("2x slower canary", 0.01, 0.01, slower=2.0),
    Case("broken after 10,000 healthy", 0.01, 1.0, canary_requests=20_000, healthy_first=10_000),
    Case("errors 1 % → 1.2 % (within tolerance)", 0.01, 0.012),
)


@dataclass(frozen=True, slots=True)
class Result:
    case: Case
    rollouts: int
    detections: tuple[int, ...]
    """Canary requests to detection (after it turned, for `healthy_first`), sorted."""
    by_test: dict[str, int] = field(default_factory=dict)

    @property
    def share(self) -> float:
        return len(self.detections) / self.rollouts

    def quantile(self, q: float) -> int | None:
        """Over all rollouts, an undetected one counting as never: None if fewer than q were."""
        rank = math.ceil(q * self.rollouts)
        return self.detections[rank - 1] if 1 <= rank <= len(self.detections) else None


def binomial(rng: random.Random, n: int, p: float) -> int:
    """A Binomial(n, p) draw by inversion (report batches are small; Python 3.11 has no
    random.binomialvariate)."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if p > 0.5:
        return n - binomial(rng, n, 1.0 - p)
    q = 1.0 - p
    pmf = q**n
    if pmf == 0.0:  # far beyond report sizes: the normal approximation is exact enough there
        draw = round(rng.gauss(n * p, math.sqrt(n * p * q)))
        return min(max(draw, 0), n)
    u = rng.random()
    k, cdf, odds = 0, pmf, p / q
    while u > cdf and k < n:
        pmf *= (n - k) / (k + 1) * odds
        k += 1
        cdf += pmf
    return k


def _slower_than(bound: float, slower: float) -> float:
    """P(latency > bound) for the lognormal latency `slower` times the baseline's."""
    z = (math.log(bound) - math.log(LATENCY_MEDIAN * slower)) / LATENCY_SIGMA
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def rollout(
    case: Case,
    rng: random.Random,
    settings: JudgeSettings,
    batch: int,
    latency: bool = True,
) -> tuple[int, str] | None:
    """One rollout: (canary requests to detection, the test that found it), or None."""
    errors, slow = Test(), Test()
    buckets = [0] * (len(BOUNDS) + 1)
    slow_index: int | None = None
    slow_p = (0.0, 0.0)
    seen = 0
    mu, sigma = math.log(LATENCY_MEDIAN), LATENCY_SIGMA
    while seen < case.canary_requests:
        cr = binomial(rng, batch, case.split)
        br = batch - cr
        bad = seen >= case.healthy_first
        canary_p = case.canary_errors if bad else case.baseline_errors
        errors = observe(
            errors,
            settings.tolerance,
            cr,
            binomial(rng, cr, canary_p),
            br,
            binomial(rng, br, case.baseline_errors),
        )
        if latency and slow_index is None:
            for _ in range(br):
                buckets[bisect.bisect_left(BOUNDS, rng.lognormvariate(mu, sigma))] += 1
            slow_index = slow_bound(BOUNDS, tuple(buckets), settings.latency_quantile)
            if slow_index is not None:
                bound = BOUNDS[slow_index]
                slow_p = (_slower_than(bound, 1.0), _slower_than(bound, case.slower))
        elif latency:
            canary_slow = slow_p[1] if bad else slow_p[0]
            slow = observe(
                slow,
                settings.latency_tolerance,
                cr,
                binomial(rng, cr, canary_slow),
                br,
                binomial(rng, br, slow_p[0]),
                warmup=LATENCY_WARMUP,
            )
        seen += cr
        decision = verdict(errors, slow, 0, settings)
        if decision.outcome == "worse" and decision.test is not None:
            return max(seen - case.healthy_first, 0), decision.test
    return None


def simulate(
    case: Case,
    rollouts: int,
    seed: int = 14,
    settings: JudgeSettings | None = None,
    batch: int = RATE // REPORTS_PER_SECOND,
    latency: bool = True,
) -> Result:
    rng = random.Random(f"{seed}:{case.name}")
    settings = settings or JudgeSettings()
    detections: list[int] = []
    by_test: dict[str, int] = {}
    for _ in range(rollouts):
        found = rollout(case, rng, settings, case.batch or batch, latency)
        if found is not None:
            detections.append(found[0])
            by_test[found[1]] = by_test.get(found[1], 0) + 1
    return Result(case, rollouts, tuple(sorted(detections)), by_test)


def calibrated_bound() -> float:
    """The slow bound the baseline's latency settles on (for the report)."""
    rng = random.Random(0)
    buckets = [0] * (len(BOUNDS) + 1)
    for _ in range(100_000):
        buckets[bisect.bisect_left(BOUNDS, rng.lognormvariate(math.log(LATENCY_MEDIAN), 0.5))] += 1
    index = slow_bound(BOUNDS, tuple(buckets), JudgeSettings().latency_quantile)
    assert index is not None
    return BOUNDS[index]


# Flagger: every interval the canary alone must reach the success rate; rollback after
# `threshold` failed checks, promotion after maxWeight / stepWeight passed ones.


def flagger_fails(requests: int, error_rate: float, min_success: float = 99.0) -> float:
    """P(one interval's success rate < min_success) with `requests` canary requests."""
    allowed = math.floor(requests * (100.0 - min_success) / 100.0 + 1e-9)
    return 1.0 - sum(_pmf(requests, k, error_rate) for k in range(allowed + 1))


def flagger_rolls_back(fail: float, threshold: int, passes: int) -> float:
    """P(`threshold` failed checks before `passes` passed ones), checks independent."""
    checks = threshold + passes - 1
    return sum(_pmf(checks, k, fail) for k in range(threshold, checks + 1))


def _pmf(n: int, k: int, p: float) -> float:
    return math.comb(n, k) * p**k * (1.0 - p) ** (n - k)


FLAGGER_SETUPS = ((5, 5), (10, 10))
"""(threshold, maxWeight / stepWeight): Flagger's tutorials (threshold 5, 50 % in steps of 10;
threshold 10, 50 % in steps of 5)."""


def flagger_rows() -> list[dict[str, Any]]:
    rows = []
    for requests in (60, 300):
        for label, rate in (("identical (1 %)", 0.01), ("1 % → 2 %", 0.02)):
            fail = flagger_fails(requests, rate)
            rows.append(
                {
                    "canary_requests_per_interval": requests,
                    "canary": label,
                    "interval_fails": fail,
                    "rolls_back": {
                        f"threshold {t}, {p} steps": flagger_rolls_back(fail, t, p)
                        for t, p in FLAGGER_SETUPS
                    },
                }
            )
    return rows


@dataclass(frozen=True, slots=True)
class Figures:
    rollouts: int
    alpha: float
    false_aborts: Result
    cases: tuple[Result, ...]
    slow_above: float


def run(rollouts: int, say: Callable[[str], None] = lambda _: None) -> Figures:
    settings = JudgeSettings()
    say(f"{IDENTICAL.name}: {rollouts} rollouts of {IDENTICAL.canary_requests:,} canary requests")
    false_aborts = simulate(IDENTICAL, rollouts)
    results = []
    for case in CASES:
        say(case.name)
        results.append(simulate(case, rollouts))
    return Figures(rollouts, settings.alpha, false_aborts, tuple(results), calibrated_bound())


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def text(figures: Figures) -> str:
    alpha = figures.alpha
    fa = figures.false_aborts
    lines = [
        f"The judge alone: {RATE} requests/s, reports every {1 / REPORTS_PER_SECOND:g} s, "
        f"5 % to the canary, alpha {alpha:g} (each test aborts at evidence ≥ {2 / alpha:g}), tolerance "
        f"{JudgeSettings().tolerance:g}; slow = above {figures.slow_above * 1000:g} ms "
        f"(the baseline's p90 bucket bound); seeded.",
        "",
        f"False aborts, identical canary, {fa.rollouts:,} rollouts of "
        f"{IDENTICAL.canary_requests:,} canary requests each: {len(fa.detections)} "
        f"({fa.share:.2%}; alpha {alpha:.0%}) {_by(fa)}",
        "",
        f"{'canary':<40} {'detected':>9} {'median':>8} {'p80':>8} {'max':>8}  (canary requests)",
    ]
    for result in figures.cases:
        lines.append(
            f"{result.case.name:<40} {result.share:>9.1%} {_n(result.quantile(0.5)):>8} "
            f"{_n(result.quantile(0.8)):>8} {_n(result.detections[-1] if result.detections else None):>8}"
            f"  {_by(result)}"
        )
    lines += [
        "",
        "Flagger's request-success-rate min 99 % per interval (exact binomial):",
        f"{'canary req/interval':>20} {'canary':<16} {'interval fails':>15} "
        + " ".join(f"{f'rollback t={t}, {p} steps':>26}" for t, p in FLAGGER_SETUPS),
    ]
    for row in flagger_rows():
        lines.append(
            f"{row['canary_requests_per_interval']:>20} {row['canary']:<16} "
            f"{row['interval_fails']:>15.1%} "
            + " ".join(f"{value:>26.1%}" for value in row["rolls_back"].values())
        )
    return "\n".join(lines)


def _by(result: Result) -> str:
    return ", ".join(f"{n} by {test}" for test, n in sorted(result.by_test.items()))


def to_json(figures: Figures) -> dict[str, Any]:
    def result(r: Result) -> dict[str, Any]:
        return {
            "case": r.case.name,
            "rollouts": r.rollouts,
            "detected": len(r.detections),
            "share": r.share,
            "median": r.quantile(0.5),
            "p80": r.quantile(0.8),
            "max": r.detections[-1] if r.detections else None,
            "by_test": r.by_test,
        }

    return {
        "rate": RATE,
        "reports_per_second": REPORTS_PER_SECOND,
        "alpha": figures.alpha,
        "slow_above": figures.slow_above,
        "false_aborts": result(figures.false_aborts),
        "cases": [result(r) for r in figures.cases],
        "flagger": flagger_rows(),
    }
