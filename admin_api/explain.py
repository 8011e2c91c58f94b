"""POST /v1/explain: route a described request with the proxy's own pure router, and say why.

The data plane and this endpoint call the same `router.decide` on the same snapshot, so the
answer is what the proxy does, not a re-implementation of it. Only the backend inside the pool
is not predicted: it depends on live in-flight counts (power of two choices).
"""

from __future__ import annotations

from random import getrandbits

from admin_api import models
from proxy.admission import admit_request_line, route_host, target_path
from proxy.failures import ProxyError
from router import RequestMeta, Snapshot, decide
from router.split import percentages


class Refused(Exception):
    """The proxy would answer this request itself (`error.status`), before routing it."""

    def __init__(self, field: str, error: ProxyError) -> None:
        super().__init__(error.detail)
        self.field = field
        self.error = error


def explain_request(
    ask: models.ExplainRequest,
    snapshot: Snapshot,
    normalize: bool = True,
    merge_slashes: bool = False,
    max_target: int = 32 * 1024,
) -> models.ExplainView:
    """Raises Refused for a request the proxy would refuse (400, 414, 501): its request line
    is read and admitted by the data plane's own code (proxy.admission)."""
    # As the proxy reads them (proxy.headers.rule_text): a value without the whitespace around it.
    headers = {name.lower(): value.strip(" \t") for name, value in ask.headers.items()}
    cookie = headers.get("cookie")
    if ask.cookies:
        pairs = "; ".join(f"{name}={value}" for name, value in ask.cookies.items())
        cookie = f"{cookie}; {pairs}" if cookie else pairs
    # Text goes on the wire as UTF-8; "surrogatepass" so that no string can fail to encode.
    method = ask.method.encode("utf-8", "surrogatepass")
    # The method alone first (with a target every method takes), so the error names the field.
    _, error = admit_request_line(method, b"/", b"", max_target)
    if error is not None:
        raise Refused("method", error)
    head, error = admit_request_line(
        method,
        ask.path.encode("utf-8", "surrogatepass"),
        (ask.host or headers.get("host", "")).encode("utf-8", "surrogatepass"),
        max_target,
        normalize,
        merge_slashes,
    )
    if error is not None:
        raise Refused("path", error)
    host = route_host(head.host)
    path = target_path(head.target)
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
