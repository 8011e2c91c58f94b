"""The rollouts in /metrics: phase, step, the judge's evidence and aborts, per route; phase,
batch and evidence per pool.

Made at scrape time from the control service's `rollouts()` (admin_api.metrics calls this), like
the instance's other families. Label values are route names from the configuration and closed
sets (phases, tests, abort causes), never anything a request carries.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import get_args

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from admin_api.rollout_views import finite
from proxy.control.rolling.model import Cause
from proxy.control.rolling.status import PoolRolloutState
from proxy.control.rollout.judge import TestName
from proxy.control.rollout.model import AbortCause, Phase
from proxy.control.rollout.status import RolloutState

PHASES: tuple[Phase, ...] = get_args(Phase)
CAUSES: tuple[AbortCause, ...] = get_args(AbortCause)
TESTS: tuple[TestName, ...] = get_args(TestName)
POOL_CAUSES: tuple[str, ...] = tuple(
    cause for part in get_args(Cause) for cause in (get_args(part) or (part,))
)
"""A pool rollout's abort causes: the route rollouts' and the pool's own (hook, drain-timeout,
unhealthy)."""


def rollout_families(
    states: Sequence[RolloutState], aborts_since_start: Mapping[tuple[str, str], int]
) -> Iterator[Metric]:
    phase = GaugeMetricFamily(
        "turnout_rollout_phase",
        "1 for the phase each route's rollout is in (progressing, paused, promoted, aborted).",
        labels=["route", "phase"],
    )
    step = GaugeMetricFamily(
        "turnout_rollout_step",
        "The rollout's step: canary, the index into its steps; blue-green, 0 pre-checks, "
        "1 watching the new colour.",
        labels=["route"],
    )
    evidence = GaugeMetricFamily(
        "turnout_rollout_evidence",
        "The judge's evidence that the new version is worse (an e-value: 1 at the start; "
        "the rollout aborts when one reaches 2/alpha, so the pair keeps false aborts at most alpha).",
        labels=["route", "test"],
    )
    # The controller counts every abort since the instance started (a later rollout of the
    # route replaces the aborted one, but never lowers this counter).
    aborts = CounterMetricFamily(
        "turnout_rollout_aborts",
        "Rollouts aborted, by route and cause.",
        labels=["route", "reason"],
    )
    for state in sorted(states, key=lambda state: state.rollout.route):
        rollout = state.rollout
        route = rollout.route
        for name in PHASES:
            phase.add_metric([route, name], int(rollout.phase == name))
        step.add_metric([route], rollout.step)
        tests = {"errors": state.evidence.errors, "latency": state.evidence.latency}
        for test in TESTS:
            evidence.add_metric([route, test], finite(tests[test].evidence))
        # Every cause from 0, so the first abort is an increase a rate() can see.
        for cause in CAUSES:
            aborts.add_metric([route, cause], aborts_since_start.get((route, cause), 0))
    yield from (phase, step, evidence, aborts)


def pool_rollout_families(
    states: Sequence[PoolRolloutState], aborts_since_start: Mapping[tuple[str, str], int]
) -> Iterator[Metric]:
    phase = GaugeMetricFamily(
        "turnout_pool_rollout_phase",
        "1 for the phase each pool's rollout is in (progressing, paused, promoted, aborted).",
        labels=["pool", "phase"],
    )
    batch = GaugeMetricFamily(
        "turnout_pool_rollout_batch",
        "The batch each pool's rollout is at, counted from 1.",
        labels=["pool"],
    )
    evidence = GaugeMetricFamily(
        "turnout_pool_rollout_evidence",
        "The judge's evidence that the replaced (surge: new) backends fail more often than the "
        "others of the pool (an e-value: 1 at the start; the batch fails when it reaches "
        "2/alpha, as a route rollout's tests do).",
        labels=["pool"],
    )
    aborts = CounterMetricFamily(
        "turnout_pool_rollout_aborts",
        "Pool rollouts aborted, by pool and cause.",
        labels=["pool", "reason"],
    )
    for state in sorted(states, key=lambda state: state.rollout.pool):
        rollout = state.rollout
        pool = rollout.pool
        for name in PHASES:
            phase.add_metric([pool, name], int(rollout.phase == name))
        batch.add_metric([pool], min(rollout.batch + 1, len(rollout.batches)))
        evidence.add_metric([pool], finite(state.errors.evidence))
        for cause in POOL_CAUSES:
            aborts.add_metric([pool, cause], aborts_since_start.get((pool, cause), 0))
    yield from (phase, batch, evidence, aborts)
