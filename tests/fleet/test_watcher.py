"""The state watcher against a real etcd: every state in order, once; the latest state after
a compaction it was behind; no state lost, repeated or reordered across an etcd restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from etcd_support import Etcd
from states import change, state

from proxy.fleet.etcd import EtcdClient
from proxy.fleet.layout import SharedState
from proxy.fleet.store import FleetStore
from proxy.fleet.watcher import StateWatcher


class Applied:
    """What the watcher applied, in order: (turnout revision, etcd mod_revision)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []
        self.states: list[SharedState] = []

    async def __call__(self, shared: SharedState, mod_revision: int) -> None:
        self.seen.append((shared.revision, mod_revision))
        self.states.append(shared)

    @property
    def revisions(self) -> list[int]:
        return [revision for revision, _ in self.seen]


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not reached before the deadline"
        await asyncio.sleep(0.01)


async def commit_range(store: FleetStore, first: int, last: int) -> int:
    """Commit states first..last after whatever is stored; the last mod_revision."""
    loaded = await store.load()
    mod_revision = loaded[1] if loaded else 0
    for revision in range(first, last + 1):
        committed = await store.commit(mod_revision, state(revision), change(revision))
        assert committed is not None
        mod_revision = committed
    return mod_revision


@pytest.fixture
async def watchers() -> AsyncIterator[list[StateWatcher]]:
    started: list[StateWatcher] = []
    yield started
    for watcher in started:
        await watcher.stop()


async def test_fifty_commits_are_applied_in_order_each_once(
    client: EtcdClient, prefix: str, watchers: list[StateWatcher]
) -> None:
    store = FleetStore(client, prefix)
    applied = Applied()
    start = await client.revision() + 1
    watcher = StateWatcher(client, prefix, applied, start)
    watchers.append(watcher)
    watcher.start()
    await client.put(prefix + "stateless", b"a neighbour key the watch covers but ignores")
    last = await commit_range(store, 1, 50)
    await until(lambda: watcher.applied_revision == 50)
    assert applied.revisions == list(range(1, 51))
    assert applied.states[-1] == state(50)
    mod_revisions = [mod for _, mod in applied.seen]
    assert mod_revisions == sorted(set(mod_revisions))
    assert mod_revisions[-1] == last
    assert watcher.next_revision == last + 1


async def test_a_failing_apply_is_retried_not_skipped(
    client: EtcdClient, prefix: str, watchers: list[StateWatcher]
) -> None:
    store = FleetStore(client, prefix)
    applied = Applied()
    failures = [RuntimeError("the workers did not answer")]

    async def flaky(shared: SharedState, mod_revision: int) -> None:
        if shared.revision == 2 and failures:
            raise failures.pop()
        await applied(shared, mod_revision)

    watcher = StateWatcher(client, prefix, flaky, await client.revision() + 1)
    watchers.append(watcher)
    watcher.start()
    await commit_range(store, 1, 3)
    await until(lambda: watcher.applied_revision == 3)
    assert not failures
    assert applied.revisions == [1, 2, 3]


async def test_behind_a_compaction_the_watcher_applies_the_latest_state_and_follows_on(
    client: EtcdClient, prefix: str, watchers: list[StateWatcher]
) -> None:
    store = FleetStore(client, prefix)
    first = Applied()
    watcher = StateWatcher(client, prefix, first, await client.revision() + 1)
    watcher.start()
    await commit_range(store, 1, 3)
    await until(lambda: watcher.applied_revision == 3)
    await watcher.stop()
    resume_from = watcher.next_revision

    await commit_range(store, 4, 12)
    await client.compact(await client.revision())

    later = Applied()
    behind = StateWatcher(client, prefix, later, resume_from, applied_revision=3)
    watchers.append(behind)
    behind.start()
    await until(lambda: behind.applied_revision == 12)
    assert later.states == [state(12)]  # the snapshot, not states 4..11 (compacted away)
    await commit_range(store, 13, 14)
    await until(lambda: behind.applied_revision == 14)
    assert later.revisions == [12, 13, 14]


@pytest.mark.slow
async def test_across_an_etcd_restart_no_state_is_missed_repeated_or_reordered(
    own_etcd: Etcd, caplog: pytest.LogCaptureFixture
) -> None:
    client = EtcdClient([own_etcd.url], timeout=2.0)
    writer_client = EtcdClient([own_etcd.url], timeout=2.0)
    applied = Applied()
    watcher = StateWatcher(client, "/fleet/", applied, 1)
    try:
        store = FleetStore(writer_client, "/fleet/")
        watcher.start()
        await commit_range(store, 1, 10)
        await until(lambda: watcher.applied_revision == 10)
        own_etcd.stop()
        await asyncio.sleep(0.3)  # the watcher sees etcd gone and backs off
        await asyncio.to_thread(own_etcd.start)
        # Written at once, while the watcher may still be waiting to reconnect.
        await commit_range(store, 11, 20)
        await until(lambda: watcher.applied_revision == 20, timeout=15)
        assert applied.revisions == list(range(1, 21))
        assert applied.states[-1] == state(20)
        assert any("ended" in record.getMessage() for record in caplog.records)  # it did resume
    finally:
        await watcher.stop()
        await client.close()
        await writer_client.close()
