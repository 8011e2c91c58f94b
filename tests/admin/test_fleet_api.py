"""The fleet's face in file mode (one instance): `GET /v1/fleet` says so, `?wait=local` is
accepted on every write and changes nothing about it, any other `wait` on a write that has no
drain deadline is a 400 that changes nothing, and `turnout fleet` renders both modes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from admin_support import Api, api, backend_loop, shop_and_web

from admin_api.cli.fleet import render_fleet
from helpers import ProxyProcess, proxy_process


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyProcess]:
    with backend_loop() as loop, proxy_process(shop_and_web(loop)) as running:
        yield running


@pytest.fixture
def admin(proxy: ProxyProcess) -> Api:
    return api(proxy)


def test_file_mode_is_one_instance(admin: Api) -> None:
    reply = admin.call("GET", "/v1/fleet")
    view = reply.ok()
    assert view["backend"] == "file"
    assert view["instance"] is None
    assert view["instances"] == []
    assert view["revision"] == admin.get("/v1/routes")["revision"]
    assert reply.etag == f'"{view["revision"]}"'


def test_wait_local_is_a_write_like_any_other_in_file_mode(admin: Api) -> None:
    before = admin.get("/v1/routes/web")["revision"]
    answer = admin.call(
        "PUT", "/v1/routes/web/weights?wait=local", {"weights": {"stable": 80, "canary": 20}}
    ).ok()
    assert answer["weights"] == {"stable": 80, "canary": 20}
    assert answer["revision"] == before + 1
    # A drain's `wait` is its own deadline; `local` there is the write's scope, not a duration.
    admin.call("PATCH", "/v1/pools/blue/backends/blue-1?wait=local", {"weight": 3}).ok()


def test_any_other_wait_on_a_write_is_refused_and_changes_nothing(admin: Api) -> None:
    before = admin.state()
    body = admin.call(
        "PUT", "/v1/routes/web/weights?wait=fleet", {"weights": {"stable": 1, "canary": 1}}
    ).problem(400, "bad-query")
    assert "wait" in body["detail"]
    assert admin.state() == before


def test_the_cli_renders_both_modes() -> None:
    assert render_fleet({"backend": "file", "revision": 7, "instances": []}, 0).startswith(
        "file mode: this instance alone, revision 7"
    )
    view = {
        "backend": "etcd",
        "prefix": "/turnout/prod/",
        "etcd": "reachable",
        "instance": "a",
        "revision": 41,
        "leader": "b",
        "instances": [
            {
                "instance": "a",
                "applied": 41,
                "address": "http://10.0.0.1:9901",
                "started": 0.0,
                "seen": 99.5,
                "self": True,
            },
            {
                "instance": "b",
                "applied": 40,
                "address": "http://10.0.0.2:9901",
                "started": 50.0,
                "seen": 99.0,
                "self": False,
            },
        ],
    }
    lines = render_fleet(view, 100.0).splitlines()
    assert lines[0] == (
        "fleet /turnout/prod/ on etcd (reachable): this is a, revision 41, rollout leader b"
    )
    assert lines[2].split() == [
        "a",
        "*",
        "41",
        "http://10.0.0.1:9901",
        "1",
        "min",
        "40",
        "s",
        "0.5",
        "s",
        "ago",
    ]
    assert lines[3].split()[:2] == ["b", "40"]
    unreachable = {**view, "etcd": "unreachable", "instances": [], "leader": None}
    assert "etcd cannot be reached" in render_fleet(unreachable, 100.0)
