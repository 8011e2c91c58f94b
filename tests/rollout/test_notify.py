"""Webhook notifications: delivered in order by one background task that never blocks the sender."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web

from helpers import Backend, Handler, free_port, start_backend
from proxy.control.rollout.notify import Notifier


def fast(capacity: int = 256) -> Notifier:
    """Short timeout and backoff, for tests."""
    return Notifier(timeout=0.3, backoff=(0.01, 0.02, 0.04), capacity=capacity)


@pytest.fixture
async def receivers() -> AsyncIterator[list[Backend]]:
    started: list[Backend] = []
    yield started
    for backend in started:
        await backend.stop()


async def receiver(started: list[Backend], handler: Handler) -> Backend:
    backend = await start_backend("hook", handler)
    started.append(backend)
    return backend


def answering(*statuses: int) -> Handler:
    """A receiver answering these statuses in turn, then 200."""
    remaining = list(statuses)

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=remaining.pop(0) if remaining else 200)

    return handler


def bodies(backend: Backend) -> list[object]:
    return [orjson.loads(seen.body) for seen in backend.seen]


async def recording(started: list[Backend], handler: Handler) -> Backend:
    """`handler`'s receiver, keeping each request's body (start_backend keeps it only without
    a handler of its own)."""
    holder: list[Backend] = []

    async def read_then_answer(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        holder[0].seen[-1].body = body
        return await handler(request)

    backend = await receiver(started, read_then_answer)
    holder.append(backend)
    return backend


async def test_an_event_is_posted_as_json(receivers: list[Backend]) -> None:
    hook = await recording(receivers, answering())
    notifier = fast()
    event = {"route": "web", "phase": "aborted", "reason": "canary 5xx rate 4.1 %", "step": 1}
    notifier.send(f"{hook.url}/hooks/turnout?team=web", event)
    await notifier.close(grace=5)
    (seen,) = hook.seen
    assert (seen.method, seen.path) == ("POST", "/hooks/turnout?team=web")
    assert seen.header("Content-Type") == "application/json"
    assert orjson.loads(seen.body) == event


async def test_events_arrive_in_the_order_sent(receivers: list[Backend]) -> None:
    hook = await recording(receivers, answering())
    notifier = fast()
    for step in range(20):
        notifier.send(hook.url, {"step": step})
    await notifier.close(grace=5)
    assert bodies(hook) == [{"step": step} for step in range(20)]


async def test_a_5xx_is_retried_until_it_succeeds(receivers: list[Backend]) -> None:
    hook = await recording(receivers, answering(500, 503))
    notifier = fast()
    notifier.send(hook.url, {"phase": "started"})
    notifier.send(hook.url, {"phase": "step"})
    await notifier.close(grace=5)
    assert bodies(hook) == [{"phase": "started"}] * 3 + [{"phase": "step"}]


async def test_retries_are_bounded(
    receivers: list[Backend], caplog: pytest.LogCaptureFixture
) -> None:
    hook = await recording(receivers, answering(*[500] * 10))
    notifier = fast()
    notifier.send(hook.url, {"phase": "started"})
    await notifier.close(grace=5)
    assert len(hook.seen) == 4  # the first attempt and three retries
    assert "status 500 after 4 attempts" in caplog.text


async def test_a_4xx_is_not_retried(receivers: list[Backend]) -> None:
    hook = await recording(receivers, answering(404))
    notifier = fast()
    notifier.send(hook.url, {"phase": "started"})
    notifier.send(hook.url, {"phase": "step"})
    await notifier.close(grace=5)
    assert bodies(hook) == [{"phase": "started"}, {"phase": "step"}]


async def test_a_timeout_fails_that_event_and_the_next_is_still_delivered(
    receivers: list[Backend], caplog: pytest.LogCaptureFixture
) -> None:
    hung = asyncio.Event()

    async def hang_once(request: web.Request) -> web.StreamResponse:
        if not hung.is_set():
            hung.set()
            await asyncio.sleep(30)
        return web.Response()

    hook = await recording(receivers, hang_once)
    notifier = fast()
    notifier.send(hook.url, {"phase": "started"})
    notifier.send(hook.url, {"phase": "paused"})
    started = time.monotonic()
    await notifier.close(grace=5)
    # A timeout is not retried: the receiver may have acted on it, and a hanging receiver
    # must not hold every later event for timeout x attempts.
    assert time.monotonic() - started < 2
    assert bodies(hook) == [{"phase": "started"}, {"phase": "paused"}]
    assert "timed out after 0.3 s" in caplog.text


async def test_send_returns_at_once_while_the_receiver_hangs(receivers: list[Backend]) -> None:
    async def hang(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(30)
        return web.Response()

    hook = await receiver(receivers, hang)
    notifier = Notifier(timeout=5.0)
    started = time.monotonic()
    for step in range(50):
        notifier.send(hook.url, {"step": step})
        await asyncio.sleep(0)  # let the delivery task start and block on the receiver
    assert time.monotonic() - started < 0.5
    await asyncio.sleep(0.1)
    assert len(hook.seen) == 1
    # close: a short grace, then what is pending is given up.
    started = time.monotonic()
    await notifier.close(grace=0.2)
    assert time.monotonic() - started < 1


async def test_a_full_queue_drops_the_oldest_with_a_warning(
    receivers: list[Backend], caplog: pytest.LogCaptureFixture
) -> None:
    gate = asyncio.Event()

    async def held(request: web.Request) -> web.StreamResponse:
        await gate.wait()
        return web.Response()

    hook = await recording(receivers, held)
    notifier = fast(capacity=3)
    notifier.send(hook.url, {"step": 0})
    await asyncio.sleep(0.1)  # step 0 is being delivered: no longer queued
    for step in range(1, 6):
        notifier.send(hook.url, {"step": step})
    gate.set()
    await notifier.close(grace=5)
    assert bodies(hook) == [{"step": 0}, {"step": 3}, {"step": 4}, {"step": 5}]
    assert "queue full: dropped" in caplog.text


async def test_failures_are_logged_without_secrets_of_the_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    port = free_port()
    notifier = fast()
    notifier.send(f"http://alice:hunter2@127.0.0.1:{port}/hook?token=s3cret", {"phase": "x"})
    await notifier.close(grace=5)
    assert f"http://127.0.0.1:{port}/hook" in caplog.text
    assert "connection refused after 4 attempts" in caplog.text
    for secret in ("alice", "hunter2", "s3cret", "token"):
        assert secret not in caplog.text


async def test_send_after_close_is_ignored(receivers: list[Backend]) -> None:
    hook = await recording(receivers, answering())
    notifier = fast()
    await notifier.close()
    notifier.send(hook.url, {"phase": "late"})
    await asyncio.sleep(0.1)
    assert hook.seen == []
