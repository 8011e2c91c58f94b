"""When a pool has no eligible backend: failover, panic mode, and slow start on readmission."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from router import (
    BackendSpec,
    PoolSpec,
    RequestMeta,
    RouteSpec,
    Spec,
    StickySpec,
    bucket_of,
    build_snapshot,
    decide,
    pick_backend,
)


def pool(name: str, *healthy: bool, panic: int = 0, slow_start: float = 0.0) -> PoolSpec:
    backends = tuple(BackendSpec(f"{name}-{i}", "127.0.0.1", 9000 + i) for i in range(len(healthy)))
    return PoolSpec(name, backends, panic_threshold=panic, slow_start=slow_start)


def health_of(*pools: PoolSpec, down: tuple[str, ...] = ()) -> dict[tuple[str, str], str]:
    return {(p.name, b.name): "unhealthy" for p in pools for b in p.backends if b.name in down}


def meta(cookie: str | None = None) -> RequestMeta:
    return RequestMeta("example.com", "/", {}, cookie)


def test_a_dead_canary_sends_its_users_to_stable_and_only_them() -> None:
    stable, canary = pool("stable", True, True), pool("canary", True)
    route = RouteSpec(
        "web", weights=(("stable", 80), ("canary", 20)), sticky=StickySpec(cookie="id")
    )
    spec = Spec((stable, canary), (route,))
    alive = build_snapshot(spec)
    dead = build_snapshot(spec, health_of(canary, down=("canary-0",)))
    moved = 0
    for user in range(2000):
        before = decide(meta(f"id=u{user}"), alive, 0)
        after = decide(meta(f"id=u{user}"), dead, 0)
        assert after.pool is not None
        assert after.pool.name == "stable"
        if before.pool is not None and before.pool.name == "canary":
            moved += 1
            assert after.fallback_from == "canary"
        else:
            assert after.fallback_from is None  # stable users never moved
    assert 300 < moved < 500  # about 20 % of 2,000
    # Back up: every user is where they were before (stickiness survives the outage).
    for user in range(200):
        assert decide(meta(f"id=u{user}"), alive, 0) == decide(meta(f"id=u{user}"), alive, 0)


def test_a_dead_pool_spreads_over_the_others_in_proportion_and_stays_sticky() -> None:
    a, b, c = pool("a", True), pool("b", True), pool("c", True)
    route = RouteSpec("web", weights=(("a", 50), ("b", 30), ("c", 20)), sticky=StickySpec("id"))
    dead = build_snapshot(Spec((a, b, c), (route,)), health_of(b, down=("b-0",)))
    landed: Counter[str] = Counter()
    for user in range(20_000):
        decision = decide(meta(f"id=u{user}"), dead, 0)
        assert decision.pool is not None
        if decision.fallback_from == "b":
            landed[decision.pool.name] += 1
            # The same user always lands in the same place.
            again = decide(meta(f"id=u{user}"), dead, 12345)
            assert again.pool is decision.pool
    share_a = landed["a"] / sum(landed.values())
    assert abs(share_a - 50 / 70) < 0.03, landed  # a:c = 50:20 of b's users


def test_random_requests_to_a_dead_pool_also_fail_over() -> None:
    stable, canary = pool("stable", True), pool("canary", True)
    route = RouteSpec("web", weights=(("stable", 50), ("canary", 50)))
    dead = build_snapshot(Spec((stable, canary), (route,)), health_of(canary, down=("canary-0",)))
    rng = random.Random(7)
    pools = {decide(meta(), dead, rng.getrandbits(64)).pool.name for _ in range(500)}  # type: ignore[union-attr]
    assert pools == {"stable"}


def test_failover_none_falls_back_to_the_fallback_pool_then_503() -> None:
    stable, canary, spare = pool("stable", True), pool("canary", True), pool("spare", True)
    routes = (
        RouteSpec(
            "a",
            hosts=("a.test",),
            weights=(("stable", 0), ("canary", 1)),
            failover="none",
            fallback_pool="spare",
        ),
        RouteSpec("b", hosts=("b.test",), weights=(("stable", 1), ("canary", 1)), failover="none"),
    )
    dead = build_snapshot(
        Spec((stable, canary, spare), routes), health_of(canary, down=("canary-0",))
    )
    to_a = decide(RequestMeta("a.test", "/", {}), dead, 0)
    assert (to_a.pool.name, to_a.fallback_from) == ("spare", "canary")  # type: ignore[union-attr]
    rolls = [bucket for bucket in range(0, 10_000, 7)]
    empties = [decide(RequestMeta("b.test", "/", {}), dead, roll) for roll in rolls]
    assert any(d.pool is not None and not d.pool.eligible for d in empties)  # -> 503


def test_blue_green_fails_over_to_the_previous_colour() -> None:
    blue, green = pool("blue", True), pool("green", True)
    route = RouteSpec(
        "shop", mode="blue-green", colours=("blue", "green"), active="green", previous="blue"
    )
    dead = build_snapshot(Spec((blue, green), (route,)), health_of(green, down=("green-0",)))
    decision = decide(meta(), dead, 0)
    assert (decision.rule, decision.pool.name, decision.fallback_from) == (
        "active",
        "blue",
        "green",
    )  # type: ignore[union-attr]
    both = build_snapshot(
        Spec((blue, green), (route,)), health_of(blue, green, down=("blue-0", "green-0"))
    )
    assert not decide(meta(), both, 0).pool.eligible  # type: ignore[union-attr]


def test_panic_routes_to_every_ready_backend_only_when_configured() -> None:
    quiet = pool("app", True, True, True, True)
    panicky = pool("app", True, True, True, True, panic=50)
    route = RouteSpec("web", weights=(("app", 1),))
    down = ("app-0", "app-1", "app-2")  # 1 of 4 healthy: 25 %
    calm = build_snapshot(Spec((quiet,), (route,)), health_of(quiet, down=down))
    assert [b.name for b in calm.pools["app"].eligible] == ["app-3"]
    assert not calm.pools["app"].panic
    panic = build_snapshot(Spec((panicky,), (route,)), health_of(panicky, down=down))
    assert panic.pools["app"].panic
    assert len(panic.pools["app"].eligible) == 4
    # At the threshold or above, no panic: 2 of 4 healthy is 50 %.
    half = build_snapshot(Spec((panicky,), (route,)), health_of(panicky, down=down[:2]))
    assert not half.pools["app"].panic


@dataclass
class Load:
    inflight: int = 0


def test_slow_start_ramps_a_readmitted_backend_from_a_tenth_to_its_full_share() -> None:
    app = pool("app", True, True, slow_start=10.0)
    route = RouteSpec("web", weights=(("app", 1),))
    spec = Spec((app,), (route,))
    snapshot = build_snapshot(spec, readmitted={("app", "app-1"): 1000.0})
    compiled = snapshot.pools["app"]
    assert compiled.ramp == ((1, 1000.0),)
    assert compiled.ramp_until == 1010.0
    loads = [Load(), Load()]
    rng = random.Random(3)

    def share_of_new(now: float) -> float:
        picks = Counter(
            pick_backend(compiled, loads, rng.getrandbits(64), now=now) for _ in range(20_000)
        )
        return picks[1] / 20_000

    assert share_of_new(1000.0) < 0.12  # 10 % weight against 100 %: about 9 %
    assert 0.25 < share_of_new(1005.0) < 0.40  # half way: 0.5 against 1
    assert 0.45 < share_of_new(1010.0) < 0.55  # done: equal shares
    assert 0.45 < share_of_new(0.0) < 0.55  # no clock given: no ramp


def test_bucket_scramble_is_a_bijection() -> None:
    # Failover relies on x -> x * 7919 mod 10000 being one-to-one on buckets.
    assert len({bucket * 7919 % 10_000 for bucket in range(10_000)}) == 10_000
    assert bucket_of("anything") in range(10_000)
