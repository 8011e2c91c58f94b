"""What the rollout endpoints show: the control service's RolloutState rendered as
admin_api.rollout_models.RolloutView (camelCase, rounded for people, times in ISO 8601 UTC as
admin_api.views renders them)."""

from __future__ import annotations

import math
import sys
import urllib.parse
from datetime import UTC, datetime

from admin_api import rollout_models as m
from proxy.control.rollout.judge import Test, abort_threshold
from proxy.control.rollout.status import RolloutState

RATE_DIGITS = 6


def rollout_view(state: RolloutState) -> m.RolloutView:
    rollout = state.rollout
    spec = rollout.spec
    canary = spec.strategy == "canary"
    evidence = state.evidence
    settings = spec.judge
    threshold = finite(abort_threshold(settings))
    errors, latency = evidence.errors, evidence.latency
    return m.RolloutView(
        route=rollout.route,
        strategy=spec.strategy,
        phase=rollout.phase,
        reason=rollout.reason,
        cause=rollout.cause,
        baseline=rollout.baseline,
        candidate=rollout.new,
        step=rollout.step,
        steps=list(spec.steps) if canary else None,
        weight=rollout.weight,
        weights=dict(state.weights) if canary else None,
        active=state.active,
        started=iso(rollout.started),
        step_started=iso(rollout.step_started),
        updated=iso(rollout.updated),
        revision=state.revision,
        transition_revision=rollout.revision,
        verdict=m.VerdictView(
            outcome=state.verdict.outcome, test=state.verdict.test, reason=state.verdict.reason
        ),
        evidence=m.EvidenceView(
            errors=m.ErrorsEvidence(
                evidence=evidence_value(errors),
                threshold=threshold,
                canary_requests=errors.canary_requests,
                canary_errors=errors.canary_events,
                baseline_requests=errors.baseline_requests,
                baseline_errors=errors.baseline_events,
                canary_rate=rate(errors.canary_events, errors.canary_requests),
                baseline_rate=rate(errors.baseline_events, errors.baseline_requests),
            ),
            latency=m.LatencyEvidence(
                evidence=evidence_value(latency),
                threshold=threshold,
                canary_requests=latency.canary_requests,
                canary_slow=latency.canary_events,
                baseline_requests=latency.baseline_requests,
                baseline_slow=latency.baseline_events,
                canary_rate=rate(latency.canary_events, latency.canary_requests),
                baseline_rate=rate(latency.baseline_events, latency.baseline_requests),
                slow_above=evidence.slow_above,
            ),
            step_requests=evidence.step_requests,
            step_baseline_requests=evidence.step_baseline_requests,
            min_requests=settings.min_requests,
        ),
        judge=m.JudgeView(
            alpha=settings.alpha,
            tolerance=settings.tolerance,
            latency_tolerance=settings.latency_tolerance,
            latency_quantile=settings.latency_quantile,
            min_requests=settings.min_requests,
        ),
        step_time=spec.step_time,
        max_step_time=spec.max_step_time,
        on_inconclusive=spec.on_inconclusive,
        no_eligible_timeout=spec.no_eligible_timeout,
        watch=None if canary else spec.watch,
        prechecks=0 if canary else len(spec.prechecks),
        webhook=origin(spec.webhook),
    )


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


def evidence_value(test: Test) -> float:
    """The e-value, rounded for people and always a JSON number."""
    return finite(float(f"{test.evidence:.6g}"))


def finite(value: float) -> float:
    # A likelihood ratio can overflow to inf, which JSON cannot carry (and NaN, which says
    # nothing); past the threshold only "reached" matters, so the largest float stands for it.
    if math.isnan(value):
        return 0.0
    return min(value, sys.float_info.max)


def rate(events: int, requests: int) -> float | None:
    return round(events / requests, RATE_DIGITS) if requests else None


def origin(url: str | None) -> str | None:
    """scheme://host[:port] of a URL: enough to say where notifications go, without the path
    or query (a Slack-style webhook's secret) or credentials."""
    if url is None:
        return None
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
