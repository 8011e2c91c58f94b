"""The pool rollout endpoints' own part, without a turnout: the spec a start's body makes over
the pool's defaults, what a bad body names (422 before the control service is asked), and the
status view of in-place and surge rollouts."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pool_rollout_support import in_place_state, surge_state
from pydantic import ValidationError
from rollout_support import known_evidence

from admin_api.pool_rollout_models import PoolRolloutStart
from admin_api.pool_rollout_views import pool_rollout_view
from admin_api.pool_rollouts import spec_from
from admin_api.problems import refusal
from proxy.control.rolling.model import RollSpec
from proxy.control.rollout.model import JudgeSettings

__all__ = ["known_evidence"]  # the fixture, used by name

DEFAULTS = RollSpec(mode="in-place", hook_command=("./deploy.sh",), hook_timeout=60.0)

# Requests: the spec a body makes


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, DEFAULTS),
        ({"mode": None, "batch": None, "hook": None, "judge": None}, DEFAULTS),
        (
            {"batch": 2, "drainTimeout": 5, "healthyDeadline": 30, "minHealthyTime": 0.5},
            dataclasses.replace(
                DEFAULTS, batch=2, drain_timeout=5, healthy_deadline=30, min_healthy_time=0.5
            ),
        ),
        ({"autoRevert": False}, dataclasses.replace(DEFAULTS, auto_revert=False)),
        # A hook given replaces the default one whole; a timeout alone keeps it.
        (
            {"hook": {"url": "https://deploy.test/hook"}},
            dataclasses.replace(DEFAULTS, hook_command=(), hook_url="https://deploy.test/hook"),
        ),
        (
            {"hook": {"command": ["/bin/deploy", "v2"], "timeout": 30}},
            dataclasses.replace(DEFAULTS, hook_command=("/bin/deploy", "v2"), hook_timeout=30),
        ),
        ({"hook": {"timeout": 30}}, dataclasses.replace(DEFAULTS, hook_timeout=30)),
        ({"keepOld": 0}, dataclasses.replace(DEFAULTS, keep_old=0)),
        # A surge's hook given anyway is sent on, for the service to refuse by its field.
        (
            {"mode": "surge", "hook": {"url": "https://deploy.test/"}},
            dataclasses.replace(
                DEFAULTS, mode="surge", hook_command=(), hook_url="https://deploy.test/"
            ),
        ),
        (
            {
                "mode": "surge",
                "newBackends": [{"name": "blue-new-1", "url": "http://10.0.0.8:8080"}],
                "keepOld": 60,
                "webhook": "http://127.0.0.1:9/events",
            },
            dataclasses.replace(
                DEFAULTS,
                mode="surge",
                hook_command=(),  # the default hook is for in place: a surge sets it aside
                new_backends=(("blue-new-1", "http://10.0.0.8:8080"),),
                keep_old=60,
                webhook="http://127.0.0.1:9/events",
            ),
        ),
        (
            {"judge": {"alpha": 0.05, "minRequests": 100}},
            dataclasses.replace(DEFAULTS, judge=JudgeSettings(alpha=0.05, min_requests=100)),
        ),
    ],
)
def test_a_start_replaces_only_what_it_gives(body: dict[str, Any], expected: RollSpec) -> None:
    assert spec_from(DEFAULTS, PoolRolloutStart.model_validate(body)) == expected


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mode": "rolling"}, "mode"),
        ({"batch": 0}, "batch"),
        ({"batch": "1"}, "batch"),
        ({"drainTimeout": 0}, "drainTimeout"),
        ({"minHealthyTime": "30s"}, "minHealthyTime"),
        ({"keepOld": 86_401}, "keepOld"),
        ({"keepOld": -1}, "keepOld"),
        ({"autoRevert": "yes"}, "autoRevert"),
        ({"hook": {"command": ["./deploy.sh"], "url": "http://deploy.test/"}}, "hook"),
        ({"hook": {"command": []}}, "hook.command"),
        ({"hook": {"command": "./deploy.sh"}}, "hook.command"),
        ({"hook": {"url": "ftp://deploy.test/"}}, "hook.url"),
        ({"hook": {"timeout": -1}}, "hook.timeout"),
        ({"hook": {"shell": True}}, "hook.shell"),
        ({"newBackends": []}, "newBackends"),
        ({"newBackends": [{"name": "n"}]}, "newBackends.0.url"),
        ({"newBackends": [{"name": "n", "url": "10.0.0.8:80"}]}, "newBackends.0.url"),
        (
            {
                "newBackends": [
                    {"name": "n", "url": "http://a:1"},
                    {"name": "n", "url": "http://b:1"},
                ]
            },
            "newBackends",
        ),
        ({"judge": {"alpha": 1}}, "judge.alpha"),
        ({"webhook": "hooks.test"}, "webhook"),
        ({"steps": [5, 25]}, "steps"),
    ],
)
def test_a_bad_start_names_its_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        PoolRolloutStart.model_validate(body)
    problem = refusal(raised.value)
    assert problem is not None
    assert problem.status == 422
    assert field in [error["field"] for error in problem.errors]


# The view


def test_an_in_place_rollout_renders_with_its_batches_evidence_and_hooks(
    known_evidence: None,
) -> None:
    view = pool_rollout_view(in_place_state()).model_dump(mode="json", by_alias=True)
    assert view == {
        "pool": "blue",
        "mode": "in-place",
        "phase": "progressing",
        "stage": "holding",
        "reason": "batch 2/3 (blue-3, blue-4): healthy; readmitted with slow start, held and "
        "judged",
        "cause": None,
        "batch": 2,
        "batches": [["blue-1", "blue-2"], ["blue-3", "blue-4"], ["blue-5"]],
        "newBatches": [],
        "replaced": ["blue-1", "blue-2", "blue-3", "blue-4"],
        "reverting": [],
        "started": "2023-11-14T22:13:20.000+00:00",
        "stageStarted": "2023-11-14T22:14:20.000+00:00",
        "updated": "2023-11-14T22:14:20.500+00:00",
        "revision": 41,
        "transitionRevision": 40,
        "verdict": {
            "outcome": "inconclusive",
            "test": None,
            "reason": "120 of 300 canary requests in this step",
        },
        "evidence": {
            "evidence": 4.0,
            "threshold": 100.0,
            "newRequests": 640,
            "newErrors": 6,
            "oldRequests": 900,
            "oldErrors": 3,
        },
        "hooks": [
            {
                "backend": "blue-1",
                "action": "replace",
                "ok": True,
                "reason": "exit status 0",
                "tail": [],
            },
            {
                "backend": "blue-2",
                "action": "replace",
                "ok": True,
                "reason": "exit status 0",
                "tail": [],
            },
            {
                "backend": "blue-3",
                "action": "replace",
                "ok": True,
                "reason": "exit status 0",
                "tail": ["pulled v2", "restarted"],
            },
            {
                "backend": "blue-4",
                "action": "replace",
                "ok": True,
                "reason": "exit status 0",
                "tail": [],
            },
        ],
        "spec": {
            "batch": 2,
            "drainTimeout": 60.0,
            "healthyDeadline": 300.0,
            "minHealthyTime": 60.0,
            "keepOld": 600.0,
            "autoRevert": True,
            "hook": {"command": ["./deploy.sh", "v2"], "url": None, "timeout": 120.0},
            "newBackends": [],
            # The path and query of a webhook are its secret: never shown.
            "webhook": "https://hooks.example.test",
        },
    }


def test_a_surge_rollout_renders_without_a_hook() -> None:
    view = pool_rollout_view(surge_state()).model_dump(mode="json", by_alias=True)
    assert (view["mode"], view["phase"], view["cause"], view["verdict"]) == (
        "surge",
        "aborted",
        "manual",
        None,
    )
    assert view["newBatches"] == [["blue-new-1"], ["blue-new-2"]]
    assert view["spec"]["hook"] is None
    assert view["spec"]["newBackends"][1] == {"name": "blue-new-2", "url": "http://10.0.0.9:8080"}


def test_a_hook_url_shows_only_where_it_goes() -> None:
    state = in_place_state()
    spec = dataclasses.replace(
        state.rollout.spec, hook_command=(), hook_url="https://user:pw@deploy.test:8443/h?k=s"
    )
    rollout = dataclasses.replace(state.rollout, spec=spec, batch=3, phase="promoted")
    view = pool_rollout_view(dataclasses.replace(state, rollout=rollout))
    assert view.spec.hook is not None
    assert (view.spec.hook.command, view.spec.hook.url) == (None, "https://deploy.test:8443")
    assert view.batch == 3  # once every batch is done: the last, never one past it
