"""Route endpoints do what they say, and the proxy routes by it as soon as they answer.

One `turnout run` serves the module; each test sets the weights or colour it starts from, so
the tests do not depend on each other's order. Traffic goes through the proxy to real backends
that answer with their pool's name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from admin_support import Api, api, backend_loop, send

from helpers import ProxyProcess, config, proxy_process


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyProcess]:
    with backend_loop() as loop:
        names = ("stable", "canary", "third", "blue", "green")
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
                "web": {"weights": {"stable": 90, "canary": 10}},
            },
        )
        with proxy_process(data) as running:
            yield running


@pytest.fixture
def admin(proxy: ProxyProcess) -> Api:
    return api(proxy)


def set_weights(admin: Api, route: str, weights: dict[str, int]) -> dict[str, Any]:
    body: dict[str, Any] = admin.call(
        "PUT", f"/v1/routes/{route}/weights", {"weights": weights}
    ).ok()
    assert body["weights"] == weights
    return body


def settled(route: dict[str, Any]) -> dict[str, Any]:
    """The route without what traffic moves by itself (requests seen over the last minute)."""
    return {k: v for k, v in route.items() if k not in ("observed", "observedPercentages")}


def newest_change(admin: Api) -> dict[str, Any]:
    change: dict[str, Any] = admin.get("/v1/history?limit=1")["changes"][0]
    return change


def test_routes_are_listed_in_order_with_percentages(admin: Api) -> None:
    set_weights(admin, "web", {"stable": 90, "canary": 10})
    listing = admin.get("/v1/routes")
    assert [route["name"] for route in listing["routes"]] == ["shop", "three", "web"]
    web = admin.get("/v1/routes/web")
    assert settled(listing["routes"][2]) == settled(web)
    assert web["revision"] == listing["revision"]
    assert web["mode"] == "weighted"
    assert web["match"] == {"hosts": [], "pathPrefix": "/"}
    assert web["percentages"] == {"stable": 90.0, "canary": 10.0}
    three = admin.get("/v1/routes/three")
    assert three["percentages"] == {"stable": 33.3333, "canary": 33.3333, "third": 33.3333}
    shop = admin.get("/v1/routes/shop")
    assert shop["mode"] == "blue-green"
    assert shop["pools"] == ["blue", "green"]
    assert shop["weights"] is None
    assert shop["match"]["pathPrefix"] == "/shop"


def test_set_weights_takes_effect_and_is_recorded(admin: Api, proxy: ProxyProcess) -> None:
    before = set_weights(admin, "web", {"stable": 90, "canary": 10})
    route = set_weights(admin, "web", {"stable": 0, "canary": 5})
    assert route["revision"] == before["revision"] + 1
    assert route["percentages"] == {"stable": 0.0, "canary": 100.0}
    assert route["previousWeights"] == {"stable": 90, "canary": 10}
    assert send(proxy.port, 30) == {"canary": 30}
    change = newest_change(admin)
    assert (change["revision"], change["actor"], change["action"], change["target"]) == (
        route["revision"],
        "local",
        "set-weights",
        "route/web",
    )


def test_promote_sends_everything_to_the_canary(admin: Api, proxy: ProxyProcess) -> None:
    set_weights(admin, "web", {"stable": 90, "canary": 10})
    route = admin.call("POST", "/v1/routes/web/promote").ok()
    assert route["weights"] == {"stable": 0, "canary": 100}
    assert route["percentages"] == {"stable": 0.0, "canary": 100.0}
    assert route["previousWeights"] == {"stable": 90, "canary": 10}
    assert send(proxy.port, 40) == {"canary": 40}
    assert newest_change(admin)["action"] == "promote"


def test_promote_names_the_pool_when_there_are_three(admin: Api, proxy: ProxyProcess) -> None:
    set_weights(admin, "three", {"stable": 1, "canary": 1, "third": 1})
    route = admin.call("POST", "/v1/routes/three/promote", {"pool": "third"}).ok()
    assert route["weights"] == {"stable": 0, "canary": 0, "third": 100}
    assert send(proxy.port, 30, "/three/x") == {"third": 30}


def test_abort_sends_everything_to_the_baseline(admin: Api, proxy: ProxyProcess) -> None:
    set_weights(admin, "web", {"stable": 50, "canary": 50})
    route = admin.call("POST", "/v1/routes/web/abort").ok()
    assert route["weights"] == {"stable": 100, "canary": 0}
    assert route["previousWeights"] == {"stable": 50, "canary": 50}
    assert send(proxy.port, 40) == {"stable": 40}
    assert newest_change(admin)["action"] == "abort"
    # The optional body may be given, empty.
    assert admin.call("POST", "/v1/routes/web/abort", {}).ok()["weights"] == {
        "stable": 100,
        "canary": 0,
    }


def test_rollback_restores_the_previous_weights(admin: Api, proxy: ProxyProcess) -> None:
    set_weights(admin, "web", {"stable": 100, "canary": 0})
    set_weights(admin, "web", {"stable": 0, "canary": 1})
    route = admin.call("POST", "/v1/routes/web/rollback").ok()
    assert route["weights"] == {"stable": 100, "canary": 0}
    assert route["previousWeights"] == {"stable": 0, "canary": 1}
    assert send(proxy.port, 30) == {"stable": 30}
    assert newest_change(admin)["action"] == "rollback"
    # A second rollback undoes the first.
    route = admin.call("POST", "/v1/routes/web/rollback", {}).ok()
    assert route["weights"] == {"stable": 0, "canary": 1}
    assert send(proxy.port, 30) == {"canary": 30}


def test_switch_and_rollback_move_a_blue_green_route(admin: Api, proxy: ProxyProcess) -> None:
    shop = admin.get("/v1/routes/shop")
    if shop["active"] != "blue":
        admin.call("POST", "/v1/routes/shop/switch", {"to": "blue"}).ok()
    route = admin.call("POST", "/v1/routes/shop/switch", {"to": "green"}).ok()
    assert (route["active"], route["previous"]) == ("green", "blue")
    assert send(proxy.port, 30, "/shop/cart") == {"green": 30}
    change = newest_change(admin)
    assert (change["action"], change["target"]) == ("switch", "route/shop")
    assert change["before"]["routes"]["shop"]["active"] == "blue"
    assert change["after"]["routes"]["shop"]["active"] == "green"

    route = admin.call("POST", "/v1/routes/shop/rollback").ok()
    assert (route["active"], route["previous"]) == ("blue", "green")
    assert send(proxy.port, 30, "/shop/cart") == {"blue": 30}


def test_undo_restores_the_route_as_it_was_at_a_revision(admin: Api, proxy: ProxyProcess) -> None:
    revisions = {}
    for weights in ({"stable": 90, "canary": 10}, {"stable": 50, "canary": 50}):
        revisions[weights["canary"]] = set_weights(admin, "web", weights)["revision"]
    set_weights(admin, "web", {"stable": 0, "canary": 100})
    # A change elsewhere in between does not matter to the web route's undo.
    set_weights(admin, "three", {"stable": 1, "canary": 2, "third": 3})
    last = set_weights(admin, "web", {"stable": 30, "canary": 70})["revision"]

    undone = admin.call("POST", "/v1/routes/web/undo", {"toRevision": revisions[50]}).ok()
    assert undone["weights"] == {"stable": 50, "canary": 50}
    assert undone["previousWeights"] == {"stable": 90, "canary": 10}  # as it was then, too
    assert undone["revision"] == last + 1  # a new revision, not a rewind
    assert admin.get("/v1/routes/three")["weights"] == {"stable": 1, "canary": 2, "third": 3}
    counts = send(proxy.port, 200)
    assert set(counts) == {"stable", "canary"}

    change = newest_change(admin)
    assert change["revision"] == last + 1
    assert change["action"] == f"undo-to-{revisions[50]}"
    assert change["target"] == "route/web"
    assert change["before"]["routes"]["web"]["weights"] == [["stable", 30], ["canary", 70]]
    assert change["after"]["routes"]["web"]["weights"] == [["stable", 50], ["canary", 50]]

    # Back to the very first revision, before any change of this route: the file's definition.
    first = admin.call("POST", "/v1/routes/web/undo", {"toRevision": 1}).ok()
    assert first["weights"] == {"stable": 90, "canary": 10}
    assert first["previousWeights"] is None
    assert first["revision"] == last + 2


def test_undo_of_a_blue_green_switch(admin: Api, proxy: ProxyProcess) -> None:
    shop = admin.get("/v1/routes/shop")
    other = "green" if shop["active"] == "blue" else "blue"
    switched = admin.call("POST", "/v1/routes/shop/switch", {"to": other}).ok()
    undone = admin.call(
        "POST", "/v1/routes/shop/undo", {"toRevision": switched["revision"] - 1}
    ).ok()
    assert undone["active"] == shop["active"]
    assert undone["previous"] == shop["previous"]
    assert undone["revision"] == switched["revision"] + 1
    assert send(proxy.port, 20, "/shop") == {shop["active"]: 20}


def test_writes_answer_with_the_route_and_its_etag(admin: Api) -> None:
    reply = admin.call("PUT", "/v1/routes/web/weights", {"weights": {"stable": 3, "canary": 1}})
    route = reply.ok()
    assert reply.etag == f'"{route["revision"]}"'
    assert settled(admin.get("/v1/routes/web")) == settled(route)
