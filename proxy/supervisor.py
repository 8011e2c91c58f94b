"""The control plane's hold on its worker processes: start, publish, restart, drain.

Theory of operation. Each worker *slot* owns one listening socket, bound with SO_REUSEPORT to
the proxy's address and held by the control plane for the life of the instance; the kernel
spreads new connections across the slots' sockets. A worker process borrows its slot's socket.
If the worker dies, the socket stays open in the control plane, so connections the kernel has
already queued on it wait for the replacement instead of being reset: a crash loses only the
requests that were in flight in that process.

`publish` sends a new revision to every live worker and returns when all have acknowledged it,
so an admin write that returns has taken effect everywhere (read-your-writes). A worker that
does not acknowledge within `ack_timeout` is killed and restarted; a (re)started worker gets
the current revision in its Hello before it accepts anything -- or the one being published, if
it is newer: a publish in flight has already passed over a worker that was still being spawned.

Start-up waits until every worker serves the revision that is current *by then*: an admin write
may land while the workers start (the admin API answers first). A drain that begins during
start-up ends it: workers that do not serve yet are terminated rather than waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from proxy.channel import Ack, Channel, Drain, Hello, Install, Outlier, Query, Ready, Stats
from proxy.config import Settings
from proxy.ports import refuse_if_served
from proxy.spec_delta import SpecDelta, spec_delta
from proxy.stats_delta import merge
from proxy.telemetry import Telemetry
from router import Snapshot, Spec

log = logging.getLogger("turnout.supervisor")

RESTART_BACKOFF_MAX = 5.0
STARTUP_TIMEOUT = 30.0
STABLE_AFTER = 10.0
"""A worker that lived this long resets the restart backoff: it was not crash-looping."""


@dataclass(eq=False)
class Slot:
    """One worker position: its socket is permanent, its process is replaceable."""

    worker_id: int
    sock: socket.socket
    process: asyncio.subprocess.Process | None = None
    channel: Channel | None = None
    pid: int = 0
    serving: bool = False
    acked: int = -1
    started_at: float = 0.0
    stats: Stats | None = None
    crashes: int = 0
    backoff: float = 0.1
    stopping: bool = False
    acks: dict[int, asyncio.Event] = field(default_factory=dict)
    sent: Spec | None = None
    """The spec last sent on this process's channel: the next Install is a delta from it."""
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def live(self) -> bool:
        return self.process is not None and self.process.returncode is None


def listening_sockets(host: str, port: int, count: int, backlog: int) -> list[socket.socket]:
    """`count` sockets on one address, spread over by the kernel (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]  # port 0: the others take the one the first got
            sock.listen(backlog)
            sock.setblocking(False)
            sockets.append(sock)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        current: Callable[[], tuple[Snapshot, Settings]],
        telemetry: Telemetry,
        log_level: str = "info",
        on_outlier: Callable[[str, str, str, int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.current = current
        self.telemetry = telemetry
        self.on_outlier = on_outlier
        self.log_level = log_level
        self.slots: list[Slot] = []
        self.crashes = 0
        self.draining = False
        self._stats_arrived = asyncio.Event()
        self._publishing: Snapshot | None = None

    @property
    def port(self) -> int:
        port: int = self.slots[0].sock.getsockname()[1]
        return port

    async def start(self) -> None:
        """Bind, start every worker, and wait until all serve the current revision (whatever it
        is by then). Returns early, not serving, when a drain began meanwhile. Raises PortInUse
        when another process listens on the address."""
        if self.draining:
            return
        listen = self.settings.listen
        refuse_if_served(listen.host, listen.port)
        sockets = listening_sockets(
            listen.host, listen.port, self.settings.process.worker_count(), listen.backlog
        )
        self.slots = [Slot(worker_id=i, sock=sock) for i, sock in enumerate(sockets)]
        for slot in self.slots:
            if self.draining:
                return
            await self._spawn(slot)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.draining and not self.all_serving(self.current()[0].revision):
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start in time; see the log above")
            await asyncio.sleep(0.02)

    def all_serving(self, revision: int) -> bool:
        """Every worker is up and routes by `revision` (what /ready reports)."""
        return all(slot.live and slot.serving and slot.acked == revision for slot in self.slots)

    async def publish(self, snapshot: Snapshot, settings: Settings | None = None) -> None:
        """Send a revision to every live worker; return once each has applied it."""
        if settings is not None:
            self.settings = settings
        health, readmitted = dict(snapshot.health), dict(snapshot.readmitted)
        deltas: dict[int, SpecDelta] = {}
        waiting: list[tuple[Slot, asyncio.Event, float]] = []
        ack_timeout = self.settings.process.ack_timeout
        self._publishing = snapshot
        try:
            for slot in self.slots:
                if slot.live and slot.channel is not None:
                    event = slot.acks.setdefault(snapshot.revision, asyncio.Event())
                    sent = slot.sent
                    spec: Spec | SpecDelta = snapshot.spec
                    if sent is not None:
                        # Workers mostly hold the same spec: one delta for all of them.
                        if id(sent) not in deltas:
                            deltas[id(sent)] = spec_delta(sent, snapshot.spec)
                        spec = deltas[id(sent)]
                    message = Install(snapshot.revision, spec, health, settings, readmitted)
                    slot.channel.send(message)
                    slot.sent = snapshot.spec
                    waiting.append((slot, event, self._ack_timeout(slot, ack_timeout)))
            results = await asyncio.gather(
                *(asyncio.wait_for(event.wait(), timeout) for _, event, timeout in waiting),
                return_exceptions=True,
            )
        finally:
            if self._publishing is snapshot:
                self._publishing = None
        for (slot, _, timeout), result in zip(waiting, results, strict=True):
            slot.acks.pop(snapshot.revision, None)
            if isinstance(result, BaseException):
                log.error(
                    "worker %d (pid %d) did not apply revision %d within %g s; restarting it",
                    slot.worker_id,
                    slot.pid,
                    snapshot.revision,
                    timeout,
                )
                self._kill(slot)

    @staticmethod
    def _ack_timeout(slot: Slot, ack_timeout: float) -> float:
        """A worker still starting acknowledges only once it serves: it has until its start-up
        deadline, not `ack_timeout`, before it counts as stuck."""
        if slot.serving:
            return ack_timeout
        return max(ack_timeout, slot.started_at + STARTUP_TIMEOUT - time.monotonic())

    async def query_stats(self, wait: float = 1.0) -> list[Stats]:
        """Fresh counters from every live worker (the last report of one that is slow)."""
        before = {slot.worker_id: slot.stats for slot in self.slots}
        for slot in self.slots:
            if slot.live and slot.channel is not None:
                slot.channel.send(Query())
        deadline = time.monotonic() + wait
        while not all(
            slot.stats is not before[slot.worker_id] or not slot.live for slot in self.slots
        ):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._stats_arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stats_arrived.wait(), remaining)
        return [slot.stats for slot in self.slots if slot.stats is not None and slot.live]

    async def drain(self, grace: float) -> None:
        """Tell every worker to finish in-flight requests within `grace`; kill stragglers."""
        self.draining = True
        for slot in self.slots:
            slot.stopping = True
            if slot.live and slot.channel is not None:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    slot.channel.send(Drain(grace))
            if slot.live and not slot.serving and slot.process is not None:
                # Still starting: it has no connection to finish, and waiting for it to come
                # up only to drain it would make a stop during start-up wait out the start.
                # (If it just began serving, its SIGTERM handler drains it gracefully.)
                with contextlib.suppress(ProcessLookupError):
                    slot.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace + 2.0
        for slot in self.slots:
            process = slot.process
            if process is None:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), max(0.0, deadline - time.monotonic()))
            if process.returncode is None:
                log.error(
                    "worker %d (pid %d) still running after drain; killing",
                    slot.worker_id,
                    slot.pid,
                )
                process.kill()
                await process.wait()
        for slot in self.slots:
            for task in slot.tasks:
                task.cancel()
            slot.sock.close()

    def kill_all(self) -> None:
        """Second signal: no more waiting."""
        for slot in self.slots:
            slot.stopping = True
            self._kill(slot)

    # Internals

    async def _spawn(self, slot: Slot) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "proxy.worker",
                "--listen-fd",
                str(slot.sock.fileno()),
                "--channel-fd",
                str(child.fileno()),
                "--log-level",
                self.log_level,
                pass_fds=(slot.sock.fileno(), child.fileno()),
            )
        finally:
            child.close()
        channel = await Channel.over(parent)
        if slot.stopping:  # a drain began while it was being spawned: it never serves
            process.kill()
            await process.wait()
            channel.close()
            return
        slot.process, slot.channel, slot.pid = process, channel, process.pid
        slot.serving, slot.acked, slot.stats, slot.sent = False, -1, None, None
        slot.started_at = time.monotonic()
        snapshot, settings = self.current()
        publishing = self._publishing
        # `is not`: in fleet mode a health change is published at the same revision.
        if (
            publishing is not None
            and publishing is not snapshot
            and publishing.revision >= snapshot.revision
        ):
            snapshot = publishing
        channel.send(
            Hello(
                slot.worker_id,
                settings,
                snapshot.spec,
                dict(snapshot.health),
                snapshot.revision,
                dict(snapshot.readmitted),
            )
        )
        slot.sent = snapshot.spec
        self._task(slot, self._read(slot, channel))
        self._task(slot, self._watch(slot, process))

    def _task(self, slot: Slot, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        slot.tasks.add(task)
        task.add_done_callback(slot.tasks.discard)

    async def _read(self, slot: Slot, channel: Channel) -> None:
        whole: Stats | None = None
        while (message := await channel.receive()) is not None:
            if isinstance(message, Ready):
                slot.serving = True
                slot.acked = max(slot.acked, message.revision)
                log.info(
                    "worker %d serving (pid %d, revision %d)",
                    slot.worker_id,
                    slot.pid,
                    message.revision,
                )
            elif isinstance(message, Ack):
                slot.acked = max(slot.acked, message.revision)
                event = slot.acks.get(message.revision)
                if event is not None:
                    event.set()
            elif isinstance(message, Stats):
                # Only what moved since this process's previous Stats: rebuilt whole, against
                # the previous one from this channel (a new process: a new channel, from none).
                whole = merge(whole, message)
                slot.stats = whole
                self.telemetry.update(whole)
                self._stats_arrived.set()
            elif isinstance(message, Outlier) and self.on_outlier is not None:
                self.on_outlier(message.pool, message.backend, message.reason, message.count)

    async def _watch(self, slot: Slot, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        if slot.process is not process:
            return
        slot.serving = False
        # A publish waiting for this process stops waiting: its replacement starts with the
        # newest revision (see _spawn).
        for event in slot.acks.values():
            event.set()
        self.telemetry.retire(slot.worker_id)
        if slot.channel is not None:
            slot.channel.close()
        if slot.stopping:
            return
        self.crashes += 1
        slot.crashes += 1
        lived = time.monotonic() - slot.started_at
        if lived > STABLE_AFTER:
            slot.backoff = 0.1
        how = f"signal {-code}" if code < 0 else f"status {code}"
        log.error(
            "worker %d (pid %d) exited with %s after %.1f s; restarting in %.1f s (crash %d)",
            slot.worker_id,
            slot.pid,
            how,
            lived,
            slot.backoff,
            self.crashes,
        )
        await asyncio.sleep(slot.backoff)
        slot.backoff = min(RESTART_BACKOFF_MAX, slot.backoff * 2)
        if not slot.stopping:
            await self._spawn(slot)

    def _kill(self, slot: Slot) -> None:
        if slot.live and slot.process is not None:
            with contextlib.suppress(ProcessLookupError):
                slot.process.send_signal(signal.SIGKILL)
