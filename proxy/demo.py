"""`turnout demo`: demo backends for every loopback backend in the config, and the proxy.

Each demo backend answers every request with one line naming its pool and backend, so a
newcomer can watch the split, the stickiness and the header rules with nothing but curl.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from aiohttp import web

from proxy.config import Settings
from proxy.server import Instance
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


async def run_demo(config_path: Path, settings: Settings, snapshot: Snapshot) -> int:
    """Demo backends in this process, and a real turnout instance (control plane, admin API,
    worker processes) in front of them, exactly as `turnout run` starts it."""
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
        instance = Instance(config_path, settings, snapshot, log_level="warning")
        try:
            await instance.start()
        except (OSError, RuntimeError) as error:
            print(f"turnout demo: cannot start the proxy: {error}")
            return 1
        print(_banner(settings, snapshot, instance.port), flush=True)
        await instance.wait()
        return 0
    finally:
        for runner in runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()


def _banner(settings: Settings, snapshot: Snapshot, port: int) -> str:
    from proxy.cli import describe

    url = f"http://{settings.listen.host}:{port}"
    admin = f"http://{settings.admin.host}:{settings.admin.port}"
    json = "-H 'content-type: application/json'"
    return f"""
turnout demo: the proxy listens on {url}, its admin API on {admin}
{describe(snapshot)}

Try these in another terminal:
  curl -s {url}/                              # a sticky cookie is issued; 90% blue, 10% canary
  curl -s -H 'x-canary: always' {url}/        # testers reach the canary
  curl -s -H 'x-canary: never' {url}/         # ...or pin the stable pool
  curl -s -b 'turnout-id=alice' {url}/        # alice always lands in the same pool
  for i in $(seq 200); do curl -s {url}/; done | cut -c1-8 | sort | uniq -c     # the split
  curl -s {url}/checkout/                     # blue-green route: everything to the active colour

Change traffic at runtime through the admin API (every worker applies it before it answers):
  curl -s {admin}/v1/routes/checkout
  curl -s -X POST {json} -d '{{"to": "green"}}' {admin}/v1/routes/checkout/switch
  curl -s -X POST {admin}/v1/routes/checkout/rollback
  curl -s -X PUT {json} -d '{{"weights": {{"blue": 50, "canary": 50}}}}' {admin}/v1/routes/web/weights

Ctrl-C stops everything.
"""
