"""Routing end to end: real backends per pool, the real proxy, real HTTP."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from helpers import Backend, config, exchange_raw, parse_responses, running_proxy, start_backend
from proxy.headers import NO_RULE_VALUES
from router import bucket_of, rollback, switch_active, with_weights
from router.split import layout


@pytest.fixture
async def pools() -> AsyncIterator[dict[str, Backend]]:
    backends = {name: await start_backend(name) for name in ("stable", "canary", "blue", "green")}
    yield backends
    for backend in backends.values():
        await backend.stop()


def urls(pools: dict[str, Backend], *names: str) -> dict[str, list[str]]:
    return {name: [pools[name].url] for name in names}


async def fetch_many(
    port: int,
    count: int,
    *,
    path: str = "/",
    headers: dict[str, str] | None = None,
    concurrency: int = 16,
) -> Counter[str]:
    """`count` GETs over `concurrency` keep-alive connections; which backend answered each."""
    answers: Counter[str] = Counter()
    queue = iter(range(count))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for _ in queue:
                async with session.get(
                    f"http://127.0.0.1:{port}{path}", headers=headers
                ) as response:
                    assert response.status == 200
                    answers[await response.text()] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return answers


def weighted(pools: dict[str, Backend], weights: dict[str, int], **route: Any) -> dict[str, Any]:
    return config(urls(pools, *weights), {"web": {"weights": weights, **route}})


async def test_header_rules_route_testers_before_the_split(pools: dict[str, Backend]) -> None:
    rules = [
        {"name": "testers", "header": "x-canary", "value": "always", "pool": "canary"},
        {"name": "opt-out", "header": "x-canary", "value": "never", "pool": "stable"},
        {
            "name": "beta",
            "header": "x-group",
            "match": "regex",
            "value": "beta-[0-9]+",
            "pool": "canary",
        },
        {"name": "debug", "header": "x-debug", "match": "present", "pool": "canary"},
    ]
    data = weighted(pools, {"stable": 50, "canary": 50}, rules=rules)
    async with running_proxy(data) as proxy:
        assert await fetch_many(proxy.port, 100, headers={"x-canary": "always"}) == {"canary": 100}
        assert await fetch_many(proxy.port, 100, headers={"x-canary": "never"}) == {"stable": 100}
        assert await fetch_many(proxy.port, 50, headers={"x-group": "beta-42"}) == {"canary": 50}
        assert await fetch_many(proxy.port, 50, headers={"x-debug": ""}) == {"canary": 50}
        # A regex must match the whole value: "beta-42x" is not a beta tester.
        mixed = await fetch_many(proxy.port, 200, headers={"x-group": "beta-42x"})
        assert set(mixed) == {"stable", "canary"}


@pytest.mark.parametrize("name", ["x-canary", "X-Canary", "X-CANARY", "x-CaNaRy", "X-canary"])
async def test_header_rules_read_every_spelling_of_the_name(
    pools: dict[str, Backend], name: str
) -> None:
    """Usual spellings are found as spelled (proxy.headers.request_header_actions), others
    lower-cased: either way the rule reads them."""
    rules = [{"name": "testers", "header": "x-canary", "value": "always", "pool": "canary"}]
    data = weighted(pools, {"stable": 100, "canary": 0}, rules=rules)
    async with running_proxy(data) as proxy:
        assert await fetch_many(proxy.port, 10, headers={name: "always"}) == {"canary": 10}
        # Heads without the header share one empty dict of rule values: never written.
        assert await fetch_many(proxy.port, 10) == {"stable": 10}
    assert NO_RULE_VALUES == {}


@pytest.mark.parametrize(
    "field",
    [
        b"x-canary: always ",
        b"x-canary: always\t",
        b"x-canary:   always \t ",
        b"x-group: beta-42 ",
        b"x-group: beta-42\t\t",
        b"x-debug: \t",
    ],
)
async def test_header_rules_ignore_whitespace_around_the_value(
    pools: dict[str, Backend], field: bytes
) -> None:
    """RFC 9110 §5.5: a field value excludes the whitespace around it, for every kind of rule."""
    rules = [
        {"name": "testers", "header": "x-canary", "value": "always", "pool": "canary"},
        {
            "name": "beta",
            "header": "x-group",
            "match": "regex",
            "value": "beta-[0-9]+",
            "pool": "canary",
        },
        {"name": "debug", "header": "x-debug", "match": "present", "pool": "canary"},
    ]
    # All weight on stable: only a matching rule can send a request to canary.
    data = weighted(pools, {"stable": 1, "canary": 0}, rules=rules)
    request = b"GET / HTTP/1.1\r\nHost: a\r\n" + field + b"\r\nConnection: close\r\n\r\n"
    async with running_proxy(data) as proxy:
        answer = await exchange_raw(proxy.port, request)
    assert [(status, body) for status, _, body in parse_responses(answer)] == [(200, b"canary")]


async def test_sticky_cookie_keeps_each_user_on_one_pool(pools: dict[str, Backend]) -> None:
    data = weighted(
        pools, {"stable": 70, "canary": 30}, sticky={"cookie": "session", "issue": False}
    )
    canary_end = layout([("stable", 70), ("canary", 30)])[1][0]
    async with running_proxy(data) as proxy:
        for user in range(50):
            value = f"user-{user}"
            seen = await fetch_many(
                proxy.port, 10, headers={"Cookie": f"theme=dark; session={value}"}, concurrency=2
            )
            expected = "canary" if bucket_of(value) < canary_end else "stable"
            # 10 requests per user, 500 in all: every one lands where the pure hash says.
            assert seen == {expected: 10}, value


async def test_an_issued_cookie_makes_the_next_requests_stick(pools: dict[str, Backend]) -> None:
    data = weighted(pools, {"stable": 50, "canary": 50}, sticky={"cookie": "turnout-id"})
    # unsafe=True: aiohttp's jar otherwise ignores cookies from an IP-address host.
    jar = aiohttp.CookieJar(unsafe=True)
    async with running_proxy(data) as proxy, aiohttp.ClientSession(cookie_jar=jar) as session:
        issued: set[str] = set()
        for _ in range(20):
            session.cookie_jar.clear()
            async with session.get(f"http://127.0.0.1:{proxy.port}/") as response:
                first = await response.text()
                header = response.headers["Set-Cookie"]
            cookie = SimpleCookie(header)["turnout-id"]
            assert cookie["max-age"] == "2592000"
            assert cookie["path"] == "/"
            assert cookie["httponly"] is True
            assert cookie["samesite"] == "Lax"
            issued.add(cookie.value)
            for _ in range(5):
                async with session.get(f"http://127.0.0.1:{proxy.port}/") as response:
                    assert await response.text() == first
                    # Once the client has the cookie, no new one is issued.
                    assert "Set-Cookie" not in response.headers
        assert len(issued) == 20


async def test_percentage_split_matches_the_weights(pools: dict[str, Backend]) -> None:
    data = weighted(pools, {"stable": 80, "canary": 20})
    async with running_proxy(data) as proxy:
        seen = await fetch_many(proxy.port, 5000)
    assert seen["stable"] + seen["canary"] == 5000
    # 5,000 draws at p = 0.2: one standard deviation is 0.57 points; allow 2 points (3.5 sd).
    assert abs(seen["canary"] / 5000 - 0.20) < 0.02, seen


async def test_a_pool_with_weight_zero_gets_nothing(pools: dict[str, Backend]) -> None:
    data = weighted(pools, {"stable": 1, "canary": 0}, sticky={"cookie": "turnout-id"})
    async with running_proxy(data) as proxy:
        assert await fetch_many(proxy.port, 1000) == {"stable": 1000}
        # Not even a sticky user whose bucket would have been the canary's.
        users = [f"u{i}" for i in range(200)]
        for user in users[:20]:
            seen = await fetch_many(proxy.port, 3, headers={"Cookie": f"turnout-id={user}"})
            assert seen == {"stable": 3}
    assert pools["canary"].seen == []


async def test_raising_the_canary_only_moves_users_into_it(pools: dict[str, Backend]) -> None:
    data = weighted(pools, {"stable": 95, "canary": 5}, sticky={"cookie": "session"})
    users = [f"user-{i}" for i in range(300)]

    async def where(port: int) -> dict[str, str]:
        placed = {}
        for user in users:
            seen = await fetch_many(port, 1, headers={"Cookie": f"session={user}"}, concurrency=1)
            placed[user] = next(iter(seen))
        return placed

    async with running_proxy(data) as proxy:
        before = await where(proxy.port)
        proxy.publish(with_weights(proxy.snapshot, "web", {"stable": 75, "canary": 25}))
        after = await where(proxy.port)
        proxy.publish(rollback(proxy.snapshot, "web"))
        rolled_back = await where(proxy.port)
    in_canary_before = {u for u, pool in before.items() if pool == "canary"}
    in_canary_after = {u for u, pool in after.items() if pool == "canary"}
    assert in_canary_before, "some users should start in the canary"
    assert in_canary_before < in_canary_after  # grew, and nobody left
    assert rolled_back == before


async def test_blue_green_switch_and_rollback_move_all_new_requests(
    pools: dict[str, Backend],
) -> None:
    data = config(
        urls(pools, "blue", "green"),
        {"shop": {"mode": "blue-green", "pools": ["blue", "green"], "active": "blue"}},
    )
    async with running_proxy(data) as proxy:
        assert await fetch_many(proxy.port, 200) == {"blue": 200}
        proxy.publish(switch_active(proxy.snapshot, "shop", "green"))
        assert await fetch_many(proxy.port, 200) == {"green": 200}
        proxy.publish(rollback(proxy.snapshot, "shop"))
        assert await fetch_many(proxy.port, 200) == {"blue": 200}
        assert proxy.snapshot.revision == 3


async def test_a_request_in_flight_during_a_switch_finishes_on_its_colour() -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="blue")

    blue = await start_backend("blue", slow)
    green = await start_backend("green")
    try:
        data = config(
            {"blue": [blue.url], "green": [green.url]},
            {"shop": {"mode": "blue-green", "pools": ["blue", "green"], "active": "blue"}},
        )
        async with running_proxy(data) as proxy, aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{proxy.port}/"
            in_flight = asyncio.create_task(session.get(url))
            while not blue.seen:
                await asyncio.sleep(0.01)
            proxy.publish(switch_active(proxy.snapshot, "shop", "green"))
            async with session.get(url) as response:
                assert await response.text() == "green"
            release.set()
            response = await in_flight
            assert await response.text() == "blue"
            response.release()
    finally:
        await blue.stop()
        await green.stop()


async def test_routes_match_by_host_and_path_prefix_first_match_wins(
    pools: dict[str, Backend],
) -> None:
    data = config(
        urls(pools, "stable", "canary", "blue", "green"),
        {
            "api": {"hosts": ["api.example.com"], "path_prefix": "/v1", "weights": {"blue": 1}},
            "wild": {"hosts": ["*.example.com"], "weights": {"green": 1}},
            "checkout": {"path_prefix": "/checkout", "weights": {"canary": 1}},
            "default": {"weights": {"stable": 1}},
        },
    )
    cases = [
        ("api.example.com", "/v1/users", "blue"),
        ("API.example.com:8080", "/v1", "blue"),
        ("api.example.com", "/v10", "green"),  # prefix matches whole segments only
        ("shop.example.com", "/v1/users", "green"),
        ("example.org", "/checkout/pay", "canary"),
        ("example.org", "/checkouts", "stable"),
        ("example.org", "/", "stable"),
    ]
    async with running_proxy(data) as proxy, aiohttp.ClientSession() as session:
        for host, path, expected in cases:
            async with session.get(
                f"http://127.0.0.1:{proxy.port}{path}", headers={"Host": host}
            ) as response:
                assert await response.text() == expected, (host, path)


async def test_no_route_is_a_404_problem(pools: dict[str, Backend]) -> None:
    data = config(urls(pools, "stable"), {"api": {"path_prefix": "/api", "weights": {"stable": 1}}})
    async with running_proxy(data) as proxy, aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{proxy.port}/other") as response:
            assert response.status == 404
            assert response.content_type == "application/problem+json"
            problem = await response.json(content_type=None)
            assert problem["type"] == "urn:turnout:problem:no-route"
            assert problem["status"] == 404
    assert pools["stable"].seen == []


async def test_weights_inside_a_pool_are_respected() -> None:
    heavy = await start_backend("heavy")
    light = await start_backend("light")
    try:
        data = config({}, {"web": {"weights": {"app": 1}}})
        data["pools"] = {
            "app": {
                "backends": [
                    {"name": "heavy", "url": heavy.url, "weight": 3},
                    {"name": "light", "url": light.url, "weight": 1},
                ]
            }
        }
        async with running_proxy(data) as proxy:
            # One request at a time, so in-flight counts are equal and weights alone decide.
            seen = await fetch_many(proxy.port, 2000, concurrency=1)
        assert abs(seen["heavy"] / 2000 - 0.75) < 0.04, seen
    finally:
        await heavy.stop()
        await light.stop()


async def test_issued_ids_come_from_the_os_csprng(
    pools: dict[str, Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An issued id is shown to its client: it must not be Mersenne Twister output, from which
    312 ids would give away every id issued next. The data plane reads os.urandom in blocks."""
    import os

    blocks: list[bytes] = []

    def urandom(size: int) -> bytes:
        block = bytes((len(blocks) * 7 + i) % 256 for i in range(size))
        blocks.append(block)
        return block

    data = weighted(pools, {"stable": 50, "canary": 50}, sticky={"cookie": "turnout-id"})
    async with running_proxy(data) as proxy, aiohttp.ClientSession() as session:
        monkeypatch.setattr(os, "urandom", urandom)
        issued = []
        for _ in range(3):
            async with session.get(f"http://127.0.0.1:{proxy.port}/") as response:
                issued.append(SimpleCookie(response.headers["Set-Cookie"])["turnout-id"].value)
    assert len(blocks) == 1, "one block of randomness for many ids"
    block = blocks[0]
    assert issued == [block[i : i + 8].hex() for i in (0, 8, 16)]
