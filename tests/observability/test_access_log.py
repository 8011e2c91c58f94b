"""The access log: one JSON line per request, with the right values, from 1 or 2 workers.

Each test runs its own `turnout run` writing the log to a file of its own; lines are read back
from that file (the workers flush every 0.2 s).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from obs_support import (
    BackendLoop,
    Echo,
    admin,
    backend_loop,
    blast,
    cookies_for,
    fetch,
    request,
    snapshot_of,
)

from helpers import ProxyProcess, config, proxy_process
from router import bucket_of

FIELDS = {
    "time",
    "id",
    "client",
    "method",
    "path",
    "status",
    "duration",
    "upstream",
    "route",
    "rule",
    "pool",
    "backend",
    "bucket",
    "in",
    "out",
    "fallback_from",
}
SALT = "pepper"


class Logged:
    """A running instance writing its access log to `path`, and the backends behind it."""

    def __init__(self, proxy: ProxyProcess, path: Path, echoes: dict[str, Echo], data: Any):
        self.proxy = proxy
        self.path = path
        self.echoes = echoes
        self.snapshot = snapshot_of(data)

    def lines(self) -> list[dict[str, Any]]:
        text = self.path.read_text() if self.path.exists() else ""
        assert text == "" or text.endswith("\n")
        return [json.loads(line) for line in text.splitlines()]

    async def wait_for_lines(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The log once it holds at least `count` lines (and nothing more arrives for 0.5 s)."""
        deadline = time.monotonic() + timeout
        while len(lines := self.lines()) < count:
            assert time.monotonic() < deadline, f"{len(lines)} lines of {count}"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        return self.lines()


@pytest.fixture
def logged(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Logged]:
    options: dict[str, Any] = getattr(request, "param", {})
    workers = options.pop("workers", 1)
    echoes = {name: Echo(name) for name in ("stable-1", "stable-2", "canary-1")}
    path = tmp_path / "access.log"
    loop: BackendLoop
    with backend_loop() as loop:
        url = {name: loop.start(name, echo).url for name, echo in echoes.items()}
        data = config(
            {"stable": [url["stable-1"], url["stable-2"]], "canary": [url["canary-1"]]},
            {
                "web": {
                    "path_prefix": "/app",
                    "weights": {"stable": 50, "canary": 50},
                    "sticky": {"cookie": "tid", "salt": SALT},
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
            access_log={"enabled": True, "file": str(path), **options},
        )
        with proxy_process(data, workers=workers) as proxy:
            yield Logged(proxy, path, echoes, data)


def by_path(lines: list[dict[str, Any]], path: str) -> dict[str, Any]:
    found = [line for line in lines if line["path"] == path]
    assert len(found) == 1, (path, found)
    return found[0]


@pytest.mark.parametrize(
    "logged", [{"workers": 1}, {"workers": 2}], ids=["1 worker", "2 workers"], indirect=True
)
async def test_one_line_per_request_with_every_field(logged: Logged) -> None:
    proxy = logged.proxy
    cookie = cookies_for(logged.snapshot, "/app/echo", "tid", "stable", 1)[0]
    body = b"x" * 1234
    started = time.time()
    reply = await fetch(
        proxy.port,
        "POST",
        "/app/echo?secret=hunter2hunter2",
        {"Cookie": f"tid={cookie}; session=sess-abcdef", "x-canary": "sometimes"},
        body,
    )
    missing = await fetch(proxy.port, "GET", "/nowhere?token=tok-123456", {"Cookie": "tid=zzz"})
    assert reply.status == 200
    assert missing.status == 404
    lines = await logged.wait_for_lines(2)
    assert len(lines) == 2
    assert all(set(line) == FIELDS for line in lines), lines

    line = by_path(lines, "/app/echo")
    backend = reply.body.decode()
    received = [r for r in logged.echoes[backend].requests if r[1].startswith("/app/echo")]
    assert len(received) == 1
    _, _, headers, sent = received[0]
    assert sent == body
    assert started - 1 <= line["time"] <= time.time() + 1
    assert line["id"] == headers["x-request-id"]
    assert line["id"]
    assert line["client"] == "127.0.0.1"
    assert line["method"] == "POST"
    assert line["status"] == 200
    assert 0 < line["duration"] < 5
    assert 0 <= line["upstream"] <= line["duration"]
    assert (line["route"], line["rule"], line["pool"]) == ("web", "cookie", "stable")
    assert line["backend"] == backend
    assert line["bucket"] == bucket_of(cookie, SALT)
    assert line["in"] == len(body)
    assert line["out"] == len(reply.body)
    assert line["fallback_from"] is None

    line = by_path(lines, "/nowhere")
    assert line["status"] == 404
    assert (line["route"], line["rule"], line["pool"]) == ("(none)", "no-route", "(none)")
    assert line["backend"] is None
    assert line["bucket"] is None
    assert line["upstream"] is None
    assert line["method"] == "GET"
    assert line["in"] == 0
    assert line["id"] == json.loads(missing.body)["requestId"]

    # Cookies and query strings stay out of the log.
    text = logged.path.read_text()
    for secret in ("hunter2", "sess-abcdef", cookie, "tok-123456", "tid", "?", "zzz"):
        assert secret not in text


@pytest.mark.parametrize("logged", [{"query": True}], indirect=True)
async def test_the_query_is_logged_when_configured(logged: Logged) -> None:
    reply = await fetch(logged.proxy.port, "GET", "/app/q?a=1&b=two", {"x-canary": "always"})
    assert reply.status == 200
    (line,) = await logged.wait_for_lines(1)
    assert line["path"] == "/app/q?a=1&b=two"
    assert (line["rule"], line["pool"], line["backend"]) == ("header", "canary", "canary-1")


@pytest.mark.parametrize("logged", [{"workers": 2}], indirect=True)
async def test_lines_from_two_workers_never_interleave(logged: Logged) -> None:
    proxy = logged.proxy
    _, view = await admin(proxy, "GET", "/v1/workers")
    before = {worker["id"]: worker["requests"] for worker in view["workers"]}
    # Long lines (a 3 kB path each), on many connections: both workers write batches at once.
    padding = "p" * 3000
    requests = [request("GET", f"/app/{i}/{padding}", {"Cookie": f"tid=u{i}"}) for i in range(2000)]
    replies = await blast(proxy.port, requests, connections=64)
    assert {reply.status for reply in replies} == {200}
    lines = await logged.wait_for_lines(2000)  # every line parses as JSON
    assert len(lines) == 2000
    assert sorted(int(line["path"].split("/")[2]) for line in lines) == list(range(2000))
    assert all(line["status"] == 200 and line["route"] == "web" for line in lines)
    _, view = await admin(proxy, "GET", "/v1/workers")
    served = [worker["requests"] - before[worker["id"]] for worker in view["workers"]]
    assert len(served) == 2
    assert all(count > 0 for count in served), served


@pytest.mark.parametrize("logged", [{"workers": 2, "sample": 0.5}], indirect=True)
async def test_sampling_logs_about_that_share(logged: Logged) -> None:
    requests = [request("GET", f"/app/s{i}", {"x-canary": "always"}) for i in range(2000)]
    replies = await blast(logged.proxy.port, requests, connections=32)
    assert {reply.status for reply in replies} == {200}
    lines = await logged.wait_for_lines(800)
    assert 800 <= len(lines) <= 1200
    assert len({line["path"] for line in lines}) == len(lines)
