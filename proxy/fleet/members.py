"""Who is in the fleet, and which revision each instance applied.

Theory of operation:

- Each instance owns one key, `P/members/{instance}`, holding a `Member` as JSON, put under the
  instance's own lease. The lease is the instance's heartbeat: keepalive every ttl/5 s (at least
  1 s), so an instance that crashes or loses etcd for longer than its TTL leaves the fleet by
  itself, and `stop()` revokes the lease so a clean shutdown leaves at once.
- The key is re-put on every keepalive with a fresh `seen`, so `GET /v1/fleet` can show how
  recently each instance was heard from. Every write of the key goes through one lock: two
  writes in flight could otherwise arrive out of order and publish an older `applied`.
- A keepalive that answers 0 means the lease expired (etcd was away longer than the TTL, or the
  process stalled): its keys are gone, so a new lease is granted and the record put again.
  `lease` is the current one; the leader election campaigns under it.
- `wait_applied` (an admin write's read-your-writes for the whole fleet) reads the members once
  and then watches `P/members/` from that read's revision + 1. A watch rather than a poll: it
  answers the moment the last instance publishes (a poll adds up to its interval to every admin
  write), and it costs etcd one stream per waiting write instead of a full range read of every
  member per interval. A member whose key is deleted (crashed, TTL over) stops counting at once.
  If the watch breaks (etcd restarted, or compacted past our revision) it reads and watches again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import orjson
import pydantic

from proxy.fleet.etcd import Compacted, EtcdClient, EtcdUnavailable

# How long to wait before reading again when etcd could not be reached.
_RETRY = 0.2


@dataclass(frozen=True, slots=True)
class Member:
    """One live instance: the revision it applied, where its admin API is, when it started and
    when it last renewed its lease (wall-clock seconds since the epoch, as other hosts read it)."""

    instance: str
    applied: int
    address: str
    started: float
    seen: float


_MEMBER = pydantic.TypeAdapter(Member)


def _decode(value: bytes) -> Member | None:
    # A record that does not parse (another version of turnout) is left out, not fatal.
    try:
        return _MEMBER.validate_json(value)
    except pydantic.ValidationError:
        return None


class Membership:
    """This instance's membership of the fleet under `prefix` (P, ending in "/")."""

    def __init__(
        self, client: EtcdClient, prefix: str, instance: str, address: str, ttl: int = 5
    ) -> None:
        self._client = client
        self._members = prefix + "members/"
        self._key = self._members + instance
        self._instance = instance
        self._address = address
        self._ttl = ttl
        self._started = time.time()
        self._applied = 0
        self._lease = 0
        self._write = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def lease(self) -> int:
        """The lease this instance's keys live under now (0 before start and while re-granting)."""
        return self._lease

    @property
    def applied(self) -> int:
        return self._applied

    async def start(self) -> None:
        """Join the fleet (raises EtcdUnavailable when etcd cannot be reached) and keep the
        membership alive in the background until `stop()`."""
        await self._grant()
        self._task = asyncio.create_task(self._keep_alive(), name=f"membership {self._key}")

    async def publish(self, applied: int) -> None:
        """Tell the fleet this instance applied `applied`. When etcd cannot be reached the next
        keepalive publishes it, so this never raises EtcdUnavailable."""
        self._applied = max(self._applied, applied)
        with contextlib.suppress(EtcdUnavailable):
            await self._put()

    async def members(self) -> list[Member]:
        """Every live instance, from one consistent read."""
        items, _ = await self._client.get_prefix(self._members)
        return [member for item in items if (member := _decode(item.value)) is not None]

    async def wait_applied(self, revision: int, deadline: float) -> tuple[bool, list[str]]:
        """Wait until every live instance applied `revision` or `deadline` (a time.monotonic()
        value) passes: (True, []) or (False, the instances that had not, sorted)."""
        laggards: list[str] = []
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                while True:
                    try:
                        await self._until_applied(revision, laggards)
                        return True, []
                    except (EtcdUnavailable, Compacted):
                        await asyncio.sleep(_RETRY)
        except TimeoutError:
            return False, sorted(laggards)

    async def stop(self) -> None:
        """Leave the fleet now: stop the keepalive and revoke the lease (its keys go with it)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        lease, self._lease = self._lease, 0
        if lease:
            # Unreachable etcd: the lease then ends by its TTL instead.
            with contextlib.suppress(EtcdUnavailable):
                await self._client.lease_revoke(lease)

    async def _until_applied(self, revision: int, laggards: list[str]) -> None:
        """Return once every live member applied `revision`; `laggards` is kept current for
        the caller's timeout."""
        items, read_at = await self._client.get_prefix(self._members)
        applied = {
            item.key.removeprefix(self._members): member.applied
            for item in items
            if (member := _decode(item.value)) is not None
        }

        def behind() -> bool:
            laggards[:] = [name for name, done in applied.items() if done < revision]
            return bool(laggards)

        if not behind():
            return
        async for events in self._client.watch(self._members, read_at + 1):
            for event in events:
                name = event.key.removeprefix(self._members)
                if event.kind == "delete":
                    applied.pop(name, None)
                elif (member := _decode(event.value)) is not None:
                    applied[name] = member.applied
            if not behind():
                return

    async def _grant(self) -> None:
        self._lease = await self._client.lease_grant(self._ttl)
        await self._put()

    async def _put(self) -> None:
        async with self._write:
            if not self._lease:
                return
            member = Member(
                self._instance, self._applied, self._address, self._started, time.time()
            )
            await self._client.put(self._key, orjson.dumps(member), lease=self._lease)

    async def _keep_alive(self) -> None:
        interval = max(1.0, self._ttl / 5)
        while True:
            await asyncio.sleep(interval)
            try:
                if not self._lease or await self._client.lease_keepalive(self._lease) == 0:
                    # The lease is gone and our keys with it: join again under a new one.
                    self._lease = 0
                    await self._grant()
                else:
                    await self._put()
            except EtcdUnavailable:
                # Keep serving and keep trying: etcd may come back before the TTL runs out.
                continue
