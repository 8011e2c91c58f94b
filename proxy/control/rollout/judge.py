"""The judge: a sequential, anytime-valid test of "the new version is no worse than the old".

Theory of operation. Each report interval brings increments: requests and *events* (errors, or
slow responses) of the canary and of the concurrent baseline. Given the interval's request
counts and its total events n, the canary's events are x ~ Binomial(n, theta(rho)), where
s = canary requests / all requests, rho = canary rate / baseline rate and
theta(rho) = s*rho / (s*rho + 1 - s): conditioning on n makes the baseline's unknown rate drop
out (Lindon & Malek, NeurIPS 2022). The null is rho ≤ 1 ("no worse"); the alternative a
mixture, equal weights, over a fixed grid of rho from `tolerance` up (tolerance * 1, 4/3, 2, 4,
10, 100, and 1e6 for "the canary always fails"). Each grid point keeps its log likelihood ratio
of theta(rho_k) against theta(1) = s summed over intervals, x*ln(rho_k) - n*ln(1 + s*(rho_k - 1))
per interval; the evidence is their mean. That ratio grows with x, so under any rho ≤ 1 its
expectation is at most 1 (monotone likelihood ratio; sampling requests without replacement only
tightens it, Hoeffding 1963): the evidence is a nonnegative supermartingale starting at 1, and
by Ville's inequality P(it ever reaches 1/alpha) ≤ alpha, however often it is looked at. Two
tests look at once (errors, slow responses): each aborts at 2/alpha, so the pair's false-abort
probability stays at most alpha (union bound; `abort_threshold`), and the simulation
(`turnout bench judge`) measures it.

Why the null is rho ≤ 1 with alternatives from `tolerance`, not a null of rho ≤ tolerance:
power. At a 5 % split, baseline 1 % and canary 2 % (rho = 2) make 0.21 errors a canary request
with theta(2) = 0.095 against s = 0.05: KL = 0.0172 nats an error, 0.0036 a canary request, and
the mixture needs ln(7 * 100) = 6.55 nats: about 1,800 canary requests. Against a null of
rho ≤ 1.5 the same canary earns KL(theta(2) | theta(1.5)) = 0.0033 nats an error, 0.0007 a
canary request: about 9,400 canary requests (6,600 even with the one right alternative). The
price: a canary within the tolerance (1.2x) is found worse too, after many requests (a step
ends "not worse" long before that).

Blue-green has no concurrent baseline: `observe_reference` tests the new version's events,
Bernoulli with rate p, against p0 measured before the switch (null p ≤ p0), with the same grid
on the odds (p0's odds * rho_k: about rho_k * p0 for small rates, never reaching 1). The
arithmetic is the same with s = p0 and n = requests. p0 is an upper confidence bound
(`reference_rate`), so the reference's own noise adds at most its level to the false-abort bound.

A canary healthy for a long time drives the low-rho terms down (about 9 nats after 10,000
healthy canary requests at a 5 % split), so one that breaks later needs that much more evidence:
tens of canary requests when broken outright (simulated), not thousands.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

from proxy.control.rollout.model import JudgeSettings

Outcome = Literal["worse", "not-worse", "inconclusive"]
TestName = Literal["errors", "latency"]

GRID = (1.0, 4 / 3, 2.0, 4.0, 10.0, 100.0)
"""The alternatives' ratios, as multiples of the tolerance."""
BROKEN = 1e6
"""The last alternative: the new version fails (nearly) every request."""
MIN_CALIBRATION = 100
"""Old-version requests needed before its latency quantile is taken as the slow bound."""
LATENCY_WARMUP = 100
"""The new version's first requests are not judged for latency (`observe`'s `warmup`): a new
process answers its first requests slowly (connections to open, caches and lazy imports to
fill), which is not what a rollout asks about; measured, two slow answers among a canary's first
twelve were enough evidence to abort a healthy one. Errors have no warm-up: a broken canary
must be caught within its first requests. Skipping by request count, never by what the
requests did, keeps the test valid."""
MIN_SLOW = 0.005
"""Seconds: a response this fast is never slow. Below a few milliseconds, which of two
identical services answers in 1 ms or 2 ms is decided by where its process runs and when the
scheduler lets it (measured: identical loopback backends differ 2.4x in responses over 1 ms,
enough evidence to abort); no user feels the difference."""
UNKNOWN_REFERENCE = 0.5
"""`reference_rate` with no requests at all: nothing is known of the old version, so only a new
version failing most of its requests can be found worse (a bound of 1 would make the watch
window blind; no data is never failure, but a new version failing most requests is broken
whatever the old one did)."""
_MAX_LOG_EVIDENCE = 690.0
"""exp(690) ≈ 1e299: the evidence shown is capped there rather than overflowing to infinity."""


@dataclass(frozen=True, slots=True)
class Test:
    """One sequential test's state: its running log likelihood ratios (one per alternative of
    the mixture) and the counts it has seen."""

    log_ratios: tuple[float, ...] = ()
    canary_requests: int = 0
    canary_events: int = 0
    baseline_requests: int = 0
    baseline_events: int = 0

    @property
    def evidence(self) -> float:
        """The e-value: the mixture's likelihood ratio against "no worse" (1.0 at the start)."""
        if not self.log_ratios:
            return 1.0
        top = max(self.log_ratios)
        total = sum([math.exp(r - top) for r in self.log_ratios])
        log_evidence = top + math.log(total / len(self.log_ratios))
        return math.exp(min(log_evidence, _MAX_LOG_EVIDENCE))


def alternatives(tolerance: float) -> tuple[float, ...]:
    """The mixture's grid of rate ratios. Every one above 1 (a point at or below 1 would not be
    a supermartingale under the null)."""
    start = max(tolerance, 1.0)
    return (*(start * m for m in GRID), max(BROKEN, start * GRID[-1]))


@functools.lru_cache(maxsize=16)
def _terms(tolerance: float) -> tuple[tuple[float, float], ...]:
    """(ln rho, rho - 1) per alternative: computed once per tolerance, not every report."""
    return tuple((math.log(rho), rho - 1.0) for rho in alternatives(tolerance))


def _fold(test: Test, tolerance: float, share: float, events: int, total: int) -> tuple[float, ...]:
    """The log ratios after `events` of `total` Binomial trials, each event the new version's
    with probability theta(rho) = share·rho / (share·rho + 1 - share)."""
    terms = _terms(tolerance)
    ratios = test.log_ratios or (0.0,) * len(terms)
    if len(ratios) != len(terms):
        raise ValueError(f"the test has {len(ratios)} alternatives, the grid {len(terms)}")
    return tuple(
        [
            r + events * log_rho - total * math.log1p(share * excess)
            for r, (log_rho, excess) in zip(ratios, terms, strict=True)
        ]
    )


def observe(
    test: Test,
    tolerance: float,
    canary_requests: int,
    canary_events: int,
    baseline_requests: int,
    baseline_events: int,
    warmup: int = 0,
) -> Test:
    """Concurrent baseline: fold in one report interval's *increments*. Under "no worse", an
    event (error, slow response) falls in the canary with probability set by the canary's share
    of the interval's requests. Until the canary has answered `warmup` requests in all, the
    counts grow but the evidence does not move."""
    # Counters never go backwards, but a worker restarting between two reports may make an
    # increment look negative: that interval says nothing.
    cr, ce = max(canary_requests, 0), max(canary_events, 0)
    br, be = max(baseline_requests, 0), max(baseline_events, 0)
    ratios = test.log_ratios
    events = ce + be
    # With one side silent, every event is that side's under any rho: no evidence either way.
    if cr and br and events and test.canary_requests >= warmup:
        ratios = _fold(test, tolerance, cr / (cr + br), ce, events)
    return Test(
        ratios,
        test.canary_requests + cr,
        test.canary_events + ce,
        test.baseline_requests + br,
        test.baseline_events + be,
    )


def observe_reference(
    test: Test,
    tolerance: float,
    reference_rate: float,
    requests: int,
    events: int,
    warmup: int = 0,
) -> Test:
    """Fixed reference (blue-green watch window): fold in increments of the new version alone,
    against the old version's rate `reference_rate` (an upper confidence bound, see
    `reference_rate`); `warmup` as for `observe`."""
    n = max(requests, 0)
    x = min(max(events, 0), n)
    ratios = test.log_ratios
    # A reference of 1 (or more) cannot be exceeded: nothing to learn.
    if test.canary_requests < warmup:
        pass
    elif n and 0.0 < reference_rate < 1.0:
        ratios = _fold(test, tolerance, reference_rate, x, n)
    elif n and reference_rate <= 0.0:
        raise ValueError("reference_rate must be above 0 (an upper confidence bound is)")
    return Test(
        ratios,
        test.canary_requests + n,
        test.canary_events + x,
        test.baseline_requests,
        test.baseline_events,
    )


def reference_rate(requests: int, events: int, alpha: float) -> float:
    """An upper confidence bound on the old version's event rate from a fixed sample.

    The Chernoff bound: the rate p above events/requests where requests * KL(events/requests ‖ p)
    = ln(1/alpha), so P(p below the true rate) ≤ alpha. With no events it is exactly
    Clopper-Pearson's 1 - alpha^(1/requests). With no requests at all: UNKNOWN_REFERENCE."""
    if requests <= 0:
        return UNKNOWN_REFERENCE
    n = requests
    k = min(max(events, 0), n)
    if k == n:
        return 1.0
    target = math.log(1.0 / alpha) / n
    observed = k / n
    low, high = observed, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        if _bernoulli_kl(observed, middle) < target:
            low = middle
        else:
            high = middle
    return high


def _bernoulli_kl(q: float, p: float) -> float:
    """KL(Bernoulli(q) ‖ Bernoulli(p)), 0 < p < 1."""
    if p >= 1.0:
        return math.inf
    kl = 0.0
    if q > 0.0:
        kl += q * math.log(q / p)
    if q < 1.0:
        kl += (1.0 - q) * math.log((1.0 - q) / (1.0 - p))
    return kl


def slow_bound(bounds: tuple[float, ...], buckets: tuple[int, ...], quantile: float) -> int | None:
    """The histogram bucket index whose upper bound is the old version's `quantile` latency
    (never below MIN_SLOW): responses in later buckets count as slow. None while the old version has answered too few
    requests to say (fewer than MIN_CALIBRATION), or when every response is in the last bucket."""
    if len(buckets) != len(bounds) + 1:
        raise ValueError(f"{len(bounds)} bounds need {len(bounds) + 1} buckets, not {len(buckets)}")
    total = sum(buckets)
    if total < MIN_CALIBRATION:
        return None
    cumulative = 0
    for index, count in enumerate(buckets):
        cumulative += count
        if cumulative >= quantile * total:
            while index < len(bounds) and bounds[index] < MIN_SLOW:
                index += 1
            # The last bucket has no upper bound: nothing could count as slower.
            return index if index < len(bounds) else None
    return None


def slow_count(buckets: tuple[int, ...] | list[int], index: int) -> int:
    """Responses above bucket `index` (per-bucket counts, not cumulative)."""
    return sum(buckets[index + 1 :])


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    test: TestName | None
    """Which test found the new version worse (None unless worse)."""
    reason: str
    """In words, with the figures, e.g. "canary 5xx rate 4.1 % vs baseline 1.0 %, evidence
    312 ≥ 100 after 640 canary requests"."""


TESTS = 2
"""The error test and the latency test share alpha."""

MARGINS: dict[TestName, float] = {"errors": 0.001, "latency": 0.01}
"""How far above the old version's rate the new version's must be (observed, in absolute terms)
before evidence aborts: 0.1 percentage point of errors, 1 point of slow responses. The evidence
finds any consistent difference given enough requests, however small: measured, a canary
backend that answered 0.03 % of its requests slowly where its twin answered none (two nginx
processes on one busy core) reached 1,805 after 35,051 canary requests. A condition added to
an abort only ever removes aborts, so the false-abort bound stands."""


def abort_threshold(settings: JudgeSettings) -> float:
    """The evidence at which one test aborts: TESTS/alpha. Either test alone would keep its
    false aborts at most alpha with 1/alpha; two tests looking at once could each raise a false
    alarm, so each gets half of alpha (the union bound): the pair stays at most alpha."""
    return TESTS / settings.alpha


def verdict(
    errors: Test,
    latency: Test,
    step_requests: int,
    settings: JudgeSettings,
    names: tuple[str, str] = ("canary", "baseline"),
) -> Verdict:
    """Worse as soon as either test's evidence reaches its threshold (see `threshold`); not
    worse once the new version answered at least settings.min_requests in the step with neither
    test there; else inconclusive (no data is never failure). `names`: what the reasons call
    the new and the old side (a pool rollout's are backends, not a canary and a baseline)."""
    threshold = abort_threshold(settings)
    error_evidence, latency_evidence = errors.evidence, latency.evidence
    canary = names[0]
    if error_evidence >= threshold and _material(errors, MARGINS["errors"]):
        reason = _worse("5xx rate", errors, error_evidence, threshold, names)
        return Verdict("worse", "errors", reason)
    if latency_evidence >= threshold and _material(latency, MARGINS["latency"]):
        reason = _worse("slow responses", latency, latency_evidence, threshold, names)
        return Verdict("worse", "latency", reason)
    if step_requests >= settings.min_requests:
        return Verdict(
            "not-worse",
            None,
            f"not worse: evidence {_figure(error_evidence)} (errors) and "
            f"{_figure(latency_evidence)} (latency) < {_figure(threshold)} after "
            f"{step_requests:,} {canary} requests this step",
        )
    return Verdict(
        "inconclusive",
        None,
        f"inconclusive: {step_requests:,} of {settings.min_requests:,} {canary} requests this step",
    )


def _material(test: Test, margin: float) -> bool:
    """Whether the new version's observed rate is above the old one's by at least `margin`.
    Blue-green's reference is a bound, not a running count: its own test stands alone."""
    if not test.baseline_requests or not test.canary_requests:
        return True
    canary = test.canary_events / test.canary_requests
    return canary - test.baseline_events / test.baseline_requests >= margin


def _worse(what: str, test: Test, evidence: float, threshold: float, names: tuple[str, str]) -> str:
    tail = f"evidence {_figure(evidence)} ≥ {_figure(threshold)}"
    canary = _percent(test.canary_events, test.canary_requests)
    if not test.baseline_requests:
        # Blue-green: the reference is a bound from before the switch, not a running count.
        return f"new version {what} {canary}, {tail} after {test.canary_requests:,} requests"
    baseline = _percent(test.baseline_events, test.baseline_requests)
    new, old = names
    return (
        f"{new} {what} {canary} vs {old} {baseline}, {tail} after "
        f"{test.canary_requests:,} {new} requests"
    )


def _percent(events: int, requests: int) -> str:
    share = 100.0 * events / requests if requests else 0.0
    return f"{share:.1f} %" if share >= 1.0 or share == 0.0 else f"{share:.2f} %"


def _figure(value: float) -> str:
    if value >= 1e6:
        return f"{value:.1e}"
    if value >= 1000.0:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value >= 0.01 else "< 0.01"
