"""Three `turnout run` instances on one real etcd converge on every change within a second.

Theory of operation: 200 weight changes are made round-robin on a, b and c with `?wait=local`
(the write answers once its own instance applied it, so what is measured is the propagation to
the others, not the write's own wait for them). The time each change takes to reach the whole
fleet is read from etcd itself: the test watches P/members/, where every instance publishes the
revision it applied, and notes when the last of the three reaches each revision. Then every
instance's admin view is read to check that "applied" means what the API shows (same revision,
same weights). The figures (p50, p99, max) are printed (`pytest -s`) and written to a file.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest
from etcd_support import Etcd
from fleet_support import ROUTE, Fleet, running_fleet

from proxy.fleet.etcd import EtcdClient
from proxy.fleet.members import Member

CHANGES = 200
PREFIX = "/turnout-e2e/converge/"
NAMES = ("a", "b", "c")
_MEMBER = pydantic.TypeAdapter(Member)


@pytest.fixture(scope="module")
def fleet(etcd: Etcd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with running_fleet([etcd.url], tmp_path_factory.mktemp("fleet"), PREFIX) as running:
        yield running


class AppliedWatch:
    """When the whole fleet (every name in NAMES) reached each revision, from P/members/."""

    def __init__(self, client: EtcdClient, prefix: str) -> None:
        self._client = client
        self._members = prefix + "members/"
        self.applied: dict[str, int] = {}
        self.reached: dict[int, float] = {}
        self._low = 0
        self._changed = asyncio.Event()

    async def run(self) -> None:
        items, at = await self._client.get_prefix(self._members)
        for item in items:
            self._note(item.key, item.value)
        async for events in self._client.watch(self._members, at + 1):
            for event in events:
                if event.kind == "put":
                    self._note(event.key, event.value)

    def _note(self, key: str, value: bytes) -> None:
        now = time.monotonic()
        member = _MEMBER.validate_json(value)
        self.applied[key.removeprefix(self._members)] = member.applied
        if set(NAMES) <= self.applied.keys():
            low = min(self.applied[name] for name in NAMES)
            for revision in range(self._low + 1, low + 1):
                self.reached.setdefault(revision, now)
            self._low = max(self._low, low)
        self._changed.set()

    async def until(self, revision: int, timeout: float) -> float:
        """The monotonic time at which every instance had applied `revision`."""
        async with asyncio.timeout(timeout):
            while revision not in self.reached:
                self._changed.clear()
                await self._changed.wait()
        return self.reached[revision]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def test_every_change_reaches_all_three_within_a_second(
    fleet: Fleet, etcd: Etcd, tmp_path: Path
) -> None:
    client = EtcdClient([etcd.url], timeout=2.0)
    watch = AppliedWatch(client, PREFIX)
    watching = asyncio.create_task(watch.run())
    latencies: list[float] = []
    lagging_views: list[tuple[int, str, int]] = []
    try:
        base = await asyncio.to_thread(fleet["a"].revision)
        await watch.until(base, 5)
        for i in range(CHANGES):
            instance = fleet.instances[i % len(fleet.instances)]
            weights = {"blue": i + 2, "green": 1}
            started = time.monotonic()
            answer = await asyncio.to_thread(instance.set_weights, weights, wait_local=True)
            assert answer.status == 200, (instance.name, answer)
            revision = answer.body["revision"]
            assert revision == base + i + 1, "one write, one fleet revision"
            reached = await watch.until(revision, 10)
            latencies.append(reached - started)
            # "Applied" as published must be what each admin view shows already.
            views = await asyncio.gather(
                *(asyncio.to_thread(each.route) for each in fleet.instances)
            )
            for other, view in zip(fleet.instances, views, strict=True):
                if view.body["revision"] != revision or view.body["weights"] != weights:
                    lagging_views.append((revision, other.name, view.body["revision"]))
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        await client.close()
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    figures = (
        f"fleet convergence over {len(latencies)} changes (3 instances, one etcd): "
        f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )
    print("\n" + figures)
    (tmp_path / "fleet-convergence.txt").write_text(figures + "\n")
    print(f"(written to {tmp_path / 'fleet-convergence.txt'})")
    assert p99 < 1.0, figures
    assert not lagging_views, f"published applied before the view showed it: {lagging_views[:5]}"


def test_same_revision_is_the_same_state_everywhere(fleet: Fleet) -> None:
    answer = fleet["b"].set_weights({"blue": 7, "green": 3})
    assert answer.status == 200, answer
    revision = answer.body["revision"]
    views = fleet.views()
    assert {v.etag for v in views} == {revision}
    assert {v.body["revision"] for v in views} == {revision}
    assert all(v.body["weights"] == {"blue": 7, "green": 3} for v in views)
    # The whole routing view agrees, apart from what each instance observed of its own traffic.
    lists = [instance.get("/v1/routes") for instance in fleet.instances]
    assert {answer.etag for answer in lists} == {revision}

    def shared(body: dict[str, object]) -> object:
        routes = body["routes"]
        assert isinstance(routes, list)
        return [
            {k: v for k, v in route.items() if not k.startswith("observed")} for route in routes
        ]

    assert shared(lists[0].body) == shared(lists[1].body) == shared(lists[2].body)


def test_a_plain_write_answers_after_every_instance_applied_it(fleet: Fleet) -> None:
    """No ?wait: read-your-writes on every instance the moment the write answers."""
    for i in range(15):
        writer = fleet.instances[i % 3]
        weights = {"blue": 100 + i, "green": 5}
        answer = writer.set_weights(weights)
        assert answer.status == 200, (writer.name, answer)
        revision = answer.body["revision"]
        assert answer.etag == revision
        for view, instance in zip(fleet.views(), fleet.instances, strict=True):
            assert view.body["revision"] == revision, (writer.name, instance.name, view.body)
            assert view.body["weights"] == weights, (instance.name, view.body)
            assert view.body["name"] == ROUTE


def test_every_instance_has_the_fleet_s_one_history(fleet: Fleet) -> None:
    """The history is shared state: the same entries on every instance, one per revision, the
    seeding included (whichever instance won the race to seed)."""
    histories = []
    for instance in fleet.instances:
        answer = instance.get("/v1/history?limit=1000")
        assert answer.status == 200, answer
        entries = [(c["revision"], c["action"], c["actor"]) for c in answer.body["changes"]]
        revisions = [revision for revision, _, _ in entries]
        assert len(revisions) == len(set(revisions)), f"{instance.name}: {entries[-3:]}"
        histories.append(entries)
    assert histories[0] == histories[1] == histories[2]
