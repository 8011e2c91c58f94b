"""A timer wheel for the health checker: one event-loop timer per slot in use, not per probe.

Theory of operation. At 2,000 backends probed every second, one task sleeping per backend costs a
task step, a future and a timer for every probe. The wheel rounds each due time up to the next
multiple of `slot` seconds and keeps, per slot, the items due then; the first item of a slot arms
one `loop.call_at` for it, and when it fires every item of the slot is handed to `fire`, in the
order they were added. With 10 ms slots, 2,000 probes a second need ~100 timers a second, and a
probe fires at most one slot late (its interval is jittered by far more than that); the health
checker uses 50 ms slots (health.DUE_SLOT: 20 timers a second).

Items cannot be taken out: the caller checks, when one fires, that it still wants it (a removed
backend's item is dropped then). `clear` cancels every pending timer.

The probes' deadlines are not on a wheel but on `Deadlines`: one timer for the earliest deadline
of the probes in flight (a wheel would keep a timer per slot for deadlines long answered).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")

SLOT = 0.01
"""Seconds: the wheel's resolution."""


class Wheel(Generic[T]):
    def __init__(
        self, loop: asyncio.AbstractEventLoop, fire: Callable[[T], None], slot: float = SLOT
    ) -> None:
        self._loop = loop
        self._fire = fire
        self._slot = slot
        self._slots: dict[int, list[T]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return sum(len(items) for items in self._slots.values())

    @property
    def timers(self) -> int:
        """Timers armed (one per slot in use)."""
        return len(self._timers)

    def at(self, when: float, item: T) -> None:
        """Fire `item` at loop time `when` (rounded up to the slot, never early)."""
        number = math.ceil(when / self._slot)
        items = self._slots.get(number)
        if items is not None:
            items.append(item)
            return
        self._slots[number] = [item]
        self._timers[number] = self._loop.call_at(number * self._slot, self._run, number)

    def later(self, delay: float, item: T) -> None:
        self.at(self._loop.time() + delay, item)

    def clear(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._slots.clear()

    def _run(self, number: int) -> None:
        del self._timers[number]
        items = self._slots.pop(number)
        fire = self._fire
        for item in items:
            fire(item)


class Expiring(Protocol):
    def expire(self) -> None:
        """Its deadline has passed (`Deadlines` calls this once, having forgotten it)."""


E = TypeVar("E", bound=Expiring)


class Deadlines(Generic[E]):
    """The deadlines of the probes in flight, on one event-loop timer.

    A wheel would keep every probe's deadline until its slot, and a probe answered in a
    millisecond would still cost its slot's timer: at thousands of probes a second, a timer (a
    wake-up of the control plane) every slot for nothing. Here an answered probe is forgotten
    (`forget`, a dict pop), and the one timer is armed for the earliest deadline of the probes
    still in flight: it fires about once per timeout, finds them answered, and re-arms for the
    earliest in flight then. Exact, too: a probe expires at its deadline, not a slot later.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._due: dict[E, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._armed = math.inf
        """Loop time the timer fires at (inf: none)."""

    def __len__(self) -> int:
        return len(self._due)

    def watch(self, item: E, deadline: float) -> None:
        """Call `item.expire()` at loop time `deadline`, unless it is forgotten first."""
        self._due[item] = deadline
        if deadline < self._armed:
            self._arm(deadline)

    def forget(self, item: E) -> None:
        self._due.pop(item, None)

    def clear(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._armed = None, math.inf
        self._due.clear()

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed = when
        self._timer = self._loop.call_at(when, self._run)

    def _run(self) -> None:
        self._timer, self._armed = None, math.inf
        now = self._loop.time()
        due = self._due
        expired = [item for item, deadline in due.items() if deadline <= now]
        for item in expired:
            del due[item]
        for item in expired:
            item.expire()
        if due and self._timer is None:
            # min() over the probes in flight: at most health.CONCURRENCY of them.
            self._arm(min(due.values()))
