"""The pool rollout endpoints on a real turnout: in-place rollouts with real hook processes run
to the end or fail with their output shown, surge adds new backends health-gated and rolls back
in one write, pause/resume/abort with If-Match, one rollout at a time, GET /v1/rollouts listing
both kinds, /metrics and the OpenAPI document; and what is refused (404, 409, 412, 422, 400)
leaves everything as it was. (The bodies and the view alone: test_pool_rollout_views.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from admin_support import Api, api, backend_loop
from pool_rollout_support import (
    QUICK,
    SLOW_OK,
    STUCK,
    hook,
    pools,
    wait_for_phase,
    wait_for_stage,
)

from helpers import proxy_process

# A real turnout


@dataclass(frozen=True)
class Running:
    admin: Api
    new_url: str
    """Surge: a backend not in any pool yet, the new version of `red`."""


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    sizes = {"blue": 2, "green": 2, "red": 1, "canary": 1, "gold": 2}
    with backend_loop() as loop:
        new = loop.start("red-new-1")
        with proxy_process(pools(loop, sizes)) as proxy:
            yield Running(api(proxy), new.url)


@pytest.fixture
def admin(running: Running) -> Api:
    return running.admin


def metrics(admin: Api) -> str:
    reply = admin.call("GET", "/metrics")
    assert reply.status == 200
    return reply.raw.decode()


def unchanged(admin: Api) -> dict[str, Any]:
    """What a refused call must leave as it was: the revision, routes, history, every backend's
    admin state and weight, every rollout (not the health checks' latest probes, which go on)."""
    state = admin.state()
    backends = {
        pool["name"]: [
            (b["name"], b["url"], b["adminState"], b["weight"]) for b in pool["backends"]
        ]
        for pool in state["pools"]["pools"]
    }
    return {
        "revision": state["pools"]["revision"],
        "routes": state["routes"],
        "history": state["history"],
        "backends": backends,
        "rollouts": admin.get("/v1/rollouts"),
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/pools/nosuch/rollout"),
        ("GET", "/v1/pools/nosuch/rollout"),
        *(("POST", f"/v1/pools/nosuch/rollout/{verb}") for verb in ("pause", "resume", "abort")),
    ],
)
def test_an_unknown_pool_is_404(admin: Api, method: str, path: str) -> None:
    before = unchanged(admin)
    body: dict[str, Any] | None = {} if method == "POST" else None
    problem = admin.call(method, path, body).problem(404, "unknown-pool")
    assert "nosuch" in problem["detail"]
    assert unchanged(admin) == before


@pytest.mark.parametrize("verb", ["", "/pause", "/resume", "/abort"])
def test_a_pool_without_a_rollout_is_404(admin: Api, verb: str) -> None:
    before = unchanged(admin)
    method = "GET" if not verb else "POST"
    problem = admin.call(method, f"/v1/pools/canary/rollout{verb}").problem(404, "unknown-rollout")
    assert "canary" in problem["detail"]
    assert unchanged(admin) == before


@pytest.mark.parametrize(
    ("body", "field", "slug"),
    [
        ({"batch": 0, "hook": {"command": ["/bin/true"]}}, "batch", "invalid-body"),
        (
            {"hook": {"command": ["/bin/true"], "url": "http://127.0.0.1:9/"}},
            "hook",
            "invalid-body",
        ),
        ({"hook": {"command": ["/bin/true"]}, "replicas": 2}, "replicas", "invalid-body"),
        ({"mode": "surge"}, "newBackends", "invalid-change"),
        (
            {"mode": "surge", "newBackends": [{"name": "canary-1", "url": "http://127.0.0.1:9"}]},
            "newBackends",
            "invalid-change",
        ),
    ],
)
def test_a_bad_start_is_422_and_changes_nothing(
    admin: Api, body: dict[str, Any], field: str, slug: str
) -> None:
    before = unchanged(admin)
    problem = admin.call("POST", "/v1/pools/canary/rollout", body).problem(422, slug)
    fields = [error["field"] for error in problem["errors"]]
    assert any(name == field or name.startswith((field + ".", field + "[")) for name in fields), (
        fields
    )
    assert unchanged(admin) == before
    admin.call("GET", "/v1/pools/canary/rollout").problem(404, "unknown-rollout")


def test_a_malformed_if_match_is_400_before_anything(admin: Api) -> None:
    before = unchanged(admin)
    body = {"hook": {"command": ["/bin/true"]}}
    reply = admin.call("POST", "/v1/pools/canary/rollout", body, headers={"If-Match": "7"})
    reply.problem(400, "bad-precondition")
    assert unchanged(admin) == before


def test_an_in_place_rollout_replaces_every_backend(admin: Api) -> None:
    body = {"hook": {"command": SLOW_OK, "timeout": 20}, **QUICK}
    reply = admin.call("POST", "/v1/pools/blue/rollout", body)
    started = reply.ok(201)
    assert reply.etag == f'"{started["revision"]}"'
    assert (started["pool"], started["mode"], started["phase"]) == (
        "blue",
        "in-place",
        "progressing",
    )
    assert (started["stage"], started["batch"]) == ("draining", 1)
    assert started["batches"] == [["blue-1"], ["blue-2"]]
    assert started["spec"]["hook"] == {"command": SLOW_OK, "url": None, "timeout": 20.0}
    assert started["spec"]["minHealthyTime"] == 0.5
    assert started["transitionRevision"] == started["revision"]

    done = wait_for_phase(admin, "blue", "promoted", "aborted")
    assert done["phase"] == "promoted", done["reason"]
    assert done["replaced"] == ["blue-1", "blue-2"]
    assert [(h["backend"], h["action"], h["ok"]) for h in done["hooks"]] == [
        ("blue-1", "replace", True),
        ("blue-2", "replace", True),
    ]
    assert done["revision"] > started["revision"]
    # Every backend serves again, as it did before.
    pool = admin.get("/v1/pools/blue")
    assert {b["name"]: b["adminState"] for b in pool["backends"]} == {
        "blue-1": "ready",
        "blue-2": "ready",
    }
    history = admin.get("/v1/history?limit=50")["changes"]
    actors = {c["actor"] for c in history if c["target"] == "pool/blue"}
    assert "rollout" in actors


def test_a_failing_hook_stops_the_rollout_and_shows_its_output(admin: Api) -> None:
    failing = hook(
        "print('pulling v2'); print('error: image not found', flush=True); time.sleep(1)"
        "; sys.exit(3)"
    )
    body = {"hook": {"command": failing}, "autoRevert": False, **QUICK}
    admin.call("POST", "/v1/pools/gold/rollout", body).ok(201)
    done = wait_for_phase(admin, "gold", "aborted", "promoted")
    assert (done["phase"], done["cause"]) == ("aborted", "hook")
    (result,) = done["hooks"]  # the first batch failed: the second never began
    assert (result["backend"], result["ok"], result["reason"]) == ("gold-1", False, "exit status 3")
    assert result["tail"][-2:] == ["pulling v2", "error: image not found"]
    text = metrics(admin)
    assert 'turnout_pool_rollout_phase{phase="aborted",pool="gold"} 1.0' in text
    assert 'turnout_pool_rollout_phase{phase="progressing",pool="gold"} 0.0' in text
    assert 'turnout_pool_rollout_batch{pool="gold"} 1.0' in text
    assert 'turnout_pool_rollout_aborts_total{pool="gold",reason="hook"} 1.0' in text
    assert 'turnout_pool_rollout_aborts_total{pool="gold",reason="manual"} 0.0' in text


def test_commands_on_a_running_rollout(admin: Api) -> None:
    body = {"hook": {"command": STUCK, "timeout": 120}, **QUICK}
    started = admin.call("POST", "/v1/pools/green/rollout", body).ok(201)
    replacing = wait_for_stage(admin, "green", "replacing")

    # One rollout at a time: a second start is refused, and changes nothing.
    before = unchanged(admin)
    admin.call("POST", "/v1/pools/green/rollout", body).problem(409, "rollout-conflict")
    # A stale If-Match is refused whatever the command.
    stale = {"If-Match": f'"{started["revision"] - 1}"'}
    for verb in ("pause", "resume", "abort"):
        reply = admin.call("POST", f"/v1/pools/green/rollout/{verb}", headers=stale)
        reply.problem(412, "stale-revision")
        assert reply.etag == f'"{replacing["revision"]}"'
    assert unchanged(admin) == before

    current = {"If-Match": f'"{replacing["revision"]}"'}
    reply = admin.call("POST", "/v1/pools/green/rollout/pause", headers=current)
    paused = reply.ok()
    assert paused["phase"] == "paused"
    assert paused["revision"] > replacing["revision"]
    assert reply.etag == f'"{paused["revision"]}"'
    assert "paused by" in paused["reason"]
    assert 'turnout_pool_rollout_phase{phase="paused",pool="green"} 1.0' in metrics(admin)

    listed = admin.get("/v1/rollouts")
    assert listed["rollouts"] == []  # no route has a rollout
    assert "green" in [view["pool"] for view in listed["poolRollouts"]]
    assert listed["revision"] == paused["revision"]

    resumed = admin.call("POST", "/v1/pools/green/rollout/resume").ok()
    assert resumed["phase"] == "progressing"

    aborted = admin.call("POST", "/v1/pools/green/rollout/abort", {}).ok()
    assert aborted["cause"] == "manual"
    done = wait_for_phase(admin, "green", "aborted")
    assert done["cause"] == "manual"
    assert {b["adminState"] for b in admin.get("/v1/pools/green")["backends"]} == {"ready"}
    # A finished rollout takes no more commands.
    admin.call("POST", "/v1/pools/green/rollout/pause").problem(409, "rollout-conflict")


def test_a_command_takes_no_fields(admin: Api) -> None:
    reply = admin.call("POST", "/v1/pools/canary/rollout/abort", {"force": True})
    assert "force" in [e["field"] for e in reply.problem(422, "invalid-body")["errors"]]


def test_a_surge_adds_the_new_backends_and_an_abort_keeps_the_old(running: Running) -> None:
    admin, new = running.admin, running.new_url
    body = {
        "mode": "surge",
        "newBackends": [{"name": "red-new-1", "url": new}],
        "minHealthyTime": 60,
        "healthyDeadline": 10,
    }
    started = admin.call("POST", "/v1/pools/red/rollout", body).ok(201)
    assert (started["mode"], started["stage"]) == ("surge", "gating")
    assert started["newBatches"] == [["red-new-1"]]
    assert started["spec"]["hook"] is None
    assert started["spec"]["newBackends"] == [{"name": "red-new-1", "url": new}]
    added = {b["name"]: b["adminState"] for b in admin.get("/v1/pools/red")["backends"]}
    assert added == {"red-1": "ready", "red-new-1": "maint"}  # health-gated before a request

    held = wait_for_stage(admin, "red", "holding")
    assert held["phase"] == "progressing"
    assert held["replaced"] == ["red-1"]
    aborted = admin.call("POST", "/v1/pools/red/rollout/abort").ok()
    assert (aborted["phase"], aborted["cause"]) == ("aborted", "manual")
    # One write: when the abort returns, the old backend takes the traffic again.
    states = {b["name"]: b["adminState"] for b in admin.get("/v1/pools/red")["backends"]}
    assert states["red-1"] == "ready"
    assert states["red-new-1"] != "ready"


def test_the_document_has_the_pool_rollout_paths(admin: Api) -> None:
    paths = admin.get("/v1/openapi.json")["paths"]
    assert set(paths["/v1/pools/{pool}/rollout"]) == {"get", "post"}
    for verb in ("pause", "resume", "abort"):
        assert set(paths[f"/v1/pools/{{pool}}/rollout/{verb}"]) == {"post"}
    assert "/v1/pools/{pool}/rollout/promote" not in paths
    listed = paths["/v1/rollouts"]["get"]["responses"]["200"]["content"]["application/json"]
    assert listed["schema"] == {"$ref": "#/components/schemas/RolloutList"}
