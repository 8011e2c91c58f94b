"""A canary left with no eligible backend for longer than `noEligibleTimeout` is aborted (cause
no-eligible), whether a person put its backend in maintenance or active health checks took it
out: a real turnout, real backends, the rollout watched through the admin API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from admin.admin_support import Api, BackendLoop, api, backend_loop
from traffic_support import Switchable, rollout_history, start, wait_for_rollout

from helpers import Backend, ProxyProcess, config, proxy_process

TIMEOUT = 0.8

Setup = tuple[ProxyProcess, BackendLoop, Backend]


@pytest.fixture
def setup() -> Iterator[Setup]:
    with backend_loop() as loop:
        _, stable_url = start(loop, "stable")
        canary = loop.start("canary", Switchable("canary").handle)
        data = config(
            {"stable": [stable_url], "canary": [canary.url]},
            {"web": {"weights": {"stable": 100, "canary": 0}}},
        )
        data["pools"]["canary"]["health"] = {
            "enabled": True,
            "path": "/",
            "interval": 0.1,
            "timeout": 0.5,
            "unhealthy_threshold": 1,
        }
        with proxy_process(data, workers=2) as proxy:
            yield proxy, loop, canary


def rollout() -> dict[str, Any]:
    # No client traffic and a long step: only the canary's eligibility can end this rollout.
    return {
        "canary": "canary",
        "steps": [5, 25, 50, 100],
        "stepTime": 60,
        "noEligibleTimeout": TIMEOUT,
    }


def aborted_for_no_eligible(admin: Api) -> dict[str, Any]:
    started = time.monotonic()
    done = wait_for_rollout(admin, "web", lambda s: s["phase"] != "progressing", 10)
    took = time.monotonic() - started
    assert (done["phase"], done["cause"]) == ("aborted", "no-eligible"), done
    assert done["reason"].startswith("aborted at step 1/4 (5 %): canary has had no eligible"), done
    assert TIMEOUT * 0.5 < took < TIMEOUT + 3, took  # it waited the timeout, and not much more
    assert admin.get("/v1/routes/web")["weights"] == {"stable": 100, "canary": 0}
    return done


def test_a_canary_in_maintenance_past_the_timeout_is_aborted(setup: Setup) -> None:
    proxy, _, _ = setup
    admin = api(proxy)
    admin.call("POST", "/v1/routes/web/rollout", rollout()).ok(201)
    maint = {"adminState": "maint", "force": True}
    admin.call("PATCH", "/v1/pools/canary/backends/canary-1", maint).ok()
    aborted_for_no_eligible(admin)
    # A change to the pool is not a change to the route: the rollout was never paused.
    actions = [e["action"] for e in rollout_history(admin)]
    assert actions == ["rollout-started", "rollout-aborted"], actions


def test_a_canary_the_health_checks_take_out_is_aborted(setup: Setup) -> None:
    proxy, loop, canary = setup
    admin = api(proxy)
    admin.call("POST", "/v1/routes/web/rollout", rollout()).ok(201)
    asyncio.run_coroutine_threadsafe(canary.stop(), loop.loop).result(10)
    aborted_for_no_eligible(admin)
    [pool] = [p for p in admin.get("/v1/pools")["pools"] if p["name"] == "canary"]
    assert [b["eligible"] for b in pool["backends"]] == [False], pool
    actions = [e["action"] for e in rollout_history(admin)]
    assert actions == ["rollout-started", "rollout-aborted"], actions
