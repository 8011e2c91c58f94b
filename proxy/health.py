"""Health: active probes, passive outlier ejection, and the health view they publish.

Theory of operation. The control plane runs one `HealthChecker` for the whole instance (workers
never probe). For every backend of a pool whose [health] is enabled, it probes it every
`interval` (times 1 +/- jitter, so backends are not probed in lockstep), over the checker's own
connection to it, kept alive between probes (proxy.health_probe), at most `CONCURRENCY` probes at
once. No task per backend: the due probes sit on one timer wheel of DUE_SLOT slots and the
probes in flight on one deadline timer (proxy.health_schedule: every timer is a wake-up), a probe
is sent and answered by callback (`Prober.send`), and its answer is judged inline; only a change
of state takes a task (publishing it is async, and the backend's next probe waits for it). A backend becomes unhealthy after
`unhealthy_threshold` failed probes in a row and healthy again after `healthy_threshold`
successes in a row, so a flapping backend never comes back.

Independently, workers report backends whose real requests fail in a row (proxy.dataplane.
Target); if the pool's [outlier] detection is on, such a backend is ejected for
base_ejection_time x (its ejections in a row), up to max_ejection_time, unless that would eject
more than max_ejection_percent of the pool (rounded down: the cap is honoured exactly, unlike
Envoy #17504). When the time is up it returns on probation: the next failures eject it for longer.

A backend routes traffic when it is healthy by probe *and* not ejected. Every change of that is
logged once and published as a new snapshot through `publish` (the control plane's apply), with
the time it became healthy again, from which slow start ramps its weight.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from proxy.config import HealthCheckConfig, Settings
from proxy.health_probe import Done, Prober
from proxy.health_schedule import Deadlines, Wheel
from router import Health, Spec

log = logging.getLogger("turnout.health")

CONCURRENCY = 64
"""Probes in flight at once, whatever the number of backends."""
BODY_LIMIT = 64 * 1024
TICK = 0.25
"""How often ejections are checked for expiry."""
DUE_SLOT = 0.05
"""Seconds: the resolution of the probes' schedule. Every slot in use is a timer, a wake-up of
the control plane, whose cost (~tens of µs in a VM) is near a probe's own: at 2,000 probes a
second, 10 ms slots (100 wake-ups a second) cost ~15 % more CPU per probe than 50 ms ones (20).
A probe falls due within half a slot of its time, well inside the interval's jitter (20 %
of it by default); timeouts do not depend on it (Deadlines)."""

Key = tuple[str, str]
Publish = Callable[[dict[Key, Health], dict[Key, float], str, str, str], Awaitable[None]]
"""(health view, readmitted times, action, target, why) -> the change is live everywhere."""


@dataclass
class Probe:
    at: float
    """Wall time."""
    ok: bool
    status: int | None
    error: str | None
    duration: float


@dataclass
class BackendHealth:
    """What the checker knows of one backend."""

    pool: str
    backend: str
    address: str
    checked: bool
    """Active checks are on for its pool."""
    state: Health
    """By probe."""
    successes: int = 0
    failures: int = 0
    # The last probe, kept field by field (`last` assembles it): no object per probe.
    last_at: float = 0.0
    """Wall time; 0: never probed."""
    last_ok: bool = False
    last_status: int | None = None
    last_error: str | None = None
    last_duration: float = 0.0
    was_healthy: bool = False
    """It has been healthy at some point (initial_state healthy counts)."""
    probes_ok: int = 0
    probes_failed: int = 0
    ejected_by_probes: int = 0
    ejected_by_outliers: int = 0
    ejected_until: float = 0.0
    """Monotonic time; 0: not ejected."""
    ejected_at: float = 0.0
    """Wall time of the current ejection."""
    ejections: int = 0
    """Ejections in a row (the next one lasts this many times longer)."""
    ejection_reason: str | None = None
    back_since: float = 0.0
    """Monotonic time the last ejection ended."""
    changed_at: float = field(default_factory=time.time)

    @property
    def last(self) -> Probe | None:
        if not self.last_at:
            return None
        return Probe(
            self.last_at, self.last_ok, self.last_status, self.last_error, self.last_duration
        )

    def probed(
        self, at: float, ok: bool, status: int | None, error: str | None, duration: float
    ) -> None:
        """Count one probe's outcome (the state machine's transitions are the checker's)."""
        self.last_at, self.last_ok, self.last_status = at, ok, status
        self.last_error, self.last_duration = error, duration
        if ok:
            self.probes_ok += 1
            self.successes += 1
            self.failures = 0
        else:
            self.probes_failed += 1
            self.failures += 1
            self.successes = 0

    @property
    def ejected(self) -> bool:
        return self.ejected_until > 0.0

    @property
    def routable(self) -> bool:
        return self.state == "healthy" and not self.ejected


@dataclass(eq=False, slots=True)
class _Slot:
    """One probed backend's place in the checker: its state, prober and answer callback."""

    key: Key
    state: BackendHealth
    prober: Prober
    done: Done = field(init=False)
    started: float = 0.0
    """Monotonic time the current probe was due."""
    busy: bool = False
    """A probe is in flight (it counts towards CONCURRENCY)."""


class HealthChecker:
    def __init__(self, publish: Publish) -> None:
        self.publish = publish
        self.backends: dict[Key, BackendHealth] = {}
        self.readmitted: dict[Key, float] = {}
        self.settings: Settings | None = None
        self.spec: Spec | None = None
        self._slots: dict[Key, _Slot] = {}
        """The backends probed."""
        self._wheel: Wheel[_Slot] | None = None
        """The backends due, on DUE_SLOT slots."""
        self._timeouts: Deadlines[Prober] | None = None
        """The deadlines of the probes in flight: one timer, exact."""
        self._in_flight = 0
        self._queued: deque[_Slot] = deque()
        """Due while CONCURRENCY probes were in flight, in the order they fell due."""
        self._changes: set[asyncio.Task[None]] = set()
        """Probes' transitions being published."""
        self._ticker: asyncio.Task[None] | None = None
        self._cap_logged: set[Key] = set()
        self._ejecting: dict[Key, None] = {}
        """Backends with ejections in a row (`ejections` > 0), in the order of their first: all
        the ticker has to look at (walking all 2,000 backends four times a second cost ~1 % of
        the checker's CPU). A dict, not a set: ejections that end in one tick are announced in
        a stable order."""
        self._configs: dict[str, tuple[HealthCheckConfig, frozenset[int], bytes | None]] = {}
        """Per pool: its health config, expected statuses and body, resolved once per change."""

    # The view the control plane routes by

    def health(self) -> dict[Key, Health]:
        return {
            key: "healthy" if state.routable else "unhealthy"
            for key, state in self.backends.items()
            if not state.routable
        }

    def initial(self, spec: Spec, settings: Settings) -> dict[Key, Health]:
        """The health view before any probe: every checked backend in its initial state."""
        self._track(spec, settings)
        return self.health()

    # Lifecycle

    def reconcile(self, spec: Spec, settings: Settings) -> None:
        """Follow the spec: probe new backends, stop probing removed ones."""
        self._track(spec, settings)
        for key in list(self._slots):
            slot = self._slots[key]
            if self.backends.get(key) is not slot.state or not slot.state.checked:
                del self._slots[key]
                self._release(slot)
                slot.prober.close()
        for key, state in self.backends.items():
            if state.checked and key not in self._slots:
                # Its own connections: a probe never takes a request's pooled connection, and
                # a probe's connection is never reused for a request.
                host, _, port = state.address.rpartition(":")
                slot = self._slots[key] = _Slot(key, state, Prober(host.strip("[]"), int(port)))
                slot.done = functools.partial(self._answered, slot)
                config = self._configs[state.pool][0]
                # The first probe soon after start (not a whole interval later), spread out too.
                self._probe_later(
                    slot, random.uniform(0, min(1.0, config.interval) * config.jitter)
                )
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick_forever())

    async def stop(self) -> None:
        if self._wheel is not None:
            self._wheel.clear()
        if self._timeouts is not None:
            self._timeouts.clear()
        for slot in self._slots.values():
            slot.prober.close()
        self._slots.clear()
        self._queued.clear()
        self._in_flight = 0
        tasks = [*self._changes, *([self._ticker] if self._ticker else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._changes.clear()
        self._ticker = None

    def _track(self, spec: Spec, settings: Settings) -> None:
        self.spec, self.settings = spec, settings
        self._configs = {}
        known: dict[Key, BackendHealth] = {}
        for pool in spec.pools:
            config = settings.pool_health(pool.name)
            self._configs[pool.name] = (
                config,
                _statuses(config.expected_statuses),
                config.expect_body.encode() if config.expect_body else None,
            )
            for backend in pool.backends:
                key = (pool.name, backend.name)
                address = f"{backend.host}:{backend.port}"
                state = self.backends.get(key)
                if state is None or state.address != address or state.checked != config.enabled:
                    initial = config.initial_state if config.enabled else "healthy"
                    state = BackendHealth(
                        pool=pool.name,
                        backend=backend.name,
                        address=address,
                        checked=config.enabled,
                        state=initial,
                        was_healthy=initial == "healthy",
                    )
                known[key] = state
        self.backends = known
        self.readmitted = {k: v for k, v in self.readmitted.items() if k in known}

    # Active checks

    def _probe_later(self, slot: _Slot, delay: float) -> None:
        if self._wheel is None:
            self._wheel = Wheel(asyncio.get_running_loop(), self._fire, DUE_SLOT)
        # The wheel fires at the end of a slot, half a slot late on average: due half a slot
        # sooner, a backend is probed every interval on average, as asked.
        self._wheel.later(delay - DUE_SLOT / 2, slot)

    def _fire(self, slot: _Slot) -> None:
        """A backend is due (the wheel calls this): probe it now, or when a probe ends."""
        if self._slots.get(slot.key) is not slot or self.backends.get(slot.key) is not slot.state:
            return  # the backend was removed or redefined
        slot.started = time.monotonic()
        if self._in_flight >= CONCURRENCY:
            self._queued.append(slot)
        else:
            self._send(slot)

    def _send(self, slot: _Slot) -> None:
        config = self._configs[slot.state.pool][0]
        self._in_flight += 1
        slot.busy = True
        if self._timeouts is None:
            self._timeouts = Deadlines(asyncio.get_running_loop())
        slot.prober.send(
            config.method,
            config.path,
            config.host,
            config.timeout,
            BODY_LIMIT,
            bool(config.expect_body),
            slot.done,
            self._timeouts,
        )

    def _answered(self, slot: _Slot, status: int | None, body: bytes, error: str | None) -> None:
        """A probe's answer (the prober calls this): judge it, then the next probe is due."""
        ended = time.monotonic()
        self._release(slot)
        state = slot.state
        if self.backends.get(slot.key) is not state:
            return  # the backend was removed or redefined while it was probed
        config, statuses, expect = self._configs[state.pool]
        if error is None and status is not None:
            if status not in statuses:
                error = f"status {status}"
            elif expect is not None and expect not in body:
                error = f"body lacks {config.expect_body!r}"
        state.probed(time.time(), error is None, status, error, ended - slot.started)
        # interval x (1 +/- jitter), as random.uniform would draw it, without its Python call.
        delay = config.interval * (1.0 + config.jitter * (2.0 * random.random() - 1.0))
        if error is None:
            # A backend that started unhealthy (initial_state) needs one success; one that
            # its probes took out needs healthy_threshold of them in a row.
            needed = config.healthy_threshold if state.was_healthy else 1
            change = state.state == "unhealthy" and state.successes >= needed
        else:
            change = state.state == "healthy" and state.failures >= config.unhealthy_threshold
        if not change:
            self._probe_later(slot, delay)  # the common case: no task, no allocation
            return
        task = asyncio.create_task(self._transition(slot, delay))
        self._changes.add(task)
        task.add_done_callback(self._changes.discard)

    def _release(self, slot: _Slot) -> None:
        if slot.busy:
            slot.busy = False
            self._in_flight -= 1
        while self._queued and self._in_flight < CONCURRENCY:
            waiting = self._queued.popleft()
            if self._slots.get(waiting.key) is waiting:
                self._send(waiting)

    async def _transition(self, slot: _Slot, delay: float) -> None:
        # Probing this backend resumes once its change is live, as it always has.
        state = slot.state
        if state.last_ok:
            await self._set(state, "healthy", f"{state.successes} successful probe(s)")
        else:
            state.ejected_by_probes += 1
            await self._set(
                state, "unhealthy", f"{state.failures} failed probes: {state.last_error}"
            )
        if self._slots.get(slot.key) is slot:
            self._probe_later(slot, delay)

    async def _set(self, state: BackendHealth, value: Health, why: str) -> None:
        was = state.routable
        state.state = value
        state.was_healthy = state.was_healthy or value == "healthy"
        await self._changed(state, was, why)

    # Passive checks

    async def outlier(self, pool: str, backend: str, reason: str, count: int) -> None:
        """A worker saw `count` failures in a row of real requests to the backend."""
        settings = self.settings
        state = self.backends.get((pool, backend))
        if settings is None or state is None or state.ejected:
            return
        config = settings.pool_outlier(pool)
        if not config.enabled:
            return
        members = [s for s in self.backends.values() if s.pool == pool]
        ejected = sum(1 for s in members if s.ejected)
        cap = math.floor(len(members) * config.max_ejection_percent / 100)
        if ejected + 1 > cap:
            if (pool, backend) not in self._cap_logged:
                self._cap_logged.add((pool, backend))
                log.warning(
                    "not ejecting %s/%s (%d %s failures in a row): max_ejection_percent %d%% "
                    "allows %d of %d backends",
                    pool,
                    backend,
                    count,
                    reason,
                    config.max_ejection_percent,
                    cap,
                    len(members),
                )
            return
        self._cap_logged.discard((pool, backend))
        was = state.routable
        state.ejections += 1
        self._ejecting[pool, backend] = None
        state.ejected_by_outliers += 1
        duration = min(config.max_ejection_time, config.base_ejection_time * state.ejections)
        state.ejected_until = time.monotonic() + duration
        state.ejected_at = time.time()
        state.ejection_reason = f"{count} {reason} failures in a row"
        await self._changed(state, was, f"ejected for {duration:g} s: {state.ejection_reason}")

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            for key in list(self._ejecting):
                state = self.backends.get(key)
                if state is None or not state.ejections:
                    self._ejecting.pop(key, None)  # removed, redefined or forgiven
                    continue
                if state.ejected and state.ejected_until <= now:
                    was = state.routable
                    state.ejected_until = 0.0
                    state.back_since = now
                    await self._changed(state, was, "ejection over, on probation")
                elif not state.ejected and self.settings is not None:
                    # Long enough back without failing: the next ejection starts short again.
                    config = self.settings.pool_outlier(state.pool)
                    if now - state.back_since > config.max_ejection_time:
                        state.ejections = 0
                        self._ejecting.pop(key, None)

    # Publishing

    async def _changed(self, state: BackendHealth, was: bool, why: str) -> None:
        now = state.routable
        if now == was:
            return
        key = (state.pool, state.backend)
        state.changed_at = time.time()
        if now:
            self.readmitted[key] = state.changed_at
            log.warning("backend %s/%s readmitted: %s", state.pool, state.backend, why)
        else:
            self.readmitted.pop(key, None)
            log.warning("backend %s/%s out of rotation: %s", state.pool, state.backend, why)
        action = "readmit" if now else "eject"
        await self.publish(
            self.health(),
            dict(self.readmitted),
            action,
            f"pool/{state.pool}/backend/{state.backend}",
            why,
        )


@functools.cache
def _statuses(expected: str) -> frozenset[int]:
    """Every status `expected_statuses` accepts: one set lookup a probe, shared by the pools."""
    ranges = HealthCheckConfig(expected_statuses=expected).statuses()
    return frozenset(status for low, high in ranges for status in range(low, high + 1))
