"""The fleet while its etcd is away, and across an etcd restart and a forced compaction.

Theory of operation: each test gets its own etcd (it stops and starts it) and its own fleet of
three `turnout run` instances. (a) With etcd stopped, traffic keeps flowing through every
instance with the last state, writes answer 503 `state-unavailable` and change nothing, and an
instance restarted meanwhile comes back from its last-known-good copy (its config file says
otherwise, so the backends answering tell which state it serves); once etcd is back, writes
succeed and the fleet converges. (b) A writer thread keeps changing weights through the three
instances (retrying 503s) while etcd is stopped and started and while its history is compacted
right after it returns (so watches restarting from their last revision find it compacted); in
the end every instance shows the last revision and the same state, and its history is gapless.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from etcd_support import Etcd
from fleet_support import Answer, Fleet, call, poll, running_fleet

from proxy.fleet.etcd import EtcdClient

PREFIX = "/turnout-e2e/outage/"
UNAVAILABLE = "urn:turnout:problem:state-unavailable"
BEFORE = {"blue": 1, "green": 0}


def serves(instance_port: int) -> bool | None:
    answer = call(f"http://127.0.0.1:{instance_port}/", timeout=2)
    return answer.status == 200 or None


def test_etcd_down_traffic_flows_writes_refused_restart_serves_last_state(
    own_etcd: Etcd, tmp_path: Path
) -> None:
    with running_fleet([own_etcd.url], tmp_path, PREFIX, timeout=1.0, ttl=2) as fleet:
        answer = fleet["a"].set_weights(BEFORE)
        assert answer.status == 200, answer
        before = answer.body["revision"]
        for instance in fleet.instances:
            assert set(instance.traffic(6)) == {"blue"}, instance.name

        own_etcd.stop()
        for instance in fleet.instances:
            assert set(instance.traffic(20)) == {"blue"}, f"{instance.name} kept serving"
        for instance in fleet.instances:
            started = time.monotonic()
            refused = instance.set_weights({"blue": 0, "green": 1})
            assert refused.status == 503, (instance.name, refused)
            assert refused.problem == UNAVAILABLE, refused.body
            assert time.monotonic() - started < 5, "answered within the etcd timeout"
            view = instance.route()
            assert view.body["revision"] == before, "a refused write changes nothing"
            assert view.body["weights"] == BEFORE
            assert set(instance.traffic(6)) == {"blue"}

        # Restarted while etcd is down: its file says 1:1, its last-known-good copy says 1:0.
        c = fleet["c"]
        c.stop()
        c.start()
        poll(lambda: serves(c.port), 30, "the restarted instance serves")
        assert set(c.traffic(20)) == {"blue"}, "serves the last state, not its file's"
        view = c.route()
        assert view.status == 200, view
        assert (view.body["revision"], view.body["weights"]) == (before, BEFORE)
        refused = c.set_weights({"blue": 3, "green": 3})
        assert (refused.status, refused.problem) == (503, UNAVAILABLE), refused

        own_etcd.start()
        after = {"blue": 2, "green": 1}

        def written() -> Answer | None:
            answer = fleet["a"].set_weights(after)
            return answer if answer.status in (200, 504) else None

        revision = poll(written, 20, "a write once etcd is back", 0.1).body["revision"]
        assert revision == before + 1
        views = poll(lambda: fleet.converged(revision), 15, "the fleet converges")
        assert all(v.body["weights"] == after for v in views)
        assert set(c.traffic(30)) == {"blue", "green"}, "c follows etcd again"


@dataclass
class Writer:
    """Changes weights through the instances in turn until stopped; retries what answers 503."""

    fleet: Fleet
    committed: list[tuple[int, dict[str, int]]] = field(default_factory=list)
    refused: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def run(self) -> None:
        i = 0
        try:
            while not self.stop.is_set():
                instance = self.fleet.instances[i % 3]
                weights = {"blue": i + 2, "green": 1}
                answer = instance.set_weights(weights, wait_local=True)
                if answer.status == 503:
                    self.refused += 1
                    time.sleep(0.05)
                    continue
                assert answer.status == 200, (instance.name, answer)
                self.committed.append((answer.body["revision"], weights))
                i += 1
        except BaseException as error:  # reported by the test's thread
            self.error = error

    def more(self, count: int, timeout: float, what: str) -> None:
        goal = len(self.committed) + count
        poll(lambda: self.error is not None or len(self.committed) >= goal, timeout, what)
        assert self.error is None, self.error


async def compact_now(url: str) -> int:
    client = EtcdClient([url], timeout=2.0)
    try:
        revision = await client.revision()
        await client.compact(revision)
        return revision
    finally:
        await client.close()


def test_no_update_missed_across_an_etcd_restart_and_a_compaction(
    own_etcd: Etcd, tmp_path: Path
) -> None:
    with running_fleet([own_etcd.url], tmp_path, PREFIX, timeout=1.0, wait=2.0) as fleet:
        writer = Writer(fleet)
        thread = threading.Thread(target=writer.run, daemon=True)
        thread.start()
        try:
            writer.more(10, 10, "writes before the restart")
            own_etcd.stop()
            refused = writer.refused
            poll(
                lambda: writer.error is not None or writer.refused > refused,
                10,
                "writes refused while etcd is down",
            )
            assert writer.error is None, writer.error
            own_etcd.start()
            # At once, before the watches come back: they resume from a compacted revision.
            asyncio.run(compact_now(own_etcd.url))
            writer.more(15, 20, "writes after the restart and the compaction")
            asyncio.run(compact_now(own_etcd.url))
            writer.more(15, 20, "writes after a compaction in their midst")
        finally:
            writer.stop.set()
            thread.join(30)
        assert writer.error is None, writer.error
        revisions = [revision for revision, _ in writer.committed]
        assert revisions == sorted(set(revisions)), "each write its own, increasing revision"
        last, weights = writer.committed[-1]
        views = poll(lambda: fleet.converged(last), 15, "every instance shows the last write")
        assert all(v.body["weights"] == weights for v in views)
        histories = []
        for instance in fleet.instances:
            history = instance.get("/v1/history?limit=1000")
            assert history.status == 200, history
            seen = [change["revision"] for change in history.body["changes"]]
            assert seen[0] == last, (instance.name, seen[:3])
            missing = sorted(set(range(seen[-1], last + 1)) - set(seen))
            twice = sorted({revision for revision in seen if seen.count(revision) > 1})
            assert (missing, twice) == ([], []), f"{instance.name}: missing, twice"
            assert set(revisions) <= set(seen), f"{instance.name} lost a committed write"
            histories.append(
                [(c["revision"], c["action"], c["after"]) for c in history.body["changes"]]
            )
        assert histories[0] == histories[1] == histories[2], "one history for the fleet"
