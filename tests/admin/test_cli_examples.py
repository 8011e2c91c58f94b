"""The CLI examples an operator copies (README's CLI section and every admin command's --help)
run against the demo as written: each parses with the real parser and names only routes, pools
and backends of config.example.toml, with every pool of a weighted route; the README's weights
example is accepted by a real turnout on that file; a refused change prints each error once."""

from __future__ import annotations

import argparse
import copy
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admin_support import backend_loop
from cli_support import turnout

from admin_api.cli.output import describe_problem
from admin_api.cli.parser import EXAMPLES
from admin_api.client import AdminError
from helpers import ProxyProcess, proxy_process
from proxy.cli import _parser

ROOT = Path(__file__).resolve().parents[2]
DEMO: dict[str, Any] = tomllib.loads((ROOT / "config.example.toml").read_text())


def readme_examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### CLI\n") :]
    block = section[section.index("```sh\n") + 6 : section.index("```\n", section.index("```sh"))]
    return [line for line in block.splitlines() if line.startswith("turnout ")]


def help_examples() -> list[str]:
    return [line for lines in EXAMPLES.values() for line in lines]


def subparsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield name, child
                # `rollout status|promote|abort` share names with top-level commands: its
                # subcommands and examples are held to the same rules in test_rollout_cli.py.
                if name != "rollout":
                    yield from subparsers(child)


def check(line: str) -> None:
    """`line` parses, and every name in it is the demo's."""
    argv = shlex.split(line.split("  #")[0])[1:]
    args = _parser().parse_args(argv)
    routes, pools = DEMO["routes"], DEMO["pools"]
    backends = {
        (pool, backend["name"]) for pool, spec in pools.items() for backend in spec["backends"]
    }
    route = routes.get(args.route) if getattr(args, "route", None) else None
    # `rollout status|pause|resume|abort NAME` takes a route's name or a pool's.
    either = argv[0] == "rollout" and argv[1] != "start"
    if getattr(args, "route", None) and not (either and args.route in pools):
        assert route is not None, f"{line}: no route {args.route!r} in config.example.toml"
    if argv[0] == "roll":
        assert args.pool in pools, f"{line}: no pool {args.pool!r} in config.example.toml"
    if argv[0] == "weights":
        assert route is not None
        given = [pool for pool, _ in args.weights]
        assert given == list(route["weights"]), f"{line}: the route's pools are {route['weights']}"
    if argv[0] == "switch":
        assert route is not None
        assert args.to in route["pools"], line
    if argv[0] == "promote" and args.pool is not None:
        assert route is not None
        assert args.pool in route["weights"], line
    if argv[:2] == ["backends", "add"]:
        assert args.pool in pools, line
        assert (args.pool, args.name) not in backends, line
    elif getattr(args, "backend", None):
        assert tuple(args.backend) in backends, f"{line}: no backend {args.backend} in the demo"


@pytest.mark.parametrize("line", readme_examples())
def test_readme_examples_name_the_demo(line: str) -> None:
    check(line)


@pytest.mark.parametrize("line", help_examples())
def test_help_examples_name_the_demo(line: str) -> None:
    check(line)


def test_every_admin_command_shows_its_examples() -> None:
    shown = {name: child.format_help() for name, child in subparsers(_parser()) if name in EXAMPLES}
    assert set(shown) == set(EXAMPLES)
    for name, lines in EXAMPLES.items():
        for line in lines:
            assert line in shown[name], name
    assert len(readme_examples()) >= 10


def test_an_error_is_printed_once() -> None:
    problems = [
        {"field": "routes.web.weights.stable", "message": "unknown pool 'stable'"},
        {"field": "routes.web.weights.blue", "message": "missing: give every weight"},
    ]
    text = describe_problem(
        AdminError(
            422,
            "The change would make an invalid routing state",
            "; ".join(f"{p['field']}: {p['message']}" for p in problems),
            "urn:turnout:problem:invalid-change",
            problems,
        )
    )
    assert text.splitlines() == [
        "turnout: The change would make an invalid routing state (HTTP 422)",
        "  - routes.web.weights.stable: unknown pool 'stable'",
        "  - routes.web.weights.blue: missing: give every weight",
    ]
    # A detail that says more than the list is kept.
    other = describe_problem(AdminError(409, "Conflict", "pool canary has no eligible backend"))
    assert "  pool canary has no eligible backend" in other.splitlines()


@pytest.fixture
def demo() -> Iterator[ProxyProcess]:
    """config.example.toml as it is, with its backends' addresses (and ports) made free ones."""
    with backend_loop() as loop:
        data = copy.deepcopy(DEMO)
        for pool in data["pools"].values():
            for backend in pool["backends"]:
                backend["url"] = loop.start(backend["name"]).url
        with proxy_process(data) as running:
            yield running


async def test_the_readme_weights_example_runs_against_the_demo(demo: ProxyProcess) -> None:
    (line,) = [line for line in readme_examples() if line.startswith("turnout weights ")]
    argv = shlex.split(line.split("  #")[0])[1:]
    done = await turnout(demo.admin_url, *argv)
    assert done.code == 0, done.err
    assert re.match(r"route web: blue 90 \(90%\), canary 10 \(10%\)", done.out), done.out

    refused = await turnout(demo.admin_url, "weights", "web", "stable=90", "canary=10")
    assert refused.code == 1
    lines = refused.err.splitlines()
    assert len(lines) == len(set(lines)), refused.err
    assert "  - routes.web.weights.stable: unknown pool 'stable'" in lines
