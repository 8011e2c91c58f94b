"""Router micro-benchmark: nanoseconds per `decide()` and `pick_backend()` on a realistic table.

Ten routes (hosts, wildcards, path prefixes, header rules, a sticky weighted route and a
blue-green route), each request path measured on its own. Each case first checks that it takes
the path it is named for, then times `iterations` calls with time.perf_counter_ns; the median
of `repeats` runs is reported. Figures include the cost of the Python loop and call, shown
separately as "loop overhead".
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from router import (
    BackendSpec,
    HeaderRuleSpec,
    PoolSpec,
    RequestMeta,
    RouteSpec,
    RuleKind,
    Snapshot,
    Spec,
    StickySpec,
    build_snapshot,
    decide,
    pick_backend,
)

STICKY_COOKIE = "session=8f14e45f; turnout-id=0123456789abcdef; theme=dark"


def _pool(name: str, weights: list[int]) -> PoolSpec:
    return PoolSpec(
        name,
        tuple(
            BackendSpec(f"{name}-{i + 1}", "10.0.0.1", 8000 + i, weight=w)
            for i, w in enumerate(weights)
        ),
    )


def realistic_snapshot() -> Snapshot:
    pools = (
        _pool("stable", [2, 1, 1]),
        _pool("canary", [1]),
        _pool("blue", [1, 1]),
        _pool("green", [1, 1]),
        _pool("api", [1, 1]),
        _pool("api-next", [1]),
        _pool("static", [1]),
        _pool("admin", [1]),
    )
    testers = (
        HeaderRuleSpec("testers", "x-canary", "exact", "always", "canary"),
        HeaderRuleSpec("opt-out", "x-canary", "exact", "never", "stable"),
        HeaderRuleSpec("beta", "x-beta-user", "regex", "[a-z]+-[0-9]{1,6}", "canary"),
    )
    www = ("www.example.com", "example.com")
    routes = (
        RouteSpec("admin", hosts=("admin.example.com",), weights=(("admin", 1),)),
        RouteSpec("api-v1", hosts=("api.example.com",), path_prefix="/v1", weights=(("api", 1),)),
        RouteSpec(
            "api-v2",
            hosts=("api.example.com",),
            path_prefix="/v2",
            weights=(("api", 90), ("api-next", 10)),
            sticky=StickySpec(cookie="api-id"),
        ),
        RouteSpec("cdn", hosts=("*.cdn.example.com",), weights=(("static", 1),)),
        RouteSpec("images", hosts=www, path_prefix="/images", weights=(("static", 1),)),
        RouteSpec("assets", hosts=www, path_prefix="/assets", weights=(("static", 1),)),
        RouteSpec("health", path_prefix="/healthz", weights=(("stable", 1),)),
        RouteSpec(
            "checkout",
            hosts=www,
            path_prefix="/checkout",
            mode="blue-green",
            colours=("blue", "green"),
            active="blue",
            rules=(HeaderRuleSpec("preview", "x-preview", "exact", "green", "green"),),
        ),
        RouteSpec("account", hosts=www, path_prefix="/account", weights=(("stable", 1),)),
        RouteSpec(
            "web",
            hosts=www,
            weights=(("stable", 95), ("canary", 5)),
            rules=testers,
            sticky=StickySpec(issue=False),
            fallback_pool="stable",
        ),
    )
    return build_snapshot(Spec(pools=pools, routes=routes))


def _meta(
    path: str, headers: dict[str, str] | None = None, cookie: str | None = None
) -> RequestMeta:
    return RequestMeta("www.example.com", path, headers or {}, cookie)


DECIDE_CASES: dict[str, tuple[RequestMeta, RuleKind]] = {
    "decide: weighted random (no cookie)": (_meta("/products/42"), "weighted"),
    "decide: sticky cookie": (_meta("/products/42", cookie=STICKY_COOKIE), "cookie"),
    "decide: header rule": (_meta("/products/42", {"x-canary": "always"}), "header"),
    "decide: blue-green": (_meta("/checkout/pay"), "active"),
}


@dataclass(frozen=True, slots=True)
class Load:
    inflight: int


@dataclass(frozen=True, slots=True)
class Timing:
    case: str
    median_ns: float
    min_ns: float

    @property
    def per_second(self) -> float:
        return 1e9 / self.median_ns if self.median_ns > 0 else 0.0


def _time(call: Callable[[int], object], rolls: list[int], repeats: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for roll in rolls:
            call(roll)
        runs.append((time.perf_counter_ns() - start) / len(rolls))
    return statistics.median(runs), min(runs)


def _decider(meta: RequestMeta, snapshot: Snapshot) -> Callable[[int], object]:
    return lambda roll: decide(meta, snapshot, roll)


def run(iterations: int, repeats: int, seed: int = 1) -> list[Timing]:
    snapshot = realistic_snapshot()
    generator = random.Random(seed)
    rolls = [generator.getrandbits(64) for _ in range(iterations)]
    cases: dict[str, Callable[[int], object]] = {}
    for name, (meta, expected) in DECIDE_CASES.items():
        decision = decide(meta, snapshot, rolls[0])
        if decision.rule != expected:
            raise AssertionError(f"{name}: took the {decision.rule!r} path, not {expected!r}")
        cases[name] = _decider(meta, snapshot)
    stable, canary = snapshot.pools["stable"], snapshot.pools["canary"]
    loads, single = [Load(3), Load(1), Load(2)], [Load(0)]
    cases["pick_backend: 3 weighted backends"] = lambda roll: pick_backend(stable, loads, roll)
    cases["pick_backend: 1 backend"] = lambda roll: pick_backend(canary, single, roll)
    cases["loop overhead (a no-op call)"] = lambda roll: None
    return [Timing(name, *_time(call, rolls, repeats)) for name, call in cases.items()]


def text(timings: list[Timing], iterations: int, repeats: int) -> str:
    width = max(len(t.case) for t in timings)
    lines = [
        f"router micro-benchmark: {iterations:,} calls x {repeats} repeats, median (min) ns/call",
        f"{'case'.ljust(width)}  {'ns/call':>8}  {'min':>8}  {'calls/s':>12}",
    ]
    lines += [
        f"{t.case.ljust(width)}  {t.median_ns:8.1f}  {t.min_ns:8.1f}  {t.per_second:12,.0f}"
        for t in timings
    ]
    return "\n".join(lines)
