"""The x-turnout-decision header ([debug] decision_header) of requests that were not routed,
or were routed to a pool with no backend to take them: it names what happened, in the same
words as the metrics' labels, and never shows a Python `None`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from obs_support import parse_decision

from helpers import Backend, config, exchange_raw, parse_responses, running_proxy, start_backend

HEADER = "x-turnout-decision"


@pytest.fixture
async def app() -> AsyncIterator[Backend]:
    started = await start_backend("app")
    try:
        yield started
    finally:
        await started.stop()


def with_a_dead_pool(url: str) -> dict[str, Any]:
    data = config(
        {"app": [url], "dead": [url]},
        {
            "web": {"path_prefix": "/app", "weights": {"app": 1}},
            "down": {"path_prefix": "/down", "weights": {"dead": 1}},
        },
        debug={"decision_header": True},
    )
    data["pools"]["dead"]["backends"][0]["admin_state"] = "maint"
    return data


CASES = [
    # (request, status, the header's fields)
    (
        b"GET /app/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        200,
        {"route": "web", "rule": "weighted", "pool": "app", "backend": "app-1"},
    ),
    (
        b"GET /down/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        503,
        {"route": "down", "rule": "weighted", "pool": "dead"},
    ),
    (
        b"GET /nowhere HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        404,
        {"route": "(none)", "rule": "no-route", "pool": "(none)"},
    ),
    (
        b"GET /app/x HTTP/1.1\r\nConnection: close\r\n\r\n",  # no Host: refused before routing
        400,
        {"route": "(none)", "rule": "no-route", "pool": "(none)"},
    ),
]


@pytest.mark.parametrize(("request_bytes", "status", "fields"), CASES, ids=[200, 503, 404, 400])
async def test_the_decision_header_names_only_what_happened(
    app: Backend, request_bytes: bytes, status: int, fields: dict[str, str]
) -> None:
    async with running_proxy(with_a_dead_pool(app.url)) as proxy:
        answer = await exchange_raw(proxy.port, request_bytes)
    [(got, headers, _)] = parse_responses(answer)
    assert got == status, answer
    decision = parse_decision(headers[HEADER])
    decision.pop("bucket", None)  # a random roll's
    assert decision == fields
    assert "None" not in headers[HEADER]
