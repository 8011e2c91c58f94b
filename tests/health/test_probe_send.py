"""The prober's callback way (`Prober.send`, what the health checker uses) and the timer wheel."""

from __future__ import annotations

import asyncio
import math

from test_probe_client import LIMIT, requests, response, serving

from proxy.health_probe import Prober
from proxy.health_schedule import Deadlines, Wheel

Answer = tuple[int | None, bytes, str | None]


async def sent(
    prober: Prober,
    within: float = 1.0,
    want_body: bool = False,
    timeouts: Deadlines[Prober] | None = None,
) -> Answer:
    """One probe through `send`, its (status, body, error)."""
    answered: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
    prober.send(
        "GET",
        "/",
        None,
        within,
        LIMIT,
        want_body,
        lambda *answer: answered.set_result(answer),
        timeouts,
    )
    return await asyncio.wait_for(answered, 5)


async def test_send_reuses_the_kept_alive_connection_and_reports_once_per_probe() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in requests(reader):
            writer.write(response(b"fine", status=503))

    async with serving(handler) as (port, accepted):
        prober = Prober("127.0.0.1", port)
        answers = [await sent(prober, want_body=True) for _ in range(5)]
        prober.close()
    assert answers == [(503, b"fine", None)] * 5
    assert len(accepted) == 1
    assert prober.connects == 1


async def test_send_times_out_and_replaces_a_connection_the_peer_closed() -> None:
    behaviour = ["answer", "close", "silent"]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in requests(reader):
            what = behaviour[0]
            if what == "silent":
                await asyncio.sleep(10)
            writer.write(response(b"ok"))
            if what == "close":
                await writer.drain()
                return  # closed after answering: the next probe finds it closed

    async with serving(handler) as (port, accepted):
        prober = Prober("127.0.0.1", port)
        assert await sent(prober) == (200, b"", None)
        behaviour[0] = "close"
        assert await sent(prober) == (200, b"", None)
        await asyncio.sleep(0.05)
        assert await sent(prober) == (200, b"", None)  # a new connection, no failure
        behaviour[0] = "silent"
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await sent(prober, within=0.2) == (None, b"", "timeout after 0.2 s")
        assert 0.2 - 0.005 <= loop.time() - started < 0.5
        behaviour[0] = "answer"
        assert await sent(prober) == (200, b"", None)  # after a timeout: a new connection
        prober.close()
    assert len(accepted) == 4


async def test_a_closed_prober_never_calls_back() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    calls: list[Answer] = []
    async with serving(handler) as (port, _):
        prober = Prober("127.0.0.1", port)
        prober.send("GET", "/", None, 0.1, LIMIT, False, lambda *answer: calls.append(answer))
        await asyncio.sleep(0.02)
        prober.close()
        await asyncio.sleep(0.2)
    assert calls == []


async def test_the_wheel_fires_in_order_never_early_with_one_timer_per_slot() -> None:
    loop = asyncio.get_running_loop()
    fired: list[tuple[str, float]] = []
    wheel: Wheel[str] = Wheel(loop, lambda item: fired.append((item, loop.time())), slot=0.05)
    # From a slot's start: a and b then share the next slot whatever the clock says (from
    # any time, a slot's boundary could fall between them one time in five).
    start = math.ceil(loop.time() / 0.05) * 0.05
    wheel.at(start + 0.01, "a")
    wheel.at(start + 0.02, "b")
    wheel.at(start + 0.12, "c")
    wheel.at(start + 30.0, "dropped")
    assert wheel.timers == 3
    assert len(wheel) == 4
    # Polled, not slept: a loaded machine may run the loop late (bounded: 10 s).
    deadline = loop.time() + 10
    while len(fired) < 3 and loop.time() < deadline:
        await asyncio.sleep(0.02)
    wheel.clear()  # no timer left after it: "dropped" can never fire
    assert [item for item, _ in fired] == ["a", "b", "c"]
    # A slot fires at its end: never before the item's time (uvloop's clock is in ms).
    assert fired[0][1] >= start + 0.01 - 0.002
    assert fired[2][1] >= start + 0.12 - 0.002
    assert fired[0][1] == fired[1][1]  # one slot, one timer
    assert wheel.timers == 0
    assert len(wheel) == 0


async def test_deadlines_time_probes_out_and_an_answered_probe_is_forgotten() -> None:
    silent = [False]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in requests(reader):
            if silent[0]:
                await asyncio.sleep(10)
            writer.write(response(b"ok"))

    loop = asyncio.get_running_loop()
    timeouts: Deadlines[Prober] = Deadlines(loop)
    async with serving(handler) as (port, _):
        prober = Prober("127.0.0.1", port)
        assert await sent(prober, within=0.1, timeouts=timeouts) == (200, b"", None)  # connects
        # Answered long before its deadline: forgotten, its deadline can end no later probe.
        assert await sent(prober, within=0.1, timeouts=timeouts) == (200, b"", None)
        assert len(timeouts) == 0
        silent[0] = True
        # Its deadline falls 0.05 s into the next probe: were it taken for the next one's, the
        # next would end at 0.05 s, not 0.1 s.
        await asyncio.sleep(0.05)
        started = loop.time()
        assert await sent(prober, within=0.1, timeouts=timeouts) == (
            None,
            b"",
            "timeout after 0.1 s",
        )
        # Never early (uvloop's clock is in ms); late only by a loaded loop's slack.
        assert 0.1 - 0.005 <= loop.time() - started < 0.1 + 0.3
        assert len(timeouts) == 0
        prober.close()
        timeouts.clear()


async def test_deadlines_fire_in_order_with_one_timer_and_re_arm_for_the_earliest() -> None:
    loop = asyncio.get_running_loop()
    expired: list[tuple[str, float]] = []

    class Item:
        def __init__(self, name: str) -> None:
            self.name = name

        def expire(self) -> None:
            expired.append((self.name, loop.time()))

    a, b, c, forgotten = Item("a"), Item("b"), Item("c"), Item("forgotten")
    timeouts: Deadlines[Item] = Deadlines(loop)
    start = loop.time()
    timeouts.watch(b, start + 0.10)
    timeouts.watch(forgotten, start + 0.02)
    timeouts.watch(a, start + 0.05)  # earlier than b's: the timer moves to it
    timeouts.watch(c, start + 0.15)
    timeouts.forget(forgotten)
    assert len(timeouts) == 3
    deadline = loop.time() + 10  # polled, not slept: a loaded machine runs the loop late
    while len(expired) < 3 and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert [name for name, _ in expired] == ["a", "b", "c"]
    for (_, at), due in zip(expired, (0.05, 0.10, 0.15), strict=True):
        assert at >= start + due - 0.002  # never early
    assert len(timeouts) == 0
    timeouts.clear()
