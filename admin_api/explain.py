"""POST /v1/explain: route a described request with the proxy's own pure router, and say why.

The data plane and this endpoint call the same `router.decide` on the same snapshot, so the
answer is what the proxy does, not a re-implementation of it. Only the backend inside the pool
is not predicted: it depends on live in-flight counts (power of two choices).
"""

from __future__ import annotations

from random import getrandbits

from admin_api import models
from router import RequestMeta, Snapshot, decide, normalise_host
from router.paths import normalise_target
from router.split import percentages


def explain_request(
    ask: models.ExplainRequest,
    snapshot: Snapshot,
    normalize: bool = True,
    merge_slashes: bool = False,
) -> models.ExplainView:
    """Raises router.paths.InvalidPath for a path the proxy would answer 400."""
    headers = {name.lower(): value for name, value in ask.headers.items()}
    cookie = headers.get("cookie")
    if ask.cookies:
        pairs = "; ".join(f"{name}={value}" for name, value in ask.cookies.items())
        cookie = f"{cookie}; {pairs}" if cookie else pairs
    host = normalise_host(ask.host or headers.get("host", ""))
    path = ask.path.split("?", 1)[0] or "/"
    if normalize:  # as the data plane's admission does (latin-1: the request line's bytes)
        path = normalise_target(path.encode("latin-1"), merge_slashes).decode("latin-1")
    roll = ask.roll if ask.roll is not None else getrandbits(64)
    decision = decide(RequestMeta(host, path, headers, cookie), snapshot, roll)
    route, pool = decision.route, decision.pool
    why: list[str] = []
    split = None
    if route is None:
        why.append(f"no route matches host {host or '(none)'!r} and path {path!r}: 404")
    else:
        spec = snapshot.spec.route(route.name)
        assert spec is not None
        hosts = ", ".join(spec.hosts) or "any host"
        why.append(f"route {route.name!r} matched ({hosts}, path prefix {spec.path_prefix})")
        if spec.mode == "weighted":
            split = {name: round(share, 4) for name, share in percentages(spec.weights).items()}
        why.append(
            _rule_reason(decision.rule, decision.rule_name, decision.bucket, decision.issued_cookie)
        )
        if decision.fallback_from is not None:
            why.append(
                f"pool {decision.fallback_from!r} has no eligible backend: failed over to "
                f"{pool.name if pool else None!r}"
            )
        if pool is not None and not pool.eligible:
            why.append(f"pool {pool.name!r} has no eligible backend: 503")
    deterministic = decision.rule in ("header", "active", "no-route") or (
        decision.rule == "cookie" and decision.issued_cookie is None
    )
    backends = []
    if pool is not None:
        eligible = {backend.name for backend in pool.eligible}
        backends = [
            models.ExplainBackend(name=b.name, weight=b.weight, eligible=b.name in eligible)
            for b in pool.backends
        ]
    return models.ExplainView(
        revision=snapshot.revision,
        path=path,
        route=route.name if route else None,
        rule=decision.rule,
        rule_name=decision.rule_name,
        pool=pool.name if pool else None,
        fallback_from=decision.fallback_from,
        bucket=decision.bucket,
        issued_cookie=decision.issued_cookie,
        deterministic=deterministic,
        split=split,
        backends=backends,
        why=why,
    )


def _rule_reason(rule: str, name: str | None, bucket: int | None, issued: str | None) -> str:
    if rule == "header":
        return f"header rule {name!r} matched"
    if rule == "active":
        return "blue-green: the active colour takes every request"
    if rule == "cookie" and issued is not None:
        return f"no sticky cookie: a new one would be issued ({issued}), bucket {bucket}"
    if rule == "cookie":
        return f"sticky cookie hashed to bucket {bucket}"
    return f"no sticky cookie: weighted random, bucket {bucket} of 0..9999"
