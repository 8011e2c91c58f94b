"""POST /v1/explain judges a request target exactly as the proxy does: one table of targets,
each sent raw to a real turnout and asked of /v1/explain. Where the proxy refuses the request
itself (400, 414, 501) explain answers 422 naming the field; where the proxy routes it (a
backend's 200, or 404 for no route) explain answers 200 with the same route and path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from obs_support import Echo, admin_raw, backend_loop, parse_decision

from helpers import ProxyProcess, config, exchange_raw, parse_responses, proxy_process

LONG = "/app/" + "a" * 40_000
"""Longer than [downstream] max_header_bytes (32 KiB): the proxy answers 414."""


@dataclass(frozen=True)
class Target:
    target: str
    """As the client writes it (UTF-8 on the wire), and as explain's `path` gets it."""
    refused: bool
    """The proxy answers it itself with a 4xx/5xx of its own, before routing."""
    method: str = "GET"

    @property
    def field(self) -> str:
        """The field explain's 422 names: the method whenever it is not GET."""
        return "path" if self.method == "GET" else "method"


TARGETS = [
    Target("/app/x", refused=False),
    Target("/app", refused=False),
    Target("/elsewhere", refused=False),  # routed: no route, 404
    Target("/a/../app/x", refused=False),
    Target("/%61pp/x", refused=False),
    Target("/app/x?q=%zz&r=/../", refused=False),
    Target("/app/a#frag", refused=False),
    Target("/app/a\\b{}|^`", refused=False),
    Target("//app", refused=False),
    Target("*", refused=False),  # OPTIONS * form: no route
    Target("http://example.test/app/y", refused=False),  # absolute form
    Target("/app/x", refused=False, method="POST"),
    Target("/app/x", refused=False, method="PROPFIND"),
    Target("/app/%zz", refused=True),
    Target("relative", refused=True),
    Target("", refused=True),
    Target("x:y", refused=True),
    Target("/a b", refused=True),
    Target("/app/?q=a b", refused=True),
    Target("/a\x00b", refused=True),
    Target("/app?x=\x00", refused=True),
    Target("/a\tb", refused=True),
    Target("/a\x7f", refused=True),
    Target("/a\rb", refused=True),
    Target("/a\nb", refused=True),
    Target("/\u20ac", refused=True),  # llhttp allows no byte above 0x7f in a target
    Target("/caf\u00e9", refused=True),
    Target("http://user@example.test/app", refused=True),
    Target(LONG, refused=True),
    Target("/app/x", refused=True, method="get"),
    Target("/app/x", refused=True, method="BREW"),
    Target("example.test:443", refused=True, method="CONNECT"),
]


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyProcess]:
    with backend_loop() as loop:
        url = loop.start("app-1", Echo("app-1")).url
        data = config(
            {"app": [url]},
            {"app": {"path_prefix": "/app", "weights": {"app": 1}}},
            debug={"decision_header": True},
        )
        with proxy_process(data) as running:
            yield running


async def raw(proxy: ProxyProcess, target: Target) -> tuple[int, dict[str, str]]:
    head = f"{target.method} {target.target} HTTP/1.1\r\nHost: example.test\r\n"
    head += "Connection: close\r\n\r\n"
    answer = await exchange_raw(proxy.port, head.encode("utf-8"))
    status, headers, _ = parse_responses(answer)[0]
    return status, headers


async def explain(proxy: ProxyProcess, target: Target) -> tuple[int, Any]:
    ask = {"method": target.method, "host": "example.test", "path": target.target}
    status, _, body = await asyncio.to_thread(
        admin_raw, proxy, "POST", "/v1/explain", json.dumps(ask).encode(), "application/json"
    )
    return status, body


@pytest.mark.parametrize("target", TARGETS, ids=[repr(t.target[:30]) + t.method for t in TARGETS])
async def test_explain_and_the_proxy_judge_a_target_alike(
    proxy: ProxyProcess, target: Target
) -> None:
    status, headers = await raw(proxy, target)
    explained, view = await explain(proxy, target)
    if target.refused:
        assert status in (400, 414, 501), (status, headers)
        assert explained == 422, view
        assert view["type"] == "urn:turnout:problem:invalid-body"
        assert target.field in [error["field"] for error in view["errors"]], view
        assert f"answers {status}" in view["detail"], view
        return
    assert explained == 200, view
    if view["route"] is None:
        assert status == 404, (status, headers)
    else:
        assert status == 200, (status, headers)
        assert parse_decision(headers["x-turnout-decision"])["route"] == view["route"]
