"""The fleet's etcd client against a real etcd: conditional writes, ordered watches,
compaction, leases, and etcd going away and coming back."""

from __future__ import annotations

import asyncio
import time

import pytest
from etcd_support import Etcd

from proxy.fleet.etcd import (
    Compacted,
    Delete,
    EtcdClient,
    EtcdUnavailable,
    Event,
    Put,
    Unchanged,
)


async def test_get_put_and_a_missing_key(client: EtcdClient, prefix: str) -> None:
    assert await client.get(prefix + "absent") is None
    revision = await client.put(prefix + "a", b"\x00binary\xff")
    assert await client.get(prefix + "a") == (b"\x00binary\xff", revision)
    await client.delete(prefix + "a")
    assert await client.get(prefix + "a") is None


async def test_two_writers_with_the_same_expected_revision_exactly_one_wins(
    client: EtcdClient, etcd: Etcd, prefix: str
) -> None:
    key = prefix + "state"
    assert await client.put_if(key, b"v1", 0)
    assert not await client.put_if(key, b"again", 0)  # 0: only when it does not exist
    _, seen = await client.get(key) or (b"", 0)
    other = EtcdClient([etcd.url])
    try:
        wins = await asyncio.gather(
            client.put_if(key, b"from-a", seen), other.put_if(key, b"from-b", seen)
        )
    finally:
        await other.close()
    assert sorted(wins) == [False, True]
    value, _ = await client.get(key) or (b"", 0)
    assert value == (b"from-a" if wins[0] else b"from-b")


async def test_a_multi_key_txn_applies_whole_or_not_at_all(client: EtcdClient, prefix: str) -> None:
    first = await client.put(prefix + "x", b"1")
    applied, revision = await client.txn(
        [Unchanged(prefix + "x", first), Unchanged(prefix + "y", 0)],
        [Put(prefix + "x", b"2"), Put(prefix + "y", b"2"), Delete(prefix + "z")],
    )
    assert applied
    assert await client.get(prefix + "x") == (b"2", revision)
    assert await client.get(prefix + "y") == (b"2", revision)
    applied, _ = await client.txn([Unchanged(prefix + "x", first)], [Put(prefix + "y", b"3")])
    assert not applied
    assert await client.get(prefix + "y") == (b"2", revision)


async def test_watch_sees_every_change_in_order_from_a_revision(
    client: EtcdClient, prefix: str
) -> None:
    start = await client.put(prefix + "k0", b"0")
    for index in range(1, 20):
        await client.put(prefix + f"k{index % 3}", str(index).encode())
    seen: list[Event] = []

    async def follow() -> None:
        async for batch in client.watch(prefix, start):
            seen.extend(batch)
            if len(seen) >= 40:
                return

    watching = asyncio.create_task(follow())
    await client.put(prefix.rstrip("/") + "-other", b"not under the prefix")
    for index in range(20, 39):
        await client.put(prefix + f"k{index % 3}", str(index).encode())
    await client.delete(prefix + "k0")  # the 40th change
    await asyncio.wait_for(watching, 5)
    assert [event.value for event in seen[:39]] == [str(index).encode() for index in range(39)]
    assert (seen[-1].kind, seen[-1].key) == ("delete", prefix + "k0")
    revisions = [event.mod_revision for event in seen]
    assert revisions == sorted(revisions)
    assert revisions[0] == start


async def test_after_compaction_a_watch_from_an_old_revision_raises_compacted(
    client: EtcdClient, prefix: str
) -> None:
    old = await client.put(prefix + "a", b"1")
    await client.put(prefix + "b", b"1")
    latest = await client.put(prefix + "a", b"2")
    await client.compact(latest)
    with pytest.raises(Compacted) as raised:
        await anext(client.watch(prefix, old))  # no event: the compacted revision is refused
    assert raised.value.compact_revision == latest
    with pytest.raises(Compacted):
        await client.get_prefix(prefix, revision=old)
    items, revision = await client.get_prefix(prefix)
    assert revision >= latest
    assert [(item.key, item.value, item.mod_revision) for item in items] == [
        (prefix + "a", b"2", latest),
        (prefix + "b", b"1", latest - 1),
    ]
    # The snapshot at that one revision stays readable while writes go on after it.
    await client.put(prefix + "c", b"new")
    again, same = await client.get_prefix(prefix, revision=revision)
    assert (again, same) == (items, revision)


async def test_a_leased_key_vanishes_when_the_lease_expires_without_keepalive(
    client: EtcdClient, prefix: str
) -> None:
    kept = await client.lease_grant(2)
    dropped = await client.lease_grant(2)
    await client.put(prefix + "kept", b"alive", lease=kept)
    await client.put(prefix + "dropped", b"alive", lease=dropped)
    deadline = time.monotonic() + 8
    while await client.get(prefix + "dropped") is not None:
        assert time.monotonic() < deadline, "the lease's key outlived its lease"
        assert await client.lease_keepalive(kept) > 0
        await asyncio.sleep(0.5)
    assert await client.get(prefix + "kept") is not None
    assert await client.lease_keepalive(dropped) == 0
    await client.lease_revoke(kept)
    assert await client.get(prefix + "kept") is None


@pytest.mark.slow
async def test_etcd_stopped_is_unavailable_quickly_and_a_restart_on_its_data_recovers(
    own_etcd: Etcd,
) -> None:
    client = EtcdClient([own_etcd.url], timeout=2.0)
    try:
        revision = await client.put("/fleet/state", b"before")
        watch = client.watch("/fleet/", revision + 1)
        pending = asyncio.ensure_future(anext(watch))
        await asyncio.sleep(0.2)  # the watch is established
        own_etcd.stop()
        started = time.monotonic()
        with pytest.raises(EtcdUnavailable):
            await asyncio.wait_for(pending, 5)
        for call in (client.get("/fleet/state"), client.put_if("/fleet/state", b"x", revision)):
            with pytest.raises(EtcdUnavailable):
                await call
        assert time.monotonic() - started < 3
        await watch.aclose()

        await asyncio.to_thread(own_etcd.start)
        assert await client.get("/fleet/state") == (b"before", revision)
        assert await client.put_if("/fleet/state", b"after", revision)
        async for batch in client.watch("/fleet/", revision + 1):
            assert [event.value for event in batch] == [b"after"]
            break
    finally:
        await client.close()
