"""Schemathesis, with every check, against the OpenAPI document a real turnout serves: every
operation gets schema-valid and schema-violating requests (bodies, path, query and header
parameters, missing and wrong tokens, unsupported methods), and every answer must be one the
document declares, shaped as it declares. Seeded and deterministic, a few hundred requests.

The one setting beside the defaults: a schema-valid write may be refused 422 (or 412) because
of the state it would make, which no JSON Schema can express ("every pool of the route", "the
route is weighted", "a backend of that name exists already").
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admin_support import backend_loop

from helpers import ProxyProcess, config, proxy_process

TOKEN = "schemathesis-checks-the-auth-paths-too"
ST = Path(sys.executable).with_name("st")

ROUTES: dict[str, Any] = {
    "checkout": {
        "path_prefix": "/checkout",
        "mode": "blue-green",
        "pools": ["blue", "green"],
        "active": "blue",
    },
    "web": {
        "weights": {"stable": 90, "canary": 10},
        "rules": [{"name": "testers", "header": "x-canary", "value": "always", "pool": "canary"}],
    },
}

SETTINGS = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "404", "409", "412", "422"]
"""


@pytest.fixture
def proxy() -> Iterator[ProxyProcess]:
    with backend_loop() as loop:
        pools = {name: [loop.start(name).url] for name in ("stable", "canary", "blue", "green")}
        tokens = {"tokens": [{"name": "schemathesis", "token": TOKEN}]}
        with proxy_process(config(pools, ROUTES, admin=tokens)) as running:
            yield running


@pytest.mark.slow
def test_schemathesis_finds_nothing(proxy: ProxyProcess, tmp_path: Path) -> None:
    settings = tmp_path / "schemathesis.toml"
    settings.write_text(SETTINGS)
    command = [
        str(ST),
        "--config-file",
        str(settings),
        "run",
        f"{proxy.admin_url}/v1/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "10",
        "--seed",
        "12",
        "--generation-deterministic",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--no-color",
        # A stream that never ends (tests/admin/test_events_stream.py tests it) would only
        # time out here.
        "--exclude-path",
        "/v1/events/stream",
    ]
    # In tmp_path: nothing (reports, caches) lands in the checkout.
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-30_000:] + done.stderr[-5_000:]
    summary = [line for line in done.stdout.splitlines() if " generated, " in line]
    assert summary, done.stdout[-5_000:]
    generated = int(summary[-1].split()[0])
    assert 300 <= generated <= 2000, summary  # a few hundred requests, not a handful
