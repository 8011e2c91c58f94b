"""In-place pool rollouts end to end, the issue's measured scenarios: a real turnout with 2
workers, four backend programs that the hook really stops and starts in their new version
(benchmarks.replace_hook), keep-alive client load through the whole rollout, everything driven
and read through the admin API.

a. Zero failed client requests while the 4 backends are replaced one at a time under load in
   which 10 % of the requests take 2 s: each drain waits for them, so no program is stopped
   while it serves a request.
b. A new version answering 20 % 500s is caught by the judge in its batch and reverted: the
   figures are the requests that reached the bad version and the time from its first answer
   to the end of the revert.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from admin.admin_support import api, wait_until
from roll_support import (
    POOL,
    admin_states,
    figures,
    final,
    fleet,
    pool_config,
    roll,
    start,
    wait_for_roll,
)

from benchmarks.roll_bench import acks, drains, epoch
from benchmarks.roll_fleet import NEW, OLD, Fleet
from benchmarks.roll_load import Load
from helpers import ProxyProcess, proxy_process

NAMES = [f"{POOL}-{i}" for i in range(1, 5)]


@pytest.fixture
def four(tmp_path: Path) -> Iterator[tuple[Fleet, ProxyProcess]]:
    with fleet(tmp_path) as backends:
        urls = [start(backends, name) for name in NAMES]
        with proxy_process(pool_config(urls), workers=2) as proxy:
            yield backends, proxy


def test_four_backends_replaced_in_place_under_slow_requests_fail_no_request(
    four: tuple[Fleet, ProxyProcess],
) -> None:
    backends, proxy = four
    admin = api(proxy)
    pids = {name: backends.pid(name) for name in NAMES}
    spec = {
        "hook": {"command": backends.hook(), "timeout": 30},
        "batch": 1,
        "drainTimeout": 10,
        "healthyDeadline": 10,
        "minHealthyTime": 0.5,
    }
    # 40 connections, each sending every 0.4 s or when its answer comes: about 14 of them wait
    # on a 2-s request at any moment (every backend has some when its drain begins), the
    # others keep the answers coming.
    load = Load(proxy.port, connections=40, slow_share=0.1, rate=100)
    with load.running():
        wait_until(lambda: len(load.answers) > 100)
        started = time.time()
        roll(admin, spec)
        done = wait_for_roll(admin, final, 60)
        ended = time.time()
        # The load keeps running after the promotion, on the new version only.
        wait_until(lambda: len(load.between(ended)) > 50)

    assert done["phase"] == "promoted", done
    during = load.between(started, ended)
    failed = load.failures()
    assert failed == [], failed[:5]
    assert load.longest_gap(started, ended) < 1.5  # the load ran through the whole rollout
    assert sum(a.slow for a in during) > 20
    # The program behind every backend was stopped and started again, in the new version.
    assert {name: backends.version(name) for name in NAMES} == dict.fromkeys(NAMES, NEW)
    assert all(backends.pid(name) not in (None, pids[name]) for name in NAMES)
    assert load.versions(load.between(0, started)) == {OLD: len(load.between(0, started))}
    assert set(load.versions(load.between(ended))) == {NEW}
    assert [(h["backend"], h["action"], h["ok"]) for h in done["hooks"]] == [
        (name, "replace", True) for name in NAMES
    ]
    # Each drain waited for its backend's requests: no program got SIGTERM while serving one.
    for name in NAMES:
        assert "finishing 0 requests in flight" in backends.log(name), backends.log(name)
    waited = drains(admin.get("/v1/history?limit=100")["changes"])
    assert len(waited) == len(NAMES)
    assert admin_states(admin) == dict.fromkeys(NAMES, "ready")
    figures(
        "a. in place, 4 backends, 10 % of requests 2 s",
        client_requests=len(load.answers),
        during_rollout=len(during),
        slow=sum(a.slow for a in during),
        failed=len(failed),
        rollout_s=f"{ended - started:.1f}",
        drains_s="/".join(f"{s:.1f}" for s in waited),
        slowest_ack_ms=max(acks(proxy.log())),
    )


def test_a_version_answering_20_percent_500s_is_caught_and_reverted(
    four: tuple[Fleet, ProxyProcess],
) -> None:
    backends, proxy = four
    admin = api(proxy)
    spec = {
        "hook": {"command": backends.hook("--new-error-rate", "0.2"), "timeout": 30},
        "drainTimeout": 10,
        "healthyDeadline": 10,
        # Longer than the judge needs: the batch must be failed by it, not pass its hold.
        "minHealthyTime": 30,
        "autoRevert": True,
        "judge": {"minRequests": 20},
    }
    load = Load(proxy.port, connections=8, rate=400)
    with load.running():
        wait_until(lambda: len(load.answers) > 100)
        roll(admin, spec)
        done = wait_for_roll(admin, final, 30)
        ended = time.time()
        wait_until(lambda: len(load.between(ended)) > 50)

    assert (done["phase"], done["cause"]) == ("aborted", "errors"), done
    assert done["reason"].startswith("aborted: batch 1/4 (blue-1)"), done["reason"]
    assert done["reason"].endswith("every replaced backend reverted"), done["reason"]
    assert (done["replaced"], done["reverting"]) == ([], [])
    assert [(h["backend"], h["action"], h["ok"]) for h in done["hooks"]] == [
        ("blue-1", "replace", True),
        ("blue-1", "revert", True),
    ]
    # Every backend serves the old version again, in service.
    assert {name: backends.version(name) for name in NAMES} == dict.fromkeys(NAMES, OLD)
    assert admin_states(admin) == dict.fromkeys(NAMES, "ready")
    assert set(load.versions(load.between(ended))) == {OLD}

    bad = [a for a in load.answers if a.body == NEW]
    errors = [a for a in bad if a.status == 500]
    # The only failures the clients saw are the bad version's own 500s.
    assert load.failures() == errors
    assert 0 < len(errors) <= len(bad) // 5 + 1
    evidence = done["evidence"]
    assert evidence["newErrors"] > 0
    assert evidence["oldErrors"] == 0
    assert evidence["evidence"] >= evidence["threshold"]
    first_bad = min(a.started for a in bad)
    to_revert = epoch(done["updated"]) - first_bad
    assert to_revert < 15, to_revert
    figures(
        "b. 20 % 500s caught and reverted",
        requests_to_bad_version=len(bad),
        of_them_500=len(errors),
        judged_new=f"{evidence['newRequests']}/{evidence['newErrors']} errors",
        first_bad_answer_to_revert_end_s=f"{to_revert:.2f}",
        reason=done["reason"],
    )
