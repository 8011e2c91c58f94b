"""Start-up of a whole instance: writes and signals while the workers come up, and ports that
another process already serves.

The window these tests aim at opens when the admin API accepts connections and closes when every
worker serves; starting a worker process (an interpreter, uvloop, the router) takes long enough
that a client polling the admin port lands in it.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from helpers import (
    TURNOUT,
    Backend,
    ProxyProcess,
    config,
    free_port,
    proxy_process,
    start_backend,
    toml,
    wait_for_port,
    wait_until_ready,
)
from proxy.config import Settings
from proxy.supervisor import Supervisor
from proxy.telemetry import Telemetry
from router import build_snapshot


@pytest.fixture
async def pair() -> AsyncIterator[dict[str, list[str]]]:
    backends: list[Backend] = [await start_backend(name) for name in ("stable", "canary")]
    yield {backend.name: [backend.url] for backend in backends}
    for backend in backends:
        await backend.stop()


async def admin(proxy: ProxyProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return await asyncio.to_thread(proxy.admin, method, path, body)


async def admin_accepts(proxy: ProxyProcess) -> None:
    await asyncio.to_thread(wait_for_port, proxy.admin_port, proxy.process, proxy.log_path, 30)


async def answers(port: int, count: int) -> set[str]:
    async with aiohttp.ClientSession() as session:
        seen = set()
        for _ in range(count):
            async with session.get(f"http://127.0.0.1:{port}/") as response:
                seen.add(await response.text())
        return seen


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_write_while_the_workers_start_is_applied_and_the_instance_becomes_ready(
    pair: dict[str, list[str]], workers: int
) -> None:
    data = config(pair, {"web": {"weights": {"stable": 1, "canary": 0}}})
    # Shorter than a worker takes to start: a worker still starting acknowledges once it serves,
    # and must not be killed as stuck meanwhile.
    data["process"] = {"ack_timeout": 0.1}
    with proxy_process(data, workers=workers, ready=False) as proxy:
        await admin_accepts(proxy)
        status, body = await admin(proxy, "GET", "/ready")
        assert (status, body["status"]) == (503, "starting")
        status, body = await admin(
            proxy, "PUT", "/v1/routes/web/weights", {"weights": {"stable": 0, "canary": 1}}
        )
        assert status == 200, body
        # The write reached workers that had started at the first revision: the race.
        assert re.search(r"worker \d serving \(pid \d+, revision 1\)", proxy.log())

        await asyncio.to_thread(wait_until_ready, proxy, 5.0)
        assert proxy.process.poll() is None
        assert await answers(proxy.port, 20) == {"canary"}
        _, state = await admin(proxy, "GET", "/v1/workers")
        assert {worker["revision"] for worker in state["workers"]} == {state["revision"]}
        assert state["crashes"] == 0, proxy.log()
        await asyncio.sleep(0.5)
        assert proxy.process.poll() is None
        assert "cannot start" not in proxy.log()


async def test_sigterm_while_the_workers_start_stops_promptly(
    pair: dict[str, list[str]],
) -> None:
    data = config(pair, {"web": {"weights": {"stable": 1}}})
    with proxy_process(data, workers=2, ready=False) as proxy:
        await admin_accepts(proxy)
        status, _ = await admin(proxy, "GET", "/ready")
        assert status == 503
        proxy.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = await asyncio.to_thread(proxy.process.wait, 30)
        took = time.monotonic() - signalled
        log = proxy.log()
    assert took < 5.0, log
    assert code == 0, log
    assert "cannot start" not in log


async def test_a_worker_started_while_a_revision_is_published_gets_that_revision() -> None:
    data = config({"app": ["http://127.0.0.1:9"]}, {"web": {"weights": {"app": 1}}})
    settings = Settings(**{**data, "process": {"workers": 2}})
    first = build_snapshot(settings.spec(), {}, 1)
    second = build_snapshot(settings.spec(), {}, 2)
    current = first
    supervisor = Supervisor(settings, lambda: (current, settings), Telemetry(), "warning")
    start = asyncio.create_task(supervisor.start())
    try:
        # Worker 0 has its channel, worker 1 is still being spawned: a publish now reaches
        # only worker 0, and the control plane makes it current only once that one acked.
        deadline = time.monotonic() + 10
        while not (
            len(supervisor.slots) == 2
            and supervisor.slots[0].channel is not None
            and supervisor.slots[1].channel is None
        ):
            assert time.monotonic() < deadline, "never caught worker 1 being spawned"
            await asyncio.sleep(0)
        await supervisor.publish(second)
        current = second
        await asyncio.wait_for(start, 15)
        assert supervisor.all_serving(2)
    finally:
        start.cancel()
        await supervisor.drain(1.0)


def run_second(tmp_path: Path, data: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "second.toml"
    path.write_text(toml(data))
    return subprocess.run(
        [TURNOUT, "run", "--config", str(path)], capture_output=True, text=True, timeout=60
    )


async def test_a_second_instance_on_the_same_listen_port_is_refused(
    pair: dict[str, list[str]], tmp_path: Path
) -> None:
    data = config(pair, {"web": {"weights": {"stable": 1}}}, state={"persist": False})
    with proxy_process(data, workers=2) as first:
        second = {
            **data,
            "listen": {"host": "127.0.0.1", "port": first.port},
            "admin": {"port": free_port()},
        }
        result = await asyncio.to_thread(run_second, tmp_path, second)
        assert result.returncode == 1, result.stderr
        assert (
            f"127.0.0.1:{first.port} is already in use (another process is listening)"
            in result.stderr
        )
        # The first instance still takes every connection.
        assert first.process.poll() is None
        _, state = await admin(first, "GET", "/v1/workers")
        assert len(state["workers"]) == 2


async def test_a_taken_admin_port_is_refused_with_a_clear_message(
    pair: dict[str, list[str]], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        data = config(pair, {"web": {"weights": {"stable": 1}}}, state={"persist": False})
        data["listen"]["port"] = free_port()
        data["admin"] = {"port": port}
        result = await asyncio.to_thread(run_second, tmp_path, data)
    assert result.returncode == 1
    assert f"admin API: 127.0.0.1:{port} is already in use" in result.stderr


async def test_a_restart_right_after_an_exit_binds_the_same_port(
    pair: dict[str, list[str]],
) -> None:
    data = config(pair, {"web": {"weights": {"stable": 1}}}, state={"persist": False})
    port = free_port()
    with proxy_process(data, workers=2, port=port) as first:
        # Connections the proxy closes first leave TIME_WAIT entries on its port: those are
        # not listeners, and must not keep the next instance out.
        async with aiohttp.ClientSession() as session:
            for _ in range(10):
                async with session.get(f"http://127.0.0.1:{port}/") as response:
                    assert await response.text() == "stable"
            assert await asyncio.to_thread(first.stop) == 0
    with proxy_process(data, workers=2, port=port) as second:
        assert await answers(second.port, 5) == {"stable"}
