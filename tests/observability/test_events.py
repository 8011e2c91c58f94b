"""Every change of state is one "turnout.events" line in the process log: JSON naming the
event, the revision it made, who made it and what it touched; admin changes and health
ejections alike."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from obs_support import Echo, admin, backend_loop

from helpers import ProxyProcess, config, proxy_process

MARK = " turnout.events: "


def events(proxy: ProxyProcess) -> list[dict[str, Any]]:
    found = []
    for line in proxy.log().splitlines():
        if MARK in line:
            event: dict[str, Any] = json.loads(line.split(MARK, 1)[1])
            found.append(event)
    return found


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyProcess]:
    echoes = {name: Echo(name) for name in ("stable", "canary", "sick", "well")}
    echoes["sick"].health = 500
    with backend_loop() as loop:
        url = {name: loop.start(name, echo).url for name, echo in echoes.items()}
        data = config(
            {
                "stable": [url["stable"]],
                "canary": [url["canary"]],
                "sickly": [url["sick"], url["well"]],
            },
            {
                "web": {"path_prefix": "/", "weights": {"stable": 90, "canary": 10}},
                "sk": {"path_prefix": "/sk", "weights": {"sickly": 1}},
            },
            health={
                "enabled": True,
                "interval": 0.2,
                "jitter": 0.1,
                "timeout": 0.2,
                "unhealthy_threshold": 2,
            },
        )
        with proxy_process(data, workers=2) as running:
            yield running


async def test_an_admin_change_is_one_event(proxy: ProxyProcess) -> None:
    before = len(events(proxy))
    status, view = await admin(
        proxy, "PUT", "/v1/routes/web/weights", {"weights": {"stable": 75, "canary": 25}}
    )
    assert status == 200, view
    new = [event for event in events(proxy)[before:] if event["actor"] != "health-checker"]
    assert new == [
        {
            "event": "set-weights",
            "revision": view["revision"],
            "actor": "local",  # no tokens configured: the loopback-only admin API's caller
            "target": "route/web",
        }
    ]


async def test_a_health_ejection_is_one_event(proxy: ProxyProcess) -> None:
    target = "pool/sickly/backend/sickly-1"
    deadline = time.monotonic() + 10
    while not any(event["target"] == target for event in events(proxy)):
        assert time.monotonic() < deadline, proxy.log()
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # five more failed probes: still one ejection, one event
    ejections = [event for event in events(proxy) if event["actor"] == "health-checker"]
    assert len(ejections) == 1, ejections
    (event,) = ejections
    assert event["event"] == "eject"
    assert event["target"] == target
    _, history = await admin(proxy, "GET", "/v1/history?limit=1000")
    recorded = [c for c in history["changes"] if c["revision"] == event["revision"]]
    assert [(c["actor"], c["action"]) for c in recorded] == [("health-checker", "eject")]


async def test_a_reload_is_one_event(proxy: ProxyProcess) -> None:
    # A reload of an unchanged file changes nothing, so it is no event (and no revision).
    before = len(events(proxy))
    status, body = await admin(proxy, "POST", "/v1/reload")
    assert status == 200, body
    await asyncio.sleep(0.1)
    assert events(proxy)[before:] == []

    path = proxy.config_path
    path.write_text(path.read_text() + "\n[upstream]\nread_timeout = 12.0\n")
    status, body = await admin(proxy, "POST", "/v1/reload")
    assert status == 200, body
    await asyncio.sleep(0.1)
    new = events(proxy)[before:]
    assert [(e["event"], e["revision"], e["actor"], e["target"]) for e in new] == [
        ("reload", body["revision"], "local", "config")
    ]
