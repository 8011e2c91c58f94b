"""The sticky route's precomputed parts: the remembered buckets and the Set-Cookie bytes.

Both are caches of what the request path computed before; each test holds them to the
uncached answer, so a user keeps their bucket (and pool) whatever the cache holds."""

from __future__ import annotations

import pytest

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
)
from router.cookies import cookie_value
from router.snapshot import MEMO_ENTRIES, MEMO_HEADER_LIMIT, MEMO_VALUE_LIMIT, NO_COOKIE, Sticky

POOLS = (
    PoolSpec("stable", (BackendSpec("s1", "127.0.0.1", 9001),)),
    PoolSpec("canary", (BackendSpec("c1", "127.0.0.1", 9002),)),
)


def _sticky(**options: object) -> Sticky:
    route = RouteSpec(
        "web",
        weights=(("stable", 50), ("canary", 50)),
        sticky=StickySpec(**options),  # type: ignore[arg-type]
    )
    sticky = build_snapshot(Spec(pools=POOLS, routes=(route,))).routes[0].sticky
    assert sticky is not None
    return sticky


@pytest.mark.parametrize("salt", ["", "pepper"])
def test_remembered_bucket_is_the_hash(salt: str) -> None:
    sticky = _sticky(salt=salt)
    values = [f"user-{number}" for number in range(500)] + ["", "é", "x" * 200]
    for value in values + values:  # the second pass answers from the memo
        assert sticky.bucket(value) == bucket_of(value, salt)
    assert "user-1" in sticky.memo
    assert "x" * 200 not in sticky.memo  # longer than MEMO_VALUE_LIMIT: hashed every time
    assert len("x" * 200) > MEMO_VALUE_LIMIT


HEADERS = [
    None,
    "",
    "other=1",
    "turnout-id=abc",
    "a=1; turnout-id=abc; b=2",
    "a=1;turnout-id=abc",
    "turnout-id=first; turnout-id=second",
    "  turnout-id  =  abc  ; b=2",
    "turnout-id",
    "turnout-id; turnout-id=x",
    "xturnout-id=1; turnout-id=2",
    "xturnout-id=1",
    "turnout-id=",
    "turnout-id=; turnout-id=2",
    'turnout-id="abc"',
    "Turnout-Id=abc",
    "turnout-id=user-4711",
    "a=" + "x" * 300 + "; turnout-id=long-header",
]


@pytest.mark.parametrize("salt", ["", "pepper"])
def test_header_bucket_is_the_cookies_hash(salt: str) -> None:
    sticky = _sticky(salt=salt)
    for header in HEADERS + HEADERS:  # the second pass answers from the header memo
        value = cookie_value(header, "turnout-id")
        expected = NO_COOKIE if value is None else bucket_of(value, salt)
        assert sticky.header_bucket(header) == expected, header
    assert sticky.header_memo["turnout-id=user-4711"] == bucket_of("user-4711", salt)
    assert sticky.header_memo["other=1"] == NO_COOKIE
    long_header = HEADERS[-1]
    assert long_header is not None
    assert len(long_header) > MEMO_HEADER_LIMIT
    assert long_header not in sticky.header_memo  # parsed every time
    assert "long-header" in sticky.memo  # its value is still remembered


def test_header_memo_is_bounded() -> None:
    sticky = _sticky()
    for number in range(MEMO_ENTRIES * 2 + 10):
        header = f"turnout-id={number:016x}; n={number}"
        assert sticky.header_bucket(header) == bucket_of(f"{number:016x}")
        assert len(sticky.header_memo) <= MEMO_ENTRIES


def test_memo_is_bounded() -> None:
    sticky = _sticky()
    for number in range(MEMO_ENTRIES * 2 + 10):
        value = f"{number:016x}"
        assert sticky.bucket(value) == bucket_of(value)
        assert len(sticky.memo) <= MEMO_ENTRIES


def test_memo_is_not_part_of_equality() -> None:
    first, second = _sticky(salt="s"), _sticky(salt="s")
    first.bucket("user-1")
    first.header_bucket("turnout-id=user-1")
    assert first == second
    assert hash(first) == hash(second)


def test_a_new_salt_does_not_reuse_buckets() -> None:
    plain, salted = _sticky(), _sticky(salt="pepper")
    assert plain.bucket("user-1") == bucket_of("user-1")
    assert salted.bucket("user-1") == bucket_of("user-1", "pepper") != bucket_of("user-1")


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"cookie": "tid", "max_age": 60, "path": "/app", "secure": True, "same_site": "None"},
        {"http_only": False, "same_site": "Strict"},
    ],
)
def test_set_cookie_bytes_are_the_header(options: dict[str, object]) -> None:
    route = RouteSpec(
        "web",
        weights=(("stable", 50), ("canary", 50)),
        sticky=StickySpec(**options),  # type: ignore[arg-type]
    )
    snapshot = build_snapshot(Spec(pools=POOLS, routes=(route,)))
    for roll in (0, 1, 0xDEAD_BEEF_CAFE_F00D, 2**64 + 5):
        decision = decide(RequestMeta("any.test", "/", {}), snapshot, roll)
        header = decision.set_cookie_header()
        assert header is not None
        assert decision.set_cookie_bytes() == header.encode("latin-1")
    returning = decide(RequestMeta("any.test", "/", {}, "turnout-id=u; tid=u"), snapshot, 7)
    assert returning.set_cookie_bytes() is None is returning.set_cookie_header()


def test_non_ascii_cookie_path_is_refused() -> None:
    from router import SpecError

    route = RouteSpec("web", weights=(("stable", 1),), sticky=StickySpec(path="/caf\u00e9"))
    with pytest.raises(SpecError, match="ASCII"):
        build_snapshot(Spec(pools=POOLS, routes=(route,)))


@pytest.mark.parametrize(
    ("value", "salt", "expected"),
    [("user-1", "", 3768), ("user-1", "pepper", 8846), ("🦀", "", 3932)],
)
def test_golden_buckets_through_the_memo(value: str, salt: str, expected: int) -> None:
    # Cookies issued before the memo existed land where they always did (test_hashing's vectors).
    sticky = _sticky(salt=salt)
    assert sticky.bucket(value) == expected
    assert sticky.bucket(value) == expected
