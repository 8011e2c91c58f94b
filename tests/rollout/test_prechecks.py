"""Blue-green pre-checks: real requests to real loopback backends, the first failure in words."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from helpers import Backend, Handler, free_port, start_backend
from proxy.control.rollout.model import Precheck
from proxy.control.rollout.prechecks import run_prechecks


def answering(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text)


async def healthy(request: web.Request) -> web.StreamResponse:
    return answering(200, "all ok")


async def failing(request: web.Request) -> web.StreamResponse:
    return answering(500, "boom")


async def hanging(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(30)
    return answering(200, "late")


@pytest.fixture
async def stopped() -> AsyncIterator[list[Backend]]:
    backends: list[Backend] = []
    yield backends
    for backend in backends:
        await backend.stop()


async def start(stopped: list[Backend], name: str, handler: Handler) -> tuple[str, str, int]:
    backend = await start_backend(name, handler)
    stopped.append(backend)
    return (name, "127.0.0.1", backend.port)


async def test_every_check_reaches_every_backend_and_passes(stopped: list[Backend]) -> None:
    backends = [await start(stopped, "g1", healthy), await start(stopped, "g2", healthy)]
    checks = [Precheck(path="/healthz", body_contains="ok"), Precheck(path="/ready?deep=1")]
    assert await run_prechecks(checks, "green", backends) is None
    for backend in stopped:
        assert sorted(seen.path for seen in backend.seen) == ["/healthz", "/ready?deep=1"]


async def test_no_checks_or_no_backends_pass_without_a_request(stopped: list[Backend]) -> None:
    backends = [await start(stopped, "g1", healthy)]
    assert await run_prechecks([], "green", backends) is None
    assert await run_prechecks([Precheck(path="/healthz")], "green", []) is None
    assert stopped[0].seen == []


async def test_method_and_headers_are_sent_as_given(stopped: list[Backend]) -> None:
    backends = [await start(stopped, "g1", healthy)]
    check = Precheck(
        path="/warm",
        method="POST",
        headers=(("Host", "shop.example"), ("X-Precheck", "1")),
    )
    assert await run_prechecks([check], "green", backends) is None
    (seen,) = stopped[0].seen
    assert (seen.method, seen.path) == ("POST", "/warm")
    assert seen.header("Host") == "shop.example"
    assert seen.header("X-Precheck") == "1"


async def test_a_wrong_status_names_check_backend_and_statuses(stopped: list[Backend]) -> None:
    backends = [await start(stopped, "g1", healthy), await start(stopped, "g2", failing)]
    reason = await run_prechecks([Precheck(path="/healthz")], "green", backends)
    assert reason == "pre-check GET /healthz on green/g2: status 500, expected 200"


async def test_an_expected_non_200_status_passes(stopped: list[Backend]) -> None:
    backends = [await start(stopped, "g1", failing)]
    assert await run_prechecks([Precheck(path="/x", status=500)], "green", backends) is None


async def test_a_missing_substring_fails(stopped: list[Backend]) -> None:
    backends = [await start(stopped, "g1", healthy)]
    check = Precheck(path="/version", body_contains="v2")
    reason = await run_prechecks([check], "green", backends)
    assert reason == "pre-check GET /version on green/g1: body does not contain 'v2'"


async def test_only_a_bounded_prefix_of_the_body_is_searched(stopped: list[Backend]) -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        return answering(200, "x" * (1024 * 1024) + "needle")

    backends = [await start(stopped, "g1", huge)]
    check = Precheck(path="/big", body_contains="needle")
    reason = await run_prechecks([check], "green", backends)
    assert reason == "pre-check GET /big on green/g1: body does not contain 'needle'"


async def test_a_timeout_fails_within_the_checks_timeout(stopped: list[Backend]) -> None:
    backends = [await start(stopped, "g1", hanging)]
    started = time.monotonic()
    reason = await run_prechecks([Precheck(path="/slow", timeout=0.3)], "green", backends)
    assert time.monotonic() - started < 2
    assert reason == "pre-check GET /slow on green/g1: timed out after 0.3 s"


async def test_a_refused_connection_fails() -> None:
    backends = [("g1", "127.0.0.1", free_port())]
    reason = await run_prechecks([Precheck(path="/healthz")], "green", backends)
    assert reason == "pre-check GET /healthz on green/g1: connection refused"


async def test_the_first_failure_is_in_the_order_of_checks_then_backends(
    stopped: list[Backend],
) -> None:
    # Concurrent requests, one deterministic answer: the fast failure of a later check does
    # not win over the slow failure of an earlier one.
    backends = [await start(stopped, "g1", healthy), await start(stopped, "g2", hanging)]
    checks = [
        Precheck(path="/slow", timeout=0.3),
        Precheck(path="/a", body_contains="nope", timeout=0.5),
    ]
    reason = await run_prechecks(checks, "green", backends)
    assert reason == "pre-check GET /slow on green/g2: timed out after 0.3 s"


async def test_a_given_session_is_used_and_left_open(stopped: list[Backend]) -> None:
    backends = [await start(stopped, "g1", healthy)]
    async with aiohttp.ClientSession() as session:
        assert await run_prechecks([Precheck(path="/")], "green", backends, session) is None
        assert not session.closed
