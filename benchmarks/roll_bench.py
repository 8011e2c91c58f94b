"""Pool rollouts (rolling replacement) end to end over real HTTP: `python -m benchmarks roll`.

For each scenario a fresh `turnout run` with 2 workers in front of pool `blue`, whose backends
are programs of benchmarks.versioned_backend (each answers its version) probed every 0.2 s;
in place, the replace hook is benchmarks.replace_hook, run by turnout, which really stops each
program and starts its new version on the same port. Client load is benchmarks.roll_load
(keep-alive, every answer's version recorded). Everything is driven and read through the admin
API; the scenarios, in this order:

a. in place: 4 backends replaced one at a time under load in which `slow_share` of the
   requests take `slow_seconds`. Must end promoted, every program in the new version, with no
   failed client request and no program stopped while serving a request (each one logs how
   many it had in flight when it got SIGTERM). Measured: requests, failures, each drain's time.
b. bad version: the new version answers `error_rate` 500s; the judge must catch it in the first
   batch and the rollout revert it (cause `errors`, every program back in the old version).
   Measured: the requests that reached the bad version, and the time from its first answer to
   the end of the revert (the rollout's `updated`).
c. surge rollback: two new backends beside the two old ones; during the first batch's hold an
   abort, one write acknowledged by every worker before the call returns. Measured: the call's
   time (abort to every worker routing to the old backends), its acknowledgement as turnout
   logs it, the failed requests across it (must be none), and the next requests, sent once it
   returned: every one must reach the old version.

Every wait is bounded; every process started here is stopped whatever way this ends.
"""

from __future__ import annotations

import http.client
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from admin_api.client import AdminClient, AdminError
from benchmarks.processes import Child, Children, free_ports, wait_for_port
from benchmarks.roll_fleet import NEW, OLD, Fleet
from benchmarks.roll_load import Load
from benchmarks.targets import wait_until_ready
from benchmarks.tools import turnout_command

WORKERS = 2
POOL = "blue"
NAMES = tuple(f"{POOL}-{i}" for i in range(1, 5))
AFTER_ABORT = 200
"""Scenario c: requests sent one after another once the abort returned."""
POLL = 0.02
SLACK = 30.0
"""Seconds a scenario may run beyond what its settings make it last, before it is failed."""
ACK = re.compile(r"rollout of pool \S+: .*acknowledged by every worker in ([0-9.]+) ms")
IN_FLIGHT = re.compile(r"SIGTERM: stopped accepting; finishing (\d+) requests in flight")


class RollBenchError(RuntimeError):
    """A scenario could not be run or did not get where it must: says which and why."""


@dataclass(frozen=True, slots=True)
class Options:
    slow_seconds: float = 2.0
    slow_share: float = 0.1
    error_rate: float = 0.2
    connections: int = 40
    """Scenario a's client connections (each one waits on a slow request now and then)."""
    rate: float = 100.0
    """Scenario a's requests a second in all, at most."""
    judge_rate: float = 400.0
    """Scenarios b and c: requests a second in all, over 8 connections, none slow."""
    min_healthy_time: float = 1.0
    min_requests: int = 20


@dataclass(frozen=True, slots=True)
class InPlace:
    phase: str
    seconds: float
    client_requests: int
    slow_requests: int
    client_errors: int
    drains: tuple[float, ...]
    """Seconds each batch spent draining (waiting for its requests in flight)."""
    in_flight_at_sigterm: int
    """Requests the programs were serving when they got SIGTERM, in all (must be 0)."""
    versions: dict[str, str]
    ack_ms_max: float | None


@dataclass(frozen=True, slots=True)
class Reverted:
    phase: str
    cause: str | None
    reason: str
    bad_requests: int
    """Client requests the bad version answered."""
    bad_errors: int
    client_requests: int
    client_errors: int
    to_revert_s: float | None
    """From the bad version's first answer to the end of the revert."""
    versions: dict[str, str]


@dataclass(frozen=True, slots=True)
class Rollback:
    phase: str
    cause: str | None
    abort_ms: float
    """The abort call, from sending it to its answer: every worker routes to the old backends."""
    ack_ms: float | None
    requests_across: int
    """Client requests sent within a second either side of the abort."""
    errors_across: int
    client_requests: int
    client_errors: int
    after_on_old: int
    """Of the AFTER_ABORT requests sent once the call returned, those the old version served."""


@dataclass(frozen=True, slots=True)
class RollFigures:
    options: Options
    in_place: InPlace
    reverted: Reverted
    rollback: Rollback


def run(options: Options, say: Callable[[str], None] = lambda text: None) -> RollFigures:
    with tempfile.TemporaryDirectory(prefix="turnout-roll-") as directory:
        workdir = Path(directory)
        with Children(workdir) as children:
            try:
                say("a. in place, 4 backends, slow requests in the load")
                in_place = _in_place(children, workdir, options)
                say("b. a new version answering 500s")
                reverted = _reverted(children, workdir, options)
                say("c. surge, aborted during a hold")
                rollback = _rollback(children, workdir, options)
            except (AdminError, OSError, http.client.HTTPException) as error:
                raise RollBenchError(f"{error} (logs in {workdir})") from error
    return RollFigures(options, in_place, reverted, rollback)


# The scenarios


def _in_place(children: Children, workdir: Path, options: Options) -> InPlace:
    with Fleet(_directory(workdir, "in-place"), options.slow_seconds) as fleet:
        urls = [fleet.start(name, port) for name, port in zip(NAMES, free_ports(4), strict=True)]
        turnout, port, admin = _turnout(children, workdir, "in-place", urls)
        spec = _in_place_spec(fleet.hook(), options, options.min_healthy_time)
        load = Load(port, options.connections, options.slow_share, rate=options.rate)
        with load.running():
            _until(lambda: len(load.answers) > 50, "the load's first answers")
            started = time.time()
            admin.start_pool_rollout(POOL, spec)
            status = _watch(admin, turnout, _settled, len(NAMES) * _batch_bound(options))
            ended = time.time()
        in_flight = sum(int(n) for name in NAMES for n in IN_FLIGHT.findall(fleet.log(name)))
        found = acks(turnout.log.read_text(errors="replace"))
        history = admin.history(200)["changes"]
        children.stop(turnout)
        return InPlace(
            phase=status["phase"],
            seconds=ended - started,
            client_requests=len(load.answers),
            slow_requests=sum(a.slow for a in load.answers),
            client_errors=len(load.failures()),
            drains=tuple(drains(history)),
            in_flight_at_sigterm=in_flight,
            versions=fleet.versions(),
            ack_ms_max=max(found) if found else None,
        )


def _reverted(children: Children, workdir: Path, options: Options) -> Reverted:
    with Fleet(_directory(workdir, "reverted"), options.slow_seconds) as fleet:
        urls = [fleet.start(name, port) for name, port in zip(NAMES, free_ports(4), strict=True)]
        turnout, port, admin = _turnout(children, workdir, "reverted", urls)
        hook = fleet.hook("--new-error-rate", str(options.error_rate))
        # Held far longer than the judge needs: the batch must fail by its verdict.
        spec = _in_place_spec(hook, options, 3600)
        load = Load(port, connections=8, rate=options.judge_rate)
        with load.running():
            _until(lambda: len(load.answers) > 50, "the load's first answers")
            admin.start_pool_rollout(POOL, spec)
            status = _watch(admin, turnout, _settled, 4 * _batch_bound(options))
        children.stop(turnout)
        bad = [a for a in load.answers if a.body == NEW]
        first = min((a.started for a in bad), default=None)
        return Reverted(
            phase=status["phase"],
            cause=status["cause"],
            reason=status["reason"],
            bad_requests=len(bad),
            bad_errors=sum(a.status == 500 for a in bad),
            client_requests=len(load.answers),
            client_errors=len(load.failures()),
            to_revert_s=None if first is None else epoch(status["updated"]) - first,
            versions=fleet.versions(),
        )


def _rollback(children: Children, workdir: Path, options: Options) -> Rollback:
    with Fleet(_directory(workdir, "rollback"), options.slow_seconds) as fleet:
        ports = free_ports(4)
        old = [fleet.start(name, port) for name, port in zip(NAMES[:2], ports[:2], strict=True)]
        new = [
            {"name": f"{POOL}-new-{i}", "url": fleet.start(f"{POOL}-new-{i}", port, NEW)}
            for i, port in enumerate(ports[2:], 1)
        ]
        turnout, port, admin = _turnout(children, workdir, "rollback", old)
        spec = {
            "mode": "surge",
            "newBackends": new,
            "healthyDeadline": 30,
            "minHealthyTime": 3600,  # held until aborted
            "keepOld": 3600,
        }
        load = Load(port, connections=8, rate=options.judge_rate)
        with load.running():
            _until(lambda: len(load.answers) > 50, "the load's first answers")
            admin.start_pool_rollout(POOL, spec)
            _watch(admin, turnout, lambda s: s["stage"] == "holding" or _settled(s))
            _until(lambda: NEW in load.versions(load.answers[-50:]), "the new version's answers")
            before = time.time()
            called = time.perf_counter()
            status = admin.pool_rollout_command(POOL, "abort")
            abort_ms = 1000 * (time.perf_counter() - called)
            returned = time.time()
            after = sequential(port, AFTER_ABORT)
            _until(lambda: len(load.between(returned)) > 50, "answers after the abort")
        found = acks(turnout.log.read_text(errors="replace"))
        children.stop(turnout)
        across = load.between(before - 1, returned + 1)
        return Rollback(
            phase=status["phase"],
            cause=status["cause"],
            abort_ms=abort_ms,
            ack_ms=found[-1] if found else None,
            requests_across=len(across),
            errors_across=sum(not a.ok for a in across),
            client_requests=len(load.answers),
            client_errors=len(load.failures()),
            after_on_old=after[f"200 {OLD}"],
        )


# The parts


def _in_place_spec(hook: list[str], options: Options, hold: float) -> dict[str, Any]:
    return {
        "hook": {"command": hook, "timeout": 30},
        "batch": 1,
        "drainTimeout": options.slow_seconds + 10,
        "healthyDeadline": 15,
        "minHealthyTime": hold,
        "autoRevert": True,
        "judge": {"minRequests": options.min_requests},
    }


def _batch_bound(options: Options) -> float:
    """Seconds one batch may take (drain, hook, checks, hold) before the scenario fails."""
    return options.slow_seconds + options.min_healthy_time + SLACK


def _directory(workdir: Path, label: str) -> Path:
    directory = workdir / f"backends-{label}"
    directory.mkdir()
    return directory


def _turnout(
    children: Children, workdir: Path, label: str, urls: list[str]
) -> tuple[Child, int, AdminClient]:
    """A fresh turnout (2 workers, pool blue behind route web), ready; its traffic port and an
    admin client. Logged at info: the transitions' acknowledgement times are read there."""
    port, admin_port = free_ports(2)
    config = workdir / f"turnout-{label}.toml"
    config.write_text(config_toml(port, admin_port, urls))
    argv = [*turnout_command(), "--log-level", "info", "run", "--config", str(config)]
    child = children.spawn(f"turnout-{label}", argv)
    wait_for_port(child, admin_port)
    wait_until_ready(child, admin_port)
    wait_for_port(child, port)
    return child, port, AdminClient(f"http://127.0.0.1:{admin_port}", timeout=10)


def config_toml(port: int, admin_port: int, urls: list[str]) -> str:
    members = ", ".join(
        f'{{ name = "{POOL}-{i}", url = "{url}" }}' for i, url in enumerate(urls, 1)
    )
    return "\n".join(
        [
            "# Generated by turnout's pool rollout benchmark.",
            f'[listen]\nhost = "127.0.0.1"\nport = {port}',
            f"[admin]\nport = {admin_port}",
            f"[process]\nworkers = {WORKERS}",
            "[state]\npersist = false",
            "[health]\nenabled = true\ninterval = 0.2\njitter = 0.1\ntimeout = 1.0",
            'healthy_threshold = 2\nunhealthy_threshold = 2\npath = "/healthz"',
            f"[pools.{POOL}]\nbackends = [{members}]\nslow_start = 0.5",
            f'[routes.web]\npath_prefix = "/"\nweights = {{ {POOL} = 100 }}',
            "",
        ]
    )


def _watch(
    admin: AdminClient,
    turnout: Child,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = SLACK,
) -> dict[str, Any]:
    """Read the pool's rollout every POLL s until `done(status)`; that status."""
    deadline = time.monotonic() + timeout
    while True:
        status = admin.pool_rollout(POOL)
        if done(status):
            return status
        turnout.check_alive()
        if time.monotonic() > deadline:
            raise RollBenchError(
                f"the rollout never got there within {timeout:.0f} s: {status['phase']} at "
                f"batch {status['batch']} {status['stage']}: {status['reason']}"
            )
        time.sleep(POLL)


def _until(condition: Callable[[], bool], what: str, timeout: float = SLACK) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RollBenchError(f"no {what} within {timeout:.0f} s")
        time.sleep(POLL)


def _settled(status: dict[str, Any]) -> bool:
    return status["phase"] not in ("progressing", "paused")


def sequential(port: int, count: int) -> Counter[str]:
    """`count` GETs one after another on one keep-alive connection: "status body" counts."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    seen: Counter[str] = Counter()
    try:
        for _ in range(count):
            connection.request("GET", "/")
            response = connection.getresponse()
            seen[f"{response.status} {response.read().decode()}"] += 1
    finally:
        connection.close()
    return seen


def acks(log: str) -> list[float]:
    """Milliseconds each pool rollout transition took to be acknowledged by every worker, from
    turnout's log (the status does not carry them)."""
    return [float(ms) for ms in ACK.findall(log)]


def drains(changes: list[dict[str, Any]]) -> list[float]:
    """Seconds each in-place batch spent draining, from the history (newest first, as the
    admin API gives it): from its `draining` transition to its `replacing` one."""
    began: dict[Any, float] = {}
    seconds = []
    for change in reversed(changes):
        after = change["after"]
        if not isinstance(after, dict) or not str(change["action"]).startswith("rollout-"):
            continue
        if after.get("stage") == "draining":
            began.setdefault(after["batch"], epoch(change["time"]))
        elif after.get("stage") == "replacing" and after["batch"] in began:
            seconds.append(epoch(change["time"]) - began.pop(after["batch"]))
    return seconds


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
