"""Small pieces every admin endpoint uses: bodies, preconditions, JSON answers, durations."""

from __future__ import annotations

import re
from typing import Any, TypedDict, TypeVar

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


class Write(TypedDict):
    """The keyword arguments every command of the control service takes from a request."""

    actor: str
    if_match: frozenset[int] | None


def write(request: web.Request) -> Write:
    """Who writes, and the revisions the write may apply to (a malformed If-Match: 400)."""
    return {"actor": actor(request), "if_match": if_match(request)}


def if_match(request: web.Request) -> frozenset[int] | None:
    """The revisions an `If-Match` write may apply to (None: unconditional); see parse_if_match."""
    values = request.headers.getall("If-Match", None)
    return None if values is None else parse_if_match(", ".join(values))


def parse_if_match(value: str) -> frozenset[int] | None:
    """The revisions an If-Match field value names; None for `*` (any revision).

    RFC 9110 §13.1.1: `*` or a comma-separated list of entity tags; a write goes ahead when any
    of them is the current revision's ETag `"<revision>"`. If-Match compares strongly, so a weak
    tag (`W/"3"`) never matches, nor does a well-formed tag that is no revision (`"abc"`,
    `"007"`): they end in 412 like a stale revision. Anything else (a bare `3`, `*` in a list,
    no tag at all) is malformed: Problem 400.
    """
    if _ANY.fullmatch(value):
        return None
    if not _TAG_LIST.fullmatch(value) or not _TAG.search(value):
        raise Problem(
            400,
            "bad-precondition",
            "Malformed If-Match",
            'expected If-Match: "<revision>", a list of them ("3", "4"), or *',
        )
    return frozenset(
        int(tag.group(2))
        for tag in _TAG.finditer(value)
        if not tag.group(1) and _REVISION.fullmatch(tag.group(2))
    )


_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
"""An entity-tag (RFC 9110 §8.8.3): weak or not, and its opaque part."""

_TAG_LIST = re.compile(
    r'[ \t]*(?:(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"[ \t]*)?'
    r'(?:,[ \t]*(?:(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"[ \t]*)?)*'
)
"""A #list of entity-tags (RFC 9110 §5.6.1: empty elements allowed). Each run of blanks has
one place to go, so a long malformed value fails in linear time."""

_ANY = re.compile(r"[ \t]*\*[ \t]*")

IF_MATCH_PATTERN = rf'^(?:{_ANY.pattern}|(?=.*")(?:{_TAG_LIST.pattern}))$'
"""The same grammar for the OpenAPI document (ECMA-262 reads it as Python does). The lookahead
asks for a quote, so for at least one tag: a list of only empty elements (an empty field, `,`)
is refused by parse_if_match, and a schema that admitted it would promise what is not served."""

_REVISION = re.compile(r"0|[1-9][0-9]{0,17}")
"""An ETag this API sends, `"<revision>"`: strong comparison is by the exact characters."""


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
