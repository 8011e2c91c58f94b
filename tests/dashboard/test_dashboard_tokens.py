"""The dashboard with admin tokens: the page itself needs none, its data does. It asks for a
token once (a form in the page), keeps it in the tab's sessionStorage (never a URL or a cookie)
and sends it as a bearer token; a read-only token watches, and its actions are refused by the
API with a 403 the page shows in words."""

from __future__ import annotations

from dashboard_support import OPS, VIEWER, Console, Turnout, confirm, live
from playwright.sync_api import Page, expect


def sign_in(page: Page, token: str) -> None:
    form = page.get_by_role("region", name="Admin token")
    expect(form).to_be_visible()
    page.get_by_label("Token", exact=True).fill(token)
    page.get_by_role("button", name="Use token").click()


def test_the_page_asks_for_a_token_once_and_keeps_it_in_the_tab(
    fresh_page: Page, console: Console, shop: Turnout
) -> None:
    page = fresh_page
    page.goto(shop.url)
    form = page.get_by_role("region", name="Admin token")
    expect(form).to_be_visible()
    expect(page.locator("#connection")).to_have_text("○ Needs a token")
    expect(page.locator("[data-route]")).to_have_count(0)

    sign_in(page, "not-a-token")
    expect(page.get_by_role("status")).to_contain_text("That token was refused")
    expect(form).to_be_visible()

    sign_in(page, OPS)
    live(page)
    expect(form).to_be_hidden()
    expect(page.locator("[data-route=shop] .active-colour")).to_have_text("blue")
    assert page.evaluate("sessionStorage.getItem('turnout.token')") == OPS
    assert page.context.cookies() == []
    assert OPS not in page.url
    # Kept for the tab: a reload reads the stream again without asking.
    page.reload()
    live(page)
    expect(form).to_be_hidden()
    # The only console errors are the two refused stream requests (no token, a wrong one).
    assert len(console.errors) == 2, console.errors
    assert all("401" in error for error in console.errors), console.errors


def test_a_read_only_token_watches_but_its_action_is_refused(
    fresh_page: Page, shop: Turnout
) -> None:
    page = fresh_page
    page.goto(shop.url)
    sign_in(page, VIEWER)
    live(page)
    revision = shop.api.get("/v1/routes")["revision"]
    page.locator("[data-route=shop]").get_by_role("button", name="Switch to green").click()
    confirm(page, "Switch to green")
    message = page.get_by_role("status")
    expect(message).to_contain_text("Error:")
    expect(message).to_contain_text("(403)")
    expect(message).to_contain_text("viewer")
    assert VIEWER not in message.inner_text()
    assert shop.api.get("/v1/routes/shop")["active"] == "blue"
    assert shop.api.get("/v1/routes")["revision"] == revision
