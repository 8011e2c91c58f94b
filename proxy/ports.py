"""Refusing an address another process already serves.

The data-plane listener binds with SO_REUSEPORT so that this instance's workers share one
address; the same option would let a second turnout (or anything else of the same user bound
with it) silently join the group and take a share of the connections. So before binding,
the address is probed with a socket that does *not* set SO_REUSEPORT: the kernel refuses it
while any socket listens there, and allows it over TIME_WAIT connections (SO_REUSEADDR), so a
restart right after the previous instance exited still binds. nginx and HAProxy refuse the
same way.
"""

from __future__ import annotations

import errno
import socket


class PortInUse(RuntimeError):
    """Another process listens on an address this instance needs."""

    def __init__(self, what: str, host: str, port: int) -> None:
        prefix = f"{what}: " if what else ""
        super().__init__(f"{prefix}{host}:{port} is already in use (another process is listening)")
        self.what = what
        self.host = host
        self.port = port


def refuse_if_served(host: str, port: int, what: str = "") -> None:
    """Raise PortInUse when something listens on host:port; other bind errors propagate."""
    if port == 0:
        return  # the kernel picks a free port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUse(what, host, port) from None
            raise


def is_in_use(error: OSError) -> bool:
    return error.errno == errno.EADDRINUSE
