"""Which wins when the configuration file changes under runtime changes: the precedence rule.

Operators change weights, colours and admin states at runtime (admin API); the configuration
file can change too (reload, restart). The rule, per route and per pool:

    if the file's definition of it did not change since it was last loaded,
    the runtime state is kept; otherwise the file's new definition takes over.

So a reload that only touches timeouts keeps the canary at the weight an operator set, while
editing a route in the file (new weights, new rules) is an explicit decision that wins. Routes
and pools removed from the file are gone; new ones come from the file. Route order is always the
file's (it decides which route matches first).
"""

from __future__ import annotations

from router.spec import Spec


def carry_runtime(previous_file: Spec, new_file: Spec, runtime: Spec) -> Spec:
    """The spec to run after the file changed from `previous_file` to `new_file`."""
    pools = tuple(
        runtime_pool
        if previous_file.pool(pool.name) == pool
        and (runtime_pool := runtime.pool(pool.name)) is not None
        else pool
        for pool in new_file.pools
    )
    routes = tuple(
        runtime_route
        if previous_file.route(route.name) == route
        and (runtime_route := runtime.route(route.name)) is not None
        else route
        for route in new_file.routes
    )
    return Spec(pools=pools, routes=routes)
