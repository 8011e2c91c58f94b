"""What the pool rollout endpoints show: the control service's PoolRolloutState rendered as
admin_api.pool_rollout_models.PoolRolloutView (camelCase, rounded for people, times in ISO 8601
UTC, webhook and hook URLs cut to scheme://host:port as the route rollouts' views do)."""

from __future__ import annotations

from admin_api import pool_rollout_models as m
from admin_api.rollout_models import VerdictView
from admin_api.rollout_views import evidence_value, finite, iso, origin
from proxy.control.rolling.model import RollSpec
from proxy.control.rolling.status import PoolRolloutState


def pool_rollout_view(state: PoolRolloutState) -> m.PoolRolloutView:
    rollout = state.rollout
    verdict = state.verdict
    return m.PoolRolloutView(
        pool=rollout.pool,
        mode=rollout.spec.mode,
        phase=rollout.phase,
        stage=rollout.stage,
        reason=rollout.reason,
        cause=rollout.cause,
        # The machine's index runs one past the last batch once every batch is done; people
        # count batches from 1 and never past the last.
        batch=min(rollout.batch + 1, len(rollout.batches)),
        batches=[list(group) for group in rollout.batches],
        new_batches=[list(group) for group in rollout.new_batches],
        replaced=list(rollout.replaced),
        reverting=list(rollout.reverting),
        started=iso(rollout.started),
        stage_started=iso(rollout.stage_started),
        updated=iso(rollout.updated),
        revision=state.revision,
        transition_revision=rollout.revision,
        verdict=None
        if verdict is None
        else VerdictView(outcome=verdict.outcome, test=verdict.test, reason=verdict.reason),
        evidence=m.PoolEvidenceView(
            evidence=evidence_value(state.errors),
            threshold=finite(state.threshold),
            new_requests=state.new_requests,
            new_errors=state.new_errors,
            old_requests=state.old_requests,
            old_errors=state.old_errors,
        ),
        hooks=[
            m.HookResultView(
                backend=hook.backend,
                action=hook.action,
                ok=hook.ok,
                reason=hook.reason,
                tail=list(hook.tail),
            )
            for hook in state.hooks
        ],
        spec=spec_view(rollout.spec),
    )


def spec_view(spec: RollSpec) -> m.PoolRolloutSpecView:
    hook = None
    if spec.mode == "in-place":
        hook = m.HookView(
            command=list(spec.hook_command) or None,
            url=origin(spec.hook_url),
            timeout=spec.hook_timeout,
        )
    return m.PoolRolloutSpecView(
        batch=spec.batch,
        drain_timeout=spec.drain_timeout,
        healthy_deadline=spec.healthy_deadline,
        min_healthy_time=spec.min_healthy_time,
        keep_old=spec.keep_old,
        auto_revert=spec.auto_revert,
        hook=hook,
        new_backends=[m.NewBackendView(name=name, url=url) for name, url in spec.new_backends],
        webhook=origin(spec.webhook),
    )
