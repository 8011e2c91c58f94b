"""Whether a pool rollout's spec can run on its pool: every problem, named by the API's field."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from proxy.control.rolling.model import RollSpec
from proxy.control.rolling.validate import check
from proxy.control.rollout.model import JudgeSettings
from router import BackendSpec, PoolSpec, SpecError

BLUE = PoolSpec(
    "blue",
    backends=(BackendSpec("blue-1", "127.0.0.1", 9001), BackendSpec("blue-2", "127.0.0.1", 9002)),
)
EMPTY = PoolSpec("blue", backends=())
IN_PLACE = RollSpec("in-place", hook_command=("./deploy.sh", "--fast"))
BY_URL = RollSpec("in-place", hook_url="https://deploy.example/hook?token=k3y")
SURGE = RollSpec(
    "surge",
    new_backends=(("blue-new-1", "http://127.0.0.1:9101"), ("blue-new-2", "http://10.0.0.9:80")),
)
NEW = SURGE.new_backends


def problems(spec: RollSpec, pool: PoolSpec = BLUE, *, checked: bool = True) -> list[str]:
    with pytest.raises(SpecError) as raised:
        check(spec, pool, checked=checked)
    return [problem.field for problem in raised.value.problems]


@pytest.mark.parametrize(
    "spec",
    [
        IN_PLACE,
        BY_URL,
        SURGE,
        replace(SURGE, new_backends=NEW[:1]),  # fewer new backends than old ones
        replace(IN_PLACE, batch=50),  # larger than the pool: one batch
        replace(SURGE, keep_old=0),  # remove the old backends at once
        replace(IN_PLACE, drain_timeout=86_400, min_healthy_time=0.5),
        replace(IN_PLACE, auto_revert=False, webhook="http://hooks.example:8080/x"),
        replace(SURGE, judge=JudgeSettings(alpha=0.5, tolerance=1, latency_quantile=0.99)),
    ],
)
def test_a_spec_that_can_run_passes(spec: RollSpec) -> None:
    check(spec, BLUE, checked=True)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (replace(IN_PLACE, mode="blue-green"), "mode"),  # type: ignore[arg-type]
        (replace(IN_PLACE, batch=0), "batch"),
        (replace(SURGE, batch=-1), "batch"),
        (replace(IN_PLACE, drain_timeout=0), "drainTimeout"),
        (replace(IN_PLACE, drain_timeout=-5), "drainTimeout"),
        (replace(IN_PLACE, healthy_deadline=float("nan")), "healthyDeadline"),
        (replace(IN_PLACE, healthy_deadline=float("inf")), "healthyDeadline"),
        (replace(SURGE, min_healthy_time=0), "minHealthyTime"),
        (replace(SURGE, min_healthy_time=86_401), "minHealthyTime"),
        (replace(SURGE, keep_old=-1), "keepOld"),
        (replace(SURGE, keep_old=float("nan")), "keepOld"),
        (replace(IN_PLACE, hook_timeout=0), "hook.timeout"),
        (replace(SURGE, hook_timeout=float("inf")), "hook.timeout"),
        # in place: exactly one hook, and a valid one
        (replace(IN_PLACE, hook_command=()), "hook.command"),
        (replace(IN_PLACE, hook_url="https://deploy.example/"), "hook.url"),
        (replace(IN_PLACE, hook_command=("",)), "hook.command"),
        (replace(IN_PLACE, hook_command=("./deploy.sh", "a\0b")), "hook.command"),
        (replace(BY_URL, hook_url="ftp://deploy.example/"), "hook.url"),
        (replace(BY_URL, hook_url="http://deploy.example:99999/"), "hook.url"),
        (replace(BY_URL, hook_url="http://fn["), "hook.url"),
        (replace(IN_PLACE, new_backends=NEW), "newBackends"),
        # surge: new backends, valid, distinct, new to the pool; no hook
        (replace(SURGE, new_backends=()), "newBackends"),
        (replace(SURGE, hook_command=("./deploy.sh",)), "hook"),
        (replace(SURGE, hook_url="https://deploy.example/"), "hook"),
        (
            replace(SURGE, new_backends=(("Blue-New", "http://127.0.0.1:9101"),)),
            "newBackends[0].name",
        ),
        (replace(SURGE, new_backends=(("", "http://127.0.0.1:9101"),)), "newBackends[0].name"),
        (
            replace(SURGE, new_backends=(NEW[0], ("blue-1", "http://127.0.0.1:9102"))),
            "newBackends[1].name",
        ),
        (
            replace(SURGE, new_backends=(NEW[0], (NEW[0][0], "http://127.0.0.1:9102"))),
            "newBackends[1].name",
        ),
        (
            replace(SURGE, new_backends=(NEW[0], ("blue-new-2", "https://10.0.0.9"))),
            "newBackends[1].url",
        ),
        (
            replace(SURGE, new_backends=(NEW[0], ("blue-new-2", "http://10.0.0.9/v2"))),
            "newBackends[1].url",
        ),
        (
            replace(SURGE, new_backends=(NEW[0], ("blue-new-2", "http://10.0.0.9:0x50"))),
            "newBackends[1].url",
        ),
        (
            replace(SURGE, new_backends=(NEW[0], ("blue-new-2", "10.0.0.9:80"))),
            "newBackends[1].url",
        ),
        (
            replace(SURGE, new_backends=(("blue-new-1", "http://127.0.0.1:9002"),)),
            "newBackends[0].url",
        ),
        (replace(SURGE, new_backends=(NEW[0], ("blue-new-2", NEW[0][1]))), "newBackends[1].url"),
        # the judge, as the route rollouts' but in the API's spelling
        (replace(IN_PLACE, judge=JudgeSettings(alpha=0)), "judge.alpha"),
        (replace(IN_PLACE, judge=JudgeSettings(alpha=0.6)), "judge.alpha"),
        (replace(IN_PLACE, judge=JudgeSettings(tolerance=0.9)), "judge.tolerance"),
        (replace(IN_PLACE, judge=JudgeSettings(tolerance=float("nan"))), "judge.tolerance"),
        (replace(SURGE, judge=JudgeSettings(latency_tolerance=0.5)), "judge.latencyTolerance"),
        (replace(SURGE, judge=JudgeSettings(latency_quantile=1)), "judge.latencyQuantile"),
        (replace(SURGE, judge=JudgeSettings(min_requests=0)), "judge.minRequests"),
        (replace(IN_PLACE, webhook="ftp://hooks.example/"), "webhook"),
        (replace(IN_PLACE, webhook="https:///no-host"), "webhook"),
        (replace(IN_PLACE, webhook="http://hooks.example:99999/"), "webhook"),
    ],
)
def test_each_problem_names_its_field(spec: RollSpec, field: str) -> None:
    assert problems(spec) == [field]


@pytest.mark.parametrize("spec", [IN_PLACE, SURGE])
def test_the_pool_needs_backends_and_active_checks(spec: RollSpec) -> None:
    assert problems(spec, EMPTY) == ["pool"]
    assert problems(spec, checked=False) == ["pool"]
    with pytest.raises(SpecError) as raised:
        check(spec, BLUE, checked=False)
    assert "[pools.blue.health]" in raised.value.problems[0].message


def test_every_problem_is_named_at_once() -> None:
    spec = replace(
        SURGE,
        batch=0,
        keep_old=-1,
        hook_url="https://deploy.example/",
        new_backends=(("blue-1", "http://127.0.0.1:9101"), ("ok", "https://x")),
        judge=JudgeSettings(min_requests=0),
        webhook="mailto:ops@example.com",
    )
    assert problems(spec, checked=False) == [
        "batch",
        "keepOld",
        "hook",
        "newBackends[0].name",
        "newBackends[1].url",
        "pool",
        "judge.minRequests",
        "webhook",
    ]


@pytest.mark.parametrize(
    ("changes", "secret"),
    [
        ({"hook_url": "ftp://user:s3cret@deploy.example/?key=k3y"}, ("s3cret", "k3y")),
        ({"webhook": "ftp://user:s3cret@hooks.example/?key=k3y"}, ("s3cret", "k3y")),
    ],
)
def test_a_urls_secrets_are_not_repeated(changes: dict[str, Any], secret: tuple[str, ...]) -> None:
    with pytest.raises(SpecError) as raised:
        check(replace(BY_URL, **changes), BLUE, checked=True)
    assert not any(word in str(raised.value) for word in secret)


def test_the_messages_say_what_to_do() -> None:
    with pytest.raises(SpecError) as raised:
        check(
            replace(SURGE, new_backends=(("blue-2", "http://127.0.0.1:9002"),)), BLUE, checked=True
        )
    messages = {problem.field: problem.message for problem in raised.value.problems}
    assert messages == {
        "newBackends[0].name": "'blue-2' is already a backend of pool 'blue'",
        "newBackends[0].url": (
            "is the address of 'blue-2': a surge's new version runs on new addresses"
        ),
    }
