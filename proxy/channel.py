"""The local channel between the control plane and a worker process: typed messages.

One Unix socketpair per worker, created by the control plane and inherited by the worker alone.
Messages are frozen dataclasses, framed by a 4-byte length and pickled: both ends are the same
program in the same trust domain, and pickle carries the routing spec and settings without a
second schema to keep in step.

    control -> worker   Hello (first), Install, Query, Drain
    worker -> control   Ready (once serving), Ack, Stats (periodic and on Query), Outlier
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from proxy.config import Settings
from proxy.metrics import BackendReport, RouteReport
from proxy.spec_delta import SpecDelta
from router import Health, Spec

_LENGTH = struct.Struct(">I")
MAX_MESSAGE = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Hello:
    """Everything a new worker needs before it may accept a connection."""

    worker_id: int
    settings: Settings
    spec: Spec
    health: Mapping[tuple[str, str], Health]
    revision: int
    readmitted: Mapping[tuple[str, str], float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Install:
    """Route by this revision from now on (and apply these settings, on a reload)."""

    revision: int
    spec: Spec | SpecDelta
    """The whole spec, or what changed since the spec last sent on this channel."""
    health: Mapping[tuple[str, str], Health]
    settings: Settings | None = None
    readmitted: Mapping[tuple[str, str], float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Query:
    """Ask for a Stats message now."""


@dataclass(frozen=True, slots=True)
class Drain:
    """Stop accepting, finish in-flight requests within `grace` seconds, then exit."""

    grace: float


@dataclass(frozen=True, slots=True)
class Ready:
    """The worker accepts connections and routes by `revision`."""

    worker_id: int
    pid: int
    revision: int


@dataclass(frozen=True, slots=True)
class Ack:
    revision: int


@dataclass(frozen=True, slots=True)
class Stats:
    """Counters a worker reports, summed over workers by the control plane."""

    worker_id: int
    revision: int
    requests: int
    connections: int
    inflight: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """(pool, backend) -> requests in flight (open WebSockets included)."""
    routes: Mapping[tuple[str, str], RouteReport] = field(default_factory=dict)
    """(route, pool) -> what its requests did since the worker started."""
    backends: Mapping[tuple[str, str], BackendReport] = field(default_factory=dict)
    """(pool, backend) -> its counters since the worker started."""
    partial: bool = False
    """`routes` and `backends` hold only the entries that changed since the previous Stats on
    this channel (proxy.stats_delta): only on the channel, the control plane merges them."""


@dataclass(frozen=True, slots=True)
class Outlier:
    """Real traffic to a backend failed `count` times in a row (passive health checking)."""

    worker_id: int
    pool: str
    backend: str
    reason: str
    """`5xx` (responses) or `gateway` (connect failures, resets, timeouts)."""
    count: int


Message = Hello | Install | Query | Drain | Ready | Ack | Stats | Outlier


class Channel:
    """Framed messages over a stream; `receive` returns None when the other end has gone."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def over(cls, sock: socket.socket) -> Channel:
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        return cls(reader, writer)

    def send(self, message: Message) -> None:
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self.writer.write(_LENGTH.pack(len(payload)) + payload)

    async def receive(self) -> Message | None:
        try:
            header = await self.reader.readexactly(_LENGTH.size)
            (length,) = _LENGTH.unpack(header)
            if length > MAX_MESSAGE:
                raise ValueError(f"channel message of {length} bytes")
            message: Message = pickle.loads(await self.reader.readexactly(length))
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        return message

    def close(self) -> None:
        self.writer.close()
