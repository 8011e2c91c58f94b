"""Test harness: real loopback backends, a real proxy, real clients.

Nothing here is a mock. Backends are aiohttp servers (or raw asyncio servers, for responses
aiohttp would never produce), the proxy is `ProxyServer` (in-process) or `turnout run`
(a subprocess), and clients speak HTTP over real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
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


async def start_backend(name: str, handler: Handler | None = None) -> Backend:
    """An aiohttp backend that records every request and answers with its name (or `handler`)."""
    backend = Backend(name=name, port=0)

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
    site = web.TCPSite(runner, "127.0.0.1", 0)
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ProxyProcess:
    process: subprocess.Popen[bytes]
    port: int
    config_path: Path

    def rss_kib(self, field: str = "VmRSS") -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"no {field} for {self.process.pid}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


@contextlib.contextmanager
def proxy_process(data: dict[str, Any]) -> Any:
    """`turnout run` in a subprocess, on a free port; yields once it accepts connections."""
    port = free_port()
    data = {**data, "listen": {**data.get("listen", {}), "port": port}}
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "turnout.toml"
        path.write_text(toml(data))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TURNOUT_")}
        log_path = Path(directory) / "turnout.log"
        # A file, not a pipe: a pipe nobody reads would eventually block the proxy's logging.
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [TURNOUT, "--log-level", "warning", "run", "--config", str(path)],
                env=env,
                stderr=log,
            )
        running = ProxyProcess(process, port, path)
        try:
            wait_for_port(port, process, log_path)
            yield running
        finally:
            running.stop()


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
    raise TimeoutError(f"turnout did not listen on {port} within {timeout} s")


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
