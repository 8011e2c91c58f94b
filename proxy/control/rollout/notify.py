"""Webhook notifications: a JSON POST on every phase change, that never blocks the rollout.

Theory of operation. `Notifier.send` only encodes the event and queues it; one background task
(started by the first send) delivers the queue in order, one POST at a time, so a receiver sees
a rollout's events in the order they happened. A POST that fails with a connection error or a
5xx is retried after each of `backoff`'s waits in turn (0.5, 1 and 2 s: three retries); a 4xx
or 3xx is the receiver's definite answer and is not retried; a timeout is not retried either,
because the receiver may have acted on the event, and a hanging receiver would otherwise hold
every later event for timeout x attempts. An event that still fails is logged and dropped.

The queue is bounded: when it is full, the oldest event is dropped with a warning (a receiver
that is down for long gets the latest phases, not a backlog of stale ones). Logs name the URL
without its userinfo and query, which may hold secrets (Slack-style URLs carry tokens).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

import aiohttp
import orjson

log = logging.getLogger("turnout.rollout")

TIMEOUT = 5.0
"""Seconds one POST may take, connection included."""
BACKOFF = (0.5, 1.0, 2.0)
"""The waits before each retry: as many retries as waits."""
CAPACITY = 256
"""Events queued at most (the one being delivered not counted)."""
HEADERS = {"Content-Type": "application/json", "User-Agent": "turnout"}


class Notifier:
    """Delivers webhook events in the background, in the order they were sent."""

    def __init__(
        self,
        *,
        timeout: float = TIMEOUT,
        backoff: Sequence[float] = BACKOFF,
        capacity: int = CAPACITY,
    ) -> None:
        self._timeout = timeout
        self._backoff = tuple(backoff)
        self._capacity = capacity
        self._pending: deque[tuple[str, bytes]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def send(self, url: str, event: Mapping[str, object]) -> None:
        """Queue `event` for a JSON POST to `url` and return at once (never awaits the network).

        Called from the event loop (the delivery task runs on it). The event is encoded now, so
        later changes to the mapping do not change what is sent; an event orjson cannot encode
        raises TypeError here, in the caller. After `close`, events are ignored.
        """
        if self._closed:
            log.debug("webhook %s: notifier closed, event ignored", redact(url))
            return
        body = orjson.dumps(event)
        if len(self._pending) >= self._capacity:
            dropped, _ = self._pending.popleft()
            log.warning(
                "webhook queue full: dropped the oldest event (for %s) to queue a new one",
                redact(dropped),
            )
        self._pending.append((url, body))
        self._wakeup.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="turnout-webhooks"
            )

    async def close(self, grace: float = 1.0) -> None:
        """Stop: deliver what is queued for up to `grace` seconds, then give up the rest."""
        self._closed = True
        self._wakeup.set()
        task, self._task = self._task, None
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=grace)
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                # The one being delivered when cancelled is lost too.
                log.warning(
                    "webhooks: %d undelivered event(s) given up at close", len(self._pending) + 1
                )
        self._pending.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            while not self._pending:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            url, body = self._pending.popleft()
            try:
                await self._deliver(url, body)
            except Exception:  # the task must outlive any one event
                log.exception("webhook %s: delivery failed", redact(url))

    async def _deliver(self, url: str, body: bytes) -> None:
        attempts = 0
        while True:
            attempts += 1
            failure, retry = await self._post(url, body)
            if failure is None:
                log.debug("webhook %s: delivered", redact(url))
                return
            if not retry or attempts > len(self._backoff):
                break
            await asyncio.sleep(self._backoff[attempts - 1])
        plural = "s" if attempts > 1 else ""
        log.warning(
            "webhook %s: %s after %d attempt%s; event dropped",
            redact(url),
            failure,
            attempts,
            plural,
        )

    async def _post(self, url: str, body: bytes) -> tuple[str | None, bool]:
        """One attempt: (what went wrong or None, whether another attempt may help)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                url,
                data=body,
                headers=HEADERS,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            ) as response:
                status = response.status
        except TimeoutError:
            return f"timed out after {self._timeout:g} s", False
        except aiohttp.ClientConnectorError as error:
            if isinstance(error.os_error, ConnectionRefusedError):
                return "connection refused", True
            return (
                f"connect failed: {error.os_error.strerror or type(error.os_error).__name__}",
                True,
            )
        # Only the type: these errors' messages may quote the URL.
        except aiohttp.ClientConnectionError as error:
            return type(error).__name__, True
        except aiohttp.ClientError as error:
            return type(error).__name__, False
        if 200 <= status < 300:
            return None, False
        return f"status {status}", status >= 500


def redact(url: str) -> str:
    """`url` for a log: scheme, host, port and path; no userinfo, query or fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(an invalid URL)"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if port is not None:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}{parts.path}"
