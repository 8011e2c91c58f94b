"""No client can add a series: 10,000 requests with distinct paths, query strings, cookie values
and header values leave /metrics with exactly the series it had before (only values move)."""

from __future__ import annotations

import time

from obs_support import BackendLoop, backend_loop, blast, fast_backend, request, scrape

from helpers import config, proxy_process


def requests(first: int, count: int) -> list[bytes]:
    """Every request different from every other in what a client controls."""
    made = []
    for i in range(first, first + count):
        headers = {"Cookie": f"tid=user-{i}; other=o{i}", "x-canary": f"v{i}", f"x-h{i}": str(i)}
        if i % 10 == 1:
            headers["x-canary"] = "always"  # the header rule, under a name from the config
        target = f"/p/{i}/item?q={i}&token=t{i}" if i % 10 else f"/unrouted-zz/{i}?q={i}"
        made.append(request("GET", target, headers, host=f"h{i}.example.test"))
    return made


async def test_request_data_never_adds_a_series() -> None:
    loop: BackendLoop
    with backend_loop() as loop:
        stable, canary = loop.start_raw(fast_backend), loop.start_raw(fast_backend)
        data = config(
            {"stable": [stable.url], "canary": [canary.url]},
            {
                "web": {
                    "path_prefix": "/p",
                    "weights": {"stable": 50, "canary": 50},
                    "sticky": {"cookie": "tid"},
                    "rules": [
                        {
                            "name": "testers",
                            "header": "x-canary",
                            "value": "always",
                            "pool": "canary",
                        }
                    ],
                }
            },
        )
        with proxy_process(data, workers=2) as proxy:
            # Every kind of outcome once (both pools by cookie, the header rule, no route), so
            # every series that traffic like this can create exists before the measurement.
            warm = await blast(proxy.port, requests(0, 300), connections=16)
            assert {reply.status for reply in warm} == {200, 404}
            before = await scrape(proxy)
            kinds = before.by("turnout_routing_decisions_total", "route", "rule", "pool")
            assert set(kinds) == {
                ("web", "cookie", "stable"),
                ("web", "cookie", "canary"),
                ("web", "header", "canary"),
                ("(none)", "no-route", "(none)"),
            }

            started = time.monotonic()
            replies = await blast(proxy.port, requests(1_000_000, 10_000), connections=64)
            elapsed = time.monotonic() - started
            assert sum(reply.status == 200 for reply in replies) == 9_000
            assert sum(reply.status == 404 for reply in replies) == 1_000
            after = await scrape(proxy)

    assert after.keys() == before.keys(), (after.keys() - before.keys(), elapsed)
    grown = sum(after.series("turnout_requests_total").values()) - sum(
        before.series("turnout_requests_total").values()
    )
    assert grown == 10_000
    text = after.raw.decode()
    for leaked in ("user-1000", "token", "t1000", "h1000", "x-h1", "unrouted-zz", "/p/", "v1000"):
        assert leaked not in text
