"""`turnout demo`: demo backends for every loopback backend in the config, and the proxy.

Each demo backend answers every request with one line naming its pool and backend, so a
newcomer can watch the split, the stickiness and the header rules with nothing but curl.

Ports: the proxy's two ports are checked before anything starts, and a taken one is named with
the flag that moves it (--port, --admin-port). A demo backend whose port is taken listens on a
free port instead, and the proxy is pointed there (for this run; a reload re-reads the file).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from proxy.config import Settings
from proxy.instance import Instance
from proxy.ports import PortInUse, is_in_use, refuse_if_served
from router import Snapshot, build_snapshot

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


def with_ports(settings: Settings, port: int | None, admin_port: int | None) -> Settings:
    """The settings with the proxy's ports moved by --port / --admin-port."""
    update: dict[str, Any] = {}
    if port is not None:
        update["listen"] = settings.listen.model_copy(update={"port": port})
    if admin_port is not None:
        update["admin"] = settings.admin.model_copy(update={"port": admin_port})
    return settings.model_copy(update=update) if update else settings


def with_backend_port(settings: Settings, pool: str, backend: str, port: int) -> Settings:
    """The settings with one backend's URL moved to `port` on its host."""
    config = settings.pools[pool]
    backends = [
        b.model_copy(update={"url": f"http://{_netloc(b.spec().host)}:{port}"})
        if b.name == backend
        else b
        for b in config.backends
    ]
    pools = {**settings.pools, pool: config.model_copy(update={"backends": backends})}
    return settings.model_copy(update={"pools": pools})


def _netloc(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _flag(error: PortInUse) -> str:
    return "--admin-port" if error.what == "admin API" else "--port"


async def run_demo(
    config_path: Path,
    settings: Settings,
    snapshot: Snapshot,
    port: int | None = None,
    admin_port: int | None = None,
) -> int:
    """Demo backends in this process, and a real turnout instance (control plane, admin API,
    worker processes) in front of them, exactly as `turnout run` starts it."""
    settings = with_ports(settings, port, admin_port)
    try:
        refuse_if_served(settings.listen.host, settings.listen.port)
        refuse_if_served(settings.admin.host, settings.admin.port, "admin API")
    except PortInUse as error:
        print(f"turnout demo: {error}; choose another with {_flag(error)}", file=sys.stderr)
        return 1
    runners: list[web.AppRunner] = []
    try:
        moved = False
        for pool in snapshot.pools.values():
            for backend in pool.backends:
                if backend.host not in LOOPBACK:
                    continue
                runner = web.AppRunner(demo_backend(pool.name, backend.name), access_log=None)
                await runner.setup()
                runners.append(runner)
                try:
                    site = web.TCPSite(runner, backend.host, backend.port)
                    try:
                        await site.start()
                    except OSError as error:
                        if not is_in_use(error):
                            raise
                        site = web.TCPSite(runner, backend.host, 0)
                        await site.start()
                        free = int(runner.addresses[0][1])
                        print(
                            f"turnout demo: {backend.host}:{backend.port} (backend "
                            f"{backend.name}) is taken; {backend.name} listens on port {free}",
                            file=sys.stderr,
                        )
                        settings = with_backend_port(settings, pool.name, backend.name, free)
                        moved = True
                except OSError as error:
                    print(
                        f"turnout demo: cannot start backend {backend.name}: {error}",
                        file=sys.stderr,
                    )
                    return 1
        if moved:
            snapshot = build_snapshot(settings.spec())
        instance = Instance(config_path, settings, snapshot, log_level="warning")
        try:
            await instance.start()
        except PortInUse as error:  # taken between the check and the bind
            print(f"turnout demo: {error}; choose another with {_flag(error)}", file=sys.stderr)
            return 1
        except (OSError, RuntimeError) as error:
            print(f"turnout demo: cannot start the proxy: {error}", file=sys.stderr)
            return 1
        if instance.control.phase == "serving":
            # The live state: a restored runtime state (a switch, new weights) is not the file's.
            print(_banner(settings, instance.control.snapshot, instance.port), flush=True)
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
Watch it live in a browser: {admin}/
{describe(snapshot)}

Try these in another terminal:
  curl -s {url}/                              # a sticky cookie is issued; the split is above
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
  curl -s -X POST {json} -d '{{"steps": [25, 50, 100], "stepTime": 20}}' {admin}/v1/routes/web/rollout

Ctrl-C stops everything.
"""
