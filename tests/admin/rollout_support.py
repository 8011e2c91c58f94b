"""Rollout values as the control service answers with them, built directly: the rendering tests
(API view, /metrics, CLI text) need no running rollout for them.

The judge's arithmetic is not what those tests check: `known_evidence` fixes each test's
evidence to exp(log_ratios[0]) (1.0 without any), so a figure shown can be predicted exactly.
"""

from __future__ import annotations

import math

import pytest

from proxy.control.rollout.judge import Test, Verdict
from proxy.control.rollout.model import JudgeSettings, Phase, Precheck, Rollout, RolloutSpec
from proxy.control.rollout.status import Evidence, RolloutState

STARTED = 1_700_000_000.0


@pytest.fixture
def known_evidence(monkeypatch: pytest.MonkeyPatch) -> None:
    def evidence(test: Test) -> float:
        if not test.log_ratios:
            return 1.0
        try:
            return math.exp(test.log_ratios[0])
        except OverflowError:
            return math.inf  # as a judge's likelihood ratio may end up

    monkeypatch.setattr(Test, "evidence", property(evidence))


def canary_state(
    phase: Phase = "progressing", step: int = 1, cause: str | None = None, route: str = "web"
) -> RolloutState:
    spec = RolloutSpec(
        strategy="canary",
        canary="canary",
        steps=(5, 25, 50, 100),
        step_time=120.0,
        judge=JudgeSettings(alpha=0.01, min_requests=300),
        webhook="https://hooks.example.test/services/T000/SECRET?token=x",
    )
    rollout = Rollout(
        route=route,
        spec=spec,
        baseline="stable",
        new="canary",
        phase=phase,
        reason="step 2 (25 %): waiting for 300 canary requests (120 so far)",
        step=step,
        started=STARTED,
        step_started=STARTED + 120,
        updated=STARTED + 120.5,
        revision=40,
        cause=cause,  # type: ignore[arg-type]
    )
    errors = Test((math.log(8.0),), 640, 26, 4000, 40)
    latency = Test((), 640, 70, 4000, 400)
    return RolloutState(
        revision=41,
        rollout=rollout,
        evidence=Evidence(errors, latency, 0.25, 120, 360),
        verdict=Verdict("inconclusive", None, "120 of 300 canary requests in this step"),
        weights=(("stable", 75), ("canary", 25)),
        active=None,
    )


def blue_green_state(step: int = 1) -> RolloutState:
    spec = RolloutSpec(
        strategy="blue-green",
        to="green",
        watch=300.0,
        prechecks=(Precheck("/healthz", headers=(("host", "shop"),)),),
    )
    rollout = Rollout(
        route="shop",
        spec=spec,
        baseline="blue",
        new="green",
        phase="progressing",
        reason="watching green for 300 s",
        step=step,
        started=STARTED,
        step_started=STARTED + 2,
        updated=STARTED + 2,
        revision=7,
    )
    return RolloutState(
        revision=7,
        rollout=rollout,
        evidence=Evidence(Test(), Test(), None, 0, 0),
        verdict=Verdict("inconclusive", None, "no requests yet"),
        weights=(),
        active="green",
    )
