"""Pool endpoints: backends re-weighted, added, removed and drained at runtime, with traffic
through a real `turnout run` to real backends (each answers with its own name)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from admin_support import Api, BackendLoop, api, backend_loop, send, wait_until
from aiohttp import web

from helpers import Backend, Handler, ProxyProcess, config, proxy_process


@dataclass
class Setup:
    proxy: ProxyProcess
    admin: Api
    loop: BackendLoop
    backends: dict[str, Backend]


def backend_names(pool: str, count: int) -> list[str]:
    """The names helpers.config gives a pool's backends."""
    return [f"{pool}-{index + 1}" for index in range(count)]


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    with backend_loop() as loop:
        backends = {name: loop.start(name) for name in [*backend_names("pair", 2), "grow-1"]}
        data = config(
            {
                "pair": [backends["pair-1"].url, backends["pair-2"].url],
                "grow": [backends["grow-1"].url],
            },
            {
                "grow": {"path_prefix": "/grow", "weights": {"grow": 1}},
                "pair": {"weights": {"pair": 1}},
            },
        )
        with proxy_process(data) as proxy:
            yield Setup(proxy, api(proxy), loop, backends)


def backend(pool: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(b for b in pool["backends"] if b["name"] == name)
    return found


def newest_change(admin: Api) -> dict[str, Any]:
    change: dict[str, Any] = admin.get("/v1/history?limit=1")["changes"][0]
    return change


def test_pools_are_listed_with_their_backends(setup: Setup) -> None:
    admin = setup.admin
    listing = admin.get("/v1/pools")
    assert [pool["name"] for pool in listing["pools"]] == ["pair", "grow"]
    pair = admin.call("GET", "/v1/pools/pair")
    assert pair.ok() == listing["pools"][0]
    assert pair.etag == f'"{listing["revision"]}"'
    assert pair.json["revision"] == listing["revision"]
    assert pair.json["eligible"] == 2
    assert pair.json["panic"] is False
    assert backend(pair.json, "pair-1") == {
        "name": "pair-1",
        "url": setup.backends["pair-1"].url,
        "weight": 1,
        "effectiveWeight": 1,
        "adminState": "ready",
        "health": "healthy",
        "eligible": True,
        "inflight": 0,
        "check": None,  # no active health checks configured for this pool
        "ejection": None,
        "slowStart": None,  # not ramping up (the pool has no slow start)
    }
    assert pair.json["slowStart"] == 0


def test_patch_weight_shifts_traffic_between_backends(setup: Setup) -> None:
    admin, port = setup.admin, setup.proxy.port
    path = "/v1/pools/pair/backends/pair-2"
    reply = admin.call("PATCH", path, {"weight": 0})
    patched = reply.ok()
    assert patched["weight"] == 0
    assert patched["eligible"] is False  # weight 0: no new requests
    assert patched["adminState"] == "ready"
    pool = admin.get("/v1/pools/pair")
    assert reply.etag == f'"{pool["revision"]}"'
    assert pool["eligible"] == 1
    change = newest_change(admin)
    assert (change["action"], change["target"]) == ("set-weight", "pool/pair/backend/pair-2")
    assert send(port, 40) == {"pair-1": 40}

    assert admin.call("PATCH", path, {"weight": 4}).ok()["weight"] == 4
    counts = send(port, 300)
    # 1:4 -> about 60:240; far from it only with negligible probability.
    assert 20 < counts["pair-1"] < 120, counts
    assert counts["pair-1"] + counts["pair-2"] == 300
    admin.call("PATCH", path, {"weight": 1}).ok()


def test_a_backend_added_at_runtime_takes_traffic_and_can_be_removed(setup: Setup) -> None:
    admin, port = setup.admin, setup.proxy.port
    added = setup.loop.start("grow-2")
    reply = admin.call("POST", "/v1/pools/grow/backends", {"name": "grow-2", "url": added.url})
    pool = reply.ok(201)
    assert [b["name"] for b in pool["backends"]] == ["grow-1", "grow-2"]
    assert backend(pool, "grow-2")["url"] == added.url
    assert backend(pool, "grow-2")["eligible"] is True
    assert reply.etag == f'"{pool["revision"]}"'
    change = newest_change(admin)
    assert (change["action"], change["target"]) == ("add-backend", "pool/grow/backend/grow-2")

    counts = send(port, 60, "/grow/a")
    assert counts["grow-1"] > 0
    assert counts["grow-2"] > 0
    assert counts["grow-1"] + counts["grow-2"] == 60
    # The new backend really received them (its own request log).
    assert [seen.path for seen in added.seen] == ["/grow/a"] * counts["grow-2"]

    # A ready backend is not removed without force; drained, it is.
    admin.call("DELETE", "/v1/pools/grow/backends/grow-1").problem(409, "backend-in-service")
    drained = admin.call("PATCH", "/v1/pools/grow/backends/grow-1", {"adminState": "drain"}).ok()
    assert drained["adminState"] == "drain"
    assert send(port, 30, "/grow/b") == {"grow-2": 30}
    reply = admin.call("DELETE", "/v1/pools/grow/backends/grow-1")
    pool = reply.ok()
    assert [b["name"] for b in pool["backends"]] == ["grow-2"]
    assert reply.etag == f'"{pool["revision"]}"'
    assert newest_change(admin)["action"] == "remove-backend"
    assert send(port, 30, "/grow/c") == {"grow-2": 30}

    # Put it back: a ready backend is removed only with ?force=true.
    original = setup.backends["grow-1"].url
    admin.call("POST", "/v1/pools/grow/backends", {"name": "grow-1", "url": original}).ok(201)
    pool = admin.call("DELETE", "/v1/pools/grow/backends/grow-2?force=true").ok()
    assert [b["name"] for b in pool["backends"]] == ["grow-1"]
    assert send(port, 20, "/grow/d") == {"grow-1": 20}


def test_a_backend_added_in_maintenance_takes_no_traffic(setup: Setup) -> None:
    admin, port = setup.admin, setup.proxy.port
    spare = setup.loop.start("spare")
    body = {"name": "spare", "url": spare.url, "weight": 2, "adminState": "maint"}
    pool = admin.call("POST", "/v1/pools/pair/backends", body).ok(201)
    assert backend(pool, "spare")["adminState"] == "maint"
    assert backend(pool, "spare")["weight"] == 2
    assert backend(pool, "spare")["eligible"] is False
    assert set(send(port, 40)) <= {"pair-1", "pair-2"}
    assert spare.seen == []
    # Not ready, so no force is needed to remove it.
    pool = admin.call("DELETE", "/v1/pools/pair/backends/spare").ok()
    assert [b["name"] for b in pool["backends"]] == ["pair-1", "pair-2"]


# Draining

SLOW = 1.5
"""How long the backends take to answer /slow."""


def slow_or_socket(name: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            socket = web.WebSocketResponse()
            await socket.prepare(request)
            async for message in socket:
                if message.type == aiohttp.WSMsgType.TEXT:
                    await socket.send_str(f"{name}:{message.data}")
            return socket
        if request.path == "/slow":
            await asyncio.sleep(SLOW)
        return web.Response(text=name)

    return handle


@pytest.fixture(scope="module")
def draining() -> Iterator[Setup]:
    with backend_loop() as loop:
        names = backend_names("stable", 2)
        backends = {name: loop.start(name, slow_or_socket(name)) for name in names}
        data = config(
            {"stable": [backends[name].url for name in names]}, {"web": {"weights": {"stable": 1}}}
        )
        with proxy_process(data) as proxy:
            yield Setup(proxy, api(proxy), loop, backends)


@pytest.fixture
def drain(draining: Setup) -> Setup:
    """Both backends ready, whatever the previous test left."""
    for name in draining.backends:
        draining.admin.call(
            "PATCH", f"/v1/pools/stable/backends/{name}", {"adminState": "ready"}
        ).ok()
    return draining


async def timed_get(port: int, path: str) -> tuple[str, float]:
    """A GET through the proxy: the body, and when it was complete."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}{path}") as response:
            assert response.status == 200
            text = await response.text()
    return text, time.monotonic()


def landed(backends: dict[str, Backend], path: str, since: dict[str, int]) -> Callable[[], str]:
    """Which backend received `path` after `since` (request counts per backend)."""

    def find() -> str:
        found = [
            name
            for name, backend in backends.items()
            if any(seen.path == path for seen in backend.seen[since[name] :])
        ]
        return found[0] if found else ""

    return find


async def arrival(setup: Setup, path: str, since: dict[str, int]) -> str:
    find = landed(setup.backends, path, since)
    await asyncio.to_thread(wait_until, find)
    return find()


def counts(setup: Setup) -> dict[str, int]:
    return {name: len(backend.seen) for name, backend in setup.backends.items()}


def view(setup: Setup, name: str) -> dict[str, Any]:
    return backend(setup.admin.get("/v1/pools/stable"), name)


async def test_drain_waits_for_the_request_in_flight_and_sends_it_no_more(drain: Setup) -> None:
    admin, port = drain.admin, drain.proxy.port
    since = counts(drain)
    slow = asyncio.create_task(timed_get(port, "/slow"))
    victim = await arrival(drain, "/slow", since)
    [survivor] = set(drain.backends) - {victim}

    started = time.monotonic()
    patch = asyncio.create_task(
        admin.acall("PATCH", f"/v1/pools/stable/backends/{victim}?wait=5s", {"adminState": "drain"})
    )
    # The admin state changes at once; the call answers when nothing is in flight any more.
    await asyncio.to_thread(wait_until, lambda: view(drain, victim)["adminState"] == "drain")
    during = view(drain, victim)
    assert during["inflight"] == 1
    assert during["eligible"] is False

    before = len(drain.backends[victim].seen)
    assert await asyncio.to_thread(send, port, 100) == {survivor: 100}
    assert len(drain.backends[victim].seen) == before
    assert not slow.done(), "the 100 requests were meant to be sent during the drain"
    assert not patch.done()

    reply = await patch
    answered = time.monotonic()
    text, completed = await slow
    assert text == victim
    assert completed <= answered  # the drain answered only after the slow request finished
    assert answered - started > 0.5
    drained = reply.ok()
    assert (drained["name"], drained["adminState"], drained["inflight"]) == (victim, "drain", 0)
    assert drained["eligible"] is False
    change = admin.get("/v1/history?limit=1")["changes"][0]
    assert (change["action"], change["target"]) == ("set-drain", f"pool/stable/backend/{victim}")

    # Ready again: it takes traffic again.
    admin.call("PATCH", f"/v1/pools/stable/backends/{victim}", {"adminState": "ready"}).ok()
    again = await asyncio.to_thread(send, port, 60)
    assert again[victim] > 0
    assert again[victim] + again[survivor] == 60


async def test_a_drain_that_does_not_finish_in_time_is_a_409_with_the_count(
    drain: Setup,
) -> None:
    admin, port = drain.admin, drain.proxy.port
    victim, survivor = "stable-1", "stable-2"
    # The other backend out of the way, so the slow request must land on the victim.
    admin.call("PATCH", f"/v1/pools/stable/backends/{survivor}", {"adminState": "maint"}).ok()
    revision = admin.get("/v1/pools/stable")["revision"]
    since = counts(drain)
    slow = asyncio.create_task(timed_get(port, "/slow"))
    assert await arrival(drain, "/slow", since) == victim

    started = time.monotonic()
    # The last eligible backend of a pool taking traffic: a drain of it must be forced.
    reply = await admin.acall(
        "PATCH",
        f"/v1/pools/stable/backends/{victim}?wait=0.2s",
        {"adminState": "drain", "force": True},
    )
    waited = time.monotonic() - started
    problem = reply.problem(409, "drain-timeout")
    assert problem["errors"] == [{"field": "inflight", "message": "1"}]
    assert "1 request(s) still in flight" in problem["detail"]
    assert 0.2 <= waited < 1.0
    assert not slow.done()
    # The admin state change itself was applied (and recorded).
    now = view(drain, victim)
    assert (now["adminState"], now["inflight"]) == ("drain", 1)
    assert admin.get("/v1/pools/stable")["revision"] == revision + 1

    # Enabled again, both take traffic; the slow request finished normally.
    for name in (victim, survivor):
        admin.call("PATCH", f"/v1/pools/stable/backends/{name}", {"adminState": "ready"}).ok()
    assert (await slow)[0] == victim
    again = await asyncio.to_thread(send, port, 60)
    assert again[victim] > 0
    assert again[survivor] > 0


async def test_an_open_websocket_counts_as_in_flight(drain: Setup) -> None:
    admin, port = drain.admin, drain.proxy.port
    since = counts(drain)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"http://127.0.0.1:{port}/ws") as socket:
            await socket.send_str("hi")
            victim = (await socket.receive_str(timeout=5)).split(":")[0]
            assert await arrival(drain, "/ws", since) == victim
            assert view(drain, victim)["inflight"] == 1
            reply = await admin.acall(
                "PATCH", f"/v1/pools/stable/backends/{victim}?wait=0.3s", {"adminState": "drain"}
            )
            problem = reply.problem(409, "drain-timeout")
            assert problem["errors"] == [{"field": "inflight", "message": "1"}]
            # Draining does not cut an open WebSocket.
            await socket.send_str("still there")
            assert await socket.receive_str(timeout=5) == f"{victim}:still there"
    reply = await admin.acall(
        "PATCH", f"/v1/pools/stable/backends/{victim}?wait=5s", {"adminState": "drain"}
    )
    assert reply.ok()["inflight"] == 0
