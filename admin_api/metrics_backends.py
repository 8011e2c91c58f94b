"""The per-backend families of /metrics (and the pools' panic gauge), written as text.

These are most of a large instance's /metrics (16 lines a backend). What depends only on the
routing snapshot (the escaped `backend="…",pool="…"` label strings, and the whole of the
up/eligible/admin-state/weight/panic families) is written once per snapshot: snapshots are
immutable and replaced whole, so the one cached is valid exactly while it is the current one.
Only the workers' and the health checker's counters are formatted per scrape.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from admin_api.metrics_text import TextFamily, label_value, number
from proxy.control.values import InstanceState
from router import Snapshot

ADMIN_STATES = ("ready", "drain", "maint")

_REPORTED: tuple[tuple[str, str, str, Callable[[object], int]], ...] = (
    # (name, help, type, the BackendReport field), in /metrics' order
    (
        "turnout_backend_requests_in_flight",
        "Requests in flight (WebSockets included).",
        "gauge",
        operator.attrgetter("inflight"),
    ),
    (
        "turnout_upstream_connections",
        "Upstream connections open (idle or busy).",
        "gauge",
        operator.attrgetter("connections"),
    ),
    (
        "turnout_upstream_connect_errors",
        "Failed connects to the backend.",
        "counter",
        operator.attrgetter("connect_errors"),
    ),
    (
        "turnout_upstream_timeouts",
        "Responses not started within read_timeout.",
        "counter",
        operator.attrgetter("timeouts"),
    ),
    (
        "turnout_upstream_retries",
        "Requests retried elsewhere after failing here.",
        "counter",
        operator.attrgetter("retries"),
    ),
    # turnout_upstream_attempts_total's counts per backend: what a pool rollout's judge
    # compares (the replaced backends against the ones not replaced yet).
    (
        "turnout_backend_attempts",
        "Upstream attempts sent to the backend (retries included).",
        "counter",
        operator.attrgetter("attempts"),
    ),
    (
        "turnout_backend_attempt_errors",
        "Upstream attempts to the backend that failed, by the rules of "
        "turnout_upstream_attempt_errors_total.",
        "counter",
        operator.attrgetter("attempt_errors"),
    ),
)


@dataclass(frozen=True, slots=True)
class _Layout:
    """What one snapshot alone decides of the backend families."""

    snapshot: Snapshot
    backends: tuple[tuple[tuple[str, str], str], ...]
    """((pool, backend), its escaped label string `backend="…",pool="…"`), in /metrics' order."""
    up: tuple[str, ...]
    eligible: tuple[str, ...]
    admin: tuple[str, ...]
    weight: tuple[str, ...]
    panic: tuple[str, ...]


class BackendFamilies:
    """Writes the backend families of each scrape; keeps the current snapshot's layout."""

    def __init__(self) -> None:
        self._layout: _Layout | None = None

    def collect(self, state: InstanceState) -> Iterator[TextFamily]:
        layout = self._layout
        if layout is None or layout.snapshot is not state.snapshot:
            layout = self._layout = _layout_of(state.snapshot)
        yield TextFamily(
            "turnout_backend_up", "1: healthy (probes pass, not ejected).", "gauge", layout.up
        )
        yield TextFamily(
            "turnout_backend_eligible", "1: takes new requests.", "gauge", layout.eligible
        )
        yield TextFamily(
            "turnout_backend_admin_state",
            "1 for the backend's admin state.",
            "gauge",
            layout.admin,
        )
        yield TextFamily("turnout_backend_weight", "Weight in its pool.", "gauge", layout.weight)
        reports = state.backends
        reported = [
            (labels, report)
            for key, labels in layout.backends
            if (report := reports.get(key)) is not None
        ]
        for name, help_text, kind, field in _REPORTED:
            exposed = name + "_total" if kind == "counter" else name
            lines = [
                f"{exposed}{{{labels}}} {number(field(report))}\n" for labels, report in reported
            ]
            yield TextFamily(name, help_text, kind, lines)
        ejections, probes = [], []
        health = state.health
        for key, labels in layout.backends:
            counters = health.get(key)
            if counters is None:
                continue
            ejections.append(
                f'turnout_backend_ejections_total{{{labels},reason="probe"}} '
                f"{number(counters.ejected_by_probes)}\n"
                f'turnout_backend_ejections_total{{{labels},reason="outlier"}} '
                f"{number(counters.ejected_by_outliers)}\n"
            )
            if counters.checked:
                probes.append(
                    f'turnout_health_probes_total{{{labels},result="ok"}} '
                    f"{number(counters.probes_ok)}\n"
                    f'turnout_health_probes_total{{{labels},result="failed"}} '
                    f"{number(counters.probes_failed)}\n"
                )
        yield TextFamily(
            "turnout_backend_ejections",
            "Times taken out of rotation, by reason.",
            "counter",
            ejections,
        )
        yield TextFamily(
            "turnout_health_probes", "Active health probes, by result.", "counter", probes
        )
        yield TextFamily(
            "turnout_pool_panic", "1: the pool is in panic mode.", "gauge", layout.panic
        )


def _layout_of(snapshot: Snapshot) -> _Layout:
    backends, up, eligible, admin, weight, panic = [], [], [], [], [], []
    for pool in snapshot.pools.values():
        pool_label = label_value(pool.name)
        panic.append(f'turnout_pool_panic{{pool="{pool_label}"}} {number(int(pool.panic))}\n')
        routable = {backend.name for backend in pool.eligible}
        for backend in pool.backends:
            # generate_latest sorts the labels by name: backend, pool, then reason/result/state.
            labels = f'backend="{label_value(backend.name)}",pool="{pool_label}"'
            backends.append(((pool.name, backend.name), labels))
            up.append(
                f"turnout_backend_up{{{labels}}} {number(int(backend.health == 'healthy'))}\n"
            )
            eligible.append(
                f"turnout_backend_eligible{{{labels}}} {number(int(backend.name in routable))}\n"
            )
            weight.append(f"turnout_backend_weight{{{labels}}} {number(backend.weight)}\n")
            for admin_state in ADMIN_STATES:
                admin.append(
                    f'turnout_backend_admin_state{{{labels},state="{admin_state}"}} '
                    f"{number(int(backend.admin_state == admin_state))}\n"
                )
    return _Layout(
        snapshot,
        tuple(backends),
        tuple(up),
        tuple(eligible),
        tuple(admin),
        tuple(weight),
        tuple(panic),
    )
