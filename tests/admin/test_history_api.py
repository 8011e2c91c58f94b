"""GET /v1/history: who changed what, when, from what to what, newest first."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from admin_support import Api, api, backend_loop, shop_and_web

from helpers import proxy_process


@pytest.fixture(scope="module")
def admin() -> Iterator[Api]:
    with backend_loop() as loop:
        data = shop_and_web(loop)
        with proxy_process(data) as proxy:
            yield api(proxy)


@pytest.fixture(scope="module")
def changes(admin: Api) -> dict[str, Any]:
    """Three changes made through the API, after the start; the history as it then was."""
    started = datetime.now(UTC)
    admin.call("PUT", "/v1/routes/web/weights", {"weights": {"stable": 75, "canary": 25}}).ok()
    admin.call("POST", "/v1/routes/shop/switch", {"to": "green"}).ok()
    drain = {"adminState": "drain", "force": True}  # the canary's only backend
    admin.call("PATCH", "/v1/pools/canary/backends/canary-1", drain).ok()
    # A refused change is not in the history.
    admin.call("PUT", "/v1/routes/web/weights", {"weights": {"stable": 0, "canary": 0}})
    history: dict[str, Any] = admin.get("/v1/history")
    history["window"] = (started - timedelta(seconds=60), datetime.now(UTC))
    return history


def test_changes_are_listed_newest_first(changes: dict[str, Any]) -> None:
    listed = [(c["revision"], c["actor"], c["action"], c["target"]) for c in changes["changes"]]
    assert listed == [
        (4, "local", "set-drain", "pool/canary/backend/canary-1"),
        (3, "local", "switch", "route/shop"),
        (2, "local", "set-weights", "route/web"),
        (1, "config-file", "start", "config"),
    ]
    assert changes["revision"] == 4


def test_each_change_has_an_iso_time_in_utc(changes: dict[str, Any]) -> None:
    earliest, latest = changes["window"]
    times = [datetime.fromisoformat(c["time"]) for c in changes["changes"]]
    for moment in times:
        assert moment.utcoffset() == timedelta(0)
        assert earliest <= moment <= latest + timedelta(seconds=1)
    assert times == sorted(times, reverse=True)


def test_each_change_says_what_it_was_before_and_after(changes: dict[str, Any]) -> None:
    drain, switch, weights, start = changes["changes"]

    assert weights["before"]["pools"] == weights["after"]["pools"] == {}
    assert list(weights["before"]["routes"]) == ["web"]
    assert weights["before"]["routes"]["web"]["weights"] == [["stable", 90], ["canary", 10]]
    assert weights["after"]["routes"]["web"]["weights"] == [["stable", 75], ["canary", 25]]

    assert list(switch["after"]["routes"]) == ["shop"]
    assert switch["before"]["routes"]["shop"]["active"] == "blue"
    assert switch["after"]["routes"]["shop"]["active"] == "green"
    assert switch["after"]["routes"]["shop"]["previous"] == "blue"

    assert drain["before"]["routes"] == drain["after"]["routes"] == {}
    [was] = drain["before"]["pools"]["canary"]["backends"]
    [now] = drain["after"]["pools"]["canary"]["backends"]
    assert (was["name"], was["admin_state"]) == ("canary-1", "ready")
    assert (now["name"], now["admin_state"]) == ("canary-1", "drain")

    assert start["before"] is None
    assert start["after"] is None


def test_limit_gives_the_newest_changes(admin: Api, changes: dict[str, Any]) -> None:
    assert admin.get("/v1/history?limit=2")["changes"] == changes["changes"][:2]
    assert admin.get("/v1/history?limit=1")["changes"] == changes["changes"][:1]
    assert admin.get("/v1/history?limit=1000")["changes"] == changes["changes"]


def test_the_default_page_is_the_newest_hundred(admin: Api, changes: dict[str, Any]) -> None:
    base = admin.get("/v1/routes")["revision"]
    for index in range(100):
        weights = {"stable": 1 + index % 2, "canary": 0}  # canary-1 is drained
        admin.call("PUT", "/v1/routes/web/weights", {"weights": weights}).ok()
    page = admin.get("/v1/history")["changes"]
    assert len(page) == 100
    assert [c["revision"] for c in page] == list(range(base + 100, base, -1))
    everything = admin.get("/v1/history?limit=1000")["changes"]
    assert len(everything) == base + 100
    assert everything[-1]["action"] == "start"


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "ten", "2.5", ""])
def test_a_bad_limit_is_400(admin: Api, limit: str) -> None:
    reply = admin.call("GET", f"/v1/history?limit={limit}")
    assert "limit" in reply.problem(400, "bad-query")["detail"]


def test_history_time_is_now(admin: Api) -> None:
    before = time.time()
    admin.call("POST", "/v1/routes/web/abort").ok()
    [change] = admin.get("/v1/history?limit=1")["changes"]
    stamp = datetime.fromisoformat(change["time"]).timestamp()
    assert before - 0.01 <= stamp <= time.time() + 0.01
