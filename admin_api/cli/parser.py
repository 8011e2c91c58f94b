"""The admin commands' command lines, each with examples that run as written against the demo
(config.example.toml: routes `web` (blue 90, canary 10) and `checkout` (blue-green); pools
`blue`, `green`, `canary`). tests/admin/test_cli_examples.py holds them, and README's, to that.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

from admin_api.cli import args as types
from admin_api.cli import commands as run
from admin_api.cli import fleet, roll, rollout
from admin_api.cli.output import TOKEN_ENV, URL_ENV
from admin_api.client import DEFAULT_URL

Subparsers: TypeAlias = run.Subparsers
Add = Callable[[Subparsers, str, run.Command, str], argparse.ArgumentParser]
"""Adds one admin command (with the common options) under a parser's subcommands."""

EXAMPLES: dict[str, tuple[str, ...]] = {
    "status": ("turnout status", "turnout status web --watch"),
    "weights": (
        "turnout weights web blue=90 canary=10",
        "turnout weights web blue=95 canary=5 --if-match 7",
    ),
    "switch": ("turnout switch checkout green",),
    "rollback": ("turnout rollback checkout",),
    "promote": ("turnout promote web", "turnout promote web canary"),
    "abort": ("turnout abort web",),
    "undo": ("turnout undo web 12",),
    "drain": ("turnout drain blue/blue-1 --wait --timeout 60s",),
    "enable": ("turnout enable blue/blue-1",),
    "add": ("turnout backends add blue blue-3 http://10.0.0.7:8080 --weight 2",),
    "remove": ("turnout backends remove blue/blue-2  # once drained, or with --force",),
    "history": ("turnout history --limit 20",),
    "workers": ("turnout workers",),
    "fleet": ("turnout fleet",),
    "reload": ("turnout reload",),
}
"""Shown under each command's --help, named for the demo's routes, pools and backends."""


def register(commands: Subparsers) -> None:
    """Add the admin commands to `turnout`'s subcommands."""
    common = _common_options()

    def add(
        parent: Subparsers, name: str, handler: run.Command, help: str
    ) -> argparse.ArgumentParser:
        return run.add_command(parent, name, handler, help, common, EXAMPLES[name])

    _register_status(add(commands, "status", run.status, "routes; with ROUTE, its backends too"))
    _register_route_changes(commands, add)
    _register_backends(commands, add)
    history = add(commands, "history", run.history, "recent changes, newest first")
    history.add_argument("--limit", type=types.positive_int, metavar="N", help="how many (100)")
    add(commands, "workers", run.workers, "worker processes")
    add(commands, "fleet", fleet.fleet, "the instances sharing this state (fleet mode)")
    add(commands, "reload", run.reload, "re-read the configuration file")
    rollout.register(commands, common)
    roll.register(commands, common)


def _register_status(status: argparse.ArgumentParser) -> None:
    status.add_argument("route", nargs="?", metavar="ROUTE")
    status.add_argument("--watch", "-w", action="store_true", help="refresh until Ctrl-C")
    status.add_argument(
        "--count", type=types.positive_int, help="stop after N refreshes (implies --watch)"
    )
    status.add_argument(
        "--interval", type=types.positive_float, default=2.0, help="seconds between refreshes (2)"
    )


def _register_route_changes(commands: Subparsers, add: Add) -> None:
    weights = add(commands, "weights", run.weights, "set a weighted route's weights (proportions)")
    weights.add_argument("route", metavar="ROUTE")
    weights.add_argument(
        "weights",
        nargs="+",
        type=types.weight,
        metavar="POOL=WEIGHT",
        help="every pool of the route, e.g. blue=90 canary=10",
    )
    _force(weights)
    weights.add_argument(
        "--if-match",
        type=types.revision,
        metavar="REV",
        help="refuse (412) unless the current revision is still REV",
    )

    switch = add(commands, "switch", run.switch, "blue-green: make POOL the active colour")
    switch.add_argument("route", metavar="ROUTE")
    switch.add_argument("to", metavar="POOL")
    _force(switch)

    rollback = add(commands, "rollback", run.rollback, "back to the previous colour or weights")
    rollback.add_argument("route", metavar="ROUTE")
    _force(rollback)

    promote = add(commands, "promote", run.promote, "canary: all traffic to the candidate pool")
    promote.add_argument("route", metavar="ROUTE")
    promote.add_argument("pool", nargs="?", metavar="POOL", help="needed with 3+ pools")
    _force(promote)

    abort = add(commands, "abort", run.abort, "canary: all traffic back to the baseline pool")
    abort.add_argument("route", metavar="ROUTE")

    undo = add(commands, "undo", run.undo, "restore a route as it was at a revision (see history)")
    undo.add_argument("route", metavar="ROUTE")
    undo.add_argument("revision", type=types.revision, metavar="REVISION")
    _force(undo)


def _register_backends(commands: Subparsers, add: Add) -> None:
    drain = add(commands, "drain", run.drain, "stop sending new requests to a backend")
    drain.add_argument("backend", type=types.backend_ref, metavar="POOL/BACKEND")
    drain.add_argument(
        "--wait", action="store_true", help="return once no request is in flight to it"
    )
    drain.add_argument(
        "--timeout",
        type=types.duration,
        metavar="DURATION",
        help="how long --wait waits, e.g. 60s, 500ms, 2m (default 60s; implies --wait)",
    )
    _force(drain, "drain it even though it is the last eligible backend of a pool taking traffic")

    enable = add(commands, "enable", run.enable, "send requests to a backend again (state ready)")
    enable.add_argument("backend", type=types.backend_ref, metavar="POOL/BACKEND")

    backends = commands.add_parser("backends", help="add or remove backends (rolling deployments)")
    actions = backends.add_subparsers(required=True, metavar="ACTION")
    backend_add = add(actions, "add", run.backend_add, "add a backend to a pool")
    backend_add.add_argument("pool", metavar="POOL")
    backend_add.add_argument("name", metavar="NAME")
    backend_add.add_argument("url", metavar="URL", help="http://host:port")
    backend_add.add_argument("--weight", type=types.non_negative_int, default=1, help="(1)")
    backend_add.add_argument(
        "--admin-state", choices=["ready", "drain", "maint"], default="ready", help="(ready)"
    )
    remove = add(actions, "remove", run.backend_remove, "remove a backend (drain it first)")
    remove.add_argument("backend", type=types.backend_ref, metavar="POOL/BACKEND")
    _force(remove, "remove it even though it is ready")


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("admin API")
    group.add_argument("--admin-url", metavar="URL", help=f"${URL_ENV}, else {DEFAULT_URL}")
    group.add_argument(
        "--token",
        help=f"bearer token; prefer ${TOKEN_ENV} (a flag is visible to other users in ps)",
    )
    group.add_argument("--json", action="store_true", help="print the API's JSON")
    return common


def _force(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    parser.add_argument(
        "--force",
        action="store_true",
        help=help or "do it even though a pool taking traffic has no eligible backend",
    )
