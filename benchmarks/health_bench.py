"""What active health checking costs: `python -m benchmarks health [--backends 50 --interval 1]`.

Starts N built-in backends (one process, N ports) and turnout probing all of them, then reads
the control plane's own CPU time (probes run there, once per instance, not in the workers) and
the probes the backends received over a measured window.
"""

from __future__ import annotations

import http.client
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.measure import cpu_seconds
from benchmarks.processes import Children, free_ports, wait_for_port
from benchmarks.scenarios import STATUS_PATH
from benchmarks.targets import wait_until_ready
from benchmarks.tools import turnout_command


@dataclass(frozen=True, slots=True)
class HealthCost:
    backends: int
    interval: float
    duration: float
    probes_per_second: float
    cpu_percent: float
    """Of one core, for the control plane process alone."""
    cpu_us_per_probe: float


def run(backends: int, interval: float, duration: float, warmup: float = 2.0) -> HealthCost:
    with tempfile.TemporaryDirectory() as directory, Children(Path(directory)) as children:
        ports = free_ports(backends + 2)
        proxy_port, admin_port, backend_ports = ports[0], ports[1], ports[2:]
        argv = [sys.executable, "-m", "benchmarks.backend", "--name", "probe-target"]
        for port in backend_ports:
            argv += ["--port", str(port)]
        server = children.spawn("backends", argv, None)
        wait_for_port(server, backend_ports[-1])
        config = Path(directory) / "turnout.toml"
        config.write_text(_config(proxy_port, admin_port, backend_ports, interval))
        turnout = children.spawn(
            "turnout",
            [*turnout_command(), "--log-level", "warning", "run", "--config", str(config)],
            None,
        )
        wait_for_port(turnout, admin_port)
        wait_until_ready(turnout, admin_port)
        time.sleep(warmup)
        cpu, probes, started = (
            cpu_seconds([turnout.pid]),
            _probes(backend_ports[0]),
            time.monotonic(),
        )
        time.sleep(duration)
        cpu = cpu_seconds([turnout.pid]) - cpu
        probes = _probes(backend_ports[0]) - probes
        elapsed = time.monotonic() - started
    return HealthCost(
        backends=backends,
        interval=interval,
        duration=elapsed,
        probes_per_second=probes / elapsed,
        cpu_percent=100 * cpu / elapsed,
        cpu_us_per_probe=1e6 * cpu / max(1, probes),
    )


def text(cost: HealthCost) -> str:
    return (
        f"health checking {cost.backends} backends every {cost.interval:g} s, measured over "
        f"{cost.duration:.1f} s:\n"
        f"  probes/s                {cost.probes_per_second:8.1f}\n"
        f"  control plane CPU       {cost.cpu_percent:8.2f} % of one core\n"
        f"  CPU per probe           {cost.cpu_us_per_probe:8.0f} µs"
    )


def _probes(port: int) -> int:
    """Requests the backends counted (all ports share one counter), minus this status call."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", STATUS_PATH)
    body = connection.getresponse().read().decode()
    # nginx stub_status: the third number of the "accepts handled requests" line.
    numbers = body.splitlines()[2].split()
    return int(numbers[2]) - 1


def _config(port: int, admin: int, backends: list[int], interval: float) -> str:
    members = ", ".join(
        f'{{ name = "b{i}", url = "http://127.0.0.1:{p}" }}' for i, p in enumerate(backends)
    )
    return f"""
[listen]
port = {port}
[admin]
port = {admin}
[state]
persist = false
[health]
enabled = true
path = "/"
interval = {interval}
timeout = 1.0
[pools.app]
backends = [{members}]
[routes.web]
weights = {{ app = 1 }}
"""
