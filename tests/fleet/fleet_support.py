"""A real fleet for end-to-end tests: one real etcd, N `turnout run` processes sharing a prefix.

Theory of operation:

- Each `Instance` is one `turnout run` subprocess with its own directory (its TOML file, its log,
  and therefore its last-known-good copy `<stem>.fleet.json`, which lives next to the config),
  its own listen and admin ports from helpers.free_port, and its own name ("a", "b", "c"). The
  directory and ports stay across stop() and start(), so a restarted instance is the same
  instance: same name, same address, same last-known-good file.
- Every instance's config says `[state] backend = "etcd"` with the same endpoints and prefix, so
  the first one to start seeds etcd from its file and the others adopt that state.
- The backends are loopback HTTP servers (threads in the test process) answering with their
  name, so a test sees which pool the proxy sent a request to.
- Admin calls are blocking urllib calls returning an `Answer` (status, headers, decoded JSON):
  the tests run writers in threads when they need concurrency.
- `poll` retries a probe until it says yes or a deadline passes: no bare sleeps in the tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from helpers import TURNOUT, ProxyProcess, config, free_port, toml, wait_until_ready

T = TypeVar("T")

ROUTE = "web"
POOLS = ("blue", "green")


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, headers (names lower-cased) and the body decoded as JSON (or
    the text when it is not JSON)."""

    status: int
    headers: dict[str, str]
    body: Any

    @property
    def etag(self) -> int | None:
        tag = self.headers.get("etag")
        return int(tag.strip('"')) if tag else None

    @property
    def problem(self) -> str | None:
        return self.body.get("type") if isinstance(self.body, dict) else None


def call(
    url: str,
    method: str = "GET",
    body: Any = None,
    *,
    if_match: int | None = None,
    timeout: float = 15.0,
) -> Answer:
    """One blocking HTTP call; HTTP errors are answers, not exceptions."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if if_match is not None:
        headers["If-Match"] = f'"{if_match}"'
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status, head = response.read(), response.status, response.headers
    except urllib.error.HTTPError as error:
        raw, status, head = error.read(), error.code, error.headers
    try:
        decoded: Any = json.loads(raw) if raw else None
    except ValueError:
        decoded = raw.decode("utf-8", "replace")
    return Answer(status, {k.lower(): v for k, v in head.items()}, decoded)


def poll(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.02) -> T:
    """`probe()` until it returns something other than None/False, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        with contextlib.suppress(OSError):
            last = probe()
            if last is not None and last is not False:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")
        time.sleep(interval)


@dataclass
class LoopbackBackend:
    """An HTTP server on loopback answering every GET with its name (a thread of this process)."""

    name: str
    server: ThreadingHTTPServer | None = None
    status: int = 200
    """What it answers; a test sets 500 to make its pool fail."""

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> LoopbackBackend:
        name = self.name.encode()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.send_response(backend.status)
                self.send_header("Content-Length", str(len(name)))
                self.end_headers()
                self.wfile.write(name)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@dataclass
class Instance:
    """One fleet member: `turnout run` on its own ports, in its own directory."""

    name: str
    directory: Path
    data: dict[str, Any]
    port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    proxy: ProxyProcess | None = None
    worker_pids: list[int] = field(default_factory=list)

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "turnout.toml"

    def start(self) -> ProxyProcess:
        """Start the process (does not wait: see `ready`)."""
        assert self.proxy is None or self.proxy.process.poll() is not None, "already running"
        self.write_config()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TURNOUT_")}
        log_path = self.directory / "turnout.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [TURNOUT, "--log-level", "info", "run", "--config", str(self.config_path)],
                env=env,
                stderr=log,
            )
        self.proxy = ProxyProcess(process, self.port, self.admin_port, self.config_path, log_path)
        return self.proxy

    def write_config(self) -> None:
        """`data` with this instance's ports, as its configuration file."""
        data = {
            **self.data,
            "listen": {"host": "127.0.0.1", "port": self.port},
            "admin": {"port": self.admin_port},
            "process": {"workers": 1},
        }
        self.config_path.write_text(toml(data))

    def ready(self, timeout: float = 30.0) -> None:
        assert self.proxy is not None
        wait_until_ready(self.proxy, timeout)
        with contextlib.suppress(Exception):
            self.worker_pids = self.proxy.worker_pids()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proxy is not None:
            self.proxy.stop(sig, timeout=15)

    def kill(self) -> None:
        """SIGKILL the control plane (no lease revoke: its membership lives until the TTL), and
        then its workers, which have no parent left to stop them."""
        assert self.proxy is not None
        self.proxy.process.kill()
        self.proxy.process.wait(10)
        for pid in self.worker_pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.worker_pids = []

    def log(self) -> str:
        path = self.directory / "turnout.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # Admin API and traffic.

    def get(self, path: str) -> Answer:
        return call(self.admin_url + path)

    def write(self, method: str, path: str, body: Any, if_match: int | None = None) -> Answer:
        return call(self.admin_url + path, method, body, if_match=if_match)

    def set_weights(
        self, weights: dict[str, int], *, wait_local: bool = False, if_match: int | None = None
    ) -> Answer:
        query = "?wait=local" if wait_local else ""
        path = f"/v1/routes/{ROUTE}/weights{query}"
        return self.write("PUT", path, {"weights": weights}, if_match)

    def route(self) -> Answer:
        return self.get(f"/v1/routes/{ROUTE}")

    def revision(self) -> int:
        answer = self.route()
        assert answer.status == 200, answer
        return int(answer.body["revision"])

    def traffic(self, count: int = 10) -> list[str]:
        """`count` requests through the proxy port: the body of each (a pool's name)."""
        bodies = []
        for _ in range(count):
            answer = call(f"http://127.0.0.1:{self.port}/", timeout=5)
            assert answer.status == 200, (self.name, answer)
            bodies.append(str(answer.body))
        return bodies


def fleet_data(
    endpoints: Sequence[str],
    prefix: str,
    instance: str,
    backends: dict[str, str],
    **etcd: Any,
) -> dict[str, Any]:
    """One instance's configuration: a weighted route over one backend per pool, fleet mode."""
    data: dict[str, Any] = config(
        {pool: [url] for pool, url in backends.items()},
        {ROUTE: {"weights": dict.fromkeys(backends, 1)}},
    )
    settings = {"endpoints": list(endpoints), "prefix": prefix, "instance": instance, **etcd}
    data["state"] = {"backend": "etcd", "etcd": settings}
    return data


@dataclass
class Fleet:
    instances: list[Instance]
    backends: list[LoopbackBackend]
    prefix: str

    def __getitem__(self, name: str) -> Instance:
        return next(i for i in self.instances if i.name == name)

    def views(self) -> list[Answer]:
        return [instance.route() for instance in self.instances]

    def converged(self, revision: int) -> list[Answer] | None:
        """Every instance's route view when all of them show `revision`, else None."""
        views = self.views()
        return views if all(v.body.get("revision") == revision for v in views) else None


@contextlib.contextmanager
def running_fleet(
    endpoints: Sequence[str],
    directory: Path,
    prefix: str,
    names: Sequence[str] = ("a", "b", "c"),
    sections: dict[str, Any] | None = None,
    **etcd: Any,
) -> Iterator[Fleet]:
    """Start the backends and every instance at once (they race to seed etcd), wait until all
    are ready; stop everything on the way out. `etcd`: more `[state.etcd]` options."""
    backends = [LoopbackBackend(pool).start() for pool in POOLS]
    urls = {backend.name: backend.url for backend in backends}
    instances = []
    for name in names:
        home = directory / name
        home.mkdir(parents=True, exist_ok=True)
        data = fleet_data(endpoints, prefix, name, urls, **etcd)
        data.update(sections or {})  # more sections of the configuration, e.g. [health]
        instances.append(Instance(name, home, data))
    fleet = Fleet(instances, backends, prefix)
    try:
        for instance in instances:
            instance.start()
        for instance in instances:
            instance.ready()
        yield fleet
    finally:
        for instance in instances:
            instance.stop()
        for backend in backends:
            backend.stop()
