"""The `turnout` admin commands, run as an operator runs them: subprocesses of the installed
entry point against a real `turnout run` with real aiohttp backends.

The backends live on this test's event loop, so every command runs through
asyncio.create_subprocess_exec and every blocking admin call through asyncio.to_thread: the
loop keeps serving while a command waits. (Named test_admin_cli.py: tests/proxy/test_cli.py
already takes the module name test_cli, and test directories are not packages.)
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cli_support import turnout

from admin_api.client import AdminClient, AdminError, AdminUnreachable
from helpers import TURNOUT, Backend, ProxyProcess, config, free_port, proxy_process, start_backend

TOKEN = "s3cret-token-for-the-cli-tests"

ROUTES: dict[str, Any] = {
    # First: routes are tried in file order and web's "/" would match /checkout too.
    "checkout": {
        "path_prefix": "/checkout",
        "mode": "blue-green",
        "pools": ["blue", "green"],
        "active": "blue",
    },
    "web": {
        "weights": {"stable": 90, "canary": 10},
        "rules": [
            {"name": "to-canary", "header": "x-pool", "value": "canary", "pool": "canary"},
            {"name": "to-stable", "header": "x-pool", "value": "stable", "pool": "stable"},
        ],
    },
}


@pytest.fixture
async def backends() -> AsyncIterator[dict[str, Backend]]:
    started = {name: await start_backend(name) for name in ("stable", "canary", "blue", "green")}
    yield started
    for backend in started.values():
        await backend.stop()


@contextmanager
def instance(backends: dict[str, Backend], **sections: Any) -> Iterator[ProxyProcess]:
    pools = {name: [backend.url] for name, backend in backends.items()}
    with proxy_process(config(pools, ROUTES, **sections)) as proxy:
        yield proxy


def words(line: str) -> str:
    """A table line with its alignment squeezed out."""
    return " ".join(line.split())


async def admin(proxy: ProxyProcess, call: str, *args: Any, **kwargs: Any) -> Any:
    """One AdminClient call, off the event loop."""
    client = AdminClient(proxy.admin_url)
    return await asyncio.to_thread(getattr(client, call), *args, **kwargs)


async def get(proxy: ProxyProcess, path: str = "/", **headers: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{proxy.port}{path}", headers=headers) as response,
    ):
        return response.status, await response.text()


# status


async def test_status_shows_each_route_its_weights_and_the_observed_split(
    backends: dict[str, Backend],
) -> None:
    with instance(backends) as proxy:
        started = time.monotonic()
        quiet = await turnout(proxy.admin_url, "status")
        assert quiet.code == 0, quiet.err
        lines = quiet.out.splitlines()
        assert lines[0] == "revision 1"
        assert words(lines[1]) == "ROUTE MODE WEIGHTS / ACTIVE PREVIOUS OBSERVED (LAST MINUTE)"
        rows = {line.split()[0]: line for line in lines[2:]}
        assert re.search(
            r"web\s+weighted\s+stable 90 \(90%\), canary 10 \(10%\)\s+-\s+-$", rows["web"]
        )
        assert re.search(r"checkout\s+blue-green\s+active blue\s+-\s+-$", rows["checkout"])

        # The control plane samples its counters once a second and counts from its oldest
        # sample: requests answered before the first sample never show (see the report).
        await asyncio.sleep(max(0.0, 1.2 - (time.monotonic() - started)))
        for pool, count in (("canary", 3), ("stable", 9)):
            for _ in range(count):
                assert await get(proxy, "/", **{"x-pool": pool}) == (200, pool)
        await _until_observed(proxy, "web", 12)

        busy = await turnout(proxy.admin_url, "status")
        assert busy.code == 0, busy.err
        web_row = next(line for line in busy.out.splitlines() if line.startswith("web "))
        assert web_row.endswith("canary 25%, stable 75% of 12")

        document = (await turnout(proxy.admin_url, "status", "--json")).json()
        assert [route["name"] for route in document["routes"]] == ["checkout", "web"]
        web_view = document["routes"][1]
        assert web_view["percentages"] == {"stable": 90.0, "canary": 10.0}
        assert web_view["observed"] == {"canary": 3, "stable": 9}


async def _until_observed(proxy: ProxyProcess, route: str, total: int) -> None:
    """Workers report their counters every second: wait for this route's to arrive."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        view = await admin(proxy, "route", route)
        if sum(view["observed"].values()) >= total:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"observed never reached {total}: {view['observed']}")


async def test_status_of_one_route_shows_its_pools_backends(backends: dict[str, Backend]) -> None:
    with instance(backends) as proxy:
        result = await turnout(proxy.admin_url, "status", "web")
        assert result.code == 0, result.err
        assert result.out.startswith("route web: weighted, revision 1\n")
        assert "  weights   stable 90 (90%), canary 10 (10%)\n" in result.out
        assert "to-canary: x-pool exact canary -> canary" in result.out
        table = result.out.split("\n\n", 1)[1].splitlines()
        assert words(table[0]) == "POOL BACKEND URL WEIGHT ADMIN HEALTH ELIGIBLE IN-FLIGHT"
        assert words(table[1]) == f"stable stable-1 {backends['stable'].url} 1 ready healthy yes 0"
        assert [row.split()[0] for row in table[1:]] == ["stable", "canary"]

        document = (await turnout(proxy.admin_url, "status", "checkout", "--json")).json()
        assert document["route"]["active"] == "blue"
        assert [pool["name"] for pool in document["pools"]] == ["blue", "green"]
        assert document["pools"][0]["backends"][0]["adminState"] == "ready"

        missing = await turnout(proxy.admin_url, "status", "nope")
        assert missing.code == 1
        assert "Unknown route (HTTP 404)" in missing.err
        assert "no route named 'nope'" in missing.err


async def test_status_watch_refreshes_count_times_then_exits_0(
    backends: dict[str, Backend],
) -> None:
    with instance(backends) as proxy:
        watched = await turnout(
            proxy.admin_url, "status", "--watch", "--count", "3", "--interval", "0.2"
        )
        assert watched.code == 0, watched.err
        assert watched.out.count("revision 1\nROUTE") == 3
        assert watched.seconds >= 0.4  # two pauses between three refreshes

        streamed = await turnout(
            proxy.admin_url, "status", "web", "--count", "2", "--interval", "0.1", "--json"
        )
        assert streamed.code == 0, streamed.err
        documents = [json.loads(line) for line in streamed.out.splitlines()]
        assert [document["route"]["name"] for document in documents] == ["web", "web"]

        # Without a count, Ctrl-C is how a watch ends: exit 0, no traceback.
        process = await asyncio.create_subprocess_exec(
            TURNOUT,
            "status",
            "--watch",
            "--interval",
            "0.1",
            "--admin-url",
            proxy.admin_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        assert (await asyncio.wait_for(process.stdout.readline(), 10)).strip()  # first frame
        process.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(process.communicate(), 10)
        assert process.returncode == 0, err
        assert err == b""


# Route changes


async def test_weights_shift_the_split_and_if_match_refuses_a_stale_write(
    backends: dict[str, Backend],
) -> None:
    with instance(backends) as proxy:
        shifted = await turnout(proxy.admin_url, "weights", "web", "stable=50", "canary=50")
        assert shifted.code == 0, shifted.err
        assert shifted.out == (
            "route web: stable 50 (50%), canary 50 (50%); previous stable 90, canary 10; "
            "revision 2\n"
        )
        assert (await admin(proxy, "route", "web"))["weights"] == {"stable": 50, "canary": 50}

        stale = await turnout(
            proxy.admin_url, "weights", "web", "stable=0", "canary=1", "--if-match", "1"
        )
        assert stale.code == 1
        assert "(HTTP 412)" in stale.err
        assert "revision 1 is stale; the current revision is 2" in stale.err
        assert stale.out == ""

        current = await turnout(
            proxy.admin_url,
            "weights",
            "web",
            "stable=75",
            "canary=25",
            "--if-match",
            '"2"',
            "--json",
        )
        assert current.code == 0, current.err
        assert current.json()["percentages"] == {"stable": 75.0, "canary": 25.0}


async def test_weights_naming_an_unknown_pool_fail_with_the_field_named(
    backends: dict[str, Backend],
) -> None:
    with instance(backends) as proxy:
        result = await turnout(
            proxy.admin_url, "weights", "web", "stable=80", "canary=10", "canry=10"
        )
        assert result.code == 1
        assert result.out == ""
        assert "turnout: The change would make an invalid routing state (HTTP 422)" in result.err
        assert "  - routes.web.weights.canry: unknown pool 'canry'" in result.err
        assert (await admin(proxy, "route", "web"))["revision"] == 1


async def test_a_pool_without_an_eligible_backend_needs_force(
    backends: dict[str, Backend],
) -> None:
    with instance(backends) as proxy:
        # The canary's only backend, and the canary takes 10 %: a drain must be forced.
        kept = await turnout(proxy.admin_url, "drain", "canary/canary-1")
        assert kept.code == 1
        assert "(HTTP 409)" in kept.err
        assert "  - pool: canary: no eligible backend" in kept.err
        assert "hint: add --force" in kept.err
        drained = await turnout(proxy.admin_url, "drain", "canary/canary-1", "--force")
        assert drained.code == 0, drained.err
        assert drained.out == "backend canary/canary-1: drain, healthy, not eligible, 0 in flight\n"

        refused = await turnout(proxy.admin_url, "weights", "web", "stable=0", "canary=1")
        assert refused.code == 1
        assert "(HTTP 409)" in refused.err
        assert "  - pool: canary: no eligible backend" in refused.err
        assert "hint: add --force" in refused.err

        forced = await turnout(proxy.admin_url, "weights", "web", "stable=0", "canary=1", "--force")
        assert forced.code == 0, forced.err
        enabled = await turnout(proxy.admin_url, "enable", "canary/canary-1")
        assert enabled.code == 0, enabled.err
        assert enabled.out == "backend canary/canary-1: ready, healthy, eligible, 0 in flight\n"
        assert await get(proxy) == (200, "canary")


async def test_switch_and_rollback_move_the_active_colour(backends: dict[str, Backend]) -> None:
    with instance(backends) as proxy:
        switched = await turnout(proxy.admin_url, "switch", "checkout", "green")
        assert switched.code == 0, switched.err
        assert switched.out == "route checkout: active green; previous blue; revision 2\n"
        assert await get(proxy, "/checkout") == (200, "green")

        # A deploy script may run the same switch twice: the second changes nothing.
        again = await turnout(proxy.admin_url, "switch", "checkout", "green")
        assert again.code == 0, again.err
        assert again.out == "route checkout: active green; previous blue; revision 2\n"

        back = await turnout(proxy.admin_url, "rollback", "checkout", "--json")
        assert back.code == 0, back.err
        assert back.json()["active"] == "blue"
        assert await get(proxy, "/checkout") == (200, "blue")


async def test_promote_abort_undo_and_the_history_of_them(backends: dict[str, Backend]) -> None:
    with instance(backends) as proxy:
        promoted = await turnout(proxy.admin_url, "promote", "web")
        assert promoted.code == 0, promoted.err
        assert promoted.out.startswith("route web: stable 0 (0%), canary 100 (100%);")
        assert await get(proxy) == (200, "canary")

        aborted = await turnout(proxy.admin_url, "abort", "web")
        assert aborted.code == 0, aborted.err
        assert aborted.out.startswith("route web: stable 100 (100%), canary 0 (0%);")
        assert await get(proxy) == (200, "stable")

        undone = await turnout(proxy.admin_url, "undo", "web", "1")
        assert undone.code == 0, undone.err
        assert undone.out.startswith("route web: stable 90 (90%), canary 10 (10%);")

        unknown = await turnout(proxy.admin_url, "undo", "web", "99")
        assert unknown.code == 1
        assert "That revision cannot be restored (HTTP 409)" in unknown.err

        history = await turnout(proxy.admin_url, "history", "--limit", "3")
        assert history.code == 0, history.err
        lines = history.out.splitlines()
        assert lines[0].split()[:6] == ["REVISION", "TIME", "(UTC)", "ACTOR", "ACTION", "TARGET"]
        assert [line.split()[0] for line in lines[1:]] == ["4", "3", "2"]
        assert "local  undo-to-1  route/web" in lines[1]
        assert lines[1].endswith("stable 100, canary 0 -> stable 90, canary 10")
        assert lines[3].endswith("stable 90, canary 10 -> stable 0, canary 100")

        document = (await turnout(proxy.admin_url, "history", "--json")).json()
        assert [change["action"] for change in document["changes"]] == [
            "undo-to-1",
            "abort",
            "promote",
            "start",
        ]


# Backends


async def test_drain_wait_returns_once_the_slow_request_in_flight_finished(
    backends: dict[str, Backend],
) -> None:
    finished: list[float] = []

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1.2)
        finished.append(time.monotonic())
        return web.Response(text="slow")

    slow_backend = await start_backend("slow", slow)
    try:
        routes = {"slow": {"path_prefix": "/slow", "weights": {"slow": 1}}, **ROUTES}
        pools = {"slow": [slow_backend.url]} | {n: [b.url] for n, b in backends.items()}
        with proxy_process(config(pools, routes)) as proxy:
            request = asyncio.create_task(get(proxy, "/slow"))
            await _until_inflight(proxy, "slow", 1)

            # slow-1 is the only backend of a pool taking traffic: --force.
            short = await turnout(
                proxy.admin_url, "drain", "slow/slow-1", "--timeout", "100ms", "--force"
            )
            assert short.code == 1
            assert "Requests still in flight at the deadline (HTTP 409)" in short.err
            assert "1 request(s) still in flight to slow/slow-1 after 0.1 s" in short.err
            assert not finished

            waited = await turnout(proxy.admin_url, "drain", "slow/slow-1", "--wait", "--force")
            assert waited.code == 0, waited.err
            returned = time.monotonic()
            assert waited.out == "backend slow/slow-1: drain, healthy, not eligible, 0 in flight\n"
            assert finished
            assert finished[0] <= returned
            assert await request == (200, "slow")
    finally:
        await slow_backend.stop()


async def _until_inflight(proxy: ProxyProcess, pool: str, count: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        view = await admin(proxy, "pool", pool)
        if sum(backend["inflight"] for backend in view["backends"]) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never {count} in flight to {pool}")


async def test_backends_add_and_remove_for_a_rolling_deployment(
    backends: dict[str, Backend],
) -> None:
    new = await start_backend("stable-new")
    try:
        with instance(backends) as proxy:
            added = await turnout(
                proxy.admin_url, "backends", "add", "stable", "stable-2", new.url, "--weight", "3"
            )
            assert added.code == 0, added.err
            lines = added.out.splitlines()
            assert lines[0] == "pool stable: 2 of 2 backend(s) eligible; revision 2"
            assert words(lines[3]) == f"stable stable-2 {new.url} 3 ready healthy yes 0"

            in_service = await turnout(proxy.admin_url, "backends", "remove", "stable/stable-1")
            assert in_service.code == 1
            assert "The backend still takes traffic (HTTP 409)" in in_service.err
            assert "hint: drain it first" in in_service.err

            assert (await turnout(proxy.admin_url, "drain", "stable/stable-1", "--wait")).code == 0
            removed = await turnout(
                proxy.admin_url, "backends", "remove", "stable/stable-1", "--json"
            )
            assert removed.code == 0, removed.err
            assert [b["name"] for b in removed.json()["backends"]] == ["stable-2"]
            assert await get(proxy, "/", **{"x-pool": "stable"}) == (200, "stable-new")

            forced = await turnout(
                proxy.admin_url, "backends", "remove", "stable/stable-2", "--force"
            )
            assert forced.code == 0, forced.err
            assert "pool stable: no backends" in forced.out
    finally:
        await new.stop()


# Instance


async def test_workers_and_reload(backends: dict[str, Backend]) -> None:
    with instance(backends) as proxy:
        workers = await turnout(proxy.admin_url, "workers")
        assert workers.code == 0, workers.err
        lines = workers.out.splitlines()
        assert lines[0] == "revision 1, 0 crash(es) since start"
        pid = (await asyncio.to_thread(proxy.worker_pids))[0]
        assert lines[2].split()[:4] == ["0", str(pid), "yes", "1"]

        # An unchanged file changes nothing: no new revision.
        same = await turnout(proxy.admin_url, "reload")
        assert same.code == 0, same.err
        assert same.out == "reloaded the configuration: revision 1\n"
        path = proxy.config_path
        path.write_text(path.read_text() + "\n[upstream]\nread_timeout = 12.0\n")
        reloaded = await turnout(proxy.admin_url, "reload")
        assert reloaded.code == 0, reloaded.err
        assert reloaded.out == "reloaded the configuration: revision 2\n"
        document = (await turnout(proxy.admin_url, "workers", "--json")).json()
        assert document["workers"][0]["revision"] == 2

        proxy.config_path.write_text(proxy.config_path.read_text() + "[nonsense]\n")
        invalid = await turnout(proxy.admin_url, "reload")
        assert invalid.code == 1
        assert "The configuration file is invalid; nothing was changed (HTTP 400)" in invalid.err
        assert "  - nonsense:" in invalid.err


async def test_a_token_comes_from_the_environment_and_is_never_shown(
    backends: dict[str, Backend],
) -> None:
    tokens = {"tokens": [{"name": "ci", "token": TOKEN}]}
    with instance(backends, admin=tokens) as proxy:
        anonymous = await turnout(proxy.admin_url, "status")
        assert anonymous.code == 1
        assert "turnout: Unauthorized (HTTP 401)" in anonymous.err
        assert "TURNOUT_ADMIN_TOKEN" in anonymous.err

        wrong = await turnout(proxy.admin_url, "status", token="not-the-token-at-all")
        assert wrong.code == 1
        assert "not-the-token-at-all" not in wrong.out + wrong.err

        switched = await turnout(proxy.admin_url, "switch", "checkout", "green", token=TOKEN)
        assert switched.code == 0, switched.err
        history = await turnout(proxy.admin_url, "history", "--limit", "1", token=TOKEN)
        assert words(history.out.splitlines()[1]).endswith(
            "ci switch route/checkout active blue -> green"
        )
        assert TOKEN not in switched.out + switched.err + history.out + history.err

        by_flag = await turnout(proxy.admin_url, "workers", "--token", TOKEN)
        assert by_flag.code == 0, by_flag.err


# Failures before or without the API


async def test_an_unreachable_admin_api_exits_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = await turnout(url, "status")
    assert result.code == 3
    assert result.err.startswith(
        f"turnout: cannot reach the admin API at {url}: Connection refused\n"
    )
    flag = await turnout(None, "workers", "--admin-url", url)
    assert flag.code == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("weights", "web", "stable=90", "canary=ten"), "'canary=ten': expected POOL=WEIGHT"),
        (("weights", "web", "stable90"), "'stable90': expected POOL=WEIGHT"),
        (("weights", "web", "stable=1", "stable=2"), "pool 'stable' given twice"),
        (("drain", "stable"), "'stable': expected POOL/BACKEND"),
        (("drain", "stable/stable-1", "--timeout", "soon"), "'soon': expected e.g. 60s"),
        (("undo", "web", "latest"), "'latest': expected a revision number"),
        (("status", "--count", "0"), "'0': expected a whole number >= 1"),
        (("switch", "checkout"), "the following arguments are required: POOL"),
    ],
)
async def test_a_malformed_command_line_exits_2_before_calling_the_api(
    args: tuple[str, ...], message: str
) -> None:
    # An unreachable URL: had the command called the API, it would have exited 3.
    result = await turnout(f"http://127.0.0.1:{free_port()}", *args)
    assert result.code == 2, result.err
    assert message in result.err


async def test_help_lists_every_admin_command_next_to_the_existing_ones() -> None:
    result = await turnout(None, "--help")
    assert result.code == 0, result.err
    listed = re.findall(r"^    (\S+)", result.out, re.MULTILINE)
    assert listed == [
        *("run", "check-config", "demo", "bench", "status", "weights", "switch", "rollback"),
        *("promote", "abort", "undo", "drain", "enable", "backends", "history", "workers", "fleet"),
        *("reload", "rollout", "roll"),
    ]


# The client on its own


def test_the_client_reports_a_refused_connection() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(AdminUnreachable) as raised:
        AdminClient(url).routes()
    error = raised.value
    assert isinstance(error, AdminError)
    assert str(error) == f"cannot reach the admin API at {url}: Connection refused"


def test_the_client_reports_an_api_that_does_not_answer() -> None:
    with socket.socket() as listener:
        # Listening but never accepting: the kernel completes the connection, nobody answers.
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(AdminUnreachable, match=r"no answer within 0\.2 s|timed out"):
            AdminClient(url, timeout=0.2).workers()


def test_the_client_keeps_the_problem_document_and_never_shows_the_token() -> None:
    raw = json.dumps(
        {
            "type": "urn:turnout:problem:invalid-change",
            "title": "The change would make an invalid routing state",
            "status": 422,
            "detail": "routes.web.weights.x: unknown pool 'x'",
            "errors": [{"field": "routes.web.weights.x", "message": "unknown pool 'x'"}],
        }
    ).encode()
    error = AdminError.from_response(422, "Unprocessable Entity", raw)
    assert (error.status, error.type) == (422, "urn:turnout:problem:invalid-change")
    assert error.errors == [{"field": "routes.web.weights.x", "message": "unknown pool 'x'"}]
    assert error.detail == "routes.web.weights.x: unknown pool 'x'"

    html = AdminError.from_response(502, "Bad Gateway", b"<html>bad gateway</html>")
    assert (html.status, html.title, html.detail) == (
        502,
        "Bad Gateway",
        "<html>bad gateway</html>",
    )

    assert TOKEN not in repr(AdminClient("http://127.0.0.1:9901", TOKEN))
