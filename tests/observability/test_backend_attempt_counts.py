"""Upstream attempts and their failures, counted per (pool, backend) and summed over workers.

A pool rollout's judge compares the replaced backends of a pool with the ones not replaced yet,
so it needs per backend what test_attempt_counts proves per (route, pool): every attempt counted
against the backend it went to, by the same rules. A real `turnout run` with 2 workers, real
loopback backends (aiohttp, a closed port), every counter read through GET /metrics as the
difference between a scrape before and one after.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from obs_support import BackendLoop, Echo, Metrics, admin, backend_loop, fetch, scrape
from obs_support import wait_for as wait_until

from helpers import ProxyProcess, config, free_port, proxy_process
from proxy.channel import Stats
from proxy.metrics import BackendReport
from proxy.telemetry import Telemetry

ATTEMPTS = "turnout_backend_attempts_total"
ERRORS = "turnout_backend_attempt_errors_total"


@dataclass
class Instance:
    proxy: ProxyProcess
    bad: Echo
    good: Echo
    live: Echo


@pytest.fixture(scope="module")
def instance() -> Iterator[Instance]:
    loop: BackendLoop
    bad, good, live = Echo("bad", status=500), Echo("good"), Echo("live")
    with backend_loop() as loop:
        pools: dict[str, list[str]] = {
            # One backend answers 500 to everything, the other 200.
            "mixed": [loop.start("bad", bad).url, loop.start("good", good).url],
            # The first backend refuses every connect; the retry goes to the second.
            "flaky": [f"http://127.0.0.1:{free_port()}", loop.start("live", live).url],
        }
        routes: dict[str, Any] = {
            name: {"path_prefix": f"/{name}", "weights": {name: 1}} for name in pools
        }
        data: dict[str, Any] = config(pools, routes, upstream={"retries": 1})
        # The dead backend first, nearly always: a power-of-two pick of two draws over weights
        # 1,000,000 : 1 lands on the live one once in a million.
        data["pools"]["flaky"]["backends"][0]["weight"] = 1_000_000
        with proxy_process(data, workers=2) as proxy:
            yield Instance(proxy, bad, good, live)


def grown(before: Metrics, after: Metrics, name: str, pool: str, backend: str) -> float:
    return after.value(name, pool=pool, backend=backend) - before.value(
        name, pool=pool, backend=backend
    )


async def statuses(port: int, path: str, count: int) -> list[int]:
    """`count` GETs, each on a connection of its own (so both workers take some)."""
    replies = await asyncio.gather(*(fetch(port, "GET", path) for _ in range(count)))
    return [reply.status for reply in replies]


async def test_a_backend_answering_500_has_the_errors_its_neighbour_does_not(
    instance: Instance,
) -> None:
    proxy = instance.proxy
    bad_seen, good_seen = len(instance.bad.requests), len(instance.good.requests)
    before = await scrape(proxy)
    answers = await statuses(proxy.port, "/mixed/x", 40)
    after = await scrape(proxy)
    to_bad = len(instance.bad.requests) - bad_seen
    to_good = len(instance.good.requests) - good_seen
    # Both backends took some (a 2^-39 chance that one took none).
    assert to_bad > 0
    assert to_good > 0
    assert sorted(answers) == [200] * to_good + [500] * to_bad
    # Every attempt counted against the backend it went to; only the 500s are errors.
    assert grown(before, after, ATTEMPTS, "mixed", "mixed-1") == to_bad
    assert grown(before, after, ERRORS, "mixed", "mixed-1") == to_bad
    assert grown(before, after, ATTEMPTS, "mixed", "mixed-2") == to_good
    assert grown(before, after, ERRORS, "mixed", "mixed-2") == 0


async def test_a_refused_connect_retried_elsewhere_is_the_dead_backends_error(
    instance: Instance,
) -> None:
    """The client gets 200 from the live backend; the dead one still failed an attempt per
    request, and the live one's attempts are all successes."""
    proxy = instance.proxy
    live_seen = len(instance.live.requests)
    before = await scrape(proxy)
    assert await statuses(proxy.port, "/flaky/x", 5) == [200] * 5
    after = await scrape(proxy)
    assert len(instance.live.requests) - live_seen == 5
    assert grown(before, after, ATTEMPTS, "flaky", "flaky-1") == 5
    assert grown(before, after, ERRORS, "flaky", "flaky-1") == 5
    assert grown(before, after, ATTEMPTS, "flaky", "flaky-2") == 5
    assert grown(before, after, ERRORS, "flaky", "flaky-2") == 0
    # Next to the backend's other counters: the refused connects are its connect errors too.
    assert grown(before, after, "turnout_upstream_connect_errors_total", "flaky", "flaky-1") == 5


async def test_every_backend_has_both_series(instance: Instance) -> None:
    after = await scrape(instance.proxy)
    for pool, backend in [
        ("mixed", "mixed-1"),
        ("mixed", "mixed-2"),
        ("flaky", "flaky-1"),
        ("flaky", "flaky-2"),
    ]:
        assert (ATTEMPTS, (("backend", backend), ("pool", pool))) in after.samples
        assert (ERRORS, (("backend", backend), ("pool", pool))) in after.samples


async def test_backend_attempt_counts_survive_a_worker_being_replaced(instance: Instance) -> None:
    """Runs last: it kills a worker. Its counts stay in the totals, which never go back."""
    proxy = instance.proxy
    await statuses(proxy.port, "/mixed/x", 10)
    await statuses(proxy.port, "/flaky/x", 4)
    before = await scrape(proxy)
    victim = (await asyncio.to_thread(proxy.worker_pids))[0]
    os.kill(victim, signal.SIGKILL)

    async def replaced() -> bool:
        _, view = await admin(proxy, "GET", "/v1/workers")
        pids = [w["pid"] for w in view["workers"]]
        ready, _ = await admin(proxy, "GET", "/ready")
        return bool(view["crashes"] == 1 and victim not in pids and ready == 200)

    await wait_until(replaced, timeout=15)
    after = await scrape(proxy)
    assert before.value(ERRORS, pool="flaky", backend="flaky-1") >= 4
    for name in (ATTEMPTS, ERRORS):
        assert after.series(name) == before.series(name)


def test_backend_attempt_counts_cross_the_channel_and_outlive_a_retired_worker() -> None:
    report = pickle.loads(pickle.dumps(BackendReport(0, 1, 0, 1, 0, 5, 2)))
    assert (report.attempts, report.attempt_errors) == (5, 2)

    telemetry = Telemetry()

    def worker(worker_id: int) -> Stats:
        return Stats(
            worker_id=worker_id,
            revision=1,
            requests=0,
            connections=0,
            backends={("blue", "blue-1"): report},
        )

    telemetry.update(worker(1))
    telemetry.update(worker(2))
    total = telemetry.backends()[("blue", "blue-1")]
    assert (total.attempts, total.attempt_errors) == (10, 4)
    telemetry.retire(1)
    telemetry.update(worker(3))
    total = telemetry.backends()[("blue", "blue-1")]
    assert (total.attempts, total.attempt_errors) == (15, 6)
