"""GET /v1/events/stream: the instance, live, as server-sent events; one producer, fanned out.

Theory of operation. Each admin application has one `Events`. While at least one client is
subscribed, one task (the producer) builds a frame (admin_api.frame) every second: it asks every
worker for its counters once, reads the control service's queries in one go, advances the
per-second series and the rollouts' evidence history (admin_api.series), serializes the frame
once with orjson and offers the same bytes to every subscriber. In fleet mode it also reads the
fleet (GET /v1/fleet: one etcd range read and one get), at the same time as the workers' counters
and for at most FLEET_BUDGET: an etcd that does not answer slows no frame (the page is most
needed then); such a frame says etcd is unreachable, as GET /v1/fleet does when etcd fails.
Invariants:
- No subscriber, no work: the first subscriber starts the producer, the last one to leave
  stops it, and so does the application's shutdown. 20 tabs cost what one costs.
- A subscriber's queue holds at most QUEUE frames; offering to a full one drops its oldest
  frame, so a client that reads slowly (or not at all) loses old frames and never slows the
  producer or the others; with its socket's send buffer capped too (SEND_BUFFER), what a
  stalled client holds is bounded. Every frame carries the whole state, so a lost frame loses nothing
  but a second's freshness.
- A new subscriber gets the last frame at once if the state has not changed since it was built
  (or else the producer builds a frame now, and the first one too), then every new one: a page
  opened right after a write never starts from the state before it, whose revision its first
  click would send in If-Match (and get 412 for). A frame built early like this carries the
  state of now and the series and evidence as they were: the per-second rings advance only on
  the regular beat. The series and evidence outlive a stopped producer, so reopening the page
  keeps its charts (the seconds no one watched are spread evenly: admin_api.series).
On the wire (the WHATWG HTML "server-sent events" format): `retry: 2000` first, each frame as
`event: state`, `id: <revision>`, `data: <JSON on one line>`, and a `: keep-alive` comment when
no frame went out for KEEPALIVE seconds (proxies close silent connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Iterator

import orjson
from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from admin_api import frame
from admin_api.fleet import FleetView
from admin_api.series import EvidenceHistory, Series
from proxy.control import ControlService

log = logging.getLogger("turnout.admin")

INTERVAL = 1.0
"""Seconds between frames."""
QUEUE = 2
"""Frames a subscriber may be behind before its oldest is dropped: one frame is the whole
state, so a reader one behind (a pause in the browser) loses nothing, and a stalled one holds
no more than this."""
SEND_BUFFER = 256 * 1024
"""The kernel's send buffer for a stream (it grows to 4 MiB by itself on Linux): what a stalled
reader may pin before its frames are dropped, still ample for a frame a second over a WAN."""
FLEET_BUDGET = 0.5
"""Seconds a frame waits for the fleet's view; each etcd call's own bound ([state.etcd]
timeout, 2 s by default) would make a frame late by twice that."""
KEEPALIVE = 15.0
RETRY = b"retry: 2000\n\n"
"""How long a browser's EventSource waits before it reconnects, in milliseconds."""


class Subscriber:
    """One client's bounded queue of encoded frames; None ends the stream."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE)
        self.dropped = 0

    def offer(self, item: bytes | None) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(item)

    async def next(self) -> bytes | None:
        """The next frame (None: the stream ends)."""
        return await self._queue.get()


class Events:
    def __init__(self, service: ControlService, interval: float = INTERVAL) -> None:
        self.service = service
        self.interval = interval
        self.frames = 0
        """Frames built since the application started."""
        self._dropped = 0
        self._subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._last: bytes | None = None
        self._last_revision = -1
        self._early = asyncio.Event()
        """Set: build a frame now (a subscriber came and the last frame's revision is old)."""
        self._closed = False
        self._series = Series()
        self._evidence = EvidenceHistory()
        self._fleet: FleetView | None = None
        """The last fleet view read in time: its prefix and instance name hold without etcd."""

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def dropped(self) -> int:
        """Frames dropped from slow subscribers' queues, those gone included."""
        return self._dropped + sum(s.dropped for s in self._subscribers)

    @property
    def producing(self) -> bool:
        return self._task is not None

    def subscribe(self) -> Subscriber:
        subscriber = Subscriber()
        if self._closed:
            subscriber.offer(None)
            return subscriber
        self._subscribers.add(subscriber)
        if self._task is None:
            self._task = asyncio.create_task(self._produce(), name="turnout-events")
        elif self._last is not None:
            if self._last_revision == self.service.readiness().revision:
                subscriber.offer(self._last)
            else:
                self._early.set()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.discard(subscriber)
            self._dropped += subscriber.dropped
        if not self._subscribers:
            self._stop()

    async def close(self) -> None:
        """End every stream and the producer (the application shuts down)."""
        self._closed = True
        for subscriber in self._subscribers:
            subscriber.offer(None)
        task = self._stop()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _stop(self) -> asyncio.Task[None] | None:
        task, self._task, self._last = self._task, None, None
        if task is not None:
            task.cancel()
        return task

    async def _produce(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        early = False
        while True:
            self._early.clear()
            try:
                revision, encoded = await self._build(advance=not early)
            except Exception:  # one bad frame must not end the stream for everyone
                log.exception("event stream: building a frame failed")
            else:
                self._last, self._last_revision = encoded, revision
                for subscriber in self._subscribers:
                    subscriber.offer(encoded)
            # Fixed rate, and never a burst to catch up after a slow frame; an early frame
            # leaves the beat where it was.
            if not early:
                due = max(due + self.interval, loop.time())
            early = await self._wait(due - loop.time())

    async def _wait(self, delay: float) -> bool:
        """Sleep `delay` seconds or until a frame is wanted early; whether it was."""
        try:
            async with asyncio.timeout(delay):
                await self._early.wait()
        except TimeoutError:
            return False
        return True

    async def _build(self, advance: bool = True) -> tuple[int, bytes]:
        service = self.service
        # Once: the queries below read these reports.
        fleet, _ = await asyncio.gather(self._read_fleet(), service.refresh_counters())
        # No await from here on: every part of the frame is of the same moment and revision.
        state = frame.State(
            time=time.time(),
            routes=await service.routes(fresh=False),
            pools=await service.pools(fresh=False),
            workers=await service.workers(fresh=False),
            rollouts=service.rollouts(),
            pool_rollouts=service.pool_rollouts(),
            history=service.history(frame.HISTORY),
            fleet=fleet,
        )
        if advance:
            self._series.update(time.monotonic(), service.route_counters())
            self._evidence.record(
                state.time, frame.evidence_samples(state.rollouts, state.pool_rollouts)
            )
        self.frames += 1
        data = frame.frame(
            state,
            self._series.view(frame.route_pools(state.routes)),
            self._evidence.view(),
            self.frames,
        )
        revision = state.routes.revision
        return revision, b"event: state\nid: %d\ndata: %b\n\n" % (revision, orjson.dumps(data))

    async def _read_fleet(self) -> FleetView:
        """The fleet now, or, when etcd does not answer within FLEET_BUDGET, etcd "unreachable"
        (file mode reads nothing and never waits)."""
        try:
            async with asyncio.timeout(FLEET_BUDGET):
                self._fleet = FleetView.model_validate(await self.service.fleet())
        except TimeoutError:
            # As GET /v1/fleet when etcd fails: this instance's revision is known without etcd;
            # who else is live and who leads are not.
            revision = self.service.readiness().revision
            late = {"etcd": "unreachable", "revision": revision, "leader": None, "instances": []}
            if self._fleet is None:  # only in fleet mode: file mode answers without waiting
                return FleetView(backend="etcd", instance=None, instances=[], **late)
            return self._fleet.model_copy(update=late)
        return self._fleet


EVENTS = web.AppKey("events", Events)


async def stream(request: web.Request) -> web.StreamResponse:
    events = request.app[EVENTS]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx in front: pass frames on as they come
        }
    )
    await response.prepare(request)
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    subscriber = events.subscribe()
    try:
        await response.write(RETRY)
        while True:
            try:
                async with asyncio.timeout(KEEPALIVE):
                    item = await subscriber.next()
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if item is None:
                break
            await response.write(item)
    except ConnectionError:
        pass  # the client went away: a write to its closed connection says so
    finally:
        events.unsubscribe(subscriber)
    return response


class EventsCollector(Collector):
    """The producer's own counters on /metrics."""

    def __init__(self, events: Events) -> None:
        self.events = events

    def collect(self) -> Iterator[Metric]:
        events = self.events
        frames = CounterMetricFamily(
            "turnout_admin_event_frames",
            "Frames the event stream's producer built (one per second while anyone watches, "
            "however many do).",
        )
        frames.add_metric([], events.frames)
        dropped = CounterMetricFamily(
            "turnout_admin_event_frames_dropped",
            "Frames dropped from the queue of a subscriber that read too slowly.",
        )
        dropped.add_metric([], events.dropped)
        subscribers = GaugeMetricFamily(
            "turnout_admin_event_subscribers", "Clients reading the event stream now."
        )
        subscribers.add_metric([], events.subscribers)
        yield from (frames, dropped, subscribers)
