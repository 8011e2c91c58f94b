"""The fleet's membership against a real etcd: instances publish what they applied, an admin
write waits for every live instance, crashed instances leave by their TTL, and a membership
survives an etcd restart."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from etcd_support import Etcd

from proxy.fleet.etcd import EtcdClient
from proxy.fleet.members import Membership


async def _until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    """Poll `check` until true; the seconds it took. Fails with `what` after `within` s."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within, what
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture
async def fleet(client: EtcdClient, prefix: str) -> AsyncIterator[list[Membership]]:
    members = [
        Membership(client, prefix, name, f"127.0.0.1:{9900 + n}", ttl=2)
        for n, name in enumerate(["a", "b", "c"])
    ]
    for member in members:
        await member.start()
    yield members
    for member in members:
        await member.stop()


async def test_three_instances_publish_and_are_listed(fleet: list[Membership]) -> None:
    for n, member in enumerate(fleet):
        await member.publish(10 + n)
    listed = await fleet[0].members()
    assert [(m.instance, m.applied, m.address) for m in listed] == [
        ("a", 10, "127.0.0.1:9900"),
        ("b", 11, "127.0.0.1:9901"),
        ("c", 12, "127.0.0.1:9902"),
    ]
    assert all(m.started <= m.seen <= time.time() for m in listed)


async def test_seen_is_refreshed_by_the_keepalive(fleet: list[Membership]) -> None:
    first = {m.instance: m.seen for m in await fleet[0].members()}

    async def all_seen_again() -> bool:
        return all(m.seen > first[m.instance] for m in await fleet[0].members())

    await _until(all_seen_again, 4, "seen was not refreshed")


async def test_wait_applied_answers_when_the_last_instance_publishes(
    fleet: list[Membership],
) -> None:
    await fleet[0].publish(5)
    await fleet[1].publish(5)
    waiting = asyncio.create_task(fleet[0].wait_applied(5, time.monotonic() + 10))
    await asyncio.sleep(0.3)
    assert not waiting.done(), "answered before c applied"
    published = time.monotonic()
    await fleet[2].publish(5)
    assert await waiting == (True, [])
    assert time.monotonic() - published < 0.5, "the watch should answer at once"


async def test_wait_applied_names_the_laggard_at_its_deadline(fleet: list[Membership]) -> None:
    await fleet[0].publish(7)
    await fleet[2].publish(8)
    started = time.monotonic()
    assert await fleet[0].wait_applied(7, started + 0.7) == (False, ["b"])
    assert 0.6 < time.monotonic() - started < 1.5


async def test_stop_leaves_at_once(fleet: list[Membership]) -> None:
    await fleet[2].stop()
    assert [m.instance for m in await fleet[0].members()] == ["a", "b"]


async def test_a_crashed_instance_leaves_by_its_ttl_and_no_longer_holds_writes_up(
    fleet: list[Membership],
) -> None:
    crashed = fleet[2]
    # A crash: the keepalive stops, nobody revokes the lease.
    assert crashed._task is not None
    crashed._task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await crashed._task
    crashed._task = None
    crashed._lease = 0  # so the fixture's stop() does not revoke it either
    await fleet[0].publish(3)
    await fleet[1].publish(3)
    waiting = asyncio.create_task(fleet[0].wait_applied(3, time.monotonic() + 10))

    async def gone() -> bool:
        return "c" not in [m.instance for m in await fleet[0].members()]

    took = await _until(gone, 2 + 3, "the crashed instance outlived its TTL")
    assert took > 0.5, "left before its TTL: the lease was revoked, not expired"
    assert await asyncio.wait_for(waiting, 1) == (True, [])


async def test_membership_comes_back_after_an_etcd_restart(own_etcd: Etcd, prefix: str) -> None:
    client = EtcdClient([own_etcd.url], timeout=1.0)
    member = Membership(client, prefix, "a", "127.0.0.1:9900", ttl=2)
    try:
        await member.start()
        await member.publish(4)
        own_etcd.stop()
        # Away for longer than the TTL, so etcd may have to let the lease go.
        await asyncio.sleep(2.5)
        own_etcd.start()

        async def back() -> bool:
            listed = await member.members()
            return [(m.instance, m.applied) for m in listed] == [("a", 4)]

        await _until(back, 5, "the membership did not come back")
        # Either etcd kept the lease (it renews every lease's TTL when it starts as leader) or
        # the membership granted a new one; both must leave the key alive under a live lease.
        assert await client.lease_keepalive(member.lease) > 0
    finally:
        await member.stop()
        await client.close()


async def test_an_expired_lease_is_granted_again_and_the_record_put_back(
    client: EtcdClient, prefix: str
) -> None:
    member = Membership(client, prefix, "a", "127.0.0.1:9900", ttl=2)
    try:
        await member.start()
        await member.publish(9)
        lost = member.lease
        # What etcd does to a lease not renewed within its TTL: gone, with its keys.
        await client.lease_revoke(lost)
        assert await member.members() == []

        async def rejoined() -> bool:
            listed = await member.members()
            return [(m.instance, m.applied) for m in listed] == [("a", 9)]

        await _until(rejoined, 3, "the membership did not grant a new lease")
        assert member.lease not in (0, lost)
    finally:
        await member.stop()
