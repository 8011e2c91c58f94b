"""Test harness: real loopback backends, a real proxy, real clients.

Nothing here is a mock. Backends are aiohttp servers (or raw asyncio servers, for responses
aiohttp would never produce), the proxy is `ProxyServer` (in-process) or `turnout run`
(a subprocess), and clients speak HTTP over real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from proxy.config import Settings
from proxy.server import ProxyServer
from router import build_snapshot

TURNOUT = str(Path(sys.executable).with_name("turnout"))


@dataclass
class Seen:
    """A request as a backend received it."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


@dataclass
class Backend:
    name: str
    port: int
    seen: list[Seen] = field(default_factory=list)
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def start_backend(name: str, handler: Handler | None = None, port: int = 0) -> Backend:
    """An aiohttp backend that records every request and answers with its name (or `handler`).
    `port`: listen there (to bring a stopped backend back on its address)."""
    backend = Backend(name=name, port=port)

    async def record(request: web.Request) -> web.StreamResponse:
        body = await request.read() if handler is None else b""
        backend.seen.append(
            Seen(
                request.method,
                request.path_qs,
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
                body,
            )
        )
        if handler is not None:
            return await handler(request)
        return web.Response(text=name, headers={"X-Backend": name})

    app = web.Application(client_max_size=1024**3)
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    server = site._server
    assert server is not None
    backend.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    backend.runner = runner
    return backend


@dataclass
class RawBackend:
    """An asyncio server whose handler writes whatever bytes a test needs."""

    port: int
    server: asyncio.Server
    connections: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 1)


RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def start_raw_backend(handler: RawHandler) -> RawBackend:
    holder: list[RawBackend] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        holder[0].connections += 1
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    backend = RawBackend(port=server.sockets[0].getsockname()[1], server=server)
    holder.append(backend)
    return backend


async def read_request_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def config(
    pools: dict[str, list[str]],
    routes: dict[str, dict[str, Any]],
    **sections: Any,
) -> dict[str, Any]:
    """A configuration dict: pools as {name: [backend urls]}, routes as in the TOML file."""
    data: dict[str, Any] = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "pools": {
            name: {
                "backends": [{"name": f"{name}-{i + 1}", "url": url} for i, url in enumerate(urls)]
            }
            for name, urls in pools.items()
        },
        "routes": routes,
    }
    for key, value in sections.items():
        data.setdefault(key, {}).update(value)
    return data


@contextlib.asynccontextmanager
async def running_proxy(data: dict[str, Any]) -> AsyncIterator[ProxyServer]:
    """The proxy, in-process, on an ephemeral loopback port."""
    settings = Settings(**data)
    server = ProxyServer(settings, build_snapshot(settings.spec()))
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=1.0)


def toml(data: dict[str, Any]) -> str:
    """Enough of a TOML writer for test configs (tables, arrays of inline tables, scalars)."""

    def scalar(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        if isinstance(value, str):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(value, list):
            return "[" + ", ".join(scalar(item) for item in value) + "]"
        if isinstance(value, dict):
            return "{" + ", ".join(f'"{k}" = {scalar(v)}' for k, v in value.items()) + "}"
        raise TypeError(value)

    lines: list[str] = []

    def table(prefix: str, body: dict[str, Any]) -> None:
        plain = {k: v for k, v in body.items() if not isinstance(v, dict)}
        nested = {k: v for k, v in body.items() if isinstance(v, dict)}
        if prefix and (plain or not nested):
            lines.append(f"[{prefix}]")
        for key, value in plain.items():
            lines.append(f'"{key}" = {scalar(value)}')
        for key, value in nested.items():
            table(f'{prefix}."{key}"' if prefix else f'"{key}"', value)

    table("", data)
    return "\n".join(lines) + "\n"


PORTS_PER_PROCESS = 4000
"""Each test process hands out ports from its own block below the kernel's ephemeral range
(32768 and up on Linux): a port picked there is never one the kernel gives an outgoing
connection or a `bind(0)` meanwhile, and two processes of `pytest -n 2` never pick the same."""
_next_port = 0


def free_port() -> int:
    """A loopback port free now, never one this process handed out before (a listen port and
    an admin port picked one after the other must differ: a fresh clone's suite once got both
    the same when the kernel picked them)."""
    global _next_port
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    # TURNOUT_TEST_PORT_BASE: two suites on one machine (worktrees) keep to their own blocks.
    first = int(os.environ.get("TURNOUT_TEST_PORT_BASE", "12000"))
    base = first + PORTS_PER_PROCESS * (int(worker) if worker.isdigit() else 0)
    while True:
        port = base + _next_port % PORTS_PER_PROCESS
        _next_port += 1
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken by something else on the machine: the next one
        return port


@dataclass
class ProxyProcess:
    """`turnout run` as a subprocess: the control plane, its admin API, its workers."""

    process: subprocess.Popen[bytes]
    port: int
    admin_port: int
    config_path: Path
    log_path: Path

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One admin API call (blocking; fine for tests): status and decoded JSON."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.admin_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def worker_pids(self) -> list[int]:
        _, workers = self.admin("GET", "/v1/workers")
        return [worker["pid"] for worker in workers["workers"]]

    def rss_kib(self, field: str = "VmRSS") -> int:
        """Memory of the data plane: summed over the worker processes."""
        return sum(rss_kib(pid, field) for pid in self.worker_pids())

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


@contextlib.contextmanager
def proxy_process(
    data: dict[str, Any],
    workers: int = 1,
    environment: dict[str, str] | None = None,
    *,
    port: int | None = None,
    admin_port: int | None = None,
    ready: bool = True,
) -> Any:
    """`turnout run` in a subprocess on free ports (or `port`, `admin_port`); yields once
    /ready says 200, or at once with `ready=False` (to catch it while it starts).
    `environment`: TURNOUT_* overrides (none of the caller's own are passed on)."""
    port, admin_port = port or free_port(), admin_port or free_port()
    data = {
        **data,
        "listen": {**data.get("listen", {}), "port": port},
        "admin": {**data.get("admin", {}), "port": admin_port},
        "process": {"workers": workers, **data.get("process", {})},
    }
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "turnout.toml"
        path.write_text(toml(data))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TURNOUT_")}
        env.update(environment or {})
        log_path = Path(directory) / "turnout.log"
        # A file, not a pipe: a pipe nobody reads would eventually block the proxy's logging.
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [TURNOUT, "--log-level", "info", "run", "--config", str(path)],
                env=env,
                stderr=log,
            )
        running = ProxyProcess(process, port, admin_port, path, log_path)
        try:
            if ready:
                wait_until_ready(running)
            yield running
        finally:
            running.stop()


def wait_until_ready(proxy: ProxyProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proxy.process.poll() is not None:
            raise RuntimeError(f"turnout exited with {proxy.process.returncode}: {proxy.log()}")
        with contextlib.suppress(OSError, ValueError):
            status, _ = proxy.admin("GET", "/ready")
            if status == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"turnout not ready within {timeout} s: {proxy.log()}")


def wait_for_port(
    port: int, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 15.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"turnout exited with {process.returncode}: {log_path.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port} within {timeout} s")


async def exchange_raw(
    port: int, data: bytes, *, until_close: bool = True, timeout: float = 5.0
) -> bytes:
    """Send raw bytes to the proxy and return everything it answers (until it closes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        if until_close:
            return await asyncio.wait_for(reader.read(), timeout)
        return await asyncio.wait_for(reader.read(65536), timeout)
    finally:
        writer.close()


def parse_responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split a byte stream of Content-Length-framed or chunked responses (test-side parser,
    deliberately independent of the proxy's)."""
    responses = []
    while data:
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        if "content-length" in headers:
            length = int(headers["content-length"])
            body, data = data[:length], data[length:]
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size_line, _, data = data.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    _, _, data = data.partition(b"\r\n")
                    break
                body += data[:size]
                data = data[size + 2 :]
        else:
            body, data = data, b""
        responses.append((status, headers, body))
    return responses


@dataclass
class Outcome:
    at: float
    client: int
    ok: bool
    answer: str
    """The body (which pool answered), or the error's type name."""
    retried_ok: bool = False
    """After a failure, the same request sent again on a new connection succeeded."""


@dataclass
class LoadLoop:
    """`clients` keep-alive clients, each on its own connection, looping GETs until stopped.

    Every request's outcome is recorded with its time, so a test can count failures in the
    window of an event (a reload, a switch, a worker kill) and outside it. Bounded: it stops by
    itself after `limit` seconds even if the test forgets to.
    """

    url: str
    clients: int = 16
    limit: float = 60.0
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def __aenter__(self) -> LoadLoop:
        self._tasks = [asyncio.create_task(self._client(i)) for i in range(self.clients)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _client(self, index: int) -> None:
        import aiohttp

        deadline = time.monotonic() + self.limit
        timeout = aiohttp.ClientTimeout(total=10)
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            # aiohttp silently resends an idempotent request once when a kept-alive connection
            # drops; that would hide exactly the failures these tests count.
            session._retry_connection = False
            while not self._stop.is_set() and time.monotonic() < deadline:
                started = time.monotonic()
                try:
                    async with session.get(self.url) as response:
                        text = await response.text()
                        ok = response.status == 200
                        answer = text if ok else f"status {response.status}"
                except (TimeoutError, aiohttp.ClientError) as error:
                    ok, answer = False, type(error).__name__
                outcome = Outcome(started, index, ok, answer)
                if not ok:
                    # What a client that retries an idempotent request does: the failure is
                    # still counted, and the retry shows whether the instance kept serving.
                    try:
                        async with session.get(self.url) as response:
                            outcome.retried_ok = response.status == 200
                            await response.read()
                    except (TimeoutError, aiohttp.ClientError):
                        outcome.retried_ok = False
                self.outcomes.append(outcome)
                await asyncio.sleep(0)

    def between(self, start: float, end: float) -> list[Outcome]:
        return [o for o in self.outcomes if start <= o.at < end]

    def failures(self, start: float = 0.0, end: float = float("inf")) -> list[Outcome]:
        return [o for o in self.between(start, end) if not o.ok]

    async def run_for(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
