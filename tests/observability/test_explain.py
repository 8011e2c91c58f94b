"""POST /v1/explain says what the proxy does: the x-turnout-decision header of real requests
([debug] decision_header = true) agrees with it for the same request, for every kind of rule,
and asking sends nothing to any backend."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from obs_support import (
    BackendLoop,
    Echo,
    admin,
    admin_raw,
    backend_loop,
    cookies_for,
    fetch,
    parse_decision,
    snapshot_of,
)

from helpers import ProxyProcess, config, proxy_process
from router import Snapshot, bucket_of

HEADER = "x-turnout-decision"
NAMES = ("stable-1", "stable-2", "canary-1", "blue-1", "green-1", "fa-1", "fa-2", "fb-1")


@dataclass
class Instance:
    proxy: ProxyProcess
    echoes: dict[str, Echo]
    snapshot: Snapshot

    def received(self) -> int:
        return sum(len(echo.requests) for echo in self.echoes.values())


def instance_config(url: dict[str, str], **sections: Any) -> dict[str, Any]:
    return config(
        {
            "stable": [url["stable-1"], url["stable-2"]],
            "canary": [url["canary-1"]],
            "blue": [url["blue-1"]],
            "green": [url["green-1"]],
            "fa": [url["fa-1"], url["fa-2"]],
            "fb": [url["fb-1"]],
        },
        {
            "web": {
                "path_prefix": "/app",
                "weights": {"stable": 50, "canary": 50},
                "sticky": {"cookie": "tid"},
                "rules": [
                    {"name": "testers", "header": "x-canary", "value": "always", "pool": "canary"}
                ],
            },
            "bg": {
                "path_prefix": "/bg",
                "mode": "blue-green",
                "pools": ["blue", "green"],
                "active": "blue",
            },
            "fo": {
                "path_prefix": "/fo",
                "weights": {"fa": 50, "fb": 50},
                "sticky": {"cookie": "fid", "issue": False},
            },
            "w": {"path_prefix": "/w", "weights": {"stable": 50, "canary": 50}},
        },
        **sections,
    )


@pytest.fixture(scope="module")
def instance() -> Iterator[Instance]:
    echoes = {name: Echo(name) for name in NAMES}
    loop: BackendLoop
    with backend_loop() as loop:
        url = {name: loop.start(name, echo).url for name, echo in echoes.items()}
        data = instance_config(url, debug={"decision_header": True})
        with proxy_process(data, workers=2) as proxy:
            yield Instance(proxy, echoes, snapshot_of(data))


async def explain(proxy: ProxyProcess, ask: dict[str, Any]) -> dict[str, Any]:
    status, view = await admin(proxy, "POST", "/v1/explain", ask)
    assert status == 200, view
    assert isinstance(view, dict)
    return view


async def decided(
    instance: Instance, path: str, headers: dict[str, str] | None = None
) -> dict[str, str]:
    reply = await fetch(instance.proxy.port, "GET", path, headers)
    assert reply.status == 200, reply
    decision = parse_decision(reply.headers[HEADER])
    assert decision["backend"] == reply.body.decode()  # the backend that answered
    return decision


def agree(header: dict[str, str], view: dict[str, Any]) -> None:
    """The header and the explanation name the same route, rule, pool, bucket and fallback; the
    backend that answered is one of the explained pool's eligible backends."""
    assert header["route"] == view["route"]
    assert header["rule"] == view["rule"]
    assert header["pool"] == view["pool"]
    assert header.get("rule_name") == view["ruleName"]
    assert header.get("fallback_from") == view["fallbackFrom"]
    bucket = header.get("bucket")
    assert (int(bucket) if bucket is not None else None) == view["bucket"]
    eligible = {backend["name"] for backend in view["backends"] if backend["eligible"]}
    assert header["backend"] in eligible


async def test_a_header_rule(instance: Instance) -> None:
    header = await decided(instance, "/app/x", {"x-canary": "always"})
    view = await explain(instance.proxy, {"path": "/app/x", "headers": {"x-canary": "always"}})
    agree(header, view)
    assert (view["route"], view["rule"], view["ruleName"], view["pool"]) == (
        "web",
        "header",
        "testers",
        "canary",
    )
    assert view["deterministic"] is True


@pytest.mark.parametrize("value", ["always ", " always\t", "\talways \t"])
async def test_a_header_rule_reads_the_value_without_surrounding_whitespace(
    instance: Instance, value: str
) -> None:
    """As the proxy does (RFC 9110 §5.5; tests/proxy/test_routing.py sends these raw)."""
    view = await explain(instance.proxy, {"path": "/app/x", "headers": {"x-canary": value}})
    assert (view["rule"], view["ruleName"], view["pool"]) == ("header", "testers", "canary")


async def test_sticky_cookies(instance: Instance) -> None:
    values = [
        *cookies_for(instance.snapshot, "/app/x", "tid", "stable", 4),
        *cookies_for(instance.snapshot, "/app/x", "tid", "canary", 4),
    ]
    for value in values:
        header = await decided(instance, "/app/x", {"Cookie": f"tid={value}"})
        view = await explain(instance.proxy, {"path": "/app/x", "cookies": {"tid": value}})
        agree(header, view)
        assert view["rule"] == "cookie"
        assert view["bucket"] == bucket_of(value)
        assert view["issuedCookie"] is None
        assert view["deterministic"] is True
        # A Cookie header in the description is read the same way.
        same = await explain(
            instance.proxy, {"path": "/app/x", "headers": {"Cookie": f"tid={value}"}}
        )
        assert {k: v for k, v in same.items() if k != "why"} == {
            k: v for k, v in view.items() if k != "why"
        }
    assert {
        (await explain(instance.proxy, {"path": "/app", "cookies": {"tid": v}}))["pool"]
        for v in values
    } == {
        "stable",
        "canary",
    }


async def test_blue_green(instance: Instance) -> None:
    header = await decided(instance, "/bg/page")
    view = await explain(instance.proxy, {"path": "/bg/page"})
    agree(header, view)
    assert (view["route"], view["rule"], view["pool"], view["deterministic"]) == (
        "bg",
        "active",
        "blue",
        True,
    )


async def test_failover_when_a_pool_is_drained(instance: Instance) -> None:
    proxy = instance.proxy
    values = cookies_for(instance.snapshot, "/fo/x", "fid", "fa", 3)
    for value in values:
        view = await explain(proxy, {"path": "/fo/x", "cookies": {"fid": value}})
        assert (view["pool"], view["fallbackFrom"]) == ("fa", None)
    for backend in ("fa-1", "fa-2"):
        status, body = await admin(
            # The pool's last eligible backend takes its share with it: that must be forced.
            proxy,
            "PATCH",
            f"/v1/pools/fa/backends/{backend}",
            {"adminState": "drain", "force": True},
        )
        assert status == 200, body
    try:
        for value in values:
            header = await decided(instance, "/fo/x", {"Cookie": f"fid={value}"})
            view = await explain(proxy, {"path": "/fo/x", "cookies": {"fid": value}})
            agree(header, view)
            assert (view["rule"], view["pool"], view["fallbackFrom"]) == ("cookie", "fb", "fa")
            assert header["fallback_from"] == "fa"
    finally:
        for backend in ("fa-1", "fa-2"):
            await admin(proxy, "PATCH", f"/v1/pools/fa/backends/{backend}", {"adminState": "ready"})


async def test_no_route(instance: Instance) -> None:
    view = await explain(instance.proxy, {"path": "/nowhere/at/all"})
    assert (view["route"], view["rule"], view["pool"], view["deterministic"]) == (
        None,
        "no-route",
        None,
        True,
    )
    assert view["backends"] == []
    reply = await fetch(instance.proxy.port, "GET", "/nowhere/at/all")
    assert reply.status == 404
    # The proxy's own answers carry the header too.
    assert parse_decision(reply.headers[HEADER])["rule"] == "no-route"


async def test_what_depends_on_the_draw_says_so_and_a_fixed_roll_reproduces_it(
    instance: Instance,
) -> None:
    proxy = instance.proxy
    weighted = await explain(proxy, {"path": "/w/x"})
    assert (weighted["rule"], weighted["deterministic"]) == ("weighted", False)
    assert weighted["split"] == {"stable": 50.0, "canary": 50.0}
    issuing = await explain(proxy, {"path": "/app/x"})
    assert (issuing["rule"], issuing["deterministic"]) == ("cookie", False)
    assert issuing["issuedCookie"] is not None
    sticky = await explain(proxy, {"path": "/app/x", "cookies": {"tid": "someone"}})
    assert (sticky["rule"], sticky["deterministic"]) == ("cookie", True)

    for roll in (0, 2345, 98_765_432_123):
        first = await explain(proxy, {"path": "/w/x", "roll": roll})
        assert first == await explain(proxy, {"path": "/w/x", "roll": roll})
        assert first["bucket"] == roll % 10_000
        issued = await explain(proxy, {"path": "/app/x", "roll": roll})
        assert issued == await explain(proxy, {"path": "/app/x", "roll": roll})
        assert issued["issuedCookie"] == f"{roll:016x}"
        assert issued["bucket"] == bucket_of(issued["issuedCookie"])
    # Different draws do land in different pools.
    pools = {(await explain(proxy, {"path": "/w/x", "roll": roll}))["pool"] for roll in (0, 9999)}
    assert pools == {"stable", "canary"}


async def test_the_path_is_normalised_as_the_proxy_normalises_it(instance: Instance) -> None:
    for raw in ("/w/../bg/page", "/w/%2e%2e/bg/page", "/%62g/page"):
        header = await decided(instance, raw)
        view = await explain(instance.proxy, {"path": raw})
        agree(header, view)
        assert (view["path"], view["route"]) == ("/bg/page", "bg")
    assert (await explain(instance.proxy, {"path": "/app/x?a=/../b"}))["path"] == "/app/x"


async def test_explaining_sends_nothing_to_any_backend(instance: Instance) -> None:
    proxy = instance.proxy
    before = instance.received()
    asks: list[dict[str, Any]] = [
        {"path": "/app/x"},
        {"path": "/app/x", "method": "POST", "headers": {"x-canary": "always"}},
        {"path": "/bg"},
        {"path": "/fo/x", "cookies": {"fid": "a"}},
        {"path": "/w", "roll": 7},
        {"path": "/nowhere"},
    ]
    for ask in asks * 5:
        await explain(proxy, ask)
    assert instance.received() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"path": "/", "pth": "/"}, "pth"),
        ({"path": 5}, "path"),
        ({"headers": ["x-canary"]}, "headers"),
        ({"cookies": {"tid": 1}}, "cookies.tid"),
        ({"roll": "seven"}, "roll"),
        ({"roll": -1}, "roll"),
        ({"roll": False}, "roll"),
        ({"roll": "7"}, "roll"),
        ({"roll": 2**64}, "roll"),
        ({"path": "/app/%zz"}, "path"),
    ],
    ids=[
        "unknown field",
        "path not a string",
        "headers not a map",
        "cookie not a string",
        "roll not a number",
        "negative roll",
        "roll false",
        "roll a numeric string",
        "roll over 64 bits",
        "a path the proxy answers 400",
    ],
)
async def test_a_bad_explain_body_is_a_problem(
    instance: Instance, body: dict[str, Any], field: str
) -> None:
    status, headers, problem = await asyncio.to_thread(
        admin_raw,
        instance.proxy,
        "POST",
        "/v1/explain",
        json.dumps(body).encode(),
        "application/json",
    )
    assert status == 422, problem
    assert headers["Content-Type"].split(";")[0] == "application/problem+json"
    assert problem["status"] == 422
    assert problem["type"] == "urn:turnout:problem:invalid-body"
    assert field in [error.get("field") for error in problem["errors"]], problem


async def test_no_decision_header_unless_configured() -> None:
    echoes = {name: Echo(name) for name in NAMES}
    loop: BackendLoop
    with backend_loop() as loop:
        url = {name: loop.start(name, echo).url for name, echo in echoes.items()}
        with proxy_process(instance_config(url)) as proxy:
            for path, headers in (
                ("/app/x", {"x-canary": "always"}),
                ("/app/x", {"Cookie": "tid=abc"}),
                ("/bg/x", {}),
                ("/w/x", {}),
            ):
                reply = await fetch(proxy.port, "GET", path, headers)
                assert reply.status == 200
                assert HEADER not in reply.headers
            missing = await fetch(proxy.port, "GET", "/nowhere")
            assert missing.status == 404
            assert HEADER not in missing.headers
