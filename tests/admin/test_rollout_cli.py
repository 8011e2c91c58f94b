"""`turnout rollout ...`: the command lines (table-driven, with the real parser), the request
body a start sends, the text a status shows, and the examples; one run against a real turnout
for what it refuses before its control service is asked."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

import pytest
from admin_support import backend_loop, shop_and_web
from cli_support import turnout
from rollout_support import blue_green_state, canary_state, known_evidence
from test_cli_examples import check, subparsers

from admin_api.cli import rollout
from admin_api.cli.rollout_render import render_rollout, render_rollouts, step_text
from admin_api.rollout_views import rollout_view
from helpers import proxy_process
from proxy.cli import _parser

__all__ = ["known_evidence"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30), ("30s", 30), ("2m", 120), ("1h", 3600), ("1.5m", 90), ("500ms", 0.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert rollout.duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "0", "0s", "2d", "-1", "1e3", "25h", "m", "\uff12s"]
)  # a fullwidth 2
def test_bad_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        rollout.duration(text)


@pytest.mark.parametrize(
    ("text", "steps"), [("5,25,50,100", [5, 25, 50, 100]), ("100", [100]), ("1, 2", [1, 2])]
)
def test_steps(text: str, steps: list[int]) -> None:
    assert rollout.steps(text) == steps


@pytest.mark.parametrize("text", ["", "5,,25", "25,5", "5,5", "0,50", "50,101", "5;25", "a"])
def test_bad_steps(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        rollout.steps(text)


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("/healthz", {"method": "GET", "path": "/healthz"}),
        ("GET /healthz 200", {"method": "GET", "path": "/healthz", "status": 200}),
        ("head /ready 204", {"method": "HEAD", "path": "/ready", "status": 204}),
        (
            "GET /healthz 200 status ok",
            {"method": "GET", "path": "/healthz", "status": 200, "bodyContains": "status ok"},
        ),
    ],
)
def test_prechecks(text: str, check: dict[str, Any]) -> None:
    assert rollout.precheck(text) == check


@pytest.mark.parametrize("text", ["", "GET", "GET healthz", "GET /x 99", "G-T /x"])
def test_bad_prechecks(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        rollout.precheck(text)


def parse(line: str) -> argparse.Namespace:
    return _parser().parse_args(shlex.split(line)[1:])


@pytest.mark.parametrize(
    ("line", "body"),
    [
        ("turnout rollout start web", {}),
        (
            "turnout rollout start web --canary canary --steps 5,25,50,100 --step-time 2m",
            {"strategy": "canary", "canary": "canary", "steps": [5, 25, 50, 100], "stepTime": 120},
        ),
        (
            "turnout rollout start checkout --to green --watch 5m --precheck 'GET /healthz 200'"
            " --precheck /ready",
            {
                "strategy": "blue-green",
                "to": "green",
                "watch": 300,
                "prechecks": [
                    {"method": "GET", "path": "/healthz", "status": 200},
                    {"method": "GET", "path": "/ready"},
                ],
            },
        ),
        (
            "turnout rollout start web --max-step-time 10m --on-inconclusive abort --alpha 0.01"
            " --tolerance 1.5 --min-requests 300 --webhook https://hooks.test/x"
            " --no-eligible-timeout 45s",
            {
                "maxStepTime": 600,
                "onInconclusive": "abort",
                "noEligibleTimeout": 45,
                "webhook": "https://hooks.test/x",
                "judge": {"alpha": 0.01, "tolerance": 1.5, "minRequests": 300},
            },
        ),
    ],
)
def test_a_start_sends_only_what_it_was_given(line: str, body: dict[str, Any]) -> None:
    assert rollout.start_body(parse(line)) == body


@pytest.mark.parametrize(
    "line",
    [
        "turnout rollout start web --canary canary --to green",
        "turnout rollout start web --steps 50,25",
        "turnout rollout start web --alpha 1",
        "turnout rollout start web --tolerance 1",
        "turnout rollout start web --on-inconclusive wait",
        "turnout rollout start",
        "turnout rollout pause",
        "turnout rollout status web --count 0",
        "turnout rollout frobnicate web",
    ],
)
def test_bad_command_lines_are_usage_errors(line: str) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(line)
    assert exited.value.code == 2


def test_the_write_commands_take_if_match() -> None:
    for verb in ("start", "pause", "resume", "promote", "abort"):
        assert parse(f"turnout rollout {verb} web --if-match '\"7\"'").if_match == 7


# What is shown


def test_status_shows_one_block(known_evidence: None) -> None:
    view = rollout_view(canary_state()).model_dump(mode="json", by_alias=True)
    assert render_rollout(view).splitlines() == [
        "rollout web: canary, progressing",
        "  pools     canary against stable; now stable 75, canary 25",
        "  step      2/4 (25 %)",
        "  reason    step 2 (25 %): waiting for 300 canary requests (120 so far)",
        "  verdict   inconclusive: 120 of 300 canary requests in this step",
        "  errors    new 26/640 (4.1 %) vs old 40/4000 (1 %); evidence 8 of 200",
        "  latency   slow above 0.25 s: new 70/640 (11 %) vs old 400/4000 (10 %); "
        "evidence 1 of 200",
        "  requests  120 in this step (at least 300 to call it not worse)",
        "  revision  41 (last transition 40, 2023-11-14T22:15:20.500+00:00)",
    ]


def test_status_of_blue_green_and_of_an_abort(known_evidence: None) -> None:
    bg = rollout_view(blue_green_state()).model_dump(mode="json", by_alias=True)
    text = render_rollout(bg)
    assert "  colours   blue -> green (active now green)" in text
    assert "  step      watching green" in text
    assert "not calibrated: new 0/0 vs old 0/0" in text
    assert step_text({**bg, "step": 0}) == "pre-checks"
    aborted = rollout_view(canary_state("aborted", cause="errors"))
    assert "  cause     errors" in render_rollout(aborted.model_dump(mode="json", by_alias=True))


def test_status_of_a_strange_document_shows_less() -> None:
    assert render_rollout({}).startswith("rollout None: ?, None")
    assert render_rollout({"steps": "x", "evidence": {"errors": 3}, "verdict": []})


def test_list_shows_a_table(known_evidence: None) -> None:
    views = [
        rollout_view(state).model_dump(mode="json", by_alias=True)
        for state in (blue_green_state(), canary_state())
    ]
    lines = render_rollouts({"revision": 41, "rollouts": views}).splitlines()
    assert lines[0] == "revision 41"
    assert lines[1].split() == ["ROUTE", "STRATEGY", "PHASE", "STEP", "VERDICT", "REASON"]
    assert lines[3].split()[:5] == ["web", "canary", "progressing", "2/4", "(25"]
    assert render_rollouts({"revision": 3, "rollouts": []}) == "revision 3: no rollouts"


# Examples


@pytest.mark.parametrize("line", [line for lines in rollout.EXAMPLES.values() for line in lines])
def test_examples_parse_and_name_the_demo(line: str) -> None:
    check(line)


def test_every_subcommand_shows_its_examples() -> None:
    (parser,) = [child for name, child in subparsers(_parser()) if name == "rollout"]
    shown = {name: child.format_help() for name, child in subparsers(parser)}
    assert set(shown) == set(rollout.EXAMPLES)
    for name, lines in rollout.EXAMPLES.items():
        assert all(line in shown[name] for line in lines), name


# Against a real turnout


async def test_an_unknown_route_exits_1_with_the_problem() -> None:
    with backend_loop() as loop, proxy_process(shop_and_web(loop)) as proxy:
        done = await turnout(proxy.admin_url, "rollout", "status", "nosuch")
        assert done.code == 1, done
        assert "Unknown route (HTTP 404)" in done.err
        done = await turnout(proxy.admin_url, "rollout", "start", "web", "--steps", "25,5")
        assert done.code == 2, done
        assert "strictly increasing" in done.err
