"""`turnout bench rollout` (rollouts end to end) and `turnout bench --rollout` (the main
benchmark with a rollout running)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_benchmarks import bench

from benchmarks.backend import Breakage
from benchmarks.steady_rollout import MIN_REQUESTS, SteadyRolloutError, rollout_request


def test_the_three_scenarios_end_as_they_must(tmp_path: Path) -> None:
    out = tmp_path / "rollout.json"
    result = bench(*("rollout", "--step-time", "0.5", "--min-requests", "20", "--json", str(out)))
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    healthy, failing, idle = figures["healthy"], figures["failing"], figures["idle"]

    assert healthy["phase"] == "promoted", healthy
    assert healthy["client_errors"] == 0, healthy
    assert [step["weight"] for step in healthy["steps"]] == [5, 25, 50, 100]
    # Each step held its time and the canary had its minimum of requests in it.
    assert all(step["seconds"] >= 0.45 for step in healthy["steps"]), healthy
    assert all(step["canary_requests"] >= 20 for step in healthy["steps"]), healthy

    assert (failing["phase"], failing["cause"]) == ("aborted", "errors"), failing
    assert failing["reason"].startswith("aborted at step 2/4 (25 %)"), failing
    assert 0 < failing["detection_ms"] < 5000, failing
    assert failing["canary_failures"] > 0
    assert failing["ack_ms"] is not None
    assert failing["ack_ms"] < 100, failing

    assert idle["phase"] == idle["phase_later"] == "paused", idle
    assert idle["cause"] is None
    assert "inconclusive" in idle["reason"], idle
    assert idle["seconds"] >= idle["max_step_time"]

    assert "a. healthy canary: promoted" in result.stdout
    assert "b. canary failing from 25 %: aborted (cause errors)" in result.stdout
    assert "c. canary with no traffic: paused" in result.stdout


@pytest.mark.parametrize(
    ("weights", "steps"),
    [
        ((("stable", 50), ("canary", 50)), [50, 100]),
        ((("stable", 90), ("canary", 10)), [10, 100]),
        ((("blue", 3), ("green", 1)), [25, 100]),
    ],
)
def test_the_running_rollout_keeps_the_configured_split(
    weights: tuple[tuple[str, int], ...], steps: list[int]
) -> None:
    request = rollout_request(weights)
    assert request["canary"] == weights[1][0]
    assert request["steps"] == steps
    # Held far longer than any run, never judged done: it stays at its first step.
    assert request["stepTime"] >= 86_400
    assert request["maxStepTime"] >= request["stepTime"]
    assert request["judge"] == {
        "minRequests": MIN_REQUESTS,
        "tolerance": 100,
        "latencyTolerance": 100,
        "alpha": 1e-12,
        "latencyQuantile": 0.999,
    }


@pytest.mark.parametrize(
    "weights",
    [
        (("stable", 1), ("canary", 2)),  # 66.7 %: not a whole percentage
        (("stable", 100), ("canary", 0)),  # the canary would get traffic it has not now
        (("stable", 0), ("canary", 100)),
        (("stable", 50), ("canary", 25), ("extra", 25)),
    ],
)
def test_a_split_a_rollout_cannot_keep_is_refused(weights: tuple[tuple[str, int], ...]) -> None:
    with pytest.raises(SteadyRolloutError):
        rollout_request(weights)


def test_rollout_flag_refuses_weights_it_cannot_keep() -> None:
    result = bench("--rollout", "--weights", "stable=1,canary=2")
    assert result.returncode == 2
    assert "whole percentage" in result.stderr


def test_rollout_flag_measures_with_a_rollout_running(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    result = bench(
        *("--scenario", "small", "--targets", "turnout", "--duration", "1", "--warmup", "0"),
        *("--rollout", "--json", str(out), "--html", str(tmp_path / "result.html")),
    )
    # The runner checks after each measurement that the rollout is still progressing.
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["parameters"]["rollout"] is True
    (turnout,) = (m for m in data["measurements"] if m["target"] == "turnout")
    assert turnout["errors"] == 0
    # The rollout's first step is the configured 50/50 split.
    assert abs(turnout["split"]["canary"]["deviation_pp"]) < 5, turnout["split"]
    assert "canary rollout" in result.stdout


def test_the_backend_fails_when_told_and_forgets_when_healed() -> None:
    breakage = Breakage()
    assert json.loads(breakage.control(b""))["failing"] is False
    assert json.loads(breakage.control(b"on"))["failing"] is True
    assert b" 500 " in breakage.fail(close=False)
    breakage.fail(close=True)
    state = json.loads(breakage.control(b"off"))
    assert (state["failing"], state["failed"]) == (False, 2)
    assert state["first_failure"] is not None
    assert json.loads(breakage.control(b""))["failed"] == 0
