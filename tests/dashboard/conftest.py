"""Fixtures of the dashboard's browser tests: one Chromium per test module (starting a browser
costs about a second), a fresh browser context per test (its own sessionStorage, so no token
leaks from one test into the next), and the page's console errors collected as it runs.

A module whose instance needs a particular configuration (tokens, a failing canary) starts it
as a module-scoped fixture of its own, with dashboard_support.running.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from admin.admin_support import BackendLoop, shop_and_web
from dashboard_support import CHROMIUM, NO_CHROMIUM, Console, Turnout, backends, running
from playwright.sync_api import Browser, Page, sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    with sync_playwright() as playwright:
        # Playwright passes --no-sandbox itself (chromium_sandbox defaults to off), which a
        # browser started as root needs.
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(10_000)
    console.watch(page)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def loop() -> Iterator[BackendLoop]:
    with backends() as loop:
        yield loop


@pytest.fixture(scope="module")
def shop(loop: BackendLoop) -> Iterator[Turnout]:
    """Routes `shop` (blue-green, blue active) and `web` (stable 90, canary 10), under traffic."""
    with running(shop_and_web(loop)) as turnout:
        yield turnout
