"""`turnout roll POOL`: replace a pool's backends batch by batch, in place or by surge.

The same conventions as the other admin commands (admin_api.cli): the client from
--admin-url/--token or the environment, plain text by default and the API's JSON with --json,
the same exit codes. Only the options given are sent: the rest comes from the pool's defaults
on the server ([pools.NAME.rollout], else the built-in ones). The mode: --exec or --hook-url
mean in place, --to means surge, none leaves it to the pool's defaults. The rollout is then
driven with `turnout rollout status|pause|resume|abort POOL` (admin_api.cli.rollout).

--exec takes the hook's program and its arguments up to the next option, as argv (no shell):
an argument that begins with `-` would be read as an option of turnout's, so a hook that needs
one is called through a script.
"""

from __future__ import annotations

import argparse
import time

from admin_api.cli import commands as run
from admin_api.cli import roll_render as render
from admin_api.cli.args import revision
from admin_api.cli.output import EXIT_PROBLEM, emit_frame, emit_json, show
from admin_api.cli.rollout import count, duration, fraction, ratio
from admin_api.cli.rollout_render import is_final
from admin_api.client import JSON, AdminClient

EXAMPLES: tuple[str, ...] = (
    "turnout roll blue --exec ./deploy.sh --batch 1",
    "turnout roll blue --exec ./deploy.sh v2 --min-healthy-time 1m --wait",
    "turnout roll blue --to blue-new-1=http://10.0.0.8:8080,blue-new-2=http://10.0.0.9:8080",
    "turnout rollout status blue --watch",
    "turnout rollout abort blue --pool",
)
"""Shown under --help, named for the demo's pools (config.example.toml)."""

WAIT_INTERVAL = 1.0


def new_backends(text: str) -> list[JSON]:
    """`name=url,name=url`: the surge's new backends."""
    found: list[JSON] = []
    for part in text.split(","):
        name, sep, url = part.strip().partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise argparse.ArgumentTypeError(
                f"{part.strip()!r}: expected NAME=URL, e.g. blue-new-1=http://10.0.0.8:8080"
            )
        found.append({"name": name, "url": url})
    return found


def roll(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.start_pool_rollout(args.pool, start_body(args), if_match=args.if_match)
    if not args.wait:
        return show(args, view, lambda: render.render_pool_rollout(view))
    return wait(client, args, view)


def wait(client: AdminClient, args: argparse.Namespace, view: JSON) -> int:
    """Show the rollout until it is final: exit 0 when every batch is done, 1 when it was
    aborted (by its judge, a hook, a deadline or a person). Ctrl-C stops watching, not it."""
    try:
        while True:
            if args.json:
                emit_json(view, compact=True)  # one document a line (NDJSON)
            else:
                emit_frame(render.render_pool_rollout(view), True)
            if is_final(view):
                return 0 if view.get("phase") == "promoted" else EXIT_PROBLEM
            time.sleep(args.interval)
            view = client.pool_rollout(args.pool)
    except KeyboardInterrupt:
        return 0


def start_body(args: argparse.Namespace) -> JSON:
    """The request body: only what the command line gave."""
    body: JSON = {}
    hook: JSON = {}
    if args.exec is not None:
        body["mode"], hook["command"] = "in-place", args.exec
    elif args.hook_url is not None:
        body["mode"], hook["url"] = "in-place", args.hook_url
    elif args.to is not None:
        body["mode"], body["newBackends"] = "surge", args.to
    if args.hook_timeout is not None:
        hook["timeout"] = args.hook_timeout
    if hook:
        body["hook"] = hook
    given = {
        "batch": args.batch,
        "drainTimeout": args.drain_timeout,
        "healthyDeadline": args.healthy_deadline,
        "minHealthyTime": args.min_healthy_time,
        "keepOld": args.keep_old,
        "autoRevert": args.auto_revert,
        "webhook": args.webhook,
    }
    body.update({key: value for key, value in given.items() if value is not None})
    judge = {"alpha": args.alpha, "tolerance": args.tolerance, "minRequests": args.min_requests}
    judge = {key: value for key, value in judge.items() if value is not None}
    if judge:
        body["judge"] = judge
    return body


def register(commands: run.Subparsers, common: argparse.ArgumentParser) -> None:
    """Add `turnout roll` under `turnout`'s subcommands (`common`: the admin options)."""
    parser = run.add_command(
        commands,
        "roll",
        roll,
        "replace a pool's backends batch by batch (in place by a hook, or surge), judged",
        common,
        EXAMPLES,
    )
    parser.add_argument("pool", metavar="POOL")
    how = parser.add_mutually_exclusive_group()
    how.add_argument(
        "--exec",
        nargs="+",
        metavar=("PROGRAM", "ARG"),
        help="in place: the replace hook, run for each backend (no shell) with TURNOUT_ACTION,"
        " TURNOUT_POOL, TURNOUT_BACKEND and TURNOUT_BACKEND_URL in its environment",
    )
    how.add_argument(
        "--hook-url", metavar="URL", help="in place: a webhook receiving the same as JSON"
    )
    how.add_argument(
        "--to",
        type=new_backends,
        action="extend",
        metavar="NAME=URL,...",
        help="surge: the new backends (added in maint, health-gated, then given each batch's"
        " traffic)",
    )
    parser.add_argument("--batch", type=count, metavar="N", help="backends at a time (1)")
    for option, help in (
        ("--drain-timeout", "in place: a drained backend still busy by then fails (60s)"),
        ("--healthy-deadline", "a replaced or new backend must pass its checks by then (5m)"),
        ("--min-healthy-time", "each batch is held, healthy and judged, this long (30s)"),
        ("--hook-timeout", "in place: the hook is killed after this long (5m)"),
        ("--keep-old", "surge: the old backends are kept this long for an instant rollback (10m)"),
    ):
        parser.add_argument(option, type=duration, metavar="DURATION", help=help)
    parser.add_argument(
        "--no-auto-revert",
        dest="auto_revert",
        action="store_const",
        const=False,
        help="in place: on a failure, stop (do not revert what was replaced)",
    )
    parser.add_argument("--alpha", type=fraction, help="false-abort bound (0.01)")
    parser.add_argument("--tolerance", type=ratio, help="error-rate ratio to detect (1.5)")
    parser.add_argument(
        "--min-requests", type=count, metavar="N", help="per batch, to call it not worse"
    )
    parser.add_argument("--webhook", metavar="URL", help="POSTed on every phase change")
    parser.add_argument(
        "--wait",
        action="store_true",
        help="show it until it is done (exit 0) or aborted (exit 1); Ctrl-C stops watching",
    )
    parser.add_argument(
        "--interval", type=duration, default=WAIT_INTERVAL, help="--wait: between refreshes (1s)"
    )
    parser.add_argument(
        "--if-match",
        type=revision,
        metavar="REV",
        help="refuse (412) unless the current revision is still REV",
    )
