"""Rollouts end to end: a real turnout with two workers, real backends, real client traffic;
the rollout driven and watched through the admin API only."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from admin.admin_support import BackendLoop, api, backend_loop
from traffic_support import Switchable, Traffic, rollout_history, start, wait_for_rollout

from helpers import ProxyProcess, config, proxy_process

Setup = tuple[ProxyProcess, Switchable, Switchable]


@pytest.fixture
def loop() -> Iterator[BackendLoop]:
    with backend_loop() as loop:
        yield loop


@pytest.fixture
def canary_setup(loop: BackendLoop) -> Iterator[Setup]:
    stable, stable_url = start(loop, "stable")
    canary, canary_url = start(loop, "canary")
    data = config(
        {"stable": [stable_url], "canary": [canary_url]},
        {"web": {"weights": {"stable": 100, "canary": 0}}},
    )
    with proxy_process(data, workers=2) as proxy:
        yield proxy, stable, canary


def rollout(step_time: float, **options: Any) -> dict[str, Any]:
    return {
        "canary": "canary",
        "steps": [5, 25, 50, 100],
        "stepTime": step_time,
        "judge": {"minRequests": 20},
        **options,
    }


def test_a_healthy_canary_is_promoted_through_its_steps(canary_setup: Setup) -> None:
    proxy, _, canary = canary_setup
    admin = api(proxy)
    with Traffic(proxy.port).running() as traffic:
        started = admin.call("POST", "/v1/routes/web/rollout", rollout(0.4)).ok(201)
        assert started["phase"] == "progressing"
        done = wait_for_rollout(admin, "web", lambda s: s["phase"] != "progressing", 40)
    assert done["phase"] == "promoted", done
    assert admin.get("/v1/routes/web")["weights"] == {"stable": 0, "canary": 100}
    transitions = rollout_history(admin)
    assert [e["after"]["weights"]["canary"] for e in transitions] == [5, 25, 50, 100, 100]
    # The controller's own transitions are under its name; the start under the caller's.
    assert transitions[0]["actor"] == "local"
    assert {e["actor"] for e in transitions[1:]} == {"rollout"}
    assert canary.served > 0
    assert all(key.startswith("200") for key in traffic.seen), traffic.seen


def test_a_canary_that_starts_failing_at_25_percent_is_aborted_at_once(
    canary_setup: Setup,
) -> None:
    proxy, _, canary = canary_setup
    admin = api(proxy)
    with Traffic(proxy.port).running():
        admin.call("POST", "/v1/routes/web/rollout", rollout(2.0)).ok(201)
        wait_for_rollout(admin, "web", lambda s: s["step"] == 1)
        canary.failing = True
        done = wait_for_rollout(admin, "web", lambda s: s["phase"] != "progressing", 20)
    assert done["phase"] == "aborted", done
    assert done["cause"] == "errors"
    assert done["reason"].startswith("aborted at step 2/4 (25 %): canary"), done["reason"]
    # Everyone back on the baseline, in every worker (read-your-writes).
    assert admin.get("/v1/routes/web")["weights"] == {"stable": 100, "canary": 0}
    aborted = rollout_history(admin)[-1]
    assert (aborted["actor"], aborted["after"]["phase"]) == ("rollout", "aborted")
    assert canary.first_failure is not None
    detection = _epoch(aborted["time"]) - canary.first_failure
    print(f"first failing canary response to abort: {detection * 1000:.0f} ms")
    assert detection < 5.0
    # The restoring write was acknowledged by both workers within 100 ms of the decision.
    acked = re.findall(r"aborted at .*acknowledged by every worker in ([0-9.]+) ms", proxy.log())
    assert acked, proxy.log()[-2000:]
    assert float(acked[-1]) < 100, acked
    # Aborted stays aborted: nothing moves traffic back to the canary afterwards.
    time.sleep(1.0)
    assert admin.get("/v1/routes/web")["weights"] == {"stable": 100, "canary": 0}


def test_a_canary_with_no_traffic_is_never_aborted(canary_setup: Setup) -> None:
    proxy, _, _ = canary_setup
    admin = api(proxy)
    admin.call("POST", "/v1/routes/web/rollout", rollout(0.2, maxStepTime=1.0)).ok(201)
    done = wait_for_rollout(admin, "web", lambda s: s["phase"] != "progressing", 10)
    assert done["phase"] == "paused", done
    assert done["cause"] is None
    assert "inconclusive" in done["reason"], done["reason"]
    assert admin.get("/v1/routes/web")["weights"] == {"stable": 95, "canary": 5}


def test_a_manual_weight_change_pauses_the_rollout(canary_setup: Setup) -> None:
    proxy, _, _ = canary_setup
    admin = api(proxy)
    admin.call("POST", "/v1/routes/web/rollout", rollout(60.0)).ok(201)
    changed = admin.call("PUT", "/v1/routes/web/weights", {"weights": {"stable": 50, "canary": 50}})
    revision = changed.ok()["revision"]
    done = wait_for_rollout(admin, "web", lambda s: s["phase"] == "paused", 10)
    assert f"route changed by local at revision {revision}" in done["reason"], done["reason"]
    # The person's weights stand.
    assert admin.get("/v1/routes/web")["weights"] == {"stable": 50, "canary": 50}


def test_people_pause_resume_and_abort(canary_setup: Setup) -> None:
    proxy, _, _ = canary_setup
    admin = api(proxy)
    admin.call("POST", "/v1/routes/web/rollout", rollout(60.0)).ok(201)
    again = admin.call("POST", "/v1/routes/web/rollout", rollout(60.0))
    again.problem(409, "rollout-conflict")
    paused = admin.call("POST", "/v1/routes/web/rollout/pause").ok()
    assert paused["phase"] == "paused"
    stale = admin.call("POST", "/v1/routes/web/rollout/resume", headers={"If-Match": '"1"'})
    assert stale.status == 412
    assert admin.get("/v1/routes/web/rollout")["phase"] == "paused"
    assert admin.call("POST", "/v1/routes/web/rollout/resume").ok()["phase"] == "progressing"
    aborted = admin.call("POST", "/v1/routes/web/rollout/abort").ok()
    assert (aborted["phase"], aborted["cause"]) == ("aborted", "manual")
    assert admin.get("/v1/routes/web")["weights"] == {"stable": 100, "canary": 0}
    admin.call("POST", "/v1/routes/web/rollout/resume").problem(409, "rollout-conflict")
    listed = admin.get("/v1/rollouts")["rollouts"]
    assert [r["route"] for r in listed] == ["web"]
    metrics = admin.call("GET", "/metrics").raw.decode()
    assert 'turnout_rollout_phase{phase="aborted",route="web"} 1.0' in metrics
    assert 'turnout_rollout_aborts_total{reason="manual",route="web"} 1.0' in metrics


def test_promote_skips_the_remaining_steps(canary_setup: Setup) -> None:
    proxy, _, _ = canary_setup
    admin = api(proxy)
    admin.call("POST", "/v1/routes/web/rollout", rollout(60.0)).ok(201)
    promoted = admin.call("POST", "/v1/routes/web/rollout/promote").ok()
    assert promoted["phase"] == "promoted"
    assert admin.get("/v1/routes/web")["weights"] == {"stable": 0, "canary": 100}


def _epoch(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    from datetime import datetime

    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
