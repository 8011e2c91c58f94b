"""Validate a spec and compile it into a snapshot: the only place routing input is checked.

Every problem is reported with the dotted path of the field it concerns, in the shape of the
config file ("routes.web.weights.canary"), so an operator can find it without reading code.
All problems are collected before raising, so one run of `turnout check-config` lists them all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import accumulate
from types import MappingProxyType

from router.failover import failover_fields
from router.hashing import salted
from router.reuse import Reuse
from router.snapshot import Backend, HeaderRule, Pool, Route, Snapshot, Sticky
from router.spec import HeaderRuleSpec, Health, PoolSpec, RouteSpec, Spec, StickySpec
from router.split import layout

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
"""Pool, backend, route and rule names: lower case, because environment overrides
(TURNOUT_POOLS__CANARY__...) arrive lower-cased and must reach the same key."""

TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""RFC 9110 §5.6.2 token: header names and cookie names."""

HOST = re.compile(
    r"(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)

MAX_POOLS_PER_SPLIT = 64

_PoolRef = Callable[[str | None, str], "Pool | None"]


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class SpecError(ValueError):
    """A spec that cannot be routed by; `problems` names every offending field."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(problem) for problem in problems))


def build_snapshot(
    spec: Spec,
    health: Mapping[tuple[str, str], Health] | None = None,
    revision: int = 1,
    readmitted: Mapping[tuple[str, str], float] | None = None,
    previous: Snapshot | None = None,
) -> Snapshot:
    """Validate `spec` and compile it; raises SpecError listing every problem found.

    `health`: (pool, backend) -> health, healthy when absent. `readmitted`: (pool, backend) ->
    wall time it became healthy again, for pools with slow start. `previous`: a valid snapshot
    this one replaces; its compiled pools and routes that nothing changed are kept rather than
    built again (router.reuse), so a change costs what it changed, not the whole spec.
    """
    health = MappingProxyType(dict(health or {}))
    readmitted = MappingProxyType(dict(readmitted or {}))
    reuse = Reuse(previous, health, readmitted) if previous is not None else None
    problems: list[Problem] = []
    pools = _compile_pools(spec, health, readmitted, problems, reuse)
    routes = tuple(
        (reuse.route(route, pools) if reuse is not None else None)
        or _compile_route(route, pools, problems)
        for route in _unique_routes(spec, problems)
    )
    if problems:
        raise SpecError(problems)
    rule_headers = frozenset(rule.header for route in routes for rule in route.rules)
    return Snapshot(
        revision=revision,
        spec=spec,
        health=health,
        pools=MappingProxyType(pools),
        routes=routes,
        rule_headers=rule_headers,
        reads_path=any(route.path_prefix != "/" for route in routes),
        reads_cookie=any(route.sticky is not None for route in routes),
        catch_all=routes[0]
        if routes and routes[0].any_host and routes[0].path_prefix == "/"
        else None,
        readmitted=readmitted,
    )


def _compile_pools(
    spec: Spec,
    health: Mapping[tuple[str, str], Health],
    readmitted: Mapping[tuple[str, str], float],
    problems: list[Problem],
    reuse: Reuse | None = None,
) -> dict[str, Pool]:
    pools: dict[str, Pool] = {}
    for pool_spec in spec.pools:
        where = f"pools.{pool_spec.name}"
        if not NAME.fullmatch(pool_spec.name):
            problems.append(Problem(where, bad_name(pool_spec.name)))
        if pool_spec.name in pools:
            problems.append(Problem(where, "defined twice"))
        kept = reuse.pool(pool_spec) if reuse is not None else None
        pools[pool_spec.name] = kept or _compile_pool(pool_spec, health, readmitted, problems)
    return pools


def _compile_pool(
    pool_spec: PoolSpec,
    health: Mapping[tuple[str, str], Health],
    readmitted: Mapping[tuple[str, str], float],
    problems: list[Problem],
) -> Pool:
    backends: list[Backend] = []
    seen: set[str] = set()
    for index, spec in enumerate(pool_spec.backends):
        where = f"pools.{pool_spec.name}.backends[{index}]"
        if not NAME.fullmatch(spec.name):
            problems.append(Problem(f"{where}.name", bad_name(spec.name)))
        if spec.name in seen:
            problems.append(Problem(f"{where}.name", f"backend {spec.name!r} defined twice"))
        seen.add(spec.name)
        if not spec.host:
            problems.append(Problem(f"{where}.url", "needs a host"))
        if not 0 < spec.port < 65536:
            problems.append(Problem(f"{where}.url", f"port {spec.port} is not in 1..65535"))
        if spec.weight < 0:
            problems.append(Problem(f"{where}.weight", "must be zero or positive"))
        backends.append(
            Backend(
                pool=pool_spec.name,
                name=spec.name,
                host=spec.host,
                port=spec.port,
                weight=spec.weight,
                admin_state=spec.admin_state,
                health=health.get((pool_spec.name, spec.name), "healthy"),
            )
        )
    where = f"pools.{pool_spec.name}"
    if not 0 <= pool_spec.panic_threshold <= 100:
        problems.append(Problem(f"{where}.panic_threshold", "must be a percentage, 0..100"))
    if pool_spec.slow_start < 0:
        problems.append(Problem(f"{where}.slow_start", "must be zero or positive"))
    eligible = tuple(backend for backend in backends if backend.eligible)
    ready = [b for b in backends if b.admin_state == "ready" and b.weight > 0]
    panic = bool(
        ready
        and pool_spec.panic_threshold
        and 100 * len(eligible) < pool_spec.panic_threshold * len(ready)
    )
    if panic:
        # Envoy's panic mode, when configured: too few healthy backends to carry the load, so
        # spread it over every ready one rather than crush the survivors.
        eligible = tuple(ready)
    ramp: tuple[tuple[int, float], ...] = ()
    if pool_spec.slow_start > 0:
        ramp = tuple(
            (index, readmitted[backend.key])
            for index, backend in enumerate(eligible)
            if backend.key in readmitted
        )
    return Pool(
        name=pool_spec.name,
        backends=tuple(backends),
        eligible=eligible,
        cumulative=tuple(accumulate(backend.weight for backend in eligible)),
        weights=tuple(backend.weight for backend in eligible),
        panic=panic,
        slow_start=pool_spec.slow_start,
        ramp=ramp,
        ramp_until=max((start for _, start in ramp), default=0.0) + pool_spec.slow_start,
    )


def _unique_routes(spec: Spec, problems: list[Problem]) -> list[RouteSpec]:
    seen: set[str] = set()
    for route in spec.routes:
        if route.name in seen:
            problems.append(Problem(f"routes.{route.name}", "defined twice"))
        seen.add(route.name)
    return list(spec.routes)


def _compile_route(spec: RouteSpec, pools: Mapping[str, Pool], problems: list[Problem]) -> Route:
    where = f"routes.{spec.name}"
    start = len(problems)
    if not NAME.fullmatch(spec.name):
        problems.append(Problem(where, bad_name(spec.name)))

    def pool_ref(name: str | None, field: str) -> Pool | None:
        if name is None:
            return None
        pool = pools.get(name)
        if pool is None:
            problems.append(Problem(field, f"unknown pool {name!r}"))
        return pool

    hosts = [host.lower().rstrip(".") for host in spec.hosts]
    for index, host in enumerate(hosts):
        if host != "*" and not HOST.fullmatch(host):
            problems.append(Problem(f"{where}.hosts[{index}]", f"{host!r} is not a host name"))
    if not spec.path_prefix.startswith("/"):
        problems.append(Problem(f"{where}.path_prefix", "must start with '/'"))
    prefix = spec.path_prefix.rstrip("/") or "/"

    rules = tuple(
        rule
        for index, rule_spec in enumerate(spec.rules)
        if (rule := _compile_rule(rule_spec, f"{where}.rules[{index}]", pool_ref, problems))
    )
    rule_names = [rule.name for rule in spec.rules]
    if len(set(rule_names)) != len(rule_names):
        problems.append(Problem(f"{where}.rules", "rule names must be unique"))

    split_pools: tuple[Pool, ...] = ()
    split_bounds: tuple[int, ...] = ()
    active: Pool | None = None
    if spec.mode == "weighted":
        if spec.colours or spec.active or spec.previous:
            problems.append(
                Problem(where, "colours/active/previous belong to mode 'blue-green' only")
            )
        split_pools, split_bounds = _compile_split(
            spec.weights, f"{where}.weights", pool_ref, problems
        )
        if spec.previous_weights is not None:
            _compile_split(spec.previous_weights, f"{where}.previous_weights", pool_ref, problems)
    else:
        if spec.weights:
            problems.append(Problem(f"{where}.weights", "belongs to mode 'weighted' only"))
        if len(spec.colours) < 2:
            problems.append(Problem(f"{where}.pools", "blue-green needs at least two pools"))
        if len(set(spec.colours)) != len(spec.colours):
            problems.append(Problem(f"{where}.pools", "a pool is listed twice"))
        for index, colour in enumerate(spec.colours):
            pool_ref(colour, f"{where}.pools[{index}]")
        if spec.active is None:
            problems.append(Problem(f"{where}.active", "blue-green needs an active pool"))
        elif spec.active not in spec.colours:
            problems.append(Problem(f"{where}.active", f"{spec.active!r} is not one of pools"))
        else:
            active = pools.get(spec.active)
        if spec.previous is not None and (
            spec.previous not in spec.colours or spec.previous == spec.active
        ):
            problems.append(
                Problem(f"{where}.previous", "must be another one of the route's pools")
            )
        if spec.sticky is not None:
            problems.append(Problem(f"{where}.sticky", "belongs to mode 'weighted' only"))

    cookie_attributes = ""
    if spec.sticky is not None:
        cookie_attributes = _compile_sticky(spec.sticky, f"{where}.sticky", problems)
    fallback = pool_ref(spec.fallback_pool, f"{where}.fallback_pool")

    if len(problems) > start:
        # build_snapshot raises before anybody routes by this value.
        return _INVALID_ROUTE
    return Route(
        name=spec.name,
        mode=spec.mode,
        any_host=not hosts or "*" in hosts,
        exact_hosts=frozenset(host for host in hosts if not host.startswith("*")),
        wildcard_suffixes=tuple(host[1:] for host in hosts if host.startswith("*.")),
        path_prefix=prefix,
        rules=rules,
        split_pools=split_pools,
        split_bounds=split_bounds,
        active=active,
        sticky=(
            Sticky(
                spec.sticky.cookie,
                spec.sticky.salt,
                spec.sticky.issue,
                set_cookie_prefix=f"{spec.sticky.cookie}=".encode("latin-1"),
                set_cookie_suffix=cookie_attributes.encode("latin-1"),
                salted=salted(spec.sticky.salt),
            )
            if spec.sticky is not None
            else None
        ),
        cookie_attributes=cookie_attributes,
        fallback=fallback,
        failover=spec.failover,
        **failover_fields(spec, pools),
    )


def _compile_split(
    weights: tuple[tuple[str, int], ...],
    where: str,
    pool_ref: _PoolRef,
    problems: list[Problem],
) -> tuple[tuple[Pool, ...], tuple[int, ...]]:
    if not weights:
        problems.append(Problem(where, "a weighted route needs weights for at least one pool"))
        return (), ()
    if len(weights) > MAX_POOLS_PER_SPLIT:
        problems.append(Problem(where, f"at most {MAX_POOLS_PER_SPLIT} pools in one split"))
        return (), ()
    names = [name for name, _ in weights]
    if len(set(names)) != len(names):
        problems.append(Problem(where, "a pool is listed twice"))
    resolved: dict[str, Pool] = {}
    for name, weight in weights:
        if weight < 0:
            problems.append(Problem(f"{where}.{name}", f"weight {weight} is negative"))
        pool = pool_ref(name, f"{where}.{name}")
        if pool is not None:
            resolved[name] = pool
    if len(resolved) != len(weights) or any(weight < 0 for _, weight in weights):
        return (), ()
    try:
        order, bounds = layout(weights)
    except ValueError as error:
        problems.append(Problem(where, str(error)))
        return (), ()
    return tuple(resolved[name] for name in order), bounds


def _compile_rule(
    spec: HeaderRuleSpec, where: str, pool_ref: _PoolRef, problems: list[Problem]
) -> HeaderRule | None:
    start = len(problems)
    if not NAME.fullmatch(spec.name):
        problems.append(Problem(f"{where}.name", bad_name(spec.name)))
    if not TOKEN.fullmatch(spec.header):
        problems.append(Problem(f"{where}.header", f"{spec.header!r} is not a header name"))
    pattern: re.Pattern[str] | None = None
    if spec.match in ("exact", "regex") and spec.value is None:
        problems.append(Problem(f"{where}.value", f"match {spec.match!r} needs a value"))
    elif spec.match == "exact" and spec.value is not None and spec.value != spec.value.strip(" \t"):
        # RFC 9110 §5.5: a request's value is compared without its surrounding whitespace.
        problems.append(
            Problem(f"{where}.value", "has surrounding whitespace, so it could never match")
        )
    elif spec.match == "present" and spec.value is not None:
        problems.append(Problem(f"{where}.value", "match 'present' takes no value"))
    elif spec.match == "regex" and spec.value is not None:
        try:
            pattern = re.compile(spec.value)
        except re.error as error:
            problems.append(Problem(f"{where}.value", f"invalid regex: {error}"))
    pool = pool_ref(spec.pool, f"{where}.pool")
    if pool is None or len(problems) > start:
        return None
    return HeaderRule(
        name=spec.name,
        header=spec.header.lower(),
        match=spec.match,
        value=spec.value,
        pool=pool,
        pattern=pattern,
    )


def _compile_sticky(sticky: StickySpec, where: str, problems: list[Problem]) -> str:
    if not TOKEN.fullmatch(sticky.cookie):
        problems.append(Problem(f"{where}.cookie", f"{sticky.cookie!r} is not a cookie name"))
    if sticky.max_age < 0:
        problems.append(Problem(f"{where}.max_age", "must be zero or positive"))
    # ASCII (RFC 6265 §4.1.1): the attributes are encoded once per build, never per request.
    path = sticky.path
    if not path.startswith("/") or not path.isascii() or any(c in path for c in ";\r\n\0"):
        problems.append(Problem(f"{where}.path", "must start with '/', be ASCII and hold no ';'"))
    if sticky.same_site == "None" and not sticky.secure:
        # Browsers drop SameSite=None cookies that are not Secure.
        problems.append(Problem(f"{where}.same_site", "SameSite=None requires secure = true"))
    parts = [f"; Max-Age={sticky.max_age}", f"; Path={sticky.path}"]
    if sticky.secure:
        parts.append("; Secure")
    if sticky.http_only:
        parts.append("; HttpOnly")
    parts.append(f"; SameSite={sticky.same_site}")
    return "".join(parts)


def bad_name(name: str) -> str:
    """Why `name` is refused by NAME (a pool rollout's new backends are named the same way)."""
    return f"{name!r} is not a valid name (lower-case letters, digits, '-' and '_', 1-63 chars)"


_INVALID_ROUTE = Route(
    name="",
    mode="weighted",
    any_host=False,
    exact_hosts=frozenset(),
    wildcard_suffixes=(),
    path_prefix="/",
    rules=(),
    split_pools=(),
    split_bounds=(),
    active=None,
    sticky=None,
    cookie_attributes="",
    fallback=None,
)
