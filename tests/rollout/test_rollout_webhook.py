"""Webhook notifications of a real rollout: a loopback aiohttp receiver gets one JSON POST per
phase change, in order; a receiver that answers 500 or never answers does not hold the
rollout up by a moment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from admin.admin_support import Api, BackendLoop, api, backend_loop, wait_until
from aiohttp import web
from traffic_support import Switchable, Traffic, rollout_history, start, wait_for_rollout

from helpers import ProxyProcess, config, proxy_process

Setup = tuple[ProxyProcess, Switchable, BackendLoop]

STEPS = [5, 25, 50, 100]
STEP_TIME = 0.3


@dataclass
class Receiver:
    """A webhook receiver: every POST's JSON body, in arrival order; answers `status`, after
    `hang` seconds."""

    status: int = 200
    hang: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        assert request.method == "POST"
        assert request.content_type == "application/json"
        self.events.append(await request.json())
        if self.hang:
            await asyncio.sleep(self.hang)
        return web.Response(status=self.status)

    def names(self) -> list[str]:
        return [event["event"] for event in self.events]


def receiver(loop: BackendLoop, name: str, **options: Any) -> Receiver:
    hook = Receiver(**options)
    hook.url = loop.start(name, hook.handle).url + "/hooks/turnout?token=secret"
    return hook


@pytest.fixture
def setup() -> Iterator[Setup]:
    with backend_loop() as loop:
        _, stable_url = start(loop, "stable")
        canary, canary_url = start(loop, "canary")
        data = config(
            {"stable": [stable_url], "canary": [canary_url]},
            {"web": {"weights": {"stable": 100, "canary": 0}}},
        )
        with proxy_process(data, workers=2) as proxy:
            yield proxy, canary, loop


def run(admin: Api, hook: Receiver, step_time: float = STEP_TIME) -> tuple[dict[str, Any], float]:
    """A rollout notifying `hook`, to its end: the final status and how long it took."""
    body = {
        "canary": "canary",
        "steps": STEPS,
        "stepTime": step_time,
        "judge": {"minRequests": 20},
        "webhook": hook.url,
    }
    started = time.monotonic()
    admin.call("POST", "/v1/routes/web/rollout", body).ok(201)
    done = wait_for_rollout(admin, "web", lambda s: s["phase"] != "progressing", 30)
    return done, time.monotonic() - started


def test_every_phase_change_is_posted_in_order(setup: Setup) -> None:
    proxy, canary, loop = setup
    admin = api(proxy)
    hook = receiver(loop, "hook")
    with Traffic(proxy.port).running():
        done, _ = run(admin, hook)
    assert done["phase"] == "promoted", done
    wait_until(lambda: len(hook.events) >= 5)
    assert hook.names() == ["started", "step", "step", "step", "promoted"], hook.events
    assert [e["weight"] for e in hook.events] == [5, 25, 50, 100, 100]
    assert [e["step"] for e in hook.events] == [0, 1, 2, 3, 3]
    revisions = [e["revision"] for e in hook.events]
    assert revisions == sorted(set(revisions))
    # The events are the history's transitions, one for one.
    history = rollout_history(admin)
    assert revisions == [e["revision"] for e in history]
    first = hook.events[0]
    assert (first["route"], first["strategy"], first["baseline"], first["candidate"]) == (
        "web",
        "canary",
        "stable",
        "canary",
    )
    assert hook.events[-1]["phase"] == "promoted"
    assert hook.events[-1]["cause"] is None

    # Another rollout, aborted by the judge: the abort is posted with its reason and cause.
    aborted = receiver(loop, "hook-aborted")
    canary.failing = True
    with Traffic(proxy.port).running():
        done, _ = run(admin, aborted, step_time=60)
    assert (done["phase"], done["cause"]) == ("aborted", "errors"), done
    wait_until(lambda: len(aborted.events) >= 2)
    assert aborted.names() == ["started", "aborted"], aborted.events
    last = aborted.events[-1]
    assert (last["phase"], last["cause"], last["step"]) == ("aborted", "errors", 0)
    assert (last["reason"], last["revision"]) == (done["reason"], done["transitionRevision"])
    assert last["reason"].startswith("aborted at step 1/4 (5 %): canary"), last["reason"]


# A receiver that held a waiting rollout back would cost it seconds at its first event: 0.5 +
# 1 + 2 s of retries after 500s, a 5 s timeout for one that never answers.
BOUND = STEP_TIME * len(STEPS) + 3.0


def test_a_receiver_answering_500_never_delays_the_rollout(setup: Setup) -> None:
    proxy, _, loop = setup
    broken = receiver(loop, "hook-500", status=500)
    with Traffic(proxy.port).running():
        done, took = run(api(proxy), broken)
    print(f"promoted in {took:.2f} s, notifying a receiver answering 500")
    assert done["phase"] == "promoted", done
    assert took < BOUND, took
    # It was really asked, and really failed: the first event is retried.
    wait_until(lambda: broken.names()[:2] == ["started", "started"])


def test_a_receiver_that_never_answers_never_delays_the_rollout(setup: Setup) -> None:
    proxy, _, loop = setup
    hanging = receiver(loop, "hook-hang", hang=60)
    with Traffic(proxy.port).running():
        done, took = run(api(proxy), hanging)
    print(f"promoted in {took:.2f} s, notifying a receiver that never answers")
    assert done["phase"] == "promoted", done
    assert took < BOUND, took
    # It was really asked, and has not answered the first event yet.
    assert hanging.names() == ["started"]
