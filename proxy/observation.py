"""Observation: what an exchange counts, logs and explains once it is answered.

Counters always (under the (route, pool) the request was last routed to); the access log when
it is on and the request is sampled; the x-turnout-decision header when [debug] asks for it.
"""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING

from proxy.access_log import now as access_log_now
from proxy.metrics import NOT_ROUTED

if TYPE_CHECKING:
    from proxy.exchange import Exchange


def count_under(x: Exchange, route: str, pool: str) -> None:
    """Count this request under (route, pool) from now on (its in-flight share moves)."""
    x.stats.inflight -= 1
    x.stats = x.dp.stats_for(route, pool)
    x.stats.inflight += 1


def record(x: Exchange, status: int) -> None:
    """Phase: log and measure."""
    dp = x.dp
    dp.requests += 1
    # perf_counter, not loop.time(): libuv's loop clock moves in whole milliseconds.
    duration = perf_counter() - x.started_at
    stats = x.stats
    stats.inflight -= 1
    stats.bytes_in += x.bytes_in
    stats.bytes_out += x.bytes_out
    decision = x.decision
    rule = decision.rule if decision is not None else NOT_ROUTED
    stats.finished(status, rule, duration)
    log = x.limits.access_log
    if log is not None and log.wanted():
        log.write(log_fields(x, status, duration))


def log_fields(x: Exchange, status: int, duration: float) -> dict[str, object]:
    head, decision = x.head, x.decision
    target = head.target
    if not x.limits.access_log_query:
        target = target.split(b"?", 1)[0]
    upstream = x.head_at - x.upstream_at if x.head_at and x.upstream_at else None
    return {
        "time": access_log_now(),
        "id": x.request_id.decode("latin-1"),
        "client": x.ds.peer_ip.decode(),
        "method": head.method.decode("latin-1"),
        "path": target.decode("latin-1"),
        "status": status,
        "duration": round(duration, 6),
        "upstream": round(upstream, 6) if upstream is not None else None,
        "route": x.stats.route,
        "rule": decision.rule if decision is not None else NOT_ROUTED,
        "pool": x.stats.pool,
        "backend": backend_name(x),
        "bucket": decision.bucket if decision is not None else None,
        "in": x.bytes_in,
        "out": x.bytes_out,
        "fallback_from": decision.fallback_from if decision is not None else None,
    }


def backend_name(x: Exchange) -> str | None:
    """The backend of the last attempt (None when none was picked)."""
    decision = x.decision
    if decision is None or decision.pool is None or not x.tried:
        return None
    eligible = decision.pool.eligible
    index = x.tried[-1]
    return eligible[index].name if index < len(eligible) else None


def explain(x: Exchange) -> bytes:
    """The x-turnout-decision header's value (debugging only; see [debug])."""
    decision = x.decision
    stats = x.stats
    rule = decision.rule if decision is not None else NOT_ROUTED
    parts = [f"route={stats.route}", f"rule={rule}", f"pool={stats.pool}"]
    if decision is None:
        return " ".join(parts).encode("latin-1")
    # Like every other field, the backend is left out when there is none (a 503: the pool
    # had no backend to pick).
    backend = backend_name(x)
    if backend is not None:
        parts.append(f"backend={backend}")
    if decision.rule_name is not None:
        parts.append(f"rule_name={decision.rule_name}")
    if decision.bucket is not None:
        parts.append(f"bucket={decision.bucket}")
    if decision.fallback_from is not None:
        parts.append(f"fallback_from={decision.fallback_from}")
    return " ".join(parts).encode("latin-1")
