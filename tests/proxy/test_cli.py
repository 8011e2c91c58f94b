"""The `turnout` command, run as a user runs it: a subprocess."""

from __future__ import annotations

import contextlib
import importlib.metadata
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import TURNOUT, config, free_port, toml, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


def turnout(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TURNOUT, *args], capture_output=True, text=True, timeout=30, cwd=cwd, check=False
    )


def test_version_names_the_installed_package() -> None:
    result = turnout("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"turnout {importlib.metadata.version('turnout')}\n"


@pytest.mark.parametrize(
    ("admin", "problem"),
    [
        pytest.param(
            {"host": "0.0.0.0"},
            "admin.host: 0.0.0.0 refused: without [[admin.tokens]] the admin API binds only to"
            " loopback (in the file, or TURNOUT_ADMIN__HOST if set)",
            id="beyond-loopback-without-tokens",
        ),
        pytest.param(
            {"tokens": [{"name": "ci", "token": "short"}]},
            "admin: token 'ci': token must be at least 16 characters"
            " (in the file, or TURNOUT_ADMIN if set)",
            id="short-token",
        ),
    ],
)
def test_check_config_refuses_what_run_refuses(
    tmp_path: Path, admin: dict[str, object], problem: str
) -> None:
    # One validation for both commands: check-config passing means run starts.
    data = config({"app": ["http://127.0.0.1:9"]}, {"web": {"weights": {"app": 1}}})
    data["listen"]["port"] = free_port()
    data["admin"] = {"port": free_port(), **admin}
    path = tmp_path / "turnout.toml"
    path.write_text(toml(data))
    checked = turnout("check-config", str(path))
    ran = turnout("run", "--config", str(path))
    assert (checked.returncode, ran.returncode) == (2, 2)
    assert (
        checked.stderr == ran.stderr == f"turnout: invalid configuration {path}:\n  - {problem}\n"
    )


README_SAMPLE_CONFIG = """\
[pools.stable]
backends = [{ name = "stable-1", url = "http://10.0.0.5:8080" }]
[pools.canary]
backends = [{ name = "canary-1", url = "http://10.0.0.9:8080" }]

[routes.web]
weights = { stable = 95, canry = 5 }
rules = [{ name = "testers", header = "x-canary", match = "regex", value = "(always", pool = "canary" }]

[upstream]
read_timeout = 0
"""


def test_the_readmes_sample_of_errors_is_real_output(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    sample = re.search(r"```\n(turnout: invalid configuration my\.toml:\n.*?)```", readme, re.S)
    assert sample is not None, "the README shows what an invalid file prints"
    (tmp_path / "my.toml").write_text(README_SAMPLE_CONFIG)
    result = turnout("check-config", "my.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == sample.group(1)


def test_check_config_accepts_the_example_and_summarises_it() -> None:
    result = turnout("check-config", "config.example.toml")
    assert result.returncode == 0, result.stderr
    assert "route web" in result.stdout
    assert "blue 90%, canary 10%" in result.stdout
    assert "blue-green: active blue" in result.stdout


def test_check_config_rejects_an_invalid_file_naming_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[routes.web]\nweights = { nowhere = 1 }\n")
    result = turnout("check-config", str(path))
    assert result.returncode == 2
    assert str(path) in result.stderr
    assert "routes.web.weights.nowhere: unknown pool 'nowhere'" in result.stderr


def test_run_refuses_a_missing_config() -> None:
    result = turnout("run", "--config", "/nonexistent/turnout.toml")
    assert result.returncode == 2
    assert "no such file" in result.stderr


def test_run_requires_a_config() -> None:
    result = turnout("run")
    assert result.returncode != 0
    assert "--config" in result.stderr


def test_demo_serves_its_backends_through_the_proxy(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(5)]
    data = {
        "listen": {"host": "127.0.0.1", "port": ports[0]},
        "admin": {"port": ports[4]},
        "pools": {
            "blue": {"backends": [{"name": "blue-1", "url": f"http://127.0.0.1:{ports[1]}"}]},
            "green": {"backends": [{"name": "green-1", "url": f"http://127.0.0.1:{ports[2]}"}]},
            "canary": {"backends": [{"name": "canary-1", "url": f"http://127.0.0.1:{ports[3]}"}]},
        },
        "routes": {
            "web": {
                "weights": {"blue": 90, "canary": 10},
                "rules": [
                    {"name": "testers", "header": "x-canary", "value": "always", "pool": "canary"}
                ],
            }
        },
    }
    path = tmp_path / "demo.toml"
    path.write_text(toml(data))
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        process = subprocess.Popen([TURNOUT, "demo", "--config", str(path)], stdout=out, stderr=out)
    try:
        wait_for_port(ports[4], process, log)
        for _ in range(200):  # until the workers serve
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{ports[4]}/ready", timeout=5):
                    break
            time.sleep(0.05)
        url = f"http://127.0.0.1:{ports[0]}/hello"
        seen = set()
        for _ in range(60):
            with urllib.request.urlopen(url, timeout=5) as response:
                seen.add(response.read().split()[0].decode())
        assert seen == {"blue", "canary"}
        request = urllib.request.Request(url, headers={"x-canary": "always"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.read().startswith(b"canary")
        # The demo is a real instance: its admin API changes the split.
        change = urllib.request.Request(
            f"http://127.0.0.1:{ports[4]}/v1/routes/web/weights",
            data=b'{"weights": {"blue": 0, "canary": 1}}',
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(change, timeout=10) as response:
            assert response.status == 200
        for _ in range(20):
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.read().startswith(b"canary")
        time.sleep(0.1)
        assert "curl -s -H 'x-canary: always'" in log.read_text()
    finally:
        process.terminate()
        assert process.wait(10) == 0
