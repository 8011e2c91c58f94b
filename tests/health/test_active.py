"""Active health checks against real backends that fail for real."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aiohttp
from health_support import admin, backend_view, health_config, started, wait_until

from helpers import LoadLoop, config, proxy_process

INTERVAL, TIMEOUT, JITTER, UNHEALTHY = 0.3, 0.2, 0.1, 2


def pool_of(*urls: str, retries: int = 1, **health: object) -> dict[str, object]:
    data = config({"app": list(urls)}, {"web": {"weights": {"app": 1}}})
    data["pools"]["app"]["health"] = health_config(**health)
    data["upstream"] = {"retries": retries}
    return data


async def unhealthy(proxy: object, name: str) -> bool:
    view = await backend_view(proxy, "app", name)  # type: ignore[arg-type]
    return bool(view["health"] == "unhealthy")


async def test_a_killed_backend_is_ejected_in_time_and_retries_hide_it() -> None:
    a, b = await started("a", "b")
    try:
        with proxy_process(pool_of(a.url, b.url, retries=1), workers=2) as proxy:
            async with LoadLoop(f"http://127.0.0.1:{proxy.port}/", clients=8) as load:
                await asyncio.sleep(0.5)
                killed = time.monotonic()
                await b.stop()
                ejected = await wait_until(lambda: unhealthy(proxy, "app-2"))
                await asyncio.sleep(0.5)
            view = await backend_view(proxy, "app", "app-2")
            log = proxy.log()
        # Ejected within interval x unhealthy_threshold (stretched by the jitter) + one timeout,
        # plus a little for publishing to the workers and polling.
        assert ejected - killed < INTERVAL * (1 + JITTER) * UNHEALTHY + TIMEOUT + 0.3
        # Connect failures went to the other backend: clients saw nothing.
        assert load.failures() == []
        assert {o.answer for o in load.between(ejected + 0.1, float("inf"))} == {"a"}
        assert view["check"]["state"] == "unhealthy"
        assert view["check"]["consecutiveFailures"] >= UNHEALTHY
        assert "connect failed" in view["check"]["lastProbe"]["error"]
        # One log line for the transition, none per probe.
        assert log.count("backend app/app-2 out of rotation") == 1
    finally:
        await a.stop()
        await b.stop()


async def test_without_retries_the_failures_are_bounded_by_the_detection_time() -> None:
    a, b = await started("a", "b")
    try:
        with proxy_process(pool_of(a.url, b.url, retries=0), workers=1) as proxy:
            async with LoadLoop(f"http://127.0.0.1:{proxy.port}/", clients=8) as load:
                await asyncio.sleep(0.5)
                killed = time.monotonic()
                await b.stop()
                ejected = await wait_until(lambda: unhealthy(proxy, "app-2"))
                await asyncio.sleep(0.5)
        failed = load.failures()
        window = load.between(killed, ejected + 0.1)
        print(f"\n{len(failed)} of {len(window)} requests failed between kill and ejection")
        # Only in the detection window (from requests already in flight at the kill, which a
        # busy machine may have started a moment before it), and never after the ejection.
        assert all(killed - 1.0 <= o.at <= ejected + 0.1 for o in failed)
        assert len(failed) < len(window)
        assert load.failures(ejected + 0.1) == []
    finally:
        await a.stop()
        await b.stop()


async def test_a_failing_healthz_ejects_then_readmits_with_slow_start() -> None:
    a, b = await started("a", "b")
    data = pool_of(a.url, b.url, healthy_threshold=3)
    data["pools"]["app"]["slow_start"] = 3.0
    try:
        with proxy_process(data) as proxy:
            b.health = 500
            await wait_until(lambda: unhealthy(proxy, "app-2"))
            before = b.served
            await _requests(proxy.port, 100)
            assert b.served == before  # out of rotation: nothing new
            b.health = 200
            recovered = time.monotonic()

            async def healthy() -> bool:
                return not await unhealthy(proxy, "app-2")

            readmitted = await wait_until(healthy)
            # healthy_threshold successes in a row: at least two more intervals after the first.
            assert readmitted - recovered > INTERVAL * (1 - JITTER) * 2
            early = await _share_of(b, proxy.port, 400)
            await asyncio.sleep(3.0)
            late = await _share_of(b, proxy.port, 400)
            _, history = await admin(proxy, "GET", "/v1/history")
        # Slow start: a tenth of its weight at first, all of it after the window.
        assert early < 0.3
        assert 0.35 < late < 0.65
        actions = [(c["actor"], c["action"]) for c in history["changes"]]
        assert ("health-checker", "eject") in actions
        assert ("health-checker", "readmit") in actions
    finally:
        await a.stop()
        await b.stop()


async def test_a_flapping_backend_is_not_readmitted() -> None:
    a, b = await started("a", "b")
    try:
        with proxy_process(pool_of(a.url, b.url)) as proxy:
            b.health = 500
            await wait_until(lambda: unhealthy(proxy, "app-2"))
            b.flap = True  # 200, 500, 200, 500...: never two successes in a row
            probes = b.probes
            while b.probes < probes + 10:
                await asyncio.sleep(0.1)
                assert await unhealthy(proxy, "app-2")
            _, history = await admin(proxy, "GET", "/v1/history")
        targets = [c for c in history["changes"] if c["target"] == "pool/app/backend/app-2"]
        assert [c["action"] for c in targets] == ["eject"]
    finally:
        await a.stop()
        await b.stop()


async def test_a_backend_added_at_runtime_waits_for_its_first_successful_probe() -> None:
    a, late = await started("a", "late")
    late.health = 500
    try:
        data = pool_of(a.url, initial_state="unhealthy")
        with proxy_process(data) as proxy:
            status, _ = await admin(
                proxy, "POST", "/v1/pools/app/backends", {"name": "late", "url": late.url}
            )
            assert status == 201
            assert (await backend_view(proxy, "app", "late"))["health"] == "unhealthy"
            await asyncio.sleep(1.0)  # probes fail: it stays out
            await _requests(proxy.port, 100)
            assert late.served == 0
            late.health = 200

            async def in_rotation() -> bool:
                return bool((await backend_view(proxy, "app", "late"))["eligible"])

            await wait_until(in_rotation)
            await _requests(proxy.port, 200)
        assert late.served > 40
    finally:
        await a.stop()
        await late.stop()


async def _requests(port: int, count: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            async with session.get(f"http://127.0.0.1:{port}/") as response:
                seen[f"{response.status} {await response.text()}"] += 1
    return seen


async def _share_of(backend: object, port: int, count: int) -> float:
    before = backend.served  # type: ignore[attr-defined]
    await _requests(port, count)
    return float(backend.served - before) / count  # type: ignore[attr-defined]
