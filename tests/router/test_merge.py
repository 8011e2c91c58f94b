"""carry_runtime: on a reload, runtime changes survive unless the file changed that route/pool."""

from __future__ import annotations

from dataclasses import replace

from router import BackendSpec, PoolSpec, RouteSpec, Spec, carry_runtime

STABLE = PoolSpec("stable", (BackendSpec("s1", "127.0.0.1", 9001),))
CANARY = PoolSpec("canary", (BackendSpec("c1", "127.0.0.1", 9002),))
WEB = RouteSpec("web", weights=(("stable", 90), ("canary", 10)))
SHOP = RouteSpec(
    "shop", path_prefix="/shop", mode="blue-green", colours=("stable", "canary"), active="stable"
)
FILE = Spec(pools=(STABLE, CANARY), routes=(SHOP, WEB))

# At runtime: the canary raised, the shop switched, a backend drained.
RUNTIME = Spec(
    pools=(
        replace(STABLE, backends=(replace(STABLE.backends[0], admin_state="drain"),)),
        CANARY,
    ),
    routes=(
        replace(SHOP, active="canary", previous="stable"),
        replace(WEB, weights=(("stable", 50), ("canary", 50)), previous_weights=WEB.weights),
    ),
)


def test_an_unchanged_file_keeps_every_runtime_change() -> None:
    assert carry_runtime(FILE, FILE, RUNTIME) == RUNTIME


def test_a_changed_route_takes_the_file_and_the_others_keep_runtime_state() -> None:
    new_web = replace(WEB, weights=(("stable", 75), ("canary", 25)))
    new_file = replace(FILE, routes=(SHOP, new_web))
    merged = carry_runtime(FILE, new_file, RUNTIME)
    assert merged.route("web") == new_web
    assert merged.route("shop") == RUNTIME.route("shop")
    assert merged.pools == RUNTIME.pools


def test_a_changed_pool_takes_the_file() -> None:
    new_stable = replace(STABLE, backends=(*STABLE.backends, BackendSpec("s2", "127.0.0.1", 9003)))
    merged = carry_runtime(FILE, replace(FILE, pools=(new_stable, CANARY)), RUNTIME)
    assert merged.pool("stable") == new_stable  # the drain is gone with the old definition
    assert merged.pool("canary") == CANARY


def test_routes_follow_the_file_order_and_removals_and_additions() -> None:
    extra = RouteSpec("api", path_prefix="/api", weights=(("stable", 1),))
    new_file = replace(FILE, routes=(extra, WEB))  # shop removed, api added first
    merged = carry_runtime(FILE, new_file, RUNTIME)
    assert [route.name for route in merged.routes] == ["api", "web"]
    assert merged.route("web") == RUNTIME.route("web")
    assert merged.route("api") == extra
