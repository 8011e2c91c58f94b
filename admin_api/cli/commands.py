"""One function per admin command: call the API, print what it answered (admin_api.cli.output).

`dispatch` wraps each one as proxy.cli calls it: the client made from --admin-url/--token or
the environment, and every failure turned into an exit status with one message on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TypeAlias

from admin_api.cli.args import UsageError
from admin_api.cli.output import (
    EXIT_INTERRUPTED,
    EXIT_PROBLEM,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    TOKEN_ENV,
    URL_ENV,
    describe_problem,
    emit_frame,
    emit_json,
    show,
)
from admin_api.cli.render import (
    backend_summary,
    pool_summary,
    render_history,
    render_pools,
    render_route,
    render_routes,
    render_workers,
    route_pools,
    route_summary,
)
from admin_api.client import DEFAULT_URL, JSON, AdminClient, AdminError, AdminUnreachable

Command = Callable[[AdminClient, argparse.Namespace], int]


Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_command(
    parent: Subparsers,
    name: str,
    handler: Command,
    help: str,
    common: argparse.ArgumentParser,
    examples: Sequence[str],
) -> argparse.ArgumentParser:
    """One admin command under `parent`: its help, the admin options (`common`), its examples
    (on the demo's configuration) after the options, and the handler it dispatches to."""
    lines = "\n".join(f"  {line}" for line in examples)
    parser: argparse.ArgumentParser = parent.add_parser(
        name,
        help=help,
        description=help,
        parents=[common],
        epilog=f"examples (the demo's config.example.toml):\n{lines}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(command=dispatch(handler))
    return parser


def dispatch(handler: Command) -> Callable[[argparse.Namespace], int]:
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


def status(client: AdminClient, args: argparse.Namespace) -> int:
    watching = args.watch or args.count is not None
    count = args.count if watching else 1
    shown = 0
    try:
        while True:
            document = _status_once(client, args.route)
            if args.json:
                # Watching: one JSON document per line (NDJSON), so a script can stream them.
                emit_json(document, compact=watching)
            elif args.route is None:
                emit_frame(render_routes(document), watching)
            else:
                emit_frame(render_route(document["route"], document["pools"]), watching)
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


def _status_once(client: AdminClient, route: str | None) -> JSON:
    """What `status` shows once, as JSON: every route, or one route and its pools."""
    if route is None:
        return client.routes()
    view = client.route(route)
    names = route_pools(view)
    pools = [pool for pool in client.pools()["pools"] if pool["name"] in names]
    pools.sort(key=lambda pool: names.index(pool["name"]))
    return {"route": view, "pools": pools}


def weights(client: AdminClient, args: argparse.Namespace) -> int:
    wanted: dict[str, int] = {}
    for pool, weight in args.weights:
        if pool in wanted:
            raise UsageError(f"weights: pool {pool!r} given twice")
        wanted[pool] = weight
    view = client.set_weights(args.route, wanted, force=args.force, if_match=args.if_match)
    return show(args, view, lambda: route_summary(view))


def switch(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.switch(args.route, args.to, force=args.force)
    return show(args, view, lambda: route_summary(view))


def rollback(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.rollback(args.route, force=args.force)
    return show(args, view, lambda: route_summary(view))


def promote(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.promote(args.route, args.pool, force=args.force)
    return show(args, view, lambda: route_summary(view))


def abort(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.abort(args.route)
    return show(args, view, lambda: route_summary(view))


def undo(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.undo(args.route, args.revision, force=args.force)
    return show(args, view, lambda: route_summary(view))


DEFAULT_DRAIN_WAIT = 60.0


def drain(client: AdminClient, args: argparse.Namespace) -> int:
    pool, backend = args.backend
    wait = None
    if args.wait or args.timeout is not None:
        wait = args.timeout if args.timeout is not None else DEFAULT_DRAIN_WAIT
    view = client.patch_backend(pool, backend, admin_state="drain", wait=wait, force=args.force)
    return show(args, view, lambda: backend_summary(pool, view))


def enable(client: AdminClient, args: argparse.Namespace) -> int:
    pool, backend = args.backend
    view = client.patch_backend(pool, backend, admin_state="ready")
    return show(args, view, lambda: backend_summary(pool, view))


def backend_add(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.add_backend(
        args.pool, args.name, args.url, weight=args.weight, admin_state=args.admin_state
    )
    return show(args, view, lambda: pool_summary(view) + "\n" + render_pools([view]))


def backend_remove(client: AdminClient, args: argparse.Namespace) -> int:
    pool, backend = args.backend
    view = client.remove_backend(pool, backend, force=args.force)
    return show(args, view, lambda: pool_summary(view) + "\n" + render_pools([view]))


def history(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.history(args.limit)
    return show(args, view, lambda: render_history(view))


def workers(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.workers()
    return show(args, view, lambda: render_workers(view))


def reload(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.reload()
    return show(args, view, lambda: f"reloaded the configuration: revision {view['revision']}")
