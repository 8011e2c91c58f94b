"""Shared states for the fleet's tests: small, valid, and different per revision."""

from __future__ import annotations

from proxy.fleet.layout import SharedState
from proxy.state import Change
from router import BackendSpec, PoolSpec, RouteSpec, Spec

POOLS = (
    PoolSpec("stable", (BackendSpec("s1", "127.0.0.1", 8001),)),
    PoolSpec("canary", (BackendSpec("c1", "127.0.0.1", 8002),)),
)


def spec(canary: int) -> Spec:
    weights = (("stable", 100 - canary), ("canary", canary))
    return Spec(pools=POOLS, routes=(RouteSpec("web", weights=weights),))


def state(revision: int) -> SharedState:
    """The state at `revision`: the canary's weight tells revisions apart."""
    return SharedState(revision, spec(0), spec(revision % 100))


def change(revision: int) -> Change:
    return Change(
        revision, 1_700_000_000.0 + revision, "local", "set-weights", "route/web", None, None
    )
