"""`turnout bench roll`: pool rollouts end to end, run with short timings (0.5-s slow requests,
0.3-s holds), and its verdict on scenarios that did not end as they must."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from test_benchmarks import bench

from benchmarks.roll_bench import (
    AFTER_ABORT,
    InPlace,
    Options,
    Reverted,
    Rollback,
    RollFigures,
)
from benchmarks.roll_report import option_problems, problems

NAMES = [f"blue-{i}" for i in range(1, 5)]


def test_the_three_scenarios_end_as_they_must(tmp_path: Path) -> None:
    out = tmp_path / "roll.json"
    result = bench(
        *("roll", "--slow-seconds", "0.5", "--min-healthy-time", "0.3", "--json", str(out))
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    a, b, c = figures["in_place"], figures["reverted"], figures["rollback"]
    assert figures["problems"] == []

    assert a["phase"] == "promoted", a
    assert a["client_errors"] == 0
    assert a["in_flight_at_sigterm"] == 0
    assert a["slow_requests"] > 0
    assert a["versions"] == dict.fromkeys(NAMES, "v2")
    assert len(a["drains"]) == 4
    assert all(0 <= seconds < 5 for seconds in a["drains"]), a["drains"]

    assert (b["phase"], b["cause"]) == ("aborted", "errors"), b
    assert b["reason"].endswith("every replaced backend reverted"), b["reason"]
    assert b["bad_requests"] >= b["bad_errors"] > 0
    assert b["client_errors"] == b["bad_errors"]
    assert 0 < b["to_revert_s"] < 10, b
    assert b["versions"] == dict.fromkeys(NAMES, "v1")

    assert (c["phase"], c["cause"]) == ("aborted", "manual"), c
    assert (c["client_errors"], c["errors_across"]) == (0, 0)
    assert c["requests_across"] > 0
    assert c["after_on_old"] == AFTER_ABORT
    assert 0 < c["abort_ms"] < 1000, c
    assert c["ack_ms"] is not None

    assert "a. in place, 4 backends    promoted" in result.stdout
    assert "b. bad version, reverted   aborted (errors)" in result.stdout
    assert "c. surge, abort in hold    aborted (manual)" in result.stdout


def test_a_scenario_that_does_not_end_as_it_must_is_named() -> None:
    good = RollFigures(
        Options(),
        InPlace("promoted", 9.0, 900, 90, 0, (1.0,) * 4, 0, dict.fromkeys(NAMES, "v2"), 3.0),
        Reverted("aborted", "errors", "…", 30, 6, 3000, 6, 1.5, dict.fromkeys(NAMES, "v1")),
        Rollback("aborted", "manual", 5.0, 2.0, 400, 0, 3000, 0, AFTER_ABORT),
    )
    assert problems(good) == []
    failed_request = replace(good, in_place=replace(good.in_place, client_errors=1))
    cut = replace(good, in_place=replace(good.in_place, in_flight_at_sigterm=2))
    not_caught = replace(good, reverted=replace(good.reverted, phase="promoted"))
    other_failures = replace(good, reverted=replace(good.reverted, client_errors=7))
    not_reverted = replace(
        good,
        reverted=replace(good.reverted, versions={**dict.fromkeys(NAMES, "v1"), NAMES[0]: "v2"}),
    )
    new_after_abort = replace(good, rollback=replace(good.rollback, after_on_old=AFTER_ABORT - 1))
    for broken, scenario in [
        (failed_request, "a."),
        (cut, "a."),
        (not_caught, "b."),
        (other_failures, "b."),
        (not_reverted, "b."),
        (new_after_abort, "c."),
    ]:
        [problem] = problems(broken)
        assert problem.startswith(scenario), problem


def test_options_out_of_range_are_refused() -> None:
    assert option_problems(Options()) == []
    assert option_problems(Options(slow_seconds=0)) == ["--slow-seconds must be 0.1 to 60"]
    assert option_problems(Options(error_rate=0)) == ["--error-rate must be more than 0, at most 1"]
    result = bench("roll", "--rate", "0")
    assert result.returncode == 2
    assert "must be positive" in result.stderr
