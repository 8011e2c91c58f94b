"""`turnout bench --rollout`: each turnout target measured with a canary rollout running.

What a running rollout costs the data plane is the question (the goal: `small` with a rollout
running at 0.97 x or more of without). So the rollout must run through the whole measurement
without changing what is measured: its first step keeps the configured split (the candidate's
share of the weights, so the split the backends see is still the one asked for), and it holds
that step far longer than any run (a day, with more requests to judge than a run sends), so the
controller keeps gathering every worker's counters and judging all along, and never moves on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from admin_api.client import AdminClient, AdminError

HOLD_S = 86_400.0
"""Step time and maximum step time: a day, longer than any benchmark run."""
MIN_REQUESTS = 10_000_000
JUDGE_ALPHA = 1e-12
JUDGE_QUANTILE = 0.999
"""The judge's highest min_requests: a step is never judged done within a run."""


class SteadyRolloutError(ValueError):
    """The weights or the instance do not allow a rollout that leaves the split as it is."""


def rollout_request(weights: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """The start request for the route under test (baseline first, candidate second): the first
    step at the candidate's configured percentage, held for a day."""
    if len(weights) != 2:
        raise SteadyRolloutError("--rollout needs exactly two pools: a baseline and a canary")
    (_, baseline), (candidate, weight) = weights
    percent, remainder = divmod(100 * weight, baseline + weight)
    if remainder or not 1 <= percent <= 99:
        raise SteadyRolloutError(
            "--rollout needs the canary's share of the weights to be a whole percentage from "
            f"1 to 99, not {100 * weight / (baseline + weight):g} %"
        )
    return {
        "canary": candidate,
        "steps": [percent, 100],
        "stepTime": HOLD_S,
        "maxStepTime": HOLD_S,
        # The rollout is there for its cost, not its verdict: the two benchmark backends are
        # the same program but not the same process, and a judge that found one slower (they
        # need not be equal) would abort mid-measurement. The null is "no worse", so a real
        # difference is found at any tolerance, given requests enough: on a loaded CI machine
        # one backend process answered 6 % slow to the other's 1 %, and 2,401 canary requests
        # aborted a 1 s run. So: the largest tolerances, evidence of 2e12 (not 200) and "slow"
        # meaning beyond the baseline's p99.9. What the controller does per report is the same.
        "judge": {
            "minRequests": MIN_REQUESTS,
            "tolerance": 100,
            "latencyTolerance": 100,
            "alpha": JUDGE_ALPHA,
            "latencyQuantile": JUDGE_QUANTILE,
        },
    }


def start(admin_port: int, route: str, weights: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """Start the steady rollout on `route`; its status (progressing)."""
    client = AdminClient(f"http://127.0.0.1:{admin_port}")
    try:
        status = client.start_rollout(route, rollout_request(weights))
    except AdminError as error:
        raise SteadyRolloutError(f"cannot start a rollout on route {route}: {error}") from error
    return check(admin_port, route, status)


def check(admin_port: int, route: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
    """The rollout's status, which must still be progressing (else the figure measured is not
    one with a rollout running)."""
    if status is None:
        try:
            status = AdminClient(f"http://127.0.0.1:{admin_port}").rollout(route)
        except AdminError as error:
            raise SteadyRolloutError(f"cannot read route {route}'s rollout: {error}") from error
    if status.get("phase") != "progressing":
        raise SteadyRolloutError(
            f"route {route}'s rollout is {status.get('phase')}, not progressing: "
            f"{status.get('reason')}"
        )
    return status
