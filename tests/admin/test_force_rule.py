"""Force is needed exactly for a change that moves traffic onto a pool with no eligible backend
(router.guards): shifting traffic *off* a dead pool never needs it; draining the last eligible
backend of a pool that takes traffic always does.

One `turnout run` serves the module; each test puts back what it changed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from admin_support import Api, Reply, api, backend_loop

from helpers import ProxyProcess, config, proxy_process


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyProcess]:
    with backend_loop() as loop:
        pools = {name: [loop.start(name).url] for name in ("stable", "canary", "blue", "green")}
        pools["two"] = [loop.start("two-a").url, loop.start("two-b").url]
        data = config(
            pools,
            {
                "shop": {
                    "path_prefix": "/shop",
                    "mode": "blue-green",
                    "pools": ["blue", "green"],
                    "active": "blue",
                },
                "pair": {"path_prefix": "/pair", "weights": {"two": 1}},
                "web": {"weights": {"stable": 90, "canary": 10}},
            },
        )
        with proxy_process(data) as running:
            yield running


@pytest.fixture
def admin(proxy: ProxyProcess) -> Api:
    return api(proxy)


def refused(reply: Reply, pool: str) -> None:
    problem = reply.problem(409, "no-eligible-backend")
    assert {"field": "pool", "message": f"{pool}: no eligible backend"} in problem["errors"]
    assert "force" in problem["detail"]


def backend(pool: str, name: str) -> str:
    return f"/v1/pools/{pool}/backends/{name}"


WEB = "/v1/routes/web"


def test_shifting_traffic_off_a_dead_canary_needs_no_force(admin: Api) -> None:
    admin.call("PUT", f"{WEB}/weights", {"weights": {"stable": 90, "canary": 10}}).ok()
    admin.call("PATCH", backend("canary", "canary-1"), {"adminState": "maint", "force": True}).ok()
    try:
        # Canary down, 10 -> 5: less traffic on the dead pool.
        down = admin.call("PUT", f"{WEB}/weights", {"weights": {"stable": 95, "canary": 5}})
        assert down.ok()["weights"] == {"stable": 95, "canary": 5}
        # Back up, 5 -> 20: more, so refused (and nothing changed) unless forced.
        before = admin.state()
        up = {"weights": {"stable": 80, "canary": 20}}
        refused(admin.call("PUT", f"{WEB}/weights", up), "canary")
        assert admin.state() == before
        admin.call("PUT", f"{WEB}/weights", {**up, "force": True}).ok()
        # Rollback to the lower weight it had (20 -> 5): no force.
        rolled = admin.call("POST", f"{WEB}/rollback").ok()
        assert rolled["weights"] == {"stable": 95, "canary": 5}
        # Rolling back again would raise it (5 -> 20): refused.
        refused(admin.call("POST", f"{WEB}/rollback"), "canary")
    finally:
        admin.call("PATCH", backend("canary", "canary-1"), {"adminState": "ready"}).ok()


@pytest.mark.parametrize(
    "change",
    [{"adminState": "drain"}, {"adminState": "maint"}, {"weight": 0}],
    ids=["drain", "maint", "weight-0"],
)
def test_taking_the_last_backend_of_the_active_colour_needs_force(
    admin: Api, change: dict[str, object]
) -> None:
    before = admin.state()
    refused(admin.call("PATCH", backend("blue", "blue-1"), change), "blue")
    assert admin.state() == before
    forced = admin.call("PATCH", backend("blue", "blue-1"), {**change, "force": True}).ok()
    assert forced["eligible"] is False
    admin.call("PATCH", backend("blue", "blue-1"), {"adminState": "ready", "weight": 1}).ok()


def test_the_last_backend_of_a_weighted_pool_taking_traffic_needs_force(admin: Api) -> None:
    refused(admin.call("PATCH", backend("canary", "canary-1"), {"adminState": "drain"}), "canary")
    # One of two: the pool keeps an eligible backend.
    admin.call("PATCH", backend("two", "two-1"), {"adminState": "drain"}).ok()
    refused(admin.call("PATCH", backend("two", "two-2"), {"adminState": "drain"}), "two")
    # Ready again needs nothing.
    admin.call("PATCH", backend("two", "two-1"), {"adminState": "ready"}).ok()


def test_a_pool_that_takes_no_traffic_can_lose_its_last_backend(admin: Api) -> None:
    # green is the preview colour: no traffic, so nothing to refuse.
    admin.call("PATCH", backend("green", "green-1"), {"adminState": "drain"}).ok()
    try:
        # And a switch onto it now needs force, as before.
        refused(admin.call("POST", "/v1/routes/shop/switch", {"to": "green"}), "green")
    finally:
        admin.call("PATCH", backend("green", "green-1"), {"adminState": "ready"}).ok()


def test_delete_of_a_drained_backend_needs_nothing_and_of_a_ready_one_force(admin: Api) -> None:
    added = {"name": "extra", "url": "http://127.0.0.1:9", "adminState": "drain"}
    admin.call("POST", "/v1/pools/blue/backends", added).ok(201)
    admin.call("DELETE", backend("blue", "extra")).ok()
    admin.call("DELETE", backend("blue", "blue-1")).problem(409, "backend-in-service")
