"""Revisions as ETags, If-Match under 50 concurrent writers, and read-your-writes over two
workers: an answered write is in effect in every worker, with no sleep."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import pytest
from admin_support import Api, Reply, api, backend_loop, shop_and_web

from helpers import ProxyProcess, proxy_process

WRITERS = 50


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyProcess]:
    with backend_loop() as loop:
        data = shop_and_web(loop, {"stable": 50, "canary": 50})
        with proxy_process(data, workers=2) as running:
            yield running


@pytest.fixture
def admin(proxy: ProxyProcess) -> Api:
    return api(proxy)


def current(admin: Api) -> int:
    revision: int = admin.get("/v1/routes")["revision"]
    return revision


def test_every_read_and_write_carries_the_revision_as_etag(admin: Api) -> None:
    def tagged(reply: Reply, status: int = 200) -> Any:
        body = reply.ok(status)
        revision = current(admin)
        assert reply.etag == f'"{revision}"', (reply.etag, revision)
        if isinstance(body, dict) and "revision" in body:
            assert body["revision"] == revision
        return body

    for path in (
        "/v1/routes",
        "/v1/routes/web",
        "/v1/pools",
        "/v1/pools/stable",
        "/v1/history",
        "/v1/workers",
    ):
        tagged(admin.call("GET", path))

    web, shop = "/v1/routes/web", "/v1/routes/shop"
    tagged(admin.call("PUT", f"{web}/weights", {"weights": {"stable": 70, "canary": 30}}))
    tagged(admin.call("POST", f"{web}/rollback"))
    tagged(admin.call("POST", f"{web}/promote"))
    tagged(admin.call("POST", f"{web}/abort"))
    tagged(admin.call("POST", f"{web}/undo", {"toRevision": 1}))
    tagged(admin.call("POST", f"{shop}/switch", {"to": "green"}))
    tagged(admin.call("POST", f"{shop}/rollback"))
    backend = "/v1/pools/canary/backends/canary-1"
    tagged(admin.call("PATCH", backend, {"weight": 2}))
    # canary-1 is the canary's only backend: draining it must be forced.
    tagged(admin.call("PATCH", f"{backend}?wait=1s", {"adminState": "drain", "force": True}))
    tagged(admin.call("PATCH", backend, {"adminState": "ready"}))
    added = {"name": "c2", "url": "http://127.0.0.1:9"}
    tagged(admin.call("POST", "/v1/pools/canary/backends", added), 201)
    tagged(admin.call("DELETE", "/v1/pools/canary/backends/c2?force=true"))
    tagged(admin.call("POST", "/v1/reload"))

    # A write with the current revision as If-Match goes through, and its answer's ETag is
    # the If-Match for the next one.
    reply = admin.call("GET", web)
    for weights in ({"stable": 50, "canary": 50}, {"stable": 60, "canary": 40}):
        reply = admin.call(
            "PUT", f"{web}/weights", {"weights": weights}, headers={"If-Match": reply.etag or ""}
        )
        assert tagged(reply)["weights"] == weights


def test_of_fifty_concurrent_writers_on_one_revision_exactly_one_wins(admin: Api) -> None:
    start = admin.call("GET", "/v1/routes/web")
    revision = current(admin)
    assert start.etag == f'"{revision}"'
    proposals = [{"stable": 100 - index, "canary": index + 1} for index in range(WRITERS)]
    assert len({tuple(p.values()) for p in proposals}) == WRITERS
    barrier = threading.Barrier(WRITERS)

    def write(weights: dict[str, int]) -> Reply:
        barrier.wait(10)
        return admin.call(
            "PUT",
            "/v1/routes/web/weights",
            {"weights": weights},
            headers={"If-Match": start.etag or ""},
        )

    with ThreadPoolExecutor(WRITERS) as pool:
        replies = list(pool.map(write, proposals))

    statuses = Counter(reply.status for reply in replies)
    assert statuses == {200: 1, 412: WRITERS - 1}, statuses
    [(winner, won)] = [(p, r) for p, r in zip(proposals, replies, strict=True) if r.status == 200]
    assert won.json["weights"] == winner
    assert won.json["revision"] == revision + 1
    for reply in replies:
        if reply.status == 412:
            problem = reply.problem(412, "stale-revision")
            assert f"revision {revision} is stale" in problem["detail"]
            assert reply.etag == f'"{revision + 1}"'
    final = admin.get("/v1/routes/web")
    assert final["weights"] == winner
    assert current(admin) == revision + 1
    history = admin.get("/v1/history?limit=2")["changes"]
    assert history[0]["revision"] == revision + 1
    assert history[0]["after"]["routes"]["web"]["weights"] == [list(i) for i in winner.items()]
    assert history[1]["revision"] == revision


async def fetch_on_new_connections(port: int, count: int, connections: int = 50) -> Counter[str]:
    """`count` GETs over `connections` new keep-alive connections (the kernel spreads new
    connections over every worker's socket)."""
    seen: Counter[str] = Counter()

    async def client(requests: int) -> None:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(requests):
                async with session.get(f"http://127.0.0.1:{port}/") as response:
                    assert response.status == 200
                    seen[await response.text()] += 1

    await asyncio.gather(*(client(count // connections) for _ in range(connections)))
    return seen


async def test_a_write_is_in_effect_in_every_worker_when_it_answers(
    admin: Api, proxy: ProxyProcess
) -> None:
    for weights, expected in (
        ({"stable": 1, "canary": 0}, "stable"),
        ({"stable": 0, "canary": 1}, "canary"),
        ({"stable": 1, "canary": 0}, "stable"),
    ):
        reply = await admin.acall("PUT", "/v1/routes/web/weights", {"weights": weights})
        assert reply.ok()["weights"] == weights
        # No sleep: the very next 1,000 requests all route by it, whichever worker takes them.
        assert await fetch_on_new_connections(proxy.port, 1000) == {expected: 1000}
    workers = (await admin.acall("GET", "/v1/workers")).ok()
    assert len(workers["workers"]) == 2
    assert all(worker["requests"] > 0 for worker in workers["workers"]), workers
    assert {worker["revision"] for worker in workers["workers"]} == {workers["revision"]}
