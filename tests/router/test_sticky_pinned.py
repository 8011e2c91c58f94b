"""Which bucket an issued id falls into, pinned: (salt, id) -> bucket as computed by main before
the sticky path was made cheaper. Every way the router reaches a bucket (the plain hash, the
snapshot's Sticky with and without its memo, a decision that issues the id, a decision that
reads it back) must give these, or users would change pools on upgrade."""

from __future__ import annotations

import pytest

from router import (
    BackendSpec,
    PoolSpec,
    RequestMeta,
    RouteSpec,
    Snapshot,
    Spec,
    StickySpec,
    bucket_of,
    build_snapshot,
    decide,
)
from router.snapshot import Sticky

PINNED: list[tuple[str, int, str, int]] = [
    # (salt, roll, id issued for that roll, bucket)
    ("", 0, "0000000000000000", 5035),
    ("", 0xABC, "0000000000000abc", 1806),
    ("", 0xDEAD_BEEF_CAFE_F00D, "deadbeefcafef00d", 1529),
    ("", 2**64 - 1, "ffffffffffffffff", 6493),
    ("", 0x0123456789ABCDEF, "0123456789abcdef", 9399),
    ("pepper", 0, "0000000000000000", 8569),
    ("pepper", 0xABC, "0000000000000abc", 3980),
    ("pepper", 0xDEAD_BEEF_CAFE_F00D, "deadbeefcafef00d", 150),
    ("pepper", 2**64 - 1, "ffffffffffffffff", 1353),
    ("pepper", 0x0123456789ABCDEF, "0123456789abcdef", 880),
    ("canary-2024", 0, "0000000000000000", 2058),
    ("canary-2024", 0xABC, "0000000000000abc", 3013),
    ("canary-2024", 0xDEAD_BEEF_CAFE_F00D, "deadbeefcafef00d", 4368),
    ("canary-2024", 2**64 - 1, "ffffffffffffffff", 7853),
    ("canary-2024", 0x0123456789ABCDEF, "0123456789abcdef", 6110),
    ("ü", 0, "0000000000000000", 9225),
    ("ü", 0xABC, "0000000000000abc", 237),
    ("ü", 0xDEAD_BEEF_CAFE_F00D, "deadbeefcafef00d", 8661),
    ("ü", 2**64 - 1, "ffffffffffffffff", 7054),
    ("ü", 0x0123456789ABCDEF, "0123456789abcdef", 9966),
]

POOLS = (
    PoolSpec("stable", (BackendSpec("s1", "127.0.0.1", 9001),)),
    PoolSpec("canary", (BackendSpec("c1", "127.0.0.1", 9002),)),
)


def _route(salt: str) -> tuple[Snapshot, Sticky]:
    route = RouteSpec(
        "web",
        weights=(("stable", 50), ("canary", 50)),
        sticky=StickySpec(salt=salt, issue=True),
    )
    snapshot = build_snapshot(Spec(pools=POOLS, routes=(route,)))
    sticky = snapshot.routes[0].sticky
    assert sticky is not None
    return snapshot, sticky


@pytest.mark.parametrize(("salt", "roll", "value", "bucket"), PINNED)
def test_pinned_bucket_of(salt: str, roll: int, value: str, bucket: int) -> None:
    assert bucket_of(value, salt) == bucket


@pytest.mark.parametrize(("salt", "roll", "value", "bucket"), PINNED)
def test_pinned_sticky_bucket(salt: str, roll: int, value: str, bucket: int) -> None:
    _, sticky = _route(salt)
    assert sticky.bucket(value) == bucket  # hashed
    assert sticky.bucket(value) == bucket  # remembered


@pytest.mark.parametrize(("salt", "roll", "value", "bucket"), PINNED)
def test_pinned_issue_then_read_back(salt: str, roll: int, value: str, bucket: int) -> None:
    snapshot, _ = _route(salt)
    issued = decide(RequestMeta("a.test", "/", {}, None), snapshot, roll)
    assert (issued.issued_cookie, issued.bucket) == (value, bucket)
    # Read back by a fresh snapshot (nothing remembered) and by the same one (remembered).
    for reader in (_route(salt)[0], snapshot):
        meta = RequestMeta("a.test", "/", {}, f"turnout-id={value}")
        back = decide(meta, reader, roll + 1)
        assert (back.rule, back.bucket, back.issued_cookie) == ("cookie", bucket, None)
        assert back.pool is not None
        assert issued.pool is not None
        assert back.pool.name == issued.pool.name


@pytest.mark.parametrize(("salt", "roll", "value", "bucket"), PINNED)
def test_pinned_issued_bucket(salt: str, roll: int, value: str, bucket: int) -> None:
    _, sticky = _route(salt)
    assert sticky.issued_bucket(value) == bucket
    assert sticky.memo[value] == bucket  # remembered for the user's next request
    assert sticky.bucket(value) == bucket
