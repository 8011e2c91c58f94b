"""Take docs/dashboard.png: the dashboard during a canary rollout, as a browser shows it.

Run by scripts/screenshot (not by the test suite). Everything is real, as in the browser tests:
`turnout run` with loopback backends, paced client traffic, a canary rollout started through the
API, and Debian's chromium driven by Playwright. The scene: `web` rolling out from blue to
canary in steps (the canary a little slower and a little more error-prone than blue, so the
judge's evidence moves), `checkout` blue-green with green active, one blue backend drained,
health probes every second. The page is open from the start, so its sparklines and the
evidence chart hold the whole run.

    .venv/bin/python tests/dashboard/screenshot.py docs/dashboard.png
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

# As pytest's pythonpath: the project first (`router` is the package, not tests/router), then
# the tests' helpers.
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parent), str(HERE)]

from admin.admin_support import BackendLoop  # noqa: E402
from aiohttp import web  # noqa: E402
from dashboard_support import (  # noqa: E402
    CHROMIUM,
    NO_CHROMIUM,
    live,
    running,
    sign_in_early,
    wait_for,
)
from playwright.sync_api import sync_playwright  # noqa: E402

from helpers import config  # noqa: E402

Handler = Callable[[web.Request], Awaitable[web.Response]]


def behaving(name: str, delay: float, fail_every: int) -> Handler:
    """A backend that takes `delay` seconds and fails one request in `fail_every`."""
    served = 0

    async def handle(request: web.Request) -> web.Response:
        nonlocal served
        if request.path == "/healthz":
            return web.Response(text="ok")
        served += 1
        await asyncio.sleep(delay)
        if served % fail_every == 0:
            return web.Response(status=503, text=f"{name} busy")
        return web.Response(text=name)

    return handle


def scene(loop: BackendLoop) -> dict[str, object]:
    urls: dict[str, list[str]] = {}
    for pool, delay, fail_every, count in (
        ("blue", 0.003, 400, 2),
        ("green", 0.003, 500, 2),
        ("canary", 0.004, 250, 1),
    ):
        urls[pool] = [
            loop.start(f"{pool}-{i + 1}", behaving(pool, delay, fail_every)).url
            for i in range(count)
        ]
    data = config(
        urls,
        {
            "checkout": {
                "path_prefix": "/checkout",
                "mode": "blue-green",
                "pools": ["blue", "green"],
                "active": "blue",
            },
            "web": {"weights": {"blue": 100, "canary": 0}},
        },
        health={"enabled": True, "path": "/healthz", "interval": 1.0},
    )
    return data


def third_step(rollout: dict[str, Any]) -> bool:
    if rollout["phase"] != "progressing":
        sys.exit(f"the rollout stopped before its third step: {rollout['reason']}")
    return bool(rollout["step"] >= 2)


def main(out: Path) -> None:
    if CHROMIUM is None:
        sys.exit(NO_CHROMIUM)
    loop = BackendLoop()
    try:
        paths = ("/", "/checkout", "/", "/")
        with running(scene(loop), paths, per_second=150) as turnout:
            call = turnout.api.call
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                sign_in_early(page)
                page.goto(turnout.url)
                live(page)
                call("POST", "/v1/routes/checkout/switch", {"to": "green"}).ok()
                call("PATCH", "/v1/pools/blue/backends/blue-2", {"adminState": "drain"}).ok()
                spec = {"canary": "canary", "steps": [5, 25, 50, 100], "stepTime": 10}
                judge = {"minRequests": 40}
                call("POST", "/v1/routes/web/rollout", {**spec, "judge": judge}).ok(201)
                wait_for(lambda: third_step(call("GET", "/v1/routes/web/rollout").ok()), 90)
                # A few more frames, so the third step has figures of its own.
                page.wait_for_timeout(4000)
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out), full_page=True)
                browser.close()
    finally:
        loop.close()
    print(f"screenshot: {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/dashboard.png"))
