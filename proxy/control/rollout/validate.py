"""Whether a rollout's spec can run on a route: every problem named by its field (pure)."""

from __future__ import annotations

import math
from urllib.parse import urlsplit

from pydantic.alias_generators import to_camel

from proxy.control.rollout.model import JudgeSettings, RolloutSpec
from router import RouteSpec, SpecError
from router.build import Problem


def check(spec: RolloutSpec, route: RouteSpec) -> tuple[str, str]:
    """(baseline, new) for a spec that can run on `route`; SpecError naming every problem."""
    problems: list[Problem] = []
    baseline = new = ""
    if spec.strategy == "canary":
        pools = [name for name, _ in route.weights]
        if route.mode != "weighted":
            problems.append(Problem("strategy", f"route {route.name!r} is blue-green: use `to`"))
        elif spec.canary is None:
            problems.append(Problem("canary", "name the canary pool"))
        elif spec.canary not in pools:
            problems.append(Problem("canary", f"{spec.canary!r} is not one of the route's pools"))
        elif spec.canary == pools[0]:
            problems.append(
                Problem("canary", f"{spec.canary!r} is the route's baseline (its first pool)")
            )
        else:
            baseline, new = pools[0], spec.canary
            others = [n for n, w in route.weights if w and n not in (baseline, new)]
            if others:
                problems.append(
                    Problem("canary", f"the route's other pools must be at weight 0: {others}")
                )
        if not spec.steps:
            problems.append(Problem("steps", "give at least one step"))
        elif any(not 1 <= step <= 100 for step in spec.steps):
            problems.append(Problem("steps", "each step is a percentage, 1..100"))
        elif list(spec.steps) != sorted(set(spec.steps)):
            problems.append(Problem("steps", "steps must increase"))
    else:
        if route.mode != "blue-green":
            problems.append(Problem("strategy", f"route {route.name!r} is weighted: use canary"))
        elif spec.to is None:
            problems.append(Problem("to", "name the colour to switch to"))
        elif spec.to not in route.colours:
            problems.append(Problem("to", f"{spec.to!r} is not one of the route's colours"))
        elif spec.to == route.active:
            problems.append(Problem("to", f"{spec.to!r} is already active"))
        elif route.active is not None:
            baseline, new = route.active, spec.to
    for name in ("step_time", "max_step_time", "no_eligible_timeout", "watch"):
        if not getattr(spec, name) > 0:
            problems.append(Problem(name, "must be greater than 0"))
    problems += judge_problems(spec.judge)
    if spec.webhook is not None and not http_url(spec.webhook):
        problems.append(Problem("webhook", "must be an http or https URL"))
    for index, precheck in enumerate(spec.prechecks):
        if not precheck.path.startswith("/"):
            problems.append(Problem(f"prechecks.{index}.path", "must start with /"))
    if problems:
        raise SpecError(problems)
    return baseline, new


def judge_problems(judge: JudgeSettings, *, camel: bool = False) -> list[Problem]:
    """What is wrong with the judge's settings, under `judge.<field>`: the route rollouts'
    field names are the model's (`judge.min_requests`), the pool rollouts' the API's
    (`camel`: `judge.minRequests`)."""
    problems: list[Problem] = []

    def problem(name: str, message: str) -> None:
        problems.append(Problem(f"judge.{to_camel(name) if camel else name}", message))

    # Written so that NaN fails each check (every comparison with NaN is false).
    if not 0 < judge.alpha <= 0.5:
        problem("alpha", "must be in (0, 0.5]")
    if not 1 <= judge.tolerance < math.inf:
        problem("tolerance", "must be a finite number, at least 1")
    if not 1 <= judge.latency_tolerance < math.inf:
        problem("latency_tolerance", "must be a finite number, at least 1")
    if not 0 < judge.latency_quantile < 1:
        problem("latency_quantile", "must be in (0, 1)")
    if not judge.min_requests >= 1:
        problem("min_requests", "must be at least 1")
    return problems


def http_url(text: str) -> bool:
    """Whether `text` is an http:// or https:// URL with a host (and a valid port, if any)."""
    try:
        url = urlsplit(text)
        url.port  # noqa: B018  (raises ValueError for a port that is not one)
    except ValueError:  # "http://fn[": an unbalanced IPv6 bracket
        return False
    return url.scheme in ("http", "https") and bool(url.hostname)
