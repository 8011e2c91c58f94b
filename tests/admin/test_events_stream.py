"""GET /v1/events/stream against a real `turnout run`: the first frame at once, in the API's own
vocabulary; a change made through the API within 2 s; the last minute's traffic per route and
pool; one producer for 20 readers; a reader that never reads costs the others nothing; a reader
that leaves is forgotten, and with none left nothing is built."""

from __future__ import annotations

import asyncio
import http.client
import socket
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import jsonschema
import pytest
from admin_support import Api, BackendLoop, api, backend_loop, send, shop_and_web
from aiohttp import web
from pool_rollout_support import QUICK, STUCK, pools
from sse_support import PATH, Subscribers, metric

from admin_api.openapi import REF
from helpers import ProxyProcess, proxy_process

FIELDS = [
    "time",
    "revision",
    "routes",
    "pools",
    "rollouts",
    "poolRollouts",
    "history",
    "workers",
    "fleet",
    "series",
    "evidence",
    "frames",
]
FRAMES = "turnout_admin_event_frames_total"
SUBSCRIBERS = "turnout_admin_event_subscribers"
DROPPED = "turnout_admin_event_frames_dropped_total"


async def broken(request: web.Request) -> web.Response:
    return web.Response(status=503, text="down")


def configuration(loop: BackendLoop, bulk: int = 0) -> dict[str, Any]:
    """shop_and_web, plus a route `/broken` whose one backend answers 503, plus a pool of `bulk`
    backends no route uses (to make frames large)."""
    data = shop_and_web(loop)
    data["pools"]["broken"] = {"backends": [{"name": "b-1", "url": loop.start("b", broken).url}]}
    # First: routes match in order, and `web` takes every path.
    data["routes"] = {
        "broken": {"path_prefix": "/broken", "weights": {"broken": 1}},
        **data["routes"],
    }
    if bulk:
        data["pools"]["bulk"] = {
            "backends": [
                {"name": f"bulk-{i}", "url": f"http://127.0.0.1:{10000 + i}"} for i in range(bulk)
            ]
        }
    return data


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyProcess]:
    with backend_loop() as loop, proxy_process(configuration(loop)) as running:
        yield running


@pytest.fixture(scope="module")
def admin(proxy: ProxyProcess) -> Api:
    return api(proxy)


@pytest.fixture(scope="module")
def document(admin: Api) -> dict[str, Any]:
    body: dict[str, Any] = admin.get("/v1/openapi.json")
    return body


def conforms(document: dict[str, Any], model: str, instance: Any) -> None:
    schema = {"$ref": REF.format(model=model), "components": document["components"]}
    jsonschema.Draft202012Validator(schema).validate(instance)


async def test_the_first_frame_comes_at_once_in_the_apis_vocabulary(
    proxy: ProxyProcess, admin: Api, document: dict[str, Any]
) -> None:
    async with Subscribers(proxy.admin_url) as subscribers:
        started = time.monotonic()
        stream = await subscribers.subscribe()
        assert stream.response.status == 200
        assert stream.response.headers["Content-Type"] == "text/event-stream"
        assert stream.response.headers["Cache-Control"] == "no-cache"
        event = await stream.event(timeout=2.0)
        assert event.received - started < 1.0  # at once, not after the first interval
        assert stream.retry == 2000
        assert event.type == "state"
        frame = event.frame
        assert list(frame) == FIELDS
    routes = admin.get("/v1/routes")
    assert event.id == str(frame["revision"]) == str(routes["revision"])
    assert [r["name"] for r in frame["routes"]] == [r["name"] for r in routes["routes"]]
    web_route = next(r for r in frame["routes"] if r["name"] == "web")
    assert web_route["weights"] == {"stable": 90, "canary": 10}
    assert [p["name"] for p in frame["pools"]] == [
        p["name"] for p in admin.get("/v1/pools")["pools"]
    ]
    # The same models as the API's answers, validated by the API's own document.
    for route in frame["routes"]:
        conforms(document, "RouteView", route)
    for pool in frame["pools"]:
        conforms(document, "PoolView", pool)
    for change in frame["history"]:
        conforms(document, "ChangeView", change)
    conforms(document, "WorkerList", frame["workers"])
    assert frame["workers"]["workers"][0]["serving"] is True
    # A series for every pool a route can send to, idle or not.
    assert {"web/stable", "web/canary", "shop/blue", "shop/green", "broken/broken"} <= set(
        frame["series"]
    )
    assert all(len(s["rps"]) == len(s["errorRate"]) == 60 for s in frame["series"].values())
    assert frame["rollouts"] == frame["poolRollouts"] == []
    assert frame["evidence"] == {}


async def test_a_weight_change_through_the_api_shows_within_2_s(
    proxy: ProxyProcess, admin: Api
) -> None:
    async with Subscribers(proxy.admin_url) as subscribers:
        stream = await subscribers.subscribe()
        first = await stream.frame()
        reply = await admin.acall(
            "PUT", "/v1/routes/web/weights", {"weights": {"stable": 70, "canary": 30}}
        )
        changed = time.monotonic()
        revision = reply.ok()["revision"]
        assert revision > first["revision"]

        def shows(frame: dict[str, Any]) -> bool:
            route = next(r for r in frame["routes"] if r["name"] == "web")
            return bool(route["weights"] == {"stable": 70, "canary": 30})

        frame = await stream.frames_until(shows, timeout=2.0)
        assert time.monotonic() - changed < 2.0
        assert frame["revision"] == revision
        assert frame["history"][0]["action"] == "set-weights"
        assert frame["history"][0]["revision"] == revision


async def test_a_reader_that_comes_right_after_a_change_starts_from_it(
    proxy: ProxyProcess, admin: Api
) -> None:
    """Another reader keeps the producer going, so a last frame exists; a change made since it
    was built must not be what the new reader sees first (a page's first click would send its
    old revision in If-Match and be refused), and the new reader still gets a frame at once.
    Three times: each change comes a few milliseconds before the next reader, well inside the
    second between two regular frames."""
    async with Subscribers(proxy.admin_url) as subscribers:
        watching = await subscribers.subscribe()
        await watching.frame()
        for stable in (60, 50, 40):
            weights = {"stable": stable, "canary": 100 - stable}
            reply = await admin.acall("PUT", "/v1/routes/web/weights", {"weights": weights})
            revision = reply.ok()["revision"]
            started = time.monotonic()
            stream = await subscribers.subscribe()
            first = await stream.frame(timeout=2.0)
            assert time.monotonic() - started < 0.5
            assert first["revision"] == revision
            route = next(r for r in first["routes"] if r["name"] == "web")
            assert route["weights"] == weights
    await admin.acall("PUT", "/v1/routes/web/weights", {"weights": {"stable": 90, "canary": 10}})


async def test_a_frame_in_file_mode_shows_this_instance_alone(
    proxy: ProxyProcess, admin: Api, document: dict[str, Any]
) -> None:
    async with Subscribers(proxy.admin_url) as subscribers:
        stream = await subscribers.subscribe()
        frame = await stream.frame()
    fleet = frame["fleet"]
    # What GET /v1/fleet answers, in the API's own model.
    conforms(document, "FleetView", fleet)
    assert fleet["backend"] == "file"
    assert fleet["instance"] is None
    assert fleet["instances"] == []
    assert fleet["revision"] == frame["revision"]
    assert admin.get("/v1/fleet")["backend"] == "file"


async def test_a_rollout_and_its_evidence_over_time(
    proxy: ProxyProcess, admin: Api, document: dict[str, Any]
) -> None:
    async with Subscribers(proxy.admin_url) as subscribers:
        stream = await subscribers.subscribe()
        await stream.frame()
        body = {"canary": "canary", "steps": [10, 50, 100], "stepTime": 600}
        (await admin.acall("POST", "/v1/routes/web/rollout", body)).ok(201)

        def points(frame: dict[str, Any]) -> list[list[Any]]:
            found: list[list[Any]] = frame["evidence"].get("route/web", [])
            return found

        frame = await stream.frames_until(lambda f: len(points(f)) >= 3, timeout=6.0)
        (rollout,) = frame["rollouts"]
        conforms(document, "RolloutView", rollout)
        assert (rollout["route"], rollout["phase"]) == ("web", "progressing")
        times = [point[0] for point in points(frame)]
        assert times == sorted(times)
        assert times[-1] - times[0] >= 1.5  # one point a second
        for _, errors, latency in points(frame):
            assert errors == rollout["evidence"]["errors"]["evidence"]  # no traffic: no change
            assert isinstance(latency, float)

        (await admin.acall("POST", "/v1/routes/web/rollout/abort")).ok()
        frame = await stream.frames_until(
            lambda f: f["rollouts"][0]["phase"] == "aborted", timeout=2.0
        )
        final = points(frame)
        # The verdict's point is the last: a finished rollout's history no longer grows.
        later = await stream.frames_until(lambda f: f["frames"] >= frame["frames"] + 2, 4.0)
        assert points(later) == final
        assert later["rollouts"][0]["phase"] == "aborted"


async def test_a_pool_rollout_and_its_evidence() -> None:
    with backend_loop() as loop, proxy_process(pools(loop, {"blue": 2})) as running:
        admin = api(running)
        document = admin.get("/v1/openapi.json")
        async with Subscribers(running.admin_url) as subscribers:
            stream = await subscribers.subscribe()
            await stream.frame()
            body = {"hook": {"command": STUCK, "timeout": 120}, **QUICK}
            (await admin.acall("POST", "/v1/pools/blue/rollout", body)).ok(201)
            frame = await stream.frames_until(
                lambda f: len(f["evidence"].get("pool/blue", [])) >= 2, timeout=5.0
            )
            (rollout,) = frame["poolRollouts"]
            conforms(document, "PoolRolloutView", rollout)
            assert rollout["pool"] == "blue"
            (listed,) = admin.get("/v1/rollouts")["poolRollouts"]
            assert list(rollout) == list(listed)  # GET /v1/rollouts' own view
            for name in ("pool", "mode", "started", "batches", "spec"):
                assert rollout[name] == listed[name], name
            for _, errors, latency in frame["evidence"]["pool/blue"]:
                assert errors == rollout["evidence"]["evidence"]
                assert latency is None  # a pool rollout's judge compares errors only
            (await admin.acall("POST", "/v1/pools/blue/rollout/abort", {})).ok()


def get(port: int, path: str, count: int) -> list[int]:
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    statuses = []
    try:
        for _ in range(count):
            client.request("GET", path)
            response = client.getresponse()
            response.read()
            statuses.append(response.status)
    finally:
        client.close()
    return statuses


async def test_series_count_the_last_minutes_requests_errors_and_latency(
    proxy: ProxyProcess,
) -> None:
    async with Subscribers(proxy.admin_url) as subscribers:
        stream = await subscribers.subscribe()
        before = await stream.frame()
        ok = await asyncio.to_thread(send, proxy.port, 40, "/shop")
        assert sum(ok.values()) == 40
        assert await asyncio.to_thread(get, proxy.port, "/broken/x", 12) == [503] * 12
        blue, broken = before["series"]["shop/blue"], before["series"]["broken/broken"]

        def counted(frame: dict[str, Any]) -> bool:
            series = frame["series"]
            return bool(
                series["shop/blue"]["requests"] - blue["requests"] == 40
                and series["broken/broken"]["requests"] - broken["requests"] == 12
            )

        frame = await stream.frames_until(counted, timeout=5.0)
    shop, failing = frame["series"]["shop/blue"], frame["series"]["broken/broken"]
    assert shop["errors"] == blue["errors"]
    assert failing["errors"] - broken["errors"] == 12
    # Per second: the requests are in the newest seconds (rates over ticks of about a second).
    assert sum(shop["rps"]) == pytest.approx(shop["requests"], rel=0.2)
    assert sum(shop["rps"][-3:]) == pytest.approx(sum(shop["rps"]), abs=0.01)
    assert 1.0 in failing["errorRate"]
    assert all(rate in (None, 0.0) for rate in shop["errorRate"])
    assert shop["p50"] is not None
    assert 0 < shop["p50"] <= shop["p99"] <= 10
    assert frame["series"]["shop/green"]["requests"] == 0
    assert frame["series"]["shop/green"]["p50"] is None


async def idle(url: str) -> None:
    """Until no reader of an earlier test is left (the server notices a reader gone at its
    next frame), so the producer starts afresh."""
    deadline = time.monotonic() + 5
    while await asyncio.to_thread(metric, url, SUBSCRIBERS) != 0:
        assert time.monotonic() < deadline, "a subscriber was never dropped"
        await asyncio.sleep(0.05)


async def test_20_readers_share_one_frame_a_second(proxy: ProxyProcess) -> None:
    url = proxy.admin_url
    await idle(url)
    built_before = await asyncio.to_thread(metric, url, FRAMES)
    async with Subscribers(url) as subscribers:
        streams = await asyncio.gather(*(subscribers.subscribe() for _ in range(20)))
        started = time.monotonic()
        seen: list[list[int]] = [[] for _ in streams]

        async def read(index: int) -> None:
            while time.monotonic() - started < 3.0:
                seen[index].append((await streams[index].frame(timeout=3.0))["frames"])

        await asyncio.gather(*(read(i) for i in range(20)))
        elapsed = time.monotonic() - started
        assert await asyncio.to_thread(metric, url, SUBSCRIBERS) == 20
    built = await asyncio.to_thread(metric, url, FRAMES) - built_before
    # About one a second for all 20 together (not 20 a second): the first, one per second
    # since, and one that may be in the making at either end.
    assert 3 <= built <= elapsed + 3, (built, elapsed)
    # Every reader got every frame, the same ones: one build, fanned out.
    assert all(len(frames) >= 3 for frames in seen), seen
    numbers = {number for frames in seen for number in frames}
    assert len(numbers) <= built
    for frames in seen:
        assert frames == sorted(frames)
        assert frames[-1] - frames[0] == len(frames) - 1  # none missed by a reader that reads


def stalled_subscriber(port: int) -> socket.socket:
    """A client that asks for the stream and never reads a byte of it (tiny receive buffer)."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(("127.0.0.1", port))
    client.sendall(f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return client


@pytest.mark.slow
async def test_a_reader_that_never_reads_does_not_hold_up_the_others() -> None:
    # 600 backends make frames of ~125 KB, so the stalled reader's buffers fill in seconds.
    with backend_loop() as loop, proxy_process(configuration(loop, bulk=600)) as running:
        url = running.admin_url
        stalled = stalled_subscriber(running.admin_port)
        try:
            async with Subscribers(url) as subscribers:
                stream = await subscribers.subscribe()
                last = (await stream.event(timeout=5.0)).received
                deadline = time.monotonic() + 30
                # Until the stalled reader's queue overflows (its oldest frames are dropped)
                # the other reader gets a frame every second, never held up.
                while await asyncio.to_thread(metric, url, DROPPED) == 0:
                    assert time.monotonic() < deadline, "the stalled reader never overflowed"
                    event = await stream.event(timeout=3.0)
                    assert event.received - last < 2.0
                    last = event.received
                for _ in range(3):
                    event = await stream.event(timeout=3.0)
                    assert event.received - last < 2.0
                    last = event.received
                assert await asyncio.to_thread(metric, url, SUBSCRIBERS) == 2
        finally:
            stalled.close()


async def test_a_reader_that_leaves_is_forgotten_and_none_left_means_no_work(
    proxy: ProxyProcess,
) -> None:
    url = proxy.admin_url
    await idle(url)
    async with Subscribers(url) as subscribers:
        stream = await subscribers.subscribe()
        await stream.frame()
        assert await asyncio.to_thread(metric, url, SUBSCRIBERS) == 1
        await subscribers.close(stream)
    await idle(url)
    built = await asyncio.to_thread(metric, url, FRAMES)
    await asyncio.sleep(2.5)  # what is asserted is that nothing happens: a wait is the test
    assert await asyncio.to_thread(metric, url, FRAMES) == built


async def test_stopping_turnout_ends_the_streams_at_once() -> None:
    with backend_loop() as loop, proxy_process(configuration(loop)) as running:
        async with Subscribers(running.admin_url) as subscribers:
            stream = await subscribers.subscribe()
            await stream.frame()
            started = time.monotonic()
            status = await asyncio.to_thread(running.stop)
            assert status == 0
            assert time.monotonic() - started < 10  # not aiohttp's 60 s wait for handlers
            with pytest.raises((EOFError, ConnectionError, aiohttp.ClientPayloadError)):
                await stream.drain(timeout=5.0)
