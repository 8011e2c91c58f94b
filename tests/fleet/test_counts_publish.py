"""The counts' I/O against a real etcd: a publisher puts its readings every interval under its
lease, the leader reads them all, the key goes with its lease, and the publisher keeps going
through an etcd restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from etcd_support import Etcd

from proxy.fleet.counts import (
    BackendCount,
    CountsPublisher,
    InstanceCounts,
    RouteCount,
    read_counts,
)
from proxy.fleet.etcd import EtcdClient, EtcdUnavailable
from proxy.fleet.layout import Keys

INTERVAL = 0.1


async def _until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    """Poll `check` until true; fails with `what` after `within` seconds."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within, what
        await asyncio.sleep(0.05)


class Source:
    """An instance's telemetry that grows by one attempt on every collect."""

    def __init__(self, instance: str) -> None:
        self.instance = instance
        self.attempts = 0
        self.lease = 0
        self.enabled = True

    def collect(self) -> InstanceCounts | None:
        if not self.enabled:
            return None
        self.attempts += 1
        return InstanceCounts(
            self.instance,
            time.time(),
            {("r", "canary"): RouteCount(self.attempts, 0, (self.attempts, 0))},
            {("canary", "b1"): BackendCount(self.attempts, 0, 1)},
        )


@pytest.fixture
async def publishing(
    client: EtcdClient, prefix: str
) -> AsyncIterator[tuple[Source, CountsPublisher]]:
    source = Source("a")
    source.lease = await client.lease_grant(10)
    publisher = CountsPublisher(
        client, prefix, "a", lambda: source.lease, source.collect, interval=INTERVAL
    )
    publisher.start()
    yield source, publisher
    await publisher.stop()
    await client.lease_revoke(source.lease)


async def _attempts(client: EtcdClient, prefix: str, instance: str = "a") -> int:
    counts = (await read_counts(client, prefix)).get(instance)
    return -1 if counts is None else counts.routes[("r", "canary")].attempts


async def test_published_counts_are_read_every_interval_and_garbage_is_left_out(
    client: EtcdClient, prefix: str, publishing: tuple[Source, CountsPublisher]
) -> None:
    source, _ = publishing
    await client.put(Keys(prefix).count("old-version"), b'{"v": 99}')
    await client.put(Keys(prefix).count("broken"), b"\xff")

    async def published_twice() -> bool:
        return await _attempts(client, prefix) >= 2

    await _until(published_twice, 5, "the publisher did not put a second reading")
    found = await read_counts(client, prefix)
    assert set(found) == {"a"}
    reading = found["a"]
    assert reading.instance == "a"
    assert reading.backends == {
        ("canary", "b1"): BackendCount(reading.routes[("r", "canary")].attempts, 0, 1)
    }
    # The value lives under the publisher's lease: it goes when the instance does.
    item = next(
        i for i in (await client.get_prefix(Keys(prefix).counts))[0] if i.key.endswith("/a")
    )
    assert item.lease == source.lease


async def test_nothing_is_put_without_a_lease_or_a_reading(client: EtcdClient, prefix: str) -> None:
    source = Source("a")
    publisher = CountsPublisher(client, prefix, "a", lambda: source.lease, source.collect, INTERVAL)
    publisher.start()
    try:
        await asyncio.sleep(5 * INTERVAL)
        assert await read_counts(client, prefix) == {}
        assert source.attempts == 0, "collected although there was no lease to publish under"
        source.enabled = False
        source.lease = await client.lease_grant(10)
        await asyncio.sleep(5 * INTERVAL)
        assert await read_counts(client, prefix) == {}
        source.enabled = True

        async def published() -> bool:
            return await _attempts(client, prefix) >= 1

        await _until(published, 5, "no reading once there was a lease and a reading")
    finally:
        await publisher.stop()
        if source.lease:
            await client.lease_revoke(source.lease)


async def test_the_key_goes_with_its_lease_and_comes_back_under_a_new_one(
    client: EtcdClient, prefix: str, publishing: tuple[Source, CountsPublisher]
) -> None:
    source, _ = publishing

    async def present() -> bool:
        return await _attempts(client, prefix) >= 1

    async def absent() -> bool:
        return await _attempts(client, prefix) == -1

    await _until(present, 5, "never published")
    await client.lease_revoke(source.lease)
    await _until(absent, 5, "the counts outlived their lease")
    # The publisher keeps putting under the revoked lease (etcd refuses: lease not found)
    # until the membership grants a new one; the key must not come back without a lease.
    await asyncio.sleep(5 * INTERVAL)
    assert await absent()
    source.lease = await client.lease_grant(10)
    await _until(present, 5, "the publisher stopped after etcd refused a put")


async def test_the_publisher_survives_an_etcd_restart(own_etcd: Etcd, prefix: str) -> None:
    client = EtcdClient([own_etcd.url], timeout=0.5)
    source = Source("a")
    source.lease = await client.lease_grant(60)
    publisher = CountsPublisher(client, prefix, "a", lambda: source.lease, source.collect, INTERVAL)
    publisher.start()
    try:

        async def published() -> bool:
            return await _attempts(client, prefix) >= 1

        await _until(published, 5, "never published")
        own_etcd.stop()
        await asyncio.sleep(10 * INTERVAL)  # several failed puts while etcd is away
        before = source.attempts
        own_etcd.start()

        async def published_again() -> bool:
            try:
                return await _attempts(client, prefix) > before
            except EtcdUnavailable:
                return False

        await _until(published_again, 10, "no new reading after etcd came back")
    finally:
        await publisher.stop()
        await client.close()
