"""build_snapshot: validation names the offending field; a valid spec compiles once."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from router import (
    BackendSpec,
    HeaderRuleSpec,
    PoolSpec,
    Problem,
    RouteSpec,
    Spec,
    SpecError,
    StickySpec,
    build_snapshot,
)
from router.spec import Health

STABLE = PoolSpec(
    "stable", (BackendSpec("s1", "127.0.0.1", 8001), BackendSpec("s2", "127.0.0.1", 8002))
)
CANARY = PoolSpec("canary", (BackendSpec("c1", "127.0.0.1", 8003),))
BLUE = PoolSpec("blue", (BackendSpec("b1", "127.0.0.1", 8004),))
GREEN = PoolSpec("green", (BackendSpec("g1", "127.0.0.1", 8005),))
POOLS = (STABLE, CANARY, BLUE, GREEN)

WEB = RouteSpec("web", weights=(("stable", 90), ("canary", 10)))
BLUE_GREEN = RouteSpec("web", mode="blue-green", colours=("blue", "green"), active="blue")


def _spec(route: RouteSpec = WEB, pools: tuple[PoolSpec, ...] = POOLS) -> Spec:
    return Spec(pools=pools, routes=(route,))


def _web(**changes: Any) -> Spec:
    return _spec(replace(WEB, **changes))


def _blue_green(**changes: Any) -> Spec:
    return _spec(replace(BLUE_GREEN, **changes))


def _rule(match: Any = "exact", value: str | None = "always", **changes: Any) -> HeaderRuleSpec:
    rule = HeaderRuleSpec("beta", "x-canary", match, value, "canary")
    return replace(rule, **changes)


def _stable(*backends: BackendSpec) -> Spec:
    return _spec(pools=(PoolSpec("stable", backends), CANARY))


def _fields(spec: Spec) -> list[str]:
    with pytest.raises(SpecError) as caught:
        build_snapshot(spec)
    return [problem.field for problem in caught.value.problems]


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        # Weights.
        pytest.param(
            _web(weights=(("stable", 90), ("ghost", 10))),
            "routes.web.weights.ghost",
            "unknown pool 'ghost'",
            id="unknown-pool",
        ),
        pytest.param(
            _web(weights=(("stable", 90), ("canary", -1))),
            "routes.web.weights.canary",
            "negative",
            id="negative-weight",
        ),
        pytest.param(
            _web(weights=(("stable", 0), ("canary", 0))),
            "routes.web.weights",
            "at least one weight must be positive",
            id="all-zero",
        ),
        pytest.param(_web(weights=()), "routes.web.weights", "needs weights", id="no-weights"),
        pytest.param(
            _web(weights=(("stable", 1), ("stable", 1))),
            "routes.web.weights",
            "listed twice",
            id="pool-twice",
        ),
        pytest.param(
            _web(weights=(("stable", 1), ("canary", 10**9), ("blue", 1))),
            "routes.web.weights",
            "too skewed",
            id="too-skewed",
        ),
        pytest.param(
            _web(previous_weights=(("stable", 1), ("ghost", 1))),
            "routes.web.previous_weights.ghost",
            "unknown pool",
            id="previous-weights",
        ),
        pytest.param(_web(active="blue"), "routes.web", "blue-green", id="weighted-with-active"),
        # Names.
        pytest.param(_web(name="Web"), "routes.Web", "not a valid name", id="route-name-upper"),
        pytest.param(_web(name="-web"), "routes.-web", "not a valid name", id="route-name-dash"),
        pytest.param(
            _spec(pools=(*POOLS, PoolSpec("Spare", ()))),
            "pools.Spare",
            "not a valid name",
            id="pool-name",
        ),
        pytest.param(
            _spec(pools=(*POOLS, PoolSpec("a" * 64, ()))),
            f"pools.{'a' * 64}",
            "1-63",
            id="pool-name-long",
        ),
        pytest.param(
            _stable(BackendSpec("S1", "127.0.0.1", 8001)),
            "pools.stable.backends[0].name",
            "not a valid name",
            id="backend-name",
        ),
        # Pools and backends.
        pytest.param(
            _spec(pools=(*POOLS, STABLE)), "pools.stable", "defined twice", id="pool-twice-defined"
        ),
        pytest.param(
            _stable(BackendSpec("s1", "127.0.0.1", 8001), BackendSpec("s1", "127.0.0.1", 8002)),
            "pools.stable.backends[1].name",
            "backend 's1' defined twice",
            id="duplicate-backend",
        ),
        pytest.param(
            _stable(BackendSpec("s1", "127.0.0.1", 0)),
            "pools.stable.backends[0].url",
            "port 0",
            id="port-0",
        ),
        pytest.param(
            _stable(BackendSpec("s1", "127.0.0.1", 65536)),
            "pools.stable.backends[0].url",
            "port 65536",
            id="port-65536",
        ),
        pytest.param(
            _stable(BackendSpec("s1", "", 8001)),
            "pools.stable.backends[0].url",
            "needs a host",
            id="no-host",
        ),
        pytest.param(
            _stable(BackendSpec("s1", "127.0.0.1", 8001, weight=-1)),
            "pools.stable.backends[0].weight",
            "zero or positive",
            id="backend-weight",
        ),
        pytest.param(
            Spec(pools=POOLS, routes=(WEB, WEB)), "routes.web", "defined twice", id="route-twice"
        ),
        # Hosts and paths.
        pytest.param(
            _web(hosts=("exa mple.com",)), "routes.web.hosts[0]", "not a host name", id="host-space"
        ),
        pytest.param(
            _web(hosts=("ok.test", "*.*.example.com")),
            "routes.web.hosts[1]",
            "not a host name",
            id="host-double-wildcard",
        ),
        pytest.param(
            _web(hosts=("foo.*.com",)),
            "routes.web.hosts[0]",
            "not a host name",
            id="host-inner-wildcard",
        ),
        pytest.param(
            _web(hosts=("example.com:80",)),
            "routes.web.hosts[0]",
            "not a host name",
            id="host-with-port",
        ),
        pytest.param(
            _web(path_prefix="api"),
            "routes.web.path_prefix",
            "must start with '/'",
            id="path-prefix",
        ),
        pytest.param(
            _web(fallback_pool="ghost"), "routes.web.fallback_pool", "unknown pool", id="fallback"
        ),
        # Header rules.
        pytest.param(
            _web(rules=(_rule("regex", "v2("),)),
            "routes.web.rules[0].value",
            "invalid regex",
            id="bad-regex",
        ),
        pytest.param(
            _web(rules=(_rule("exact", None),)),
            "routes.web.rules[0].value",
            "needs a value",
            id="exact-no-value",
        ),
        pytest.param(
            _web(rules=(_rule("exact", "always "),)),
            "routes.web.rules[0].value",
            "surrounding whitespace",
            id="exact-value-never-matches",
        ),
        pytest.param(
            _web(rules=(_rule("regex", None),)),
            "routes.web.rules[0].value",
            "needs a value",
            id="regex-no-value",
        ),
        pytest.param(
            _web(rules=(_rule("present", "1"),)),
            "routes.web.rules[0].value",
            "takes no value",
            id="present-with-value",
        ),
        pytest.param(
            _web(rules=(_rule(header="x canary"),)),
            "routes.web.rules[0].header",
            "not a header name",
            id="header-name",
        ),
        pytest.param(
            _web(rules=(_rule(pool="ghost"),)),
            "routes.web.rules[0].pool",
            "unknown pool",
            id="rule-pool",
        ),
        pytest.param(
            _web(rules=(_rule(name="Beta"),)),
            "routes.web.rules[0].name",
            "not a valid name",
            id="rule-name",
        ),
        pytest.param(
            _web(rules=(_rule(), _rule(header="x-other"))),
            "routes.web.rules",
            "unique",
            id="rule-names-unique",
        ),
        pytest.param(
            _web(rules=(_rule(), _rule(name="b2", value=None))),
            "routes.web.rules[1].value",
            "needs a value",
            id="second-rule",
        ),
        # Blue-green.
        pytest.param(
            _blue_green(active="red"),
            "routes.web.active",
            "'red' is not one of pools",
            id="active-not-in-pools",
        ),
        pytest.param(
            _blue_green(active=None), "routes.web.active", "needs an active pool", id="no-active"
        ),
        pytest.param(
            _blue_green(colours=("blue",)), "routes.web.pools", "at least two", id="one-colour"
        ),
        pytest.param(
            _blue_green(colours=("blue", "blue", "green")),
            "routes.web.pools",
            "listed twice",
            id="colour-twice",
        ),
        pytest.param(
            _blue_green(colours=("blue", "ghost")),
            "routes.web.pools[1]",
            "unknown pool",
            id="unknown-colour",
        ),
        pytest.param(
            _blue_green(previous="blue"),
            "routes.web.previous",
            "another one",
            id="previous-is-active",
        ),
        pytest.param(
            _blue_green(previous="stable"),
            "routes.web.previous",
            "another one",
            id="previous-not-colour",
        ),
        pytest.param(
            _blue_green(weights=(("blue", 1),)),
            "routes.web.weights",
            "weighted",
            id="blue-green-weights",
        ),
        pytest.param(
            _blue_green(sticky=StickySpec()),
            "routes.web.sticky",
            "weighted",
            id="blue-green-sticky",
        ),
        # Sticky cookies.
        pytest.param(
            _web(sticky=StickySpec(same_site="None")),
            "routes.web.sticky.same_site",
            "requires secure",
            id="samesite-none",
        ),
        pytest.param(
            _web(sticky=StickySpec(cookie="turnout id")),
            "routes.web.sticky.cookie",
            "not a cookie name",
            id="cookie-name",
        ),
        pytest.param(
            _web(sticky=StickySpec(cookie="")),
            "routes.web.sticky.cookie",
            "not a cookie name",
            id="cookie-name-empty",
        ),
        pytest.param(
            _web(sticky=StickySpec(max_age=-1)),
            "routes.web.sticky.max_age",
            "zero or positive",
            id="max-age",
        ),
        pytest.param(
            _web(sticky=StickySpec(path="app")),
            "routes.web.sticky.path",
            "start with '/'",
            id="cookie-path",
        ),
        pytest.param(
            _web(sticky=StickySpec(path="/a;b")),
            "routes.web.sticky.path",
            "no ';'",
            id="cookie-path-semicolon",
        ),
        pytest.param(
            _web(sticky=StickySpec(path="/a\r\nX: y")),
            "routes.web.sticky.path",
            "no ';'",
            id="cookie-path-crlf",
        ),
    ],
)
def test_invalid_spec_names_the_field(spec: Spec, field: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        build_snapshot(spec)
    problems = caught.value.problems
    assert [problem.field for problem in problems] == [field], problems
    assert message in problems[0].message
    assert str(caught.value) == f"{field}: {problems[0].message}"


def test_too_many_pools_in_one_split() -> None:
    pools = tuple(PoolSpec(f"p{i}", (BackendSpec("b", "127.0.0.1", 9000 + i),)) for i in range(65))
    route = RouteSpec("web", weights=tuple((pool.name, 1) for pool in pools))
    assert _fields(Spec(pools=pools, routes=(route,))) == ["routes.web.weights"]
    # 64 is allowed.
    build_snapshot(Spec(pools=pools, routes=(replace(route, weights=route.weights[:64]),)))


def test_all_problems_reported_at_once() -> None:
    spec = Spec(
        pools=(
            PoolSpec(
                "stable", (BackendSpec("s1", "127.0.0.1", 0), BackendSpec("s1", "127.0.0.1", 8002))
            ),
            CANARY,
        ),
        routes=(
            RouteSpec(
                "web",
                weights=(("stable", 90), ("ghost", 10)),
                rules=(_rule("regex", "("),),
                sticky=StickySpec(same_site="None"),
            ),
            RouteSpec("Api", weights=(("stable", 0), ("canary", 0))),
        ),
    )
    with pytest.raises(SpecError) as caught:
        build_snapshot(spec)
    problems = caught.value.problems
    assert [problem.field for problem in problems] == [
        "pools.stable.backends[0].url",
        "pools.stable.backends[1].name",
        "routes.web.rules[0].value",
        "routes.web.weights.ghost",
        "routes.web.sticky.same_site",
        "routes.Api",
        "routes.Api.weights",
    ]
    text = str(caught.value)
    assert all(str(problem) in text for problem in problems)
    assert isinstance(caught.value, ValueError)


def test_problem_str() -> None:
    assert str(Problem("routes.web.weights", "bad")) == "routes.web.weights: bad"


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(_spec(), id="weighted"),
        pytest.param(_blue_green(previous="green"), id="blue-green"),
        pytest.param(
            _web(sticky=StickySpec(same_site="None", secure=True)), id="samesite-none-secure"
        ),
        pytest.param(_web(hosts=("*",)), id="any-host"),
        pytest.param(_web(hosts=("*.example.com", "localhost", "10.0.0.1")), id="hosts"),
        pytest.param(_web(weights=(("stable", 0), ("canary", 1))), id="promoted"),
        pytest.param(
            _web(rules=(_rule("present", None), _rule("regex", "v2.*", name="b2"))), id="rules"
        ),
        pytest.param(
            _web(previous_weights=(("stable", 100), ("canary", 0))), id="previous-weights"
        ),
        pytest.param(
            _stable(BackendSpec("s1", "127.0.0.1", 65535, weight=0)), id="backend-weight-0"
        ),
    ],
)
def test_valid_specs_build(spec: Spec) -> None:
    snapshot = build_snapshot(spec)
    assert snapshot.spec is spec
    assert snapshot.revision == 1
    assert [route.name for route in snapshot.routes] == [route.name for route in spec.routes]


def test_snapshot_is_compiled() -> None:
    spec = _web(
        hosts=("Shop.Example.com.", "*.example.org"),
        path_prefix="/api/",
        rules=(_rule(header="X-Canary"), _rule("regex", r"v\d+", name="ver", header="X-Ver")),
        sticky=StickySpec(),
    )
    snapshot = build_snapshot(spec, revision=7)
    assert snapshot.revision == 7
    route = snapshot.routes[0]
    assert route.exact_hosts == {"shop.example.com"}
    assert route.wildcard_suffixes == (".example.org",)
    assert not route.any_host
    assert route.path_prefix == "/api"
    assert [pool.name for pool in route.split_pools] == ["canary", "stable"]
    assert route.split_bounds == (1000, 10_000)
    assert snapshot.rule_headers == {"x-canary", "x-ver"}
    assert [rule.header for rule in route.rules] == ["x-canary", "x-ver"]
    assert route.rules[1].pattern is not None
    assert route.rules[1].pattern.pattern == r"v\d+"
    assert route.cookie_attributes == "; Max-Age=2592000; Path=/; HttpOnly; SameSite=Lax"
    assert snapshot.route("web") is route
    assert snapshot.route("nope") is None


def test_eligibility_from_admin_state_health_and_weight() -> None:
    spec = _stable(
        BackendSpec("ready", "127.0.0.1", 8001, weight=2),
        BackendSpec("drained", "127.0.0.1", 8002, admin_state="drain"),
        BackendSpec("maint", "127.0.0.1", 8003, admin_state="maint"),
        BackendSpec("sick", "127.0.0.1", 8004),
        BackendSpec("zero", "127.0.0.1", 8005, weight=0),
        BackendSpec("other", "127.0.0.1", 8006, weight=3),
    )
    health: dict[tuple[str, str], Health] = {("stable", "sick"): "unhealthy"}
    snapshot = build_snapshot(spec, health=health)
    pool = snapshot.pools["stable"]
    assert [backend.name for backend in pool.backends] == [
        "ready",
        "drained",
        "maint",
        "sick",
        "zero",
        "other",
    ]
    assert [backend.name for backend in pool.eligible] == ["ready", "other"]
    assert pool.cumulative == (2, 5)
    assert pool.backends[3].health == "unhealthy"
    assert pool.backends[0].health == "healthy"  # absent from the view counts as healthy
    assert pool.backends[0].key == ("stable", "ready")
    assert spec.pools[0].backends[0].address == "127.0.0.1:8001"


def test_snapshot_does_not_share_the_callers_health_dict() -> None:
    health: dict[tuple[str, str], Health] = {}
    snapshot = build_snapshot(_spec(), health=health)
    health[("stable", "s1")] = "unhealthy"
    assert snapshot.health == {}
    with pytest.raises(TypeError):
        snapshot.health[("stable", "s1")] = "unhealthy"  # type: ignore[index]
    with pytest.raises(TypeError):
        snapshot.pools["x"] = snapshot.pools["stable"]  # type: ignore[index]
