"""What a worker reports each second: the counters that moved, not all of them.

Theory of operation. A worker's counters are cumulative: one `RouteReport` per (route, pool) and
one `BackendReport` per (pool, backend), each the totals since the worker started, and their keys
only ever appear (proxy.dataplane keeps a route's `RouteStats` and a backend's `Target` for the
life of the process). With a large configuration and little traffic almost none of them move
from one second to the next, yet sending them all made the control plane unpickle thousands of
objects a second (~7 % of its CPU with 2,000 backends and no traffic).

So a worker's `Stats` is `partial`: its `routes` and `backends` hold only the entries that differ
from the ones this process sent before (`Sent`, on the worker), and the control plane rebuilds
the whole picture with `merge`, against the whole `Stats` it last rebuilt for the same channel
(proxy.supervisor). A channel is one ordered stream from one process, so the control plane always
holds exactly what the worker's delta was computed against; a restarted worker gets a new
channel, its first report is against nothing (so it carries every entry, zeros included: an
entry's presence is visible in /metrics) and the control plane starts again from that. What the
control plane hands on (`Slot.stats`, `Telemetry.update`, `query_stats`) is always the whole
`Stats`, as the worker would have sent it: /metrics, the admin API, rollouts and drains read the
same values as before, and a worker restart is handled as before (the departing process's last
whole `Stats` is retired).

Whether an entry moved is its report's equality with the one last sent (every field, gauges
such as in-flight and open connections included), so nothing that changed can be left out.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from proxy.channel import Stats
from proxy.metrics import BackendReport, RouteReport

Key = tuple[str, str]
Report = TypeVar("Report", RouteReport, BackendReport)


class Sent:
    """The worker's side: the reports last sent on its channel, to leave out the ones equal."""

    __slots__ = ("backends", "routes")

    def __init__(self) -> None:
        self.routes: dict[Key, RouteReport] = {}
        self.backends: dict[Key, BackendReport] = {}

    def routes_changed(self, reports: dict[Key, RouteReport]) -> dict[Key, RouteReport]:
        return _changed(self.routes, reports)

    def backends_changed(self, reports: dict[Key, BackendReport]) -> dict[Key, BackendReport]:
        return _changed(self.backends, reports)


def _changed(sent: dict[Key, Report], reports: dict[Key, Report]) -> dict[Key, Report]:
    """The entries of `reports` not equal to the ones in `sent`; `sent` is updated to match:
    call it only for a report that is then sent."""
    changed: dict[Key, Report] = {}
    for key, report in reports.items():
        if sent.get(key) != report:
            changed[key] = sent[key] = report
    return changed


def merge(previous: Stats | None, stats: Stats) -> Stats:
    """The whole `Stats` a worker's `stats` stands for, given the whole one rebuilt from the
    previous message on the same channel (None: this is the process's first)."""
    if not stats.partial:
        return stats
    if previous is None:
        return replace(stats, partial=False)
    # New dicts, not updated in place: callers keep earlier Stats (query_stats compares them
    # by identity; the dashboard's series are differences between two of them).
    routes = dict(previous.routes)
    new_route_keys = not routes.keys() >= stats.routes.keys()
    routes.update(stats.routes)
    if new_route_keys:
        routes = _in_report_order(routes)
    # Backends need no reordering: the whole report lists them in the order their targets
    # first appeared (DataPlane.targets only grows), which is the order they are appended in.
    backends = dict(previous.backends)
    backends.update(stats.backends)
    return replace(stats, routes=routes, backends=backends, partial=False)


def _in_report_order(routes: dict[Key, RouteReport]) -> dict[Key, RouteReport]:
    """`routes` in the order the worker's whole report has them. It lists (route, pool) by
    route, then by pool, each in the order it first appeared (DataPlane.stats: a dict of
    dicts that only grows); appended as they first appear, a later pool of an earlier route
    would come last instead. Only when an entry is new (rare): the order reaches whatever
    iterates the sums unsorted (the dashboard's series)."""
    by_route: dict[str, list[Key]] = {}
    for key in routes:
        by_route.setdefault(key[0], []).append(key)
    return {key: routes[key] for keys in by_route.values() for key in keys}
