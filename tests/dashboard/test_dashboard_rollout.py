"""A canary rollout on the dashboard: its commands from the page (pause, resume, abort), and the
reason in words, step and cause of a rollout the judge aborted because the canary failed."""

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
    _, stable = start(loop, "stable")
    behaviour, canary = start(loop, "canary")
    data = config(
        {"stable": [stable], "canary": [canary]},
        {"web": {"weights": {"stable": 100, "canary": 0}}},
    )
    with running(data, paths=("/",)) as turnout:
        yield turnout, behaviour


def begin(turnout: Turnout, step_time: float) -> None:
    spec = {
        "canary": "canary",
        "steps": [20, 50, 100],
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
    page.goto(turnout.url)
    live(page)
    begin(turnout, step_time=60)
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
    page.goto(turnout.url)
    live(page)
    begin(turnout, step_time=60)
    done = wait_for(
        lambda: (r := rollout(turnout))["phase"] == "aborted" and r, timeout=20, what="aborted"
    )
    assert done["cause"] == "errors", done
    card = page.locator("[data-rollout=web]")
    # The reason in words, as the API gives it ("aborted at step 1/3 (20 %): canary ..."),
    # the step where it stopped, and the cause.
    expect(card.locator(".reason")).to_have_text(done["reason"])
    assert "canary" in done["reason"], done["reason"]
    expect(card).to_contain_text("✖ aborted")
    expect(card).to_contain_text("cause: errors")
    expect(card.locator(".step-stopped")).to_contain_text("20 %")
    # The evidence chart says the same in its text alternative.
    chart = card.get_by_role("img", name="Evidence against the new version", exact=False)
    expect(chart).to_have_attribute("aria-label", re.compile(r"the rollout aborts at \d+"))
    expect(page.locator("[data-route=web] [data-pool=canary] .weight")).to_have_text("0 (0.0 %)")
