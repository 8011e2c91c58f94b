"""The rollout state machine, synchronously: each rule, in its order of precedence."""

from __future__ import annotations

from dataclasses import replace

import pytest

from proxy.control.rollout import machine
from proxy.control.rollout.judge import Verdict
from proxy.control.rollout.machine import Seen
from proxy.control.rollout.model import Reference, Rollout, RolloutSpec

NOT_WORSE = Verdict("not-worse", None, "not worse: 400 canary requests")
INCONCLUSIVE = Verdict("inconclusive", None, "inconclusive: 12 of 300 canary requests")
WORSE = Verdict("worse", "errors", "canary 5xx rate 4.1 % vs baseline 1.0 %")
SLOWER = Verdict("worse", "latency", "canary slow responses 30 % vs baseline 10 %")


def canary(step: int = 0, **spec: object) -> Rollout:
    rollout_spec = replace(RolloutSpec("canary", canary="canary", step_time=60.0), **spec)
    return Rollout(
        "web", rollout_spec, "stable", "canary", "progressing", "", step, 0.0, 0.0, 0.0, 7
    )


def blue_green(step: int = 1) -> Rollout:
    spec = RolloutSpec("blue-green", to="green", watch=300.0)
    return Rollout("shop", spec, "blue", "green", "progressing", "", step, 0.0, 0.0, 0.0, 7)


def test_start_sets_the_first_step() -> None:
    t = machine.start(canary())
    assert t.event == "started"
    assert t.weights == {"stable": 95, "canary": 5}
    assert "step 1/4 (5 %)" in t.rollout.reason


def test_blue_green_starts_with_prechecks_and_no_routing_change() -> None:
    t = machine.start(blue_green(step=0))
    assert (t.event, t.weights, t.switch_to) == ("started", None, None)


@pytest.mark.parametrize(
    ("now", "verdict", "unavailable", "event", "weights"),
    [
        (10.0, NOT_WORSE, 0.0, None, None),  # the step's time is not up
        (61.0, INCONCLUSIVE, 0.0, None, None),  # time up, too few requests: wait
        (61.0, NOT_WORSE, 0.0, "step", {"stable": 75, "canary": 25}),
        (1.0, WORSE, 0.0, "aborted", {"stable": 100, "canary": 0}),  # at once, any time
        (1.0, NOT_WORSE, 31.0, "aborted", {"stable": 100, "canary": 0}),  # no eligible backend
        (1.0, NOT_WORSE, 29.0, None, None),
        (601.0, INCONCLUSIVE, 0.0, "paused", None),  # inconclusive for max_step_time
    ],
)
def test_canary_rules(
    now: float,
    verdict: Verdict,
    unavailable: float,
    event: str | None,
    weights: dict[str, int] | None,
) -> None:
    t = machine.advance(canary(), Seen(now, verdict, unavailable))
    assert (t.event if t else None) == event
    assert (t.weights if t else None) == weights


def test_the_last_step_promotes() -> None:
    t = machine.advance(canary(step=2, steps=(5, 25, 50)), Seen(61.0, NOT_WORSE, 0.0))
    assert t is not None
    assert t.event == "promoted"
    assert t.weights == {"stable": 0, "canary": 100}
    assert t.rollout.phase == "promoted"


def test_a_step_at_100_percent_only_lasts_its_time() -> None:
    # No concurrent baseline to judge against: inconclusive does not hold it.
    t = machine.advance(canary(step=3), Seen(61.0, INCONCLUSIVE, 0.0))
    assert t is not None
    assert t.event == "promoted"


def test_abort_reason_names_the_step_and_the_evidence() -> None:
    t = machine.advance(canary(step=1), Seen(5.0, WORSE, 0.0))
    assert t is not None
    assert t.rollout.reason == "aborted at step 2/4 (25 %): canary 5xx rate 4.1 % vs baseline 1.0 %"
    assert (t.rollout.phase, t.rollout.cause) == ("aborted", "errors")


def test_latency_abort_is_counted_as_latency() -> None:
    t = machine.advance(canary(), Seen(5.0, SLOWER, 0.0))
    assert t is not None
    assert t.rollout.cause == "latency"


def test_inconclusive_can_abort_when_configured() -> None:
    t = machine.advance(canary(on_inconclusive="abort"), Seen(601.0, INCONCLUSIVE, 0.0))
    assert t is not None
    assert (t.event, t.rollout.cause) == ("aborted", "inconclusive")


@pytest.mark.parametrize("phase", ["paused", "promoted", "aborted"])
def test_only_a_progressing_rollout_advances(phase: str) -> None:
    rollout = replace(canary(), phase=phase)
    assert machine.advance(rollout, Seen(1000.0, WORSE, 1000.0)) is None


def test_blue_green_prechecks_are_not_the_judges() -> None:
    assert machine.advance(blue_green(step=0), Seen(1000.0, WORSE, 0.0)) is None


def test_blue_green_switches_after_passing_prechecks() -> None:
    reference = Reference(1000, 10, (900, 100))
    t = machine.after_prechecks(blue_green(step=0), 5.0, None, reference)
    assert (t.event, t.switch_to, t.rollout.step) == ("switched", "green", 1)
    assert t.rollout.reference == reference


def test_blue_green_failed_precheck_aborts_without_switching() -> None:
    failure = "pre-check GET /healthz on green/g1: status 500, expected 200"
    t = machine.after_prechecks(blue_green(step=0), 5.0, failure, Reference(0, 0, ()))
    assert (t.event, t.switch_to, t.rollout.cause) == ("aborted", None, "precheck")
    assert failure in t.rollout.reason


@pytest.mark.parametrize(
    ("now", "verdict", "event", "switch_to"),
    [
        (10.0, WORSE, "aborted", "blue"),  # switched back at once
        (301.0, NOT_WORSE, "promoted", None),
        (100.0, NOT_WORSE, None, None),
    ],
)
def test_blue_green_watch_window(
    now: float, verdict: Verdict, event: str | None, switch_to: str | None
) -> None:
    t = machine.advance(blue_green(), Seen(now, verdict, 0.0))
    assert (t.event if t else None) == event
    assert (t.switch_to if t else None) == switch_to


def test_people_commands() -> None:
    rollout = canary(step=1)
    paused = machine.pause(rollout, 3.0, "by alice").rollout
    assert paused.phase == "paused"
    assert "by alice" in paused.reason
    resumed = machine.resume(paused, 9.0, "bob").rollout
    assert (resumed.phase, resumed.step, resumed.step_started) == ("progressing", 1, 9.0)
    promoted = machine.promote(rollout, 4.0, "promoted by alice")
    assert promoted.weights == {"stable": 0, "canary": 100}
    aborted = machine.abort(rollout, 4.0, "manual", "by alice")
    assert aborted.weights == {"stable": 100, "canary": 0}
    assert aborted.rollout.cause == "manual"


def test_blue_green_abort_before_the_switch_moves_nothing() -> None:
    t = machine.abort(blue_green(step=0), 1.0, "manual", "by alice")
    assert (t.switch_to, t.weights) == (None, None)
