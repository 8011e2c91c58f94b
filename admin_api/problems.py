"""Errors as RFC 9457 problem documents, from one middleware: handlers just raise.

Every failure of an admin request is answered `application/problem+json` with `type`, `title`,
`status`, `detail` and, for invalid input, `errors` naming each field. Nothing is changed by a
request that fails: edits are pure and validated before anything is published.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from proxy.control.errors import (
    BackendInService,
    FleetLagging,
    InvalidConfig,
    NoEligibleBackend,
    NotFound,
    PreconditionFailed,
    RevisionUnavailable,
    RolloutConflict,
    SpecError,
    StateUnavailable,
)

log = logging.getLogger("turnout.admin")

PROBLEM_BASE = "urn:turnout:problem:"


class Problem(Exception):
    """Raise from a handler to answer with a problem document."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str = "",
        errors: Iterable[dict[str, str]] = (),
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.extra = extra or {}
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers or {}

    def response(self) -> web.Response:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return web.Response(
            status=self.status,
            body=orjson.dumps(body),
            content_type="application/problem+json",
            headers=self.headers,
        )


def not_found(what: str, name: str) -> Problem:
    return Problem(404, f"unknown-{what}", f"Unknown {what}", f"no {what} named {name!r}")


def invalid_change(error: SpecError) -> Problem:
    return Problem(
        422,
        "invalid-change",
        "The change would make an invalid routing state",
        str(error),
        [{"field": problem.field, "message": problem.message} for problem in error.problems],
    )


def no_eligible_backend(error: NoEligibleBackend) -> Problem:
    return Problem(
        409,
        "no-eligible-backend",
        "A pool would take more traffic with no eligible backend",
        f"pool(s) {', '.join(error.pools)} have no ready and healthy backend; "
        'send "force": true (DELETE: ?force=true) to do it anyway',
        [{"field": "pool", "message": f"{pool}: no eligible backend"} for pool in error.pools],
    )


def invalid_body(error: ValidationError) -> Problem:
    return Problem(
        422,
        "invalid-body",
        "Invalid request body",
        f"{error.error_count()} problem(s) in the request body",
        [
            {
                "field": ".".join(str(part) for part in item["loc"]) or "(body)",
                "message": item["msg"],
            }
            for item in error.errors()
        ],
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def refusal(error: Exception) -> Problem | None:
    """The problem document for what the control service refused; None for anything else."""
    if isinstance(error, PreconditionFailed):
        return Problem(
            412,
            "stale-revision",
            "The revision you based this change on is no longer current; nothing was changed",
            str(error),
            headers={"ETag": f'"{error.current}"'},
        )
    if isinstance(error, NotFound):
        return not_found(error.kind, error.name)
    if isinstance(error, SpecError):
        return invalid_change(error)
    if isinstance(error, NoEligibleBackend):
        return no_eligible_backend(error)
    if isinstance(error, RevisionUnavailable):
        return Problem(409, "revision-unavailable", "That revision cannot be restored", str(error))
    if isinstance(error, BackendInService):
        return Problem(
            409,
            "backend-in-service",
            "The backend still takes traffic",
            f"drain {error.pool}/{error.backend} first (PATCH adminState=drain, ?wait=...) "
            "or remove it with ?force=true",
        )
    if isinstance(error, RolloutConflict):
        return Problem(
            409,
            "rollout-conflict",
            "The rollout is not in a phase that allows this",
            error.detail,
            [{"field": "rollout", "message": f"{error.route}: {error.detail}"}],
        )
    if isinstance(error, InvalidConfig):
        return Problem(
            400,
            "invalid-config",
            "The configuration file is invalid; nothing was changed",
            f"{error.path}: {len(error.problems)} problem(s)",
            [{"message": problem} for problem in error.problems],
        )
    if isinstance(error, ValidationError):
        return invalid_body(error)
    return fleet_refusal(error)


def fleet_refusal(error: Exception) -> Problem | None:
    """Fleet mode: etcd away (nothing changed), or instances behind (the change is made)."""
    if isinstance(error, StateUnavailable):
        return Problem(
            503,
            "state-unavailable",
            "The fleet's shared state (etcd) cannot be reached; nothing was changed",
            f"{error}. Every instance keeps routing by its last state; try again once etcd "
            "answers.",
            headers={"Retry-After": "1"},
        )
    if isinstance(error, FleetLagging):
        return Problem(
            504,
            "fleet-lagging",
            "The change is made, but not every instance applied it in time",
            str(error),
            headers={"ETag": f'"{error.revision}"'},
            extra={"revision": error.revision, "instances": list(error.instances)},
        )
    return None


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as problem:
        return problem.response()
    except web.HTTPException as error:
        if error.status < 400:
            raise
        headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        slug = error.reason.lower().replace(" ", "-")
        return Problem(error.status, slug, error.reason, headers=headers).response()
    except Exception as error:
        refused = refusal(error)
        if refused is not None:
            return refused.response()
        log.exception("admin API: internal error on %s %s", request.method, request.path)
        return Problem(500, "internal", "Internal error").response()
