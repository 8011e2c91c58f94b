"""After a successful upgrade (WebSocket, h2c...), bytes flow untouched in both directions.

The tunnel keeps the backend's in-flight count raised for as long as it is open, so a drained
backend is not considered idle while it still holds WebSockets, and it applies the same flow
control as an exchange: whichever side cannot keep up pauses reading on the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from proxy.dataplane import Target
    from proxy.downstream import Downstream
    from proxy.upstream import UpstreamConnection


class Tunnel:
    __slots__ = ("closed", "downstream", "idle_timeout", "target", "upstream")

    def __init__(
        self,
        downstream: Downstream,
        upstream: UpstreamConnection,
        target: Target,
        idle_timeout: float,
    ) -> None:
        self.downstream = downstream
        self.upstream = upstream
        self.target = target
        self.idle_timeout = idle_timeout
        self.closed = False
        upstream.exchange = None
        upstream.tunnel = self
        downstream.enter_tunnel(self)
        downstream.progress(idle_timeout)

    def from_client(self, data: bytes) -> None:
        self.upstream.write(data)
        self.downstream.progress(self.idle_timeout)

    def from_upstream(self, data: bytes) -> None:
        self.downstream.write(data)
        self.downstream.progress(self.idle_timeout)

    def client_closed(self) -> None:
        self._end()
        self.upstream.close()

    def upstream_closed(self) -> None:
        self._end()
        self.downstream.close()

    def timed_out(self) -> None:
        self.client_closed()
        self.downstream.close()

    def upstream_full(self) -> None:
        self.downstream.pause_reading(self.downstream.PAUSE_UPSTREAM)

    def upstream_drained(self) -> None:
        self.downstream.resume_reading(self.downstream.PAUSE_UPSTREAM)

    def client_full(self) -> None:
        self.upstream.pause_reading()

    def client_drained(self) -> None:
        self.upstream.resume_reading()

    def _end(self) -> None:
        if not self.closed:
            self.closed = True
            self.target.inflight -= 1
