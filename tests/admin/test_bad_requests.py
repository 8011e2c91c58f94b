"""Every admin endpoint refuses bad input with a problem document and changes nothing.

One `turnout run` serves the whole module. Around every bad request the test reads every route,
every pool and the newest history entry (whole bodies, with their ETags) and checks that all of
it, revision included, is exactly as before. No traffic flows here, so nothing in those bodies
moves by itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from admin_support import JSON, Api, Reply, api, backend_loop

from helpers import config, proxy_process


@pytest.fixture(scope="module")
def admin() -> Iterator[Api]:
    with backend_loop() as loop:
        names = ("stable", "canary", "third", "blue", "green", "empty")
        backends = {name: loop.start(name) for name in names}
        data = config(
            {name: [backend.url] for name, backend in backends.items()},
            {
                "shop": {
                    "path_prefix": "/shop",
                    "mode": "blue-green",
                    "pools": ["blue", "green"],
                    "active": "blue",
                },
                "three": {
                    "path_prefix": "/three",
                    "weights": {"stable": 1, "canary": 1, "third": 1},
                },
                # Routes that may be sent onto `empty`, whose only backend is drained.
                "gate": {"path_prefix": "/gate", "weights": {"stable": 1, "empty": 0}},
                "gate-bg": {
                    "path_prefix": "/gate-bg",
                    "mode": "blue-green",
                    "pools": ["blue", "empty"],
                    "active": "blue",
                },
                "web": {"weights": {"stable": 90, "canary": 10}},
            },
        )
        data["pools"]["empty"]["backends"][0]["admin_state"] = "drain"
        with proxy_process(data) as proxy:
            yield api(proxy)


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 422
    slug: str = "invalid-change"
    fields: tuple[str, ...] = ()
    """Fields errors[] must name."""
    detail: str = ""
    """Words the detail must contain."""
    allow: str | None = None
    """405: the Allow header."""


WEIGHTS = {"weights": {"stable": 50, "canary": 50}}
BACKEND = "/v1/pools/stable/backends/stable-1"


def raw_json(text: str) -> dict[str, Any]:
    return {"raw": text.encode(), "headers": {"Content-Type": JSON}}


CASES = [
    # Unknown names.
    Case("get-unknown-route", "GET", "/v1/routes/nope", status=404, slug="unknown-route"),
    Case("weights-unknown-route", "PUT", "/v1/routes/nope/weights", WEIGHTS, status=404, slug="unknown-route"),
    Case("switch-unknown-route", "POST", "/v1/routes/nope/switch", {"to": "green"}, status=404, slug="unknown-route"),
    Case("rollback-unknown-route", "POST", "/v1/routes/nope/rollback", status=404, slug="unknown-route"),
    Case("promote-unknown-route", "POST", "/v1/routes/nope/promote", status=404, slug="unknown-route"),
    Case("abort-unknown-route", "POST", "/v1/routes/nope/abort", status=404, slug="unknown-route"),
    Case("undo-unknown-route", "POST", "/v1/routes/nope/undo", {"toRevision": 1}, status=404, slug="unknown-route"),
    Case("get-unknown-pool", "GET", "/v1/pools/nope", status=404, slug="unknown-pool"),
    Case("add-to-unknown-pool", "POST", "/v1/pools/nope/backends", {"name": "x", "url": "http://127.0.0.1:9"}, status=404, slug="unknown-pool"),
    Case("patch-unknown-pool", "PATCH", "/v1/pools/nope/backends/stable-1", {"weight": 1}, status=404, slug="unknown-pool"),
    Case("patch-unknown-backend", "PATCH", "/v1/pools/stable/backends/nope", {"weight": 1}, status=404, slug="unknown-backend"),
    Case("delete-unknown-backend", "DELETE", "/v1/pools/stable/backends/nope?force=true", status=404, slug="unknown-backend"),
    Case("unknown-path", "GET", "/v1/nothing-here", status=404, slug="not-found"),
    # Weights.
    Case("negative-weight", "PUT", "/v1/routes/web/weights", {"weights": {"stable": -1, "canary": 1}}, fields=("routes.web.weights.stable",), detail="negative"),
    Case("all-zero-weights", "PUT", "/v1/routes/web/weights", {"weights": {"stable": 0, "canary": 0}}, fields=("routes.web.weights",), detail="positive"),
    Case("weights-unknown-pool", "PUT", "/v1/routes/web/weights", {"weights": {"stable": 1, "canary": 1, "nowhere": 1}}, fields=("routes.web.weights.nowhere",), detail="unknown pool"),
    Case("weights-missing-pool", "PUT", "/v1/routes/web/weights", {"weights": {"stable": 1}}, fields=("routes.web.weights.canary",)),
    Case("weights-empty", "PUT", "/v1/routes/web/weights", {"weights": {}}, slug="invalid-body", fields=("weights",)),
    Case("weights-not-integers", "PUT", "/v1/routes/web/weights", {"weights": {"stable": "many", "canary": 1}}, slug="invalid-body", fields=("weights.stable",)),
    Case("weights-on-blue-green", "PUT", "/v1/routes/shop/weights", {"weights": {"blue": 1, "green": 1}}, fields=("routes.shop.weights",)),
    # Switch.
    Case("switch-weighted-route", "POST", "/v1/routes/web/switch", {"to": "canary"}, fields=("routes.web",), detail="blue-green"),
    Case("switch-to-foreign-pool", "POST", "/v1/routes/shop/switch", {"to": "stable"}, fields=("to",)),
    Case("switch-to-unknown-pool", "POST", "/v1/routes/shop/switch", {"to": "nope"}, fields=("to",)),
    Case("switch-without-to", "POST", "/v1/routes/shop/switch", {}, slug="invalid-body", fields=("to",)),
    # Rollback, promote, abort, undo.
    Case("rollback-nothing-weighted", "POST", "/v1/routes/web/rollback", fields=("routes.web.previous_weights",)),
    Case("rollback-nothing-blue-green", "POST", "/v1/routes/shop/rollback", {}, fields=("routes.shop.previous",)),
    Case("promote-three-pools-unnamed", "POST", "/v1/routes/three/promote", fields=("pool",), detail="name the pool"),
    Case("promote-foreign-pool", "POST", "/v1/routes/web/promote", {"pool": "blue"}, fields=("pool",)),
    Case("promote-blue-green", "POST", "/v1/routes/shop/promote", fields=("routes.shop",)),
    Case("abort-blue-green", "POST", "/v1/routes/shop/abort", fields=("routes.shop",)),
    Case("abort-unknown-field", "POST", "/v1/routes/web/abort", {"pool": "canary"}, slug="invalid-body", fields=("pool",)),
    Case("abort-malformed-json", "POST", "/v1/routes/web/abort", **raw_json("{"), status=400, slug="malformed-json"),
    Case("undo-future-revision", "POST", "/v1/routes/web/undo", {"toRevision": 10_000}, status=409, slug="revision-unavailable", detail="10000"),
    Case("undo-revision-zero", "POST", "/v1/routes/web/undo", {"toRevision": 0}, slug="invalid-body", fields=("toRevision",)),
    Case("undo-without-revision", "POST", "/v1/routes/web/undo", {}, slug="invalid-body", fields=("toRevision",)),
    # Bodies: syntax, size, media type, shape, unknown fields.
    Case("malformed-json", "PUT", "/v1/routes/web/weights", **raw_json('{"weights": {"stable": 1'), status=400, slug="malformed-json"),
    Case("malformed-json-optional-body", "POST", "/v1/routes/web/rollback", **raw_json("{nope}"), status=400, slug="malformed-json"),
    Case("body-over-64-kib", "PUT", "/v1/routes/web/weights", **raw_json('{"weights": {"stable": 1, "canary": 1}, "pad": "' + "x" * 65536 + '"}'), status=413, slug="request-entity-too-large"),
    Case("wrong-content-type", "PUT", "/v1/routes/web/weights", raw=b'{"weights": {"stable": 1, "canary": 1}}', headers={"Content-Type": "text/plain"}, status=415, slug="unsupported-media-type"),
    Case("form-content-type", "POST", "/v1/routes/shop/switch", raw=b"to=green", headers={"Content-Type": "application/x-www-form-urlencoded"}, status=415, slug="unsupported-media-type"),
    Case("missing-required-body", "POST", "/v1/routes/shop/switch", status=415, slug="unsupported-media-type"),
    Case("body-not-an-object", "PUT", "/v1/routes/web/weights", **raw_json("[1, 2]"), slug="invalid-body", fields=("(body)",)),
    Case("weights-unknown-field", "PUT", "/v1/routes/web/weights", {**WEIGHTS, "percent": 5}, slug="invalid-body", fields=("percent",)),
    Case("switch-unknown-field", "POST", "/v1/routes/shop/switch", {"to": "green", "colour": "x"}, slug="invalid-body", fields=("colour",)),
    Case("rollback-unknown-field", "POST", "/v1/routes/web/rollback", {"toRevision": 1}, slug="invalid-body", fields=("toRevision",)),
    Case("promote-unknown-field", "POST", "/v1/routes/web/promote", {"weight": 100}, slug="invalid-body", fields=("weight",)),
    Case("undo-unknown-field", "POST", "/v1/routes/web/undo", {"toRevision": 1, "route": "web"}, slug="invalid-body", fields=("route",)),
    Case("backend-unknown-field", "POST", "/v1/pools/stable/backends", {"name": "s9", "url": "http://127.0.0.1:9", "zone": "a"}, slug="invalid-body", fields=("zone",)),
    Case("patch-unknown-field", "PATCH", BACKEND, {"weight": 1, "state": "drain"}, slug="invalid-body", fields=("state",)),
    # Strict types: JSON Schema's integer is not true or "50", its boolean not "yes".
    Case("weights-boolean", "PUT", "/v1/routes/web/weights", {"weights": {"stable": True, "canary": 1}}, slug="invalid-body", fields=("weights.stable",)),
    Case("weights-numeric-string", "PUT", "/v1/routes/web/weights", {"weights": {"stable": "50", "canary": 50}}, slug="invalid-body", fields=("weights.stable",)),
    Case("weights-float", "PUT", "/v1/routes/web/weights", {"weights": {"stable": 50.0, "canary": 50}}, slug="invalid-body", fields=("weights.stable",)),
    Case("force-string", "POST", "/v1/routes/shop/switch", {"to": "green", "force": "yes"}, slug="invalid-body", fields=("force",)),
    Case("force-number", "PUT", "/v1/routes/web/weights", {**WEIGHTS, "force": 1}, slug="invalid-body", fields=("force",)),
    Case("undo-revision-string", "POST", "/v1/routes/web/undo", {"toRevision": "1"}, slug="invalid-body", fields=("toRevision",)),
    Case("patch-weight-boolean", "PATCH", BACKEND, {"weight": False}, slug="invalid-body", fields=("weight",)),
    Case("add-backend-weight-string", "POST", "/v1/pools/stable/backends", {"name": "s9", "url": "http://127.0.0.1:9", "weight": "2"}, slug="invalid-body", fields=("weight",)),
    # Methods: reads are GET, changes are never GET.
    Case("get-switch", "GET", "/v1/routes/web/switch", status=405, slug="method-not-allowed", allow="POST"),
    Case("get-weights", "GET", "/v1/routes/web/weights", status=405, slug="method-not-allowed", allow="PUT"),
    Case("get-promote", "GET", "/v1/routes/web/promote", status=405, slug="method-not-allowed", allow="POST"),
    Case("get-backends", "GET", "/v1/pools/stable/backends", status=405, slug="method-not-allowed", allow="POST"),
    Case("get-reload", "GET", "/v1/reload", status=405, slug="method-not-allowed", allow="POST"),
    Case("delete-route", "DELETE", "/v1/routes/web", status=405, slug="method-not-allowed", allow="GET"),
    Case("post-history", "POST", "/v1/history", {}, status=405, slug="method-not-allowed", allow="GET"),
    # Backends.
    Case("patch-nothing", "PATCH", BACKEND, {}, fields=("(body)",), slug="invalid-body"),
    Case("patch-bad-admin-state", "PATCH", BACKEND, {"adminState": "sleeping"}, slug="invalid-body", fields=("adminState",)),
    Case("patch-negative-weight", "PATCH", BACKEND, {"weight": -1}, slug="invalid-body", fields=("weight",)),
    Case("patch-bad-wait", "PATCH", BACKEND + "?wait=soon", {"adminState": "drain"}, status=400, slug="bad-query", detail="wait"),
    Case("patch-negative-wait", "PATCH", BACKEND + "?wait=-1s", {"adminState": "drain"}, status=400, slug="bad-query", detail="wait"),
    Case("patch-wait-too-long", "PATCH", BACKEND + "?wait=11m", {"adminState": "drain"}, status=400, slug="bad-query", detail="wait"),
    Case("patch-wait-without-drain", "PATCH", BACKEND + "?wait=1s", {"adminState": "ready"}, status=400, slug="bad-query", detail="wait"),
    Case("patch-wait-weight-only", "PATCH", BACKEND + "?wait=1s", {"weight": 2}, status=400, slug="bad-query", detail="wait"),
    Case("delete-ready-backend", "DELETE", BACKEND, status=409, slug="backend-in-service", detail="drain"),
    Case("delete-ready-backend-force-false", "DELETE", BACKEND + "?force=false", status=409, slug="backend-in-service"),
    Case("add-backend-bad-scheme", "POST", "/v1/pools/stable/backends", {"name": "s9", "url": "ftp://127.0.0.1:9"}, slug="invalid-body", fields=("url",)),
    Case("add-backend-url-with-path", "POST", "/v1/pools/stable/backends", {"name": "s9", "url": "http://127.0.0.1:9/api"}, slug="invalid-body", fields=("url",)),
    Case("add-backend-not-a-url", "POST", "/v1/pools/stable/backends", {"name": "s9", "url": "nowhere"}, slug="invalid-body", fields=("url",)),
    Case("add-backend-duplicate-name", "POST", "/v1/pools/stable/backends", {"name": "stable-1", "url": "http://127.0.0.1:9"}, fields=("name",), detail="already has"),
    Case("add-backend-bad-name", "POST", "/v1/pools/stable/backends", {"name": "Not OK", "url": "http://127.0.0.1:9"}, fields=("pools.stable.backends[1].name",)),
    Case("add-backend-without-name", "POST", "/v1/pools/stable/backends", {"url": "http://127.0.0.1:9"}, slug="invalid-body", fields=("name",)),
    Case("add-backend-negative-weight", "POST", "/v1/pools/stable/backends", {"name": "s9", "url": "http://127.0.0.1:9", "weight": -2}, slug="invalid-body", fields=("weight",)),
    # Preconditions.
    Case("if-match-stale", "PUT", "/v1/routes/web/weights", WEIGHTS, headers={"If-Match": '"0"'}, status=412, slug="stale-revision", detail="stale"),
    Case("if-match-malformed", "PUT", "/v1/routes/web/weights", WEIGHTS, headers={"If-Match": "yesterday"}, status=400, slug="bad-precondition"),
    Case("if-match-stale-patch", "PATCH", BACKEND, {"weight": 5}, headers={"If-Match": '"0"'}, status=412, slug="stale-revision"),
    # History.
    Case("history-limit-zero", "GET", "/v1/history?limit=0", status=400, slug="bad-query", detail="limit"),
    Case("history-limit-word", "GET", "/v1/history?limit=all", status=400, slug="bad-query", detail="limit"),
    Case("history-limit-too-big", "GET", "/v1/history?limit=1001", status=400, slug="bad-query", detail="limit"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_bad_request_is_a_problem_and_changes_nothing(admin: Api, case: Case) -> None:
    before = admin.state()
    reply = admin.call(case.method, case.path, case.body, raw=case.raw, headers=case.headers)
    problem = reply.problem(case.status, case.slug)
    named = [error.get("field") for error in problem.get("errors", [])]
    for name in case.fields:
        assert name in named, problem
    assert case.detail in problem.get("detail", ""), problem
    if case.allow is not None:
        assert reply.headers["Allow"] == case.allow
    if case.status == 412:
        assert reply.etag == before["etags"][0]
    assert admin.state() == before


def test_the_state_read_around_each_bad_request_is_complete(admin: Api) -> None:
    """What the comparison above covers: every route, every pool, the history, one revision."""
    state = admin.state()
    revision = state["routes"]["revision"]
    assert [r["name"] for r in state["routes"]["routes"]] == [
        "shop",
        "three",
        "gate",
        "gate-bg",
        "web",
    ]
    assert {p["name"] for p in state["pools"]["pools"]} == {
        "stable",
        "canary",
        "third",
        "blue",
        "green",
        "empty",
    }
    assert state["pools"]["revision"] == state["history"]["revision"] == revision
    assert state["etags"] == [f'"{revision}"'] * 3


def no_eligible(reply: Reply, pool: str) -> None:
    problem = reply.problem(409, "no-eligible-backend")
    assert {"field": "pool", "message": f"{pool}: no eligible backend"} in problem["errors"]
    assert "force" in problem["detail"]


def test_weights_onto_a_pool_without_eligible_backend_need_force(admin: Api) -> None:
    before = admin.state()
    change = {"weights": {"stable": 1, "empty": 1}}
    no_eligible(admin.call("PUT", "/v1/routes/gate/weights", change), "empty")
    assert admin.state() == before

    route = admin.call("PUT", "/v1/routes/gate/weights", {**change, "force": True}).ok()
    assert route["weights"] == {"stable": 1, "empty": 1}
    assert route["revision"] == before["routes"]["revision"] + 1
    # Back where it was (abort: the baseline to 100 %, which needs no eligible canary).
    assert admin.call("POST", "/v1/routes/gate/abort").ok()["weights"] == {
        "stable": 100,
        "empty": 0,
    }


def test_promote_onto_a_pool_without_eligible_backend_needs_force(admin: Api) -> None:
    before = admin.state()
    no_eligible(admin.call("POST", "/v1/routes/gate/promote"), "empty")
    no_eligible(admin.call("POST", "/v1/routes/gate/promote", {"pool": "empty"}), "empty")
    assert admin.state() == before

    route = admin.call("POST", "/v1/routes/gate/promote", {"force": True}).ok()
    assert route["weights"] == {"stable": 0, "empty": 100}
    assert route["revision"] == before["routes"]["revision"] + 1
    assert admin.call("POST", "/v1/routes/gate/abort").ok()["weights"] == {
        "stable": 100,
        "empty": 0,
    }


def test_a_switch_onto_a_pool_without_eligible_backend_needs_force(admin: Api) -> None:
    before = admin.state()
    no_eligible(admin.call("POST", "/v1/routes/gate-bg/switch", {"to": "empty"}), "empty")
    assert admin.state() == before

    route = admin.call("POST", "/v1/routes/gate-bg/switch", {"to": "empty", "force": True}).ok()
    assert (route["active"], route["previous"]) == ("empty", "blue")
    assert route["revision"] == before["routes"]["revision"] + 1
    # Rolling back onto the healthy colour needs no force.
    route = admin.call("POST", "/v1/routes/gate-bg/rollback").ok()
    assert (route["active"], route["previous"]) == ("blue", "empty")


def test_every_problem_is_rfc_9457(admin: Api) -> None:
    """Shape of the document itself: only the RFC's members (and errors[]), typed."""
    reply = admin.call("PUT", "/v1/routes/web/weights", {"weights": {"stable": -1, "canary": 0}})
    problem = reply.problem(422, "invalid-change")
    assert set(problem) <= {"type", "title", "status", "detail", "errors"}
    assert isinstance(problem["detail"], str)
    assert problem["errors"]
    assert all(set(error) <= {"field", "message"} for error in problem["errors"])
    assert all(isinstance(error["message"], str) for error in problem["errors"])
