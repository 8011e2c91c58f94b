"""Passive checks: real traffic failing in a row ejects a backend, within a cap held exactly."""

from __future__ import annotations

import asyncio
from datetime import datetime

import aiohttp
import pytest
from health_support import Controlled, admin, backend_view, started, wait_until

from helpers import config, proxy_process


def outlier_pool(*urls: str, percent: int, base: float = 1.0) -> dict[str, object]:
    data = config({"app": list(urls)}, {"web": {"weights": {"app": 1}}})
    data["outlier"] = {
        "enabled": True,
        "consecutive_5xx": 3,
        "consecutive_gateway_failures": 3,
        "base_ejection_time": base,
        "max_ejection_time": 10.0,
        "max_ejection_percent": percent,
    }
    data["upstream"] = {"retries": 0}
    return data


async def send(port: int, count: int) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            async with session.get(f"http://127.0.0.1:{port}/") as response:
                await response.read()


async def test_a_backend_failing_real_traffic_is_ejected_and_returns_on_probation() -> None:
    good, bad = await started("good", "bad")
    bad.status = 503  # ... yet its /healthz is fine: only real traffic shows the problem
    try:
        with proxy_process(outlier_pool(good.url, bad.url, percent=50)) as proxy:

            async def ejected() -> bool:
                await send(proxy.port, 5)
                return (await backend_view(proxy, "app", "app-2"))["ejection"] is not None

            await wait_until(ejected)
            first = (await backend_view(proxy, "app", "app-2"))["ejection"]
            served = bad.served
            await send(proxy.port, 100)
            assert bad.served == served  # ejected: nothing new reaches it
            # Back after base_ejection_time (1 s), on probation: still failing, so ejected again
            # for twice as long.
            await asyncio.sleep(1.2)
            await wait_until(ejected)
            second = (await backend_view(proxy, "app", "app-2"))["ejection"]
            log = proxy.log()
        assert first["ejections"] == 1
        assert second["ejections"] == 2
        assert first["reason"] == "3 5xx failures in a row"
        assert _seconds(second) == pytest.approx(2.0, abs=0.2)
        assert _seconds(first) == pytest.approx(1.0, abs=0.2)
        assert log.count("backend app/app-2 out of rotation: ejected") == 2
        assert "app/app-1 out of rotation" not in log
    finally:
        await good.stop()
        await bad.stop()


@pytest.mark.parametrize(
    ("backends", "percent", "allowed"),
    [(1, 50, 0), (2, 50, 1), (10, 10, 1)],
    ids=["1 backend at 50%", "2 backends at 50%", "10 backends at 10%"],
)
async def test_the_ejection_cap_is_honoured_exactly(
    backends: int, percent: int, allowed: int
) -> None:
    failing = [Controlled(f"b{i}", status=503) for i in range(backends)]
    for backend in failing:
        await backend.start()
    try:
        with proxy_process(
            outlier_pool(*(b.url for b in failing), percent=percent, base=30.0)
        ) as proxy:
            # Every backend fails every request: each reaches the streak many times over.
            await send(proxy.port, 40 * backends)
            await asyncio.sleep(0.3)
            _, pool = await admin(proxy, "GET", "/v1/pools/app")
            log = proxy.log()
        ejected = [b["name"] for b in pool["backends"] if b["ejection"] is not None]
        # Envoy #17504 ejects one host whatever the cap; the cap here is floor(n * percent).
        assert len(ejected) == allowed, ejected
        assert "max_ejection_percent" in log
    finally:
        for backend in failing:
            await backend.stop()


async def test_connect_failures_in_a_row_eject_too() -> None:
    good, gone = await started("good", "gone")
    await gone.stop()  # nothing listens: every connect is refused
    try:
        data = outlier_pool(good.url, gone.url, percent=50)
        with proxy_process(data) as proxy:

            async def ejected() -> bool:
                async with aiohttp.ClientSession() as session:
                    for _ in range(5):
                        async with session.get(f"http://127.0.0.1:{proxy.port}/") as response:
                            await response.read()
                return (await backend_view(proxy, "app", "app-2"))["ejection"] is not None

            await wait_until(ejected)
            view = await backend_view(proxy, "app", "app-2")
        assert view["ejection"]["reason"] == "3 gateway failures in a row"
        assert view["eligible"] is False
    finally:
        await good.stop()


def _seconds(ejection: dict[str, str]) -> float:
    since = datetime.fromisoformat(ejection["since"])
    until = datetime.fromisoformat(ejection["until"])
    return (until - since).total_seconds()
