"""What `python -m benchmarks roll` (benchmarks.roll_bench) says: its options on the command
line, whether each scenario ended as it must, the table and the JSON."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from benchmarks.roll_bench import AFTER_ABORT, WORKERS, Options, RollFigures
from benchmarks.roll_fleet import NEW, OLD

FLAGS = (
    ("slow-seconds", "how long the slow requests take"),
    ("slow-share", "share of slow requests in scenario a"),
    ("error-rate", "share of 500s the bad version answers"),
    ("min-healthy-time", "seconds each batch is held in scenario a"),
    ("connections", "scenario a's client connections"),
    ("rate", "scenario a's requests a second, in all"),
    ("judge-rate", "scenarios b and c's requests a second, in all"),
    ("min-requests", "the judge's minimum of requests"),
)
"""The command line's options: each sets the Options field of its name."""


def option_problems(options: Options) -> list[str]:
    wrong = []
    if not 0.1 <= options.slow_seconds <= 60:
        wrong.append("--slow-seconds must be 0.1 to 60")
    if not 0.1 <= options.min_healthy_time <= 600:
        wrong.append("--min-healthy-time must be 0.1 to 600")
    if not 0 <= options.slow_share <= 1:
        wrong.append("--slow-share must be 0 to 1")
    if not 0 < options.error_rate <= 1:
        wrong.append("--error-rate must be more than 0, at most 1")
    if min(options.connections, options.rate, options.judge_rate, options.min_requests) <= 0:
        wrong.append("--connections, --rate, --judge-rate and --min-requests must be positive")
    return wrong


def problems(figures: RollFigures) -> list[str]:
    """What did not end as it must, one line per scenario that did not; empty when all did."""
    a, b, c = figures.in_place, figures.reverted, figures.rollback
    out = []
    replaced = set(a.versions.values()) == {NEW}
    if (a.phase, a.client_errors, a.in_flight_at_sigterm) != ("promoted", 0, 0) or not replaced:
        out.append(
            f"a. in place: {a.phase}, {a.client_errors} client errors, "
            f"{a.in_flight_at_sigterm} requests cut by SIGTERM, versions {a.versions}"
        )
    # The bad version's own 500s are the only failures the clients may see.
    reverted = set(b.versions.values()) == {OLD}
    if (b.phase, b.cause, b.client_errors) != ("aborted", "errors", b.bad_errors) or not reverted:
        out.append(
            f"b. bad version: {b.phase} (cause {b.cause}), {b.client_errors} client errors "
            f"of which {b.bad_errors} from the bad version, versions {b.versions}"
        )
    if (c.phase, c.client_errors, c.after_on_old) != ("aborted", 0, AFTER_ABORT):
        out.append(
            f"c. surge rollback: {c.phase}, {c.client_errors} client errors, "
            f"{c.after_on_old}/{AFTER_ABORT} requests after the abort on the old version"
        )
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def text(figures: RollFigures) -> str:
    o, a, b, c = figures.options, figures.in_place, figures.reverted, figures.rollback
    revert = "-" if b.to_revert_s is None else f"{b.to_revert_s:.2f} s"
    drained = " / ".join(f"{s:.1f}" for s in a.drains) or "-"
    rows = [
        ("a. in place, 4 backends", a.phase, f"{a.client_errors} / {a.client_requests:,}"),
        (
            "b. bad version, reverted",
            f"{b.phase} ({b.cause})",
            f"{b.client_errors} / {b.client_requests:,}",
        ),
        (
            "c. surge, abort in hold",
            f"{c.phase} ({c.cause})",
            f"{c.client_errors} / {c.client_requests:,}",
        ),
    ]
    lines = [
        f"Pool rollouts end to end: turnout with {WORKERS} workers, backend programs on "
        f"loopback, checks every 0.2 s (2 in a row), min healthy time {o.min_healthy_time:g} s.",
        "",
        f"   {'scenario':<26} {'ended':<18} {'failed / requests':>18}",
        *(f"   {name:<26} {ended:<18} {failed:>18}" for name, ended, failed in rows),
        "",
        f"a. {o.slow_share:.0%} of requests take {o.slow_seconds:g} s ({a.slow_requests:,} "
        f"of them): every program replaced in {a.seconds:.1f} s, {a.client_errors} failed "
        f"requests, {a.in_flight_at_sigterm} requests in flight at a SIGTERM; drains "
        f"{drained} s; slowest transition acknowledged in {_ms(a.ack_ms_max)}",
        f"b. {o.error_rate:.0%} 500s: {b.bad_requests} requests hit the bad version "
        f"({b.bad_errors} of them 500s); its first answer to the revert's end {revert}",
        f"   {b.reason}",
        f"c. abort to every worker routing to the old backends {_ms(c.abort_ms)} (acknowledged "
        f"in {_ms(c.ack_ms)}); {c.errors_across} failed of {c.requests_across} requests within "
        f"1 s of it; next {AFTER_ABORT} requests: {c.after_on_old} on the old version",
    ]
    return "\n".join(lines)


def to_json(figures: RollFigures) -> dict[str, Any]:
    return {"workers": WORKERS, "problems": problems(figures), **asdict(figures)}
