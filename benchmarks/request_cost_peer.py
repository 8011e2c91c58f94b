"""The load side of `benchmarks.request_cost`: a backend and a client, outside valgrind.

Run as its own process (exec'd, so callgrind does not follow it). It starts a keep-alive
backend answering every request with a 20-byte body, prints its port, then obeys lines on
stdin: `KIND COUNT PORT` sends COUNT requests of KIND, one at a time, to the proxy on PORT and
prints `done` (or `error ...`). Kinds: plain, sticky (with the cookie), close (a new connection
per request, `Connection: close`).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading

BODY = b"0123456789abcdefghij"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY
)
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: cost\r\nAccept: */*\r\n"
REQUESTS = {
    "plain": REQUEST + b"\r\n",
    "sticky": REQUEST + b"Cookie: turnout-id=user-4711\r\n\r\n",
    "close": REQUEST + b"Connection: close\r\n\r\n",
}


class _Backend(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            self.transport.write(RESPONSE)


def _response(sock: socket.socket, buffer: bytes) -> bytes:
    """Read one response (head + Content-Length body); returns what follows it."""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed before a response: {buffer!r}")
        buffer += data
    head, _, rest = buffer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(f"unexpected response: {head!r}")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(rest) < length:
        rest += sock.recv(65536)
    return rest[length:]


def drive(kind: str, count: int, port: int) -> None:
    request = REQUESTS[kind]
    if kind == "close":
        for _ in range(count):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(request)
                _response(sock, b"")
                while sock.recv(65536):
                    pass
        return
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rest = b""
        for _ in range(count):
            sock.sendall(request)
            rest = _response(sock, rest)


def main() -> None:
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(_Backend, "127.0.0.1", 0))
    threading.Thread(target=loop.run_forever, daemon=True).start()
    print(server.sockets[0].getsockname()[1], flush=True)
    for line in sys.stdin:
        kind, count, port = line.split()
        try:
            drive(kind, int(count), int(port))
        except Exception as error:  # reported to the harness, which fails loudly
            print(f"error {error!r}", flush=True)
        else:
            print("done", flush=True)


if __name__ == "__main__":
    main()
