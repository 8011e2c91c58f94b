"""Every instance's counts in etcd, so the rollout leader judges the whole fleet's traffic.

Theory of operation:

- Each instance puts its lifetime counters (what the route and pool judges read; see
  proxy.fleet.counts_sum) as one compact JSON value at `P/counts/{instance}` every `interval`
  seconds, under its membership lease: an instance that dies or loses etcd beyond its TTL takes
  its counts with it, and the leader's Accumulator keeps what it had added and adds no more.
- Only what live rollouts need is published (`routes_of`, `pools_of`): a fleet with hundreds
  of routes and no rollout puts a few bytes per second per instance, not its whole telemetry.
- The publisher never stops for etcd: while etcd is away (or the lease is being re-granted)
  a put fails or is skipped, and the next interval tries again. Counters are lifetime totals,
  so a missed put loses nothing but freshness.
- The leader reads every instance's counts with one range read (`read_counts`); a value it
  cannot read (another version of turnout) is left out, as an absent instance is.

Document: `{"v": 1, "instance": "a", "at": 1.5e9, "revision": 41, "routes": [[route, pool, attempts,
attempt_errors, [bucket, ...]], ...], "backends": [[pool, backend, attempts, attempt_errors,
inflight], ...]}`. Lists rather than objects keyed by "route\\0pool": names may hold any
character, and a list needs no separator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, Final, Protocol

import orjson

from proxy.fleet.counts_sum import Accumulator, BackendCount, InstanceCounts, Key, RouteCount
from proxy.fleet.etcd import EtcdClient, EtcdError
from proxy.fleet.layout import Keys

__all__ = [
    "Accumulator",
    "BackendCount",
    "CountsPublisher",
    "InstanceCounts",
    "Key",
    "RouteCount",
    "decode",
    "encode",
    "from_telemetry",
    "read_counts",
]

log = logging.getLogger(__name__)

VERSION: Final = 1


class SumLike(Protocol):
    """What is read of a route's telemetry (proxy.metrics.Sum)."""

    @property
    def attempts(self) -> int: ...
    @property
    def attempt_errors(self) -> int: ...
    @property
    def buckets(self) -> Sequence[int]: ...


class ReportLike(Protocol):
    """What is read of a backend's telemetry (proxy.metrics.BackendReport)."""

    @property
    def attempts(self) -> int: ...
    @property
    def attempt_errors(self) -> int: ...
    @property
    def inflight(self) -> int: ...


def from_telemetry(
    instance: str,
    routes: Mapping[Key, SumLike],
    backends: Mapping[Key, ReportLike],
    at: float,
    *,
    routes_of: Collection[Key] | None = None,
    pools_of: Collection[str] | None = None,
    revision: int = 0,
) -> InstanceCounts:
    """This instance's reading from its telemetry (Telemetry.routes() and .backends()): only
    the (route, pool) keys in `routes_of` and the pools in `pools_of` (None: everything)."""
    return InstanceCounts(
        instance,
        at,
        {
            key: RouteCount(total.attempts, total.attempt_errors, tuple(total.buckets))
            for key, total in routes.items()
            if routes_of is None or key in routes_of
        },
        {
            key: BackendCount(report.attempts, report.attempt_errors, report.inflight)
            for key, report in backends.items()
            if pools_of is None or key[0] in pools_of
        },
        revision,
    )


def encode(counts: InstanceCounts) -> bytes:
    return orjson.dumps(
        {
            "v": VERSION,
            "instance": counts.instance,
            "at": counts.at,
            "revision": counts.revision,
            "routes": [
                [route, pool, c.attempts, c.attempt_errors, c.buckets]
                for (route, pool), c in counts.routes.items()
            ],
            "backends": [
                [pool, backend, c.attempts, c.attempt_errors, c.inflight]
                for (pool, backend), c in counts.backends.items()
            ],
        }
    )


class _Unreadable(ValueError):
    pass


def _count(value: Any) -> int:
    # bool is an int to Python, never a count to us; a negative count is no reading either.
    if type(value) is not int or value < 0:
        raise _Unreadable(value)
    return value


def _name(value: Any) -> str:
    if type(value) is not str:
        raise _Unreadable(value)
    return value


def _row(value: Any, width: int) -> list[Any]:
    if type(value) is not list or len(value) != width:
        raise _Unreadable(value)
    return value


def decode(raw: bytes) -> InstanceCounts | None:
    """The reading in a `P/counts/{instance}` value; None for anything else (never raises)."""
    try:
        document = orjson.loads(raw)
        if type(document) is not dict or document.get("v") != VERSION:
            return None
        at = document["at"]
        if type(at) not in (int, float):
            return None
        routes: dict[Key, RouteCount] = {}
        for row in document["routes"]:
            route, pool, attempts, errors, buckets = _row(row, 5)
            if type(buckets) is not list:
                return None
            routes[(_name(route), _name(pool))] = RouteCount(
                _count(attempts), _count(errors), tuple(_count(b) for b in buckets)
            )
        backends: dict[Key, BackendCount] = {}
        for row in document["backends"]:
            pool, backend, attempts, errors, inflight = _row(row, 5)
            backends[(_name(pool), _name(backend))] = BackendCount(
                _count(attempts), _count(errors), _count(inflight)
            )
        revision = _count(document.get("revision", 0))
        return InstanceCounts(_name(document["instance"]), float(at), routes, backends, revision)
    except (orjson.JSONDecodeError, _Unreadable, KeyError, TypeError, ValueError):
        return None


async def read_counts(client: EtcdClient, prefix: str) -> dict[str, InstanceCounts]:
    """Every live instance's latest reading (instance -> counts), from one range read.
    Raises EtcdUnavailable when etcd cannot be reached (the judge then sees no new data)."""
    keys = Keys(prefix)
    items, _ = await client.get_prefix(keys.counts)
    found: dict[str, InstanceCounts] = {}
    for item in items:
        counts = decode(item.value)
        if counts is not None:
            # The key names the instance: a value copied under another name cannot pose as it.
            found[item.key.removeprefix(keys.counts)] = counts
    return found


class CountsPublisher:
    """Puts `collect()` at `P/counts/{instance}` under `lease_of()` every `interval` seconds.

    `lease_of` is the membership's current lease (0: none now, skip); `collect` returns None
    when there is nothing to publish. `refresh`, when given, is awaited before each collect
    (e.g. asking the workers for fresh stats); its failure skips that interval."""

    def __init__(
        self,
        client: EtcdClient,
        prefix: str,
        instance: str,
        lease_of: Callable[[], int],
        collect: Callable[[], InstanceCounts | None],
        interval: float = 1.0,
        *,
        refresh: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._client = client
        self._key = Keys(prefix).count(instance)
        self._lease_of = lease_of
        self._collect = collect
        self._interval = interval
        self._refresh = refresh
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"counts {self._key}")

    async def stop(self) -> None:
        """Stop publishing (the key stays until its lease ends: the membership revokes it)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def publish_once(self) -> bool:
        """One put now; whether a value was put. Raises EtcdError when etcd refused it."""
        lease = self._lease_of()
        if not lease:
            return False
        if self._refresh is not None:
            await self._refresh()
            lease = self._lease_of()
        counts = self._collect()
        if counts is None or not lease:
            return False
        await self._client.put(self._key, encode(counts), lease=lease)
        return True

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            try:
                await self.publish_once()
            except EtcdError as error:
                # Unreachable, or the lease just expired (the membership grants a new one):
                # the next interval tries again.
                log.debug("counts not published to %s: %r", self._key, error)
            except Exception:
                log.exception("counts not published to %s", self._key)
            # A fixed cadence, not interval + the put's time; a stall skips, never bursts.
            due = max(due + self._interval, loop.time())
            await asyncio.sleep(due - loop.time())
