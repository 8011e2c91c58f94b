"""[routes.NAME.rollout]: a route's rollout defaults, checked like every section, over the spec."""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import get_args

import pytest

from helpers import TURNOUT
from proxy.config import ConfigError, load_config
from proxy.config_rollout import MAX_STEP_TIME, STEP_TIME, JudgeConfig, RolloutConfig
from proxy.control.rollout.defaults import apply_defaults, route_rollout_config
from proxy.control.rollout.model import JudgeSettings, OnInconclusive, Precheck, RolloutSpec

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
[pools.stable]
backends = [{ name = "s1", url = "http://127.0.0.1:9001" }]
[pools.canary]
backends = [{ name = "c1", url = "http://127.0.0.1:9002" }]
[routes.web]
weights = { stable = 95, canary = 5 }
"""

FULL = """
[routes.web.rollout]
steps = [10, 50, 100]
step_time = 30
max_step_time = 900
on_inconclusive = "abort"
no_eligible_timeout = 20
watch = 120
webhook = "https://hooks.example/turnout?token=abc"
prechecks = [
  { path = "/healthz", body_contains = "ok" },
  { path = "/warm", method = "POST", headers = { Host = "shop.example", X-Check = "1" }, status = 204, timeout = 2 },
]
[routes.web.rollout.judge]
alpha = 0.05
tolerance = 2
latency_tolerance = 3
latency_quantile = 0.95
min_requests = 100
"""

BASE = RolloutSpec(strategy="canary", canary="canary")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "turnout.toml"
    path.write_text(text)
    return path


def test_every_option_replaces_the_specs_default(tmp_path: Path) -> None:
    settings, _ = load_config(write(tmp_path, MINIMAL + FULL))
    spec = apply_defaults(BASE, route_rollout_config(settings, "web"))
    assert spec == RolloutSpec(
        strategy="canary",
        canary="canary",
        steps=(10, 50, 100),
        step_time=30.0,
        max_step_time=900.0,
        on_inconclusive="abort",
        no_eligible_timeout=20.0,
        watch=120.0,
        webhook="https://hooks.example/turnout?token=abc",
        prechecks=(
            Precheck(path="/healthz", body_contains="ok"),
            Precheck(
                path="/warm",
                method="POST",
                headers=(("Host", "shop.example"), ("X-Check", "1")),
                status=204,
                timeout=2.0,
            ),
        ),
        judge=JudgeSettings(
            alpha=0.05,
            tolerance=2.0,
            latency_tolerance=3.0,
            latency_quantile=0.95,
            min_requests=100,
        ),
    )


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        pytest.param(None, BASE, id="no-section"),
        pytest.param({}, BASE, id="empty-section"),
        pytest.param(
            {"step_time": 10}, replace(BASE, step_time=10.0), id="one-field-the-rest-kept"
        ),
        pytest.param(
            {"judge": {"alpha": 0.05}},
            replace(BASE, judge=replace(BASE.judge, alpha=0.05)),
            id="judge-merged-field-by-field",
        ),
        pytest.param({"prechecks": []}, replace(BASE, prechecks=()), id="an-empty-list-is-a-value"),
    ],
)
def test_only_what_the_section_sets_is_replaced(
    section: dict[str, object] | None, expected: RolloutSpec
) -> None:
    config = None if section is None else RolloutConfig.model_validate(section)
    assert apply_defaults(BASE, config) == expected


def test_the_base_keeps_what_no_section_sets() -> None:
    # Strategy and pools come from the start (or the route), never from the file.
    base = RolloutSpec(strategy="blue-green", to="green", judge=JudgeSettings(tolerance=4))
    config = RolloutConfig.model_validate({"watch": 60, "judge": {"min_requests": 50}})
    assert apply_defaults(base, config) == replace(
        base, watch=60.0, judge=JudgeSettings(tolerance=4, min_requests=50)
    )


def test_what_the_section_restates_matches_the_model() -> None:
    # proxy.config_rollout may not import the model (an import cycle): it restates these.
    assert (BASE.step_time, BASE.max_step_time) == (STEP_TIME, MAX_STEP_TIME)
    field = RolloutConfig.model_fields["on_inconclusive"].annotation
    assert set(get_args(get_args(field)[0])) == set(get_args(OnInconclusive))
    assert set(JudgeConfig.model_fields) == set(JudgeSettings.__dataclass_fields__)
    specs = set(RolloutSpec.__dataclass_fields__) - {"strategy", "canary", "to"}
    assert set(RolloutConfig.model_fields) == specs


def test_a_route_without_the_section_or_an_unknown_route_has_none(tmp_path: Path) -> None:
    settings, _ = load_config(write(tmp_path, MINIMAL))
    assert route_rollout_config(settings, "web") is None
    assert route_rollout_config(settings, "nowhere") is None


def test_the_environment_reaches_the_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURNOUT_ROUTES__WEB__ROLLOUT__STEP_TIME", "45")
    monkeypatch.setenv("TURNOUT_ROUTES__WEB__ROLLOUT__JUDGE__ALPHA", "0.02")
    settings, _ = load_config(write(tmp_path, MINIMAL))
    spec = apply_defaults(BASE, route_rollout_config(settings, "web"))
    assert (spec.step_time, spec.judge.alpha) == (45.0, 0.02)


WEB = "routes.web.rollout"


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("steps = [25, 5]", f"{WEB}.steps"),
        ("steps = [5, 5, 100]", f"{WEB}.steps"),
        ("steps = []", f"{WEB}.steps"),
        ("steps = [0, 100]", f"{WEB}.steps[0]"),
        ("steps = [50, 101]", f"{WEB}.steps[1]"),
        ("step_time = 0", f"{WEB}.step_time"),
        ("max_step_time = -1", f"{WEB}.max_step_time"),
        ("step_time = 900", WEB),  # longer than the default max_step_time
        ("on_inconclusive = 'retry'", f"{WEB}.on_inconclusive"),
        ("no_eligible_timeout = 0", f"{WEB}.no_eligible_timeout"),
        ("watch = 'long'", f"{WEB}.watch"),
        ("webhook = 'ftp://hooks.example/x'", f"{WEB}.webhook"),
        ("webhook = 'https:///no-host'", f"{WEB}.webhook"),
        ("webhook = 'http://hooks.example:99999/'", f"{WEB}.webhook"),
        ("stepz = [5]", f"{WEB}.stepz"),
        ("prechecks = [{ path = 'healthz' }]", f"{WEB}.prechecks[0].path"),
        ("prechecks = [{ path = '/', method = 'get' }]", f"{WEB}.prechecks[0].method"),
        ("prechecks = [{ path = '/', status = 99 }]", f"{WEB}.prechecks[0].status"),
        ("prechecks = [{ path = '/', timeout = 0 }]", f"{WEB}.prechecks[0].timeout"),
        ("prechecks = [{ path = '/', expect = 'ok' }]", f"{WEB}.prechecks[0].expect"),
        ("prechecks = [{ path = '/', headers = { 'a b' = '1' } }]", f"{WEB}.prechecks[0].headers"),
        (
            "prechecks = [{ path = '/', headers = { X = \"a\\r\\nb\" } }]",
            f"{WEB}.prechecks[0].headers",
        ),
        ("prechecks = [{ method = 'GET' }]", f"{WEB}.prechecks[0].path"),
        ("judge = { alpha = 0 }", f"{WEB}.judge.alpha"),
        ("judge = { alpha = 0.6 }", f"{WEB}.judge.alpha"),
        ("judge = { tolerance = 0.9 }", f"{WEB}.judge.tolerance"),
        ("judge = { latency_tolerance = 0.5 }", f"{WEB}.judge.latency_tolerance"),
        ("judge = { latency_quantile = 0.5 }", f"{WEB}.judge.latency_quantile"),
        ("judge = { latency_quantile = 1 }", f"{WEB}.judge.latency_quantile"),
        ("judge = { min_requests = 0 }", f"{WEB}.judge.min_requests"),
        ("judge = { beta = 1 }", f"{WEB}.judge.beta"),
    ],
)
def test_invalid_rollout_options_name_the_field(tmp_path: Path, section: str, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, MINIMAL + "[routes.web.rollout]\n" + section + "\n"))
    problems = caught.value.problems
    assert any(re.match(re.escape(field) + r"[: ]", problem) for problem in problems), problems


def test_a_webhooks_secrets_are_not_repeated_in_the_error(tmp_path: Path) -> None:
    text = MINIMAL + "[routes.web.rollout]\nwebhook = 'ftp://user:s3cret@hooks.example/?key=k3y'\n"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert "s3cret" not in str(caught.value)
    assert "k3y" not in str(caught.value)


def test_check_config_exits_non_zero_naming_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[routes.web.rollout]\njudge = { alpha = 0.9 }\n")
    result = subprocess.run(
        [TURNOUT, "check-config", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "routes.web.rollout.judge.alpha: Input should be less than or equal to 0.5" in (
        result.stderr
    )


def test_the_examples_commented_section_is_valid(tmp_path: Path) -> None:
    # The example documents the section commented out (a rollout is started, not configured):
    # uncommented, it must load and set what it shows.
    example = (ROOT / "config.example.toml").read_text()
    block = re.search(r"^# \[routes\.web\.rollout\]\n(?:#.*\n)+", example, re.M)
    assert block is not None, "config.example.toml documents [routes.web.rollout]"
    text = "".join(
        line.removeprefix("#").removeprefix(" ") + "\n" for line in block[0].splitlines()
    )
    settings, _ = load_config(write(tmp_path, MINIMAL + text))
    config = route_rollout_config(settings, "web")
    assert config is not None
    shown = config.model_dump(exclude_none=True)
    assert set(shown) == set(RolloutConfig.model_fields), "every option is shown"
    assert set(shown["judge"]) == set(JudgeConfig.model_fields)
