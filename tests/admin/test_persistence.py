"""Runtime changes, the revision and the history survive a restart of `turnout run`; the file
wins for what it changed; a corrupt state file is kept aside, reported, and not fatal.

Each test runs `turnout run` more than once on the same configuration file in one directory,
so the state file next to it (`turnout.state.json`) carries over, as in production.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admin_support import Api, BackendLoop, api, backend_loop, send, turnout_in, with_ports

from helpers import Backend, config


@pytest.fixture(scope="module")
def loop() -> Iterator[BackendLoop]:
    with backend_loop() as running:
        yield running


@pytest.fixture(scope="module")
def backends(loop: BackendLoop) -> dict[str, Backend]:
    names = ("stable-1", "stable-2", "canary-1", "blue-1", "green-1", "extra")
    return {name: loop.start(name) for name in names}


def settings(backends: dict[str, Backend]) -> dict[str, Any]:
    return with_ports(
        config(
            {
                "stable": [backends["stable-1"].url, backends["stable-2"].url],
                "canary": [backends["canary-1"].url],
                "blue": [backends["blue-1"].url],
                "green": [backends["green-1"].url],
            },
            {
                "shop": {
                    "path_prefix": "/shop",
                    "mode": "blue-green",
                    "pools": ["blue", "green"],
                    "active": "blue",
                },
                "web": {"weights": {"stable": 90, "canary": 10}},
            },
        )
    )


def state(admin: Api) -> dict[str, Any]:
    """Routes, pools and the whole history, without what traffic moves by itself."""
    routes = admin.get("/v1/routes")
    for route in routes["routes"]:
        del route["observed"], route["observedPercentages"]
    pools = admin.get("/v1/pools")
    for pool in pools["pools"]:
        for backend in pool["backends"]:
            assert backend.pop("inflight") == 0
    return {"routes": routes, "pools": pools, "history": admin.get("/v1/history?limit=1000")}


def route(snapshot: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in snapshot["routes"]["routes"] if r["name"] == name)
    return found


def pool(snapshot: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in snapshot["pools"]["pools"] if p["name"] == name)
    return found


def test_runtime_changes_survive_restarts_unless_the_file_changed_them(
    tmp_path: Path, backends: dict[str, Backend]
) -> None:
    data = settings(backends)
    with turnout_in(tmp_path, data, "first.log") as proxy:
        admin = api(proxy)
        admin.call("PUT", "/v1/routes/web/weights", {"weights": {"stable": 60, "canary": 40}}).ok()
        admin.call("POST", "/v1/routes/shop/switch", {"to": "green"}).ok()
        drain = {"adminState": "drain"}
        admin.call("PATCH", "/v1/pools/stable/backends/stable-2", drain).ok()
        extra = {"name": "extra", "url": backends["extra"].url}
        admin.call("POST", "/v1/pools/canary/backends", extra).ok(201)
        saved = state(admin)
    assert saved["routes"]["revision"] == 5
    document = json.loads((tmp_path / "turnout.state.json").read_text())
    assert document["format"] == 1
    assert document["state"]["revision"] == 5

    # The same file: everything as it was, at the same revision, with the same history.
    counted = {name: len(backend.seen) for name, backend in backends.items()}
    with turnout_in(tmp_path, data, "second.log") as proxy:
        admin = api(proxy)
        restored = state(admin)
        assert restored == saved
        assert "restored runtime state" in proxy.log()
        # And the workers route by it.
        assert send(proxy.port, 20, "/shop") == {"green-1": 20}
        web = send(proxy.port, 300)
        assert set(web) == {"stable-1", "canary-1", "extra"}, web
        assert len(backends["stable-2"].seen) == counted["stable-2"]  # still drained
        assert len(backends["extra"].seen) > counted["extra"]
        # Revisions go on from where they were.
        after = admin.call("POST", "/v1/routes/web/abort").ok()
        assert after["revision"] == 6
        admin.call("POST", "/v1/routes/web/rollback").ok()
        saved = state(admin)

    # The file changes the web route's definition: the file wins there, the rest is kept.
    edited = copy.deepcopy(data)
    edited["routes"]["web"]["weights"] = {"stable": 20, "canary": 80}
    with turnout_in(tmp_path, edited, "third.log") as proxy:
        admin = api(proxy)
        now = state(admin)
        web = route(now, "web")
        assert web["weights"] == {"stable": 20, "canary": 80}
        assert route(now, "shop") == {**route(saved, "shop"), "revision": 8}
        assert [(b["name"], b["adminState"]) for b in pool(now, "stable")["backends"]] == [
            ("stable-1", "ready"),
            ("stable-2", "drain"),
        ]
        assert [b["name"] for b in pool(now, "canary")["backends"]] == ["canary-1", "extra"]
        assert pool(now, "blue") == {**pool(saved, "blue"), "revision": 8}
        # One new revision, recorded as the file's doing, on top of the history so far.
        changes = now["history"]["changes"]
        assert changes[1:] == saved["history"]["changes"]
        newest = changes[0]
        assert (newest["revision"], newest["actor"], newest["action"]) == (
            8,
            "config-file",
            "start",
        )
        assert list(newest["after"]["routes"]) == ["web"]
        assert newest["before"]["routes"]["web"]["weights"] == [["stable", 60], ["canary", 40]]
        assert newest["after"]["routes"]["web"]["weights"] == [["stable", 20], ["canary", 80]]
        assert newest["after"]["pools"] == {}
        assert send(proxy.port, 20, "/shop") == {"green-1": 20}


@pytest.mark.parametrize(
    "garbage",
    [b"\x00\xffthis is not json{", b'{"format": 1, "state": {"revision": "many"}}'],
    ids=["not-json", "wrong-shape"],
)
def test_a_corrupt_state_file_is_kept_aside_and_turnout_starts_from_the_file(
    tmp_path: Path, backends: dict[str, Backend], garbage: bytes
) -> None:
    state_file = tmp_path / "turnout.state.json"
    state_file.write_bytes(garbage)
    with turnout_in(tmp_path, settings(backends), "corrupt.log") as proxy:
        admin = api(proxy)
        now = state(admin)
        log = proxy.log()
        assert route(now, "web")["weights"] == {"stable": 90, "canary": 10}
        assert route(now, "shop")["active"] == "blue"
        assert send(proxy.port, 10, "/shop") == {"blue-1": 10}

    [aside] = tmp_path.glob("turnout.state.json.corrupt-*")
    assert aside.read_bytes() == garbage
    assert aside.name.removeprefix("turnout.state.json.corrupt-").isdigit()
    assert "ERROR" in log
    assert f"state file {state_file} is unreadable" in log
    assert f"kept aside as {aside}" in log

    [change] = now["history"]["changes"]
    assert (change["revision"], change["actor"]) == (1, "config-file")
    assert (change["action"], change["target"]) == ("state-file-corrupt", "state")
    assert change["after"] == {"keptAs": str(aside)}
    # A good state file was written in its place.
    assert json.loads(state_file.read_bytes())["state"]["revision"] == 1
