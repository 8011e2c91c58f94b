"""`turnout roll` and `turnout rollout status|pause|resume|abort|list` for pools: the command
lines (with the real parser), the body a roll sends, the text a pool rollout shows, the
examples; and runs against a real turnout: in place to the end with --wait, surge and its
abort, a name that is a route and a pool, a name that is neither."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from admin_support import api, backend_loop
from cli_support import turnout
from pool_rollout_support import STUCK, in_place_state, pools, surge_state
from rollout_support import known_evidence
from test_cli_examples import subparsers

from admin_api.cli import roll
from admin_api.cli.roll_render import render_every_rollout, render_pool_rollout
from admin_api.pool_rollout_views import pool_rollout_view
from helpers import ProxyProcess, proxy_process
from proxy.cli import _parser
from proxy.control.rolling.model import HookResult

__all__ = ["known_evidence"]

DEMO = tomllib.loads((Path(__file__).resolve().parents[2] / "config.example.toml").read_text())


def parse(line: str) -> argparse.Namespace:
    return _parser().parse_args(shlex.split(line)[1:])


@pytest.mark.parametrize(
    ("line", "body"),
    [
        ("turnout roll blue", {}),
        (
            "turnout roll blue --exec ./deploy.sh v2 --batch 2",
            {"mode": "in-place", "hook": {"command": ["./deploy.sh", "v2"]}, "batch": 2},
        ),
        (
            "turnout roll blue --hook-url https://deploy.test/h --hook-timeout 2m --no-auto-revert",
            {
                "mode": "in-place",
                "hook": {"url": "https://deploy.test/h", "timeout": 120},
                "autoRevert": False,
            },
        ),
        ("turnout roll blue --hook-timeout 90s", {"hook": {"timeout": 90}}),
        (
            "turnout roll blue --to blue-new-1=http://10.0.0.8:8080,blue-new-2=http://10.0.0.9:8080"
            " --to blue-new-3=https://10.0.0.10 --keep-old 10m",
            {
                "mode": "surge",
                "newBackends": [
                    {"name": "blue-new-1", "url": "http://10.0.0.8:8080"},
                    {"name": "blue-new-2", "url": "http://10.0.0.9:8080"},
                    {"name": "blue-new-3", "url": "https://10.0.0.10"},
                ],
                "keepOld": 600,
            },
        ),
        (
            "turnout roll blue --drain-timeout 30s --healthy-deadline 5m --min-healthy-time 500ms"
            " --alpha 0.05 --tolerance 2 --min-requests 100 --webhook https://hooks.test/x",
            {
                "drainTimeout": 30,
                "healthyDeadline": 300,
                "minHealthyTime": 0.5,
                "webhook": "https://hooks.test/x",
                "judge": {"alpha": 0.05, "tolerance": 2, "minRequests": 100},
            },
        ),
    ],
)
def test_a_roll_sends_only_what_it_was_given(line: str, body: dict[str, Any]) -> None:
    assert roll.start_body(parse(line)) == body


@pytest.mark.parametrize(
    "line",
    [
        "turnout roll",
        "turnout roll blue --exec",
        "turnout roll blue --exec ./deploy.sh --to n=http://a:1",
        "turnout roll blue --exec ./deploy.sh --hook-url http://a:1",
        "turnout roll blue --to blue-new-1",
        "turnout roll blue --to =http://a:1",
        "turnout roll blue --to n=10.0.0.8:80",
        "turnout roll blue --batch 0",
        "turnout roll blue --drain-timeout 0s",
        "turnout roll blue --alpha 1",
        "turnout rollout status",
        "turnout rollout promote blue --pool",  # a pool's rollout has no promote
    ],
)
def test_bad_command_lines_are_usage_errors(line: str) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(line)
    assert exited.value.code == 2


def test_pool_commands_take_pool_and_if_match() -> None:
    for verb in ("status", "pause", "resume", "abort"):
        args = parse(f"turnout rollout {verb} blue --pool")
        assert (args.route, args.pool) == ("blue", True)
    for verb in ("pause", "resume", "abort"):
        assert parse(f"turnout rollout {verb} blue --if-match 7").if_match == 7
    assert parse("turnout roll blue --exec ./d.sh --if-match '\"7\"'").if_match == 7


# What is shown


def test_status_shows_where_each_batch_is(known_evidence: None) -> None:
    view = pool_rollout_view(in_place_state()).model_dump(mode="json", by_alias=True)
    assert render_pool_rollout(view).splitlines() == [
        "rollout of pool blue: in-place, progressing",
        "  stage     2/3 holding",
        "  reason    batch 2/3 (blue-3, blue-4): healthy; readmitted with slow start, held and "
        "judged",
        "  batch 1   blue-1, blue-2: replaced",
        "  batch 2   blue-3, blue-4: replaced, holding now",
        "  batch 3   blue-5: not yet",
        "  verdict   inconclusive: 120 of 300 canary requests in this step",
        "  errors    new 6/640 (0.94 %) vs old 3/900 (0.33 %); evidence 4 of 100",
        "  hooks     4 run, the last 3:",
        "    replace blue-2: ok, exit status 0",
        "    replace blue-3: ok, exit status 0",
        "      | pulled v2",
        "      | restarted",
        "    replace blue-4: ok, exit status 0",
        "  revision  41 (last transition 40, 2023-11-14T22:14:20.500+00:00)",
    ]


def test_status_of_a_revert_shows_the_failed_hooks_output(known_evidence: None) -> None:
    state = in_place_state()
    rollout = dataclasses.replace(
        state.rollout,
        batch=2,
        stage="revert-draining",
        replaced=("blue-1", "blue-2", "blue-3"),
        reverting=("blue-3", "blue-2", "blue-1"),
        cause="hook",
        reason="reverting blue-3 (newest first) after batch 3/3 (blue-5): hook failed",
    )
    failed = HookResult("blue-5", "replace", False, "exit status 3", ("pulling", "no image"))
    view = pool_rollout_view(
        dataclasses.replace(state, rollout=rollout, hooks=(*state.hooks, failed))
    ).model_dump(mode="json", by_alias=True)
    lines = render_pool_rollout(view).splitlines()
    assert "  stage     revert draining" in lines
    assert "  cause     hook" in lines
    assert "  batch 1   blue-1, blue-2: to revert" in lines
    assert "  batch 2   blue-3, blue-4: reverting now" in lines
    assert "  batch 3   blue-5: old version" in lines
    assert lines[-4:-1] == [
        "    replace blue-5: failed, exit status 3",
        "      | pulling",
        "      | no image",
    ]


def test_status_of_a_surge_rolled_back() -> None:
    view = pool_rollout_view(surge_state()).model_dump(mode="json", by_alias=True)
    text = render_pool_rollout(view)
    assert text.startswith("rollout of pool blue: surge, aborted\n")
    assert "  batch 1   blue-1 -> blue-new-1: rolled back" in text
    assert "  cause     manual" in text
    assert "hooks" not in text


def test_a_strange_document_shows_less() -> None:
    assert render_pool_rollout({}).startswith("rollout of pool None: ?, None")
    assert render_pool_rollout({"batches": "x", "hooks": [3], "evidence": [], "verdict": 1})
    assert render_pool_rollout({"batches": [["a"], 5], "newBatches": [[]], "mode": "surge"})


def test_list_shows_route_and_pool_rollouts(known_evidence: None) -> None:
    pools_ = [
        pool_rollout_view(state).model_dump(mode="json", by_alias=True)
        for state in (in_place_state(), surge_state())
    ]
    lines = render_every_rollout({"revision": 41, "rollouts": [], "poolRollouts": pools_})
    assert lines.splitlines()[0] == "revision 41"
    assert lines.splitlines()[1].split() == ["POOL", "MODE", "PHASE", "BATCH", "VERDICT", "REASON"]
    assert lines.splitlines()[2].split()[:6] == [
        "blue",
        "in-place",
        "progressing",
        "2/3",
        "holding",
        "inconclusive",
    ]
    assert render_every_rollout({"revision": 3, "rollouts": [], "poolRollouts": []}) == (
        "revision 3: no rollouts"
    )


# Examples


@pytest.mark.parametrize("line", roll.EXAMPLES)
def test_examples_parse_and_name_the_demo(line: str) -> None:
    args = parse(line)
    name = args.pool if line.startswith("turnout roll ") else args.route
    assert name in DEMO["pools"], line
    existing = {b["name"] for pool in DEMO["pools"].values() for b in pool["backends"]}
    for new in getattr(args, "to", None) or []:
        assert new["name"] not in existing, line


def test_roll_shows_its_examples() -> None:
    (parser,) = [child for name, child in subparsers(_parser()) if name == "roll"]
    shown = parser.format_help()
    assert all(line in shown for line in roll.EXAMPLES)


# Against a real turnout


@dataclass(frozen=True)
class Running:
    proxy: ProxyProcess
    new_url: str
    """Surge: a backend in no pool yet, the new version of `red`."""

    @property
    def url(self) -> str:
        return self.proxy.admin_url


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    with backend_loop() as loop:
        data = pools(loop, {"blue": 2, "green": 2, "red": 1, "gold": 2})
        # A route named as a pool: `turnout rollout status blue` means the route.
        data["routes"]["blue"] = {"path_prefix": "/blue", "weights": {"blue": 1}}
        new = loop.start("red-new-1")
        with proxy_process(data) as proxy:
            yield Running(proxy, new.url)


async def test_roll_in_place_and_wait_until_done(running: Running, tmp_path: Path) -> None:
    # A hook as an operator writes one: a script file (--exec reads what follows it up to the
    # next option, so `python -c` would be taken for an option of turnout's).
    deploy = tmp_path / "deploy.sh"
    deploy.write_text('#!/bin/sh\necho "deploying $TURNOUT_BACKEND"\nsleep 1\n')
    deploy.chmod(0o755)
    argv = ["roll", "green", "--exec", str(deploy), "--min-healthy-time", "500ms"]
    done = await turnout(running.url, *argv, "--wait", "--interval", "200ms")
    assert done.code == 0, done
    assert "rollout of pool green: in-place, promoted" in done.out
    assert "  batch 2   green-2: replaced" in done.out
    assert "    replace green-2: ok, exit status 0" in done.out
    assert "      | deploying green-2" in done.out
    listed = await turnout(running.url, "rollout", "list")
    assert listed.code == 0, listed
    assert [line.split()[:3] for line in listed.out.splitlines() if line.startswith("green")] == [
        ["green", "in-place", "promoted"]
    ]


async def test_a_failing_hook_ends_the_wait_with_1_and_its_output(
    running: Running, tmp_path: Path
) -> None:
    deploy = tmp_path / "deploy.sh"
    deploy.write_text(
        "#!/bin/sh\necho pulling v2\necho 'error: no such image' >&2\nsleep 1\nexit 4\n"
    )
    deploy.chmod(0o755)
    argv = ["roll", "gold", "--exec", str(deploy), "--no-auto-revert", "--wait"]
    done = await turnout(running.url, *argv, "--interval", "200ms")
    assert done.code == 1, done
    final = done.out.split("rollout of pool gold: ")[-1]
    assert final.startswith("in-place, aborted\n")
    assert "  cause     hook" in final
    assert "    replace gold-1: failed, exit status 4" in final
    assert "      | pulling v2\n      | error: no such image" in final


async def test_surge_then_status_and_abort_by_the_pools_name(running: Running) -> None:
    new = running.new_url
    started = await turnout(
        running.url, "roll", "red", "--to", f"red-new-1={new}", "--min-healthy-time", "10m"
    )
    assert started.code == 0, started
    assert started.out.startswith("rollout of pool red: surge, progressing\n")
    assert "red-1 -> red-new-1" in started.out

    status = await turnout(running.url, "rollout", "status", "red", "--json")
    assert status.code == 0, status
    assert (status.json()["pool"], status.json()["mode"]) == ("red", "surge")

    aborted = await turnout(running.url, "rollout", "abort", "red")
    assert aborted.code == 0, aborted
    assert "rollout of pool red: surge, aborted" in aborted.out
    assert "  cause     manual" in aborted.out
    # A finished rollout takes no more commands: the API's 409, exit 1.
    again = await turnout(running.url, "rollout", "pause", "red")
    assert again.code == 1, again
    assert "(HTTP 409)" in again.err


async def test_a_name_that_is_a_route_and_a_pool(running: Running) -> None:
    admin = api(running.proxy)
    body = {"hook": {"command": STUCK}, "minHealthyTime": 0.5}
    admin.call("POST", "/v1/pools/blue/rollout", body).ok(201)
    # The route comes first: route blue has no rollout.
    route = await turnout(running.url, "rollout", "status", "blue")
    assert route.code == 1, route
    assert "Unknown rollout (HTTP 404)" in route.err
    pool = await turnout(running.url, "rollout", "status", "blue", "--pool")
    assert pool.code == 0, pool
    assert pool.out.startswith("rollout of pool blue: in-place, progressing\n")
    paused = await turnout(running.url, "rollout", "pause", "blue", "--pool", "--json")
    assert paused.code == 0, paused
    assert paused.json()["phase"] == "paused"
    aborted = await turnout(running.url, "rollout", "abort", "blue", "--pool")
    assert aborted.code == 0, aborted
    assert "cause     manual" in aborted.out


async def test_a_name_that_is_neither_exits_1_saying_so(running: Running) -> None:
    for argv in (("status", "nosuch"), ("abort", "nosuch"), ("status", "nosuch", "--pool")):
        done = await turnout(running.url, "rollout", *argv)
        assert done.code == 1, done
        assert "(HTTP 404)" in done.err
    done = await turnout(running.url, "rollout", "status", "nosuch")
    assert "no route or pool named 'nosuch'" in done.err
    refused = await turnout(running.url, "roll", "red", "--batch", "0")
    assert refused.code == 2, refused
