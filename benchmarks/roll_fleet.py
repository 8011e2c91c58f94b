"""The backend programs of one pool rollout scenario: each backend a process of
benchmarks.versioned_backend, started here in its first version and replaced by the hook
(benchmarks.replace_hook), whose argv is made here too.

Every process serving a backend writes its pid into the fleet's directory once it listens,
whoever started it (this fleet or the hook); `close` stops each by that pidfile, so a program
the hook started is stopped as surely as one started here. Their logs are in the directory as
well: BACKEND.log, one line per start and stop, from every version in turn.
"""

from __future__ import annotations

import contextlib
import http.client
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.replace_hook import Program, launch, running, stop

OLD, NEW = "v1", "v2"
"""The version every backend starts in, and the one an in-place rollout brings."""


@dataclass
class Fleet:
    directory: Path
    slow_seconds: float = 2.0
    """How late every version answers the slow path."""
    ports: dict[str, int] = field(default_factory=dict)
    _children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, name: str, port: int, version: str = OLD, error_rate: float = 0.0) -> str:
        """Start `version` as backend `name` on `port` and wait until it listens; its URL."""
        program = Program(version, error_rate, slow_seconds=self.slow_seconds)
        self._children.append(launch(self.directory, name, port, program))
        self.ports[name] = port
        return f"http://127.0.0.1:{port}"

    def version(self, name: str) -> str:
        """What the backend's program answers, asked directly (not through the proxy)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.ports[name], timeout=5)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().read().decode()
        finally:
            connection.close()

    def versions(self) -> dict[str, str]:
        return {name: self.version(name) for name in self.ports}

    def pid(self, name: str) -> int | None:
        return running(self.directory, name)

    def log(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")

    def hook(self, *options: str) -> list[str]:
        """The replace hook's argv: NEW replaces, OLD reverts; `options` are the hook's."""
        argv = [sys.executable, "-m", "benchmarks.replace_hook", str(self.directory)]
        slow = ("--slow-seconds", str(self.slow_seconds))
        return [*argv, "--old", OLD, "--new", NEW, *slow, *options]

    def close(self) -> None:
        for name in self.ports:
            stop(self.directory, name, timeout=5)
        for child in self._children:  # reaped: the ones started here are our children
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(5)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
