"""The fleet's counts, pure: the Accumulator's sums over instances that join, restart and
vanish (table-driven, one fold per row), the document's round trip and its refusals, and the
reading taken from the telemetry."""

from __future__ import annotations

import random
from dataclasses import dataclass

import orjson
import pytest

from proxy.fleet.counts import (
    Accumulator,
    BackendCount,
    InstanceCounts,
    Key,
    RouteCount,
    decode,
    encode,
    from_telemetry,
)
from proxy.metrics import BackendReport, Sum

R: Key = ("r", "canary")
S: Key = ("r", "stable")
B: Key = ("canary", "b1")

# One fold's readings, instance -> {key: (attempts, attempt_errors, *buckets)}.
Fold = dict[str, dict[Key, tuple[int, ...]]]


def _reading(instance: str, counts: dict[Key, tuple[int, ...]]) -> InstanceCounts:
    routes = {key: RouteCount(c[0], c[1], tuple(c[2:])) for key, c in counts.items()}
    return InstanceCounts(instance, 0.0, routes)


@dataclass(frozen=True)
class Case:
    name: str
    folds: list[Fold]
    totals: list[dict[Key, tuple[int, ...]]]
    """After each fold: key -> (attempts, attempt_errors, *buckets)."""


CASES = [
    Case(
        "first reading is a baseline",
        [{"a": {R: (10, 1)}}, {"a": {R: (15, 2)}}],
        [{R: (0, 0)}, {R: (5, 1)}],
    ),
    Case(
        "instances add up",
        [{"a": {R: (10, 0)}, "b": {R: (100, 5)}}, {"a": {R: (15, 1)}, "b": {R: (103, 5)}}],
        [{R: (0, 0)}, {R: (8, 1)}],
    ),
    Case(
        "a joiner's lifetime counters are its baseline",
        [
            {"a": {R: (10, 0)}},
            {"a": {R: (12, 0)}, "b": {R: (1000, 90)}},
            {"a": {R: (13, 0)}, "b": {R: (1001, 91)}},
        ],
        [{R: (0, 0)}, {R: (2, 0)}, {R: (4, 1)}],
    ),
    Case(
        "a restart (attempts lower) is a new baseline, never negative",
        [{"a": {R: (10, 0)}}, {"a": {R: (20, 2)}}, {"a": {R: (3, 3)}}, {"a": {R: (5, 3)}}],
        [{R: (0, 0)}, {R: (10, 2)}, {R: (10, 2)}, {R: (12, 2)}],
    ),
    Case(
        "errors lower alone is a restart too",
        [{"a": {R: (10, 5)}}, {"a": {R: (12, 1)}}, {"a": {R: (14, 2)}}],
        [{R: (0, 0)}, {R: (0, 0)}, {R: (2, 1)}],
    ),
    Case(
        "a vanished instance keeps what it added; back, it starts a new baseline",
        [
            {"a": {R: (0, 0)}, "b": {R: (50, 0)}},
            {"a": {R: (1, 0)}, "b": {R: (60, 1)}},
            {"a": {R: (2, 0)}},
            {"a": {R: (3, 0)}, "b": {R: (500, 9)}},
            {"a": {R: (3, 0)}, "b": {R: (501, 9)}},
        ],
        [{R: (0, 0)}, {R: (11, 1)}, {R: (12, 1)}, {R: (13, 1)}, {R: (14, 1)}],
    ),
    Case(
        "a key missing from a reading is a new baseline when it returns",
        [{"a": {R: (1, 0), S: (1, 0)}}, {"a": {S: (2, 0)}}, {"a": {R: (9, 0), S: (3, 0)}}],
        [{R: (0, 0), S: (0, 0)}, {R: (0, 0), S: (1, 0)}, {R: (0, 0), S: (2, 0)}],
    ),
    Case(
        "buckets add per bucket",
        [
            {"a": {R: (3, 0, 1, 1, 1)}, "b": {R: (1, 0, 0, 0, 1)}},
            {"a": {R: (5, 0, 2, 2, 1)}, "b": {R: (4, 1, 1, 0, 3)}},
        ],
        [{R: (0, 0, 0, 0, 0)}, {R: (5, 1, 2, 1, 2)}],
    ),
    Case(
        "a bucket lower is a restart",
        [{"a": {R: (3, 0, 3, 0)}}, {"a": {R: (5, 0, 1, 4)}}, {"a": {R: (6, 0, 2, 4)}}],
        [{R: (0, 0, 0, 0)}, {R: (0, 0, 0, 0)}, {R: (1, 0, 1, 0)}],
    ),
    Case(
        "empty buckets are zeros: the first histogram counts whole",
        [{"a": {R: (0, 0)}}, {"a": {R: (2, 0, 1, 1)}}, {"a": {R: (3, 0, 1, 2)}}],
        [{R: (0, 0)}, {R: (2, 0, 1, 1)}, {R: (3, 0, 1, 2)}],
    ),
    Case(
        "another bucket length is a new baseline for the key",
        [{"a": {R: (1, 0, 1, 0)}}, {"a": {R: (2, 0, 1, 1, 0)}}, {"a": {R: (3, 0, 1, 1, 1)}}],
        # The fleet moved to three buckets: the total's histogram starts again at that length.
        [{R: (0, 0, 0, 0)}, {R: (0, 0, 0, 0, 0)}, {R: (1, 0, 0, 0, 1)}],
    ),
    Case(
        "a mixed fleet keeps the total's length; the other length adds attempts only",
        [
            {"a": {R: (1, 0, 1, 0)}, "b": {R: (1, 0, 1, 0, 0)}},
            {"a": {R: (2, 0, 1, 1)}, "b": {R: (3, 1, 1, 1, 1)}},
        ],
        [{R: (0, 0, 0, 0)}, {R: (3, 1, 0, 1)}],
    ),
    Case(
        "no readings at all keeps the totals",
        [{"a": {R: (1, 0)}}, {"a": {R: (4, 1)}}, {}],
        [{R: (0, 0)}, {R: (3, 1)}, {R: (3, 1)}],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_route_totals(case: Case) -> None:
    accumulator = Accumulator()
    for number, (fold, expected) in enumerate(zip(case.folds, case.totals, strict=True)):
        routes, _ = accumulator.fold({i: _reading(i, counts) for i, counts in fold.items()})
        seen = {key: (c.attempts, c.attempt_errors, *c.buckets) for key, c in routes.items()}
        assert seen == expected, f"after fold {number}"


def _backends(readings: dict[str, tuple[int, int, int]]) -> dict[str, InstanceCounts]:
    return {
        i: InstanceCounts(i, 0.0, {}, {B: BackendCount(*counts)}) for i, counts in readings.items()
    }


def test_backend_counters_add_up_and_inflight_is_the_current_sum() -> None:
    accumulator = Accumulator()
    steps = [
        # (readings: instance -> (attempts, errors, inflight)), expected total
        ({"a": (10, 1, 3), "b": (100, 0, 4)}, BackendCount(0, 0, 7)),
        ({"a": (12, 2, 1), "b": (110, 0, 2)}, BackendCount(12, 1, 3)),
        ({"a": (13, 2, 5)}, BackendCount(13, 1, 5)),  # b vanished: its in-flight is 0
        ({"a": (1, 0, 0), "b": (120, 3, 1)}, BackendCount(13, 1, 1)),  # a restarted, b back
        ({"a": (2, 0, 0), "b": (121, 3, 0)}, BackendCount(15, 1, 0)),
        ({}, BackendCount(15, 1, 0)),
    ]
    for readings, expected in steps:
        _, backends = accumulator.fold(_backends(readings))
        assert backends == {B: expected}, readings


def test_totals_only_grow_through_restarts_joins_and_departures() -> None:
    rng = random.Random(17)
    accumulator = Accumulator()
    lifetime = {name: [0, 0, 0, 0] for name in "abcd"}  # attempts, errors, bucket 0, bucket 1
    previous: tuple[int, ...] = (0, 0, 0, 0)
    for _ in range(500):
        readings = {}
        for name, counters in lifetime.items():
            if rng.random() < 0.05:
                counters[:] = [0, 0, 0, 0]  # restart
            grow = rng.randrange(5)
            counters[0] += grow
            counters[1] += rng.randrange(grow + 1)
            counters[2] += rng.randrange(3)
            counters[3] += rng.randrange(3)
            if rng.random() < 0.9:  # 10 % of the time its key is missing (lease expired)
                readings[name] = _reading(name, {R: tuple(counters)})
        routes, _ = accumulator.fold(readings)
        total = routes.get(R, RouteCount(0, 0, (0, 0)))
        now = (total.attempts, total.attempt_errors, *total.buckets)
        assert all(a >= b for a, b in zip(now, previous, strict=True)), (now, previous)
        previous = now
    assert previous[0] > 0


def test_fold_returns_new_dicts() -> None:
    accumulator = Accumulator()
    routes, backends = accumulator.fold({"a": _reading("a", {R: (1, 0)})})
    routes.clear()
    backends.clear()
    again, _ = accumulator.fold({"a": _reading("a", {R: (2, 0)})})
    assert again == {R: RouteCount(1, 0, ())}


def test_encode_decode_round_trip() -> None:
    counts = InstanceCounts(
        "host-9901",
        1_790_000_000.25,
        {("r\u0000x", "p/ü"): RouteCount(7, 2, (1, 0, 5)), S: RouteCount(0, 0, ())},
        {B: BackendCount(4, 1, 2)},
    )
    assert decode(encode(counts)) == counts


def _document(**changes: object) -> bytes:
    document: dict[str, object] = {
        "v": 1,
        "instance": "a",
        "at": 1.5,
        "routes": [["r", "p", 1, 0, [1]]],
        "backends": [["p", "b", 1, 0, 0]],
    }
    document.update(changes)
    return orjson.dumps(document)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"\xff\xfe",
        b"[]",
        b"null",
        _document(v=2),
        _document(v=None),
        _document(instance=3),
        _document(at="now"),
        _document(routes=[["r", "p", -1, 0, []]]),
        _document(routes=[["r", "p", True, 0, []]]),
        _document(routes=[["r", "p", 1, 0]]),
        _document(routes=[["r", "p", 1, 0, "1,2"]]),
        _document(routes=[["r", "p", 1, 0, [1.5]]]),
        _document(routes={"r": 1}),
        _document(backends=[["p", 7, 1, 0, 0]]),
        _document(backends=[["p", "b", 1, 0, -2]]),
        orjson.dumps({"v": 1, "instance": "a", "at": 1.5, "routes": []}),
    ],
)
def test_decode_refuses_what_it_cannot_read(raw: bytes) -> None:
    assert decode(raw) is None


def test_the_valid_document_of_the_refusal_table_reads() -> None:
    # The table above changes one field of this document: it must be readable as it is.
    assert decode(_document()) == InstanceCounts(
        "a", 1.5, {("r", "p"): RouteCount(1, 0, (1,))}, {("p", "b"): BackendCount(1, 0, 0)}
    )


def test_from_telemetry_takes_the_judges_fields_and_only_what_rollouts_need() -> None:
    def total(attempts: int, errors: int, buckets: list[int]) -> Sum:
        return Sum(inflight=9, codes={200: attempts}, buckets=buckets, attempts=attempts,
                   attempt_errors=errors)  # fmt: skip

    routes = {R: total(5, 1, [2, 3]), S: total(9, 0, [9, 0]), ("other", "x"): total(1, 1, [1])}
    backends = {
        B: BackendReport(2, 0, 0, 0, 1, attempts=5, attempt_errors=1),
        ("stable", "b9"): BackendReport(0, 0, 0, 0, 1, attempts=9),
    }
    everything = from_telemetry("a", routes, backends, 12.5)
    assert everything.instance == "a"
    assert everything.at == 12.5
    assert everything.routes[R] == RouteCount(5, 1, (2, 3))
    assert set(everything.routes) == set(routes)
    assert set(everything.backends) == set(backends)
    assert everything.backends[B] == BackendCount(5, 1, 2)

    some = from_telemetry("a", routes, backends, 12.5, routes_of={R, S}, pools_of={"canary"})
    assert set(some.routes) == {R, S}
    assert some.backends == {B: BackendCount(5, 1, 2)}
    none = from_telemetry("a", routes, backends, 12.5, routes_of=(), pools_of=())
    assert none.routes == {}
    assert none.backends == {}
