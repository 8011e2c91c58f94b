"""With [admin] tokens configured, /metrics is served only to a bearer of one of them, and the
changes a token makes are recorded under its name."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator

import pytest
from obs_support import Echo, Metrics, backend_loop, get

from helpers import ProxyProcess, config, proxy_process

TOKEN = "scrape-token-0123456789"
OPS = "ops-token-abcdefghijklmnop"


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyProcess]:
    with backend_loop() as loop:
        stable, canary = loop.start("stable", Echo("stable")), loop.start("canary", Echo("canary"))
        data = config(
            {"stable": [stable.url], "canary": [canary.url]},
            {"web": {"weights": {"stable": 90, "canary": 10}}},
            admin={
                "tokens": [
                    {"name": "prometheus", "token": TOKEN},
                    {"name": "ops", "token": OPS},
                ]
            },
        )
        with proxy_process(data) as running:
            yield running


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789", TOKEN[:-1]])
async def test_metrics_without_a_valid_token_is_401(proxy: ProxyProcess, token: str | None) -> None:
    status, headers, body = await asyncio.to_thread(get, proxy.admin_url + "/metrics", token)
    assert status == 401
    assert headers["Content-Type"].split(";")[0] == "application/problem+json"
    assert b"turnout_" not in body


async def test_metrics_with_a_token_is_200(proxy: ProxyProcess) -> None:
    for token in (TOKEN, OPS):
        status, headers, body = await asyncio.to_thread(get, proxy.admin_url + "/metrics", token)
        assert status == 200
        assert headers["Content-Type"].startswith("text/plain")
        metrics = Metrics.parse(body)
        assert metrics.get("turnout_workers") == 1
        assert metrics.by("turnout_route_weight", "pool", route="web") == {
            ("stable",): 90,
            ("canary",): 10,
        }


def put_weights(proxy: ProxyProcess, token: str) -> dict[str, object]:
    request = urllib.request.Request(
        proxy.admin_url + "/v1/routes/web/weights",
        data=json.dumps({"weights": {"stable": 50, "canary": 50}}).encode(),
        method="PUT",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        view: dict[str, object] = json.loads(response.read())
        return view


async def test_the_event_names_the_token_that_made_the_change(proxy: ProxyProcess) -> None:
    view = await asyncio.to_thread(put_weights, proxy, OPS)
    mark = " turnout.events: "
    events = [
        json.loads(line.split(mark, 1)[1]) for line in proxy.log().splitlines() if mark in line
    ]
    assert events == [
        {
            "event": "set-weights",
            "revision": view["revision"],
            "actor": "ops",
            "target": "route/web",
        }
    ]
