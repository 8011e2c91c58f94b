"""The OpenAPI 3.1 document, generated from the endpoint table and its pydantic models.

OpenAPI 3.1 schemas are JSON Schema 2020-12, which is what pydantic emits, so each model's
schema goes into `components.schemas` as is (with its nested definitions hoisted there too).
`servers` is the one part made per request: the address the reader reached this instance by
(its Host header), else the listener's own address, never a fixed default that tools following
the document would take to another instance.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel

from admin_api.auth import READ_METHODS
from admin_api.http import IF_MATCH_PATTERN
from admin_api.models import ProblemView

if TYPE_CHECKING:
    from admin_api.app import Endpoint

REF = "#/components/schemas/{model}"

LOCAL_WAIT = {
    "name": "wait",
    "in": "query",
    "required": False,
    "description": "Fleet mode: `local` answers once this instance applied the change, not once "
    "every live instance has (admin_api.fleet)",
    "schema": {"type": "string", "enum": ["local"]},
    "example": "local",
}


STATUS_TEXT = {
    200: "OK",
    201: "Created",
    400: "Malformed request (JSON, query, If-Match)",
    401: "Missing or wrong bearer token",
    403: 'The token is read-only (role = "read"): GET, HEAD and OPTIONS only',
    404: "Unknown route, pool or backend",
    409: "Conflict with the current state (e.g. no eligible backend; force to override)",
    412: "If-Match names a stale revision; nothing was changed",
    413: "Body too large",
    415: "Body is not application/json",
    422: "Invalid body or invalid resulting state (errors[] names each field)",
    503: "Not ready; fleet mode: etcd cannot be reached (a write changed nothing)",
    504: "Fleet mode: the write is made, but not every live instance applied it in time "
    "(`instances` names them)",
}


_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
"""A Host header this document may name as its server: a name or an address, and a port."""


def server_url(request: web.Request) -> str:
    """Where this instance's admin API is, as seen by the client of `request`."""
    host = request.headers.get("Host", "")
    if _HOST.fullmatch(host):
        return f"http://{host}"
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    address, port = (sockname[0], sockname[1]) if sockname else ("127.0.0.1", 9901)
    return f"http://[{address}]:{port}" if ":" in address else f"http://{address}:{port}"


def document(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}

    def ref(model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(by_alias=True, ref_template=REF)
        for name, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas.setdefault(model.__name__, schema)
        return {"$ref": REF.format(model=model.__name__)}

    problem = {"application/problem+json": {"schema": ref(ProblemView)}}
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "summary": endpoint.summary,
            # HEAD shares its GET's handler; operation ids must still be unique.
            "operationId": endpoint.handler.__name__
            + ("Head" if endpoint.method == "HEAD" else ""),
            "responses": {},
        }
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", endpoint.path)
        ]
        parameters += [
            {
                "name": query.name,
                "in": "query",
                "required": False,
                "description": query.description,
                "schema": dict(query.schema),
                "example": query.example,
            }
            for query in endpoint.query
        ]
        if 504 in endpoint.errors and all(query.name != "wait" for query in endpoint.query):
            parameters.append(LOCAL_WAIT)
        if 412 in endpoint.errors:  # the writes whose handler reads If-Match
            parameters.append(
                {
                    "name": "If-Match",
                    "in": "header",
                    "required": False,
                    "description": "Apply only if the current revision is among these: "
                    '"<revision>", a list ("3", "4") or *; weak tags (W/"3") never match',
                    "schema": {"type": "string", "pattern": IF_MATCH_PATTERN},
                }
            )
        if parameters:
            operation["parameters"] = parameters
        if endpoint.body is not None:
            operation["requestBody"] = {
                "required": not endpoint.body_optional,
                "content": {"application/json": {"schema": ref(endpoint.body)}},
            }
        success: dict[str, Any] = {"description": STATUS_TEXT.get(endpoint.status, "OK")}
        if endpoint.method == "HEAD":
            pass  # a status and headers, never a body
        elif endpoint.response is not None:
            success["content"] = {endpoint.media: {"schema": ref(endpoint.response)}}
        elif endpoint.media.startswith("text/"):
            success["content"] = {endpoint.media: {"schema": {"type": "string"}}}
        else:
            success["content"] = {endpoint.media: {"schema": {"type": "object"}}}
        operation["responses"][str(endpoint.status)] = success
        # Every call but the public ones needs the token whenever tokens are configured, and
        # every write one whose role is "write".
        errors = sorted(
            {
                *endpoint.errors,
                *(() if endpoint.public else (401,)),
                *(() if endpoint.public or endpoint.method in READ_METHODS else (403,)),
            }
        )
        for status in errors:
            operation["responses"][str(status)] = {"description": STATUS_TEXT.get(status, "Error")}
            if endpoint.method != "HEAD":
                operation["responses"][str(status)]["content"] = problem
        if endpoint.public:
            operation["security"] = []
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "turnout admin API",
            "version": "1",
            "description": "Change traffic at runtime: weights, blue-green switches, rollbacks, "
            "drains. Every change bumps the revision and returns once every worker applied it.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
