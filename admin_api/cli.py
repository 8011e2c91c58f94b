"""`turnout` commands that drive a running instance through its admin API.

`register()` adds them to the `turnout` parser (proxy.cli). Each prints plain aligned tables by
default and the API's JSON with `--json`. Exit status: 0 done, 1 the API refused (its problem
on stderr: title, detail, every errors[] entry), 2 a usage error (argparse's own, or e.g.
`stable=ninety`), 3 the admin API could not be reached. Only the standard library and
admin_api.client are imported, so these commands start fast and need nothing of the server.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeAlias

from admin_api.client import DEFAULT_URL, JSON, AdminClient, AdminError, AdminUnreachable
from admin_api.shares import shares

EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130

URL_ENV = "TURNOUT_ADMIN_URL"
TOKEN_ENV = "TURNOUT_ADMIN_TOKEN"

Command = Callable[[AdminClient, argparse.Namespace], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Add = Callable[[Subparsers, str, Command, str], argparse.ArgumentParser]
"""Adds one admin command (with the common options) under a parser's subcommands."""


class UsageError(Exception):
    """A command line that parsed but makes no sense (exit 2, like argparse's own errors)."""


# Registration


def register(commands: Subparsers) -> None:
    """Add the admin commands to `turnout`'s subcommands."""
    common = _common_options()

    def add(parent: Subparsers, name: str, handler: Command, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(
            name, help=help, description=help, parents=[common]
        )
        parser.set_defaults(command=_dispatch(handler))
        return parser

    _register_status(add(commands, "status", _status, "routes; with ROUTE, its backends too"))
    _register_route_changes(commands, add)
    _register_backends(commands, add)
    history = add(commands, "history", _history, "recent changes, newest first")
    history.add_argument("--limit", type=_positive_int, metavar="N", help="how many (100)")
    add(commands, "workers", _workers, "worker processes")
    add(commands, "reload", _reload, "re-read the configuration file")


def _register_status(status: argparse.ArgumentParser) -> None:
    status.add_argument("route", nargs="?", metavar="ROUTE")
    status.add_argument("--watch", "-w", action="store_true", help="refresh until Ctrl-C")
    status.add_argument(
        "--count", type=_positive_int, help="stop after N refreshes (implies --watch)"
    )
    status.add_argument(
        "--interval", type=_positive_float, default=2.0, help="seconds between refreshes (2)"
    )


def _register_route_changes(commands: Subparsers, add: Add) -> None:
    weights = add(commands, "weights", _weights, "set a weighted route's weights (proportions)")
    weights.add_argument("route", metavar="ROUTE")
    weights.add_argument(
        "weights", nargs="+", type=_weight, metavar="POOL=WEIGHT", help="e.g. stable=90 canary=10"
    )
    _force(weights)
    weights.add_argument(
        "--if-match",
        type=_revision,
        metavar="REV",
        help="refuse (412) unless the current revision is still REV",
    )

    switch = add(commands, "switch", _switch, "blue-green: make POOL the active colour")
    switch.add_argument("route", metavar="ROUTE")
    switch.add_argument("to", metavar="POOL")
    _force(switch)

    rollback = add(commands, "rollback", _rollback, "back to the previous colour or weights")
    rollback.add_argument("route", metavar="ROUTE")
    _force(rollback)

    promote = add(commands, "promote", _promote, "canary: all traffic to the candidate pool")
    promote.add_argument("route", metavar="ROUTE")
    promote.add_argument("pool", nargs="?", metavar="POOL", help="needed with 3+ pools")
    _force(promote)

    abort = add(commands, "abort", _abort, "canary: all traffic back to the baseline pool")
    abort.add_argument("route", metavar="ROUTE")

    undo = add(commands, "undo", _undo, "restore a route as it was at a revision (see history)")
    undo.add_argument("route", metavar="ROUTE")
    undo.add_argument("revision", type=_revision, metavar="REVISION")
    _force(undo)


def _register_backends(commands: Subparsers, add: Add) -> None:
    drain = add(commands, "drain", _drain, "stop sending new requests to a backend")
    drain.add_argument("backend", type=_backend_ref, metavar="POOL/BACKEND")
    drain.add_argument(
        "--wait", action="store_true", help="return once no request is in flight to it"
    )
    drain.add_argument(
        "--timeout",
        type=_duration,
        metavar="DURATION",
        help="how long --wait waits, e.g. 60s, 500ms, 2m (default 60s; implies --wait)",
    )
    _force(drain, "drain it even though it is the last eligible backend of a pool taking traffic")

    enable = add(commands, "enable", _enable, "send requests to a backend again (state ready)")
    enable.add_argument("backend", type=_backend_ref, metavar="POOL/BACKEND")

    backends = commands.add_parser("backends", help="add or remove backends (rolling deployments)")
    actions = backends.add_subparsers(required=True, metavar="ACTION")
    backend_add = add(actions, "add", _backend_add, "add a backend to a pool")
    backend_add.add_argument("pool", metavar="POOL")
    backend_add.add_argument("name", metavar="NAME")
    backend_add.add_argument("url", metavar="URL", help="http://host:port")
    backend_add.add_argument("--weight", type=_non_negative_int, default=1, help="(1)")
    backend_add.add_argument(
        "--admin-state", choices=["ready", "drain", "maint"], default="ready", help="(ready)"
    )
    remove = add(actions, "remove", _backend_remove, "remove a backend (drain it first)")
    remove.add_argument("backend", type=_backend_ref, metavar="POOL/BACKEND")
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


def _dispatch(handler: Command) -> Callable[[argparse.Namespace], int]:
    """The command as proxy.cli calls it: the client made, failures turned into exit codes."""

    def command(args: argparse.Namespace) -> int:
        url = args.admin_url or os.environ.get(URL_ENV) or DEFAULT_URL
        token = args.token or os.environ.get(TOKEN_ENV) or None
        try:
            client = AdminClient(url, token)
        except ValueError as error:  # A malformed admin URL.
            print(f"turnout: {error}", file=sys.stderr)
            return EXIT_USAGE
        try:
            return handler(client, args)
        except UsageError as error:
            print(f"turnout: {error}", file=sys.stderr)
            return EXIT_USAGE
        except AdminUnreachable as error:
            print(f"turnout: {error.title}", file=sys.stderr)
            print(f"  is turnout running? (address: --admin-url or ${URL_ENV})", file=sys.stderr)
            return EXIT_UNREACHABLE
        except AdminError as error:
            print(describe_problem(error), file=sys.stderr)
            return EXIT_PROBLEM
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            # The reader went away (`turnout status --watch | head`): no traceback, and no
            # second error when Python flushes stdout at exit (the recipe in the signal docs).
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_PROBLEM

    return command


PROBLEM = "urn:turnout:problem:"
HINTS = {
    "no-eligible-backend": "add --force to do it anyway",
    "backend-in-service": "drain it first (turnout drain POOL/BACKEND --wait) or add --force",
    "stale-revision": "see the current state (turnout status ROUTE) and decide again",
    "unauthorized": f"give a token with ${TOKEN_ENV} or --token",
}
"""What to do next, in the CLI's terms (the API's detail speaks HTTP)."""


def describe_problem(error: AdminError) -> str:
    """A problem document for people: title and status, detail, each field error."""
    lines = [f"turnout: {error.title} (HTTP {error.status})"]
    entries = [_error_entry(entry) for entry in error.errors]
    # The detail often just repeats a single field error; say it once.
    if error.detail and [error.detail] != entries:
        lines.append(f"  {error.detail}")
    lines.extend(f"  - {entry}" for entry in entries)
    hint = HINTS.get(error.type.removeprefix(PROBLEM))
    if error.type.startswith(PROBLEM) and hint:
        lines.append(f"  hint: {hint}")
    return "\n".join(lines)


def _error_entry(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    field, message = entry.get("field"), entry.get("message", "")
    return f"{field}: {message}" if field else str(message)


# Argument types (argparse turns their errors into usage errors: exit 2)


def _weight(text: str) -> tuple[str, int]:
    pool, sep, number = text.partition("=")
    if not sep or not pool or not _digits(number):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected POOL=WEIGHT with a whole number >= 0, e.g. stable=90"
        )
    return pool, int(number)


def _backend_ref(text: str) -> tuple[str, str]:
    pool, sep, backend = text.partition("/")
    if not sep or not pool or not backend or "/" in backend:
        raise argparse.ArgumentTypeError(f"{text!r}: expected POOL/BACKEND, e.g. blue/blue-1")
    return pool, backend


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m)?", re.ASCII)


def _duration(text: str) -> float:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: expected e.g. 60s, 500ms, 2m")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return {"ms": number / 1000, "s": number, "m": number * 60}[unit]


def _revision(text: str) -> int:
    # Accept the ETag form too ("7" with quotes, W/"7"): that is what the API sends.
    match = re.fullmatch(r'(?:W/)?"?(\d+)"?', text.strip(), re.ASCII)
    if match is None or int(match.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a revision number, e.g. 7")
    return int(match.group(1))


def _digits(text: str) -> bool:
    # ASCII only: str.isdigit() also accepts "²", which int() then refuses.
    return text.isascii() and text.isdigit()


def _positive_int(text: str) -> int:
    if not _digits(text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 1")
    return int(text)


def _non_negative_int(text: str) -> int:
    if not _digits(text):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 0")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of seconds > 0")
    return value


# Commands


def _status(client: AdminClient, args: argparse.Namespace) -> int:
    watching = args.watch or args.count is not None
    count = args.count if watching else 1
    shown = 0
    try:
        while True:
            document, text = _status_once(client, args.route)
            if args.json:
                # Watching: one JSON document per line (NDJSON), so a script can stream them.
                _emit_json(document, compact=watching)
            else:
                _emit_frame(text, watching)
            shown += 1
            if count is not None and shown >= count:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        if not watching:
            raise
        if not args.json:
            print(flush=True)  # End the line the terminal echoed ^C on.
        return 0  # Ctrl-C is how a watch ends: not a failure.


def _status_once(client: AdminClient, route: str | None) -> tuple[JSON, str]:
    """What `status` shows once: the JSON document and its text."""
    if route is None:
        routes = client.routes()
        return routes, render_routes(routes)
    view = client.route(route)
    names = _route_pools(view)
    pools = [pool for pool in client.pools()["pools"] if pool["name"] in names]
    pools.sort(key=lambda pool: names.index(pool["name"]))
    return {"route": view, "pools": pools}, render_route(view, pools)


def _emit_frame(text: str, watching: bool) -> None:
    if watching:
        if sys.stdout.isatty():
            print("\x1b[H\x1b[2J", end="")  # Clear the screen, as watch(1) does.
        print(f"{datetime.now():%H:%M:%S}")
    print(text, flush=True)
    if watching and not sys.stdout.isatty():
        print(flush=True)


def _weights(client: AdminClient, args: argparse.Namespace) -> int:
    weights: dict[str, int] = {}
    for pool, weight in args.weights:
        if pool in weights:
            raise UsageError(f"weights: pool {pool!r} given twice")
        weights[pool] = weight
    view = client.set_weights(args.route, weights, force=args.force, if_match=args.if_match)
    return _show(args, view, route_summary(view))


def _switch(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.switch(args.route, args.to, force=args.force)
    return _show(args, view, route_summary(view))


def _rollback(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.rollback(args.route, force=args.force)
    return _show(args, view, route_summary(view))


def _promote(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.promote(args.route, args.pool, force=args.force)
    return _show(args, view, route_summary(view))


def _abort(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.abort(args.route)
    return _show(args, view, route_summary(view))


def _undo(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.undo(args.route, args.revision, force=args.force)
    return _show(args, view, route_summary(view))


DEFAULT_DRAIN_WAIT = 60.0


def _drain(client: AdminClient, args: argparse.Namespace) -> int:
    pool, backend = args.backend
    wait = None
    if args.wait or args.timeout is not None:
        wait = args.timeout if args.timeout is not None else DEFAULT_DRAIN_WAIT
    view = client.patch_backend(pool, backend, admin_state="drain", wait=wait, force=args.force)
    return _show(args, view, backend_summary(pool, view))


def _enable(client: AdminClient, args: argparse.Namespace) -> int:
    pool, backend = args.backend
    view = client.patch_backend(pool, backend, admin_state="ready")
    return _show(args, view, backend_summary(pool, view))


def _backend_add(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.add_backend(
        args.pool, args.name, args.url, weight=args.weight, admin_state=args.admin_state
    )
    return _show(args, view, pool_summary(view) + "\n" + render_pools([view]))


def _backend_remove(client: AdminClient, args: argparse.Namespace) -> int:
    pool, backend = args.backend
    view = client.remove_backend(pool, backend, force=args.force)
    return _show(args, view, pool_summary(view) + "\n" + render_pools([view]))


def _history(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.history(args.limit)
    return _show(args, view, render_history(view))


def _workers(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.workers()
    return _show(args, view, render_workers(view))


def _reload(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.reload()
    return _show(args, view, f"reloaded the configuration: revision {view['revision']}")


def _show(args: argparse.Namespace, document: JSON, text: str) -> int:
    if args.json:
        _emit_json(document)
    else:
        print(text)
    return 0


def _emit_json(document: JSON, compact: bool = False) -> None:
    print(json.dumps(document) if compact else json.dumps(document, indent=2), flush=True)


# Rendering (pure: JSON documents in, text out)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Plain aligned columns, two spaces apart; columns of numbers right-aligned."""
    numeric = [bool(rows) and all(_is_number(row[i]) for row in rows) for i in range(len(header))]
    cells = [list(header), *([_cell(value) for value in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        parts = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(row, widths, numeric, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _pct(value: float) -> str:
    return f"{round(value, 1):g}%"


def weights_text(weights: dict[str, int], percentages: dict[str, float] | None = None) -> str:
    """`blue 90 (90%), canary 10 (10%)`: the integers operators set, and what they mean."""
    shares = percentages or {}
    return ", ".join(
        f"{pool} {weight} ({_pct(shares[pool])})" if pool in shares else f"{pool} {weight}"
        for pool, weight in weights.items()
    )


def observed_text(view: JSON) -> str:
    """The split actually served over the last minute (all workers), or `-` without traffic."""
    counts: dict[str, int] = view.get("observed") or {}
    total = sum(counts.values())
    if not total:
        return "-"
    # From the counts, at the precision shown: the view's 2-decimal percentages add up to 100,
    # but each rounded again to 1 decimal may not (16.67 x 2 + 66.67 -> 100.1).
    percent = shares(counts, 1)
    split = ", ".join(f"{pool} {_pct(percent[pool])}" for pool in counts)
    return f"{split} of {total}"


def _target(view: JSON) -> str:
    if view["mode"] == "blue-green":
        return f"active {view.get('active')}"
    return weights_text(view.get("weights") or {}, view.get("percentages"))


def _previous(view: JSON) -> str | None:
    if view["mode"] == "blue-green":
        previous: str | None = view.get("previous")
        return previous
    before = view.get("previousWeights")
    return weights_text(before) if before else None


def render_routes(document: JSON) -> str:
    rows = [
        [view["name"], view["mode"], _target(view), _previous(view), observed_text(view)]
        for view in document["routes"]
    ]
    header = ["ROUTE", "MODE", "WEIGHTS / ACTIVE", "PREVIOUS", "OBSERVED (LAST MINUTE)"]
    return f"revision {document['revision']}\n" + table(header, rows)


def route_summary(view: JSON) -> str:
    """One line for the result of a change: what the route does now, at which revision."""
    previous = _previous(view)
    was = f"; previous {previous}" if previous else ""
    return f"route {view['name']}: {_target(view)}{was}; revision {view['revision']}"


def render_route(view: JSON, pools: Sequence[JSON]) -> str:
    match = view.get("match") or {}
    hosts = ", ".join(match.get("hosts") or []) or "any host"
    lines = [
        f"route {view['name']}: {view['mode']}, revision {view['revision']}",
        f"  match     path {match.get('pathPrefix', '/')} ({hosts})",
    ]
    if view["mode"] == "blue-green":
        colours = ", ".join(view.get("pools") or [])
        lines.append(f"  active    {view.get('active')} (of {colours})")
    else:
        lines.append(f"  weights   {_target(view)}")
    lines.append(f"  previous  {_cell(_previous(view))}")
    observed = observed_text(view)
    if observed != "-":
        observed += " requests in the last minute"
    lines.append(f"  observed  {observed}")
    sticky = view.get("sticky")
    if sticky:
        lines.append(f"  sticky    cookie {sticky['cookie']}")
    for index, rule in enumerate(view.get("rules") or []):
        label = "rules" if index == 0 else ""
        value = f" {rule['value']}" if rule.get("value") is not None else ""
        lines.append(
            f"  {label:<8}  {rule['name']}: {rule['header']} {rule['match']}{value}"
            f" -> {rule['pool']}"
        )
    if view.get("fallbackPool"):
        lines.append(f"  fallback  {view['fallbackPool']}")
    return "\n".join(lines) + "\n\n" + render_pools(pools)


def _route_pools(view: JSON) -> list[str]:
    """Every pool a route can send to, in the order an operator reads them."""
    names = list(view.get("weights") or view.get("pools") or [])
    names += [rule["pool"] for rule in view.get("rules") or []]
    if view.get("fallbackPool"):
        names.append(view["fallbackPool"])
    return list(dict.fromkeys(names))


def render_pools(pools: Sequence[JSON]) -> str:
    header = ["POOL", "BACKEND", "URL", "WEIGHT", "ADMIN", "HEALTH", "ELIGIBLE", "IN-FLIGHT"]
    rows = [
        [
            pool["name"],
            backend["name"],
            backend["url"],
            _backend_weight(backend),
            backend["adminState"],
            backend["health"],
            backend["eligible"],
            backend["inflight"],
        ]
        for pool in pools
        for backend in pool["backends"]
    ]
    empty = [pool["name"] for pool in pools if not pool["backends"]]
    note = "".join(f"\npool {name}: no backends" for name in empty)
    return table(header, rows) + note


def _backend_weight(backend: JSON) -> object:
    ramp = backend.get("slowStart")
    if not ramp:
        return backend["weight"]
    return (
        f"{backend['effectiveWeight']:g} of {backend['weight']} (slow start "
        f"{ramp['progress']:g} %, {ramp['remainingSeconds']:.0f} s left)"
    )


def pool_summary(view: JSON) -> str:
    count = len(view["backends"])
    return (
        f"pool {view['name']}: {view['eligible']} of {count} backend(s) eligible; "
        f"revision {view['revision']}"
    )


def backend_summary(pool: str, view: JSON) -> str:
    eligible = "eligible" if view["eligible"] else "not eligible"
    return (
        f"backend {pool}/{view['name']}: {view['adminState']}, {view['health']}, "
        f"{eligible}, {view['inflight']} in flight"
    )


def render_workers(document: JSON) -> str:
    header = ["ID", "PID", "SERVING", "REVISION", "CRASHES", "REQUESTS", "CONNECTIONS"]
    rows = [
        [
            w["id"],
            w["pid"],
            w["serving"],
            w["revision"],
            w["crashes"],
            w["requests"],
            w["connections"],
        ]
        for w in document["workers"]
    ]
    summary = f"revision {document['revision']}, {document['crashes']} crash(es) since start"
    return summary + "\n" + table(header, rows)


def render_history(document: JSON) -> str:
    header = ["REVISION", "TIME (UTC)", "ACTOR", "ACTION", "TARGET", "CHANGE"]
    rows = [
        [
            change["revision"],
            _time(change["time"]),
            change["actor"],
            change["action"],
            change["target"],
            change_text(change.get("before"), change.get("after")) or None,
        ]
        for change in document["changes"]
    ]
    return table(header, rows)


def _time(iso: str) -> str:
    try:
        return f"{datetime.fromisoformat(iso):%Y-%m-%d %H:%M:%S}"
    except ValueError:
        return iso


def change_text(before: JSON | None, after: JSON | None) -> str:
    """What a history entry changed, in a few words (`blue 90, canary 10 -> blue 100,
    canary 0`; `blue-1 ready -> drain`); empty when there is nothing short to say."""
    old, new = before or {}, after or {}
    parts: list[str] = []
    old_routes, new_routes = old.get("routes") or {}, new.get("routes") or {}
    for name, route in new_routes.items():
        parts.extend(_route_change(name, old_routes.get(name), route))
    old_pools, new_pools = old.get("pools") or {}, new.get("pools") or {}
    for name, pool in new_pools.items():
        parts.extend(_pool_change(name, old_pools.get(name), pool))
    return "; ".join(parts)


def _route_change(name: str, old: JSON | None, new: JSON) -> list[str]:
    if old is None:
        return [f"route {name} added"]
    parts = []
    if old.get("weights") != new.get("weights"):
        parts.append(f"{_pairs(old.get('weights'))} -> {_pairs(new.get('weights'))}")
    if old.get("active") != new.get("active"):
        parts.append(f"active {old.get('active')} -> {new.get('active')}")
    return parts


def _pairs(weights: Any) -> str:
    # History stores the route's spec: weights as [[pool, weight], ...].
    try:
        return ", ".join(f"{pool} {weight}" for pool, weight in weights)
    except (TypeError, ValueError):
        return str(weights)


def _pool_change(name: str, old: JSON | None, new: JSON) -> list[str]:
    before = {b["name"]: b for b in (old or {}).get("backends", [])}
    after = {b["name"]: b for b in new.get("backends", [])}
    parts = [f"+{name}/{b}" for b in after if b not in before]
    parts += [f"-{name}/{b}" for b in before if b not in after]
    for backend, now in after.items():
        then = before.get(backend)
        if then is None:
            continue
        if then.get("admin_state") != now.get("admin_state"):
            parts.append(f"{name}/{backend} {then.get('admin_state')} -> {now.get('admin_state')}")
        if then.get("weight") != now.get("weight"):
            parts.append(f"{name}/{backend} weight {then.get('weight')} -> {now.get('weight')}")
    return parts
