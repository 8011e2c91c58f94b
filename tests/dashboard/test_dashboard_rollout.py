"""Rollouts on the dashboard: a canary rollout's commands from the page (pause, resume, abort),
the reason in words, step and cause of one the judge aborted because the canary failed, and a
pool rollout whose replace hook failed: its batches, reason and the hook's output."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from admin.admin_support import BackendLoop
from dashboard_support import Turnout, confirm, live, running, wait_for
from playwright.sync_api import Page, expect
from rollout.traffic_support import Switchable, start

from helpers import config

Canary = tuple[Turnout, Switchable]


@pytest.fixture(scope="module")
def canary(loop: BackendLoop) -> Iterator[Canary]:
    stable = [start(loop, "stable")[1] for _ in range(2)]
    behaviour, canary = start(loop, "canary")
    data = config(
        {"stable": stable, "canary": [canary]},
        {"web": {"weights": {"stable": 100, "canary": 0}}},
    )
    # A pool rollout waits on active checks; only `stable` has them (a failing canary must be
    # judged on its answers, not taken out by its probes).
    data["pools"]["stable"]["health"] = {"enabled": True, "interval": 0.2, "path": "/"}
    with running(data, paths=("/",)) as turnout:
        yield turnout, behaviour


def begin(turnout: Turnout, step_time: float, steps: tuple[int, ...] = (20, 50, 100)) -> None:
    spec = {
        "canary": "canary",
        "steps": list(steps),
        "stepTime": step_time,
        "judge": {"minRequests": 20},
    }
    turnout.api.call("POST", "/v1/routes/web/rollout", spec).ok(201)


def rollout(turnout: Turnout) -> dict[str, Any]:
    status: dict[str, Any] = turnout.api.get("/v1/routes/web/rollout")
    return status


def command(page: Page, verb: str) -> None:
    page.locator("[data-rollout=web]").get_by_role("button", name=f"{verb} rollout").click()
    confirm(page, verb)


def test_pause_resume_and_abort_from_the_page(page: Page, canary: Canary) -> None:
    turnout, _ = canary
    begin(turnout, step_time=60)
    page.goto(turnout.url)
    live(page)
    card = page.locator("[data-rollout=web]")
    expect(card.locator(".step-current")).to_contain_text("20 %")
    command(page, "Pause")
    wait_for(lambda: rollout(turnout)["phase"] == "paused", what="paused")
    expect(card).to_contain_text("‖ paused")
    command(page, "Resume")
    wait_for(lambda: rollout(turnout)["phase"] == "progressing", what="progressing again")
    # The next click names the revision on screen: wait for the frame that shows the resume
    # (clicking sooner would be refused with 412, rightly).
    expect(card).to_contain_text("▶ progressing")
    command(page, "Abort")
    done = wait_for(lambda: (r := rollout(turnout))["phase"] == "aborted" and r, what="aborted")
    assert done["cause"] == "manual", done
    expect(card.locator(".reason")).to_have_text(done["reason"])
    expect(card.get_by_role("button", name="Abort rollout")).to_have_count(0)


def test_the_reason_of_a_rollout_the_judge_aborted(page: Page, canary: Canary) -> None:
    turnout, behaviour = canary
    behaviour.failing = True
    begin(turnout, step_time=60, steps=(50, 100))  # half the traffic: judged sooner
    page.goto(turnout.url)
    live(page)
    done = wait_for(
        lambda: (r := rollout(turnout))["phase"] == "aborted" and r, timeout=20, what="aborted"
    )
    assert done["cause"] == "errors", done
    card = page.locator("[data-rollout=web]")
    # The reason in words, as the API gives it ("aborted at step 1/2 (50 %): canary ..."),
    # the step where it stopped, and the cause.
    expect(card.locator(".reason")).to_have_text(done["reason"])
    assert "canary" in done["reason"], done["reason"]
    expect(card).to_contain_text("✖ aborted")
    expect(card).to_contain_text("cause: errors")
    expect(card.locator(".step-stopped")).to_contain_text("50 %")
    # The evidence chart says the same in its text alternative.
    chart = card.get_by_role("img", name="Evidence against the new version", exact=False)
    expect(chart).to_have_attribute("aria-label", re.compile(r"the rollout aborts at \d+"))
    expect(page.locator("[data-route=web] [data-pool=canary] .weight")).to_have_text("0 (0.0 %)")


# Prints what it does, and fails replacing (exit 3) but not reverting.
HOOK = [
    "sh",
    "-c",
    'echo "$TURNOUT_ACTION $TURNOUT_BACKEND"; '
    '[ "$TURNOUT_ACTION" = revert ] || { echo "image not found" >&2; exit 3; }',
]


def test_a_pool_rollout_whose_hook_failed(page: Page, canary: Canary) -> None:
    turnout, _ = canary
    spec = {"mode": "in-place", "batch": 1, "hook": {"command": HOOK}}
    turnout.api.call("POST", "/v1/pools/stable/rollout", spec).ok(201)
    page.goto(turnout.url)
    live(page)

    def ended() -> dict[str, Any] | None:
        status: dict[str, Any] = turnout.api.get("/v1/pools/stable/rollout")
        return status if status["phase"] == "aborted" and not status["reverting"] else None

    done = wait_for(ended, timeout=20, what="the pool rollout aborted and reverted")
    assert done["cause"] == "hook", done
    card = page.locator("[data-pool-rollout=stable]")
    expect(card.locator(".reason")).to_have_text(done["reason"])
    expect(card).to_contain_text("cause: hook")
    expect(card.locator(".step-stopped")).to_contain_text("batch 1: stable-1")
    expect(card.locator(".step-pending")).to_contain_text("batch 2: stable-2")
    # The failed replace, with its output, as well as the revert that followed it.
    expect(card.locator(".hook-failed")).to_contain_text(
        "replace stable-1 ✖ failed (exit status 3)"
    )
    expect(card.locator(".hook-failed .hook-output")).to_have_text(
        "replace stable-1\nimage not found"
    )
    expect(card.locator(".hook-last")).to_contain_text("revert stable-1 ✔ succeeded")
