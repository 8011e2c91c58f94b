"""The bundled benchmark's command line: `python -m benchmarks` and `turnout bench`.

python -m benchmarks [--scenario NAME ...] [--targets turnout,direct,nginx,haproxy] [--pin]
                     [--repeat N] [--rollout]
python -m benchmarks router [--iterations N]
python -m benchmarks health [--backends 50] [--interval 1]
python -m benchmarks idle [--connections 10000] [--targets turnout,nginx,haproxy] [--json PATH]
python -m benchmarks control [--backends 100,1000,5000] [--json PATH]
python -m benchmarks judge [--rollouts 1000] [--json PATH]
python -m benchmarks rollout [--step-time 2] [--rate 1000] [--connections 10] [--json PATH]
python -m benchmarks roll [--slow-seconds 2] [--min-healthy-time 1] [--json PATH]
"""

# ruff: noqa: E402  (the build is chosen before the router benchmark imports the router)
from __future__ import annotations

from proxy import native

native.activate()

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from benchmarks import (
    chart,
    control_bench,
    health_bench,
    idle_bench,
    judge_sim,
    report,
    roll_bench,
    roll_report,
    rollout_bench,
    router_bench,
    steady_rollout,
)
from benchmarks.processes import ChildError, sigterm_as_interrupt
from benchmarks.progress import Progress
from benchmarks.runner import Plan, SetupError, resolve, run
from benchmarks.scenarios import DEFAULT_SCENARIOS, SCENARIOS
from benchmarks.targets import TARGETS, TargetName

RESULTS = Path(__file__).resolve().parent / "results"


Figures = TypeVar("Figures")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["router"]:
        return _router(args[1:])
    if args[:1] == ["health"]:
        return _health(args[1:])
    if args[:1] == ["idle"]:
        return _idle(args[1:])
    if args[:1] == ["control"]:
        return _control(args[1:])
    if args[:1] == ["judge"]:
        return _judge(args[1:])
    if args[:1] == ["rollout"]:
        return _rollout(args[1:])
    if args[:1] == ["roll"]:
        return _roll(args[1:])
    return _proxies(args)


def _prog() -> str:
    return "turnout bench" if Path(sys.argv[0]).name == "turnout" else "python -m benchmarks"


def _proxies(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="Load turnout, a backend directly, nginx and haproxy (as proxies making the "
        "same split) with wrk on loopback, and report throughput, latency, CPU per request, "
        "memory and the observed split. Everything is started here and stopped at the end.",
        epilog=f"Scenarios: {_scenario_help()}. Router micro-benchmark: {_prog()} router --help.",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[*SCENARIOS, "all"],
        help=f"repeatable; default: {', '.join(DEFAULT_SCENARIOS)}",
    )
    parser.add_argument(
        "--targets",
        type=_targets,
        help=f"comma-separated among {','.join(TARGETS)}; default: all that are installed",
    )
    parser.add_argument("--duration", type=_seconds, default=10, help="seconds per measured run")
    parser.add_argument(
        "--warmup", type=_seconds, default=2, help="seconds of unrecorded load before each run"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="measured runs of every scenario and target, the targets interleaved run by run; "
        "the report shows the median and spread (min-max) of each figure and of each ratio to "
        "nginx, ratios taken within a run (default 1)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the proxy under test alone to the last CPU, everything else to the others",
    )
    parser.add_argument(
        "--weights",
        type=_weights,
        default=(("stable", 50), ("canary", 50)),
        help="pools and their weights, baseline first (default: stable=50,canary=50)",
    )
    parser.add_argument("--backends-per-pool", type=int, default=1, choices=range(1, 9))
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        choices=range(1, 65),
        metavar="N",
        help="turnout worker processes (nginx gets N workers, HAProxy N threads); default 1",
    )
    parser.add_argument(
        "--rollout",
        action="store_true",
        help="measure every turnout target with a canary rollout running on its route (its "
        "first step at the configured split, held for the whole run): what judging costs",
    )
    parser.add_argument("--load-generator", choices=["auto", "wrk", "builtin"], default="auto")
    parser.add_argument("--backend", choices=["auto", "nginx", "builtin"], default="auto")
    parser.add_argument("--json", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--html", type=Path, default=RESULTS / "latest.html")
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the generated configurations and logs"
    )
    args = parser.parse_args(argv)
    if args.duration < 1:
        parser.error("--duration must be at least 1 second")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.rollout:
        try:
            steady_rollout.rollout_request(args.weights)
        except steady_rollout.SteadyRolloutError as error:
            parser.error(str(error))
    names = args.scenario or list(DEFAULT_SCENARIOS)
    if "all" in names:
        names = list(SCENARIOS)
    plan = Plan(
        scenarios=tuple(SCENARIOS[name] for name in dict.fromkeys(names)),
        targets=args.targets,
        duration=args.duration,
        warmup=args.warmup,
        pin=args.pin,
        weights=args.weights,
        backends_per_pool=args.backends_per_pool,
        load_generator=args.load_generator,
        backend=args.backend,
        keep_temp=args.keep_temp,
        workers=args.workers,
        repeat=args.repeat,
        rollout=args.rollout,
    )
    progress = Progress()
    try:
        with sigterm_as_interrupt():
            setup = resolve(plan)
            results = run(plan, setup, progress)
    except (SetupError, ChildError, steady_rollout.SteadyRolloutError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{parser.prog}: interrupted; every process it started is stopped", file=sys.stderr)
        return 130
    print(report.text(results))
    for path, content in (
        (args.json, json.dumps(report.to_json(results), indent=2) + "\n"),
        (args.html, chart.html(results)),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        progress.say(f"wrote {path}")
    return 0


def _health(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{_prog()} health",
        description="CPU the control plane spends on active health checks.",
    )
    parser.add_argument("--backends", type=int, default=50)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between probes")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    args = parser.parse_args(argv)
    cost = health_bench.run(args.backends, args.interval, args.duration)
    print(health_bench.text(cost))
    return 0


def _idle(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{_prog()} idle",
        description="Memory (RSS) of each proxy with N idle keep-alive client connections open "
        "through it, each after one GET /. Everything is started here and stopped at the end.",
    )
    parser.add_argument("--connections", type=int, default=10_000, metavar="N")
    parser.add_argument(
        "--targets",
        type=_idle_targets,
        help=f"comma-separated among {','.join(idle_bench.TARGETS)}; default: all installed",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.connections < 1:
        parser.error("--connections must be at least 1")
    targets = args.targets or idle_bench.installed_targets()
    return _report(
        parser,
        args.json,
        lambda say: idle_bench.run(args.connections, targets, say),
        idle_bench.text,
        idle_bench.to_json,
        (idle_bench.IdleError, ChildError),
    )


def _control(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{_prog()} control",
        description="The control plane as the configuration grows: for each size, turnout with "
        "that many loopback backends (5 a pool, 2 pools a route), health checks every second "
        "and no client traffic. Reports start to ready, the control plane's CPU and CPU per "
        "probe, an admin write's latency and GET /metrics. Everything is started here and "
        "stopped at the end.",
    )
    parser.add_argument(
        "--backends",
        type=_sizes,
        default=control_bench.DEFAULT_SIZES,
        help="comma-separated sizes, each a multiple of 10 "
        f"(default {','.join(str(n) for n in control_bench.DEFAULT_SIZES)})",
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds of the CPU window (default 10)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 600:
        parser.error("--duration must be between 1 and 600 seconds")
    return _report(
        parser,
        args.json,
        lambda say: control_bench.run(args.backends, args.duration, say),
        control_bench.text,
        control_bench.to_json,
        (control_bench.ControlError, ChildError),
    )


def _judge(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{_prog()} judge",
        description="The rollout judge alone, simulated (pure, seeded, no process started): "
        "false aborts of an identical canary against alpha, and canary requests to detection "
        "for canaries worse in errors or latency; Flagger's absolute threshold beside it.",
    )
    parser.add_argument(
        "--rollouts", type=int, default=1000, metavar="N", help="rollouts per case (default 1000)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.rollouts < 1:
        parser.error("--rollouts must be at least 1")
    # Pure and in-process: nothing to stop, no failure of its own.
    return _report(
        parser,
        args.json,
        lambda say: judge_sim.run(args.rollouts, say),
        judge_sim.text,
        judge_sim.to_json,
        (),
    )


def _rollout(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{_prog()} rollout",
        description="Rollouts end to end over real HTTP: turnout with 2 workers, a stable and a "
        "canary loopback backend, bounded client traffic; a healthy canary promoted through "
        "5/25/50/100 %%, a canary that starts failing at 25 %% (time to abort, failing answers, "
        "the restoring write's acknowledgement), a canary with no traffic (paused, never "
        "aborted). Everything is started here and stopped at the end.",
    )
    parser.add_argument(
        "--step-time",
        type=float,
        default=rollout_bench.DEFAULT_STEP_TIME,
        metavar="S",
        help=f"seconds each step is held at least (default {rollout_bench.DEFAULT_STEP_TIME:g})",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=rollout_bench.DEFAULT_RATE,
        help="client requests a second in all, 0 for as fast as the connections go "
        f"(default {rollout_bench.DEFAULT_RATE:g})",
    )
    parser.add_argument(
        "--connections", type=int, default=rollout_bench.DEFAULT_CONNECTIONS, metavar="N"
    )
    parser.add_argument(
        "--min-requests",
        type=int,
        default=rollout_bench.DEFAULT_MIN_REQUESTS,
        metavar="N",
        help="canary requests a step needs before it is judged "
        f"(default {rollout_bench.DEFAULT_MIN_REQUESTS})",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not 0.1 <= args.step_time <= 600:
        parser.error("--step-time must be between 0.1 and 600 seconds")
    if args.rate < 0 or args.connections < 1 or args.min_requests < 1:
        parser.error("--rate must be 0 or more, --connections and --min-requests at least 1")
    options = rollout_bench.Options(
        step_time=args.step_time,
        rate=args.rate,
        connections=args.connections,
        min_requests=args.min_requests,
    )
    return _report(
        parser,
        args.json,
        lambda say: rollout_bench.run(options, say),
        rollout_bench.text,
        rollout_bench.to_json,
        (rollout_bench.RolloutBenchError, ChildError),
    )


def _report(
    parser: argparse.ArgumentParser,
    json_path: Path | None,
    run: Callable[[Callable[[str], None]], Figures],
    text: Callable[[Figures], str],
    to_json: Callable[[Figures], object],
    failures: tuple[type[Exception], ...],
    problems: Callable[[Figures], list[str]] = lambda figures: [],
) -> int:
    """What every measuring subcommand does around its benchmark: run it (SIGTERM as Ctrl-C, so
    its processes are stopped either way), print its figures, write them as JSON if asked.
    Exit 1 on one of the benchmark's own `failures`, or (figures printed and written) when
    `problems` names a scenario that did not end as it must; 130 when interrupted."""
    progress = Progress()
    try:
        with sigterm_as_interrupt():
            figures = run(progress.say)
    except failures as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{parser.prog}: interrupted; every process it started is stopped", file=sys.stderr)
        return 130
    print(text(figures))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(to_json(figures), indent=2) + "\n")
        progress.say(f"wrote {json_path}")
    wrong = problems(figures)
    for problem in wrong:
        print(f"{parser.prog}: did not end as it must: {problem}", file=sys.stderr)
    return 1 if wrong else 0


def _roll(argv: list[str]) -> int:
    default = roll_bench.Options()
    parser = argparse.ArgumentParser(
        prog=f"{_prog()} roll",
        description="Pool rollouts (rolling replacement) end to end over real HTTP: turnout "
        "with 2 workers, backend programs that a replace hook really stops and restarts in a "
        "new version; in place under load with slow requests (failed requests: must be none), "
        "a new version answering 500s (requests it answered, time to revert), a surge aborted "
        "during a hold (abort to every worker routing to the old backends, failed requests "
        "across it). Exits 1 when a scenario does not end as it must. Everything is started "
        "here and stopped at the end.",
    )
    for flag, words in roll_report.FLAGS:
        value = getattr(default, flag.replace("-", "_"))
        parser.add_argument(
            f"--{flag}", type=type(value), default=value, help=f"{words} (default {value:g})"
        )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    options = roll_bench.Options(
        **{
            flag.replace("-", "_"): getattr(args, flag.replace("-", "_"))
            for flag, _ in roll_report.FLAGS
        }
    )
    wrong = roll_report.option_problems(options)
    if wrong:
        parser.error("; ".join(wrong))
    return _report(
        parser,
        args.json,
        lambda say: roll_bench.run(options, say),
        roll_report.text,
        roll_report.to_json,
        (roll_bench.RollBenchError, ChildError),
        roll_report.problems,
    )


def _sizes(value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(item) for item in value.split(",") if item.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("expected sizes like 100,1000,5000") from None
    if not sizes or any(size < 10 or size % 10 for size in sizes):
        raise argparse.ArgumentTypeError("each size a multiple of 10, at least 10")
    if max(sizes) > control_bench.MAX_BACKENDS:
        raise argparse.ArgumentTypeError(f"at most {control_bench.MAX_BACKENDS:,} backends")
    return sizes


def _router(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{_prog()} router",
        description="Nanoseconds per router.decide() and router.pick_backend() call.",
    )
    parser.add_argument("--iterations", type=int, default=200_000, help="calls per repeat")
    parser.add_argument("--repeats", type=int, default=7, help="the median of these is shown")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.repeats < 1:
        parser.error("--iterations and --repeats must be at least 1")
    timings = router_bench.run(args.iterations, args.repeats)
    print(router_bench.text(timings, args.iterations, args.repeats))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "iterations": args.iterations,
            "repeats": args.repeats,
            "ns_per_call": {t.case: {"median": t.median_ns, "min": t.min_ns} for t in timings},
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0


def _scenario_help() -> str:
    return "; ".join(f"{s.name}: {s.description}" for s in SCENARIOS.values())


def _targets(value: str) -> tuple[TargetName, ...]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in TARGETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose among {','.join(TARGETS)}")
    return tuple(name for name in TARGETS if name in names)


def _idle_targets(value: str) -> tuple[idle_bench.IdleTarget, ...]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names or any(name not in idle_bench.TARGETS for name in names):
        raise argparse.ArgumentTypeError(f"choose among {','.join(idle_bench.TARGETS)}")
    return tuple(name for name in idle_bench.TARGETS if name in names)


def _seconds(value: str) -> int:
    # wrk takes whole seconds.
    seconds = int(value.removesuffix("s"))
    if seconds < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return seconds


def _weights(value: str) -> tuple[tuple[str, int], ...]:
    pairs = []
    for item in value.split(","):
        name, _, weight = item.partition("=")
        if not name.strip() or not weight.strip().isdigit():
            raise argparse.ArgumentTypeError("expected pool=weight,pool=weight")
        pairs.append((name.strip(), int(weight)))
    if len(pairs) < 2 or not any(weight for _, weight in pairs):
        raise argparse.ArgumentTypeError("at least two pools, not all weights zero")
    return tuple(pairs)


if __name__ == "__main__":
    sys.exit(main())
