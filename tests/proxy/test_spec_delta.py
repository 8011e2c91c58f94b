"""A worker rebuilds the control plane's spec from a delta and the objects it already holds."""

from __future__ import annotations

import pickle
from dataclasses import replace

from proxy.spec_delta import spec_delta
from router import BackendSpec, PoolSpec, RouteSpec, Spec


def _spec() -> Spec:
    pools = tuple(
        PoolSpec(name=f"p{i}", backends=(BackendSpec(f"b{i}", "127.0.0.1", 9000 + i),))
        for i in range(3)
    )
    routes = tuple(RouteSpec(name=f"r{i}", weights=((f"p{i}", 1),)) for i in range(3))
    return Spec(pools=pools, routes=routes)


def test_a_delta_names_what_did_not_change_and_carries_what_did() -> None:
    before = _spec()
    edited = replace(before.routes[1], weights=(("p1", 2),))
    added = PoolSpec(name="p9", backends=())
    after = Spec(pools=(*before.pools[1:], added), routes=(before.routes[0], edited))
    delta = spec_delta(before, after)
    assert delta.pools == ("p1", "p2", added)
    assert delta.routes == ("r0", edited)
    # As a worker gets it: through pickle, applied to its own copy.
    held = pickle.loads(pickle.dumps(before))
    rebuilt = pickle.loads(pickle.dumps(delta)).apply(held)
    assert rebuilt == after
    assert rebuilt.pools[0] is held.pools[1]
    assert rebuilt.routes[0] is held.routes[0]


def test_an_unchanged_spec_is_an_empty_delta() -> None:
    spec = _spec()
    delta = spec_delta(spec, replace(spec))
    assert delta.pools is None
    assert delta.routes is None
    assert delta.apply(spec) == spec
