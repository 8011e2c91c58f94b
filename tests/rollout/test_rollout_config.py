"""A route's rollout defaults from the configuration file ([routes.web.rollout]) are what a
start with no options runs with, through the API and through `turnout rollout start web`; a
start's own option wins over the file's for that option only. A real turnout and real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from admin.admin_support import api, backend_loop
from admin.cli_support import turnout
from traffic_support import start

from helpers import ProxyProcess, config, proxy_process

CONFIGURED = {
    "steps": [10, 40, 100],
    "step_time": 7,
    "max_step_time": 70,
    "on_inconclusive": "abort",
    "no_eligible_timeout": 12,
    "judge": {"alpha": 0.02, "min_requests": 33},
}


@pytest.fixture
def proxy() -> Iterator[ProxyProcess]:
    with backend_loop() as loop:
        _, stable_url = start(loop, "stable")
        _, canary_url = start(loop, "canary")
        data = config(
            {"stable": [stable_url], "canary": [canary_url]},
            {"web": {"weights": {"stable": 100, "canary": 0}, "rollout": CONFIGURED}},
        )
        with proxy_process(data) as proxy:
            yield proxy


def assert_configured(status: dict[str, Any], step_time: float = 7) -> None:
    assert status["candidate"] == "canary"  # the route's second pool: no option named it
    assert status["steps"] == [10, 40, 100]
    assert status["stepTime"] == step_time
    assert status["maxStepTime"] == 70
    assert status["onInconclusive"] == "abort"
    assert status["noEligibleTimeout"] == 12
    assert status["judge"]["minRequests"] == 33
    assert status["judge"]["alpha"] == 0.02
    assert status["judge"]["tolerance"] == 1.5  # not in the file: the built-in default
    assert status["evidence"]["minRequests"] == 33
    assert status["weights"] == {"stable": 90, "canary": 10}


def test_a_start_with_no_options_runs_with_the_files_defaults(proxy: ProxyProcess) -> None:
    admin = api(proxy)
    started = admin.call("POST", "/v1/routes/web/rollout", {}).ok(201)
    assert_configured(started)
    assert_configured(admin.get("/v1/routes/web/rollout"))
    admin.call("POST", "/v1/routes/web/rollout/abort").ok()

    # An option given wins for itself; the file's others stay.
    started = admin.call("POST", "/v1/routes/web/rollout", {"stepTime": 9}).ok(201)
    assert_configured(started, step_time=9)
    admin.call("POST", "/v1/routes/web/rollout/abort").ok()

    # The command line with no options sends none: the same defaults.
    run = asyncio.run(turnout(proxy.admin_url, "rollout", "start", "web", "--json"))
    assert run.code == 0, run.err
    assert_configured(run.json())
    assert_configured(admin.get("/v1/routes/web/rollout"))
