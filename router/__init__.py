"""turnout's router: pure routing decisions over one immutable snapshot.

This package imports nothing that does I/O (no asyncio, aiohttp or prometheus_client); a test
proves it. The data plane, the admin API and the tests all route through the same functions:

    snapshot = build_snapshot(spec)                 # validate + compile, once per change
    decision = decide(meta, snapshot, roll)         # which route, rule and pool, and why
    index = pick_backend(decision.pool, loads, roll)  # which backend in the pool

Importing it does nothing else either: no file read, no import hook. Whether the compiled
build of its hot modules runs is decided outside, by whoever starts the process (proxy/native.py).
"""

from router.build import Problem, SpecError, build_snapshot
from router.decide import decide
from router.decision import Decision, RequestMeta, RuleKind, normalise_host
from router.edits import (
    abort,
    promote,
    rollback,
    switch_active,
    with_admin_state,
    with_backend,
    with_backend_added,
    with_backend_removed,
    with_health,
    with_health_view,
    with_route,
    with_weights,
)
from router.failover import fail_over
from router.hashing import bucket_of
from router.merge import carry_runtime
from router.pick import Loaded, pick_backend
from router.snapshot import Backend, HeaderRule, Pool, Route, Snapshot
from router.spec import (
    BUCKETS,
    AdminState,
    BackendSpec,
    Failover,
    HeaderRuleSpec,
    Health,
    MatchKind,
    Mode,
    PoolSpec,
    RouteSpec,
    Spec,
    StickySpec,
)

__all__ = [
    "BUCKETS",
    "AdminState",
    "Backend",
    "BackendSpec",
    "Decision",
    "Failover",
    "HeaderRule",
    "HeaderRuleSpec",
    "Health",
    "Loaded",
    "MatchKind",
    "Mode",
    "Pool",
    "PoolSpec",
    "Problem",
    "RequestMeta",
    "Route",
    "RouteSpec",
    "RuleKind",
    "Snapshot",
    "Spec",
    "SpecError",
    "StickySpec",
    "abort",
    "bucket_of",
    "build_snapshot",
    "carry_runtime",
    "decide",
    "fail_over",
    "normalise_host",
    "pick_backend",
    "promote",
    "rollback",
    "switch_active",
    "with_admin_state",
    "with_backend",
    "with_backend_added",
    "with_backend_removed",
    "with_health",
    "with_health_view",
    "with_route",
    "with_weights",
]
