"""The fleet's store against a real etcd: one txn per write, exactly one of two writers wins,
the history window; and the last-known-good copy on disk."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from etcd_support import Etcd
from states import change, spec, state

from proxy.fleet.etcd import EtcdClient
from proxy.fleet.layout import BadDocument
from proxy.fleet.store import FleetStore, LastKnownGood, UnreadableCopy


async def test_load_returns_what_was_committed_with_its_mod_revision(
    client: EtcdClient, prefix: str
) -> None:
    store = FleetStore(client, prefix)
    assert await store.load() is None
    first = await store.commit(0, state(1), change(1))
    assert first is not None
    assert await store.load() == (state(1), first)
    second = await store.commit(first, state(2), change(2))
    assert second is not None
    assert second > first
    assert await store.load() == (state(2), second)
    assert await store.commit(0, state(3), change(3)) is None  # 0: only when none exists
    assert [entry.revision for entry in await store.history()] == [1, 2]


async def test_two_commits_with_the_same_expected_revision_exactly_one_wins(
    client: EtcdClient, etcd: Etcd, prefix: str
) -> None:
    store = FleetStore(client, prefix)
    base = await store.commit(0, state(1), change(1))
    assert base is not None
    other_client = EtcdClient([etcd.url])
    try:
        other = FleetStore(other_client, prefix)
        mine = replace(state(2), spec=spec(20))
        theirs = replace(state(2), spec=spec(30))
        results = await asyncio.gather(
            store.commit(base, mine, replace(change(2), actor="mine")),
            other.commit(base, theirs, replace(change(2), actor="theirs")),
        )
    finally:
        await other_client.close()
    winners = [result for result in results if result is not None]
    assert len(winners) == 1
    won, stored = (mine, "mine") if results[0] is not None else (theirs, "theirs")
    # The loser's state and its history entry are nowhere: not half of its txn either.
    assert await store.load() == (won, winners[0])
    assert [(entry.revision, entry.actor) for entry in await store.history()] == [
        (1, "local"),
        (2, stored),
    ]


async def test_history_keeps_the_newest_entries_up_to_the_limit(
    client: EtcdClient, prefix: str
) -> None:
    store = FleetStore(client, prefix, history_limit=3)
    mod_revision = 0
    for revision in range(1, 8):
        committed = await store.commit(mod_revision, state(revision), change(revision))
        assert committed is not None
        mod_revision = committed
    assert [entry.revision for entry in await store.history()] == [5, 6, 7]
    assert [entry.revision for entry in await store.history(2)] == [6, 7]
    items, _ = await client.get_prefix(store.keys.history)
    assert len(items) == 3  # deleted in etcd, not only cut off when read


async def test_a_change_for_another_revision_than_the_state_is_refused(
    client: EtcdClient, prefix: str
) -> None:
    store = FleetStore(client, prefix)
    with pytest.raises(ValueError, match="revision 2 is not the state's 1"):
        await store.commit(0, state(1), change(2))
    assert await store.load() is None


async def test_a_foreign_value_in_the_state_key_is_a_clear_error(
    client: EtcdClient, prefix: str
) -> None:
    await client.put(prefix + "state", b'{"format": 1, "revision": "one"}')
    with pytest.raises(BadDocument, match="revision"):
        await FleetStore(client, prefix).load()


def test_last_known_good_round_trips_and_replaces_atomically(tmp_path: Path) -> None:
    copy = LastKnownGood(tmp_path / "fleet.lkg.json")
    assert copy.load() is None  # missing: nothing to start from, not an error
    copy.save(state(4), 40)
    copy.save(state(5), 52)
    assert copy.load() == (state(5), 52)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fleet.lkg.json"]  # no temp left


def test_a_last_known_good_of_another_prefix_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "fleet.lkg.json"
    LastKnownGood(path, "/turnout/staging/").save(state(7), 70)
    # A config now naming another fleet must not serve (or seed it with) staging's state.
    assert LastKnownGood(path, "/turnout/prod/").load() is None
    assert LastKnownGood(path, "/turnout/staging/").load() == (state(7), 70)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "zero-length"),
        (b'{"modRevision": 3, "sta', "unexpected end of data"),  # a torn write
        (b'{"modRevision": 3, "state": {"format": 1}}', "revision: Field required"),
        (b'{"state": {}}', "no integer modRevision"),
    ],
)
def test_an_unreadable_last_known_good_is_a_clear_error_and_stays(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "fleet.lkg.json"
    path.write_bytes(content)
    with pytest.raises(UnreadableCopy, match=reason) as raised:
        LastKnownGood(path).load()
    assert str(path) in str(raised.value)
    assert path.read_bytes() == content
