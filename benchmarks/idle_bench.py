"""What idle keep-alive connections cost in memory: `python -m benchmarks idle [--connections N]`.

Starts one built-in backend and, in turn, each proxy in front of it (turnout with one worker,
nginx with one worker and HAProxy with one thread, when installed). For each, this process is
the client: it opens N connections through the proxy, each sending one keep-alive `GET /` and
reading the whole answer (a bounded number at a time, so the proxies' upstream pools stay
small), and leaves them all open and idle. The resident memory of the proxy's process tree
before and with the N idle connections gives what one idle connection costs. A sample of the
connections then sends one more request, to show that they really were still open, and
everything is closed before the next proxy starts.

nginx and HAProxy are configured to take the N connections, and both allocate tables sized for
that many when they start: that part of their per-connection cost is in the "before" figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import uvloop

from benchmarks import baselines, nginx, tools
from benchmarks.backends import BackendServer
from benchmarks.measure import PROC, process_tree
from benchmarks.processes import Child, Children, free_ports, raise_fd_limit, wait_for_port
from benchmarks.scenarios import SMALL_PATH
from benchmarks.targets import turnout_toml, wait_until_ready
from benchmarks.tools import turnout_command

IdleTarget = Literal["turnout", "nginx", "haproxy"]
TARGETS: tuple[IdleTarget, ...] = ("turnout", "nginx", "haproxy")

CONCURRENCY = 200
"""Connections being opened (and their first request answered) at a time."""
SETTLE = 1.0
"""Seconds between the last connection's answer and the memory reading."""
SAMPLE = 20
"""Idle connections asked for one more request afterwards."""
IDLE_TIMEOUT = 300
"""Every proxy's timeout for idle keep-alive clients, in seconds: far longer than a measurement
(the defaults, 75 s for turnout and nginx and 60 s for HAProxy, would do, but with less margin
on a slow machine)."""
CONNECTION_TIMEOUT = 10.0
"""Seconds one connection may take to open and have its request answered; then it failed."""
FD_HEADROOM = 1024
"""Descriptors beyond the client connections: listeners, logs, upstream connections."""
POOL = "app"

_REQUEST = f"GET {SMALL_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


class IdleError(RuntimeError):
    """The benchmark cannot run as asked (a proxy not installed, too few descriptors...)."""


@dataclass(frozen=True, slots=True)
class IdleResult:
    target: str
    connections: int
    """Asked for."""
    held: int
    """Open and idle when the memory was read."""
    errors: int
    """Connections that failed: not opened or answered, closed while idle, or failing the
    sample request."""
    rss_before: int
    """Bytes, the proxy's process tree, before the connections were opened."""
    rss_idle: int
    """Bytes, the proxy's process tree, with the `held` connections idle."""
    sample: int
    sample_ok: int
    """Sample connections answering 200 to one more request after the memory reading."""
    open_seconds: float
    """To open every connection and have its request answered."""
    first_error: str | None

    @property
    def kib_per_connection(self) -> float:
        return (self.rss_idle - self.rss_before) / 1024 / max(1, self.held)


@dataclass(frozen=True, slots=True)
class IdleReport:
    connections: int
    results: tuple[IdleResult, ...]
    versions: dict[str, str]
    """Of the baselines measured."""


def installed_targets() -> tuple[IdleTarget, ...]:
    """turnout, and the baselines found on this machine."""
    return tuple(name for name in TARGETS if name == "turnout" or tools.find(name) is not None)


def run(
    connections: int,
    targets: Sequence[IdleTarget],
    say: Callable[[str], None] = lambda text: None,
    timeout: float = 120.0,
) -> IdleReport:
    """Measure every target in turn; `timeout` bounds each target's client phase, in seconds."""
    paths = _baseline_paths(targets)
    _check_fd_limit(connections)
    results = []
    with tempfile.TemporaryDirectory() as directory, Children(Path(directory)) as children:
        workdir = Path(directory)
        backend = _start_backend(children)
        for name in targets:
            say(f"{name}: opening {connections:,} idle keep-alive connections")
            child, port = _start_proxy(name, children, workdir, backend, paths, connections)
            try:
                result = uvloop.run(_measure(name, child, port, connections, timeout))
            finally:
                # One proxy at a time: the next one starts on an otherwise idle machine.
                children.stop(child)
            backend.child.check_alive()
            results.append(result)
    versions = {name: tools.version(name, path) for name, path in paths.items()}
    return IdleReport(connections, tuple(results), versions)


def _baseline_paths(targets: Sequence[IdleTarget]) -> dict[str, str]:
    paths: dict[str, str] = {}
    for name in targets:
        if name == "turnout":
            continue
        path = tools.find(name)
        if path is None:
            raise IdleError(f"{name} is not installed")
        paths[name] = path
    return paths


def _check_fd_limit(connections: int) -> None:
    # The limit raised here is inherited by the proxies, which hold as many client sockets.
    limit = raise_fd_limit(max(65536, connections + FD_HEADROOM))
    if limit < connections + FD_HEADROOM:
        raise IdleError(
            f"the open-files limit is {limit}: {connections} connections need about "
            f"{connections + FD_HEADROOM}; raise `ulimit -Hn` or ask for fewer --connections"
        )


def _start_backend(children: Children) -> BackendServer:
    (port,) = free_ports(1)
    argv = [sys.executable, "-m", "benchmarks.backend", "--name", f"{POOL}-1", "--port", str(port)]
    child = children.spawn("backend", argv)
    wait_for_port(child, port)
    return BackendServer(POOL, f"{POOL}-1", port, child)


def _start_proxy(
    name: IdleTarget,
    children: Children,
    workdir: Path,
    backend: BackendServer,
    paths: dict[str, str],
    connections: int,
) -> tuple[Child, int]:
    """Start `name` in front of `backend`, configured to hold `connections` idle clients."""
    port, admin_port = free_ports(2)
    upstream = baselines.servers(((POOL, 1),), [(POOL, backend.name, backend.port)])
    capacity = connections + FD_HEADROOM
    if name == "turnout":
        conf = workdir / "turnout.toml"
        toml = turnout_toml(port, ((POOL, 1),), [backend], admin_port)
        conf.write_text(f"{toml}\n[downstream]\nkeepalive_timeout = {IDLE_TIMEOUT}\n")
        argv = [*turnout_command(), "--log-level", "warning", "run", "--config", str(conf)]
        child = children.spawn(name, argv)
        wait_for_port(child, admin_port)
        wait_until_ready(child, admin_port)
    elif name == "nginx":
        # At the http level, so the proxy's server block inherits it.
        http = f"    keepalive_timeout {IDLE_TIMEOUT}s;\n{baselines.nginx_proxy(port, upstream)}"
        child = nginx.start(
            children, paths[name], name, workdir / "nginx", http, None, connections=capacity
        )
    else:
        conf = workdir / "haproxy.cfg"
        # Not strict: the idle clients have no server side, so the two descriptors HAProxy
        # reserves per connection may exceed the open-files limit these connections need.
        config = baselines.haproxy_config(
            port,
            upstream,
            maxconn=capacity,
            client_timeout=IDLE_TIMEOUT,
            keepalive_timeout=IDLE_TIMEOUT,
            strict_limits=False,
        )
        conf.write_text(config)
        # -db: stay in the foreground with alerts on stderr.
        child = children.spawn(name, [paths[name], "-db", "-f", str(conf)])
    wait_for_port(child, port)
    return child, port


def rss_bytes(pids: Sequence[int]) -> int:
    """Sum of the processes' current resident set sizes (VmRSS).

    Pages a forked worker still shares with its parent count twice, but the same both times,
    so the difference between two readings holds.
    """
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in (PROC / str(pid) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


@dataclass(frozen=True, slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def get(self) -> int:
        """Send `GET /`, read the whole answer; its status."""
        self.writer.write(_REQUEST)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status, length = _parse_head(head)
        await self.reader.readexactly(length)
        return status

    def open(self) -> bool:
        """Still open: the proxy neither closed nor reset it (the transport notices either
        even while nobody reads)."""
        return (
            not self.reader.at_eof()
            and self.reader.exception() is None
            and not self.writer.is_closing()
        )

    def close(self) -> None:
        self.writer.close()


def _parse_head(head: bytes) -> tuple[int, int]:
    """(status, Content-Length) of a response head; every proxy forwards the backend's
    Content-Length for `/`, so a head without one is an error here."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return status, int(value)
    raise ValueError(f"answer without Content-Length: {lines[0]!r}")


async def _measure(
    name: str, child: Child, port: int, connections: int, budget: float
) -> IdleResult:
    """One target's client phase, stopped after `budget` seconds whatever happens."""
    opened: list[_Connection] = []
    try:
        async with asyncio.timeout(budget):
            return await _hold(name, child, port, connections, opened)
    except TimeoutError:
        raise IdleError(f"{name}: the measurement did not finish within {budget:.0f} s") from None
    finally:
        await _close_all(opened)


async def _hold(
    name: str, child: Child, port: int, connections: int, opened: list[_Connection]
) -> IdleResult:
    """Open `connections` into `opened`, read the memory with them idle, probe a sample."""
    await _warm_up(name, port)
    await asyncio.sleep(SETTLE)
    rss_before = rss_bytes(process_tree(child.pid))
    started = time.monotonic()
    failures = await _open_many(port, connections, opened)
    open_seconds = time.monotonic() - started
    await asyncio.sleep(SETTLE)
    rss_idle = rss_bytes(process_tree(child.pid))
    child.check_alive()
    held = [connection for connection in opened if connection.open()]
    if len(held) < len(opened):
        failures.append(f"{len(opened) - len(held)} closed by the proxy while idle")
    sample = held[:: max(1, len(held) // SAMPLE)][:SAMPLE]
    answers = await asyncio.gather(*(_probe(c) for c in sample), return_exceptions=True)
    failures += [_describe(a) for a in answers if isinstance(a, BaseException)]
    failures += [
        f"status {a} on a sample request" for a in answers if isinstance(a, int) and a != 200
    ]
    sample_ok = sum(1 for answer in answers if answer == 200)
    return IdleResult(
        target=name,
        connections=connections,
        held=len(held),
        errors=connections - len(held) + len(sample) - sample_ok,
        rss_before=rss_before,
        rss_idle=rss_idle,
        sample=len(sample),
        sample_ok=sample_ok,
        open_seconds=open_seconds,
        first_error=failures[0] if failures else None,
    )


async def _warm_up(name: str, port: int) -> None:
    """A few requests, so lazily built state (the upstream connection, code run only once) is
    in the "before" reading rather than counted against the idle connections."""
    for _ in range(3):
        try:
            connection = await _open(port)
        except OSError as error:
            raise IdleError(f"{name}: cannot connect: {_describe(error)}") from error
        try:
            status = await _probe(connection)
        except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError) as error:
            raise IdleError(f"{name}: the warm-up request failed: {_describe(error)}") from error
        finally:
            connection.close()
        if status != 200:
            raise IdleError(f"{name}: the warm-up request got status {status}")


async def _open(port: int) -> _Connection:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return _Connection(reader, writer)


async def _open_many(port: int, connections: int, opened: list[_Connection]) -> list[str]:
    """Open `connections`, each answered once, into `opened`; what went wrong with the rest."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with gate, asyncio.timeout(CONNECTION_TIMEOUT):
            connection = await _open(port)
            try:
                status = await connection.get()
                if status != 200:
                    raise ValueError(f"status {status}")
            except BaseException:
                connection.close()
                raise
            opened.append(connection)

    outcomes = await asyncio.gather(*(one() for _ in range(connections)), return_exceptions=True)
    return [_describe(outcome) for outcome in outcomes if isinstance(outcome, BaseException)]


async def _probe(connection: _Connection) -> int:
    async with asyncio.timeout(CONNECTION_TIMEOUT):
        return await connection.get()


async def _close_all(opened: list[_Connection]) -> None:
    for connection in opened:
        connection.close()
    # Bounded: a proxy that stopped reading must not hold the benchmark here.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10):
            await asyncio.gather(*(c.writer.wait_closed() for c in opened), return_exceptions=True)


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {CONNECTION_TIMEOUT:g} s"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def text(report: IdleReport) -> str:
    lines = [
        f"RSS of each proxy's process tree with {report.connections:,} idle keep-alive client "
        f"connections (each answered one GET {SMALL_PATH}, {CONCURRENCY} opened at a time):",
        f"  {'target':<10} {'held':>7} {'errors':>7} {'RSS before':>11} {'RSS idle':>11}"
        f" {'KiB/conn':>9} {'still open':>11}",
    ]
    for r in report.results:
        lines.append(
            f"  {r.target:<10} {r.held:>7,} {r.errors:>7,} {_mib(r.rss_before):>11}"
            f" {_mib(r.rss_idle):>11} {r.kib_per_connection:>9.2f}"
            f" {f'{r.sample_ok}/{r.sample}':>11}"
        )
    lines += [
        f"  {r.target}: first error: {r.first_error}" for r in report.results if r.first_error
    ]
    lines += [
        "  still open: sample connections answering one more request after the reading.",
        "  nginx and HAProxy allocate tables for the connections they are configured to take when",
        "  they start, so part of their cost per connection is in RSS before.",
    ]
    return "\n".join(lines)


def to_json(report: IdleReport) -> dict[str, Any]:
    return {
        "connections": report.connections,
        "concurrency": CONCURRENCY,
        "settle_s": SETTLE,
        "versions": report.versions,
        "results": [
            {
                **asdict(r),
                "open_seconds": round(r.open_seconds, 3),
                "kib_per_connection": round(r.kib_per_connection, 3),
            }
            for r in report.results
        ],
    }


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
