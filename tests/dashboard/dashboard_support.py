"""What the dashboard's browser tests share: a real turnout with real backends and paced client
traffic, and Chromium pages that record every console error.

Nothing here is a mock: the page is the one `turnout run` serves on its admin listener, it reads
the real event stream and acts through the real API; the browser is Debian's chromium (the
package; Playwright cannot download its own browser here), driven by Playwright for Python.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from admin.admin_support import Api, BackendLoop, api
from playwright.sync_api import ConsoleMessage, Page, expect

from helpers import ProxyProcess, proxy_process

OPS = "ops-token-7c1f-93ab-51de"
VIEWER = "viewer-token-52ab-e1d0-88f2"
TOKENS = [
    {"name": "ops", "token": OPS},
    {"name": "viewer", "token": VIEWER, "role": "read"},
]
"""Every instance here has tokens: `ops` may write, `viewer` may only read."""

CHROMIUM = shutil.which("chromium")
NO_CHROMIUM = (
    "the dashboard's browser tests need Debian's package `chromium` "
    "(apt-get install chromium; scripts/test installs it when run as root)"
)


@dataclass
class Traffic:
    """GETs through the proxy at a steady pace (not flat out: the browser shares the cores),
    round-robin over `paths`, from a thread of its own until stopped."""

    port: int
    paths: tuple[str, ...] = ("/", "/shop")
    per_second: float = 60.0
    statuses: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        pause = 1.0 / self.per_second
        sent = 0
        try:
            while not self._stop.wait(pause):
                try:
                    connection.request("GET", self.paths[sent % len(self.paths)])
                    response = connection.getresponse()
                    response.read()
                    self.statuses[response.status] = self.statuses.get(response.status, 0) + 1
                except (OSError, http.client.HTTPException):
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                sent += 1
        finally:
            connection.close()

    @contextlib.contextmanager
    def running(self) -> Iterator[Traffic]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(15)


@dataclass
class Turnout:
    """A running instance under traffic: its process, its API (with the token given) and URL."""

    proxy: ProxyProcess
    api: Api
    traffic: Traffic

    @property
    def url(self) -> str:
        return self.proxy.admin_url + "/"


@contextlib.contextmanager
def running(
    data: dict[str, Any], paths: tuple[str, ...] = ("/", "/shop"), per_second: float = 60.0
) -> Iterator[Turnout]:
    """`turnout run` on `data` with TOKENS, under paced traffic over `paths`; its API is called
    with the `ops` token."""
    with proxy_process({**data, "admin": {"tokens": TOKENS}}) as proxy:
        traffic = Traffic(proxy.port, paths, per_second)
        with traffic.running():
            yield Turnout(proxy, api(proxy, OPS), traffic)


@contextlib.contextmanager
def backends() -> Iterator[BackendLoop]:
    loop = BackendLoop()
    try:
        yield loop
    finally:
        loop.close()


@dataclass
class Console:
    """Every console error and uncaught exception of a page; a CSP violation is a console
    error too ("Refused to load ... because it violates the Content Security Policy")."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._message)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console error: {message.text} at {message.location}")


def sign_in_early(page: Page, token: str = OPS) -> None:
    """The tab already has its token (as once its operator gave it): set in sessionStorage
    before the page's own scripts run, on every navigation (outside the page, so its CSP does
    not apply)."""
    page.context.add_init_script(f"sessionStorage.setItem('turnout.token', {json.dumps(token)})")


def live(page: Page, timeout: float = 10.0) -> None:
    """Wait until the page shows a frame from the stream."""
    expect(page.locator("#connection")).to_contain_text("Live", timeout=timeout * 1000)


def frames_after(page: Page, count: int = 2, timeout: float = 10.0) -> None:
    """Wait until `count` more frames were rendered (each frame's time differs by a second)."""
    seen = {page.locator("#connection").inner_text()}
    deadline = time.monotonic() + timeout
    while len(seen) <= count:
        assert time.monotonic() < deadline, f"fewer than {count} frames in {timeout} s: {seen}"
        page.wait_for_timeout(100)
        seen.add(page.locator("#connection").inner_text())


def confirm(page: Page, action: str) -> None:
    """Press the confirmation dialog's button named `action` (the dialog must be open)."""
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=action, exact=True).click()
    expect(dialog).to_be_hidden()


def wait_for(condition: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `condition()` until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(0.05)
