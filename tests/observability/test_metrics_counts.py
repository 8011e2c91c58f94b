"""/metrics counts exactly what 2 workers did, and keeps counting across a worker crash.

A known mix of requests (two pools, a header rule, sticky cookies, a single-pool route, and
requests no route matches) goes through a real `turnout run` with 2 workers; every counter is
then checked series by series against the mix, as the difference between a scrape before and
one after (so the tests hold in any order on the module's shared instance).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from obs_support import (
    BackendLoop,
    Echo,
    Metrics,
    admin,
    backend_loop,
    cookies_for,
    fetch,
    scrape,
    snapshot_of,
    wait_for,
)

from helpers import ProxyProcess, config, exchange_raw, proxy_process
from proxy.config import DEFAULT_BUCKETS

NONE = "(none)"


@dataclass
class Instance:
    proxy: ProxyProcess
    stable: Echo
    canary: Echo
    stable_cookies: list[str]
    canary_cookies: list[str]


@pytest.fixture(scope="module")
def instance() -> Iterator[Instance]:
    stable, canary = Echo("stable"), Echo("canary")
    loop: BackendLoop
    with backend_loop() as loop:
        urls = {
            name: loop.start(name, echo).url
            for name, echo in (("stable", stable), ("canary", canary))
        }
        data = config(
            {"stable": [urls["stable"]], "canary": [urls["canary"]]},
            {
                "web": {
                    "path_prefix": "/app",
                    "weights": {"stable": 50, "canary": 50},
                    "sticky": {"cookie": "tid", "issue": False},
                    "rules": [
                        {
                            "name": "testers",
                            "header": "x-canary",
                            "value": "always",
                            "pool": "canary",
                        }
                    ],
                },
                "solo": {"path_prefix": "/solo", "weights": {"stable": 1}},
            },
        )
        snapshot = snapshot_of(data)
        with proxy_process(data, workers=2) as proxy:
            yield Instance(
                proxy,
                stable,
                canary,
                cookies_for(snapshot, "/app/ok", "tid", "stable", 20),
                cookies_for(snapshot, "/app/ok", "tid", "canary", 20),
            )


def delta(before: Metrics, after: Metrics, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """How much each series of `name` grew between two scrapes (series that did not move left out)."""
    old = before.by(name, *labels)
    return {
        key: value - old.get(key, 0.0)
        for key, value in after.by(name, *labels).items()
        if value != old.get(key, 0.0)
    }


async def test_a_known_mix_of_requests_is_counted_exactly(instance: Instance) -> None:
    proxy = instance.proxy
    stable_cookie = iter(instance.stable_cookies)
    canary_cookie = iter(instance.canary_cookies)
    before = await scrape(proxy)
    workers_before = {
        w["id"]: w["requests"] for w in (await admin(proxy, "GET", "/v1/workers"))[1]["workers"]
    }

    # (method, path, headers, body): every request on a connection of its own, so the kernel
    # spreads them over both workers.
    mix: list[tuple[str, str, dict[str, str], bytes]] = []
    for path, count in (("/app/ok", 6), ("/app/missing", 3), ("/app/boom", 2)):
        mix += [("GET", path, {"Cookie": f"tid={next(stable_cookie)}"}, b"")] * count
    for size in (10, 1000, 100_000):
        mix.append(("POST", "/app/ok", {"Cookie": f"tid={next(stable_cookie)}"}, b"s" * size))
    for path, count in (("/app/ok", 5), ("/app/missing", 2), ("/app/boom", 4)):
        mix += [("GET", path, {"x-canary": "always"}, b"")] * count
    mix.append(("POST", "/app/ok", {"x-canary": "always"}, b"c" * 777))
    mix += [("GET", "/app/ok", {"Cookie": f"tid={next(canary_cookie)}"}, b"")] * 3
    mix += [("GET", "/solo/ok", {}, b"")] * 4 + [("GET", "/solo/boom", {}, b"")]
    mix += [("GET", f"/nowhere/{i}", {}, b"") for i in range(6)]

    replies = await asyncio.gather(*(fetch(proxy.port, m, p, h, b) for m, p, h, b in mix))
    statuses = Counter(reply.status for reply in replies)
    assert statuses == {200: 9 + 9 + 4, 404: 3 + 2 + 6, 500: 2 + 4 + 1}

    after = await scrape(proxy)
    assert delta(before, after, "turnout_requests_total", "route", "pool", "code") == {
        ("web", "stable", "200"): 9,
        ("web", "stable", "404"): 3,
        ("web", "stable", "500"): 2,
        ("web", "canary", "200"): 9,
        ("web", "canary", "404"): 2,
        ("web", "canary", "500"): 4,
        ("solo", "stable", "200"): 4,
        ("solo", "stable", "500"): 1,
        (NONE, NONE, "404"): 6,
    }
    assert delta(before, after, "turnout_routing_decisions_total", "route", "rule", "pool") == {
        ("web", "cookie", "stable"): 14,
        ("web", "header", "canary"): 12,
        ("web", "cookie", "canary"): 3,
        ("solo", "weighted", "stable"): 5,
        (NONE, "no-route", NONE): 6,
    }
    requests = {
        ("web", "stable"): 14,
        ("web", "canary"): 15,
        ("solo", "stable"): 5,
        (NONE, NONE): 6,
    }
    assert (
        delta(before, after, "turnout_request_duration_seconds_count", "route", "pool") == requests
    )
    assert delta(before, after, "turnout_request_body_bytes_total", "route", "pool") == {
        ("web", "stable"): 10 + 1000 + 100_000,
        ("web", "canary"): 777,
    }
    sent = delta(before, after, "turnout_response_body_bytes_total", "route", "pool")
    assert {key: sent[key] for key in requests if key != (NONE, NONE)} == {
        ("web", "stable"): 14 * len("stable"),
        ("web", "canary"): 15 * len("canary"),
        ("solo", "stable"): 5 * len("stable"),
    }
    # The proxy's own answers count too: six no-route problem documents of ~180 bytes each.
    assert 6 * 150 <= sent[(NONE, NONE)] <= 6 * 250

    # The histogram: the configured buckets, cumulative, +Inf equal to _count, a positive sum.
    for (route, pool), count in requests.items():
        buckets = after.by("turnout_request_duration_seconds_bucket", "le", route=route, pool=pool)
        bounds = sorted(buckets, key=lambda key: float(key[0]))
        assert [float(key[0]) for key in bounds] == [*DEFAULT_BUCKETS, float("inf")]
        values = [buckets[key] for key in bounds]
        assert values == sorted(values), (route, pool, values)
        assert buckets[("+Inf",)] == after.get(
            "turnout_request_duration_seconds_count", route=route, pool=pool
        )
        grown = buckets[("+Inf",)] - before.value(
            "turnout_request_duration_seconds_bucket", route=route, pool=pool, le="+Inf"
        )
        assert grown == count
        assert after.get(
            "turnout_request_duration_seconds_sum", route=route, pool=pool
        ) > before.value("turnout_request_duration_seconds_sum", route=route, pool=pool)

    # Nothing is left in flight, and both workers took part in what was summed.
    assert set(after.series("turnout_requests_in_flight").values()) == {0.0}
    assert set(after.series("turnout_backend_requests_in_flight").values()) == {0.0}
    workers = (await admin(proxy, "GET", "/v1/workers"))[1]["workers"]
    served = {w["id"]: w["requests"] - workers_before.get(w["id"], 0) for w in workers}
    assert sum(served.values()) == len(mix)
    assert all(count > 0 for count in served.values()), served


async def test_requests_answered_before_routing_are_labelled_no_route(instance: Instance) -> None:
    """Malformed requests never reach the router: their decisions carry the same `no-route`
    rule label as requests no route matches (the README's closed set), never another word."""
    proxy = instance.proxy
    before = await scrape(proxy)
    for request in (
        b"GET /app/ok HTTP/1.1\r\nConnection: close\r\n\r\n",  # no Host
        b"GET /app/ok HTTP/1.1\r\nHost: a\r\nX-A: one\rtwo\r\n\r\n",  # a bare CR
        b"GET /nowhere HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    ):
        await exchange_raw(proxy.port, request)
    after = await scrape(proxy)
    assert delta(before, after, "turnout_requests_total", "route", "pool", "code") == {
        (NONE, NONE, "400"): 2,
        (NONE, NONE, "404"): 1,
    }
    assert delta(before, after, "turnout_routing_decisions_total", "route", "rule", "pool") == {
        (NONE, "no-route", NONE): 3,
    }


COUNTER_TYPES = ("_total", "_count", "_sum", "_bucket")


def counters(metrics: Metrics) -> dict[Any, float]:
    """The instance's counters (a worker's own CPU time restarts with it, as process_cpu_seconds
    does with any process: it is per process, not an instance total)."""
    return {
        key: value
        for key, value in metrics.samples.items()
        if key[0].startswith("turnout_")
        and key[0].endswith(COUNTER_TYPES)
        and key[0] != "turnout_worker_cpu_seconds_total"
    }


async def test_counters_survive_a_worker_crash(instance: Instance) -> None:
    proxy = instance.proxy
    paths = [
        ("/app/ok", {"x-canary": "always"}),
        ("/app/boom", {}),
        ("/solo/ok", {}),
        ("/nope", {}),
    ]
    await asyncio.gather(
        *(
            fetch(proxy.port, "GET", path, {**headers, "Cookie": "tid=a"})
            for path, headers in paths * 10
        )
    )
    before = await scrape(proxy)
    assert before.get("turnout_worker_crashes_total") == 0
    victim = (await asyncio.to_thread(proxy.worker_pids))[0]
    os.kill(victim, signal.SIGKILL)

    async def replaced() -> bool:
        _, view = await admin(proxy, "GET", "/v1/workers")
        pids = [w["pid"] for w in view["workers"]]
        ready, _ = await admin(proxy, "GET", "/ready")
        return view["crashes"] == 1 and victim not in pids and ready == 200

    await wait_for(replaced, timeout=15)
    after = await scrape(proxy)

    old, new = counters(before), counters(after)
    assert set(old) <= set(new)
    decreased = {key: (old[key], new[key]) for key in old if new[key] < old[key]}
    assert decreased == {}
    # Nothing happened in between: the dead worker's last report is still in the totals.
    assert {k: v for k, v in new.items() if k[0] == "turnout_requests_total"} == {
        k: v for k, v in old.items() if k[0] == "turnout_requests_total"
    }
    assert after.get("turnout_worker_crashes_total") == 1
    assert after.get("turnout_workers") == 2
