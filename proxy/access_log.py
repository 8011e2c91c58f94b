"""The access log: one JSON line per request, batched so it stays off the hot path's syscalls.

Each worker appends its own lines (to standard output, or to a file opened with O_APPEND, so the
workers' batches of whole lines never interleave within a line). Lines are collected in memory
and written at most every FLUSH_INTERVAL seconds or once BATCH_BYTES have accumulated, and on
shutdown. Fields:

    time (epoch seconds), id (request id), client, method, path (no query unless configured),
    status, duration (s), upstream (s from sending the request to the backend's response head),
    route, rule, pool, backend, bucket (sticky/weighted bucket), in (request body bytes),
    out (response body bytes), fallback_from (when the pool failed over)

Cookies, headers and query strings (by default) are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import time
from typing import IO, Any

import orjson

from proxy.config import AccessLogConfig

FLUSH_INTERVAL = 0.2
BATCH_BYTES = 64 * 1024


class AccessLog:
    def __init__(self, config: AccessLogConfig) -> None:
        self._lines: list[bytes] = []
        self._size = 0
        self._flusher: asyncio.Task[None] | None = None
        self._open(config)

    def _open(self, config: AccessLogConfig) -> None:
        self.sample = config.sample
        self.query = config.query
        self._out: IO[bytes]
        self._owned = config.file is not None
        if config.file is not None:
            descriptor = os.open(config.file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._out = os.fdopen(descriptor, "ab", buffering=0)
        else:
            self._out = sys.stdout.buffer

    def reopen(self, config: AccessLogConfig) -> None:
        """A reload: the lines so far go to the old file, the next ones to `config`'s. The
        object stays, so requests in flight that hold it never write to a closed file."""
        self.flush()
        if self._owned:
            self._out.close()
        self._open(config)

    def wanted(self) -> bool:
        """Whether this request is in the sample (decided before building its line)."""
        return self.sample >= 1.0 or random.random() < self.sample

    def write(self, fields: dict[str, Any]) -> None:
        line = orjson.dumps(fields) + b"\n"
        self._lines.append(line)
        self._size += len(line)
        if self._size >= BATCH_BYTES:
            self.flush()
        elif self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_INTERVAL)
        self._flusher = None
        self.flush()

    def flush(self) -> None:
        if self._lines:
            data = b"".join(self._lines)
            self._lines.clear()
            self._size = 0
            with contextlib.suppress(OSError, ValueError):
                self._out.write(data)
                self._out.flush()

    def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        self.flush()
        if self._owned:
            self._out.close()


def now() -> float:
    return round(time.time(), 6)
