"""The data plane's state: the installed snapshot, backends as targets, connections, deadlines.

Theory of operation. `install(snapshot, settings)` prepares everything a request reads from a
new snapshot (for each pool, its eligible backends' `Target`s in the same order as
`pool.eligible`) and from the settings (`Limits`: timeouts, retries, header limits, flags), and
publishes both as one `Installed` object with one assignment: a request never sees the routing
of one install with the limits of another. A request routes by the object installed when its
routing begins and keeps it, limits included, to its end, however many swaps happen while it is
in flight; a connection reads its own limits (the next head's timeout, keep-alive) from the
object installed when that phase begins.

`Target`s outlive snapshots: a backend keeps its in-flight count and its keep-alive pool across
weight changes, switches and health changes, because they are keyed by (pool, backend, address),
not by snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from time import monotonic
from typing import Any, Final

from proxy.access_log import AccessLog
from proxy.admission import route_host
from proxy.config import OutlierConfig, Settings
from proxy.downstream import Downstream
from proxy.headers import REQUEST_SPECIAL_LENGTHS, request_header_actions
from proxy.metrics import NO_ROUTE, BackendReport, RouteReport, RouteStats
from proxy.upstream import ConnectionPool
from router import Snapshot

REPORT_INTERVAL: Final = 1.0

ROLL_BLOCK: Final = 4096
"""Bytes of CSPRNG output read at once for `DataPlane.secure_roll` (512 rolls)."""

_HEX_PAIRS: Final = [b"%02x" % value for value in range(256)]


class Target:
    """A backend as the data plane uses it: where it is, its connections, its load, and how
    many of its recent requests failed in a row (passive health checking)."""

    __slots__ = (
        "address",
        "attempt_errors",
        "attempts",
        "backend",
        "connect_errors",
        "connections",
        "failures",
        "gateway_failures",
        "inflight",
        "pool",
        "report",
        "reported_at",
        "retries",
        "timeouts",
    )

    def __init__(self, pool: str, backend: str, connections: ConnectionPool) -> None:
        self.pool = pool
        self.backend = backend
        self.connections = connections
        self.address = connections.address
        self.inflight = 0
        self.failures = 0
        """5xx responses in a row."""
        self.gateway_failures = 0
        """Connect failures, resets before a response, timeouts in a row."""
        self.report: Callable[[Target, str, int], None] | None = None
        self.reported_at = -REPORT_INTERVAL
        self.connect_errors = 0
        self.timeouts = 0
        self.retries = 0
        self.attempts = 0
        """Upstream attempts sent here, by the rules of metrics.RouteStats.attempts."""
        self.attempt_errors = 0
        """Of those, the ones that failed (metrics.RouteStats.attempt_errors)."""

    def answered(self, status: int, limits: Limits) -> None:
        """A response head arrived from the backend (`limits`: the request's)."""
        if status >= 500:
            self.failures += 1
            limit = limits.outlier(self.pool)[0]
            if self.failures == limit:
                self.failures = 0  # reported: the next streak counts afresh (probation)
                self._report("5xx", limit)
        else:
            self.failures = 0
            self.gateway_failures = 0

    def failed(self, limits: Limits) -> None:
        """The backend could not be reached, reset the connection, or timed out."""
        self.gateway_failures += 1
        limit = limits.outlier(self.pool)[1]
        if self.gateway_failures == limit:
            self.gateway_failures = 0
            self._report("gateway", limit)

    def _report(self, reason: str, count: int) -> None:
        # At most one report a second per backend: when the ejection cap refuses to eject,
        # a backend failing every request must not become a stream of messages.
        now = monotonic()
        if self.report is not None and now - self.reported_at >= REPORT_INTERVAL:
            self.reported_at = now
            self.report(self, reason, count)


@dataclass(frozen=True, slots=True)
class Limits:
    """The data plane's settings as requests read them, derived once per reload.

    A native class in a compiled module, so that `limits.read_timeout` is one field read like
    the `DataPlane` attribute it replaces; requests and connections capture it once."""

    header_timeout: float
    keepalive_timeout: float
    max_header_bytes: int
    max_headers: int
    normalize_path: bool
    merge_slashes: bool
    connect_timeout: float
    read_timeout: float
    retries: int
    tunnel_idle_timeout: float
    keepalive_per_backend: int
    """Idle connections a backend address keeps; applied when a request gives one back."""
    keepalive_idle_timeout: float
    max_response_header_bytes: int
    decision_header: bool
    access_log: AccessLog | None
    access_log_query: bool
    buckets: tuple[float, ...]
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    trust_cache: dict[str, bool]
    """Peer address -> trusted: a cache of `trusted`, so it lives and dies with it."""
    outliers: dict[str, tuple[int, int]]
    """Pool -> (consecutive 5xx, consecutive gateway failures) that report a backend;
    (0, 0) where outlier detection is off."""
    outlier_default: tuple[int, int]
    """[outlier] itself, for a pool the settings do not name."""

    def outlier(self, pool: str) -> tuple[int, int]:
        return self.outliers.get(pool, self.outlier_default)

    def is_trusted(self, address: str) -> bool:
        """Whether a peer may vouch for X-Forwarded-* (cached per address, not per request)."""
        cache = self.trust_cache
        trusted = cache.get(address)
        if trusted is None:
            try:
                ip = ipaddress.ip_address(address)
                trusted = any(ip in network for network in self.trusted)
            except ValueError:
                trusted = False
            if len(cache) > 10_000:
                cache.clear()
            cache[address] = trusted
        return trusted


def build_limits(settings: Settings, access_log: AccessLog | None) -> Limits:
    downstream, upstream = settings.downstream, settings.upstream

    def limits(outlier: OutlierConfig) -> tuple[int, int]:
        if not outlier.enabled:
            return (0, 0)
        return (outlier.consecutive_5xx, outlier.consecutive_gateway_failures)

    return Limits(
        header_timeout=downstream.header_timeout,
        keepalive_timeout=downstream.keepalive_timeout,
        max_header_bytes=downstream.max_header_bytes,
        max_headers=downstream.max_headers,
        normalize_path=downstream.normalize_path,
        merge_slashes=downstream.merge_slashes,
        connect_timeout=upstream.connect_timeout,
        read_timeout=upstream.read_timeout,
        retries=upstream.retries,
        tunnel_idle_timeout=upstream.tunnel_idle_timeout,
        keepalive_per_backend=upstream.keepalive_per_backend,
        keepalive_idle_timeout=upstream.keepalive_idle_timeout,
        max_response_header_bytes=upstream.max_response_header_bytes,
        decision_header=settings.debug.decision_header,
        access_log=access_log,
        access_log_query=settings.access_log.query,
        buckets=tuple(settings.metrics.buckets),
        trusted=tuple(
            ipaddress.ip_network(network, strict=False)
            for network in settings.forwarded.trusted_proxies
        ),
        trust_cache={},
        outliers={pool: limits(settings.pool_outlier(pool)) for pool in settings.pools},
        outlier_default=limits(settings.outlier),
    )


@dataclass(frozen=True, slots=True)
class Installed:
    """One snapshot, what the data plane derived from it, and the limits requests keep;
    swapped as a whole."""

    snapshot: Snapshot
    limits: Limits
    targets: dict[str, tuple[Target, ...]]
    """Pool name -> targets aligned with `pool.eligible`."""
    rule_headers: frozenset[bytes]
    header_lengths: frozenset[int]
    """Lengths of every request header name the proxy acts on (special or read by a rule)."""
    header_actions: dict[bytes, int]
    """What the parser does with a request header, by name as spelled (proxy.headers)."""
    issues_ids: bool
    """Some route issues sticky ids: their requests' rolls come from `DataPlane.secure_roll`."""


class DataPlane:
    def __init__(self, settings: Settings, snapshot: Snapshot, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.settings = settings
        self.access_log: AccessLog | None = None
        self._host_cache: dict[bytes | None, str] = {}
        self.targets: dict[tuple[str, str, str, int], Target] = {}
        self.connection_pools: dict[tuple[str, int], ConnectionPool] = {}
        self.connections: set[Downstream] = set()
        self.requests = 0
        """Exchanges finished (answered or failed) since start: reported to the control plane."""
        self.on_outlier: Callable[[Target, str, int], None] | None = None
        """Set by the worker: tells the control plane, which decides on ejections."""
        self.stats: dict[str, dict[str, RouteStats]] = {}
        """route -> pool -> its counters (kept across snapshots: they only grow)."""
        self.installed = self._prepare(snapshot, self._limits(settings))
        self.no_route = self.stats_for(NO_ROUTE, NO_ROUTE)
        self.draining = False
        self._request_prefix = os.urandom(8).hex().encode()
        self._request_counter = 0
        self._request_block = b""
        self._roll_block = b""
        self._roll_at = 0
        self._sweeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed_waiters: list[asyncio.Future[None]] = []
        """Who waits in `all_closed()`: an asyncio.Event set and cleared on every connection
        is interpreted Python twice per connection (callgrind), where nobody waits but a
        stopping worker."""

    def _limits(self, settings: Settings) -> Limits:
        """Limits from (reloaded) settings. The access log stays one object for the worker's
        life, because it holds a file and batched lines: an in-flight request that captured it
        must never write to a closed file. A reload points it at its new file (flushing what
        the old one had first; one thread, so no line can land in between) instead of
        replacing it; disabled, it is only left out of the new limits, so requests that began
        with it still log their line."""
        self.settings = settings
        config = settings.access_log
        if config.enabled:
            if self.access_log is None:
                self.access_log = AccessLog(config)
            else:
                self.access_log.reopen(config)
        return build_limits(settings, self.access_log if config.enabled else None)

    def stats_for(self, route: str, pool: str) -> RouteStats:
        pools = self.stats.get(route)
        if pools is None:
            pools = self.stats[route] = {}
        stats = pools.get(pool)
        if stats is None:
            # Counters outlive installs: the buckets are those current when they are created.
            stats = pools[pool] = RouteStats(route, pool, self.installed.limits.buckets)
        return stats

    def reports(
        self,
    ) -> tuple[dict[tuple[str, str], RouteReport], dict[tuple[str, str], BackendReport]]:
        """Everything counted so far, for the control plane."""
        routes = {
            (route, pool): stats.report()
            for route, pools in self.stats.items()
            for pool, stats in pools.items()
        }
        backends: dict[tuple[str, str], BackendReport] = {}
        for target in self.targets.values():
            key = (target.pool, target.backend)
            # A backend whose address changed has two targets: their counts add up.
            earlier = backends.get(key) or BackendReport(0, 0, 0, 0, 0, 0, 0)
            backends[key] = BackendReport(
                inflight=earlier.inflight + target.inflight,
                connect_errors=earlier.connect_errors + target.connect_errors,
                timeouts=earlier.timeouts + target.timeouts,
                retries=earlier.retries + target.retries,
                connections=earlier.connections + target.connections.connected,
                attempts=earlier.attempts + target.attempts,
                attempt_errors=earlier.attempt_errors + target.attempt_errors,
            )
        return routes, backends

    def inflight(self) -> dict[tuple[str, str], int]:
        """Requests in flight per (pool, backend), open WebSockets included."""
        counts: dict[tuple[str, str], int] = {}
        for target in self.targets.values():
            if target.inflight:
                key = (target.pool, target.backend)
                counts[key] = counts.get(key, 0) + target.inflight
        return counts

    def drain(self, idle_grace: float) -> None:
        """Shutting down: every connection answers its next response with Connection: close
        and then closes; idle ones are closed after `idle_grace` if no request comes."""
        self.draining = True
        deadline = self.loop.time() + idle_grace
        for connection in list(self.connections):
            connection.drain(deadline)

    # Publishing

    def install(self, snapshot: Snapshot, settings: Settings | None = None) -> None:
        """Route every request that begins from now on by `snapshot` and (reloaded)
        `settings`: one assignment, so a request sees both or neither."""
        limits = self.installed.limits if settings is None else self._limits(settings)
        self.installed = self._prepare(snapshot, limits)

    @property
    def snapshot(self) -> Snapshot:
        return self.installed.snapshot

    def _prepare(self, snapshot: Snapshot, limits: Limits) -> Installed:
        targets: dict[str, tuple[Target, ...]] = {}
        for name, pool in snapshot.pools.items():
            targets[name] = tuple(
                self._target(name, backend.name, backend.host, backend.port)
                for backend in pool.eligible
            )
        rule_headers = frozenset(name.encode("latin-1") for name in snapshot.rule_headers)
        return Installed(
            snapshot=snapshot,
            limits=limits,
            targets=targets,
            rule_headers=rule_headers,
            header_lengths=REQUEST_SPECIAL_LENGTHS | {len(name) for name in rule_headers},
            header_actions=request_header_actions(rule_headers),
            issues_ids=any(r.sticky is not None and r.sticky.issue for r in snapshot.routes),
        )

    def _target(self, pool: str, backend: str, host: str, port: int) -> Target:
        key = (pool, backend, host, port)
        target = self.targets.get(key)
        if target is None:
            connections = self.connection_pools.get((host, port))
            if connections is None:
                connections = self.connection_pools[(host, port)] = ConnectionPool(
                    host, port, loop=self.loop
                )
            target = self.targets[key] = Target(pool, backend, connections)
            target.report = self._outlier
        return target

    def _outlier(self, target: Target, reason: str, count: int) -> None:
        if self.on_outlier is not None:
            self.on_outlier(target, reason, count)

    # Per connection and per request helpers

    def new_connection(self) -> Downstream:
        return Downstream(self)

    def track(self, connection: Downstream) -> None:
        self.connections.add(connection)

    def forget(self, connection: Downstream) -> None:
        connections = self.connections
        connections.discard(connection)
        if not connections and self._closed_waiters:
            waiters, self._closed_waiters = self._closed_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def all_closed(self) -> None:
        """Wait until no client connection is open."""
        if not self.connections:
            return
        waiter: asyncio.Future[None] = self.loop.create_future()
        self._closed_waiters.append(waiter)
        await waiter

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a background step of a request (opening a connection) and keep a reference to
        it: the event loop holds tasks only weakly, and a collected task would vanish silently."""
        task = self.loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def route_host(self, raw: bytes | None) -> str:
        """The routing form of a Host header, cached: a sidecar sees few distinct hosts, and
        decoding and normalising the same bytes on every request is pure waste."""
        host = self._host_cache.get(raw)
        if host is None:
            host = route_host(raw)
            if len(self._host_cache) > 1000:  # bounded against a client inventing hosts
                self._host_cache.clear()
            self._host_cache[raw] = host
        return host

    def new_request_id(self) -> bytes:
        """Unique per process without a system call: a random prefix and a counter, 32 hex
        digits in all. Formatting a number costs 1,600 instructions compiled (callgrind), so
        all but the counter's last two digits are formatted once per 256 ids."""
        counter = self._request_counter = self._request_counter + 1
        low = counter & 0xFF
        if low == 0 or not self._request_block:
            self._request_block = self._request_prefix + b"%014x" % (counter >> 8)
        return self._request_block + _HEX_PAIRS[low]

    def secure_roll(self) -> int:
        """64 bits from the operating system's CSPRNG, read ROLL_BLOCK bytes at a time.

        A route that issues sticky ids takes each id from its request's roll and shows it to
        the client in Set-Cookie: from `random`'s Mersenne Twister, 312 of them would let anyone
        compute the generator's state and so every id issued next to other users. One
        `os.urandom` per 512 ids keeps the system call off almost every request."""
        at = self._roll_at
        block = self._roll_block
        if at >= len(block):
            block = self._roll_block = os.urandom(ROLL_BLOCK)
            at = 0
        self._roll_at = at + 8
        return int.from_bytes(block[at : at + 8], "big")

    # Deadlines and idle connections

    def start(self) -> None:
        self._sweeper = self.loop.create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self.access_log is not None:
            self.access_log.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for pool in self.connection_pools.values():
            pool.close_all()

    async def _sweep_forever(self) -> None:
        while True:
            limits = self.installed.limits
            shortest = min(
                limits.header_timeout,
                limits.read_timeout,
                limits.connect_timeout,
                limits.keepalive_timeout,
            )
            # Deadlines are checked at a quarter of the shortest timeout (at most once a
            # second), so a timeout fires late by at most a quarter of itself.
            await asyncio.sleep(min(1.0, max(0.01, shortest / 4)))
            self.sweep(self.loop.time())

    def sweep(self, now: float) -> None:
        for connection in [c for c in self.connections if c.deadline <= now]:
            connection.expired()
        idle_timeout = self.installed.limits.keepalive_idle_timeout
        for pool in self.connection_pools.values():
            pool.sweep(now, idle_timeout)
