"""A rollout across reloads of its configuration file (SIGHUP or POST /v1/reload), with a real
turnout: a reload that leaves the route alone changes nothing for the rollout; one that changes
the route's weights pauses it, naming who and at which revision; one that takes the canary pool
out of the route aborts it."""

from __future__ import annotations

import signal
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from admin.admin_support import Api, api, backend_loop, turnout_in, with_ports
from traffic_support import Traffic, rollout_history, start, wait_for_rollout

from helpers import ProxyProcess, config, proxy_process, toml

TOKEN = "s3cret-deploy-token"


@pytest.fixture
def proxy() -> Iterator[ProxyProcess]:
    with backend_loop() as loop:
        _, stable_url = start(loop, "stable")
        _, canary_url = start(loop, "canary")
        data = config(
            {"stable": [stable_url], "canary": [canary_url]},
            {"web": {"weights": {"stable": 100, "canary": 0}}},
            admin={"tokens": [{"name": "deployer", "token": TOKEN}]},
        )
        with proxy_process(data) as proxy:
            yield proxy


def edit(proxy: ProxyProcess, change: Callable[[dict[str, Any]], None]) -> None:
    """Change the running instance's configuration file (not yet reloaded)."""
    data = tomllib.loads(proxy.config_path.read_text())
    change(data)
    proxy.config_path.write_text(toml(data))


def rollout(step_time: float) -> dict[str, Any]:
    return {
        "canary": "canary",
        "steps": [5, 25, 50, 100],
        "stepTime": step_time,
        "judge": {"minRequests": 20},
    }


def reloads(admin: Api) -> list[int]:
    """Revisions of the reloads that changed something."""
    return [
        e["revision"]
        for e in admin.get("/v1/history?limit=200")["changes"]
        if e["action"] == "reload"
    ]


def test_a_reload_that_leaves_the_route_alone_keeps_the_rollout_going(
    proxy: ProxyProcess,
) -> None:
    admin = Api(proxy.admin_url, TOKEN)
    with Traffic(proxy.port).running():
        admin.call("POST", "/v1/routes/web/rollout", rollout(0.4)).ok(201)
        wait_for_rollout(admin, "web", lambda s: s["step"] == 1)

        def another_route(data: dict[str, Any]) -> None:
            data["routes"] = {"api": {"path_prefix": "/api", "weights": {"stable": 100}}} | data[
                "routes"
            ]

        edit(proxy, another_route)
        reloaded = admin.call("POST", "/v1/reload").ok()
        assert admin.get("/v1/routes/api")  # the reload did change something
        assert admin.get("/v1/routes/web/rollout")["phase"] == "progressing"
        done = wait_for_rollout(admin, "web", lambda s: s["phase"] != "progressing", 30)
    assert done["phase"] == "promoted", done
    transitions = rollout_history(admin)
    assert [e["action"] for e in transitions] == [
        "rollout-started",
        "rollout-step",
        "rollout-step",
        "rollout-step",
        "rollout-promoted",
    ]
    [revision] = reloads(admin)
    assert transitions[1]["revision"] < revision < transitions[-1]["revision"], reloaded


def test_a_reload_that_changes_the_routes_weights_pauses_the_rollout(
    proxy: ProxyProcess,
) -> None:
    admin = Api(proxy.admin_url, TOKEN)
    admin.call("POST", "/v1/routes/web/rollout", rollout(60)).ok(201)

    def weights(data: dict[str, Any]) -> None:
        data["routes"]["web"]["weights"] = {"stable": 80, "canary": 20}

    edit(proxy, weights)
    proxy.process.send_signal(signal.SIGHUP)
    done = wait_for_rollout(admin, "web", lambda s: s["phase"] != "progressing", 10)
    [revision] = reloads(admin)
    assert done["phase"] == "paused", done
    assert f"route changed by config-file at revision {revision} (reload)" in done["reason"]
    # The file's weights stand: the controller never fights over the route.
    assert admin.get("/v1/routes/web")["weights"] == {"stable": 80, "canary": 20}

    # Through the API, the reload is the token's: its name is the one given.
    admin.call("POST", "/v1/routes/web/rollout/resume").ok()
    weights_back = {"stable": 70, "canary": 30}
    edit(proxy, lambda data: data["routes"]["web"].update(weights=weights_back))
    admin.call("POST", "/v1/reload").ok()
    done = wait_for_rollout(admin, "web", lambda s: s["phase"] != "progressing", 10)
    revision = reloads(admin)[0]
    assert done["phase"] == "paused", done
    assert f"route changed by deployer at revision {revision} (reload)" in done["reason"]
    assert admin.get("/v1/routes/web")["weights"] == weights_back


def test_a_reload_that_takes_the_canary_out_of_the_route_aborts_the_rollout(
    proxy: ProxyProcess,
) -> None:
    admin = Api(proxy.admin_url, TOKEN)
    admin.call("POST", "/v1/routes/web/rollout", rollout(60)).ok(201)
    edit(proxy, lambda data: data["routes"]["web"].update(weights={"stable": 100}))
    admin.call("POST", "/v1/reload").ok()
    done = wait_for_rollout(admin, "web", lambda s: s["phase"] != "progressing", 10)
    assert (done["phase"], done["cause"]) == ("aborted", "route-changed"), done
    assert "route changed by deployer" in done["reason"], done["reason"]
    # The file's route stands as it is: the abort does not put the canary pool back.
    assert admin.get("/v1/routes/web")["weights"] == {"stable": 100}

    # A paused rollout whose canary pool is deleted altogether: it cannot be resumed, it ends.
    edit(proxy, lambda data: data["routes"]["web"].update(weights={"stable": 100, "canary": 0}))
    admin.call("POST", "/v1/reload").ok()
    admin.call("POST", "/v1/routes/web/rollout", rollout(60)).ok(201)
    admin.call("POST", "/v1/routes/web/rollout/pause").ok()

    def no_canary(data: dict[str, Any]) -> None:
        del data["pools"]["canary"]
        data["routes"]["web"]["weights"] = {"stable": 100}

    edit(proxy, no_canary)
    admin.call("POST", "/v1/reload").ok()
    done = wait_for_rollout(admin, "web", lambda s: s["phase"] != "paused", 10)
    assert (done["phase"], done["cause"]) == ("aborted", "route-changed"), done
    assert admin.get("/v1/routes/web")["weights"] == {"stable": 100}
    assert admin.call("GET", "/v1/pools/canary").status == 404


def test_a_restart_with_the_canary_gone_from_the_file_aborts_and_leaves_the_route(
    tmp_path: Path,
) -> None:
    with backend_loop() as loop:
        _, stable_url = start(loop, "stable")
        _, canary_url = start(loop, "canary")
        data = with_ports(
            config(
                {"stable": [stable_url], "canary": [canary_url]},
                {"web": {"weights": {"stable": 100, "canary": 0}}},
            )
        )
        with turnout_in(tmp_path, data, "first.log") as proxy:
            api(proxy).call("POST", "/v1/routes/web/rollout", rollout(60)).ok(201)
        data["routes"]["web"]["weights"] = {"stable": 100}
        with turnout_in(tmp_path, data, "second.log") as proxy:
            admin = api(proxy)
            done = wait_for_rollout(admin, "web", lambda s: s["phase"] != "progressing", 10)
            assert (done["phase"], done["cause"]) == ("aborted", "route-changed"), done
            # The abort does not put the canary pool back into the file's route.
            assert admin.get("/v1/routes/web")["weights"] == {"stable": 100}
