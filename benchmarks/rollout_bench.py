"""Rollouts end to end over real HTTP: `python -m benchmarks rollout`.

Two built-in loopback backends, `stable` and `canary` (the canary told to answer 500 over its
FAIL_PATH when a scenario wants it broken), and for each scenario a fresh `turnout run` with 2
workers in front of them (route `web`: stable 100, canary 0), started and stopped here. Client
traffic is the built-in load generator at a bounded rate. Everything is driven and read through
the admin API, as an operator's script would; the scenarios, in this order:

a. healthy: a healthy canary rolled through 5/25/50/100 %. Measured: the time from the start to
   `promoted`, the requests each pool served during each step (the backends' own counts, read
   when the status shows the step changed) and the errors the clients saw (must be none).
b. failing: the canary starts answering 500 once the rollout is at 25 %. Measured: from the
   canary's first failing answer (its own wall clock) to the abort (the rollout's `updated`
   time, when the controller decided), the failing answers the canary gave and the errors the
   clients saw (the judge counts upstream attempts, so these may differ), and how long the
   restoring write took to be acknowledged by every worker (the control plane logs it:
   "acknowledged by every worker in X ms"; the status does not carry it).
c. idle: a rollout with no client traffic at all, over its maximum step time: it must pause
   for a person ("inconclusive"), never abort.

Every wait is bounded; every process started here is stopped whatever way this ends.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from admin_api.client import AdminClient, AdminError
from benchmarks.backend import FAIL_PATH
from benchmarks.backends import BackendServer, request_counts, start_backends
from benchmarks.load import LoadResult, builtin_command
from benchmarks.processes import Child, Children, free_ports, wait_for_port
from benchmarks.scenarios import SMALL_PATH, Scenario
from benchmarks.targets import ROUTE, turnout_toml, wait_until_ready
from benchmarks.tools import turnout_command

STEPS = (5, 25, 50, 100)
FAILING_STEP = 1
"""The canary breaks once the rollout is at this step (25 %)."""
WORKERS = 2
DEFAULT_STEP_TIME = 2.0
DEFAULT_RATE = 1000.0
"""Requests a second in all: 5 % of it gives the canary 100 requests in a 2 s step."""
DEFAULT_CONNECTIONS = 10
DEFAULT_MIN_REQUESTS = 100
IDLE_MAX_STEPS = 2
"""Scenario c's maximum step time, in step times."""
POLL = 0.02
"""Seconds between two looks at the rollout's status."""
SLACK = 30.0
"""Seconds a scenario may run beyond what its settings make it last, before it is failed."""
ACK = re.compile(
    r"rollout of route \S+: (\w+).*acknowledged by every worker in ([0-9.]+) ms", re.MULTILINE
)


class RolloutBenchError(RuntimeError):
    """A scenario could not be run or did not end: says which and why."""


@dataclass(frozen=True, slots=True)
class Options:
    step_time: float = DEFAULT_STEP_TIME
    rate: float = DEFAULT_RATE
    """Client requests a second in all (0: as fast as the connections go)."""
    connections: int = DEFAULT_CONNECTIONS
    min_requests: int = DEFAULT_MIN_REQUESTS


@dataclass(frozen=True, slots=True)
class Step:
    weight: int
    """The canary's percentage."""
    seconds: float
    canary_requests: int
    stable_requests: int


@dataclass(frozen=True, slots=True)
class Healthy:
    phase: str
    seconds: float
    """From the start request to the status showing the final phase."""
    steps: tuple[Step, ...]
    client_requests: int
    client_errors: int
    ack_ms_max: float | None
    """The slowest transition write, acknowledged by every worker."""


@dataclass(frozen=True, slots=True)
class Failing:
    phase: str
    cause: str | None
    reason: str
    detection_ms: float | None
    """From the canary's first failing answer to the controller's abort decision."""
    canary_failures: int
    """Failing answers the canary gave (upstream attempts, retries included)."""
    client_requests: int
    client_errors: int
    ack_ms: float | None
    """The restoring write (the abort), acknowledged by every worker."""


@dataclass(frozen=True, slots=True)
class Idle:
    phase: str
    cause: str | None
    reason: str
    seconds: float
    """From the start request to the status leaving `progressing`."""
    max_step_time: float
    phase_later: str
    """The phase a step time after that: still paused, never aborted."""


@dataclass(frozen=True, slots=True)
class RolloutFigures:
    options: Options
    healthy: Healthy
    failing: Failing
    idle: Idle


def rollout_spec(options: Options, **more: Any) -> dict[str, Any]:
    """The start request every scenario sends (canary `canary`, steps 5/25/50/100)."""
    return {
        "canary": "canary",
        "steps": list(STEPS),
        "stepTime": options.step_time,
        "judge": {"minRequests": options.min_requests},
        **more,
    }


def run(options: Options, say: Callable[[str], None] = lambda text: None) -> RolloutFigures:
    with tempfile.TemporaryDirectory(prefix="turnout-rollout-") as directory:
        workdir = Path(directory)
        with Children(workdir) as children:
            backends = start_backends(
                children, workdir, {"stable": 1, "canary": 1}, "builtin", None, None
            )
            try:
                say("a. a healthy canary through 5/25/50/100 %")
                healthy = _healthy(children, workdir, backends, options)
                say("b. a canary that starts failing at 25 %")
                failing = _failing(children, workdir, backends, options)
                say("c. a canary with no traffic")
                idle = _idle(children, workdir, backends, options)
            except (AdminError, OSError, http.client.HTTPException) as error:
                raise RolloutBenchError(f"{error} (logs in {workdir})") from error
    return RolloutFigures(options, healthy, failing, idle)


# The scenarios


def _healthy(
    children: Children, workdir: Path, backends: list[BackendServer], options: Options
) -> Healthy:
    turnout, port, admin = _turnout(children, workdir, backends, "healthy")
    canary, stable = _backend(backends, "canary"), _backend(backends, "stable")
    _breakage(canary, "off")
    load = _start_load(children, port, options, "load-healthy", _bound(options))
    started = time.monotonic()
    status = admin.start_rollout(ROUTE, rollout_spec(options))
    counts, since, step = request_counts(backends), started, status["step"]
    steps = []

    def changed(now: dict[str, Any]) -> bool:
        nonlocal counts, since, step
        if now["step"] == step and now["phase"] == "progressing":
            return False
        later, at = request_counts(backends), time.monotonic()
        served = {name: later[name] - counts[name] - 1 for name in later}  # minus the reading
        weight = STEPS[min(step, len(STEPS) - 1)]
        steps.append(Step(weight, at - since, served[canary.name], served[stable.name]))
        counts, since, step = later, at, now["step"]
        return _settled(now)

    status = _watch(admin, turnout, changed, _bound(options))
    seconds = time.monotonic() - started
    result = _stop_load(children, load)
    acks = [ms for _, ms in _acks(turnout)]
    children.stop(turnout)
    return Healthy(
        phase=status["phase"],
        seconds=seconds,
        steps=tuple(steps),
        client_requests=result.requests,
        client_errors=result.errors,
        ack_ms_max=max(acks) if acks else None,
    )


def _failing(
    children: Children, workdir: Path, backends: list[BackendServer], options: Options
) -> Failing:
    turnout, port, admin = _turnout(children, workdir, backends, "failing")
    canary = _backend(backends, "canary")
    _breakage(canary, "off")
    load = _start_load(children, port, options, "load-failing", _bound(options))
    admin.start_rollout(ROUTE, rollout_spec(options))
    _watch(admin, turnout, lambda s: bool(s["step"] >= FAILING_STEP or s["phase"] != "progressing"))
    _breakage(canary, "on")
    status = _watch(admin, turnout, _settled, _bound(options))
    broken = _breakage(canary, "off")
    result = _stop_load(children, load)
    ack = _ack(turnout, "aborted")
    children.stop(turnout)
    first = broken["first_failure"]
    detection = None if first is None else 1000 * (_epoch(status["updated"]) - first)
    return Failing(
        phase=status["phase"],
        cause=status.get("cause"),
        reason=status.get("reason", ""),
        detection_ms=detection,
        canary_failures=broken["failed"],
        client_requests=result.requests,
        client_errors=result.errors,
        ack_ms=ack,
    )


def _idle(
    children: Children, workdir: Path, backends: list[BackendServer], options: Options
) -> Idle:
    turnout, _, admin = _turnout(children, workdir, backends, "idle")
    max_step_time = IDLE_MAX_STEPS * options.step_time
    started = time.monotonic()
    admin.start_rollout(ROUTE, rollout_spec(options, maxStepTime=max_step_time))
    status = _watch(admin, turnout, _settled, max_step_time + SLACK)
    seconds = time.monotonic() - started
    time.sleep(options.step_time)
    later = admin.rollout(ROUTE)["phase"]
    children.stop(turnout)
    return Idle(
        phase=status["phase"],
        cause=status.get("cause"),
        reason=status.get("reason", ""),
        seconds=seconds,
        max_step_time=max_step_time,
        phase_later=later,
    )


# The parts


def _bound(options: Options) -> float:
    """Seconds a rollout through every step may take before the scenario is failed."""
    return len(STEPS) * options.step_time + SLACK


def _turnout(
    children: Children, workdir: Path, backends: list[BackendServer], label: str
) -> tuple[Child, int, AdminClient]:
    """A fresh turnout (2 workers, route `web`: stable 100, canary 0), ready; its traffic port
    and an admin client. Logged at info: the transitions' acknowledgement times are read there."""
    port, admin_port = free_ports(2)
    config = workdir / f"turnout-{label}.toml"
    weights = (("stable", 100), ("canary", 0))
    config.write_text(turnout_toml(port, weights, backends, admin_port, WORKERS))
    argv = [*turnout_command(), "--log-level", "info", "run", "--config", str(config)]
    child = children.spawn(f"turnout-{label}", argv)
    wait_for_port(child, admin_port)
    wait_until_ready(child, admin_port)
    wait_for_port(child, port)
    return child, port, AdminClient(f"http://127.0.0.1:{admin_port}", timeout=10)


def _backend(backends: list[BackendServer], pool: str) -> BackendServer:
    return next(backend for backend in backends if backend.pool == pool)


def _breakage(backend: BackendServer, switch: str) -> dict[str, Any]:
    """Turn the backend's failing `on` or `off`; its state before an `off` forgets it."""
    connection = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=5)
    try:
        connection.request("GET", f"{FAIL_PATH}?{switch}")
        response = connection.getresponse()
        state: dict[str, Any] = json.loads(response.read())
    finally:
        connection.close()
    return state


def _start_load(children: Children, port: int, options: Options, label: str, limit: float) -> Child:
    """The built-in load generator on `/`, for at most `limit` s (stopped earlier by
    _stop_load)."""
    scenario = Scenario(label, "rollout traffic", SMALL_PATH, options.connections)
    argv = builtin_command(f"http://127.0.0.1:{port}", scenario, limit)
    return children.spawn(label, [*argv, "--rate", str(options.rate)])


def _stop_load(children: Children, load: Child) -> LoadResult:
    """Stop the load generator early; its report (it prints one, flushed, when told to stop).

    The report is what matters, not the exit: a process that printed it but is slow to exit
    (interpreter shutdown on a loaded machine) is stopped by force and its report used."""
    if load.alive():
        os.kill(load.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    report: LoadResult | None = None
    try:
        while report is None:
            report = _report(load)
            if report is not None or load.popen.poll() is not None:
                break
            if time.monotonic() > deadline:
                state = _process_state(load.pid)
                raise load.failure(f"printed no report within 15 s of SIGTERM ({state})")
            time.sleep(0.05)
    finally:
        children.stop(load)
    report = report or _report(load)
    if report is None:
        raise load.failure("printed no report")
    return report


def _report(load: Child) -> LoadResult | None:
    lines = load.log.read_text(errors="replace").strip().splitlines()
    try:
        return LoadResult(**json.loads(lines[-1]))
    except (IndexError, ValueError, TypeError):
        return None


def _process_state(pid: int) -> str:
    """The kernel's word on a process that does not stop, for the failure message."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "gone"
    return ", ".join(
        line.replace("\t", " ")
        for line in status.splitlines()
        if line.startswith(("State:", "Threads:", "SigBlk:", "SigIgn:", "SigCgt:"))
    )


def _watch(
    admin: AdminClient,
    turnout: Child,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = SLACK,
) -> dict[str, Any]:
    """Read the rollout's status every POLL s until `done(status)`; that status."""
    deadline = time.monotonic() + timeout
    while True:
        status = admin.rollout(ROUTE)
        if done(status):
            return status
        turnout.check_alive()
        if time.monotonic() > deadline:
            raise RolloutBenchError(
                f"the rollout never got there within {timeout:.0f} s: {status['phase']} at step "
                f"{status['step']}: {status['reason']}"
            )
        time.sleep(POLL)


def _settled(status: dict[str, Any]) -> bool:
    return bool(status["phase"] != "progressing")


def _acks(turnout: Child) -> list[tuple[str, float]]:
    """(what, ms) for every transition the control plane logged as acknowledged."""
    text = turnout.log.read_text(errors="replace")
    return [(what, float(ms)) for what, ms in ACK.findall(text)]


def _ack(turnout: Child, what: str, wait: float = 2.0) -> float | None:
    """The last `what` transition's acknowledgement in ms (the line may trail the status)."""
    deadline = time.monotonic() + wait
    while True:
        found = [ms for event, ms in _acks(turnout) if event == what]
        if found or time.monotonic() > deadline:
            return found[-1] if found else None
        time.sleep(0.05)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# The report


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def text(figures: RolloutFigures) -> str:
    o, a, b, c = figures.options, figures.healthy, figures.failing, figures.idle
    rate = f"{o.rate:,.0f} req/s" if o.rate > 0 else "as fast as it goes"
    lines = [
        f"Rollouts end to end: turnout with {WORKERS} workers, loopback backends, the built-in "
        f"load generator at {rate} over {o.connections} connections;",
        f"steps {'/'.join(str(s) for s in STEPS)} %, step time {o.step_time:g} s, "
        f"min requests {o.min_requests}.",
        "",
        f"a. healthy canary: {a.phase} in {a.seconds:.1f} s; {a.client_errors} client errors "
        f"in {a.client_requests:,} requests; slowest transition acknowledged by every worker "
        f"in {_ms(a.ack_ms_max)}",
        f"   {'step':>4} {'canary %':>8} {'held s':>7} {'canary req':>11} {'stable req':>11}",
    ]
    for index, step in enumerate(a.steps, 1):
        lines.append(
            f"   {index:>4} {step.weight:>8} {step.seconds:>7.2f} {step.canary_requests:>11,}"
            f" {step.stable_requests:>11,}"
        )
    lines += [
        f"b. canary failing from {STEPS[FAILING_STEP]} %: {b.phase} (cause {b.cause}) "
        f"{_ms(b.detection_ms)} after its first failing answer; {b.canary_failures} failing "
        f"canary answers, {b.client_errors} client errors in {b.client_requests:,} requests; "
        f"restoring write acknowledged by every worker in {_ms(b.ack_ms)}",
        f"   {b.reason}",
        f"c. canary with no traffic: {c.phase} after {c.seconds:.1f} s (max step time "
        f"{c.max_step_time:g} s), {c.phase_later} a step later, cause {c.cause}",
        f"   {c.reason}",
    ]
    return "\n".join(lines)


def to_json(figures: RolloutFigures) -> dict[str, Any]:
    return {"steps": list(STEPS), "workers": WORKERS, **asdict(figures)}
