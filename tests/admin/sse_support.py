"""Reading GET /v1/events/stream as a browser's fetch() reader would: real HTTP, parsed as the
WHATWG event-stream format (fields, a blank line ends an event, `:` starts a comment)."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import aiohttp

PATH = "/v1/events/stream"


@dataclass
class Event:
    type: str
    id: str | None
    data: str
    received: float
    """time.monotonic() when its blank line arrived."""

    @property
    def frame(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.data)
        return parsed


@dataclass
class Stream:
    """One subscriber: an open response and what was parsed of it so far."""

    response: aiohttp.ClientResponse
    retry: int | None = None
    comments: list[str] = field(default_factory=list)
    _buffer: bytes = b""
    _pending: list[Event] = field(default_factory=list)

    async def event(self, timeout: float = 5.0) -> Event:
        """The next event with data (keep-alive comments and `retry` are noted, not returned)."""
        async with asyncio.timeout(timeout):
            while not self._pending:
                chunk = await self.response.content.readany()
                if not chunk:
                    raise EOFError("the stream ended")
                self._parse(chunk)
        return self._pending.pop(0)

    async def drain(self, timeout: float) -> None:
        """Read events until the stream ends (EOFError) or fails."""
        async with asyncio.timeout(timeout):
            while True:
                await self.event(timeout)

    async def frame(self, timeout: float = 5.0) -> dict[str, Any]:
        event = await self.event(timeout)
        assert event.type == "state", event
        return event.frame

    async def frames_until(self, condition: Any, timeout: float) -> dict[str, Any]:
        """The first frame for which `condition(frame)` holds, within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.frame(max(0.01, deadline - time.monotonic()))
            if condition(frame):
                return frame

    def _parse(self, chunk: bytes) -> None:
        self._buffer += chunk
        *blocks, self._buffer = re.split(rb"\r\n\r\n|\n\n|\r\r", self._buffer)
        for block in blocks:
            kind, ident, data = "message", None, []
            for line in block.decode().splitlines():
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    kind = value
                elif name == "id":
                    ident = value
                elif name == "data":
                    data.append(value)
                elif name == "retry":
                    self.retry = int(value)
            if data:
                self._pending.append(Event(kind, ident, "\n".join(data), time.monotonic()))


class Subscribers:
    """Streams opened on one admin API, all closed on exit."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.token = token
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        self.open: list[Stream] = []

    async def __aenter__(self) -> Subscribers:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for stream in self.open:
            stream.response.close()
        await self.session.close()

    async def subscribe(self, token: str | None = None) -> Stream:
        token = token or self.token
        headers = {"Accept": "text/event-stream"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = await self.session.get(self.url + PATH, headers=headers)
        stream = Stream(response)
        self.open.append(stream)
        return stream

    async def close(self, stream: Stream) -> None:
        stream.response.close()
        self.open.remove(stream)


def metric(url: str, name: str, token: str | None = None) -> float:
    """One unlabelled sample of GET /metrics."""
    request = urllib.request.Request(url + "/metrics")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")
