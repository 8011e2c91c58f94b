"""A whole pool down: canary users fall back to stable; blue-green fails over per policy."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from health_support import backend_view, health_config, started, wait_until

from helpers import LoadLoop, config, proxy_process


async def test_a_whole_canary_pool_down_sends_its_users_to_stable_and_nothing_fails() -> None:
    stable, canary = await started("stable", "canary")
    data = config(
        {"stable": [stable.url], "canary": [canary.url]},
        {
            "web": {
                "weights": {"stable": 50, "canary": 50},
                "sticky": {"cookie": "user", "issue": False},
            }
        },
    )
    data["health"] = health_config()
    data["upstream"] = {"retries": 1}
    users = [f"user-{i}" for i in range(40)]
    try:
        with proxy_process(data, workers=2) as proxy:
            home = await _where(proxy.port, users)
            assert set(home.values()) == {"stable", "canary"}
            async with LoadLoop(f"http://127.0.0.1:{proxy.port}/", clients=8) as load:
                await asyncio.sleep(0.3)
                await canary.stop()

                async def ejected() -> bool:
                    return (await backend_view(proxy, "canary", "canary-1"))[
                        "health"
                    ] == "unhealthy"

                await wait_until(ejected)
                await asyncio.sleep(0.3)
                during = await _where(proxy.port, users)
                await canary.restart()

                async def back() -> bool:
                    return bool((await backend_view(proxy, "canary", "canary-1"))["eligible"])

                await wait_until(back)
                after = await _where(proxy.port, users)
        # Before ejection, a request to the dead canary was retried on stable; after, the
        # canary's users go to stable. Either way nobody saw an error.
        assert load.failures() == []
        assert set(during.values()) == {"stable"}
        # Sticky: every user is back where they were.
        assert after == home
    finally:
        await stable.stop()
        await canary.stop()


async def test_blue_green_fails_over_to_the_other_colour_by_default() -> None:
    blue, green = await started("blue", "green")
    data = _blue_green(blue.url, green.url, failover="auto")
    try:
        with proxy_process(data) as proxy:
            await _switch_to_green(proxy)
            async with LoadLoop(f"http://127.0.0.1:{proxy.port}/", clients=4) as load:
                await asyncio.sleep(0.3)
                await green.stop()
                await wait_until(lambda: _down(proxy, "green", "green-1"))
                await asyncio.sleep(0.3)
        assert load.failures() == []
        assert load.outcomes[-1].answer == "blue"
    finally:
        await blue.stop()
        await green.stop()


async def test_blue_green_with_failover_none_answers_503() -> None:
    blue, green = await started("blue", "green")
    data = _blue_green(blue.url, green.url, failover="none")
    try:
        with proxy_process(data) as proxy:
            await _switch_to_green(proxy)
            await green.stop()
            await wait_until(lambda: _down(proxy, "green", "green-1"))
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{proxy.port}/") as response:
                    problem = await response.json(content_type=None)
        assert response.status == 503
        assert problem["type"] == "urn:turnout:problem:no-eligible-backend"
        assert blue.served == 0
    finally:
        await blue.stop()
        await green.stop()


async def test_panic_mode_is_opt_in_and_visible() -> None:
    a, b = await started("a", "b")
    data = config({"app": [a.url, b.url]}, {"web": {"weights": {"app": 1}}})
    data["pools"]["app"]["health"] = health_config()
    data["pools"]["app"]["panic_threshold"] = 50
    try:
        with proxy_process(data) as proxy:
            a.health = b.health = 500  # both "unhealthy", both still answering requests
            await wait_until(lambda: _down(proxy, "app", "app-1"))
            await wait_until(lambda: _down(proxy, "app", "app-2"))
            _, pool = await asyncio.to_thread(proxy.admin, "GET", "/v1/pools/app")
            async with aiohttp.ClientSession() as session:
                statuses = []
                for _ in range(40):
                    async with session.get(f"http://127.0.0.1:{proxy.port}/") as response:
                        statuses.append(response.status)
        assert pool["panic"] is True
        assert pool["eligible"] == 2
        assert set(statuses) == {200}
        assert a.served > 0
        assert b.served > 0
    finally:
        await a.stop()
        await b.stop()


def _blue_green(blue: str, green: str, failover: str) -> dict[str, Any]:
    data = config(
        {"blue": [blue], "green": [green]},
        {
            "shop": {
                "mode": "blue-green",
                "pools": ["blue", "green"],
                "active": "blue",
                "failover": failover,
            }
        },
    )
    data["health"] = health_config()
    data["upstream"] = {"retries": 1}
    return data


async def _switch_to_green(proxy: Any) -> None:
    status, body = await asyncio.to_thread(
        proxy.admin, "POST", "/v1/routes/shop/switch", {"to": "green"}
    )
    assert status == 200, body


async def _down(proxy: Any, pool: str, backend: str) -> bool:
    return (await backend_view(proxy, pool, backend))["health"] == "unhealthy"


async def _where(port: int, users: list[str]) -> dict[str, str]:
    placed = {}
    async with aiohttp.ClientSession() as session:
        for user in users:
            async with session.get(
                f"http://127.0.0.1:{port}/", headers={"Cookie": f"user={user}"}
            ) as response:
                placed[user] = await response.text()
    return placed
