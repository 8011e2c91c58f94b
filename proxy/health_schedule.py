"""A timer wheel for the health checker: one event-loop timer per slot in use, not per probe.

Theory of operation. At 2,000 backends probed every second, one task sleeping per backend costs a
task step, a future and a timer for every probe. The wheel rounds each due time up to the next
multiple of `slot` seconds and keeps, per slot, the items due then; the first item of a slot arms
one `loop.call_at` for it, and when it fires every item of the slot is handed to `fire`, in the
order they were added. With 10 ms slots, 2,000 probes a second need ~100 timers a second, and a
probe fires at most one slot late (its interval is jittered by far more than that).

Items cannot be taken out: the caller checks, when one fires, that it still wants it (a removed
backend's item is dropped then). `clear` cancels every pending timer.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Generic, TypeVar

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
