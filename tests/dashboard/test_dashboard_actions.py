"""Actions from the page, each confirmed in a dialog and sent through the public API with the
shown frame's revision in If-Match: switch and roll back, set weights, drain and enable a
backend; and a write over a state the page no longer shows is refused and said in words."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dashboard_support import Turnout, confirm, live, wait_for
from playwright.sync_api import Page, expect


@pytest.fixture(autouse=True)
def put_back(shop: Turnout) -> Iterator[None]:
    """The shared instance as it was, whatever a test did to it (or failed to undo)."""
    yield
    call = shop.api.call
    call("PUT", "/v1/routes/web/weights", {"weights": {"stable": 90, "canary": 10}}).ok()
    if active(shop) != "blue":
        call("POST", "/v1/routes/shop/switch", {"to": "blue"}).ok()
    call("PATCH", "/v1/pools/green/backends/green-1", {"adminState": "ready"}).ok()


def active(shop: Turnout) -> str:
    colour: str = shop.api.get("/v1/routes/shop")["active"]
    return colour


def test_a_switch_and_a_rollback_from_the_page(page: Page, shop: Turnout) -> None:
    page.goto(shop.url)
    live(page)
    card = page.locator("[data-route=shop]")
    card.get_by_role("button", name="Switch to green").click()
    confirm(page, "Switch to green")
    wait_for(lambda: active(shop) == "green", what="green active")
    expect(card.locator(".active-colour")).to_have_text("green")
    expect(card.locator(".previous-colour")).to_have_text("blue")
    expect(page.get_by_role("status")).to_contain_text("shop switched to green")
    change = shop.api.get("/v1/history?limit=1")["changes"][0]
    # Through the API with the page's bearer token: recorded under the token's name.
    assert (change["action"], change["target"], change["actor"]) == ("switch", "route/shop", "ops")

    card.get_by_role("button", name="Roll back").click()
    confirm(page, "Roll back")
    wait_for(lambda: active(shop) == "blue", what="blue active again")
    expect(card.locator(".active-colour")).to_have_text("blue")


def test_a_cancelled_dialog_changes_nothing(page: Page, shop: Turnout) -> None:
    page.goto(shop.url)
    live(page)
    revision = shop.api.get("/v1/routes")["revision"]
    page.locator("[data-route=shop]").get_by_role("button", name="Switch to green").click()
    confirm(page, "Cancel")
    assert shop.api.get("/v1/routes")["revision"] == revision
    assert active(shop) == "blue"


def test_weights_set_in_the_dialog(page: Page, shop: Turnout) -> None:
    page.goto(shop.url)
    live(page)
    page.locator("[data-route=web]").get_by_role("button", name="Set weights…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("stable", exact=True).fill("50")
    dialog.get_by_label("canary", exact=True).fill("50")
    confirm(page, "Set weights")
    wait_for(
        lambda: shop.api.get("/v1/routes/web")["weights"] == {"stable": 50, "canary": 50},
        what="weights 50/50",
    )
    expect(page.locator("[data-route=web] .split")).to_have_text("stable 50.0 % · canary 50.0 %")
    # All zero is refused by the API, and the page says why in words.
    page.locator("[data-route=web]").get_by_role("button", name="Set weights…").click()
    dialog.get_by_label("stable", exact=True).fill("0")
    dialog.get_by_label("canary", exact=True).fill("0")
    confirm(page, "Set weights")
    message = page.get_by_role("status")
    expect(message).to_contain_text("Error:")
    expect(message).to_contain_text("(422)")
    expect(message).to_contain_text("at least one weight must be positive")


def test_drain_and_enable_a_backend(page: Page, shop: Turnout) -> None:
    page.goto(shop.url)
    live(page)
    row = page.locator("article[data-pool=green] [data-backend=green-1]")
    row.get_by_role("button", name="Drain green-1").click()
    confirm(page, "Drain")

    def state() -> str:
        backend = shop.api.get("/v1/pools/green")["backends"][0]
        return str(backend["adminState"])

    wait_for(lambda: state() == "drain", what="green-1 draining")
    expect(row.locator(".admin-state")).to_contain_text("‖ drain")
    row.get_by_role("button", name="Enable green-1").click()
    confirm(page, "Enable")
    wait_for(lambda: state() == "ready", what="green-1 ready")
    expect(row.locator(".admin-state")).to_contain_text("▶ ready")


def test_a_change_made_elsewhere_meanwhile_turns_the_click_into_a_412(
    page: Page, shop: Turnout
) -> None:
    page.goto(shop.url)
    live(page)
    page.locator("[data-route=shop]").get_by_role("button", name="Switch to green").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    # While the operator reads the dialog, someone else changes the instance.
    shop.api.call("PUT", "/v1/routes/web/weights", {"weights": {"stable": 80, "canary": 20}}).ok()
    confirm(page, "Switch to green")
    message = page.get_by_role("status")
    expect(message).to_contain_text("(412)")
    expect(message).to_contain_text("The state changed since this page showed it")
    assert active(shop) == "blue"
