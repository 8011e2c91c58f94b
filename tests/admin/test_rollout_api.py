"""The rollout endpoints' own part: request bodies (model and spec), the status view, the
/metrics families, and what a real turnout refuses before its control service is asked (an
unknown route, a bad body, a malformed If-Match), leaving everything as it was.

What the service does with a valid request (start, transitions, 409, 412) is covered end to end
where the service is (the rollout controller's tests)."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator
from typing import Any

import pytest
from admin_support import Api, api, backend_loop, shop_and_web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector
from pydantic import ValidationError
from rollout_support import blue_green_state, canary_state, known_evidence

from admin_api.http import IF_MATCH_PATTERN, parse_if_match
from admin_api.problems import Problem, refusal
from admin_api.rollout_metrics import CAUSES, rollout_families
from admin_api.rollout_models import RolloutStart
from admin_api.rollout_views import rollout_view
from admin_api.rollouts import spec_from
from helpers import proxy_process
from proxy.control.errors import RolloutConflict
from proxy.control.rollout import judge
from proxy.control.rollout.model import JudgeSettings, Precheck, RolloutSpec
from proxy.control.rollout.status import RolloutState

__all__ = ["known_evidence"]  # the fixture, used by name

DEFAULTS = RolloutSpec(strategy="canary", canary="canary", webhook="https://hooks.test/a")

# Requests: the spec a body makes


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, DEFAULTS),
        ({"strategy": None, "steps": None, "judge": None}, DEFAULTS),
        (
            {"steps": [10, 50, 100], "stepTime": 120, "maxStepTime": 900.5},
            dataclasses.replace(DEFAULTS, steps=(10, 50, 100), step_time=120, max_step_time=900.5),
        ),
        (
            {"strategy": "blue-green", "to": "green", "watch": 60, "onInconclusive": "abort"},
            dataclasses.replace(
                DEFAULTS, strategy="blue-green", to="green", watch=60, on_inconclusive="abort"
            ),
        ),
        (
            {"judge": {"alpha": 0.05, "minRequests": 100}},
            dataclasses.replace(DEFAULTS, judge=JudgeSettings(alpha=0.05, min_requests=100)),
        ),
        (
            {
                "prechecks": [
                    {"path": "/healthz"},
                    {
                        "path": "/ready",
                        "method": "HEAD",
                        "headers": {"host": "shop", "x-check": "1"},
                        "status": 204,
                        "bodyContains": "ok",
                        "timeout": 2,
                    },
                ],
                "noEligibleTimeout": 10,
                "webhook": "http://127.0.0.1:9/hook",
            },
            dataclasses.replace(
                DEFAULTS,
                prechecks=(
                    Precheck("/healthz"),
                    Precheck("/ready", "HEAD", (("host", "shop"), ("x-check", "1")), 204, "ok", 2),
                ),
                no_eligible_timeout=10,
                webhook="http://127.0.0.1:9/hook",
            ),
        ),
    ],
)
def test_a_start_replaces_only_what_it_gives(body: dict[str, Any], expected: RolloutSpec) -> None:
    assert spec_from(DEFAULTS, RolloutStart.model_validate(body)) == expected


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"strategy": "linear"}, "strategy"),
        ({"steps": []}, "steps"),
        ({"steps": [50, 25]}, "steps"),
        ({"steps": [5, 5]}, "steps"),
        ({"steps": [0, 50]}, "steps.0"),
        ({"steps": [50, 101]}, "steps.1"),
        ({"steps": ["5"]}, "steps.0"),
        ({"stepTime": 0}, "stepTime"),
        ({"stepTime": "2m"}, "stepTime"),
        ({"maxStepTime": -1}, "maxStepTime"),
        ({"watch": 86_401}, "watch"),
        ({"onInconclusive": "wait"}, "onInconclusive"),
        ({"judge": {"alpha": 1}}, "judge.alpha"),
        ({"judge": {"alpha": 0}}, "judge.alpha"),
        ({"judge": {"tolerance": 0.9}}, "judge.tolerance"),
        ({"judge": {"latencyQuantile": 1.5}}, "judge.latencyQuantile"),
        ({"judge": {"minRequests": 0}}, "judge.minRequests"),
        ({"judge": {"beta": 1}}, "judge.beta"),
        ({"prechecks": [{"method": "GET"}]}, "prechecks.0.path"),
        ({"prechecks": [{"path": "healthz"}]}, "prechecks.0.path"),
        ({"prechecks": [{"path": "/", "status": 99}]}, "prechecks.0.status"),
        ({"prechecks": [{"path": "/", "method": "GET /x"}]}, "prechecks.0.method"),
        ({"webhook": "ftp://hooks.test/"}, "webhook"),
        ({"canary": 5}, "canary"),
        ({"setWeight": 5}, "setWeight"),
    ],
)
def test_a_bad_start_names_its_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        RolloutStart.model_validate(body)
    problem = refusal(raised.value)
    assert problem is not None
    assert problem.status == 422
    assert field in [error["field"] for error in problem.errors]


def test_a_conflict_is_a_409_problem() -> None:
    problem = refusal(RolloutConflict("web", "a rollout is progressing on route 'web'"))
    assert problem is not None
    assert (problem.status, problem.slug) == (409, "rollout-conflict")
    assert problem.detail == "a rollout is progressing on route 'web'"


# The status view


def test_a_canary_rollout_renders_with_its_evidence(known_evidence: None) -> None:
    view = rollout_view(canary_state()).model_dump(mode="json", by_alias=True)
    assert view == {
        "route": "web",
        "strategy": "canary",
        "phase": "progressing",
        "reason": "step 2 (25 %): waiting for 300 canary requests (120 so far)",
        "cause": None,
        "baseline": "stable",
        "candidate": "canary",
        "step": 1,
        "steps": [5, 25, 50, 100],
        "weight": 25,
        "weights": {"stable": 75, "canary": 25},
        "active": None,
        "started": "2023-11-14T22:13:20.000+00:00",
        "stepStarted": "2023-11-14T22:15:20.000+00:00",
        "updated": "2023-11-14T22:15:20.500+00:00",
        "revision": 41,
        "transitionRevision": 40,
        "verdict": {
            "outcome": "inconclusive",
            "test": None,
            "reason": "120 of 300 canary requests in this step",
        },
        "evidence": {
            "errors": {
                "evidence": 8.0,
                "threshold": 200.0,
                "canaryRequests": 640,
                "canaryErrors": 26,
                "baselineRequests": 4000,
                "baselineErrors": 40,
                "canaryRate": 0.040625,
                "baselineRate": 0.01,
            },
            "latency": {
                "evidence": 1.0,
                "threshold": 200.0,
                "canaryRequests": 640,
                "canarySlow": 70,
                "baselineRequests": 4000,
                "baselineSlow": 400,
                "canaryRate": 0.109375,
                "baselineRate": 0.1,
                "slowAbove": 0.25,
            },
            "stepRequests": 120,
            "stepBaselineRequests": 360,
            "minRequests": 300,
        },
        "judge": {
            "alpha": 0.01,
            "tolerance": 1.5,
            "latencyTolerance": 1.5,
            "latencyQuantile": 0.9,
            "minRequests": 300,
        },
        "stepTime": 120.0,
        "maxStepTime": 600.0,
        "onInconclusive": "pause",
        "noEligibleTimeout": 30.0,
        "watch": None,
        "prechecks": 0,
        # The path and query of a webhook are its secret: never shown.
        "webhook": "https://hooks.example.test",
    }


def test_a_blue_green_rollout_renders_without_canary_fields(known_evidence: None) -> None:
    view = rollout_view(blue_green_state()).model_dump(mode="json", by_alias=True)
    assert (view["strategy"], view["baseline"], view["candidate"]) == (
        "blue-green",
        "blue",
        "green",
    )
    assert (view["steps"], view["weight"], view["weights"]) == (None, None, None)
    assert (view["active"], view["watch"], view["prechecks"]) == ("green", 300.0, 1)
    errors = view["evidence"]["errors"]
    assert (errors["canaryRate"], errors["baselineRate"]) == (None, None)  # no requests yet
    assert view["evidence"]["latency"]["slowAbove"] is None


def test_overwhelming_evidence_is_still_a_json_number(known_evidence: None) -> None:
    state = canary_state()
    huge = dataclasses.replace(state.evidence, errors=judge.Test((1e6,), 10, 10, 10, 0))
    view = rollout_view(dataclasses.replace(state, evidence=huge))
    assert math.isfinite(view.evidence.errors.evidence)
    assert view.evidence.errors.evidence > view.evidence.errors.threshold


# /metrics


class Rollouts(Collector):
    def __init__(
        self, states: tuple[RolloutState, ...], aborts: dict[tuple[str, str], int]
    ) -> None:
        self.states = states
        self.aborts = aborts

    def collect(self) -> Iterator[Any]:
        yield from rollout_families(self.states, self.aborts)


def scrape(
    *states: RolloutState, aborts: dict[tuple[str, str], int] | None = None
) -> dict[str, float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Rollouts(states, aborts or {}))
    text = generate_latest(registry).decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_show_phase_step_evidence_and_aborts(known_evidence: None) -> None:
    samples = scrape(
        canary_state(step=2),
        canary_state("aborted", step=1, cause="errors", route="api"),
        blue_green_state(),
        aborts={("api", "errors"): 1},
    )
    assert samples['turnout_rollout_phase{phase="progressing",route="web"}'] == 1
    assert samples['turnout_rollout_phase{phase="paused",route="web"}'] == 0
    assert samples['turnout_rollout_phase{phase="aborted",route="api"}'] == 1
    assert samples['turnout_rollout_phase{phase="progressing",route="api"}'] == 0
    assert samples['turnout_rollout_step{route="web"}'] == 2
    assert samples['turnout_rollout_step{route="shop"}'] == 1
    assert samples['turnout_rollout_evidence{route="web",test="errors"}'] == pytest.approx(8.0)
    assert samples['turnout_rollout_evidence{route="web",test="latency"}'] == 1.0
    assert samples['turnout_rollout_aborts_total{reason="errors",route="api"}'] == 1
    aborts = {k: v for k, v in samples.items() if k.startswith("turnout_rollout_aborts_total")}
    assert sum(aborts.values()) == 1
    # Every cause from zero, for each route with a rollout; label values from closed sets only.
    assert len(aborts) == 3 * len(CAUSES)
    phases = [k for k in samples if k.startswith("turnout_rollout_phase{")]
    assert len(phases) == 3 * 4


def test_no_rollout_no_series() -> None:
    assert scrape() == {}


# A real turnout: what is refused before the service is asked


@pytest.fixture(scope="module")
def admin() -> Iterator[Api]:
    with backend_loop() as loop, proxy_process(shop_and_web(loop)) as proxy:
        yield api(proxy)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/routes/nosuch/rollout"),
        ("GET", "/v1/routes/nosuch/rollout"),
        *(("POST", f"/v1/routes/nosuch/rollout/{verb}") for verb in ("pause", "resume")),
        *(("POST", f"/v1/routes/nosuch/rollout/{verb}") for verb in ("promote", "abort")),
    ],
)
def test_an_unknown_route_is_404(admin: Api, method: str, path: str) -> None:
    before = admin.state()
    body = {} if method == "POST" else None
    problem = admin.call(method, path, body).problem(404, "unknown-route")
    assert "nosuch" in problem["detail"]
    assert admin.state() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"steps": [50, 25]}, "steps"),
        ({"strategy": "linear"}, "strategy"),
        ({"judge": {"alpha": 2}}, "judge.alpha"),
        ({"stepTime": "2m"}, "stepTime"),
        ({"prechecks": [{"path": "/", "extra": 1}]}, "prechecks.0.extra"),
    ],
)
def test_a_bad_start_is_422_and_changes_nothing(
    admin: Api, body: dict[str, Any], field: str
) -> None:
    before = admin.state()
    reply = admin.call("POST", "/v1/routes/web/rollout", body)
    problem = reply.problem(422, "invalid-body")
    assert field in [error["field"] for error in problem["errors"]]
    assert admin.state() == before


@pytest.mark.parametrize("verb", ["/pause", "/resume", "/promote", "/abort"])
def test_a_command_takes_no_fields(admin: Api, verb: str) -> None:
    reply = admin.call("POST", f"/v1/routes/web/rollout{verb}", {"force": True})
    assert "force" in [e["field"] for e in reply.problem(422, "invalid-body")["errors"]]


@pytest.mark.parametrize("verb", ["", "/pause", "/resume", "/promote", "/abort"])
def test_a_malformed_if_match_is_400(admin: Api, verb: str) -> None:
    before = admin.state()
    reply = admin.call("POST", f"/v1/routes/web/rollout{verb}", {}, headers={"If-Match": "41"})
    reply.problem(400, "bad-precondition")
    assert admin.state() == before


def test_rollout_paths_take_only_their_methods(admin: Api) -> None:
    reply = admin.call("PUT", "/v1/routes/web/rollout", {})
    assert reply.problem(405, "method-not-allowed")
    assert set(reply.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    admin.call("GET", "/v1/routes/web/rollout/pause").problem(405, "method-not-allowed")


@pytest.mark.parametrize(
    "value", ["", ",", " , ", '"3"', "*", 'W/"3", "4"', ',"3"', "3", '""', '"3", *']
)
def test_the_documented_if_match_grammar_is_what_is_served(value: str) -> None:
    # Schemathesis sends what the document admits (an empty If-Match, once the rollout
    # endpoints shifted its sequence): the pattern must refuse what the handler refuses.
    try:
        parse_if_match(value)
    except Problem:
        served = False
    else:
        served = True
    assert bool(re.search(IF_MATCH_PATTERN, value)) is served
