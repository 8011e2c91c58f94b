"""/metrics follows the instance's state: weights, colours, revisions, admin states, health
(probes and outliers), workers and upstream connections.

One `turnout run` with 2 workers and active health checks (fast interval) serves the module;
each test works on pools and routes of its own, so they do not disturb one another.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from obs_support import Echo, admin, backend_loop, fetch, scrape, scrape_sync, wait_for

from helpers import ProxyProcess, config, free_port, proxy_process
from proxy import native

HEALTH = {
    "enabled": True,
    "interval": 0.25,
    "jitter": 0.1,
    "timeout": 0.2,
    "unhealthy_threshold": 2,
    "healthy_threshold": 2,
}


@dataclass
class Instance:
    proxy: ProxyProcess
    echoes: dict[str, Echo]


@pytest.fixture(scope="module")
def instance() -> Iterator[Instance]:
    echoes = {
        name: Echo(name)
        for name in ("stable", "canary", "blue", "green", "drain-a", "drain-b", "sick", "well")
    }
    echoes["sick"].health = 500  # its /healthz fails: the health checker takes it out
    echoes["flaky"] = Echo("flaky", status=503)  # its /healthz passes; real traffic fails
    echoes["steady"] = Echo("steady")
    with backend_loop() as loop:
        url = {name: loop.start(name, echo).url for name, echo in echoes.items()}
        data = config(
            {
                "stable": [url["stable"]],
                "canary": [url["canary"]],
                "blue": [url["blue"]],
                "green": [url["green"]],
                "drainy": [url["drain-a"], url["drain-b"]],
                "sickly": [url["sick"], url["well"]],
                "flaky": [url["flaky"], url["steady"]],
                # Nothing listens there: every connect is refused.
                "dead": [f"http://127.0.0.1:{free_port()}"],
            },
            {
                "web": {"path_prefix": "/web", "weights": {"stable": 90, "canary": 10}},
                "bg": {
                    "path_prefix": "/bg",
                    "mode": "blue-green",
                    "pools": ["blue", "green"],
                    "active": "blue",
                },
                "dr": {"path_prefix": "/dr", "weights": {"drainy": 1}},
                "sk": {"path_prefix": "/sk", "weights": {"sickly": 1}},
                "fl": {"path_prefix": "/fl", "weights": {"flaky": 1}},
                "dd": {"path_prefix": "/dd", "weights": {"dead": 1}},
            },
            health=HEALTH,
        )
        data["pools"]["dead"]["health"] = {"enabled": False}
        data["pools"]["flaky"]["outlier"] = {
            "enabled": True,
            "consecutive_5xx": 3,
            "base_ejection_time": 60.0,
            "max_ejection_time": 60.0,
            "max_ejection_percent": 50,
        }
        with proxy_process(data, workers=2) as proxy:
            # The sick backend's ejection (a revision of its own) happens first, so the tests
            # below see revisions move only by what they do.
            def ejected() -> bool:
                metrics = scrape_sync(proxy)
                return metrics.get("turnout_backend_up", pool="sickly", backend="sickly-1") == 0

            for _ in range(200):
                if ejected():
                    break
                time.sleep(0.05)
            else:
                raise TimeoutError("the sick backend was never ejected")
            yield Instance(proxy, echoes)


async def test_weights_and_revision_follow_a_weights_change(instance: Instance) -> None:
    proxy = instance.proxy
    before = await scrape(proxy)
    assert before.by("turnout_route_weight", "pool", route="web") == {
        ("stable",): 90,
        ("canary",): 10,
    }
    status, view = await admin(
        proxy, "PUT", "/v1/routes/web/weights", {"weights": {"stable": 70, "canary": 30}}
    )
    assert status == 200, view
    after = await scrape(proxy)
    assert after.by("turnout_route_weight", "pool", route="web") == {
        ("stable",): 70,
        ("canary",): 30,
    }
    assert view["revision"] == before.get("turnout_revision") + 1
    assert after.get("turnout_revision") == view["revision"]


async def test_the_active_colour_follows_a_switch(instance: Instance) -> None:
    proxy = instance.proxy
    before = await scrape(proxy)
    assert before.by("turnout_route_active", "pool", route="bg") == {("blue",): 1, ("green",): 0}
    assert before.series("turnout_route_weight", route="bg") == {}
    status, view = await admin(proxy, "POST", "/v1/routes/bg/switch", {"to": "green"})
    assert status == 200, view
    after = await scrape(proxy)
    assert after.by("turnout_route_active", "pool", route="bg") == {("blue",): 0, ("green",): 1}
    assert after.get("turnout_revision") == before.get("turnout_revision") + 1


async def test_admin_state_and_eligibility_follow_a_drain(instance: Instance) -> None:
    proxy = instance.proxy
    before = await scrape(proxy)
    assert before.by("turnout_backend_admin_state", "backend", "state", pool="drainy") == {
        (backend, state): int(state == "ready")
        for backend in ("drainy-1", "drainy-2")
        for state in ("ready", "drain", "maint")
    }
    status, view = await admin(
        proxy, "PATCH", "/v1/pools/drainy/backends/drainy-1", {"adminState": "drain"}
    )
    assert status == 200, view
    after = await scrape(proxy)
    assert after.by("turnout_backend_admin_state", "state", pool="drainy", backend="drainy-1") == {
        ("ready",): 0,
        ("drain",): 1,
        ("maint",): 0,
    }
    assert after.by("turnout_backend_eligible", "backend", pool="drainy") == {
        ("drainy-1",): 0,
        ("drainy-2",): 1,
    }
    # Draining is not a health matter.
    assert after.by("turnout_backend_up", "backend", pool="drainy") == {
        ("drainy-1",): 1,
        ("drainy-2",): 1,
    }
    assert after.get("turnout_revision") == before.get("turnout_revision") + 1


async def test_a_failing_health_check_shows_as_a_probe_ejection(instance: Instance) -> None:
    metrics = await scrape(instance.proxy)
    sick = {"pool": "sickly", "backend": "sickly-1"}
    well = {"pool": "sickly", "backend": "sickly-2"}
    assert metrics.get("turnout_backend_up", **sick) == 0
    assert metrics.get("turnout_backend_eligible", **sick) == 0
    assert metrics.get("turnout_backend_ejections_total", reason="probe", **sick) == 1
    assert metrics.get("turnout_backend_ejections_total", reason="outlier", **sick) == 0
    assert metrics.get("turnout_health_probes_total", result="failed", **sick) >= 2
    assert metrics.get("turnout_health_probes_total", result="ok", **sick) == 0
    assert metrics.get("turnout_backend_up", **well) == 1
    assert metrics.get("turnout_backend_ejections_total", reason="probe", **well) == 0
    assert metrics.get("turnout_health_probes_total", result="failed", **well) == 0
    assert metrics.get("turnout_health_probes_total", result="ok", **well) > 0


async def test_workers_and_their_resources_are_reported(instance: Instance) -> None:
    proxy = instance.proxy
    metrics = await scrape(proxy)
    _, view = await admin(proxy, "GET", "/v1/workers")
    ids = {(str(worker["id"]),) for worker in view["workers"]}
    assert len(ids) == 2
    assert metrics.get("turnout_workers") == 2
    cpu = metrics.by("turnout_worker_cpu_seconds_total", "worker")
    memory = metrics.by("turnout_worker_resident_memory_bytes", "worker")
    assert set(cpu) == ids
    assert set(memory) == ids
    assert all(value > 0 for value in cpu.values()), cpu
    assert all(value > 10 * 1024 * 1024 for value in memory.values()), memory


async def test_build_info_says_whether_the_data_plane_is_compiled(instance: Instance) -> None:
    metrics = await scrape(instance.proxy)
    off = os.environ.get("TURNOUT_NATIVE") == "off"
    expected = "compiled" if native.inspect() == "compiled" and not off else "python"
    version = importlib.metadata.version("turnout")
    assert metrics.by("turnout_build_info", "version", "data_plane") == {(version, expected): 1}


async def test_upstream_connections_stay_open_after_traffic(instance: Instance) -> None:
    proxy = instance.proxy
    replies = await asyncio.gather(*(fetch(proxy.port, "GET", "/bg/ok") for _ in range(20)))
    assert {reply.status for reply in replies} == {200}
    metrics = await scrape(proxy)
    active = metrics.by("turnout_route_active", "pool", route="bg")
    colour = "green" if active[("green",)] else "blue"
    # Kept alive in the workers' connection pools (idle timeout 30 s).
    connections = metrics.get("turnout_upstream_connections", pool=colour, backend=f"{colour}-1")
    assert 1 <= connections <= 20
    assert (
        metrics.get("turnout_upstream_connect_errors_total", pool=colour, backend=f"{colour}-1")
        == 0
    )


async def test_real_traffic_failing_shows_as_an_outlier_ejection(instance: Instance) -> None:
    proxy = instance.proxy
    flaky = {"pool": "flaky", "backend": "flaky-1"}
    before = await scrape(proxy)
    assert before.get("turnout_backend_ejections_total", reason="outlier", **flaky) == 0

    async def ejected() -> bool:
        for _ in range(10):
            await fetch(proxy.port, "GET", "/fl/x")
        metrics = await scrape(proxy)
        return metrics.get("turnout_backend_eligible", **flaky) == 0

    await wait_for(ejected, timeout=15)
    after = await scrape(proxy)
    assert after.get("turnout_backend_ejections_total", reason="outlier", **flaky) == 1
    assert after.get("turnout_backend_ejections_total", reason="probe", **flaky) == 0
    assert after.get("turnout_backend_up", **flaky) == 0  # ejected: not "up", whatever probes say
    assert after.get("turnout_backend_up", pool="flaky", backend="flaky-2") == 1
    assert (
        after.get(
            "turnout_backend_ejections_total", reason="outlier", pool="flaky", backend="flaky-2"
        )
        == 0
    )
    assert after.get("turnout_revision") == before.get("turnout_revision") + 1


async def test_refused_connects_are_counted(instance: Instance) -> None:
    proxy = instance.proxy
    dead = {"pool": "dead", "backend": "dead-1"}
    before = await scrape(proxy)
    replies = await asyncio.gather(*(fetch(proxy.port, "GET", f"/dd/{i}") for i in range(7)))
    # One backend, nowhere to retry or fail over: each request is exactly one refused connect.
    assert {reply.status for reply in replies} == {502}
    after = await scrape(proxy)
    errors = after.get("turnout_upstream_connect_errors_total", **dead)
    assert errors - before.get("turnout_upstream_connect_errors_total", **dead) == 7
    assert after.get("turnout_upstream_connections", **dead) == 0
