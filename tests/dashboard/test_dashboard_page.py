"""The dashboard in a real browser, reading the live state: it loads clean under its CSP, shows
every route, pool and worker, and follows a change made elsewhere (the CLI) within 2 s."""

from __future__ import annotations

import os
import re
import subprocess
import time

from dashboard_support import OPS, Console, Turnout, frames_after, live
from playwright.sync_api import Page, Route, expect

from helpers import TURNOUT


def test_the_page_loads_with_no_console_errors(page: Page, console: Console, shop: Turnout) -> None:
    response = page.goto(shop.url)
    assert response is not None
    assert response.status == 200
    # The page runs under the strict policy; a violation would be a console error below.
    assert "script-src 'self'" in response.headers["content-security-policy"]
    live(page)
    frames_after(page, 1)
    expect(page.locator("[data-route=web]")).to_be_visible()
    assert console.errors == []


def test_a_csp_violation_would_be_caught(page: Page, console: Console, shop: Turnout) -> None:
    # The control for the test above: an inline style, which the policy forbids, is reported.
    page.goto(shop.proxy.admin_url + "/ui/")
    live(page)
    assert console.errors == []
    page.evaluate("document.body.setAttribute('style', 'color: red')")
    # Console messages arrive from the browser asynchronously: wait for one, with a deadline.
    deadline = time.monotonic() + 5
    while not any("Content Security Policy" in error for error in console.errors):
        assert time.monotonic() < deadline, console.errors
        page.wait_for_timeout(20)


def test_a_stream_that_ends_is_opened_again_after_the_servers_retry_delay(
    page: Page, shop: Turnout
) -> None:
    opened: list[float] = []

    def first_ends(route: Route) -> None:
        opened.append(time.monotonic())
        if len(opened) == 1:
            # As a restarting server would: a stream that ends at once, asking for 300 ms.
            headers = {"Content-Type": "text/event-stream"}
            route.fulfill(status=200, headers=headers, body="retry: 300\n\n")
        else:
            route.continue_()

    page.route("**/v1/events/stream", first_ends)
    page.goto(shop.url)
    live(page)
    assert len(opened) >= 2, opened
    # The server's delay, not the page's default of 2 s.
    assert 0.25 <= opened[1] - opened[0] < 1.5, opened


def test_it_shows_every_route_with_its_split_and_colours(page: Page, shop: Turnout) -> None:
    page.goto(shop.url)
    live(page)
    web = page.locator("[data-route=web]")
    expect(web.get_by_role("heading", name="web")).to_be_visible()
    expect(web.locator("[data-pool=stable] .weight")).to_have_text("90 (90.0 %)")
    expect(web.locator("[data-pool=canary] .weight")).to_have_text("10 (10.0 %)")
    expect(web.locator(".split")).to_have_text("stable 90.0 % · canary 10.0 %")
    shop_card = page.locator("[data-route=shop]")
    expect(shop_card.locator(".active-colour")).to_have_text("blue")
    expect(shop_card.locator("[data-pool=blue] .role")).to_have_text("● active")
    # Green is the previous colour once a switch went back to blue (the instance is shared).
    previous = shop.api.get("/v1/routes/shop")["previous"]
    green = "◐ previous" if previous == "green" else "○ standby"
    expect(shop_card.locator("[data-pool=green] .role")).to_have_text(green)
    expect(shop_card.get_by_role("button", name="Switch to green")).to_be_enabled()
    # Traffic flows: the active colour's observed share, request rate and p99 are figures (not
    # the dash that stands for no data), and its sparkline has a line.
    blue = shop_card.locator("[data-pool=blue]")
    expect(blue.locator(".observed")).to_have_text(re.compile(r"^\d+\.\d % \(\d+\)$"))
    expect(blue.locator(".spark-rate").locator("..").locator(".figure")).to_have_text(
        re.compile(r"^\d+(\.\d)?/s$")
    )
    expect(blue.locator("td.num").last).to_have_text(re.compile(r"^\d+(\.\d)? (ms|s)$"))
    expect(blue.locator(".spark-rate .spark-line")).to_have_attribute("d", re.compile(r"^M"))


def test_it_shows_pools_backends_history_and_workers(page: Page, shop: Turnout) -> None:
    page.goto(shop.url)
    live(page)
    backend = page.locator("article[data-pool=canary] [data-backend=canary-1]")
    expect(backend.locator(".admin-state")).to_contain_text("ready")
    expect(backend.locator(".health")).to_contain_text("healthy")
    expect(backend.get_by_role("button", name="Drain canary-1")).to_be_visible()
    newest = shop.api.get("/v1/history?limit=1")["changes"][0]
    shown = page.locator(f"#history [data-revision='{newest['revision']}']")
    expect(shown).to_contain_text(newest["action"])
    pid = str(shop.api.get("/v1/workers")["workers"][0]["pid"])
    expect(page.locator("#workers")).to_contain_text(pid)


def test_a_weight_change_made_with_the_cli_shows_within_2_seconds(
    page: Page, shop: Turnout
) -> None:
    page.goto(shop.url)
    live(page)
    canary = page.locator("[data-route=web] [data-pool=canary] .weight")
    expect(canary).to_have_text("10 (10.0 %)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TURNOUT_")}
    env["TURNOUT_ADMIN_URL"] = shop.proxy.admin_url
    env["TURNOUT_ADMIN_TOKEN"] = OPS
    try:
        subprocess.run(
            [TURNOUT, "weights", "web", "stable=70", "canary=30"], env=env, check=True, timeout=30
        )
        # The CLI returned: every worker routes by the new weights. The page follows in 2 s.
        changed = time.monotonic()
        expect(canary).to_have_text("30 (30.0 %)", timeout=2000)
        assert time.monotonic() - changed < 2.0
        split = page.locator("[data-route=web] .split")
        expect(split).to_have_text("stable 70.0 % · canary 30.0 %")
        expect(page.locator("#history")).to_contain_text("set-weights")
    finally:
        weights = {"weights": {"stable": 90, "canary": 10}}
        shop.api.call("PUT", "/v1/routes/web/weights", weights).ok()
