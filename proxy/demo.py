"""`turnout demo`: demo backends for every loopback backend in the config, and the proxy.

Each demo backend answers every request with one line naming its pool and backend, so a
newcomer can watch the split, the stickiness and the header rules with nothing but curl.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from aiohttp import web

from proxy.config import Settings
from proxy.server import ProxyServer
from router import Snapshot

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def demo_backend(pool: str, backend: str) -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"{pool:<7} {backend:<9} {request.method} {request.path_qs}\n")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_route("*", "/{tail:.*}", hello)
    return app


async def run_demo(settings: Settings, snapshot: Snapshot) -> int:
    runners: list[web.AppRunner] = []
    try:
        for pool in snapshot.pools.values():
            for backend in pool.backends:
                if backend.host not in LOOPBACK:
                    continue
                runner = web.AppRunner(demo_backend(pool.name, backend.name), access_log=None)
                await runner.setup()
                try:
                    await web.TCPSite(runner, backend.host, backend.port).start()
                except OSError as error:
                    print(f"turnout demo: cannot start backend {backend.name}: {error}")
                    return 1
                runners.append(runner)
        server = ProxyServer(settings, snapshot)
        try:
            await server.start()
        except OSError as error:
            print(
                f"turnout demo: cannot listen on {settings.listen.host}:{settings.listen.port}: {error}"
            )
            return 1
        print(_banner(settings, snapshot, server.port), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop(grace=2.0)
        return 0
    finally:
        for runner in runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()


def _banner(settings: Settings, snapshot: Snapshot, port: int) -> str:
    from proxy.cli import describe

    url = f"http://{settings.listen.host}:{port}"
    return f"""
turnout demo: the proxy listens on {url}
{describe(snapshot)}

Try these in another terminal:
  curl -s {url}/                              # a sticky cookie is issued; 90% blue, 10% canary
  curl -s -H 'x-canary: always' {url}/        # testers reach the canary
  curl -s -H 'x-canary: never' {url}/         # ...or pin the stable pool
  curl -s -b 'turnout-id=alice' {url}/        # alice always lands in the same pool
  for i in $(seq 200); do curl -s {url}/; done | cut -c1-8 | sort | uniq -c     # the split
  curl -s {url}/checkout/                     # blue-green route: everything to the active colour
  curl -si {url}/ | grep -i set-cookie        # the assignment cookie

Ctrl-C stops everything.
"""
