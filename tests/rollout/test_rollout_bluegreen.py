"""Blue-green rollouts (pre-checks, switch, watch window, automatic switch back) and a rollout
surviving a restart; a real turnout, real backends, real traffic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from admin.admin_support import BackendLoop, api, backend_loop, turnout_in, with_ports
from aiohttp import web
from traffic_support import Switchable, Traffic, rollout_history, start, wait_for_rollout

from helpers import ProxyProcess, config, proxy_process

Setup = tuple[ProxyProcess, Switchable, Switchable]


@pytest.fixture
def loop() -> Iterator[BackendLoop]:
    with backend_loop() as loop:
        yield loop


def shop(blue_url: str, green_url: str) -> dict[str, object]:
    return config(
        {"blue": [blue_url], "green": [green_url]},
        {"shop": {"mode": "blue-green", "pools": ["blue", "green"], "active": "blue"}},
    )


@pytest.fixture
def bg_setup(loop: BackendLoop) -> Iterator[Setup]:
    blue, blue_url = start(loop, "blue")
    green, green_url = start(loop, "green")
    with proxy_process(shop(blue_url, green_url), workers=2) as proxy:
        yield proxy, blue, green


PRECHECK = [{"path": "/", "status": 200, "bodyContains": "green"}]


def test_a_good_colour_is_prechecked_switched_watched_and_promoted(bg_setup: Setup) -> None:
    proxy, _, green = bg_setup
    admin = api(proxy)
    with Traffic(proxy.port).running():
        body = {"to": "green", "prechecks": PRECHECK, "watch": 0.6, "judge": {"minRequests": 20}}
        admin.call("POST", "/v1/routes/shop/rollout", body).ok(201)
        done = wait_for_rollout(admin, "shop", lambda s: s["phase"] != "progressing", 20)
    assert done["phase"] == "promoted", done
    assert admin.get("/v1/routes/shop")["active"] == "green"
    events = [e["action"] for e in rollout_history(admin)]
    assert events == ["rollout-started", "rollout-switched", "rollout-promoted"]
    assert green.served > 20


def test_a_failing_precheck_aborts_before_any_user_is_switched(bg_setup: Setup) -> None:
    proxy, blue, green = bg_setup
    admin = api(proxy)
    green.failing = True
    body = {"to": "green", "prechecks": [{"path": "/", "status": 200}]}
    admin.call("POST", "/v1/routes/shop/rollout", body).ok(201)
    done = wait_for_rollout(admin, "shop", lambda s: s["phase"] != "progressing", 10)
    assert (done["phase"], done["cause"]) == ("aborted", "precheck")
    assert "status 500, expected 200" in done["reason"], done["reason"]
    assert admin.get("/v1/routes/shop")["active"] == "blue"
    assert blue.served == 0  # no client traffic was sent; green saw only the pre-check
    assert green.served == 1


def test_a_colour_that_fails_in_the_watch_window_is_switched_back(bg_setup: Setup) -> None:
    proxy, _, green = bg_setup
    admin = api(proxy)
    with Traffic(proxy.port).running():
        # The old colour's figures before the switch are what the new one is judged against.
        wait_for_rollout_traffic(admin, proxy)
        body = {"to": "green", "watch": 60, "judge": {"minRequests": 20}}
        admin.call("POST", "/v1/routes/shop/rollout", body).ok(201)
        wait_for_rollout(admin, "shop", lambda s: s["step"] == 1)
        green.failing = True
        done = wait_for_rollout(admin, "shop", lambda s: s["phase"] != "progressing", 20)
    assert (done["phase"], done["cause"]) == ("aborted", "errors"), done
    assert admin.get("/v1/routes/shop")["active"] == "blue"


def wait_for_rollout_traffic(admin: object, proxy: ProxyProcess) -> None:
    import time

    time.sleep(1.0)


def test_a_rollout_survives_a_restart_at_its_step(loop: BackendLoop, tmp_path: Path) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    stable = loop.start("stable", ok)
    canary = loop.start("canary", ok)
    data = with_ports(
        config(
            {"stable": [stable.url], "canary": [canary.url]},
            {"web": {"weights": {"stable": 100, "canary": 0}}},
        )
    )
    body = {"canary": "canary", "steps": [10, 50], "stepTime": 600}
    with turnout_in(tmp_path, data, "first.log") as proxy:
        admin = api(proxy)
        admin.call("POST", "/v1/routes/web/rollout", body).ok(201)
        admin.call("POST", "/v1/routes/web/rollout/pause").ok()
        before = admin.get("/v1/routes/web/rollout")
    with turnout_in(tmp_path, data, "second.log") as proxy:
        admin = api(proxy)
        after = admin.get("/v1/routes/web/rollout")
        assert (after["phase"], after["step"], after["reason"]) == (
            before["phase"],
            before["step"],
            before["reason"],
        )
        assert admin.get("/v1/routes/web")["weights"] == {"stable": 90, "canary": 10}
        assert "resumed paused at step 1/2 (10 %)" in proxy.log()
        assert admin.call("POST", "/v1/routes/web/rollout/resume").ok()["phase"] == "progressing"
