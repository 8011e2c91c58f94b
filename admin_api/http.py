"""Small pieces every admin endpoint uses: bodies, preconditions, JSON answers, durations."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel

from admin_api.auth import ACTOR
from admin_api.problems import Problem

BODY = "turnout.body"

Body = TypeVar("Body", bound=BaseModel)


def respond(model: BaseModel, status: int = 200, revision: int | None = None) -> web.Response:
    headers = {"ETag": f'"{revision}"'} if revision is not None else None
    return web.Response(
        body=orjson.dumps(model.model_dump(mode="json", by_alias=True)),
        status=status,
        content_type="application/json",
        headers=headers,
    )


async def parse_body(request: web.Request, model: type[BaseModel], optional: bool) -> BaseModel:
    """The request body as `model`: JSON only, bounded (by the app), every field checked."""
    if optional and not request.body_exists:
        return model()
    if request.content_type != "application/json":
        raise Problem(
            415, "unsupported-media-type", "Unsupported media type", "send application/json"
        )
    raw = await request.read()
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise Problem(400, "malformed-json", "Malformed JSON", str(error)) from error
    return model.model_validate(data)


def body(request: web.Request, model: type[Body]) -> Body:
    """The body the endpoint table declared, already validated."""
    parsed = request[BODY]
    assert isinstance(parsed, model), f"endpoint declares {type(parsed)}, handler wants {model}"
    return parsed


def actor(request: web.Request) -> str:
    name: str = request[ACTOR]
    return name


def if_match(request: web.Request) -> int | None:
    """The revision an `If-Match: "<revision>"` write was based on (None: unconditional)."""
    value = request.headers.get("If-Match")
    if value is None or value.strip() == "*":
        return None
    match = re.fullmatch(r'\s*(?:W/)?"?(\d+)"?\s*', value)
    if match is None:
        raise Problem(
            400, "bad-precondition", "Malformed If-Match", 'expected If-Match: "<revision>"'
        )
    return int(match.group(1))


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m)?")


def duration(value: str, name: str, maximum: float = 600.0) -> float:
    """`30s`, `500ms`, `2m` or plain seconds."""
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        raise Problem(
            400, "bad-query", "Bad query parameter", f"{name}: expected e.g. 30s, 500ms, 2m"
        )
    number = float(match.group(1))
    seconds = {"ms": number / 1000, "m": number * 60}.get(match.group(2) or "s", number)
    if seconds > maximum:
        raise Problem(400, "bad-query", "Bad query parameter", f"{name}: at most {maximum:g} s")
    return seconds
