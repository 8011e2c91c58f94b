"""`turnout rollout start|status|list|pause|resume|promote|abort`: drive a route's rollout.

status, pause, resume and abort drive a pool's rollout too (started by `turnout roll`,
admin_api.cli.roll): NAME is a route's when a route has that name, else a pool's; `--pool`
says it is the pool's when both exist.

The same conventions as the other admin commands (admin_api.cli): the client from
--admin-url/--token or the environment, plain text by default and the API's JSON with --json,
the same exit codes. `start` sends only the options given: the rest comes from the route's
defaults, on the server ([routes.NAME.rollout], else the built-in ones). The strategy: --to
means blue-green, --canary means canary, neither leaves it to the route (a blue-green route
rolls out blue-green).
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from itertools import pairwise
from typing import TypeAlias

from admin_api.cli import commands as run
from admin_api.cli import roll_render
from admin_api.cli import rollout_render as render
from admin_api.cli.args import revision
from admin_api.cli.output import PROBLEM, emit_frame, emit_json, show
from admin_api.client import JSON, AdminClient, AdminError

EXAMPLES: dict[str, tuple[str, ...]] = {
    "start": (
        "turnout rollout start web --canary canary --steps 5,25,50,100 --step-time 2m",
        "turnout rollout start checkout --to green --precheck 'GET /healthz 200' --watch 5m",
    ),
    "status": ("turnout rollout status web", "turnout rollout status web --watch"),
    "list": ("turnout rollout list",),
    "pause": ("turnout rollout pause web",),
    "resume": ("turnout rollout resume web",),
    "promote": ("turnout rollout promote web",),
    "abort": ("turnout rollout abort web",),
}
"""Shown under each subcommand's --help, named for the demo's routes and pools."""

VERBS = {
    "pause": "pause the rollout where it is (the weights, or the pool's backends, stay)",
    "resume": "resume a paused rollout",
    "promote": "skip the remaining steps: the new version gets everything now",
    "abort": "everything back to the old version (a pool in place: reverted, newest first)",
}
POOL_VERBS = ("pause", "resume", "abort")
"""The commands a pool's rollout takes too."""

WATCH_INTERVAL = 1.0

# Argument types (argparse turns their errors into usage errors, exit 2)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", re.ASCII)
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_DURATION = 86_400.0
"""As the configuration's durations: at most a day."""


def duration(text: str) -> float:
    """`30s`, `2m`, `1h`, `500ms` or plain seconds; > 0 and at most a day."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: expected e.g. 30s, 2m, 1h or seconds")
    seconds = float(match.group(1)) * _UNIT[match.group(2) or "s"]
    if not 0 < seconds <= MAX_DURATION:
        raise argparse.ArgumentTypeError(f"{text!r}: expected more than 0 and at most 24h")
    return seconds


def steps(text: str) -> list[int]:
    """`5,25,50,100`: percentages 1..100, strictly increasing."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: expected percentages, e.g. 5,25,50,100")
    values = [int(part) for part in parts]
    if not all(1 <= value <= 100 for value in values):
        raise argparse.ArgumentTypeError(f"{text!r}: each step is a percentage 1..100")
    if any(b <= a for a, b in pairwise(values)):
        raise argparse.ArgumentTypeError(f"{text!r}: steps must be strictly increasing")
    return values


def fraction(text: str) -> float:
    """A number strictly between 0 and 1 (alpha)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number between 0 and 1, e.g. 0.01")
    return value


def ratio(text: str) -> float:
    """A ratio above 1 (tolerance: new rate / old rate)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 1 < value <= 100:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a ratio above 1, e.g. 1.5")
    return value


def count(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 1")
    return int(text)


def precheck(text: str) -> JSON:
    """`[METHOD] PATH [STATUS] [BODY-SUBSTRING...]`, e.g. `GET /healthz 200 ok`."""
    words = text.split()
    method = "GET"
    if words and not words[0].startswith("/"):
        method = words.pop(0).upper()
    if not words or not words[0].startswith("/") or not method.isalpha():
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected [METHOD] PATH [STATUS] [BODY-SUBSTRING], e.g. 'GET /healthz 200'"
        )
    check: JSON = {"method": method, "path": words.pop(0)}
    if words and words[0].isascii() and words[0].isdigit():
        status = int(words.pop(0))
        if not 100 <= status <= 599:
            raise argparse.ArgumentTypeError(f"{text!r}: status {status} is no HTTP status")
        check["status"] = status
    if words:
        check["bodyContains"] = " ".join(words)
    return check


# Commands


def start(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.start_rollout(args.route, start_body(args), if_match=args.if_match)
    return show(args, view, lambda: render.render_rollout(view))


def start_body(args: argparse.Namespace) -> JSON:
    """The request body: only what the command line gave."""
    spec: JSON = {}
    if args.to is not None:
        spec["strategy"], spec["to"] = "blue-green", args.to
    elif args.canary is not None:
        spec["strategy"], spec["canary"] = "canary", args.canary
    given = {
        "steps": args.steps,
        "stepTime": args.step_time,
        "maxStepTime": args.max_step_time,
        "onInconclusive": args.on_inconclusive,
        "noEligibleTimeout": args.no_eligible_timeout,
        "watch": args.watch,
        "webhook": args.webhook,
        "prechecks": args.precheck,
    }
    spec.update({key: value for key, value in given.items() if value is not None})
    judge = {
        "alpha": args.alpha,
        "tolerance": args.tolerance,
        "latencyTolerance": args.latency_tolerance,
        "minRequests": args.min_requests,
    }
    judge = {key: value for key, value in judge.items() if value is not None}
    if judge:
        spec["judge"] = judge
    return spec


def status(client: AdminClient, args: argparse.Namespace) -> int:
    watching = args.watch or args.count is not None
    limit = args.count if args.count is not None else (None if watching else 1)
    shown = 0
    try:
        pool, view = _either(
            args, lambda: client.rollout(args.route), lambda: client.pool_rollout(args.route)
        )
        while True:
            if args.json:
                emit_json(view, compact=watching)  # watching: NDJSON, one document a line
            else:
                emit_frame(_render(pool, view), watching)
            shown += 1
            if render.is_final(view) or (limit is not None and shown >= limit):
                return 0
            time.sleep(args.interval)
            view = client.pool_rollout(args.route) if pool else client.rollout(args.route)
    except KeyboardInterrupt:
        if not watching:
            raise
        return 0  # Ctrl-C is how a watch ends: not a failure.


def list_rollouts(client: AdminClient, args: argparse.Namespace) -> int:
    document = client.rollouts()
    return show(args, document, lambda: roll_render.render_every_rollout(document))


def _verb(verb: str) -> run.Command:
    def command(client: AdminClient, args: argparse.Namespace) -> int:
        name, if_match = args.route, args.if_match
        pool, view = _either(
            args,
            lambda: client.rollout_command(name, verb, if_match=if_match),
            lambda: client.pool_rollout_command(name, verb, if_match=if_match),
        )
        return show(args, view, lambda: _render(pool, view))

    command.__name__ = verb
    return command


def _either(
    args: argparse.Namespace, route: Callable[[], JSON], pool: Callable[[], JSON]
) -> tuple[bool, JSON]:
    """The route's answer, or with no route of that name (or --pool) the pool's; whether it is
    the pool's. A name that is neither is the route's 404, saying so."""
    if getattr(args, "pool", False):
        return True, pool()
    try:
        return False, route()
    except AdminError as refused:
        if refused.status != 404 or refused.type != UNKNOWN_ROUTE:
            raise
        try:
            return True, pool()
        except AdminError as error:
            if error.status == 404 and error.type == UNKNOWN_POOL:
                detail = f"no route or pool named {args.route!r}"
                raise AdminError(404, refused.title, detail, refused.type) from None
            raise


UNKNOWN_ROUTE = PROBLEM + "unknown-route"
UNKNOWN_POOL = PROBLEM + "unknown-pool"


def _render(pool: bool, view: JSON) -> str:
    return roll_render.render_pool_rollout(view) if pool else render.render_rollout(view)


# Command lines

Subparsers: TypeAlias = run.Subparsers


def register(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    """Add `turnout rollout ...` under `turnout`'s subcommands (`common`: the admin options)."""
    rollout = commands.add_parser("rollout", help="run a canary or blue-green rollout, judged")
    actions = rollout.add_subparsers(required=True, metavar="ACTION")

    def add(name: str, handler: run.Command, help: str) -> argparse.ArgumentParser:
        return run.add_command(actions, name, handler, help, common, EXAMPLES[name])

    _register_start(add("start", start, "start a rollout on a route"))
    status_parser = add(
        "status", status, "a route's or pool's rollout: where it is, why, verdict, evidence"
    )
    _name(status_parser)
    status_parser.add_argument(
        "--watch", "-w", action="store_true", help="refresh until it is final or Ctrl-C"
    )
    status_parser.add_argument("--count", type=count, help="stop after N refreshes")
    status_parser.add_argument(
        "--interval", type=duration, default=WATCH_INTERVAL, help="between refreshes (1s)"
    )
    add("list", list_rollouts, "every route's and every pool's rollout")
    for verb, help in VERBS.items():
        parser = add(verb, _verb(verb), help)
        if verb in POOL_VERBS:
            _name(parser)
        else:
            parser.add_argument("route", metavar="ROUTE")
        _if_match(parser)


def _name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "route", metavar="NAME", help="a route, else a pool (turnout roll) of that name"
    )
    parser.add_argument(
        "--pool", action="store_true", help="NAME is a pool (when a route has that name too)"
    )


def _register_start(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("route", metavar="ROUTE")
    new = parser.add_mutually_exclusive_group()
    new.add_argument("--canary", metavar="POOL", help="canary: the new version's pool")
    new.add_argument("--to", metavar="COLOUR", help="blue-green: the colour to switch to")
    parser.add_argument("--steps", type=steps, help="canary: percentages, e.g. 5,25,50,100")
    parser.add_argument(
        "--step-time", type=duration, metavar="DURATION", help="each step lasts at least (60s)"
    )
    parser.add_argument(
        "--max-step-time",
        type=duration,
        metavar="DURATION",
        help="too little traffic by then: --on-inconclusive",
    )
    parser.add_argument("--on-inconclusive", choices=["pause", "abort"])
    parser.add_argument(
        "--no-eligible-timeout",
        type=duration,
        help="abort when the new version has no eligible backend this long (30s)",
    )
    parser.add_argument(
        "--watch", type=duration, metavar="DURATION", help="blue-green: judge the new colour (5m)"
    )
    parser.add_argument("--alpha", type=fraction, help="false-abort bound (0.01)")
    parser.add_argument("--tolerance", type=ratio, help="error-rate ratio to detect (1.5)")
    parser.add_argument("--latency-tolerance", type=ratio, help="slow-share ratio to detect")
    parser.add_argument("--min-requests", type=count, help="per step, to call it not worse")
    parser.add_argument("--webhook", metavar="URL", help="POSTed on every phase change")
    parser.add_argument(
        "--precheck",
        type=precheck,
        action="append",
        metavar="'[METHOD] PATH [STATUS] [BODY]'",
        help="blue-green: sent to every backend of the new colour first (repeatable)",
    )
    _if_match(parser)


def _if_match(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--if-match",
        type=revision,
        metavar="REV",
        help="refuse (412) unless the current revision is still REV",
    )
