"""Upstream attempts and their failures, counted per (route, pool) and summed over workers.

What a rollout's judge compares is what each backend did, not what the client saw: a connect
failure hidden by a retry onto a healthy backend still counts against the pool that failed. A real
`turnout run` with 2 workers, real loopback backends (aiohttp, raw asyncio servers that reset
or answer garbage, a closed port), every counter read through GET /metrics as the difference
between a scrape before and one after.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from obs_support import BackendLoop, Client, Echo, Metrics, backend_loop, fetch, request, scrape
from obs_support import wait_for as wait_until

from helpers import ProxyProcess, RawBackend, config, free_port, proxy_process, read_request_head
from proxy.channel import Stats
from proxy.metrics import RouteStats
from proxy.telemetry import Telemetry

ATTEMPTS = "turnout_upstream_attempts_total"
ERRORS = "turnout_upstream_attempt_errors_total"
BACKEND_ATTEMPTS = "turnout_backend_attempts_total"
BACKEND_ERRORS = "turnout_backend_attempt_errors_total"
REQUESTS = "turnout_requests_total"

READ_TIMEOUT = 1.0


async def stall(request: web.Request) -> web.Response:
    """Answers long after any client or deadline here has given up."""
    await asyncio.sleep(30)
    return web.Response(text="late")


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST instead of a FIN (SO_LINGER with a zero timeout)."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def reset_before_answering(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await read_request_head(reader)
    reset(writer)  # no response byte


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request_head(reader)
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    await writer.drain()


async def serve_one_then_close_on_next(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answer the first request of a connection, keep it open, close it when the next arrives:
    the race a pooled keep-alive connection loses in production."""
    await read_request_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
    await writer.drain()
    await read_request_head(reader)


@dataclass
class Instance:
    proxy: ProxyProcess
    stale: RawBackend


ROUTES = ("broken", "flaky", "resets", "garbage", "slow", "stalls", "empty", "stale", "fine")


@pytest.fixture(scope="module")
def instance() -> Iterator[Instance]:
    loop: BackendLoop
    with backend_loop() as loop:
        fine = loop.start("fine", Echo("fine")).url
        slow = loop.start("slow", stall).url
        stale = loop.start_raw(serve_one_then_close_on_next)
        pools: dict[str, list[str]] = {
            "broken": [loop.start("broken", Echo("broken", status=500)).url],
            "flaky": [f"http://127.0.0.1:{free_port()}", fine],
            "resets": [loop.start_raw(reset_before_answering).url],
            "garbage": [loop.start_raw(garbage).url],
            "slow": [slow],
            "stalls": [slow],
            "empty": [fine],
            "stale": [stale.url],
            "fine": [fine],
        }
        pools["dead"] = [f"http://127.0.0.1:{free_port()}"]
        routes: dict[str, Any] = {
            name: {"path_prefix": f"/{name}", "weights": {name: 1}} for name in ROUTES
        }
        routes["failing"] = {"path_prefix": "/failing", "weights": {"dead": 1}}
        routes["failing"]["fallback_pool"] = "fine"
        data: dict[str, Any] = config(
            pools, routes, upstream={"read_timeout": READ_TIMEOUT, "retries": 1}
        )
        # The dead backend first, nearly always: a power-of-two pick of two draws over weights
        # 1,000,000 : 1 lands on the healthy one once in a million.
        data["pools"]["flaky"]["backends"][0]["weight"] = 1_000_000
        data["pools"]["empty"]["backends"][0]["admin_state"] = "maint"
        with proxy_process(data, workers=2) as proxy:
            yield Instance(proxy, stale)


def grown(before: Metrics, after: Metrics, name: str, route: str) -> float:
    return after.value(name, route=route, pool=route) - before.value(name, route=route, pool=route)


def per_backend(before: Metrics, after: Metrics, pool: str, backend: str = "") -> tuple[float, ...]:
    """(attempts, attempt errors) the backend gained: the same attempts, counted against the
    backend each went to (by default the pool's only backend)."""
    labels = {"pool": pool, "backend": backend or f"{pool}-1"}
    return tuple(
        after.value(name, **labels) - before.value(name, **labels)
        for name in (BACKEND_ATTEMPTS, BACKEND_ERRORS)
    )


async def statuses(port: int, path: str, count: int) -> list[int]:
    """`count` GETs, each on a connection of its own (so both workers take some)."""
    replies = await asyncio.gather(*(fetch(port, "GET", path) for _ in range(count)))
    return [reply.status for reply in replies]


async def test_5xx_from_the_backend_is_an_attempt_error(instance: Instance) -> None:
    proxy = instance.proxy
    before = await scrape(proxy)
    assert await statuses(proxy.port, "/broken/x", 6) == [500] * 6
    after = await scrape(proxy)
    assert grown(before, after, ATTEMPTS, "broken") == 6
    assert grown(before, after, ERRORS, "broken") == 6
    assert per_backend(before, after, "broken") == (6, 6)
    # What the client saw is counted apart, as before.
    assert (
        after.value(REQUESTS, route="broken", pool="broken", code="500")
        - before.value(REQUESTS, route="broken", pool="broken", code="500")
        == 6
    )


async def test_a_retry_that_hides_a_refused_connect_still_counts_the_failure(
    instance: Instance,
) -> None:
    """The key case for a canary: the client gets 200 from the healthy backend, yet the pool
    made two attempts per request and one of them failed."""
    proxy = instance.proxy
    before = await scrape(proxy)
    assert await statuses(proxy.port, "/flaky/x", 5) == [200] * 5
    after = await scrape(proxy)
    assert grown(before, after, ATTEMPTS, "flaky") == 10
    assert grown(before, after, ERRORS, "flaky") == 5
    assert per_backend(before, after, "flaky", "flaky-1") == (5, 5)  # the closed port
    assert per_backend(before, after, "flaky", "flaky-2") == (5, 0)
    assert (
        after.value(REQUESTS, route="flaky", pool="flaky", code="200")
        - before.value(REQUESTS, route="flaky", pool="flaky", code="200")
        == 5
    )
    assert after.value(REQUESTS, route="flaky", pool="flaky", code="502") == before.value(
        REQUESTS, route="flaky", pool="flaky", code="502"
    )


@pytest.mark.parametrize("route", ["resets", "garbage"])
async def test_a_backend_failing_before_a_response_head_is_an_attempt_error(
    instance: Instance, route: str
) -> None:
    """A reset before any response byte, and a response that is not HTTP: one attempt each
    (neither is retried: the request was sent), each an error."""
    proxy = instance.proxy
    before = await scrape(proxy)
    assert await statuses(proxy.port, f"/{route}/x", 3) == [502] * 3
    after = await scrape(proxy)
    assert grown(before, after, ATTEMPTS, route) == 3
    assert grown(before, after, ERRORS, route) == 3
    assert per_backend(before, after, route) == (3, 3)


async def test_a_timeout_waiting_for_the_response_is_an_attempt_error(instance: Instance) -> None:
    proxy = instance.proxy
    before = await scrape(proxy)
    assert await statuses(proxy.port, "/stalls/x", 2) == [504] * 2
    after = await scrape(proxy)
    assert grown(before, after, ATTEMPTS, "stalls") == 2
    assert grown(before, after, ERRORS, "stalls") == 2
    assert per_backend(before, after, "stalls") == (2, 2)


async def test_a_failed_over_request_counts_each_attempt_under_its_own_pool(
    instance: Instance,
) -> None:
    """The only backend of `dead` refuses; the route's fallback pool answers. The refused
    attempt is the dead pool's, the one that answered is the fallback's (as is the request)."""
    proxy = instance.proxy
    before = await scrape(proxy)
    assert await statuses(proxy.port, "/failing/x", 4) == [200] * 4
    after = await scrape(proxy)

    def moved(name: str, pool: str) -> float:
        return after.value(name, route="failing", pool=pool) - before.value(
            name, route="failing", pool=pool
        )

    assert (moved(ATTEMPTS, "dead"), moved(ERRORS, "dead")) == (4, 4)
    assert (moved(ATTEMPTS, "fine"), moved(ERRORS, "fine")) == (4, 0)
    assert per_backend(before, after, "dead") == (4, 4)
    assert per_backend(before, after, "fine") == (4, 0)
    assert (
        after.value(REQUESTS, route="failing", pool="fine", code="200")
        - before.value(REQUESTS, route="failing", pool="fine", code="200")
        == 4
    )


async def test_a_client_giving_up_is_not_an_attempt_error(instance: Instance) -> None:
    proxy = instance.proxy
    before = await scrape(proxy)
    clients = [await Client.open(proxy.port) for _ in range(3)]
    for client in clients:
        client.writer.write(request("GET", "/slow/x"))
        await client.writer.drain()
    await asyncio.sleep(0.2)
    for client in clients:
        # A reset: a client that only half-closes still wants its response.
        reset(client.writer)

    async def counted() -> bool:
        now = await scrape(proxy)
        return (
            now.value(REQUESTS, route="slow", pool="slow", code="499")
            - before.value(REQUESTS, route="slow", pool="slow", code="499")
            == 3
        )

    await wait_until(counted, timeout=READ_TIMEOUT * 5)
    after = await scrape(proxy)
    assert grown(before, after, ATTEMPTS, "slow") == 3
    assert grown(before, after, ERRORS, "slow") == 0
    assert per_backend(before, after, "slow") == (3, 0)


async def test_a_pool_without_an_eligible_backend_makes_no_attempt(instance: Instance) -> None:
    proxy = instance.proxy
    before = await scrape(proxy)
    assert await statuses(proxy.port, "/empty/x", 3) == [503] * 3
    after = await scrape(proxy)
    assert (
        after.value(REQUESTS, route="empty", pool="empty", code="503")
        - before.value(REQUESTS, route="empty", pool="empty", code="503")
        == 3
    )
    assert grown(before, after, ATTEMPTS, "empty") == 0
    assert grown(before, after, ERRORS, "empty") == 0
    assert per_backend(before, after, "empty") == (0, 0)


async def test_a_stale_keepalive_connection_retried_at_once_is_one_attempt_and_no_error(
    instance: Instance,
) -> None:
    """The backend closed an idle pooled connection; the request went again on a fresh one.
    That benign race is the proxy's business, not the pool's failure: the request counts one
    attempt (the retry is the same attempt, on another connection), and it succeeded."""
    proxy = instance.proxy
    connections = instance.stale.connections
    before = await scrape(proxy)
    client = await Client.open(proxy.port)
    try:
        first = await client.send(request("GET", "/stale/warm"))
        again = await client.send(request("GET", "/stale/again"))
    finally:
        await client.close()
    assert (first.status, first.body, again.status, again.body) == (200, b"first", 200, b"first")
    # The race did happen: the second request found its pooled connection closed.
    assert instance.stale.connections - connections == 2
    after = await scrape(proxy)
    assert grown(before, after, ATTEMPTS, "stale") == 2
    assert grown(before, after, ERRORS, "stale") == 0
    assert per_backend(before, after, "stale") == (2, 0)


async def test_healthy_requests_are_attempts_without_errors(instance: Instance) -> None:
    proxy = instance.proxy
    before = await scrape(proxy)
    assert await statuses(proxy.port, "/fine/x", 8) == [200] * 8
    after = await scrape(proxy)
    assert grown(before, after, ATTEMPTS, "fine") == 8
    assert grown(before, after, ERRORS, "fine") == 0
    assert per_backend(before, after, "fine") == (8, 0)
    # Every (route, pool) that has request counters has both series next to them (a route no
    # earlier test of this module sent a request to has neither: run alone, only "fine").
    counted = {dict(labels).get("route") for name, labels in after.samples if name == REQUESTS}
    assert "fine" in counted
    for route in counted & set(ROUTES):
        assert (ATTEMPTS, (("pool", route), ("route", route))) in after.samples
        assert (ERRORS, (("pool", route), ("route", route))) in after.samples


def test_attempt_counts_survive_the_channel_and_a_retired_worker() -> None:
    """A worker's report crosses the channel pickled; the control plane adds live and retired
    workers' counts (a departed worker's attempts stay in the totals)."""
    stats = RouteStats("web", "canary", (0.1,))
    stats.attempts += 5
    stats.attempt_errors += 2
    report = pickle.loads(pickle.dumps(stats.report()))
    assert (report.attempts, report.attempt_errors) == (5, 2)

    telemetry = Telemetry()
    for worker in (1, 2):
        telemetry.update(
            Stats(
                worker_id=worker,
                revision=1,
                requests=0,
                connections=0,
                routes={("web", "canary"): report},
            )
        )
    total = telemetry.routes()[("web", "canary")]
    assert (total.attempts, total.attempt_errors) == (10, 4)
    telemetry.retire(1)
    telemetry.update(
        Stats(
            worker_id=3, revision=1, requests=0, connections=0, routes={("web", "canary"): report}
        )
    )
    total = telemetry.routes()[("web", "canary")]
    assert (total.attempts, total.attempt_errors) == (15, 6)
