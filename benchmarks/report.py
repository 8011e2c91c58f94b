"""Reporting a run: ratios first, then absolute figures; as a terminal table and as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.runner import Measurement, Results

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Ratio:
    scenario: str
    target: str
    rps_vs_nginx: float | None
    p99_vs_nginx: float | None
    rps_vs_direct: float | None


def ratios(results: Results) -> list[Ratio]:
    """Each proxy's requests/s and p99 relative to nginx as a proxy, and to no proxy at all."""
    by_key = {(m.scenario, m.target): m for m in results.measurements}
    rows = []
    for m in results.measurements:
        if m.target == "direct":
            continue
        nginx = by_key.get((m.scenario, "nginx"))
        direct = by_key.get((m.scenario, "direct"))
        rows.append(
            Ratio(
                scenario=m.scenario,
                target=m.target,
                rps_vs_nginx=_ratio(m.load.requests_per_s, nginx.load.requests_per_s)
                if nginx
                else None,
                p99_vs_nginx=_ratio(m.load.latency_ms["p99"], nginx.load.latency_ms["p99"])
                if nginx
                else None,
                rps_vs_direct=_ratio(m.load.requests_per_s, direct.load.requests_per_s)
                if direct
                else None,
            )
        )
    return rows


def _ratio(value: float, reference: float) -> float | None:
    return value / reference if reference > 0 else None


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
            }
            for r in ratios(results)
        ],
        "measurements": [_measurement_json(m) for m in results.measurements],
    }


def _measurement_json(m: Measurement) -> dict[str, Any]:
    deviation = max_deviation_pp(m)
    return {
        "scenario": m.scenario,
        "target": m.target,
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
    rows = ratios(results)
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
    lines.append("Absolute (latency in ms; CPU and memory of the proxy process tree)")
    lines += _table(
        [
            "scenario",
            "target",
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
        [_absolute_row(m) for m in results.measurements],
        left=(0, 1, 10),
    )
    shifted = [m for m in results.measurements if m.shifts is not None]
    if shifted:
        lines += ["", "Weight changes during the load (each PUT returns once every worker has it)"]
        lines += _table(
            ["scenario", "target", "changes", "failed", "round trip p50 ms", "max ms"],
            [
                [
                    m.scenario,
                    m.target,
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
    return "\n".join(lines)


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
        f"warmup; backends: {backend}, one process per backend\n"
        f"{params.get('workers', 1)} worker(s) per proxy; turnout's data plane "
        f"{params.get('data_plane', 'unknown')}; {pinning}"
    )


def _cpus(cpus: list[int]) -> str:
    return ",".join(str(cpu) for cpu in cpus)


def _absolute_row(m: Measurement) -> list[str]:
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
