"""The judge over many simulated rollouts (seeded, pure, a few seconds), and `turnout bench judge`.

The rollouts here report in bigger batches than the benchmark's (fewer reports, same requests)
to stay fast; the guarantee does not depend on how often the evidence is looked at."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from test_benchmarks import bench

from benchmarks.judge_sim import (
    IDENTICAL,
    Case,
    binomial,
    flagger_fails,
    flagger_rolls_back,
    simulate,
)
from proxy.control.rollout.judge import LATENCY_WARMUP
from proxy.control.rollout.model import JudgeSettings

ALPHA = JudgeSettings().alpha


def test_an_identical_canary_is_aborted_in_at_most_alpha_of_rollouts() -> None:
    rollouts = 1000
    case = Case(IDENTICAL.name, 0.01, 0.01, canary_requests=2_000)
    result = simulate(case, rollouts, batch=1000)
    # Ville: at most alpha of them, plus three binomial standard deviations for the sample.
    slack = 3 * math.sqrt(rollouts * ALPHA * (1 - ALPHA))
    assert len(result.detections) <= rollouts * ALPHA + slack, result.by_test


def test_a_broken_canary_is_aborted_within_20_canary_requests() -> None:
    # About one canary request a report, so the figure is not a report's worth.
    result = simulate(Case("broken", 0.01, 1.0, canary_requests=200), 300, batch=20)
    assert result.share == 1.0
    assert result.detections[-1] <= 20, result.detections[-10:]
    assert result.by_test == {"errors": 300}


def test_1_to_2_percent_at_a_5_percent_split_is_found_in_about_2000_canary_requests() -> None:
    result = simulate(Case("1 → 2", 0.01, 0.02), 200, batch=400, latency=False)
    assert result.share >= 0.95
    median = result.quantile(0.5)
    assert median is not None
    assert 800 <= median <= 2_500


def test_a_2x_slower_canary_is_found_by_the_latency_test() -> None:
    result = simulate(Case("slower", 0.01, 0.01, slower=2.0, canary_requests=1_000), 100)
    assert result.share == 1.0
    assert result.by_test == {"latency": 100}
    median = result.quantile(0.5)
    assert median is not None
    # The first LATENCY_WARMUP canary requests are not judged for latency; then a few dozen.
    assert LATENCY_WARMUP < median <= LATENCY_WARMUP + 100


@pytest.mark.parametrize(("n", "p"), [(200, 0.01), (200, 0.05), (20, 0.5), (50, 0.97), (10, 1.0)])
def test_binomial_draws_have_the_right_mean(n: int, p: float) -> None:
    rng = random.Random(1)
    draws = [binomial(rng, n, p) for _ in range(4000)]
    assert all(0 <= d <= n for d in draws)
    sd = math.sqrt(n * p * (1 - p) / len(draws))
    assert abs(sum(draws) / len(draws) - n * p) <= 4 * sd + 1e-9


def test_flagger_arithmetic() -> None:
    # An identical canary at 1 % errors fails min 99 % in 45 % of 60-request intervals, 35 % of
    # 300-request ones (the figures).
    assert flagger_fails(60, 0.01) == pytest.approx(1 - 0.99**60)
    assert flagger_fails(300, 0.01) == pytest.approx(0.353, abs=0.001)
    # 5 failed checks before 5 passed ones: at least 5 failures among 9 checks.
    assert flagger_rolls_back(0.5, 5, 5) == pytest.approx(0.5)
    assert flagger_rolls_back(1.0, 5, 5) == 1.0


def test_bench_judge_prints_and_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "judge.json"
    result = bench("judge", "--rollouts", "3", "--json", str(out))
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert figures["false_aborts"]["rollouts"] == 3
    assert [case["case"] for case in figures["cases"]][:5] == [
        "errors 1 % → 2 %",
        "errors 0.1 % → 1.1 %",
        "100 %-broken canary",
        "100 %-broken, reports every 0.1 s",
        "2x slower canary",
    ]
    broken = figures["cases"][2]
    assert broken["detected"] == 3
    assert broken["median"] <= 20
    assert len(figures["flagger"]) == 4
    assert "False aborts" in result.stdout
    assert "100 %-broken canary" in result.stdout
    assert "Flagger" in result.stdout


def test_bench_judge_refuses_no_rollouts() -> None:
    result = bench("judge", "--rollouts", "0")
    assert result.returncode == 2
    assert "at least 1" in result.stderr
