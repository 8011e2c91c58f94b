"""One benchmark run: start backends and targets, load each target per scenario, measure.

Every process is started through one `Children` owner and stopped when the run ends, however
it ends. Targets all run side by side for the whole run, but only one takes load at a time;
for each (scenario, target) the backends' request counters, the proxy's CPU time and its peak
memory are read right before and right after the measured load. With `repeat` > 1 every
scenario is measured that many times, the targets interleaved run by run (run 1: turnout,
nginx, haproxy; run 2: the same...), so slow drifts of the machine hit every target alike.

A scenario whose turnout must issue its sticky cookie gets turnout instances of its own,
started with that configuration for the scenario and stopped after it.
"""

from __future__ import annotations

import http.client
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from benchmarks import measure, steady_rollout, tools
from benchmarks.backends import BackendKind, BackendServer, request_counts, start_backends
from benchmarks.load import Generator, LoadResult, run_load
from benchmarks.processes import Children, raise_fd_limit
from benchmarks.progress import Progress
from benchmarks.scenarios import SMALL_PATH, Scenario, small_body
from benchmarks.shifter import Shifter, ShiftResult
from benchmarks.targets import (
    DEFAULT_TARGETS,
    ROUTE,
    TESTER_HEADER,
    Target,
    TargetName,
    start_target,
)
from proxy import native


class SetupError(RuntimeError):
    """The run cannot start as asked (a tool missing, a bad option): nothing was started."""


@dataclass(frozen=True, slots=True)
class Plan:
    scenarios: tuple[Scenario, ...]
    targets: tuple[TargetName, ...] | None
    """None: every target whose software is installed."""
    duration: int
    warmup: int
    pin: bool
    weights: tuple[tuple[str, int], ...]
    backends_per_pool: int = 1
    load_generator: Generator | Literal["auto"] = "auto"
    backend: BackendKind | Literal["auto"] = "auto"
    keep_temp: bool = False
    workers: int = 1
    """turnout worker processes; nginx gets as many worker processes, HAProxy as many threads."""
    repeat: int = 1
    """Measured runs of every (scenario, target), interleaved run by run."""
    rollout: bool = False
    """Every turnout target measured with a canary rollout running (benchmarks.steady_rollout)."""


@dataclass(frozen=True, slots=True)
class PoolShare:
    requests: int
    share_pct: float
    weight_pct: float

    @property
    def deviation_pp(self) -> float:
        return self.share_pct - self.weight_pct


@dataclass(frozen=True, slots=True)
class Measurement:
    scenario: str
    target: TargetName
    load: LoadResult
    proxy_cpu_s_per_request: float | None
    proxy_peak_rss_bytes: int | None
    backend_requests: dict[str, int]
    split: dict[str, PoolShare] | None
    """Per pool, as the backends counted; None for `direct`, which bypasses any split."""
    shifts: ShiftResult | None = None
    """The weight changes made during a shifting scenario (turnout targets only)."""
    run: int = 1
    """Which of the `repeat` runs (from 1)."""
    set_cookie: str | None = None
    """In a scenario where turnout issues its cookie: the Set-Cookie a cookieless request got
    from the target right before the measured load (None: none)."""


@dataclass
class Results:
    machine: dict[str, Any]
    parameters: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Setup:
    """A plan resolved against this machine: which tools, targets and CPUs."""

    generator: Generator
    backend: BackendKind
    targets: tuple[TargetName, ...]
    tools: dict[str, str]
    proxy_cpus: frozenset[int] | None
    other_cpus: frozenset[int] | None
    notes: tuple[str, ...]


def resolve(plan: Plan) -> Setup:
    found = {name: path for name in ("wrk", "nginx", "haproxy") if (path := tools.find(name))}
    notes = []
    generator: Generator = "wrk" if _use(plan.load_generator, "wrk", found) else "builtin"
    if generator == "builtin":
        why = "as asked" if plan.load_generator == "builtin" else "wrk is not installed"
        notes.append(
            f"load generator: the built-in one ({why}); a Python process saturates well below "
            "nginx, so its own ceiling is reported: proxy figures near it measure the generator"
        )
    backend: BackendKind = "nginx" if _use(plan.backend, "nginx", found) else "builtin"
    if backend == "builtin":
        why = "as asked" if plan.backend == "builtin" else "nginx is not installed"
        notes.append(f"backends: the built-in uvloop + httptools backend ({why})")
    targets = list(plan.targets or DEFAULT_TARGETS)
    for name in ("nginx", "haproxy"):
        if name in targets and name not in found:
            if plan.targets is not None:
                raise SetupError(f"target {name} asked for, but {name} is not installed")
            targets.remove(name)
            notes.append(f"target {name} skipped: {name} is not installed")
    if generator == "builtin" and "direct" not in targets:
        targets.append("direct")
        notes.append("target direct added: it measures the built-in load generator's ceiling")
    proxy_cpus = other_cpus = None
    if plan.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            notes.append("--pin ignored: it needs at least 2 CPUs")
        else:
            if plan.workers >= len(cpus):
                notes.append(
                    f"--pin ignored: {plan.workers} worker(s) need more than {len(cpus)} CPUs"
                )
            else:
                split = len(cpus) - plan.workers
                proxy_cpus, other_cpus = frozenset(cpus[split:]), frozenset(cpus[:split])
    return Setup(
        generator=generator,
        backend=backend,
        targets=tuple(targets),
        tools=found,
        proxy_cpus=proxy_cpus,
        other_cpus=other_cpus,
        notes=tuple(notes),
    )


def _use(wanted: str, program: str, found: dict[str, str]) -> bool:
    """Whether to use `program` rather than the built-in stand-in, as asked and installed."""
    if wanted == "builtin":
        return False
    if program in found:
        return True
    if wanted == program:
        raise SetupError(f"{program} asked for, but it is not installed")
    return False


def run(plan: Plan, setup: Setup, progress: Progress) -> Results:
    raise_fd_limit()
    versions = {name: tools.version(name, path) for name, path in setup.tools.items()}
    results = Results(
        machine=measure.machine_info(versions),
        parameters=_parameters(plan, setup),
        notes=list(setup.notes),
    )
    if plan.rollout:
        results.notes.append(
            "every turnout target ran a canary rollout on its route all along (its first step "
            "at the configured split, held for a day): the controller gathered and judged every "
            "worker's counters throughout"
        )
    if setup.other_cpus is not None:
        # The orchestrator (mostly asleep) stays off the proxy's CPU too; only after reading
        # which CPUs the machine offers.
        os.sched_setaffinity(0, setup.other_cpus)
    workdir = Path(tempfile.mkdtemp(prefix="turnout-bench-"))
    keep = plan.keep_temp
    try:
        with Children(workdir) as children:
            progress.say(f"starting backends and targets (logs in {workdir})")
            pools = {pool: plan.backends_per_pool for pool, _ in plan.weights}
            backends = start_backends(
                children, workdir, pools, setup.backend, setup.tools.get("nginx"), setup.other_cpus
            )
            targets = [
                start_target(
                    name,
                    children,
                    workdir,
                    plan.weights,
                    backends,
                    setup.tools,
                    setup.proxy_cpus,
                    plan.workers,
                )
                for name in setup.targets
            ]
            for target in targets:
                _check_target(target, backends)
                _start_rollout(plan, target)
            total = len(plan.scenarios) * len(targets) * plan.repeat
            for scenario in plan.scenarios:
                with _scenario_targets(
                    children, plan, setup, workdir, scenario, targets, backends
                ) as active:
                    for run_number in range(1, plan.repeat + 1):
                        for target in active:
                            progress.begin(
                                len(results.measurements) + 1,
                                total,
                                scenario,
                                target.name,
                                run_number if plan.repeat > 1 else None,
                            )
                            measurement = _measure(
                                children,
                                plan,
                                setup,
                                workdir,
                                scenario,
                                target,
                                backends,
                                progress,
                                run_number,
                            )
                            results.measurements.append(measurement)
                            progress.end(measurement.load)
    except Exception:
        # The error names a log file in here: keep it to be read.
        keep = True
        raise
    finally:
        if keep:
            progress.say(f"kept {workdir} (configurations and logs)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


@contextmanager
def _scenario_targets(
    children: Children,
    plan: Plan,
    setup: Setup,
    workdir: Path,
    scenario: Scenario,
    targets: list[Target],
    backends: list[BackendServer],
) -> Iterator[list[Target]]:
    """The targets to load in `scenario`: the run's own, or, where turnout must issue its
    cookie, turnout instances configured so in their place (stopped when the scenario ends)."""
    if not scenario.issue_cookie:
        yield targets
        return
    started: list[Target] = []
    try:
        active = []
        for target in targets:
            if target.name.startswith("turnout"):
                target = start_target(
                    target.name,
                    children,
                    workdir,
                    plan.weights,
                    backends,
                    setup.tools,
                    setup.proxy_cpus,
                    plan.workers,
                    issue_cookie=True,
                )
                started.append(target)
                _check_target(target, backends)
                _start_rollout(plan, target)
                if set_cookie(target) is None:
                    raise SetupError(f"{target.name}: no Set-Cookie on a request without one")
            active.append(target)
        yield active
    finally:
        for target in started:
            if target.child is not None:
                children.stop(target.child)


def set_cookie(target: Target) -> str | None:
    """The Set-Cookie header a request without any cookie gets from `target`, if any."""
    connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=10)
    try:
        connection.request("GET", SMALL_PATH)
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as error:
        raise SetupError(f"{target.name}: GET {SMALL_PATH} failed: {error}") from error
    finally:
        connection.close()
    return response.getheader("Set-Cookie")


def _measure(
    children: Children,
    plan: Plan,
    setup: Setup,
    workdir: Path,
    scenario: Scenario,
    target: Target,
    backends: list[BackendServer],
    progress: Progress,
    run_number: int = 1,
) -> Measurement:
    def load(duration: int, phase: str) -> LoadResult:
        return run_load(
            children,
            setup.generator,
            setup.tools.get("wrk"),
            target.url,
            scenario,
            duration,
            workdir,
            setup.other_cpus,
            f"{setup.generator}-{scenario.name}-{target.name}-{run_number}-{phase}",
            tick=progress.tick,
        )

    if plan.warmup > 0:
        progress.phase(f"warmup {plan.warmup}s")
        load(plan.warmup, "warmup")
    # Before the counters are read, so this request is not in the split.
    cookie = set_cookie(target) if scenario.issue_cookie else None
    pids = measure.process_tree(target.child.pid) if target.child is not None else []
    measure.reset_peak_rss(pids)
    before = request_counts(backends)
    cpu_before = measure.cpu_seconds(pids)
    progress.phase(f"measuring {plan.duration}s")
    shifts = None
    if scenario.shift_every is not None and target.admin_port is not None:
        initial = dict(plan.weights)
        with Shifter(target.admin_port, ROUTE, initial, scenario.shift_every) as shifter:
            result = load(plan.duration, "measured")
        shifts = shifter.result()
    else:
        result = load(plan.duration, "measured")
    cpu = measure.cpu_seconds(pids) - cpu_before
    after = request_counts(backends)
    if target.child is not None:
        target.child.check_alive()
    if plan.rollout and target.admin_port is not None:
        steady_rollout.check(target.admin_port, ROUTE)
    # Each status reading counts itself: the later one is inside the difference.
    served = {name: after[name] - before[name] - 1 for name in after}
    total_weight = sum(weight for _, weight in plan.weights)
    # What the split should be: the set weights, or while they swung, their average over time.
    set_pct = (
        shifts.set_pct
        if shifts is not None
        else {pool: 100 * weight / total_weight for pool, weight in plan.weights}
    )
    return Measurement(
        scenario=scenario.name,
        target=target.name,
        load=result,
        proxy_cpu_s_per_request=cpu / result.requests if pids and result.requests else None,
        proxy_peak_rss_bytes=measure.peak_rss_bytes(pids) if pids else None,
        backend_requests=served,
        split=None if target.name == "direct" else _split(set_pct, backends, served),
        shifts=shifts,
        run=run_number,
        set_cookie=cookie,
    )


def _split(
    set_pct: dict[str, float], backends: list[BackendServer], served: dict[str, int]
) -> dict[str, PoolShare]:
    per_pool = {pool: 0 for pool in set_pct}
    for backend in backends:
        per_pool[backend.pool] += served[backend.name]
    total = sum(per_pool.values()) or 1
    return {
        pool: PoolShare(
            requests=per_pool[pool],
            share_pct=100 * per_pool[pool] / total,
            weight_pct=pct,
        )
        for pool, pct in set_pct.items()
    }


def _start_rollout(plan: Plan, target: Target) -> None:
    if plan.rollout and target.admin_port is not None:
        steady_rollout.start(target.admin_port, ROUTE, plan.weights)


def _check_target(target: Target, backends: list[BackendServer]) -> None:
    """One request through the target before any load, so a broken setup fails clearly."""
    turnout = target.name.startswith("turnout")
    headers = {TESTER_HEADER[0]: TESTER_HEADER[1]} if turnout else {}
    connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=10)
    try:
        connection.request("GET", SMALL_PATH, headers=headers)
        response = connection.getresponse()
        body = response.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as error:
        raise SetupError(f"{target.name}: GET {SMALL_PATH} failed: {error}") from error
    finally:
        connection.close()
    if response.status != 200:
        raise SetupError(f"{target.name}: GET {SMALL_PATH} answered {response.status}: {body!r}")
    if headers:
        # The tester rule must reach the candidate (the last pool), as configured.
        candidate = backends[-1]
        if body != small_body(candidate.name):
            raise SetupError(
                f"{target.name}: {TESTER_HEADER[0]}: {TESTER_HEADER[1]} reached {body!r}, "
                f"not the {candidate.pool} pool"
            )


def _parameters(plan: Plan, setup: Setup) -> dict[str, Any]:
    return {
        "scenarios": {
            scenario.name: {
                "description": scenario.description,
                "path": scenario.path,
                "method": scenario.method,
                "connections": scenario.connections,
                "body_bytes": scenario.body_bytes,
                "connection_close": scenario.close,
                "issues_cookie": scenario.issue_cookie,
            }
            for scenario in plan.scenarios
        },
        "targets": list(setup.targets),
        "duration_s": plan.duration,
        "warmup_s": plan.warmup,
        "weights": dict(plan.weights),
        "backends_per_pool": plan.backends_per_pool,
        "workers": plan.workers,
        "repeat": plan.repeat,
        "rollout": plan.rollout,
        "data_plane": _data_plane(),
        "load_generator": setup.generator,
        "backend": setup.backend,
        "pinned": setup.proxy_cpus is not None,
        "proxy_cpus": sorted(setup.proxy_cpus) if setup.proxy_cpus else None,
        "other_cpus": sorted(setup.other_cpus) if setup.other_cpus else None,
    }


def _data_plane() -> str:
    """What the `turnout` target runs (`turnout-py` always runs the sources)."""
    if os.environ.get("TURNOUT_NATIVE") == "off":
        return "pure Python (TURNOUT_NATIVE=off)"
    return "compiled with mypyc" if native.inspect() == "compiled" else "pure Python"
