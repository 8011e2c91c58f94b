"""`turnout rollout ...` against a real turnout, as an operator runs it (the installed entry
point, the admin URL from the environment): what each command prints and its exit status."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator

import pytest
from admin.admin_support import api, backend_loop
from admin.cli_support import Run, turnout
from traffic_support import Traffic, start, wait_for_rollout

from helpers import ProxyProcess, config, proxy_process


@pytest.fixture
def proxy() -> Iterator[ProxyProcess]:
    with backend_loop() as loop:
        _, stable_url = start(loop, "stable")
        _, canary_url = start(loop, "canary")
        data = config(
            {"stable": [stable_url], "canary": [canary_url]},
            {"web": {"weights": {"stable": 100, "canary": 0}}},
        )
        with proxy_process(data, workers=2) as proxy:
            yield proxy


def cli(proxy: ProxyProcess, line: str) -> Run:
    return asyncio.run(turnout(proxy.admin_url, *line.split()))


def test_the_rollout_commands_against_a_running_turnout(proxy: ProxyProcess) -> None:
    admin = api(proxy)
    with Traffic(proxy.port).running():
        started = cli(
            proxy,
            "rollout start web --canary canary --steps 5,25,50,100 --step-time 0.3s"
            " --min-requests 20",
        )
        assert started.code == 0, started.err
        assert started.out.startswith("rollout web: canary, progressing\n"), started.out
        assert "step      1/4 (5 %)" in started.out, started.out
        status = cli(proxy, "rollout status web --json")
        assert status.code == 0, status.err
        view = status.json()
        assert (view["route"], view["steps"], view["stepTime"]) == ("web", [5, 25, 50, 100], 0.3)
        assert view["judge"]["minRequests"] == 20
        wait_for_rollout(admin, "web", lambda s: s["phase"] != "progressing", 30)
    done = cli(proxy, "rollout status web")
    assert (done.code, done.out.splitlines()[0]) == (0, "rollout web: canary, promoted"), done

    # A rollout that holds at 25 %: watched, paused, resumed, aborted.
    held = cli(proxy, "rollout start web --canary canary --steps 25,50 --step-time 1m")
    assert held.code == 0, held.err
    watched = cli(proxy, "rollout status web --watch --count 3 --interval 0.1s")
    assert watched.code == 0, watched.err
    frames = re.findall(r"^\d\d:\d\d:\d\d\nrollout web: canary, progressing$", watched.out, re.M)
    assert len(frames) == 3, watched.out
    watched = cli(proxy, "rollout status web --json --count 3 --interval 0.1s")
    lines = watched.out.splitlines()
    assert len(lines) == 3, watched.out
    assert {json.loads(line)["phase"] for line in lines} == {"progressing"}

    paused = cli(proxy, "rollout pause web")
    assert paused.code == 0, paused.err
    assert paused.out.startswith("rollout web: canary, paused\n"), paused.out
    assert "reason    paused at step 1/2 (25 %): by local" in paused.out, paused.out
    again = cli(proxy, "rollout pause web --json")  # what already is: fine, and no change
    assert (again.code, again.json()["phase"]) == (0, "paused"), again
    resumed = cli(proxy, "rollout resume web --json")
    assert (resumed.code, resumed.json()["phase"]) == (0, "progressing"), resumed
    aborted = cli(proxy, "rollout abort web")
    assert aborted.code == 0, aborted.err
    assert aborted.out.startswith("rollout web: canary, aborted\n"), aborted.out
    assert "cause     manual" in aborted.out, aborted.out
    assert admin.get("/v1/routes/web")["weights"] == {"stable": 100, "canary": 0}

    # What does not fit the phase is refused, and says why; nothing changes.
    refused = cli(proxy, "rollout resume web")
    assert (refused.code, refused.out) == (1, ""), refused
    assert "cannot resume: the rollout of route 'web' is aborted" in refused.err, refused.err
    assert admin.get("/v1/routes/web/rollout")["phase"] == "aborted"
    # A duration the command line cannot read is a usage error, before any call.
    bad = cli(proxy, "rollout start web --canary canary --step-time 0.3x")
    assert bad.code == 2, bad
    assert "expected e.g. 30s, 2m, 1h or seconds" in bad.err, bad.err
    assert admin.get("/v1/routes/web/rollout")["phase"] == "aborted"
