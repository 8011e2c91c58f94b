"""The judge's statistics, exactly, on small cases: the evidence, the slow bound, the reference
bound and the verdict. (Its behaviour over many simulated rollouts: tests/benchmarks/
test_judge_sim.py.)"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from proxy.control.rollout.judge import (
    UNKNOWN_REFERENCE,
    alternatives,
    observe,
    observe_reference,
    reference_rate,
    slow_bound,
    verdict,
)
from proxy.control.rollout.judge import Test as JudgeTest
from proxy.control.rollout.model import JudgeSettings

TOLERANCE = 1.5


def mixture(factors: list[float]) -> float:
    return sum(factors) / len(factors)


def test_evidence_starts_at_one() -> None:
    assert JudgeTest().evidence == 1.0


def test_grid_starts_at_the_tolerance_and_ends_at_always_failing() -> None:
    assert alternatives(1.5) == pytest.approx((1.5, 2.0, 3.0, 6.0, 15.0, 150.0, 1e6))
    # Never a point at or below 1: it would not be a supermartingale under "no worse".
    assert min(alternatives(0.5)) == 1.0


def test_one_canary_error_at_a_5_percent_share_raises_evidence_by_theta_over_share() -> None:
    s = 0.05
    # theta(rho)/s = rho / (srho + 1 - s) for each alternative, averaged.
    expected = mixture([rho / (s * rho + 1 - s) for rho in alternatives(TOLERANCE)])
    test = observe(JudgeTest(), TOLERANCE, 5, 1, 95, 0)
    assert test.evidence == pytest.approx(expected)
    assert expected == pytest.approx(8.21, abs=0.01)  # by hand: 57.47 / 7
    assert (test.canary_requests, test.canary_events) == (5, 1)
    assert (test.baseline_requests, test.baseline_events) == (95, 0)


def test_baseline_errors_lower_the_evidence() -> None:
    s = 0.05
    expected = mixture([1 / (s * rho + 1 - s) for rho in alternatives(TOLERANCE)])
    one = observe(JudgeTest(), TOLERANCE, 5, 0, 95, 1)
    assert one.evidence == pytest.approx(expected)
    assert one.evidence < 1.0
    assert observe(one, TOLERANCE, 5, 0, 95, 3).evidence < one.evidence


def test_errors_in_proportion_to_the_split_are_not_evidence_of_worse() -> None:
    test = JudgeTest()
    for _ in range(50):
        test = observe(test, TOLERANCE, 10, 1, 90, 9)
    assert test.evidence < 0.01


@pytest.mark.parametrize(
    "increments",
    [
        (0, 0, 0, 0),  # an idle report
        (10, 0, 90, 0),  # requests but no events
        (0, 0, 90, 3),  # no canary requests: every event is the baseline's under any rho
        (10, 2, 0, 0),  # no baseline requests: likewise the canary's
        (-5, -1, -20, -2),  # a worker restarted: the interval says nothing
    ],
)
def test_reports_without_information_leave_the_evidence(
    increments: tuple[int, int, int, int],
) -> None:
    before = observe(JudgeTest(), TOLERANCE, 5, 1, 95, 0)
    after = observe(before, TOLERANCE, *increments)
    assert after.log_ratios == before.log_ratios
    assert after.evidence == before.evidence
    clamped = tuple(max(n, 0) for n in increments)
    assert after.canary_requests == before.canary_requests + clamped[0]
    assert after.baseline_events == before.baseline_events + clamped[3]


def test_zero_increments_change_nothing() -> None:
    before = observe(JudgeTest(), TOLERANCE, 5, 1, 95, 0)
    assert observe(before, TOLERANCE, 0, 0, 0, 0) == before
    assert observe_reference(before, TOLERANCE, 0.01, 0, 0) == before


def test_a_broken_canary_crosses_100_within_a_few_requests() -> None:
    test = JudgeTest()
    for _ in range(3):  # 3 canary requests, all failing, 57 baseline requests, none failing
        test = observe(test, TOLERANCE, 1, 1, 19, 0)
    assert test.evidence >= 100


def test_evidence_is_capped_not_infinite() -> None:
    test = observe(JudgeTest(), TOLERANCE, 100_000, 100_000, 1_900_000, 0)
    assert math.isfinite(test.evidence)
    assert test.evidence > 1e290


def test_a_reference_event_raises_evidence_by_the_alternatives_rate_over_p0() -> None:
    p0 = 0.01
    expected = mixture([rho / (p0 * rho + 1 - p0) for rho in alternatives(TOLERANCE)])
    test = observe_reference(JudgeTest(), TOLERANCE, p0, 1, 1)
    assert test.evidence == pytest.approx(expected)
    assert (test.canary_requests, test.canary_events, test.baseline_requests) == (1, 1, 0)
    quiet = observe_reference(JudgeTest(), TOLERANCE, p0, 100, 0)
    assert quiet.evidence == pytest.approx(
        mixture([(1 / (p0 * rho + 1 - p0)) ** 100 for rho in alternatives(TOLERANCE)])
    )


def test_a_reference_of_one_can_never_be_exceeded() -> None:
    test = observe_reference(JudgeTest(), TOLERANCE, 1.0, 50, 50)
    assert test.evidence == 1.0
    assert test.canary_requests == 50


def test_reference_rate_with_no_events_is_clopper_pearson() -> None:
    for n in (1, 10, 1000):
        assert reference_rate(n, 0, 0.01) == pytest.approx(1 - 0.01 ** (1 / n), rel=1e-9)


def test_reference_rate_is_an_upper_bound_that_tightens_with_data() -> None:
    assert reference_rate(0, 0, 0.01) == UNKNOWN_REFERENCE
    assert reference_rate(100, 100, 0.01) == 1.0
    # Above the observed rate, falling with more requests at the same rate.
    bounds = [reference_rate(n, n // 100, 0.01) for n in (100, 1_000, 10_000, 100_000)]
    assert all(b > 0.01 for b in bounds)
    assert bounds == sorted(bounds, reverse=True)
    assert bounds[-1] < 0.0111
    # Rising with events at the same requests, and with a smaller alpha.
    by_events = [reference_rate(1000, k, 0.01) for k in (0, 1, 10, 100, 500, 999)]
    assert by_events == sorted(by_events)
    assert reference_rate(1000, 10, 0.001) > reference_rate(1000, 10, 0.05)


BOUNDS = (0.01, 0.05, 0.1, 0.5)


def test_the_slow_bound_is_never_below_a_few_milliseconds() -> None:
    bounds = (0.001, 0.0025, 0.005, 0.01)
    assert slow_bound(bounds, (95, 3, 1, 1, 0), 0.9) == 2  # p90 is 1 ms: slow above 5 ms
    assert slow_bound(bounds, (0, 0, 10, 85, 5), 0.9) == 3  # p90 above the floor: as found


@pytest.mark.parametrize(
    ("buckets", "quantile", "expected"),
    [
        ((10, 40, 40, 9, 1), 0.9, 2),  # 90 % at or below 0.1 s
        ((10, 40, 39, 10, 1), 0.9, 3),  # 89 %: the next bound
        ((100, 0, 0, 0, 0), 0.9, 0),
        ((50, 50, 0, 0, 0), 0.5, 0),  # exactly the quantile
        ((10, 40, 40, 9), 0.9, "error"),  # one bucket short
        ((10, 40, 40, 8, 1), 0.9, None),  # 99 requests: too few to say
        ((0, 0, 0, 0, 100), 0.9, None),  # all in the last bucket: no bound to be slower than
        ((0, 0, 0, 50, 50), 0.9, None),
    ],
)
def test_slow_bound(buckets: tuple[int, ...], quantile: float, expected: int | str | None) -> None:
    if expected == "error":
        with pytest.raises(ValueError, match="5 buckets"):
            slow_bound(BOUNDS, buckets, quantile)
    else:
        assert slow_bound(BOUNDS, buckets, quantile) == expected


def counts(canary: tuple[int, int], baseline: tuple[int, int], log_evidence: float) -> JudgeTest:
    """A test with the given counts whose evidence is exp(log_evidence)."""
    return JudgeTest((log_evidence,), *canary, *baseline)


SETTINGS = JudgeSettings(alpha=0.01, min_requests=300)
QUIET = counts((640, 1), (12_160, 120), 0.0)


@pytest.mark.parametrize(
    ("errors", "latency", "step", "outcome", "test", "reason"),
    [
        (
            counts((640, 26), (12_160, 122), math.log(312)),
            QUIET,
            120,
            "worse",
            "errors",
            "canary 5xx rate 4.1 % vs baseline 1.0 %, evidence 312 ≥ 200 after 640 canary requests",
        ),
        (
            QUIET,
            counts((1_000, 230), (19_000, 1_919), math.log(250)),
            1_000,
            "worse",
            "latency",
            "canary slow responses 23.0 % vs baseline 10.1 %, evidence 250 ≥ 200 after "
            "1,000 canary requests",
        ),
        (  # both worse: errors first
            counts((640, 26), (12_160, 122), math.log(312)),
            counts((640, 230), (12_160, 1_230), math.log(5000)),
            640,
            "worse",
            "errors",
            "canary 5xx rate 4.1 % vs baseline 1.0 %, evidence 312 ≥ 200 after 640 canary requests",
        ),
        (  # blue-green: no running baseline
            counts((200, 9), (0, 0), math.log(250)),
            JudgeTest(),
            200,
            "worse",
            "errors",
            "new version 5xx rate 4.5 %, evidence 250 ≥ 200 after 200 requests",
        ),
        (
            counts((640, 26), (12_160, 122), math.log(99.9)),
            QUIET,
            120,
            "inconclusive",
            None,
            "inconclusive: 120 of 300 canary requests this step",
        ),
        (
            JudgeTest(),
            JudgeTest(),
            0,
            "inconclusive",
            None,
            "inconclusive: 0 of 300 canary requests this step",
        ),
        (
            counts((640, 26), (12_160, 122), math.log(99.9)),
            counts((640, 20), (12_160, 1_230), math.log(0.5)),
            300,
            "not-worse",
            None,
            "not worse: evidence 99.9 (errors) and 0.5 (latency) < 200 after 300 canary "
            "requests this step",
        ),
    ],
)
def test_verdict(
    errors: JudgeTest, latency: JudgeTest, step: int, outcome: str, test: str | None, reason: str
) -> None:
    decision = verdict(errors, latency, step, SETTINGS)
    assert (decision.outcome, decision.test, decision.reason) == (outcome, test, reason)


def test_the_threshold_follows_alpha() -> None:
    errors = counts((640, 26), (12_160, 122), math.log(50))
    assert verdict(errors, JudgeTest(), 0, JudgeSettings(alpha=0.05)).outcome == "worse"
    assert verdict(errors, JudgeTest(), 0, JudgeSettings(alpha=0.01)).outcome == "inconclusive"


def test_a_warmup_holds_the_evidence_but_not_the_counts() -> None:
    # Two slow answers among a canary's first requests: with no warm-up that alone is evidence.
    cold = observe(JudgeTest(), 1.5, 12, 2, 228, 0)
    assert cold.evidence > 10
    warming = observe(JudgeTest(), 1.5, 12, 2, 228, 0, warmup=100)
    assert warming.evidence == 1.0
    assert (warming.canary_requests, warming.canary_events) == (12, 2)
    # Past the warm-up, the same interval counts as before.
    warm = observe(replace(warming, canary_requests=100), 1.5, 12, 2, 228, 0, warmup=100)
    assert warm.evidence == pytest.approx(cold.evidence)


def test_a_warmup_holds_the_reference_test_too() -> None:
    assert observe_reference(JudgeTest(), 1.5, 0.01, 10, 5, warmup=100).evidence == 1.0
    assert observe_reference(JudgeTest(), 1.5, 0.01, 10, 5).evidence > 1.0


def test_evidence_of_a_difference_too_small_to_matter_does_not_abort() -> None:
    # 11 of 35,051 canary responses slow (0.03 %), none of the baseline's: strong evidence,
    # but 0.03 points is below the latency margin (1 point). The same evidence with a real
    # difference aborts.
    tiny = counts((35_051, 11), (35_000, 0), math.log(1805))
    assert verdict(JudgeTest(), tiny, 0, SETTINGS).outcome == "inconclusive"
    real = counts((35_051, 700), (35_000, 0), math.log(1805))
    assert verdict(JudgeTest(), real, 0, SETTINGS).outcome == "worse"
    # Errors have a smaller margin (0.1 point): 0.03 % new errors are not enough either.
    assert verdict(tiny, JudgeTest(), 0, SETTINGS).outcome == "inconclusive"
