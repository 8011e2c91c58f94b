"""Child processes of a benchmark run: started pinned, logged to files, always stopped.

Theory of operation. Every process the benchmark starts (backends, proxies, the load
generator) goes through one `Children` owner, which is a context manager: leaving it, by
return, error or Ctrl-C, stops every child it started. Each child gets its own session (so a
terminal's Ctrl-C reaches only the benchmark, which then stops the children in order) and its
own process group (so nginx's workers go with their master). Output goes to a log file per
child, never a pipe that could fill up and stall it; its last lines are what an error shows.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

STOP_GRACE = 5.0


class ChildError(RuntimeError):
    """A child process failed: says which, how, and what it last printed."""


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 12) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no output)"
        kept = text.rstrip().splitlines()[-lines:]
        return "\n".join(f"    {line}" for line in kept) if kept else "    (no output)"

    def failure(self, what: str) -> ChildError:
        status = self.popen.poll()
        state = "is still running" if status is None else f"exited with status {status}"
        return ChildError(
            f"{self.name} {what} ({state}); last lines of its output ({self.log}):\n{self.tail()}"
        )

    def check_alive(self) -> None:
        if not self.alive():
            raise self.failure("died")


class Children:
    """Owns every process a run starts; leaving the `with` block stops them all."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self._running: list[Child] = []

    def __enter__(self) -> Children:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_all()

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        cpus: frozenset[int] | None = None,
        env: dict[str, str] | None = None,
    ) -> Child:
        """Start `argv`, pinned to `cpus` (inherited by everything it forks) when given."""
        log = self.logs / f"{name}.log"
        with log.open("wb") as output:
            try:
                popen = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_pinner(cpus),
                    env=env,
                )
            except OSError as error:
                raise ChildError(f"cannot start {name} ({argv[0]}): {error}") from error
        child = Child(name, popen, log)
        self._running.append(child)
        return child

    def run(
        self,
        name: str,
        argv: Sequence[str],
        cpus: frozenset[int] | None,
        timeout: float,
        tick: Callable[[], None] = lambda: None,
    ) -> tuple[int, str]:
        """Run `argv` to completion, calling `tick` about once a second; (status, output)."""
        child = self.spawn(name, argv, cpus)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    status = child.popen.wait(timeout=1.0)
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() > deadline:
                        raise child.failure(f"did not finish within {timeout:.0f} s") from None
                    tick()
            return status, child.log.read_text(errors="replace")
        finally:
            self.stop(child)

    def stop(self, child: Child) -> None:
        with contextlib.suppress(ValueError):
            self._running.remove(child)
        _stop_group(child.popen)

    def stop_all(self) -> None:
        # Last started first: proxies go before the backends they hold connections to.
        while self._running:
            self.stop(self._running[-1])


def _pinner(cpus: frozenset[int] | None) -> Callable[[], None] | None:
    if cpus is None:
        return None
    wanted = set(cpus)

    def pin() -> None:
        # Runs in the child between fork and exec, so the whole tree it forks is pinned too.
        os.sched_setaffinity(0, wanted)

    return pin


def _stop_group(popen: subprocess.Popen[bytes]) -> None:
    if popen.poll() is not None:
        # The leader is gone, but forked workers may still hold the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(timeout=STOP_GRACE)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(timeout=STOP_GRACE)


def wait_for_port(child: Child, port: int, timeout: float = 15.0) -> None:
    """Return once `child` accepts connections on 127.0.0.1:`port`; ChildError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        if not child.alive():
            raise child.failure(f"exited before listening on port {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            # Someone else answering on a port we picked would pass this check, but then the
            # child fails to bind and dies: look again once it had time to.
            time.sleep(0.05)
            if child.alive():
                return
            raise child.failure(f"exited before listening on port {port} (is the port in use?)")
        if time.monotonic() > deadline:
            raise child.failure(f"did not listen on port {port} within {timeout:.0f} s")
        time.sleep(0.05)


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports that were free a moment ago (the kernel picks them)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise this process's open-files limit (children inherit it); returns the new limit.

    The 1000-connection scenario needs about 2000 descriptors in a proxy (a client and a
    backend side per connection), more than the common default of 1024.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while inside, so cleanup runs either way."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
