"""Whether a pool rollout's spec can run on a pool: every problem named by its field (pure).

Field names are the API's (camelCase: `drainTimeout`, `hook.command`, `newBackends[1].url`,
`judge.minRequests`), so that a 422 points at what the request said. What the spec must be (a
batch, durations, a hook for in place or new backends for surge, the judge, the webhook) and
what it needs of the pool (backends to roll, new names and addresses not in it, active health
checks, which every stage waits on) are checked in one pass: one answer names every problem.

Durations are seconds, greater than 0 and at most a day, as every duration of the
configuration file (proxy.config_types.Seconds). `keepOld` alone may be 0: a surge then removes
the old backends as soon as its last batch has been held, giving up the one-write rollback for
the capacity. A batch larger than the pool is one batch, and not a problem.
"""

from __future__ import annotations

from typing import get_args

from pydantic import ValidationError

from proxy.config import BackendConfig
from proxy.config_types import MAX_SECONDS
from proxy.control.rolling.hooks import Hook, hook_problems
from proxy.control.rolling.model import Mode, RollSpec
from proxy.control.rollout.validate import http_url, judge_problems
from router import SpecError
from router.build import NAME, Problem, bad_name
from router.spec import PoolSpec

DURATIONS = (
    ("drain_timeout", "drainTimeout"),
    ("healthy_deadline", "healthyDeadline"),
    ("min_healthy_time", "minHealthyTime"),
    ("hook_timeout", "hook.timeout"),
)
"""RollSpec's durations that must be greater than 0, with their fields in the API."""


def check(spec: RollSpec, pool: PoolSpec, *, checked: bool) -> None:
    """Nothing when `spec` can run on `pool`; SpecError naming every problem otherwise.
    `checked`: whether the pool's backends are probed by active health checks."""
    problems: list[Problem] = []
    if spec.mode not in get_args(Mode):
        problems.append(Problem("mode", 'must be "in-place" or "surge"'))
    if not spec.batch >= 1:
        problems.append(Problem("batch", "must be at least 1"))
    for name, field in DURATIONS:
        if not 0 < getattr(spec, name) <= MAX_SECONDS:
            problems.append(Problem(field, f"must be seconds, more than 0, at most {_DAY}"))
    if not 0 <= spec.keep_old <= MAX_SECONDS:
        problems.append(Problem("keepOld", f"must be seconds, 0 or more, at most {_DAY}"))
    if spec.mode == "in-place":
        problems += _in_place(spec)
    elif spec.mode == "surge":
        problems += _surge(spec, pool)
    if not pool.backends:
        problems.append(Problem("pool", f"pool {pool.name!r} has no backends to roll"))
    if not checked:
        problems.append(
            Problem(
                "pool",
                "a pool rollout waits on active health checks, which pool"
                f" {pool.name!r} does not run: set enabled = true in [pools.{pool.name}.health]"
                " (or in [health], for every pool)",
            )
        )
    problems += judge_problems(spec.judge, camel=True)
    # The message never repeats the URL: its userinfo or query may be a secret.
    if spec.webhook is not None and not http_url(spec.webhook):
        problems.append(Problem("webhook", "must be an http:// or https:// URL with a host"))
    if problems:
        raise SpecError(problems)


_DAY = f"{MAX_SECONDS:g} (a day)"


def _in_place(spec: RollSpec) -> list[Problem]:
    hook = Hook(command=spec.hook_command, url=spec.hook_url, timeout=spec.hook_timeout)
    problems = [
        Problem(f"hook.{field}", message)
        for field, message in hook_problems(hook)
        if field != "timeout"  # checked with the other durations, with their upper bound
    ]
    if spec.new_backends:
        problems.append(
            Problem(
                "newBackends",
                "in place replaces the pool's own backends: new backends are for a surge",
            )
        )
    return problems


def _surge(spec: RollSpec, pool: PoolSpec) -> list[Problem]:
    problems: list[Problem] = []
    if spec.hook_command or spec.hook_url is not None:
        problems.append(
            Problem("hook", "a surge runs no hook: its new backends run the new version already")
        )
    if not spec.new_backends:
        problems.append(Problem("newBackends", "a surge needs at least one new backend"))
    names = {backend.name for backend in pool.backends}
    addresses = {backend.address: backend.name for backend in pool.backends}
    given: set[str] = set()
    for index, (name, url) in enumerate(spec.new_backends):
        where = f"newBackends[{index}]"
        if not NAME.fullmatch(name):
            problems.append(Problem(f"{where}.name", bad_name(name)))
        elif name in names:
            problems.append(
                Problem(f"{where}.name", f"{name!r} is already a backend of pool {pool.name!r}")
            )
        elif name in given:
            problems.append(Problem(f"{where}.name", f"{name!r} is given twice"))
        given.add(name)
        try:
            # The URL rules of the configuration file's backends, and their spelling of a
            # refusal (an add-backend call uses the same).
            address = BackendConfig(name=name, url=url).spec().address
        except ValidationError as error:
            problems.append(Problem(f"{where}.url", _message(error)))
            continue
        if address in addresses:
            # Old and new on one address would judge the old version against itself.
            problems.append(
                Problem(
                    f"{where}.url",
                    f"is the address of {addresses[address]!r}: a surge's new version runs"
                    " on new addresses",
                )
            )
        addresses.setdefault(address, name)
    return problems


def _message(error: ValidationError) -> str:
    first = error.errors()[0]
    return str(first["msg"]).removeprefix("Value error, ")
