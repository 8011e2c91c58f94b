"""The backends every target sends to: one nginx per backend, or the built-in one.

One process per backend, so each has its own request counter: `/__status` (nginx's
stub_status, or the built-in backend's imitation of it) is read before and after a run, and
the differences give the split the proxy really made.
"""

from __future__ import annotations

import http.client
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchmarks import nginx
from benchmarks.processes import Child, ChildError, Children, free_ports, wait_for_port
from benchmarks.scenarios import (
    LARGE_BYTES,
    LARGE_PATH,
    SMALL_PATH,
    STATUS_PATH,
    UPLOAD_BYTES,
    UPLOAD_PATH,
    small_body,
)

SINK_PATH = "/__sink"
UPLOAD_ANSWER = b"ok\n"

BackendKind = Literal["nginx", "builtin"]


@dataclass(frozen=True, slots=True)
class BackendServer:
    pool: str
    name: str
    port: int
    child: Child

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_backends(
    children: Children,
    workdir: Path,
    pools: dict[str, int],
    kind: BackendKind,
    nginx_path: str | None,
    cpus: frozenset[int] | None,
) -> list[BackendServer]:
    """Start `pools[pool]` backends for every pool and wait until each one listens."""
    names = [(pool, f"{pool}-{i + 1}") for pool, count in pools.items() for i in range(count)]
    ports = free_ports(len(names))
    if kind == "nginx":
        assert nginx_path is not None
        www = workdir / "www"
        www.mkdir(parents=True, exist_ok=True)
        (www / LARGE_PATH.lstrip("/")).write_bytes(bytes(range(256)) * (LARGE_BYTES // 256))
        (www / UPLOAD_PATH.lstrip("/")).write_bytes(UPLOAD_ANSWER)
    servers = []
    for (pool, name), port in zip(names, ports, strict=True):
        if kind == "nginx":
            assert nginx_path is not None
            http = _nginx_backend(name, port, workdir / "www")
            child = nginx.start(children, nginx_path, f"backend-{name}", workdir / name, http, cpus)
        else:
            argv = [sys.executable, "-m", "benchmarks.backend", "--name", name]
            child = children.spawn(f"backend-{name}", [*argv, "--port", str(port)], cpus)
        servers.append(BackendServer(pool, name, port, child))
    for server in servers:
        wait_for_port(server.child, server.port)
    return servers


def _nginx_backend(name: str, port: int, www: Path) -> str:
    return f"""    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = {SMALL_PATH} {{
            default_type text/plain;
            return 200 "{small_body(name).rstrip()}\\n";
        }}
        location = {LARGE_PATH} {{
            root {www};
            default_type application/octet-stream;
        }}
        location = {UPLOAD_PATH} {{
            # An upload endpoint reads the whole body before it answers, and so must this
            # one: `return` would answer at once and discard the body afterwards, and a
            # proxy still streaming the body must then close the client's connection.
            # mirror_request_body makes nginx read the body first (into memory: the buffer
            # is larger than the body); then the static handler refuses the POST with 405,
            # which error_page turns into the 200 answer.
            client_max_body_size 0;
            client_body_buffer_size {2 * UPLOAD_BYTES};
            mirror {SINK_PATH};
            mirror_request_body on;
            root {www};
            error_page 405 = @uploaded;
        }}
        location = {SINK_PATH} {{
            internal;
            return 204;
        }}
        location @uploaded {{
            default_type text/plain;
            return 200 "{UPLOAD_ANSWER.decode().rstrip()}\\n";
        }}
        location = {STATUS_PATH} {{
            stub_status;
        }}
    }}"""


_REQUESTS = re.compile(r"server accepts handled requests\s+\d+\s+\d+\s+(\d+)")


def request_count(port: int) -> int:
    """The backend's count of requests so far, including this status request itself."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", STATUS_PATH)
        response = connection.getresponse()
        text = response.read().decode("ascii", "replace")
    finally:
        connection.close()
    match = _REQUESTS.search(text)
    if response.status != 200 or match is None:
        raise http.client.HTTPException(f"unexpected answer {response.status}: {text!r}")
    return int(match.group(1))


def request_counts(backends: list[BackendServer]) -> dict[str, int]:
    counts = {}
    for backend in backends:
        try:
            counts[backend.name] = request_count(backend.port)
        except (OSError, http.client.HTTPException) as error:
            backend.child.check_alive()
            raise ChildError(
                f"backend {backend.name}: cannot read {STATUS_PATH}: {error}"
            ) from error
    return counts
