"""`turnout history` shows every change the history can hold, including a reload that removed
a route or a pool, in text and in JSON (which never goes through the text rendering)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
from admin_support import backend_loop
from cli_support import turnout

from admin_api.cli.render import change_text
from helpers import ProxyProcess, config, proxy_process, toml

ROUTES: dict[str, Any] = {
    "checkout": {
        "path_prefix": "/checkout",
        "mode": "blue-green",
        "pools": ["blue", "green"],
        "active": "blue",
    },
    "web": {"weights": {"stable": 90, "canary": 10}},
}

WEB = {"weights": [["stable", 90], ["canary", 10]]}
POOL = {"backends": [{"name": "blue-1", "admin_state": "ready", "weight": 1}]}


@pytest.mark.parametrize(
    ("before", "after", "text"),
    [
        ({"routes": {"web": None}}, {"routes": {"web": WEB}}, "route web added"),
        ({"routes": {"web": WEB}}, {"routes": {"web": None}}, "route web removed"),
        ({"pools": {"blue": None}}, {"pools": {"blue": POOL}}, "pool blue added"),
        ({"pools": {"blue": POOL}}, {"pools": {"blue": None}}, "pool blue removed"),
        (None, {"routes": {"web": WEB}}, "route web added"),
        ({"routes": {"web": WEB}}, None, "route web removed"),
        (
            {"routes": {"web": WEB, "gone": WEB}, "pools": {"blue": POOL}},
            {"routes": {"web": {"weights": [["stable", 0], ["canary", 1]]}, "gone": None}},
            "stable 90, canary 10 -> stable 0, canary 1; route gone removed; pool blue removed",
        ),
        ({"routes": {"web": "not a route"}}, {"routes": {"web": 7}}, ""),
        ({"pools": {"blue": {"backends": 3}}}, {"pools": {"blue": {"backends": [1]}}}, ""),
        (
            {"rollout": None},
            {"phase": "progressing", "step": 0, "weights": {"stable": 95, "canary": 5}},
            "no rollout -> progressing; - -> stable 95, canary 5",
        ),
        (
            {"phase": "progressing", "weights": {"stable": 75, "canary": 25}},
            {"phase": "aborted", "weights": {"stable": 100, "canary": 0}},
            "progressing -> aborted; stable 75, canary 25 -> stable 100, canary 0",
        ),
        (
            {"phase": "progressing", "active": "green"},
            {"phase": "aborted", "active": "blue"},
            "progressing -> aborted; active green -> blue",
        ),
        (
            {"phase": "progressing", "stage": "holding", "backends": {"b-1": "ready"}},
            {"phase": "progressing", "stage": "draining", "backends": {"b-1": "drain"}},
            "holding -> draining; b-1 ready -> drain",
        ),
        (
            {"phase": "progressing", "stage": "keeping-old", "backends": {"old": "maint"}},
            {"phase": "promoted", "stage": "keeping-old", "backends": {"new": "ready"}},
            "progressing -> promoted; old maint -> removed; new added -> ready",
        ),
    ],
    ids=[
        "route added",
        "route removed",
        "pool added",
        "pool removed",
        "no before",
        "no after",
        "a reload that changes and removes",
        "routes of an unknown shape",
        "backends of an unknown shape",
        "a rollout starts",
        "a rollout aborts",
        "a blue-green rollout switches back",
        "a pool rollout drains its next batch",
        "a surge ends: the old backends removed",
    ],
)
def test_change_text(before: Any, after: Any, text: str) -> None:
    assert change_text(before, after) == text


@pytest.fixture
def proxy() -> Iterator[ProxyProcess]:
    with backend_loop() as loop:
        pools = {name: [loop.start(name).url] for name in ("stable", "canary", "blue", "green")}
        with proxy_process(config(pools, ROUTES)) as running:
            yield running


async def test_history_after_a_reload_removed_a_route_and_pools(proxy: ProxyProcess) -> None:
    data = tomllib.loads(proxy.config_path.read_text())
    del data["routes"]["checkout"]
    del data["pools"]["blue"], data["pools"]["green"]
    proxy.config_path.write_text(toml(data))
    reloaded = await turnout(proxy.admin_url, "reload")
    assert reloaded.code == 0, reloaded.err

    text = await turnout(proxy.admin_url, "history")
    assert text.code == 0, text.err
    newest = text.out.splitlines()[1]
    assert " reload " in newest
    assert newest.endswith("route checkout removed; pool blue removed; pool green removed")

    document = await turnout(proxy.admin_url, "history", "--json")
    assert document.code == 0, document.err
    change = document.json()["changes"][0]
    assert change["action"] == "reload"
    assert change["after"]["routes"] == {"checkout": None}
    assert change["after"]["pools"] == {"blue": None, "green": None}
