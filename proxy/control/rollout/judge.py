"""The judge: a sequential, anytime-valid test of "the new version is no worse than the old".

(Stub: interface fixed by the lead; implementation by the judge helper.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from proxy.control.rollout.model import JudgeSettings

Outcome = Literal["worse", "not-worse", "inconclusive"]
TestName = Literal["errors", "latency"]


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
        raise NotImplementedError


def observe(
    test: Test,
    tolerance: float,
    canary_requests: int,
    canary_events: int,
    baseline_requests: int,
    baseline_events: int,
) -> Test:
    """Concurrent baseline: fold in one report interval's *increments*. Under "no worse", an
    event (error, slow response) falls in the canary with probability set by the canary's share
    of the interval's requests."""
    raise NotImplementedError


def observe_reference(
    test: Test, tolerance: float, reference_rate: float, requests: int, events: int
) -> Test:
    """Fixed reference (blue-green watch window): fold in increments of the new version alone,
    against the old version's rate `reference_rate` (an upper confidence bound, see
    `reference_rate`)."""
    raise NotImplementedError


def reference_rate(requests: int, events: int, alpha: float) -> float:
    """An upper confidence bound on the old version's event rate from a fixed sample."""
    raise NotImplementedError


def slow_bound(bounds: tuple[float, ...], buckets: tuple[int, ...], quantile: float) -> int | None:
    """The histogram bucket index whose upper bound is the old version's `quantile` latency:
    responses in later buckets count as slow. None while the old version has answered too few
    requests to say (fewer than MIN_CALIBRATION), or when every response is in the last bucket."""
    raise NotImplementedError


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


def verdict(errors: Test, latency: Test, step_requests: int, settings: JudgeSettings) -> Verdict:
    """Worse as soon as either test's evidence reaches 1/alpha; not worse once the new version
    answered at least settings.min_requests in the step with neither test there; else
    inconclusive (no data is never failure)."""
    raise NotImplementedError
