"""The `turnout` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

# Every module is imported by the commands that use it: the proxy's own (pydantic, uvloop, the
# router, the whole instance) by run, check-config and demo, so that the admin commands
# (status, weights, ...) start in a third of the time; the admin CLI's parsers (standard library
# only) when the parser is built; the benchmark only by bench.
if TYPE_CHECKING:
    from router import Snapshot

EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    command: int = args.command(args)
    return command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="turnout",
        description="Traffic-splitting reverse proxy for blue-green, canary and rolling deploys.",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--version", action=_Version, nargs=0, help="print turnout's version and exit"
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the proxy")
    run.add_argument("--config", "-c", required=True, type=Path, help="TOML configuration file")
    run.set_defaults(command=_run)

    check = commands.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("config", type=Path)
    check.set_defaults(command=_check_config)

    demo = commands.add_parser(
        "demo", help="start demo backends (blue, green, canary) and the proxy in front of them"
    )
    demo.add_argument("--config", "-c", type=Path, default=Path("config.example.toml"))
    demo.add_argument("--port", type=_port, help="the proxy's port (default: the config's)")
    demo.add_argument(
        "--admin-port", type=_port, help="the admin API's port (default: the config's)"
    )
    demo.set_defaults(command=_demo)

    # The benchmark parses its own arguments: prefix_chars that no argument starts with make
    # every one of them, options included, land in `args` untouched.
    bench = commands.add_parser(
        "bench",
        help="run the bundled benchmark (turnout bench --help)",
        add_help=False,
        prefix_chars="\0",
    )
    bench.add_argument("args", nargs=argparse.REMAINDER)
    bench.set_defaults(command=_bench)

    # status, weights, switch, drain, ...: drive a running instance through its admin API.
    from admin_api.cli import register as register_admin_commands

    register_admin_commands(commands)
    return parser


class _Version(argparse.Action):
    # The installed package's metadata, read only when asked: every other command skips it.
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from importlib.metadata import version

        print(f"turnout {version('turnout')}")
        parser.exit()


def _run(args: argparse.Namespace) -> int:
    _choose_build()
    import uvloop

    from proxy.config import ConfigError, load_config
    from proxy.instance import run

    try:
        settings, snapshot = load_config(args.config)
    except ConfigError as error:
        print(f"turnout: {error}", file=sys.stderr)
        return EXIT_CONFIG
    status: int = uvloop.run(run(args.config, settings, snapshot, args.log_level))
    return status


def _check_config(args: argparse.Namespace) -> int:
    _choose_build()
    from proxy.config import ConfigError, load_config

    try:
        _, snapshot = load_config(args.config)
    except ConfigError as error:
        print(f"turnout: {error}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"{args.config}: OK")
    print(describe(snapshot))
    return 0


def _choose_build() -> None:
    """Compiled build or sources (proxy/native.py): before anything imports the router, so
    first in every command that does; the admin commands never load it."""
    from proxy import native

    native.activate()


def describe(snapshot: Snapshot) -> str:
    """A human summary of routes and pools, as check-config and the demo print it."""
    from router.split import percentages

    lines = []
    for route in snapshot.routes:
        spec = snapshot.spec.route(route.name)
        assert spec is not None
        hosts = ",".join(spec.hosts) or "*"
        if spec.mode == "blue-green":
            target = f"blue-green: active {spec.active} (of {', '.join(spec.colours)})"
        else:
            shares = percentages(spec.weights)
            target = "weighted: " + ", ".join(
                f"{name} {shares[name]:g}%" for name, _ in spec.weights
            )
            if spec.sticky is not None:
                target += f", sticky on cookie {spec.sticky.cookie!r}"
        rules = "".join(
            f"\n      rule {rule.name}: {rule.header} {rule.match} {rule.value or ''} -> {rule.pool}"
            for rule in spec.rules
        )
        lines.append(
            f"  route {route.name}: host {hosts} path {spec.path_prefix} -> {target}{rules}"
        )
    for pool in snapshot.pools.values():
        backends = ", ".join(f"{b.name}={b.host}:{b.port}" for b in pool.backends)
        lines.append(f"  pool {pool.name}: {backends or '(no backends)'}")
    return "\n".join(lines)


def _demo(args: argparse.Namespace) -> int:
    _choose_build()
    import uvloop

    from proxy.config import ConfigError, load_config
    from proxy.demo import run_demo

    try:
        settings, snapshot = load_config(args.config)
    except ConfigError as error:
        print(f"turnout: {error}", file=sys.stderr)
        return EXIT_CONFIG
    status: int = uvloop.run(
        run_demo(args.config, settings, snapshot, port=args.port, admin_port=args.admin_port)
    )
    return status


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port (1-65535)")
    return port


def _bench(args: argparse.Namespace) -> int:
    _choose_build()
    # Imported only here: the proxy itself never loads the benchmark.
    from benchmarks.__main__ import main as bench_main

    return bench_main(args.args)


if __name__ == "__main__":
    sys.exit(main())
