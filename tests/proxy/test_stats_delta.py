"""A worker reports only the counters that moved; the control plane rebuilds the whole Stats.

Each test plays a worker (whole reports as `DataPlane.reports()` makes them, evolving at random:
counters growing, gauges going up and down, new routes and backends appearing), sends them the
way proxy.worker does (through `Sent`, then pickled as on the channel) and rebuilds them the way
proxy.supervisor does (`merge`), and checks that what the control plane holds is equal to the
whole report, so everything built on it (/metrics, the admin API, rollouts, drains) is too.
"""

from __future__ import annotations

import pickle
import random
from collections.abc import Iterator

from proxy.channel import Stats
from proxy.metrics import BackendReport, RouteReport
from proxy.stats_delta import Sent, merge
from proxy.telemetry import Telemetry

Key = tuple[str, str]


class FakeWorker:
    """Whole reports of one worker process, changing a little from one second to the next."""

    def __init__(self, worker_id: int, seed: int) -> None:
        self.worker_id = worker_id
        self.random = random.Random(seed)
        self.nested: dict[str, dict[str, RouteReport]] = {}
        self.backends: dict[Key, BackendReport] = {}
        self.requests = 0
        for index in range(20):
            self._add(index)
        self.sent = Sent()

    def _add(self, index: int) -> None:
        # As DataPlane.stats: a route's pools grouped under it, a new pool of a route that has
        # some already (half the time) among them, not last.
        route = (
            f"r{self.random.randrange(index)}"
            if index and self.random.random() < 0.5
            else f"r{index}"
        )
        self.nested.setdefault(route, {})[f"p{index}"] = RouteReport(
            0, {}, {}, (0, 0, 0), 0.0, 0, 0
        )
        self.backends[(f"p{index}", f"b{index}")] = BackendReport(0, 0, 0, 0, 0, 0, 0)

    @property
    def routes(self) -> dict[Key, RouteReport]:
        return {(r, p): report for r, pools in self.nested.items() for p, report in pools.items()}

    def tick(self) -> None:
        """A second of (little) traffic: a few entries move, sometimes a new one appears."""
        rng = self.random
        if rng.random() < 0.2:
            self._add(len(self.backends))
        for key in rng.sample(sorted(self.routes), 3):
            old = self.nested[key[0]][key[1]]
            code = rng.choice((200, 404, 503))
            bucket = rng.randrange(3)
            self.requests += 1
            self.nested[key[0]][key[1]] = RouteReport(
                inflight=rng.randrange(3),
                codes={**old.codes, code: old.codes.get(code, 0) + 1},
                rules={**old.rules, "weight": old.rules.get("weight", 0) + 1},
                buckets=tuple(n + (i == bucket) for i, n in enumerate(old.buckets)),
                duration_sum=old.duration_sum + rng.random(),
                bytes_in=old.bytes_in + rng.randrange(100),
                bytes_out=old.bytes_out + rng.randrange(100),
                attempts=old.attempts + 1,
                attempt_errors=old.attempt_errors + (code == 503),
            )
        for key in rng.sample(sorted(self.backends), 3):
            old = self.backends[key]
            self.backends[key] = BackendReport(
                inflight=rng.randrange(2),  # a gauge: may go back to what was last sent
                connect_errors=old.connect_errors + rng.randrange(2),
                timeouts=old.timeouts,
                retries=old.retries + rng.randrange(2),
                connections=rng.randrange(3),
                attempts=old.attempts + 1,
                attempt_errors=old.attempt_errors,
            )

    def whole(self) -> Stats:
        inflight = {key: r.inflight for key, r in self.backends.items() if r.inflight}
        return Stats(
            self.worker_id, 1, self.requests, 2, inflight, dict(self.routes), dict(self.backends)
        )

    def send(self) -> Stats:
        """What goes on the channel (as proxy.worker.Worker._stats builds it), pickled."""
        whole = self.whole()
        message = Stats(
            whole.worker_id,
            whole.revision,
            whole.requests,
            whole.connections,
            whole.inflight,
            self.sent.routes_changed(dict(whole.routes)),
            self.sent.backends_changed(dict(whole.backends)),
            partial=True,
        )
        loaded: Stats = pickle.loads(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        return loaded


def channel(worker: FakeWorker, seconds: int) -> Iterator[tuple[Stats, Stats, Stats]]:
    """(what was sent, what the control plane rebuilt, the whole report) each second."""
    whole_stats: Stats | None = None
    for _ in range(seconds):
        worker.tick()
        sent = worker.send()
        whole_stats = merge(whole_stats, sent)
        yield sent, whole_stats, worker.whole()


def test_the_rebuilt_stats_equal_the_whole_report_every_second() -> None:
    worker = FakeWorker(0, seed=1)
    earlier: list[tuple[Stats, dict[Key, RouteReport]]] = []
    for index, (sent, rebuilt, whole) in enumerate(channel(worker, 200)):
        assert rebuilt == whole
        assert not rebuilt.partial
        # In the same order too: the dashboard iterates the sums unsorted.
        assert list(rebuilt.routes) == list(whole.routes)
        assert list(rebuilt.backends) == list(whole.backends)
        if index == 0:  # the first report of a process carries every entry, zeros included
            assert sent.routes == whole.routes
            assert sent.backends == whole.backends
        else:  # later ones only what moved: here at most 3 + 1 of each
            assert 1 <= len(sent.routes) <= 4
            assert 1 <= len(sent.backends) <= 4
        earlier.append((rebuilt, dict(rebuilt.routes)))
    # Rebuilding never changed a Stats handed out before (callers keep and compare them).
    for rebuilt, routes in earlier:
        assert rebuilt.routes == routes


def test_a_second_with_nothing_moving_sends_no_entry() -> None:
    worker = FakeWorker(0, seed=2)
    first = worker.send()
    assert len(first.routes) == 20
    assert len(first.backends) == 20
    again = worker.send()
    assert again.routes == {}
    assert again.backends == {}
    assert merge(merge(None, first), again) == worker.whole()


def test_a_gauge_back_at_its_last_sent_value_is_not_resent_but_a_move_away_is() -> None:
    worker = FakeWorker(0, seed=3)
    key = ("p0", "b0")
    worker.send()
    worker.backends[key] = BackendReport(1, 0, 0, 0, 1, 0, 0)
    assert worker.send().backends == {key: worker.backends[key]}
    worker.backends[key] = BackendReport(0, 0, 0, 0, 0, 0, 0)
    assert worker.send().backends == {key: worker.backends[key]}
    assert worker.send().backends == {}


def test_instance_totals_match_whole_reports_across_worker_restarts() -> None:
    """Two workers, one of them restarted twice (a new process: new counters from zero, a new
    channel): the control plane's totals are those it would have had from whole reports."""
    fed_whole, fed_merged = Telemetry(), Telemetry()
    generations = {0: 0, 1: 0}
    workers = {worker_id: FakeWorker(worker_id, seed=10 + worker_id) for worker_id in (0, 1)}
    rebuilt: dict[int, Stats | None] = {0: None, 1: None}
    for second in range(120):
        if second in (40, 90):  # worker 1's process dies; the supervisor retires it
            fed_whole.retire(1)
            fed_merged.retire(1)
            generations[1] += 1
            workers[1] = FakeWorker(1, seed=100 + second)
            rebuilt[1] = None  # the new process's channel: nothing to merge onto
        for worker_id, worker in workers.items():
            worker.tick()
            sent = worker.send()
            rebuilt[worker_id] = merge(rebuilt[worker_id], sent)
            fed_merged.update(rebuilt[worker_id])  # type: ignore[arg-type]
            fed_whole.update(worker.whole())
        assert fed_merged.routes() == fed_whole.routes()
        assert list(fed_merged.routes()) == list(fed_whole.routes())
        assert fed_merged.backends() == fed_whole.backends()
        assert fed_merged.requests() == fed_whole.requests()
        assert fed_merged.inflight() == fed_whole.inflight()
    assert generations[1] == 2


def test_whole_stats_pass_through_merge_unchanged() -> None:
    """A Stats that is not partial (a test's, or an older worker's) is taken as it is."""
    whole = FakeWorker(0, seed=4).whole()
    assert merge(None, whole) is whole
    assert merge(whole, whole) is whole
