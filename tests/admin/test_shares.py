"""Observed splits are shown as percentages that add up to exactly 100 (largest remainder),
in the admin API's route view (2 decimals) and in the CLI's render (1 decimal)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from admin_api.cli.render import observed_text, weights_text
from admin_api.shares import shares
from admin_api.views import route_view
from proxy.channel import Stats
from proxy.control.values import RouteState
from proxy.metrics import RouteReport
from proxy.telemetry import Telemetry
from router import build_snapshot
from router.spec import BackendSpec, PoolSpec, RouteSpec, Spec

SHARES = [
    # (counts, decimals, shares)
    ({"stable": 1, "canary": 1, "beta": 1}, 1, {"stable": 33.4, "canary": 33.3, "beta": 33.3}),
    ({"stable": 1, "canary": 1, "beta": 1}, 2, {"stable": 33.34, "canary": 33.33, "beta": 33.33}),
    ({"stable": 2, "canary": 1}, 1, {"stable": 66.7, "canary": 33.3}),
    # Each rounded on its own: 16.7 + 16.7 + 66.7 = 100.1 (seen in `turnout status`).
    ({"a": 1, "b": 1, "c": 4}, 1, {"a": 16.7, "b": 16.6, "c": 66.7}),
    # Equal remainders: the units go to the larger counts, then to the pools listed first.
    ({"a": 3, "b": 3, "c": 3, "d": 1991}, 1, {"a": 0.2, "b": 0.1, "c": 0.1, "d": 99.6}),
    ({"a": 1, "b": 1, "c": 1, "d": 997}, 1, {"a": 0.1, "b": 0.1, "c": 0.1, "d": 99.7}),
    ({"stable": 9, "canary": 1}, 1, {"stable": 90.0, "canary": 10.0}),
    ({"stable": 5}, 1, {"stable": 100.0}),
    ({"stable": 5, "canary": 0}, 2, {"stable": 100.0, "canary": 0.0}),
    ({"stable": 0, "canary": 0}, 1, {"stable": 0.0, "canary": 0.0}),
    ({}, 1, {}),
    (
        {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6},
        0,
        {"a": 5, "b": 9, "c": 14, "d": 19, "e": 24, "f": 29},
    ),
]


@pytest.mark.parametrize(("counts", "decimals", "expected"), SHARES)
def test_shares_add_up_to_exactly_100(
    counts: dict[str, int], decimals: int, expected: dict[str, float]
) -> None:
    got = shares(counts, decimals)
    assert got == expected
    assert list(got) == list(counts)  # the pools keep their order
    if any(counts.values()):
        assert sum(Decimal(str(value)) for value in got.values()) == 100


@pytest.mark.parametrize(
    "counts",
    [
        {"a": a, "b": b, "c": c}
        for a in (0, 1, 2, 3, 7, 100, 333)
        for b in (1, 2, 3, 9, 667)
        for c in (0, 1, 5, 1000)
    ],
)
@pytest.mark.parametrize("decimals", [0, 1, 2])
def test_every_split_adds_up_and_is_within_one_unit(counts: dict[str, int], decimals: int) -> None:
    got = shares(counts, decimals)
    total = sum(counts.values())
    assert sum(Decimal(str(value)) for value in got.values()) == 100
    for name, count in counts.items():
        assert abs(got[name] - 100 * count / total) < 10**-decimals


RENDERED = [
    ({"stable": 1, "canary": 1, "beta": 1}, "stable 33.4%, canary 33.3%, beta 33.3% of 3"),
    ({"a": 1, "b": 1, "c": 4}, "a 16.7%, b 16.6%, c 66.7% of 6"),
    ({"stable": 9, "canary": 1}, "stable 90%, canary 10% of 10"),
    ({}, "-"),
]


@pytest.mark.parametrize(("observed", "text"), RENDERED)
def test_the_cli_shows_an_observed_split_adding_up_to_100(
    observed: dict[str, int], text: str
) -> None:
    # The view's own (2-decimal) percentages, rounded again to 1 decimal, could add to 100.1.
    view = {"observed": observed, "observedPercentages": shares(observed, 2)}
    assert observed_text(view) == text


def test_the_route_view_shows_an_observed_split_adding_up_to_100() -> None:
    """What the admin API answers for a route (2 decimals: 16.67 + 16.67 + 66.67 would be
    100.01), from a real Telemetry fed a worker's report."""
    spec = Spec(
        pools=tuple(PoolSpec(name, (BackendSpec(f"{name}-1", "127.0.0.1", 1),)) for name in "abc"),
        routes=(RouteSpec("web", weights=(("a", 1), ("b", 1), ("c", 4))),),
    )
    telemetry = Telemetry()
    telemetry.update(
        Stats(
            worker_id=1,
            revision=1,
            requests=6,
            connections=0,
            routes={
                ("web", pool): RouteReport(
                    0, {200: count}, {"weighted": count}, (count,), 0.0, 0, 0
                )
                for pool, count in (("a", 1), ("b", 1), ("c", 4))
            },
        )
    )
    view = route_view(
        RouteState(build_snapshot(spec).revision, spec.routes[0], telemetry.observed("web"))
    )
    assert view.observed == {"a": 1, "b": 1, "c": 4}
    assert view.observed_percentages == {"a": 16.67, "b": 16.66, "c": 66.67}


def test_the_cli_shows_set_weights_as_percentages_that_add_up_to_100() -> None:
    """1 : 1 : 1 was shown as 33.3 % three times (the view's own percentages, rounded each)."""
    third = 100 / 3
    text = weights_text({"a": 1, "b": 1, "c": 1}, {"a": third, "b": third, "c": third})
    assert text == "a 1 (33.4%), b 1 (33.3%), c 1 (33.3%)"
    assert weights_text({"a": 1, "b": 1, "c": 4}, {}) == "a 1 (16.7%), b 1 (16.6%), c 4 (66.7%)"
    # Without percentages (a blue-green route's previous weights), the integers alone.
    assert weights_text({"a": 1, "b": 1}) == "a 1, b 1"
