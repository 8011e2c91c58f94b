"""Token roles: a `read` token reads everything (the event stream too) and changes nothing, for
every client: any method but GET, HEAD and OPTIONS is 403 problem+json naming the token (never
its secret); a `write` token (the default) does everything; a role that is neither is refused
when the configuration loads, naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admin_support import Api, api, backend_loop, shop_and_web
from sse_support import Subscribers

from helpers import ProxyProcess, config, proxy_process, toml
from proxy.config import ConfigError, load_config

READ_TOKEN = "wall-screen-0123456789-read-only"
WRITE_TOKEN = "deploy-bot-0123456789-may-write"


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyProcess]:
    tokens = [
        {"name": "wall", "token": READ_TOKEN, "role": "read"},
        {"name": "deploy", "token": WRITE_TOKEN},  # no role: write, as before roles existed
    ]
    with backend_loop() as loop:
        data = shop_and_web(loop)
        data["admin"] = {"tokens": tokens}
        with proxy_process(data) as running:
            yield running


@pytest.fixture
def reader(proxy: ProxyProcess) -> Api:
    return api(proxy, READ_TOKEN)


@pytest.fixture
def writer(proxy: ProxyProcess) -> Api:
    return api(proxy, WRITE_TOKEN)


WRITES: list[tuple[str, str, Any]] = [
    ("PUT", "/v1/routes/web/weights", {"weights": {"stable": 50, "canary": 50}}),
    ("POST", "/v1/routes/shop/switch", {"to": "green"}),
    ("POST", "/v1/routes/web/rollback", None),
    ("PATCH", "/v1/pools/stable/backends/stable-1", {"adminState": "drain"}),
    ("POST", "/v1/pools/stable/backends", {"name": "extra", "url": "http://127.0.0.1:9"}),
    ("DELETE", "/v1/pools/canary/backends/canary-1?force=true", None),
    ("POST", "/v1/routes/web/rollout", None),
    ("POST", "/v1/reload", None),
]


def test_a_read_token_reads_everything(reader: Api) -> None:
    for path in ("/v1/routes", "/v1/pools", "/v1/history", "/v1/workers", "/v1/rollouts"):
        assert reader.call("GET", path).status == 200, path
    assert reader.get("/v1/routes/shop")["active"] == "blue"
    assert reader.call("GET", "/metrics").status == 200
    assert reader.call("HEAD", "/ready").status == 200


async def test_a_read_token_may_read_the_event_stream(proxy: ProxyProcess) -> None:
    async with Subscribers(proxy.admin_url, READ_TOKEN) as subscribers:
        stream = await subscribers.subscribe()
        assert stream.response.status == 200
        frame = await stream.frame()
        assert [route["name"] for route in frame["routes"]] == ["shop", "web"]
        refused = await subscribers.subscribe(token="not-a-token-0123456789")
        assert refused.response.status == 401


@pytest.mark.parametrize(
    ("method", "path", "body"), WRITES, ids=[w[1] + " " + w[0] for w in WRITES]
)
def test_a_read_token_changes_nothing_403(
    reader: Api, writer: Api, method: str, path: str, body: Any
) -> None:
    before = writer.state()
    reply = reader.call(method, path, body, headers={"If-Match": "*"})
    problem = reply.problem(403, "forbidden")
    assert "'wall'" in problem["detail"]
    assert method in problem["detail"]
    assert READ_TOKEN not in reply.raw.decode()
    assert writer.state() == before


def test_weights_and_switch_with_the_read_token_403_then_with_the_write_token_200(
    reader: Api, writer: Api
) -> None:
    weights = {"weights": {"stable": 60, "canary": 40}}
    reader.call("PUT", "/v1/routes/web/weights", weights).problem(403, "forbidden")
    reader.call("POST", "/v1/routes/shop/switch", {"to": "green"}).problem(403, "forbidden")
    assert reader.get("/v1/routes/web")["weights"] == {"stable": 90, "canary": 10}
    assert reader.get("/v1/routes/shop")["active"] == "blue"

    assert (
        writer.call("PUT", "/v1/routes/web/weights", weights).ok()["weights"] == weights["weights"]
    )
    assert writer.call("POST", "/v1/routes/shop/switch", {"to": "green"}).ok()["active"] == "green"
    changes = reader.get("/v1/history?limit=2")["changes"]
    assert [(c["actor"], c["action"]) for c in changes] == [
        ("deploy", "switch"),
        ("deploy", "set-weights"),
    ]
    # Back as the module started, for the other tests.
    writer.call("POST", "/v1/routes/shop/switch", {"to": "blue"}).ok()
    writer.call("PUT", "/v1/routes/web/weights", {"weights": {"stable": 90, "canary": 10}}).ok()


def test_without_a_token_a_write_is_401_not_403(proxy: ProxyProcess) -> None:
    reply = api(proxy).call("POST", "/v1/routes/shop/switch", {"to": "green"})
    reply.problem(401, "unauthorized")


def test_the_document_declares_403_on_every_write(reader: Api) -> None:
    document = reader.get("/v1/openapi.json")
    for path, item in document["paths"].items():
        for method, operation in item.items():
            writes = method not in ("get", "head", "options") and operation.get("security") != []
            assert ("403" in operation["responses"]) is writes, (method, path)


@pytest.mark.parametrize("role", ["admin", "READ", "", 1])
def test_an_unknown_role_is_refused_naming_the_field(tmp_path: Path, role: Any) -> None:
    data = config({"stable": ["http://127.0.0.1:9"]}, {"web": {"weights": {"stable": 1}}})
    data["admin"] = {"tokens": [{"name": "wall", "token": READ_TOKEN, "role": role}]}
    path = tmp_path / "turnout.toml"
    path.write_text(toml(data))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any(p.startswith("admin.tokens[0].role") for p in caught.value.problems), caught.value
    assert READ_TOKEN not in str(caught.value)


def test_a_valid_role_loads(tmp_path: Path) -> None:
    data = config({"stable": ["http://127.0.0.1:9"]}, {"web": {"weights": {"stable": 1}}})
    data["admin"] = {
        "tokens": [
            {"name": "wall", "token": READ_TOKEN, "role": "read"},
            {"name": "deploy", "token": WRITE_TOKEN},
        ]
    }
    path = tmp_path / "turnout.toml"
    path.write_text(toml(data))
    settings, _ = load_config(path)
    assert [(t.name, t.role) for t in settings.admin.tokens] == [
        ("wall", "read"),
        ("deploy", "write"),
    ]
