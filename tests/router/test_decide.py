"""decide(): route matching, header rules, blue-green, sticky buckets and fallback, fixed rolls."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from router import (
    BackendSpec,
    Decision,
    HeaderRuleSpec,
    PoolSpec,
    RequestMeta,
    RouteSpec,
    Snapshot,
    Spec,
    StickySpec,
    bucket_of,
    build_snapshot,
    decide,
    normalise_host,
)
from router.decide import new_cookie_value
from router.spec import AdminState, Health, MatchKind

ISSUING = StickySpec(
    cookie="tid", salt="pepper", max_age=60, path="/app", secure=True, same_site="None"
)


def _pool(name: str, port: int, admin_state: AdminState = "ready") -> PoolSpec:
    return PoolSpec(name, (BackendSpec(f"{name}-1", "127.0.0.1", port, admin_state=admin_state),))


def _rule(name: str, header: str, match: MatchKind, value: str | None, pool: str) -> HeaderRuleSpec:
    return HeaderRuleSpec(name, header, match, value, pool)


SPEC = Spec(
    pools=(
        _pool("stable", 8001),
        _pool("canary", 8002),
        _pool("blue", 8003),
        _pool("green", 8004),
        _pool("api", 8005),
        _pool("other", 8006),
        _pool("down", 8007, admin_state="maint"),
        _pool("drained", 8008, admin_state="drain"),
    ),
    routes=(
        RouteSpec("api", hosts=("shop.example.com",), path_prefix="/api/", weights=(("api", 1),)),
        RouteSpec("shop", hosts=("shop.example.com",), weights=(("stable", 1),)),
        RouteSpec("wild", hosts=("*.example.com",), weights=(("other", 1),)),
        RouteSpec(
            "bluegreen",
            hosts=("bg.test",),
            mode="blue-green",
            colours=("blue", "green"),
            active="green",
            rules=(_rule("preview", "X-Preview", "present", None, "blue"),),
        ),
        RouteSpec(
            "canary",
            hosts=("canary.test",),
            weights=(("stable", 90), ("canary", 10)),
            rules=(
                _rule("always", "X-Canary", "exact", "always", "canary"),
                _rule("version", "x-version", "regex", r"v2(\.\d+)?", "canary"),
                _rule("debug", "x-debug", "present", None, "other"),
            ),
            sticky=StickySpec(issue=False),
        ),
        RouteSpec(
            "issuing",
            hosts=("issue.test",),
            weights=(("stable", 90), ("canary", 10)),
            sticky=ISSUING,
        ),
        RouteSpec(
            "default-sticky", hosts=("sticky.test",), weights=(("stable", 1),), sticky=StickySpec()
        ),
        RouteSpec("plain", hosts=("plain.test",), weights=(("stable", 90), ("canary", 10))),
        RouteSpec(
            "fallback",
            hosts=("fb.test",),
            weights=(("down", 1),),
            rules=(_rule("pin", "x-pin", "present", None, "drained"),),
            fallback_pool="stable",
        ),
        RouteSpec(
            "fallback-ok", hosts=("fbok.test",), weights=(("canary", 1),), fallback_pool="stable"
        ),
        RouteSpec(
            "fallback-dead", hosts=("fbdead.test",), weights=(("down", 1),), fallback_pool="drained"
        ),
        RouteSpec("nofallback", hosts=("nofb.test",), weights=(("down", 1),)),
        RouteSpec(
            "bg-fallback",
            hosts=("bgfb.test",),
            mode="blue-green",
            colours=("down", "green"),
            active="down",
            fallback_pool="blue",
            failover="none",  # else the other colour comes first (see test_failover.py)
        ),
    ),
)


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    return build_snapshot(SPEC)


def _meta(
    host: str, path: str = "/", headers: Mapping[str, str] | None = None, cookie: str | None = None
) -> RequestMeta:
    return RequestMeta(host=host, path=path, headers=headers or {}, cookie=cookie)


def _route_name(decision: Decision) -> str | None:
    return None if decision.route is None else decision.route.name


def _pool_name(decision: Decision) -> str | None:
    return None if decision.pool is None else decision.pool.name


@pytest.mark.parametrize(
    ("host", "path", "route"),
    [
        # Path prefix on element boundaries; the prefix's trailing slash is ignored.
        ("shop.example.com", "/api", "api"),
        ("shop.example.com", "/api/", "api"),
        ("shop.example.com", "/api/x", "api"),
        ("shop.example.com", "/api/x/y", "api"),
        ("shop.example.com", "/apix", "shop"),
        ("shop.example.com", "/ap", "shop"),
        ("shop.example.com", "/", "shop"),
        # Exact host "shop" is declared before the wildcard: first match wins.
        ("shop.example.com", "/anything", "shop"),
        # A wildcard matches one or more labels in front, never the bare domain.
        ("a.example.com", "/", "wild"),
        ("a.example.com", "/api/x", "wild"),
        ("a.b.example.com", "/", "wild"),
        ("example.com", "/", None),
        (".example.com", "/", None),  # an empty label is not a label
        ("xexample.com", "/", None),
        ("example.com.evil.test", "/", None),
        ("bg.test", "/", "bluegreen"),
        ("unknown.test", "/", None),
        ("", "/", None),
    ],
)
def test_route_matching(snapshot: Snapshot, host: str, path: str, route: str | None) -> None:
    decision = decide(_meta(host, path), snapshot, roll=0)
    assert _route_name(decision) == route
    if route is None:
        assert decision == Decision(route=None, pool=None, rule="no-route")
        assert decision.set_cookie_header() is None


def test_declared_order_beats_specificity() -> None:
    routes = (
        RouteSpec("wild", hosts=("*.example.com",), weights=(("other", 1),)),
        RouteSpec("exact", hosts=("shop.example.com",), weights=(("stable", 1),)),
        RouteSpec("root", weights=(("canary", 1),)),
    )
    snapshot = build_snapshot(Spec(pools=SPEC.pools, routes=routes))
    assert _route_name(decide(_meta("shop.example.com"), snapshot, 0)) == "wild"
    # No hosts means any host; "/" matches every path.
    assert _route_name(decide(_meta("example.com", "/deep/path"), snapshot, 0)) == "root"


def test_route_hosts_are_normalised_at_build() -> None:
    routes = (RouteSpec("web", hosts=("Shop.Example.COM.",), weights=(("stable", 1),)),)
    snapshot = build_snapshot(Spec(pools=SPEC.pools, routes=routes))
    assert _route_name(decide(_meta("shop.example.com"), snapshot, 0)) == "web"


@pytest.mark.parametrize(
    ("headers", "rule", "rule_name", "pool"),
    [
        ({"x-canary": "always"}, "header", "always", "canary"),
        ({"x-version": "v2"}, "header", "version", "canary"),
        ({"x-version": "v2.13"}, "header", "version", "canary"),
        # A regex must match the whole value, not a substring.
        ({"x-version": "v20"}, "weighted", None, "stable"),
        ({"x-version": "xv2"}, "weighted", None, "stable"),
        ({"x-version": "v2.1-beta"}, "weighted", None, "stable"),
        # Exact is exact: case and whitespace count.
        ({"x-canary": "Always"}, "weighted", None, "stable"),
        ({"x-canary": "always "}, "weighted", None, "stable"),
        ({"x-canary": "never"}, "weighted", None, "stable"),
        # Present matches any value, even an empty one.
        ({"x-debug": ""}, "header", "debug", "other"),
        ({"x-debug": "1"}, "header", "debug", "other"),
        # The first rule in declared order wins, whatever order the headers came in.
        ({"x-debug": "1", "x-version": "v2", "x-canary": "always"}, "header", "always", "canary"),
        ({"x-debug": "1", "x-version": "v2"}, "header", "version", "canary"),
        ({"x-unrelated": "always"}, "weighted", None, "stable"),
        ({}, "weighted", None, "stable"),
    ],
)
def test_header_rules(
    snapshot: Snapshot, headers: dict[str, str], rule: str, rule_name: str | None, pool: str
) -> None:
    # Roll 5000 is bucket 5000: stable in the 90/10 split.
    decision = decide(_meta("canary.test", headers=headers), snapshot, roll=5000)
    assert (decision.rule, decision.rule_name, _pool_name(decision)) == (rule, rule_name, pool)
    if rule == "header":
        assert decision.bucket is None
    else:
        assert decision.bucket == 5000


def test_header_rule_beats_sticky_cookie(snapshot: Snapshot) -> None:
    cookie = "turnout-id=user-1"  # bucket 3768: stable in the 90/10 split
    assert _pool_name(decide(_meta("canary.test", cookie=cookie), snapshot, 0)) == "stable"
    decision = decide(
        _meta("canary.test", headers={"x-canary": "always"}, cookie=cookie), snapshot, 0
    )
    assert (decision.rule, decision.rule_name, _pool_name(decision)) == (
        "header",
        "always",
        "canary",
    )


def test_rule_headers_are_lower_case(snapshot: Snapshot) -> None:
    assert snapshot.rule_headers == {"x-preview", "x-canary", "x-version", "x-debug", "x-pin"}


@pytest.mark.parametrize(
    ("headers", "rule", "rule_name", "pool"),
    [
        ({}, "active", None, "green"),
        ({"x-preview": "1"}, "header", "preview", "blue"),
    ],
)
def test_blue_green(
    snapshot: Snapshot, headers: dict[str, str], rule: str, rule_name: str | None, pool: str
) -> None:
    for roll in (0, 1, 9999, 2**64 - 1):
        decision = decide(_meta("bg.test", headers=headers, cookie="turnout-id=u"), snapshot, roll)
        assert (decision.rule, decision.rule_name, _pool_name(decision)) == (rule, rule_name, pool)
        assert decision.bucket is None
        assert decision.issued_cookie is None
        assert decision.fallback_from is None


@pytest.mark.parametrize(
    ("value", "pool"),
    [
        ("user-1", "stable"),  # bucket 3768
        ("user-21", "canary"),  # bucket 960
        ("user-0", "stable"),  # bucket 1073
    ],
)
def test_sticky_cookie_present(snapshot: Snapshot, value: str, pool: str) -> None:
    for roll in (0, 1, 5000, 2**63 + 7):
        decision = decide(
            _meta("canary.test", cookie=f"a=1; turnout-id={value}; b=2"), snapshot, roll
        )
        assert decision.rule == "cookie"
        assert decision.bucket == bucket_of(value, "")
        assert _pool_name(decision) == pool
        assert decision.issued_cookie is None
        assert decision.set_cookie_header() is None


def test_sticky_cookie_uses_route_salt(snapshot: Snapshot) -> None:
    decision = decide(_meta("issue.test", cookie="tid=user-1"), snapshot, roll=0)
    assert decision.rule == "cookie"
    assert decision.bucket == bucket_of("user-1", "pepper") == 8846
    assert decision.bucket != bucket_of("user-1")
    assert decision.issued_cookie is None


@pytest.mark.parametrize("roll", [0, 1, 0xDEAD_BEEF_CAFE_F00D, 2**64 + 5, 123_456_789])
def test_sticky_cookie_issued_when_absent(snapshot: Snapshot, roll: int) -> None:
    decision = decide(_meta("issue.test", cookie="other=1"), snapshot, roll)
    issued = new_cookie_value(roll)
    assert decision.rule == "cookie"
    assert decision.issued_cookie == issued
    assert decision.bucket == bucket_of(issued, "pepper")
    assert _pool_name(decision) == ("canary" if decision.bucket < 1000 else "stable")
    assert decision.set_cookie_header() == (
        f"tid={issued}; Max-Age=60; Path=/app; Secure; HttpOnly; SameSite=None"
    )
    # The next request carries the cookie and sticks to the same bucket, whatever its roll.
    again = decide(_meta("issue.test", cookie=f"tid={issued}"), snapshot, roll + 1)
    assert (again.rule, again.bucket, again.pool) == ("cookie", decision.bucket, decision.pool)
    assert again.issued_cookie is None


@pytest.mark.parametrize(
    ("roll", "value"),
    [
        (0, "0000000000000000"),
        (1, "0000000000000001"),
        (0xDEAD_BEEF_CAFE_F00D, "deadbeefcafef00d"),
        (2**64 - 1, "ffffffffffffffff"),
        (2**64 + 5, "0000000000000005"),
        (-1, "ffffffffffffffff"),
        (-(2**64) - 2, "fffffffffffffffe"),
    ],
)
def test_new_cookie_value(roll: int, value: str) -> None:
    assert new_cookie_value(roll) == value


def test_default_sticky_set_cookie(snapshot: Snapshot) -> None:
    decision = decide(_meta("sticky.test"), snapshot, roll=0xABC)
    assert decision.set_cookie_header() == (
        "turnout-id=0000000000000abc; Max-Age=2592000; Path=/; HttpOnly; SameSite=Lax"
    )


@pytest.mark.parametrize(
    ("sticky", "tail"),
    [
        (StickySpec(), "; Max-Age=2592000; Path=/; HttpOnly; SameSite=Lax"),
        (StickySpec(http_only=False), "; Max-Age=2592000; Path=/; SameSite=Lax"),
        (
            StickySpec(secure=True, same_site="Strict"),
            "; Max-Age=2592000; Path=/; Secure; HttpOnly; SameSite=Strict",
        ),
        (StickySpec(max_age=0, path="/x"), "; Max-Age=0; Path=/x; HttpOnly; SameSite=Lax"),
    ],
)
def test_set_cookie_attributes(sticky: StickySpec, tail: str) -> None:
    route = RouteSpec("web", weights=(("stable", 1),), sticky=sticky)
    snapshot = build_snapshot(Spec(pools=SPEC.pools, routes=(route,)))
    decision = decide(_meta("any.test"), snapshot, roll=255)
    assert decision.set_cookie_header() == f"{sticky.cookie}=00000000000000ff{tail}"


@pytest.mark.parametrize(
    ("host", "roll", "bucket", "pool"),
    [
        # Sticky without issuing, and no cookie: the roll's bucket, nothing issued.
        ("canary.test", 0, 0, "canary"),
        ("canary.test", 999, 999, "canary"),
        ("canary.test", 1000, 1000, "stable"),
        ("canary.test", 10_999, 999, "canary"),
        ("canary.test", 123_456_789, 6789, "stable"),
        # Not sticky at all: the same.
        ("plain.test", 9999, 9999, "stable"),
        ("plain.test", 20_500, 500, "canary"),
        ("plain.test", 2**64 + 3, (2**64 + 3) % 10_000, "stable"),
    ],
)
def test_weighted_by_roll(snapshot: Snapshot, host: str, roll: int, bucket: int, pool: str) -> None:
    decision = decide(_meta(host, cookie="unrelated=1"), snapshot, roll)
    assert decision.rule == "weighted"
    assert decision.bucket == bucket == roll % 10_000
    assert _pool_name(decision) == pool
    assert decision.issued_cookie is None
    assert decision.set_cookie_header() is None


def test_fallback_when_chosen_pool_has_no_eligible_backend(snapshot: Snapshot) -> None:
    decision = decide(_meta("fb.test"), snapshot, roll=42)
    assert snapshot.pools["down"].eligible == ()
    assert (decision.rule, _pool_name(decision), decision.fallback_from) == (
        "weighted",
        "stable",
        "down",
    )
    assert decision.bucket == 42
    assert decision.pool is not None
    assert decision.pool.eligible  # the fallback has somewhere to send the request


def test_fallback_keeps_header_rule(snapshot: Snapshot) -> None:
    decision = decide(_meta("fb.test", headers={"x-pin": "1"}), snapshot, roll=0)
    assert (decision.rule, decision.rule_name) == ("header", "pin")
    assert (_pool_name(decision), decision.fallback_from) == ("stable", "drained")


def test_fallback_for_blue_green(snapshot: Snapshot) -> None:
    decision = decide(_meta("bgfb.test"), snapshot, roll=0)
    assert (decision.rule, _pool_name(decision), decision.fallback_from) == (
        "active",
        "blue",
        "down",
    )


def test_fallback_unused_when_chosen_pool_is_eligible(snapshot: Snapshot) -> None:
    decision = decide(_meta("fbok.test"), snapshot, roll=0)
    assert (_pool_name(decision), decision.fallback_from) == ("canary", None)


@pytest.mark.parametrize("host", ["nofb.test", "fbdead.test"])
def test_no_usable_fallback_keeps_empty_pool(snapshot: Snapshot, host: str) -> None:
    decision = decide(_meta(host), snapshot, roll=0)
    assert _pool_name(decision) == "down"
    assert decision.pool is not None
    assert decision.pool.eligible == ()
    assert decision.fallback_from is None


def test_fallback_after_health_change() -> None:
    health: dict[tuple[str, str], Health] = {("canary", "canary-1"): "unhealthy"}
    snapshot = build_snapshot(SPEC, health=health)
    decision = decide(_meta("fbok.test"), snapshot, roll=0)
    assert (_pool_name(decision), decision.fallback_from) == ("stable", "canary")


def test_decide_is_deterministic(snapshot: Snapshot) -> None:
    for host in ("canary.test", "issue.test", "plain.test", "bg.test", "fb.test", "nowhere"):
        for roll in (0, 7, 2**40 + 3):
            assert decide(_meta(host), snapshot, roll) == decide(_meta(host), snapshot, roll)


@pytest.mark.parametrize(
    ("raw", "host"),
    [
        ("Example.COM", "example.com"),
        ("example.com:8080", "example.com"),
        ("example.com.", "example.com"),
        ("example.com.:443", "example.com"),
        (" example.com ", "example.com"),
        ("[::1]:8080", "[::1]"),
        ("[::1]", "[::1]"),
        ("[2001:DB8::1]", "[2001:db8::1]"),
        ("127.0.0.1:80", "127.0.0.1"),
    ],
)
def test_normalise_host(raw: str, host: str) -> None:
    assert normalise_host(raw) == host
