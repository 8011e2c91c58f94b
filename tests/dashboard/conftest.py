"""Fixtures of the dashboard's browser tests.

Starting Chromium costs about a second and an instance under traffic two or three, so the
browser and the `shop` instance are shared by every test of this directory, and closed right
after its last test (pytest_runtest_teardown below), not at the end of the session: the rest of
the suite runs without a browser or an instance left over. A test gets a fresh browser context
(its own sessionStorage), and `page` is signed in with the `ops` token the way a tab is once
its operator gave it (sessionStorage set before the page's scripts run); `fresh_page` is not.
A test module whose instance needs its own configuration (a canary that fails) starts it as a
module-scoped fixture with dashboard_support.running.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from admin.admin_support import BackendLoop, shop_and_web
from dashboard_support import (
    CHROMIUM,
    NO_CHROMIUM,
    Console,
    Turnout,
    backends,
    running,
    sign_in_early,
)
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright


class _Shared:
    """What this directory's tests share: started by the first test that asks, closed after
    the last test of a run of this directory's tests. Under `pytest -n 2` a worker may run one
    file of the directory, then others, then another of it: it starts them again then."""

    def __init__(self) -> None:
        self.stack = contextlib.ExitStack()
        self.browser: Browser | None = None
        self.shop: Turnout | None = None

    def close(self) -> None:
        self.stack.close()
        self.stack = contextlib.ExitStack()
        self.browser = self.shop = None


_SHARED = _Shared()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield  # the test's own fixtures first (its browser context)
    if nextitem is None or nextitem.path.parent != item.path.parent:
        _SHARED.close()


@pytest.fixture(scope="session", autouse=True)
def chromium() -> str:
    """Every test here needs the browser: skip before anything starts when it is missing."""
    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    return CHROMIUM


@pytest.fixture
def browser(chromium: str) -> Browser:
    if _SHARED.browser is None:
        playwright = _SHARED.stack.enter_context(sync_playwright())
        # Playwright passes --no-sandbox itself (chromium_sandbox defaults to off), which a
        # browser started as root needs.
        _SHARED.browser = playwright.chromium.launch(executable_path=chromium)
        _SHARED.stack.callback(_SHARED.browser.close)
    return _SHARED.browser


@pytest.fixture
def shop() -> Turnout:
    """Routes `shop` (blue-green, blue active) and `web` (stable 90, canary 10), under traffic.
    Shared: a test that changes it puts it back."""
    if _SHARED.shop is None:
        loop: BackendLoop = _SHARED.stack.enter_context(backends())
        _SHARED.shop = _SHARED.stack.enter_context(running(shop_and_web(loop)))
    return _SHARED.shop


@pytest.fixture(scope="module")
def loop() -> Iterator[BackendLoop]:
    """Backends for a module's own instance."""
    with backends() as loop:
        yield loop


@pytest.fixture
def console() -> Console:
    return Console()


@contextlib.contextmanager
def _context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def fresh_page(browser: Browser, console: Console) -> Iterator[Page]:
    with _context(browser) as context:
        page = context.new_page()
        console.watch(page)
        yield page


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    with _context(browser) as context:
        page = context.new_page()
        sign_in_early(page)
        console.watch(page)
        yield page
