"""[pools.NAME.rollout]: a pool's rolling replacement defaults, checked like every section, over
the spec, and what the control service starts a pool rollout from (a real ControlPlane over a
real configuration file, not started: nothing here starts a rollout)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import TURNOUT
from proxy.config import ConfigError, load_config
from proxy.config_rollout import JudgeConfig, PoolRolloutConfig
from proxy.control import ControlPlane, ControlService
from proxy.control.rolling.defaults import apply_pool_defaults, pool_rollout_config
from proxy.control.rolling.model import RollSpec
from proxy.control.rollout.model import JudgeSettings
from router import SpecError

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
[pools.blue]
backends = [
  { name = "blue-1", url = "http://127.0.0.1:9001" },
  { name = "blue-2", url = "http://127.0.0.1:9002" },
]
[pools.green]
backends = [{ name = "green-1", url = "http://127.0.0.1:9011" }]
[routes.web]
weights = { blue = 100 }
"""

FULL = """
[pools.blue.rollout]
batch = 2
drain_timeout = 20
healthy_deadline = 120
min_healthy_time = 15.5
keep_old = 0
auto_revert = false
hook = ["./deploy.sh", "--pool", "blue"]
hook_timeout = 90
webhook = "https://hooks.example/turnout?token=abc"
[pools.blue.rollout.judge]
alpha = 0.05
tolerance = 2
latency_tolerance = 3
latency_quantile = 0.95
min_requests = 100
"""

BASE = RollSpec("in-place")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "turnout.toml"
    path.write_text(text)
    return path


def test_every_option_replaces_the_specs_default(tmp_path: Path) -> None:
    settings, _ = load_config(write(tmp_path, MINIMAL + FULL))
    spec = apply_pool_defaults(BASE, pool_rollout_config(settings, "blue"))
    assert spec == RollSpec(
        mode="in-place",
        batch=2,
        drain_timeout=20.0,
        healthy_deadline=120.0,
        min_healthy_time=15.5,
        keep_old=0.0,
        auto_revert=False,
        hook_command=("./deploy.sh", "--pool", "blue"),
        hook_timeout=90.0,
        webhook="https://hooks.example/turnout?token=abc",
        judge=JudgeSettings(
            alpha=0.05,
            tolerance=2.0,
            latency_tolerance=3.0,
            latency_quantile=0.95,
            min_requests=100,
        ),
    )


BY_URL = replace(BASE, hook_url="https://deploy.example/a")
BY_COMMAND = replace(BASE, hook_command=("./old.sh",))


@pytest.mark.parametrize(
    ("base", "section", "expected"),
    [
        pytest.param(BASE, None, BASE, id="no-section"),
        pytest.param(BASE, {}, BASE, id="empty-section"),
        pytest.param(BASE, {"batch": 3}, replace(BASE, batch=3), id="one-field-the-rest-kept"),
        pytest.param(
            BASE,
            {"judge": {"min_requests": 50}},
            replace(BASE, judge=JudgeSettings(min_requests=50)),
            id="judge-merged-field-by-field",
        ),
        pytest.param(
            BY_URL,
            {"hook": ["./deploy.sh"]},
            replace(BASE, hook_command=("./deploy.sh",)),
            id="a-command-replaces-a-url",
        ),
        pytest.param(
            BY_COMMAND,
            {"hook_url": "http://deploy.example/b"},
            replace(BASE, hook_url="http://deploy.example/b"),
            id="a-url-replaces-a-command",
        ),
        pytest.param(
            BY_COMMAND,
            {"hook_timeout": 5},
            replace(BY_COMMAND, hook_timeout=5.0),
            id="a-timeout-keeps-the-hook",
        ),
        pytest.param(
            RollSpec("surge", new_backends=(("blue-new-1", "http://127.0.0.1:9101"),)),
            {"keep_old": 60, "batch": 2},
            RollSpec(
                "surge",
                batch=2,
                keep_old=60.0,
                new_backends=(("blue-new-1", "http://127.0.0.1:9101"),),
            ),
            id="mode-and-new-backends-are-the-starts",
        ),
    ],
)
def test_only_what_the_section_sets_is_replaced(
    base: RollSpec, section: dict[str, object] | None, expected: RollSpec
) -> None:
    config = None if section is None else PoolRolloutConfig.model_validate(section)
    assert apply_pool_defaults(base, config) == expected


def test_the_section_has_the_specs_options() -> None:
    # proxy.config_rollout may not import the model (an import cycle): it restates its options.
    # What a start alone says (the mode, the new backends) is not among them.
    options = set(RollSpec.__dataclass_fields__) - {"mode", "new_backends", "hook_command"}
    assert set(PoolRolloutConfig.model_fields) == options | {"hook"}
    assert set(JudgeConfig.model_fields) == set(JudgeSettings.__dataclass_fields__)


def test_a_pool_without_the_section_or_an_unknown_pool_has_none(tmp_path: Path) -> None:
    settings, _ = load_config(write(tmp_path, MINIMAL + FULL))
    assert pool_rollout_config(settings, "green") is None
    assert pool_rollout_config(settings, "nowhere") is None


def test_the_environment_reaches_the_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURNOUT_POOLS__BLUE__ROLLOUT__BATCH", "3")
    monkeypatch.setenv("TURNOUT_POOLS__BLUE__ROLLOUT__JUDGE__ALPHA", "0.02")
    settings, _ = load_config(write(tmp_path, MINIMAL))
    spec = apply_pool_defaults(BASE, pool_rollout_config(settings, "blue"))
    assert (spec.batch, spec.judge.alpha) == (3, 0.02)


BLUE = "pools.blue.rollout"


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("batch = 0", f"{BLUE}.batch"),
        ("batch = 1.5", f"{BLUE}.batch"),
        ("drain_timeout = 0", f"{BLUE}.drain_timeout"),
        ("healthy_deadline = -1", f"{BLUE}.healthy_deadline"),
        ("min_healthy_time = 'long'", f"{BLUE}.min_healthy_time"),
        ("min_healthy_time = 86401", f"{BLUE}.min_healthy_time"),
        ("keep_old = -1", f"{BLUE}.keep_old"),
        ("keep_old = inf", f"{BLUE}.keep_old"),
        ("hook_timeout = nan", f"{BLUE}.hook_timeout"),
        ("auto_revert = 'maybe'", f"{BLUE}.auto_revert"),
        ("hook = './deploy.sh'", f"{BLUE}.hook"),  # an argv list, never a shell line
        ("hook = []", f"{BLUE}.hook"),
        ("hook = ['']", f"{BLUE}.hook"),
        ("hook = ['./deploy.sh', \"a\\u0000b\"]", f"{BLUE}.hook"),
        ("hook = ['./deploy.sh']\nhook_url = 'https://deploy.example/'", BLUE),
        ("hook_url = 'ftp://deploy.example/'", f"{BLUE}.hook_url"),
        ("webhook = 'https:///no-host'", f"{BLUE}.webhook"),
        ("webhook = 'http://hooks.example:99999/'", f"{BLUE}.webhook"),
        ("judge = { alpha = 0.6 }", f"{BLUE}.judge.alpha"),
        ("judge = { min_requests = 0 }", f"{BLUE}.judge.min_requests"),
        ("judge = { beta = 1 }", f"{BLUE}.judge.beta"),
        ("mode = 'surge'", f"{BLUE}.mode"),  # a start's choice, never the file's
        ("new_backends = []", f"{BLUE}.new_backends"),
        ("batchz = 2", f"{BLUE}.batchz"),
    ],
)
def test_invalid_options_name_the_field(tmp_path: Path, section: str, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, MINIMAL + f"[{BLUE}]\n" + section + "\n"))
    problems = caught.value.problems
    assert any(re.match(re.escape(field) + r"[: ]", problem) for problem in problems), problems


@pytest.mark.parametrize("option", ["hook_url", "webhook"])
def test_a_urls_secrets_are_not_repeated_in_the_error(tmp_path: Path, option: str) -> None:
    text = MINIMAL + f"[{BLUE}]\n{option} = 'ftp://user:s3cret@hooks.example/?key=k3y'\n"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert f"{BLUE}.{option}" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert "k3y" not in str(caught.value)


def test_check_config_exits_non_zero_naming_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + f"[{BLUE}]\nbatch = 0\n")
    result = subprocess.run(
        [TURNOUT, "check-config", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert f"{BLUE}.batch: Input should be greater than or equal to 1" in result.stderr


def test_the_examples_commented_section_is_valid(tmp_path: Path) -> None:
    # The example documents the section commented out: uncommented, it must load and set what
    # it shows (hook_url stays a comment: it is the alternative to hook).
    example = (ROOT / "config.example.toml").read_text()
    block = re.search(r"^# \[pools\.blue\.rollout\]\n(?:#.*\n)+", example, re.M)
    assert block is not None, "config.example.toml documents [pools.blue.rollout]"
    text = "".join(
        line.removeprefix("#").removeprefix(" ") + "\n" for line in block[0].splitlines()
    )
    assert "# hook_url = " in text
    settings, _ = load_config(write(tmp_path, MINIMAL + text))
    config = pool_rollout_config(settings, "blue")
    assert config is not None
    shown = config.model_dump(exclude_none=True)
    assert set(shown) == set(PoolRolloutConfig.model_fields) - {"hook_url"}
    assert set(shown["judge"]) == set(JudgeConfig.model_fields)
    # The values shown are the built-in defaults, as the comment says.
    spec = apply_pool_defaults(BASE, config)
    assert replace(spec, hook_command=(), webhook=None) == BASE


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ControlService]:
    path = write(tmp_path, MINIMAL + FULL)
    settings, snapshot = load_config(path)
    plane = ControlPlane(path, settings, snapshot)
    try:
        yield ControlService(plane)
    finally:
        await plane.health.stop()


async def test_the_service_starts_from_the_files_defaults(
    service: ControlService, tmp_path: Path
) -> None:
    spec = service.pool_rollout_defaults("blue")
    assert (spec.mode, spec.batch, spec.hook_command) == (
        "in-place",
        2,
        ("./deploy.sh", "--pool", "blue"),
    )
    assert spec.judge.min_requests == 100
    assert service.pool_rollout_defaults("green") == BASE

    # A reload that changes only the section changes what a start begins from.
    path = tmp_path / "turnout.toml"
    path.write_text(MINIMAL + FULL.replace("batch = 2", "batch = 1"))
    await service.reload(actor="ops")
    assert service.pool_rollout_defaults("blue").batch == 1


async def test_a_start_is_checked_with_the_pool(service: ControlService) -> None:
    # The file's defaults are valid, but these pools run no active checks: refused, nothing
    # started.
    with pytest.raises(SpecError) as raised:
        await service.start_pool_rollout(
            "blue", replace(service.pool_rollout_defaults("blue"), batch=0), actor="ops"
        )
    assert [problem.field for problem in raised.value.problems] == ["batch", "pool"]
    assert service.pool_rollouts() == ()
