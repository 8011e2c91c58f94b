"""Worker processes under one control plane: read-your-writes, crashes, reloads, under load.

Everything here runs `turnout run` as a subprocess (control plane + workers) in front of real
aiohttp backends living in the test process, and drives it through its admin API and signals.
Admin calls block, so they run in a thread: the backends share the test's event loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from helpers import Backend, LoadLoop, ProxyProcess, config, proxy_process, start_backend, toml


@pytest.fixture
async def colours() -> AsyncIterator[dict[str, Backend]]:
    backends = {name: await start_backend(name) for name in ("blue", "green", "stable", "canary")}
    yield backends
    for backend in backends.values():
        await backend.stop()


def urls(backends: dict[str, Backend], *names: str) -> dict[str, list[str]]:
    return {name: [backends[name].url] for name in names}


async def admin(proxy: ProxyProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return await asyncio.to_thread(proxy.admin, method, path, body)


async def fetch_on_new_connections(port: int, count: int, connections: int = 50) -> Counter[str]:
    """`count` GETs spread over `connections` brand-new keep-alive connections (so the kernel
    spreads them over every worker's socket)."""
    seen: Counter[str] = Counter()

    async def client(requests: int) -> None:
        connector = aiohttp.TCPConnector(limit=1, force_close=False)
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(requests):
                async with session.get(f"http://127.0.0.1:{port}/") as response:
                    assert response.status == 200
                    seen[await response.text()] += 1

    await asyncio.gather(*(client(count // connections) for _ in range(connections)))
    return seen


async def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_weight_change_is_in_effect_in_every_worker_when_the_call_returns(
    colours: dict[str, Backend], workers: int
) -> None:
    data = config(
        urls(colours, "stable", "canary"), {"web": {"weights": {"stable": 0, "canary": 1}}}
    )
    with proxy_process(data, workers=workers) as proxy:
        flips = [({"stable": 1, "canary": 0}, "stable"), ({"stable": 0, "canary": 1}, "canary")]
        for weights, expected in flips * 3:
            status, route = await admin(
                proxy, "PUT", "/v1/routes/web/weights", {"weights": weights}
            )
            assert status == 200, route
            assert route["weights"] == weights
            # No sleep: the very next 1,000 requests, on 50 new connections, all route by it.
            assert await fetch_on_new_connections(proxy.port, 1000) == {expected: 1000}
        _, state = await admin(proxy, "GET", "/v1/workers")
    assert len(state["workers"]) == workers
    # Every worker took part (50 new connections per round, spread by the kernel).
    assert all(worker["requests"] > 0 for worker in state["workers"]), state
    assert {worker["revision"] for worker in state["workers"]} == {state["revision"]}


async def test_reload_switches_and_a_worker_kill_under_load(colours: dict[str, Backend]) -> None:
    data = config(
        urls(colours, "blue", "green"),
        {"shop": {"mode": "blue-green", "pools": ["blue", "green"], "active": "blue"}},
    )
    with proxy_process(data, workers=2) as proxy:
        async with LoadLoop(f"http://127.0.0.1:{proxy.port}/", clients=16) as load:
            await asyncio.sleep(0.5)

            # A reload through the API, then one through SIGHUP, each with a changed file.
            reload_start = time.monotonic()
            changed = {**data, "upstream": {"read_timeout": 20.0}}
            proxy.config_path.write_text(toml({**changed, **_process_section(proxy)}))
            status, body = await admin(proxy, "POST", "/v1/reload")
            assert status == 200, body
            revision = body["revision"]
            changed["upstream"] = {"read_timeout": 25.0}
            proxy.config_path.write_text(toml({**changed, **_process_section(proxy)}))
            proxy.process.send_signal(signal.SIGHUP)

            async def reloaded_again() -> bool:
                _, routes = await admin(proxy, "GET", "/v1/routes")
                return bool(routes["revision"] > revision)

            await wait_for(reloaded_again)
            await asyncio.sleep(0.3)

            # Ten blue-green switches back and forth.
            switch_start = time.monotonic()
            for index in range(10):
                target = "green" if index % 2 == 0 else "blue"
                status, body = await admin(proxy, "POST", "/v1/routes/shop/switch", {"to": target})
                assert status == 200, body
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)

            # A worker killed outright.
            kill_start = time.monotonic()
            victim = (await asyncio.to_thread(proxy.worker_pids))[0]
            os.kill(victim, signal.SIGKILL)

            async def replaced() -> bool:
                _, state = await admin(proxy, "GET", "/v1/workers")
                pids = [worker["pid"] for worker in state["workers"]]
                serving = all(worker["serving"] for worker in state["workers"])
                return victim not in pids and serving

            await wait_for(replaced)
            kill_end = time.monotonic()
            await asyncio.sleep(0.5)
        _, state = await admin(proxy, "GET", "/v1/workers")
        log = proxy.log()

    before_kill = load.between(reload_start, kill_start)
    assert len(before_kill) > 200
    assert load.failures(0, kill_start) == [], "a reload or a switch failed a request"
    # The documented exception: requests in flight on (or sent to) the killed worker's
    # connections. At most one per client, and each succeeded when sent again.
    lost = load.failures(kill_start, kill_end)
    assert len(lost) <= load.clients
    assert all(outcome.retried_ok for outcome in lost), lost
    assert load.failures(kill_end) == []
    # After ten switches (an even number) the active colour is blue again.
    assert {o.answer for o in load.between(kill_end, float("inf"))} == {"blue"}
    switching = {o.answer for o in load.between(switch_start, kill_start)}
    assert switching == {"blue", "green"}
    assert state["crashes"] == 1
    assert "exited with signal 9" in log


def _process_section(proxy: ProxyProcess) -> dict[str, Any]:
    return {
        "listen": {"host": "127.0.0.1", "port": proxy.port},
        "admin": {"port": proxy.admin_port},
        "process": {"workers": 2},
    }


async def test_a_restarted_worker_routes_by_the_current_revision(
    colours: dict[str, Backend],
) -> None:
    data = config(
        urls(colours, "stable", "canary"), {"web": {"weights": {"stable": 1, "canary": 0}}}
    )
    with proxy_process(data, workers=2) as proxy:
        status, _ = await admin(
            proxy, "PUT", "/v1/routes/web/weights", {"weights": {"stable": 0, "canary": 1}}
        )
        assert status == 200
        for pid in await asyncio.to_thread(proxy.worker_pids):
            os.kill(pid, signal.SIGKILL)

        async def ready() -> bool:
            status, _ = await admin(proxy, "GET", "/ready")
            return status == 200

        await wait_for(ready)
        assert await fetch_on_new_connections(proxy.port, 500) == {"canary": 500}
        _, state = await admin(proxy, "GET", "/v1/workers")
    assert state["crashes"] == 2
    assert all(worker["crashes"] == 1 for worker in state["workers"])


async def test_an_invalid_reload_keeps_the_running_configuration(
    colours: dict[str, Backend],
) -> None:
    data = config(
        urls(colours, "stable", "canary"), {"web": {"weights": {"stable": 1, "canary": 0}}}
    )
    with proxy_process(data) as proxy:
        _, before = await admin(proxy, "GET", "/v1/routes/web")
        broken = {**data, **_process_section(proxy)}
        broken["routes"] = {"web": {"weights": {"stable": 1, "nowhere": 1}}}
        proxy.config_path.write_text(toml(broken))

        status, problem = await admin(proxy, "POST", "/v1/reload")
        assert status == 400
        assert problem["type"] == "urn:turnout:problem:invalid-config"
        assert any("routes.web.weights.nowhere" in e["message"] for e in problem["errors"])

        proxy.process.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.5)
        _, after = await admin(proxy, "GET", "/v1/routes/web")
        assert after == before
        assert await fetch_on_new_connections(proxy.port, 100, connections=10) == {"stable": 100}
        assert "reload refused" in proxy.log()
        assert proxy.process.poll() is None


async def test_a_reload_keeps_runtime_changes_unless_the_file_changed_that_route(
    colours: dict[str, Backend],
) -> None:
    routes = {
        "web": {"weights": {"stable": 90, "canary": 10}},
        "shop": {
            "path_prefix": "/shop",
            "mode": "blue-green",
            "pools": ["blue", "green"],
            "active": "blue",
        },
    }
    data = config(urls(colours, "stable", "canary", "blue", "green"), routes)
    with proxy_process(data) as proxy:
        await admin(
            proxy, "PUT", "/v1/routes/web/weights", {"weights": {"stable": 50, "canary": 50}}
        )
        await admin(proxy, "POST", "/v1/routes/shop/switch", {"to": "green"})

        # The file changes only a timeout: both runtime changes survive.
        edited = {**data, **_process_section(proxy), "upstream": {"read_timeout": 12.0}}
        proxy.config_path.write_text(toml(edited))
        status, _ = await admin(proxy, "POST", "/v1/reload")
        assert status == 200
        _, web = await admin(proxy, "GET", "/v1/routes/web")
        _, shop = await admin(proxy, "GET", "/v1/routes/shop")
        assert web["weights"] == {"stable": 50, "canary": 50}
        assert shop["active"] == "green"

        # The file changes the web route itself: the file wins there, shop keeps its switch.
        edited["routes"] = {**routes, "web": {"weights": {"stable": 75, "canary": 25}}}
        proxy.config_path.write_text(toml(edited))
        status, _ = await admin(proxy, "POST", "/v1/reload")
        assert status == 200
        _, web = await admin(proxy, "GET", "/v1/routes/web")
        _, shop = await admin(proxy, "GET", "/v1/routes/shop")
    assert web["weights"] == {"stable": 75, "canary": 25}
    assert shop["active"] == "green"


async def test_workers_exit_when_the_control_plane_dies(colours: dict[str, Backend]) -> None:
    data = config(urls(colours, "stable"), {"web": {"weights": {"stable": 1}}})
    with proxy_process(data, workers=2) as proxy:
        pids = await asyncio.to_thread(proxy.worker_pids)
        proxy.process.kill()
        proxy.process.wait()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


async def test_a_worker_that_does_not_acknowledge_is_restarted(
    colours: dict[str, Backend],
) -> None:
    data = config(
        urls(colours, "stable", "canary"), {"web": {"weights": {"stable": 1, "canary": 0}}}
    )
    data["process"] = {"ack_timeout": 1.0}
    with proxy_process(data, workers=2) as proxy:
        frozen = (await asyncio.to_thread(proxy.worker_pids))[0]
        os.kill(frozen, signal.SIGSTOP)  # alive, but deaf: it can never acknowledge
        started = time.monotonic()
        status, _ = await admin(
            proxy, "PUT", "/v1/routes/web/weights", {"weights": {"stable": 0, "canary": 1}}
        )
        waited = time.monotonic() - started
        assert status == 200
        assert 1.0 <= waited < 3.0  # bounded by ack_timeout

        async def replaced() -> bool:
            status, _ = await admin(proxy, "GET", "/ready")
            return status == 200 and frozen not in await asyncio.to_thread(proxy.worker_pids)

        await wait_for(replaced)
        # Whichever worker a connection lands on now, it routes by the new weights.
        assert await fetch_on_new_connections(proxy.port, 500) == {"canary": 500}
        assert "did not apply revision 2" in proxy.log()
