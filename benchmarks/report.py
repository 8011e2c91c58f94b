"""Reporting a run: ratios first, then absolute figures; as a terminal table and as JSON.

With one run (the default) the tables show that run; with `--repeat N` they lead with the
median and spread (min-max) of every figure over the N runs, then list every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.runner import Measurement, Results
from benchmarks.summary import Ratio, Spread, ratios, summarise, summary_json

__all__ = ["Ratio", "ratios", "text", "to_json"]

MIB = 1024 * 1024


def max_deviation_pp(measurement: Measurement) -> float | None:
    if measurement.split is None:
        return None
    return max(abs(share.deviation_pp) for share in measurement.split.values())


def generator_ceiling(results: Results) -> dict[str, float] | None:
    """Per scenario, what the built-in load generator reaches against a backend directly."""
    if results.parameters["load_generator"] != "builtin":
        return None
    return {m.scenario: m.load.requests_per_s for m in results.measurements if m.target == "direct"}


def to_json(results: Results) -> dict[str, Any]:
    return {
        "machine": results.machine,
        "parameters": results.parameters,
        "notes": results.notes,
        "load_generator_ceiling_requests_per_s": generator_ceiling(results),
        "ratios": [
            {
                "scenario": r.scenario,
                "target": r.target,
                "requests_per_s_vs_nginx": r.rps_vs_nginx,
                "p99_vs_nginx": r.p99_vs_nginx,
                "requests_per_s_vs_direct": r.rps_vs_direct,
                "run": r.run,
            }
            for r in ratios(results)
        ],
        "measurements": [_measurement_json(m) for m in results.measurements],
        "summary": summary_json(summarise(results)),
    }


def _measurement_json(m: Measurement) -> dict[str, Any]:
    deviation = max_deviation_pp(m)
    cookie = {"set_cookie": m.set_cookie} if m.set_cookie is not None else {}
    return {
        "scenario": m.scenario,
        "target": m.target,
        "run": m.run,
        **cookie,
        **m.load.to_json(),
        "proxy_cpu_s_per_request": m.proxy_cpu_s_per_request,
        "proxy_peak_rss_bytes": m.proxy_peak_rss_bytes,
        "backend_requests": m.backend_requests,
        "split": None
        if m.split is None
        else {
            pool: {
                "requests": share.requests,
                "share_pct": round(share.share_pct, 3),
                "weight_pct": round(share.weight_pct, 3),
                "deviation_pp": round(share.deviation_pp, 3),
            }
            for pool, share in m.split.items()
        },
        "max_abs_deviation_pp": None if deviation is None else round(deviation, 3),
        "weight_changes": None
        if m.shifts is None
        else {
            "changes": m.shifts.changes,
            "failed": m.shifts.failed,
            "round_trip_ms_median": round(m.shifts.median_ms, 3),
            "round_trip_ms_max": round(m.shifts.max_ms, 3),
        },
    }


def text(results: Results) -> str:
    """The terminal report."""
    lines = [_header(results), ""]
    lines += [f"note: {note}" for note in results.notes]
    ceiling = generator_ceiling(results)
    if ceiling:
        lines.append(
            "note: built-in load generator ceiling (against a backend directly): "
            + ", ".join(f"{scenario} {rps:,.0f} req/s" for scenario, rps in ceiling.items())
        )
    if results.notes:
        lines.append("")
    repeat = results.parameters.get("repeat", 1)
    if repeat > 1:
        lines += _summary_table(results, repeat)
        lines.append("")
    rows = ratios(results) if repeat == 1 else []
    if rows:
        lines.append("Ratios (req/s: higher is better; p99: lower is better)")
        lines += _table(
            ["scenario", "target", "req/s vs nginx", "p99 vs nginx", "req/s vs direct"],
            [
                [r.scenario, r.target, _x(r.rps_vs_nginx), _x(r.p99_vs_nginx), _x(r.rps_vs_direct)]
                for r in rows
            ],
        )
        lines.append("")
    every = "; every run" if repeat > 1 else ""
    lines.append(f"Absolute (latency in ms; CPU and memory of the proxy process tree{every})")
    run_column = ["run"] if repeat > 1 else []
    lines += _table(
        [
            "scenario",
            "target",
            *run_column,
            "req/s",
            "p50",
            "p90",
            "p99",
            "max",
            "errors",
            "CPU µs/req",
            "peak RSS MiB",
            "split % (set)",
            "dev pp",
        ],
        [_absolute_row(m, repeat > 1) for m in results.measurements],
        left=(0, 1, 10 + len(run_column)),
    )
    shifted = [m for m in results.measurements if m.shifts is not None]
    if shifted:
        lines += ["", "Weight changes during the load (each PUT returns once every worker has it)"]
        lines += _table(
            ["scenario", "target", *run_column, "changes", "failed", "round trip p50 ms", "max ms"],
            [
                [
                    m.scenario,
                    m.target,
                    *([str(m.run)] if run_column else []),
                    str(m.shifts.changes),
                    str(m.shifts.failed),
                    f"{m.shifts.median_ms:.2f}",
                    f"{m.shifts.max_ms:.2f}",
                ]
                for m in shifted
                if m.shifts is not None
            ],
            left=(0, 1),
        )
    issued = [m for m in results.measurements if m.set_cookie is not None]
    if issued:
        lines += ["", "Cookies issued (the Set-Cookie a cookieless request got before the load)"]
        lines += [f"  {m.scenario} -> {m.target}: {m.set_cookie}" for m in issued if m.run == 1]
    return "\n".join(lines)


def _summary_table(results: Results, repeat: int) -> list[str]:
    lines = [
        f"Medians of {repeat} runs, targets interleaved run by run; (min-max) over the runs; "
        "ratios taken within each run",
        "(req/s: higher is better; p99 in ms: lower is better)",
    ]
    lines += _table(
        ["scenario", "target", "req/s", "p99", "req/s vs nginx", "p99 vs nginx", "req/s vs direct"],
        [
            [
                s.scenario,
                s.target,
                _spread(s.rps, "{:,.0f}"),
                _spread(s.p99_ms, "{:.2f}"),
                _spread(s.rps_vs_nginx, "{:.2f}x"),
                _spread(s.p99_vs_nginx, "{:.2f}x"),
                _spread(s.rps_vs_direct, "{:.2f}x"),
            ]
            for s in summarise(results)
        ],
    )
    return lines


def _spread(spread: Spread | None, form: str) -> str:
    if spread is None:
        return "-"
    return f"{form.format(spread.median)} ({form.format(spread.low)}-{form.format(spread.high)})"


def _header(results: Results) -> str:
    machine, params = results.machine, results.parameters
    tools = machine["tools"]
    generator = params["load_generator"]
    if generator == "wrk":
        generator = f"wrk {tools.get('wrk', '?')} (1 thread)"
    else:
        generator = "the built-in load generator (1 Python process)"
    backend = params["backend"]
    if backend == "nginx":
        backend = f"nginx {tools.get('nginx', '?')}"
    pinning = (
        f"proxy under test alone on CPU {_cpus(params['proxy_cpus'])}, backends and load "
        f"generator on CPU {_cpus(params['other_cpus'])}"
        if params["pinned"]
        else "not pinned to CPUs"
    )
    return (
        f"turnout benchmark: {machine['cpu_model']}, {machine['cores']} cores, "
        f"Linux {machine['kernel']}, Python {machine['python']}\n"
        f"load: {generator}, {params['duration_s']} s per run after {params['warmup_s']} s "
        f"warmup{_runs(params.get('repeat', 1))}; backends: {backend}, one process per backend\n"
        f"{params.get('workers', 1)} worker(s) per proxy; turnout's data plane "
        f"{params.get('data_plane', 'unknown')}; {pinning}"
    )


def _runs(repeat: int) -> str:
    return "" if repeat == 1 else f", {repeat} runs of each, interleaved"


def _cpus(cpus: list[int]) -> str:
    return ",".join(str(cpu) for cpu in cpus)


def _absolute_row(m: Measurement, with_run: bool = False) -> list[str]:
    latency = m.load.latency_ms
    split = "-"
    if m.split is not None:
        split = " / ".join(
            f"{pool} {share.share_pct:.1f} ({round(share.weight_pct, 1):g})"
            for pool, share in m.split.items()
        )
    deviation = max_deviation_pp(m)
    return [
        m.scenario,
        m.target,
        *([str(m.run)] if with_run else []),
        f"{m.load.requests_per_s:,.0f}",
        f"{latency['p50']:.2f}",
        f"{latency['p90']:.2f}",
        f"{latency['p99']:.2f}",
        f"{latency['max']:.2f}",
        str(m.load.errors),
        "-" if m.proxy_cpu_s_per_request is None else f"{m.proxy_cpu_s_per_request * 1e6:.1f}",
        "-" if m.proxy_peak_rss_bytes is None else f"{m.proxy_peak_rss_bytes / MIB:.1f}",
        split,
        "-" if deviation is None else f"{deviation:.2f}",
    ]


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _table(
    head: Sequence[str], rows: Sequence[Sequence[str]], left: Sequence[int] = (0, 1)
) -> list[str]:
    """Columns `left` (names) left-aligned, the others (numbers) right-aligned."""
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i in left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(head), line(["-" * width for width in widths]), *(line(r) for r in rows)]
