"""admin_api.series, synchronously and table-driven: per-second points from cumulative counters
(spread over late ticks and pauses, never negative, reset by new bucket bounds), the minute's
totals and quantiles, and the rollouts' evidence history (bounded, halved when full, one final
point, a new run starts over)."""

from __future__ import annotations

import pytest

from admin_api.series import EvidenceHistory, EvidenceSample, Series, quantile
from proxy.control.values import RouteCounters, RouteCounts

BOUNDS = (0.1, 0.5, 1.0)
KEY = ("web", "canary")


def counts(requests: int, errors: int = 0, buckets: tuple[int, ...] | None = None) -> RouteCounts:
    """`requests` all in the first bucket unless `buckets` says otherwise."""
    return RouteCounts(requests, errors, buckets or (requests, 0, 0, 0))


def counters(*entries: tuple[tuple[str, str], RouteCounts]) -> RouteCounters:
    return RouteCounters(BOUNDS, dict(entries))


def run(ticks: list[tuple[float, int, int]], length: int = 5) -> Series:
    """`ticks`: (monotonic time, cumulative requests, cumulative errors) of KEY."""
    series = Series(length)
    for at, requests, errors in ticks:
        series.update(at, counters((KEY, counts(requests, errors))))
    return series


@pytest.mark.parametrize(
    ("ticks", "rps", "error_rate", "requests", "errors"),
    [
        # The first update only sets the baseline: nothing happened in the window yet.
        ([(0.0, 100, 0)], [0, 0, 0, 0, 0], [None] * 5, 0, 0),
        # One point per second, the newest last, padded at the front.
        (
            [(0.0, 100, 0), (1.0, 110, 1), (2.0, 130, 0 + 1)],
            [0, 0, 0, 10, 20],
            [None, None, None, 0.1, 0.0],
            30,
            1,
        ),
        # A late tick (2 s): two points of the rate over the interval, not one of twice it.
        ([(0.0, 0, 0), (2.0, 40, 4)], [0, 0, 0, 20, 20], [None, None, None, 0.1, 0.1], 40, 4),
        # Slightly late (1.4 s) is still one point, at the interval's rate; the total exact.
        ([(0.0, 0, 0), (1.4, 14, 0)], [0, 0, 0, 0, 10], [None] * 4 + [0.0], 14, 0),
        # A pause longer than the ring (the producer stopped while no one watched): the ring
        # is filled with the average over the pause, so the window's total is the window's.
        ([(0.0, 0, 0), (10.0, 100, 0)], [10] * 5, [0.0] * 5, 50, 0),
        # The ring keeps the last `length` seconds.
        (
            [(float(t), 10 * t * t, 0) for t in range(8)],
            [50, 70, 90, 110, 130],
            [0.0] * 5,
            450,
            0,
        ),
        # A counter that went backwards counts as no requests, and the next second counts
        # from the lower value.
        ([(0.0, 50, 5), (1.0, 20, 1), (2.0, 25, 1)], [0, 0, 0, 0, 5], [None] * 4 + [0.0], 5, 0),
        # Same instant twice: nothing to spread, nothing added.
        ([(0.0, 0, 0), (1.0, 10, 0), (1.0, 20, 0)], [0, 0, 0, 0, 10], [None] * 4 + [0.0], 10, 0),
    ],
    ids=[
        "baseline",
        "per-second",
        "late-tick",
        "jitter",
        "long-pause",
        "ring",
        "backwards",
        "same-instant",
    ],
)
def test_points_are_per_second_rates_of_the_differences(
    ticks: list[tuple[float, int, int]],
    rps: list[float],
    error_rate: list[float | None],
    requests: int,
    errors: int,
) -> None:
    view = run(ticks).view([KEY])[KEY]
    assert list(view.rps) == rps
    assert list(view.error_rate) == error_rate
    assert (view.requests, view.errors) == (requests, errors)


def test_a_key_first_seen_later_is_padded_and_idle_keys_shown_only_when_kept() -> None:
    series = Series(4)
    other = ("web", "stable")
    series.update(0.0, counters((KEY, counts(0))))
    series.update(1.0, counters((KEY, counts(5))))
    # `other` appears with 7 requests since the last update: all of them are new.
    series.update(2.0, counters((KEY, counts(5)), (other, counts(7))))
    views = series.view()
    assert list(views[KEY].rps) == [0, 0, 5, 0]
    assert list(views[other].rps) == [0, 0, 0, 7]
    # A kept key without any request is shown as zeros; an idle key not kept is left out.
    idle = ("shop", "blue")
    assert list(series.view([idle])[idle].rps) == [0, 0, 0, 0]
    assert series.view([idle])[idle].p50 is None
    for second in range(3, 7):
        series.update(float(second), counters((KEY, counts(5)), (other, counts(7))))
    assert set(series.view()) == set()
    assert set(series.view([KEY])) == {KEY}


def test_new_bucket_bounds_start_over() -> None:
    series = run([(0.0, 0, 0), (1.0, 10, 0)])
    series.update(2.0, RouteCounters((0.2, 2.0), {KEY: RouteCounts(30, 0, (30, 0, 0))}))
    view = series.view([KEY])[KEY]
    assert list(view.rps) == [0] * 5
    series.update(3.0, RouteCounters((0.2, 2.0), {KEY: RouteCounts(34, 0, (30, 4, 0))}))
    view = series.view([KEY])[KEY]
    assert list(view.rps) == [0, 0, 0, 0, 4]
    assert view.p50 == pytest.approx(0.2 + 1.8 * 0.5)  # all four in (0.2, 2.0]


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, [0, 0, 0, 0], None),  # no requests: no quantile
        (0.5, [10, 0, 0, 0], 0.05),  # the first bucket interpolates from 0
        (0.5, [0, 10, 0, 0], 0.3),  # halfway through (0.1, 0.5]
        (0.99, [90, 10, 0, 0], 0.1 + 0.4 * 9 / 10),  # rank 99 is 9 into the second bucket
        (0.5, [5, 0, 5, 0], 0.1 + 0 + 0.0),  # rank 5 ends exactly at the first bucket's top
        (0.99, [0, 0, 1, 99], 1.0),  # in +Inf: the largest finite bound
        (0.5, [0.5, 0.5, 0, 0], 0.1),  # fractional counts (spread intervals)
    ],
)
def test_quantiles_as_histogram_quantile(
    q: float, buckets: list[float], expected: float | None
) -> None:
    found = quantile(q, BOUNDS, buckets)
    if expected is None:
        assert found is None
    else:
        assert found == pytest.approx(expected)


def test_p50_and_p99_are_over_the_window_only() -> None:
    series = Series(3)
    slow = ("web", "canary")
    series.update(0.0, counters((slow, counts(0, 0, (0, 0, 0, 0)))))
    series.update(1.0, counters((slow, counts(100, 0, (100, 0, 0, 0)))))  # all fast
    view = series.view()[slow]
    assert view.p99 == pytest.approx(0.099)
    for second in range(2, 5):  # then three seconds of slow requests push the fast ones out
        total = 100 + 10 * (second - 1)
        series.update(float(second), counters((slow, counts(total, 0, (100, 0, total - 100, 0)))))
    view = series.view()[slow]
    assert view.requests == 30
    assert view.p50 == pytest.approx(0.75)
    assert view.p99 == pytest.approx(0.5 + 0.5 * 0.99)


def sample(started: float = 100.0, live: bool = True, errors: float = 1.0) -> EvidenceSample:
    return EvidenceSample(started, live, errors, 0.5)


def test_evidence_is_recorded_per_tick_and_halved_when_full() -> None:
    history = EvidenceHistory(limit=4)
    for tick in range(9):
        history.record(1000.0 + tick, {"route/web": sample(errors=float(tick))})
    points = history.view()["route/web"]
    # Ticks 0-3 fill it; at 4 it keeps 0, 2 and takes every 2nd; at 8 it keeps 0, 4 and takes
    # every 4th: the whole run stays in view, never more than `limit` points.
    assert [p[1] for p in points] == [0.0, 4.0, 8.0]
    assert points[0] == (1000.0, 0.0, 0.5)
    for tick in range(9, 40):
        history.record(1000.0 + tick, {"route/web": sample(errors=float(tick))})
        assert len(history.view()["route/web"]) <= 4
    times = [p[0] for p in history.view()["route/web"]]
    assert times == sorted(times)
    assert times[0] == 1000.0


def test_a_finished_run_gets_one_last_point_and_a_new_run_starts_over() -> None:
    history = EvidenceHistory()
    history.record(1.0, {"route/web": sample(errors=2.0), "pool/api": sample(errors=1.0)})
    history.record(2.0, {"route/web": sample(errors=25.0, live=False), "pool/api": sample()})
    history.record(3.0, {"route/web": sample(errors=26.0, live=False), "pool/api": sample()})
    assert history.view()["route/web"] == [(1.0, 2.0, 0.5), (2.0, 25.0, 0.5)]
    assert len(history.view()["pool/api"]) == 3
    # Another start of the route's rollout: a history of its own.
    history.record(4.0, {"route/web": sample(started=200.0, errors=1.0), "pool/api": sample()})
    assert history.view()["route/web"] == [(4.0, 1.0, 0.5)]
    # A rollout no longer listed is forgotten.
    history.record(5.0, {"pool/api": sample()})
    assert list(history.view()) == ["pool/api"]
