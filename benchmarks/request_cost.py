"""Instructions per proxied request, by kind, counted by callgrind (deterministic where
wall-clock figures on a shared machine are not).

    valgrind --tool=callgrind --zero-before=getppid --dump-before=getpgrp \
        --callgrind-out-file=/tmp/cost.%p .venv/bin/python -m benchmarks.request_cost
    .venv/bin/python -m benchmarks.request_cost --report /tmp/cost.PID

One process serves the data plane as a worker does (`ProxyServer`, uvloop, `gc.freeze()`), in
front of a backend and a client in another process that callgrind does not follow
(benchmarks/request_cost_peer.py), so the counts are the proxy's alone. The configuration is the
benchmark's (benchmarks/targets.py): one weighted 50/50 route with a header rule and a sticky
cookie, issued or not. For each kind, after a warm-up, `os.getppid()` zeroes the counters and
`os.getpgrp()` dumps them (the two marker calls happen nowhere else), one dump per kind:

    plain         GET / without a cookie: the random split (the benchmark's `small`)
    sticky        with the sticky cookie: its hash decides (`sticky`)
    sticky-first  without it, on a route that issues it: an id made up, hashed, Set-Cookie
                  (`sticky-first`)
    close         `Connection: close`: a new client connection per request (`close`)

Requests go one at a time on one connection, so per-request figures include the event loop's
turns that 50 concurrent connections would share: compare them with each other and before and
after a change, not with the benchmark's CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

KINDS = ("plain", "sticky", "sticky-first", "close")
WARMUP = 300


def _config(port: int, backend: int, issue: bool) -> str:
    return f"""
[listen]
host = "127.0.0.1"
port = {port}

[admin]
port = 0

[state]
persist = false

[pools.stable]
backends = [{{ name = "s1", url = "http://127.0.0.1:{backend}" }}]

[pools.canary]
backends = [{{ name = "c1", url = "http://127.0.0.1:{backend}" }}]

[routes.web]
path_prefix = "/"
mode = "weighted"
weights = {{ stable = 50, canary = 50 }}
rules = [
  {{ name = "testers", header = "x-canary", match = "exact", value = "always", pool = "canary" }},
]

[routes.web.sticky]
cookie = "turnout-id"
issue = {"true" if issue else "false"}
"""


async def _measure(count: int, kinds: list[str]) -> None:
    from proxy.config import load_config
    from proxy.server import ProxyServer

    peer = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("request_cost_peer.py")),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert peer.stdin is not None
    assert peer.stdout is not None
    backend = int(await peer.stdout.readline())
    servers: dict[bool, ProxyServer] = {}
    with tempfile.TemporaryDirectory() as folder:
        for issue in (False, True):
            path = Path(folder) / f"turnout-{issue}.toml"
            path.write_text(_config(0, backend, issue))
            settings, snapshot = load_config(path)
            server = servers[issue] = ProxyServer(settings, snapshot)
            await server.start()
    gc.collect()
    gc.freeze()  # as each worker does once it serves

    async def run(kind: str, number: int) -> None:
        port = servers[kind == "sticky-first"].port
        client_kind = "plain" if kind == "sticky-first" else kind
        assert peer.stdin is not None
        assert peer.stdout is not None
        peer.stdin.write(f"{client_kind} {number} {port}\n".encode())
        await peer.stdin.drain()
        answer = (await peer.stdout.readline()).decode().strip()
        if answer != "done":
            raise SystemExit(f"{kind}: {answer}")

    for kind in kinds:
        await run(kind, WARMUP)
        os.getppid()  # callgrind: --zero-before=getppid
        await run(kind, count)
        os.getpgrp()  # callgrind: --dump-before=getpgrp
        print(f"{kind}: {count} requests", file=sys.stderr)
    peer.stdin.close()
    await peer.wait()
    for server in servers.values():
        await server.stop(grace=0.1)


def report(prefix: str, count: int, kinds: list[str]) -> None:
    """Instructions per request of each kind, from the dumps numbered 1, 2... after `prefix`."""
    for number, kind in enumerate(kinds, start=1):
        text = Path(f"{prefix}.{number}").read_text()
        total = int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1))  # type: ignore[union-attr]
        print(f"{kind:13} {total / count:10,.0f} instructions/request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--kind", action="append", choices=KINDS, help="default: all, in order")
    parser.add_argument("--report", metavar="PREFIX", help="read the dumps of a run instead")
    args = parser.parse_args()
    kinds = args.kind or list(KINDS)
    if args.report:
        report(args.report, args.requests, kinds)
        return
    from proxy import native

    native.activate()
    import uvloop

    uvloop.run(_measure(args.requests, kinds))


if __name__ == "__main__":
    main()
