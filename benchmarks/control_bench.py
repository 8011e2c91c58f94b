"""The control plane as the configuration grows: `python -m benchmarks control [--backends ...]`.

For each size N (a multiple of 10): N loopback backends that answer at once (the built-in
backend, a few processes each listening on up to `PORTS_PER_SERVER` ports), grouped 5 to a pool
and 2 pools to a route (N = 2,000 gives 400 pools and 200 routes), and turnout with one worker,
probing every backend once a second, with no client traffic at all. Measured, in this order:

- start to ready: from starting turnout until its admin API answers `GET /ready` with 200;
- after `WARMUP` seconds, the control-plane process's own CPU time over the window (from
  /proc/PID/task/*/schedstat, else /proc/PID/stat: the process turnout starts as, which runs
  the health checker; its worker processes are not counted), as % of one core and as µs per probe, probes being the N probes a
  second the configuration asks for (the backends' own count of the probes they answered is
  shown beside it: fewer means the prober falls behind);
- an admin write: `PUT /v1/routes/{route}/weights` on one route, `WRITES` times in a row,
  alternating two settings (each returns once the worker has the new snapshot);
- `GET /metrics`: the median time of `METRICS_READS` reads, and the size of the answer.

Everything runs on loopback; every wait is bounded in time, every loop in count; every
process started here is stopped before the next size starts, and whatever way this ends.
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.measure import process_cpu_seconds
from benchmarks.processes import Child, Children, free_ports, raise_fd_limit, wait_for_port
from benchmarks.scenarios import STATUS_PATH
from benchmarks.tools import turnout_command

DEFAULT_SIZES = (100, 1000, 5000)
MAX_BACKENDS = 20_000
PER_POOL = 5
POOLS_PER_ROUTE = 2
PORTS_PER_SERVER = 2000
"""Backends served by one backend process (one listening socket each)."""
INTERVAL = 1.0
"""Seconds between two probes of one backend."""
WARMUP = 3.0
"""Seconds between ready and the CPU window, so probing is in its steady state."""
WRITES = 20
METRICS_READS = 5
READY_TIMEOUT = 180.0
HTTP_TIMEOUT = 60.0
"""One admin request; a loaded control plane may answer slowly, but it must answer."""
PHASE_BUDGET = 300.0
"""All the writes, or all the /metrics reads, of one size."""
FD_HEADROOM = 1024


class ControlError(RuntimeError):
    """The benchmark cannot run or finish as asked: says what and where."""


@dataclass(frozen=True, slots=True)
class ControlFigures:
    backends: int
    pools: int
    routes: int
    ready_s: float
    """From starting turnout to its first 200 on GET /ready."""
    window_s: float
    cpu_percent: float
    """Of one core, the control-plane process alone, over the window."""
    cpu_us_per_probe: float
    """CPU over the window divided by backends x seconds (the probes asked for)."""
    probes_per_s: float
    """Probes the backends answered, a second, over the window."""
    write_ms_median: float
    write_ms_max: float
    metrics_ms_median: float
    metrics_bytes: int

    @property
    def probes_asked_per_s(self) -> float:
        return self.backends / INTERVAL


def layout(backends: int) -> tuple[int, int]:
    """(pools, routes) for `backends`: 5 backends a pool, 2 pools a route (sizes of 10s)."""
    pools = backends // PER_POOL
    return pools, pools // POOLS_PER_ROUTE


def run(
    sizes: Sequence[int], duration: float, say: Callable[[str], None] = lambda text: None
) -> list[ControlFigures]:
    """Measure each size in turn, alone on the machine as far as this benchmark goes."""
    largest = max(sizes)
    limit = raise_fd_limit(max(65536, 2 * largest + FD_HEADROOM))
    if limit < 2 * largest + FD_HEADROOM:
        raise ControlError(
            f"the open-files limit is {limit}: {largest} backends need about "
            f"{2 * largest + FD_HEADROOM} (a listening socket and a probe connection each); "
            "raise `ulimit -Hn` or ask for fewer --backends"
        )
    figures = []
    for size in sizes:
        pools, routes = layout(size)
        say(f"{size:,} backends ({pools:,} pools, {routes:,} routes): starting")
        with tempfile.TemporaryDirectory(prefix="turnout-control-") as directory:
            workdir = Path(directory)
            with Children(workdir) as children:
                try:
                    figures.append(_measure(children, workdir, size, duration, say))
                except (ControlError, OSError, http.client.HTTPException) as error:
                    raise ControlError(f"{size} backends: {error}") from error
    return figures


def _measure(
    children: Children, workdir: Path, size: int, duration: float, say: Callable[[str], None]
) -> ControlFigures:
    ports = free_ports(size + 2)
    proxy_port, admin_port, backend_ports = ports[0], ports[1], ports[2:]
    servers = _start_backends(children, backend_ports)
    config = workdir / "turnout.toml"
    config.write_text(turnout_config(proxy_port, admin_port, backend_ports))
    argv = [*turnout_command(), "--log-level", "warning", "run", "--config", str(config)]
    started = time.monotonic()
    turnout = children.spawn("turnout", argv)
    _wait_ready(turnout, admin_port)
    ready_s = time.monotonic() - started
    say(f"  ready in {ready_s:.2f} s; {WARMUP:g} s of probing, then {duration:g} s measured")
    time.sleep(WARMUP)
    counted = [port for port, _ in servers]
    before_cpu, before_probes = process_cpu_seconds(turnout.pid), _probes(counted)
    window_start = time.monotonic()
    time.sleep(duration)
    cpu = process_cpu_seconds(turnout.pid) - before_cpu
    window = time.monotonic() - window_start
    probes = _probes(counted) - before_probes - len(counted)  # the later status reads
    turnout.check_alive()
    say(f"  {WRITES} admin writes, {METRICS_READS} reads of /metrics")
    writes = _writes(admin_port)
    metrics_times, metrics_bytes = _metrics(admin_port)
    turnout.check_alive()
    for _, child in servers:
        child.check_alive()
    return ControlFigures(
        backends=size,
        pools=layout(size)[0],
        routes=layout(size)[1],
        ready_s=ready_s,
        window_s=window,
        cpu_percent=100 * cpu / window,
        cpu_us_per_probe=1e6 * cpu / (window * size / INTERVAL),
        probes_per_s=max(0, probes) / window,
        write_ms_median=1000 * statistics.median(writes),
        write_ms_max=1000 * max(writes),
        metrics_ms_median=1000 * statistics.median(metrics_times),
        metrics_bytes=metrics_bytes,
    )


def turnout_config(port: int, admin: int, backends: Sequence[int]) -> str:
    """Pools `p0001`... of 5 backends, routes `r0001`... over 2 pools each, health every 1 s."""
    pools, routes = layout(len(backends))
    lines = [
        "# Generated by turnout's control-plane benchmark.",
        "[listen]",
        'host = "127.0.0.1"',
        f"port = {port}",
        "[admin]",
        f"port = {admin}",
        "[process]",
        "workers = 1",
        "[state]",
        "persist = false",
        "[health]",
        "enabled = true",
        'path = "/"',
        f"interval = {INTERVAL}",
        "timeout = 1.0",
        "",
    ]
    for p in range(pools):
        members = ", ".join(
            f'{{ name = "b{p * PER_POOL + i + 1:05d}", url = "http://127.0.0.1:{backend}" }}'
            for i, backend in enumerate(backends[p * PER_POOL : (p + 1) * PER_POOL])
        )
        lines += [f"[pools.{pool_name(p)}]", f"backends = [{members}]", ""]
    for r in range(routes):
        first, second = pool_name(2 * r), pool_name(2 * r + 1)
        lines += [
            f"[routes.{route_name(r)}]",
            f'path_prefix = "/{route_name(r)}/"',
            f"weights = {{ {first} = 50, {second} = 50 }}",
            "",
        ]
    return "\n".join(lines)


def pool_name(index: int) -> str:
    return f"p{index + 1:04d}"


def route_name(index: int) -> str:
    return f"r{index + 1:04d}"


def _start_backends(children: Children, ports: Sequence[int]) -> list[tuple[int, Child]]:
    """A few built-in backend processes, each on up to PORTS_PER_SERVER of `ports`; (the port
    its counter is read on, the process) for each."""
    servers = []
    for first in range(0, len(ports), PORTS_PER_SERVER):
        chunk = ports[first : first + PORTS_PER_SERVER]
        argv = [sys.executable, "-m", "benchmarks.backend", "--name", "probed"]
        for port in chunk:
            argv += ["--port", str(port)]
        child = children.spawn(f"backends-{first // PORTS_PER_SERVER + 1}", argv)
        servers.append((chunk[0], child))
    for (_, child), first in zip(servers, range(0, len(ports), PORTS_PER_SERVER), strict=True):
        # Its ports open in order: the last one listening means all do.
        wait_for_port(child, ports[min(first + PORTS_PER_SERVER, len(ports)) - 1], timeout=60)
    return servers


def _wait_ready(child: Child, admin_port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if not child.alive():
            raise child.failure("exited before it was ready")
        try:
            if _get(admin_port, "/ready", timeout=5)[0] == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.02)
    raise child.failure(f"not ready within {READY_TIMEOUT:.0f} s")


def _get(port: int, path: str, timeout: float = HTTP_TIMEOUT) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _probes(ports: Sequence[int]) -> int:
    """Requests the backend processes counted so far, each reading counting itself."""
    total = 0
    for port in ports:
        status, body = _get(port, STATUS_PATH, timeout=10)
        if status != 200:
            raise ControlError(f"backend status on port {port} answered {status}")
        # nginx stub_status: the third number of the "accepts handled requests" line.
        total += int(body.decode().splitlines()[2].split()[2])
    return total


def _writes(admin_port: int) -> list[float]:
    """Seconds each of WRITES weight changes on the first route took."""
    settings = ({pool_name(0): 60, pool_name(1): 40}, {pool_name(0): 50, pool_name(1): 50})
    path = f"/v1/routes/{route_name(0)}/weights"
    deadline = time.monotonic() + PHASE_BUDGET
    connection = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=HTTP_TIMEOUT)
    took = []
    try:
        for index in range(WRITES):
            body = json.dumps({"weights": settings[index % 2]})
            sent = time.monotonic()
            connection.request("PUT", path, body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            took.append(time.monotonic() - sent)
            if response.status != 200:
                raise ControlError(f"PUT {path} answered {response.status}: {answer[:300]!r}")
            if time.monotonic() > deadline:
                raise ControlError(f"{index + 1} writes took over {PHASE_BUDGET:.0f} s")
    finally:
        connection.close()
    return took


def _metrics(admin_port: int) -> tuple[list[float], int]:
    """Seconds each of METRICS_READS reads of /metrics took, and the last answer's size."""
    deadline = time.monotonic() + PHASE_BUDGET
    took, size = [], 0
    for index in range(METRICS_READS):
        sent = time.monotonic()
        status, body = _get(admin_port, "/metrics")
        took.append(time.monotonic() - sent)
        if status != 200:
            raise ControlError(f"GET /metrics answered {status}")
        size = len(body)
        if time.monotonic() > deadline:
            raise ControlError(f"{index + 1} reads of /metrics took over {PHASE_BUDGET:.0f} s")
    return took, size


def text(figures: Sequence[ControlFigures]) -> str:
    head = (
        f"{'backends':>8} {'pools':>6} {'routes':>6} {'ready s':>8} {'CPU %':>7}"
        f" {'µs/probe':>9} {'probes/s':>9} {'write p50 ms':>13} {'write max ms':>13}"
        f" {'/metrics ms':>12} {'/metrics KiB':>13}"
    )
    lines = [
        f"The control plane with health checks every {INTERVAL:g} s and no client traffic "
        f"(1 worker; CPU of the control-plane process alone, µs/probe = CPU / (backends x s);",
        f"probes/s as the backends counted them; {WRITES} weight writes on one route, "
        f"{METRICS_READS} reads of /metrics):",
        head,
    ]
    for f in figures:
        lines.append(
            f"{f.backends:>8,} {f.pools:>6,} {f.routes:>6,} {f.ready_s:>8.2f} {f.cpu_percent:>7.1f}"
            f" {f.cpu_us_per_probe:>9.1f} {f.probes_per_s:>9,.0f} {f.write_ms_median:>13.1f}"
            f" {f.write_ms_max:>13.1f} {f.metrics_ms_median:>12.1f}"
            f" {f.metrics_bytes / 1024:>13,.1f}"
        )
    return "\n".join(lines)


def to_json(figures: Sequence[ControlFigures]) -> dict[str, Any]:
    return {
        "interval_s": INTERVAL,
        "backends_per_pool": PER_POOL,
        "pools_per_route": POOLS_PER_ROUTE,
        "warmup_s": WARMUP,
        "writes": WRITES,
        "metrics_reads": METRICS_READS,
        "sizes": [
            {
                key: round(value, 3) if isinstance(value, float) else value
                for key, value in {
                    **asdict(f),
                    "probes_asked_per_s": f.probes_asked_per_s,
                }.items()
            }
            for f in figures
        ],
    }
