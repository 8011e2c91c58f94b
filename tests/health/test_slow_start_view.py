"""GET /v1/pools shows a readmitted backend's slow start: the weight it is picked by now, how
far along the ramp it is and when it ends; `turnout status` shows the same."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from health_support import admin, backend_view, health_config, started, wait_until

from admin_api.cli.render import render_pools
from helpers import config, proxy_process

SLOW_START = 4.0


async def test_the_pool_view_shows_the_ramp_of_a_readmitted_backend() -> None:
    a, b = await started("a", "b")
    data = config({"app": [a.url, b.url]}, {"web": {"weights": {"app": 1}}})
    data["pools"]["app"]["health"] = health_config()
    data["pools"]["app"]["slow_start"] = SLOW_START
    data["pools"]["app"]["backends"][1]["weight"] = 10
    try:
        with proxy_process(data) as proxy:
            steady = await backend_view(proxy, "app", "app-2")
            assert (steady["weight"], steady["effectiveWeight"]) == (10, 10)
            assert steady["slowStart"] is None

            b.health = 500

            async def down() -> bool:
                return bool((await backend_view(proxy, "app", "app-2"))["health"] == "unhealthy")

            async def up() -> bool:
                return not await down()

            await wait_until(down)
            b.health = 200
            await wait_until(up)
            _, pool = await admin(proxy, "GET", "/v1/pools/app")
            _, listing = await admin(proxy, "GET", "/v1/pools")
            seen = time.time()

            assert pool["slowStart"] == SLOW_START
            view = next(b for b in pool["backends"] if b["name"] == "app-2")
            assert view["weight"] == 10  # the configured weight stays as set
            assert 1.0 <= view["effectiveWeight"] < 10
            ramp = view["slowStart"]
            assert 0 <= ramp["progress"] < 100
            assert 0 < ramp["remainingSeconds"] <= SLOW_START
            since = datetime.fromisoformat(ramp["since"]).timestamp()
            until = datetime.fromisoformat(ramp["until"]).timestamp()
            assert abs(until - since - SLOW_START) < 0.002  # ISO times are to the millisecond
            assert since - 0.001 <= seen <= until
            # The effective weight is where the linear ramp is, from a tenth up.
            expected = 10 * max(0.1, ramp["progress"] / 100)
            assert abs(view["effectiveWeight"] - expected) < 0.01
            listed = next(p for p in listing["pools"] if p["name"] == "app")
            assert next(b for b in listed["backends"] if b["name"] == "app-2")["slowStart"]
            # The other backend was never out: no ramp.
            other = next(b for b in pool["backends"] if b["name"] == "app-1")
            assert (other["effectiveWeight"], other["slowStart"]) == (1, None)

            await asyncio.sleep(max(0.0, until - time.time()) + 0.1)
            done = await backend_view(proxy, "app", "app-2")
            assert (done["effectiveWeight"], done["slowStart"]) == (10, None)
    finally:
        await a.stop()
        await b.stop()


def test_the_cli_shows_the_ramp_in_the_weight_column() -> None:
    backend = {
        "name": "app-2",
        "url": "http://127.0.0.1:9",
        "weight": 10,
        "effectiveWeight": 2.5,
        "adminState": "ready",
        "health": "healthy",
        "eligible": True,
        "inflight": 0,
        "slowStart": {
            "progress": 25.0,
            "since": "2025-01-01T00:00:00.000+00:00",
            "until": "2025-01-01T00:00:04.000+00:00",
            "remainingSeconds": 3.0,
        },
    }
    steady = {**backend, "name": "app-1", "effectiveWeight": 1, "weight": 1, "slowStart": None}
    text = render_pools([{"name": "app", "backends": [steady, backend]}])
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert lines[1].startswith("app app-1 http://127.0.0.1:9 1 ready")
    assert "app app-2 http://127.0.0.1:9 2.5 of 10 (slow start 25 %, 3 s left) ready" in lines[2]
