"""Generating load: wrk when installed (and parsing its report), else the built-in generator.

Both produce a `LoadResult`. Errors are wrk's: socket errors (connect, read, write, timeout)
and responses with a status of 400 or more (wrk's "Non-2xx or 3xx responses").
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from benchmarks.processes import ChildError, Children
from benchmarks.scenarios import Scenario

Generator = Literal["wrk", "builtin"]

REQUEST_TIMEOUT_S = 2.0
"""wrk's default: a response slower than this counts as a timeout error."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    duration_s: float
    requests_per_s: float
    latency_ms: dict[str, float]
    """p50, p90, p99 and max."""
    socket_errors: dict[str, int] = field(default_factory=dict)
    """connect, read, write and timeout."""
    http_errors: int = 0

    @property
    def errors(self) -> int:
        return sum(self.socket_errors.values()) + self.http_errors

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "errors": self.errors}


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TIME = r"([\d.]+)(us|ms|s|m|h)"


def _ms(number: str, unit: str) -> float:
    return float(number) * _UNITS_MS[unit]


def parse_wrk(text: str) -> LoadResult:
    """Parse the report of `wrk --latency`; ValueError names what is missing."""

    def find(pattern: str, what: str) -> re.Match[str]:
        match = re.search(pattern, text, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output has no {what}:\n{text}")
        return match

    latency = find(rf"^\s+Latency\s+{_TIME}\s+{_TIME}\s+{_TIME}", "latency statistics")
    percentiles = {
        f"p{match.group(1)}": _ms(match.group(2), match.group(3))
        for match in re.finditer(rf"^\s+(50|90|99)%\s+{_TIME}", text, re.MULTILINE)
    }
    if len(percentiles) != 3:
        raise ValueError(f"wrk output has no latency distribution (run with --latency):\n{text}")
    total = find(r"^\s+(\d+) requests in ([\d.]+)(us|ms|s|m|h)", "request count")
    rate = find(r"^Requests/sec:\s+([\d.]+)", "Requests/sec")
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    status = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return LoadResult(
        requests=int(total.group(1)),
        duration_s=_ms(total.group(2), total.group(3)) / 1000,
        requests_per_s=float(rate.group(1)),
        latency_ms={**percentiles, "max": _ms(latency.group(5), latency.group(6))},
        socket_errors=dict(
            zip(
                ("connect", "read", "write", "timeout"),
                (int(n) for n in socket.groups()) if socket else (0, 0, 0, 0),
                strict=True,
            )
        ),
        http_errors=int(status.group(1)) if status else 0,
    )


def wrk_command(
    wrk: str, url: str, scenario: Scenario, duration: float, scripts: Path
) -> list[str]:
    argv = [wrk, "-t1", f"-c{scenario.connections}", f"-d{max(1, round(duration))}s", "--latency"]
    if scenario.close:
        argv += ["-H", "Connection: close"]
    for name, value in scenario.headers:
        argv += ["-H", f"{name}: {value}"]
    if scenario.method != "GET" or scenario.body_bytes:
        script = scripts / f"{scenario.name}.lua"
        script.write_text(
            f'wrk.method = "{scenario.method}"\n'
            f'wrk.body = string.rep("x", {scenario.body_bytes})\n'
            'wrk.headers["Content-Type"] = "application/octet-stream"\n'
        )
        argv += ["-s", str(script)]
    return [*argv, url + scenario.path]


def builtin_command(url: str, scenario: Scenario, duration: float) -> list[str]:
    argv = [sys.executable, "-m", "benchmarks.loadgen", "--url", url + scenario.path]
    argv += ["--connections", str(scenario.connections), "--duration", str(duration)]
    argv += ["--method", scenario.method, "--body-bytes", str(scenario.body_bytes)]
    argv += ["--timeout", str(REQUEST_TIMEOUT_S)]
    for name, value in scenario.headers:
        argv += ["--header", f"{name}: {value}"]
    return [*argv, "--close"] if scenario.close else argv


def run_load(
    children: Children,
    generator: Generator,
    wrk: str | None,
    url: str,
    scenario: Scenario,
    duration: float,
    scripts: Path,
    cpus: frozenset[int] | None,
    label: str,
    tick: Callable[[], None] = lambda: None,
) -> LoadResult:
    """Run `scenario` against `url` for `duration` seconds; `label` names the log file."""
    if generator == "wrk":
        assert wrk is not None
        argv = wrk_command(wrk, url, scenario, duration, scripts)
    else:
        argv = builtin_command(url, scenario, duration)
    status, output = children.run(label, argv, cpus, timeout=duration + 30, tick=tick)
    if status != 0:
        raise ChildError(f"{generator} failed with status {status}:\n{output.strip()}")
    if generator == "wrk":
        try:
            return parse_wrk(output)
        except ValueError as error:
            raise ChildError(f"cannot read wrk's report: {error}") from error
    # The generator's report is its last line; anything before it is a warning worth keeping.
    report = json.loads(output.strip().splitlines()[-1])
    return LoadResult(**report)
