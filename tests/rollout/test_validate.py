"""Whether a rollout's spec can run on its route: every problem named by its field."""

from __future__ import annotations

from dataclasses import replace

import pytest

from proxy.control.rollout.model import JudgeSettings, RolloutSpec
from proxy.control.rollout.validate import check
from router import RouteSpec, SpecError

WEB = RouteSpec("web", weights=(("stable", 100), ("canary", 0)))
THREE = RouteSpec("web", weights=(("stable", 90), ("canary", 0), ("other", 10)))
SHOP = RouteSpec("shop", mode="blue-green", colours=("blue", "green"), active="blue")
CANARY = RolloutSpec("canary", canary="canary")
BLUE_GREEN = RolloutSpec("blue-green", to="green")


def test_a_good_spec_gives_baseline_and_new() -> None:
    assert check(CANARY, WEB) == ("stable", "canary")
    assert check(BLUE_GREEN, SHOP) == ("blue", "green")


@pytest.mark.parametrize(
    ("spec", "route", "field"),
    [
        (replace(CANARY, canary=None), WEB, "canary"),
        (replace(CANARY, canary="nope"), WEB, "canary"),
        (replace(CANARY, canary="stable"), WEB, "canary"),
        (CANARY, THREE, "canary"),  # another pool still takes traffic
        (CANARY, SHOP, "strategy"),
        (replace(CANARY, steps=()), WEB, "steps"),
        (replace(CANARY, steps=(0, 50)), WEB, "steps"),
        (replace(CANARY, steps=(50, 25)), WEB, "steps"),
        (replace(CANARY, steps=(25, 25)), WEB, "steps"),
        (BLUE_GREEN, WEB, "strategy"),
        (replace(BLUE_GREEN, to="blue"), SHOP, "to"),
        (replace(BLUE_GREEN, to="red"), SHOP, "to"),
        (replace(CANARY, step_time=0), WEB, "step_time"),
        (replace(CANARY, judge=JudgeSettings(alpha=0)), WEB, "judge.alpha"),
        (replace(CANARY, judge=JudgeSettings(tolerance=0.9)), WEB, "judge.tolerance"),
        (replace(CANARY, judge=JudgeSettings(min_requests=0)), WEB, "judge.min_requests"),
        (replace(CANARY, webhook="ftp://example.com/"), WEB, "webhook"),
        (replace(CANARY, webhook="http://fn["), WEB, "webhook"),  # found by schemathesis: a 500
        (replace(CANARY, webhook="http://example.com:99999/"), WEB, "webhook"),
    ],
)
def test_problems_name_their_field(spec: RolloutSpec, route: RouteSpec, field: str) -> None:
    with pytest.raises(SpecError) as raised:
        check(spec, route)
    assert [problem.field for problem in raised.value.problems] == [field]
