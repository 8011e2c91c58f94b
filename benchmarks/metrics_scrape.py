"""/metrics rendered in-process over the control benchmark's configuration:
`python -m benchmarks.metrics_scrape [--backends 100,1000,2000] [--traffic] [--profile]`.

No processes and no sockets: the configuration `benchmarks.control_bench` writes (5 backends a
pool, 2 pools a route, health checks on) is compiled into a snapshot, and every backend gets a
worker report and probe counters (`--traffic` also gives every (route, pool) requests, so the
per-route families are full). What is timed is what `GET /metrics` does after the workers'
counters are in: the registry's collectors and the rendering, as CPU time (time.process_time,
best of `--reads`), which a shared machine disturbs far less than wall-clock time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from admin_api.exposition import render
from admin_api.metrics import registry
from benchmarks.control_bench import turnout_config
from proxy.config import load_config
from proxy.control.values import HealthCounters, InstanceState
from proxy.metrics import BackendReport, Sum


@dataclass
class FakeService:
    """What admin_api.metrics reads of a ControlService."""

    state: InstanceState
    aborts: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def instance(self) -> InstanceState:
        return self.state

    def rollouts(self) -> tuple[()]:
        return ()

    def rollout_aborts(self) -> Mapping[tuple[str, str], int]:
        return self.aborts

    def pool_rollouts(self) -> tuple[()]:
        return ()

    def pool_rollout_aborts(self) -> Mapping[tuple[str, str], int]:
        return self.aborts


def instance_state(backends: int, traffic: bool) -> InstanceState:
    with tempfile.TemporaryDirectory() as workdir:
        config = Path(workdir) / "turnout.toml"
        ports = [20000 + index for index in range(backends)]
        config.write_text(turnout_config(18000, 18001, ports))
        settings, snapshot = load_config(config)
    bounds = tuple(settings.metrics.buckets)
    reports, health = {}, {}
    for pool in snapshot.pools.values():
        for index, backend in enumerate(pool.backends):
            key = (pool.name, backend.name)
            reports[key] = BackendReport(index % 3, index, 0, index % 2, 4, 1000 + index, index)
            health[key] = HealthCounters(index % 2, 0, True, 3600 + index, index % 4)
    routes: dict[tuple[str, str], Sum] = {}
    if traffic:
        for route in snapshot.spec.routes:
            for pool_name, _ in route.weights:
                routes[(route.name, pool_name)] = Sum(
                    inflight=1,
                    codes={200: 5000, 502: 3},
                    rules={"weighted": 5003},
                    buckets=[100 * (i + 1) for i in range(len(bounds) + 1)],
                    duration_sum=12.625,
                    bytes_in=1 << 20,
                    bytes_out=5 << 20,
                    attempts=5010,
                    attempt_errors=10,
                )
    return InstanceState(snapshot, bounds, routes, reports, health, (), 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="100,1000,2000")
    parser.add_argument("--traffic", action="store_true")
    parser.add_argument("--reads", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    for size in (int(part) for part in args.backends.split(",")):
        metrics = registry(FakeService(instance_state(size, args.traffic)))  # type: ignore[arg-type]
        body = render(metrics)
        times = []
        for _ in range(args.reads):
            start = time.process_time()
            render(metrics)
            times.append(time.process_time() - start)
        print(
            f"{size:6d} backends: {1000 * min(times):7.1f} ms CPU best, "
            f"{1000 * sorted(times)[len(times) // 2]:7.1f} median, {len(body)} bytes"
        )
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(render, metrics)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
