"""Leader election against a real etcd: exactly one of two instances leads, the other takes over
when the leader crashes (its lease expires) and at once when it resigns."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from proxy.fleet.etcd import EtcdClient
from proxy.fleet.leader import Leadership
from proxy.fleet.members import Membership

TTL = 2


async def _until_one_leads(candidates: list[Leadership], within: float) -> Leadership:
    started = time.monotonic()
    while True:
        leaders = [candidate for candidate in candidates if candidate.is_leader]
        assert len(leaders) <= 1, "two leaders at once"
        if leaders:
            return leaders[0]
        assert time.monotonic() - started < within, "nobody leads"
        await asyncio.sleep(0.02)


async def _crash(task: asyncio.Task[None] | None) -> None:
    """What a killed process leaves behind: its background work stops, nothing is revoked."""
    assert task is not None
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
async def pair(
    client: EtcdClient, prefix: str
) -> AsyncIterator[tuple[list[Membership], list[Leadership]]]:
    members = [Membership(client, prefix, name, "", ttl=TTL) for name in ("a", "b")]
    candidates: list[Leadership] = []
    for name, member in zip(("a", "b"), members, strict=True):
        await member.start()
        candidates.append(Leadership(client, prefix, "rollouts", name, lambda m=member: m.lease))
    for candidate in candidates:
        candidate.start()
    yield members, candidates
    for candidate in candidates:
        await candidate.resign()
    for member in members:
        await member.stop()


async def test_exactly_one_of_two_leads(
    pair: tuple[list[Membership], list[Leadership]], client: EtcdClient, prefix: str
) -> None:
    _, candidates = pair
    leader = await _until_one_leads(candidates, 2)
    await asyncio.sleep(0.3)  # and it stays that way: the loser does not flap into leading
    assert [c.is_leader for c in candidates].count(True) == 1
    assert leader.is_leader
    held = await client.get(prefix + "leader/rollouts")
    assert held is not None
    assert held[0] == (b"a" if leader is candidates[0] else b"b")


async def test_the_other_takes_over_when_the_leader_crashes(
    pair: tuple[list[Membership], list[Leadership]],
) -> None:
    members, candidates = pair
    leader = await _until_one_leads(candidates, 2)
    index = candidates.index(leader)
    await _crash(leader._task)
    leader._task = None
    await _crash(members[index]._task)
    members[index]._task = None
    crashed = time.monotonic()
    other = candidates[1 - index]
    while not other.is_leader:
        assert time.monotonic() - crashed < TTL + 2, "no take-over within TTL + 2 s"
        await asyncio.sleep(0.02)
    # Its last keepalive came at most one interval (1 s) before the crash.
    assert time.monotonic() - crashed > TTL - 1.5, "took over before the lease could expire"
    # The crashed one's state is frozen (it is dead); forget it so teardown does not resign.
    leader._held_at = 0
    members[index]._lease = 0


async def test_resign_hands_over_at_once(
    pair: tuple[list[Membership], list[Leadership]],
) -> None:
    _, candidates = pair
    leader = await _until_one_leads(candidates, 2)
    other = candidates[1 - candidates.index(leader)]
    await leader.resign()
    assert not leader.is_leader
    resigned = time.monotonic()
    while not other.is_leader:
        assert time.monotonic() - resigned < 0.5, "resign did not hand over at once"
        await asyncio.sleep(0.01)


async def test_a_leader_whose_lease_expired_campaigns_again_under_its_new_lease(
    client: EtcdClient, prefix: str
) -> None:
    member = Membership(client, prefix, "a", "", ttl=TTL)
    await member.start()
    candidate = Leadership(client, prefix, "rollouts", "a", lambda: member.lease)
    candidate.start()
    try:
        await _until_one_leads([candidate], 2)
        lost = member.lease
        await client.lease_revoke(lost)  # what etcd does to a lease not renewed in time
        started = time.monotonic()
        while not (candidate.is_leader and member.lease not in (0, lost)):
            assert time.monotonic() - started < 4, "did not lead again under the new lease"
            await asyncio.sleep(0.02)
        held = await client.get(prefix + "leader/rollouts")
        assert held is not None
        assert held[0] == b"a"
    finally:
        await candidate.resign()
        await member.stop()
