"""Import rules of the runtime, each checked in a fresh interpreter.

A worker process loads what a worker runs and nothing of the control plane's HTTP side or the
admin API; the command line loads the admin CLI and the benchmark only to run them, and the
data plane only for the commands that start it (proxy/instance.py is what knows everything).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_CHILD = """
import contextlib, io, json, sys
before = set(sys.modules)
{statement}
print(json.dumps(sorted(set(sys.modules) - before)))
"""

# `turnout --help` as the console script runs it; argparse prints the help and exits.
_HELP = """
help = io.StringIO()
with contextlib.redirect_stdout(help), contextlib.suppress(SystemExit):
    from proxy.cli import main
    main(["--help"])
print(json.dumps(help.getvalue()))
"""


def _imported(statement: str) -> tuple[list[str], str]:
    """The modules `statement` imported, and what it printed before reporting them."""
    result = subprocess.run(
        [sys.executable, "-c", _CHILD.format(statement=statement)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    *printed, modules = result.stdout.splitlines()
    return json.loads(modules), "\n".join(printed)


def _loaded(modules: list[str], package: str) -> list[str]:
    return [name for name in modules if name == package or name.startswith(package + ".")]


@pytest.mark.parametrize(
    ("statement", "forbidden"),
    [
        # `python -m proxy.worker`: the module and whatever it imports.
        ("import proxy.worker", ("aiohttp", "admin_api", "benchmarks", "proxy.instance")),
        # The admin commands start without the server: no pydantic, no router, no aiohttp.
        (
            "import proxy.cli",
            ("admin_api", "benchmarks", "aiohttp", "pydantic", "router", "proxy.native"),
        ),
        (_HELP, ("aiohttp", "benchmarks", "pydantic", "router", "proxy.instance")),
    ],
    ids=["worker", "cli", "cli-help"],
)
def test_importing_loads_nothing_it_does_not_run(
    statement: str, forbidden: tuple[str, ...]
) -> None:
    modules, _ = _imported(statement)
    for package in forbidden:
        assert not _loaded(modules, package), f"{statement!r} imported {package}"


def test_help_lists_every_command() -> None:
    _, printed = _imported(_HELP)
    text = json.loads(printed)
    commands = [
        "run",
        "check-config",
        "demo",
        "bench",
        "status",
        "weights",
        "switch",
        "rollback",
        "promote",
        "abort",
        "undo",
        "drain",
        "enable",
        "backends",
        "history",
        "workers",
        "reload",
    ]
    listed = [line.split()[0] for line in text.splitlines() if line.startswith("    ")]
    assert [name for name in listed if name in commands] == commands
