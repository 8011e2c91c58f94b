"""[routes.NAME.rollout] and [pools.NAME.rollout]: rollout defaults, over the built-in ones.

[routes.NAME.rollout] holds a route's (RolloutSpec's), [pools.NAME.rollout] a pool's rolling
replacement's (RollSpec's). Every option is optional: one the section leaves out keeps the spec's
value, and the judge's table is merged option by option too (proxy.control.rollout.defaults and
proxy.control.rolling.defaults put them over a spec). What a start must say (the strategy, the
canary pool or the colour; a pool rollout's mode and new backends) is not here: it comes from the
start or the route. Values are checked as every section's are, naming the field; whether the
spec fits the route or the pool (the canary pool exists, the pool runs active checks) is for the
start, when they are known.

This module imports nothing of proxy.control (whose package imports the configuration): the
built-in defaults it checks against are restated here, and a test holds them to the specs'.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from proxy.config_types import MAX_SECONDS, Seconds, Section

Percent = Annotated[int, Field(ge=1, le=100)]

# RFC 9110 section 5.6.2: a field name is a token; a value never holds CR, LF or NUL.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_UNSAFE_VALUE = re.compile(r"[\r\n\x00]")

STEP_TIME = 60.0
MAX_STEP_TIME = 600.0
"""RolloutSpec's defaults, which an option left out keeps."""


class PrecheckConfig(Section):
    """One blue-green pre-check: a request sent to every backend of the new colour."""

    path: str = Field(pattern=r"^/")
    method: str = Field("GET", pattern=r"^[A-Z]+$")
    headers: dict[str, str] = Field(default_factory=dict)
    status: int = Field(200, ge=100, le=599)
    """The status expected, exactly."""
    body_contains: str | None = None
    """A substring the first 64 KiB of the body must contain."""
    timeout: Seconds = 5.0

    @field_validator("headers")
    @classmethod
    def _fields(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _TOKEN.match(name):
                raise ValueError(f"{name!r} is not a header name")
            if _UNSAFE_VALUE.search(text):
                raise ValueError(f"the value of {name!r} holds CR, LF or NUL")
        return value


class JudgeConfig(Section):
    """[routes.NAME.rollout.judge]: the judge's settings (JudgeSettings)."""

    alpha: Annotated[float, Field(gt=0, le=0.5)] | None = None
    tolerance: Annotated[float, Field(ge=1)] | None = None
    latency_tolerance: Annotated[float, Field(ge=1)] | None = None
    latency_quantile: Annotated[float, Field(gt=0.5, lt=1)] | None = None
    min_requests: Annotated[int, Field(ge=1)] | None = None


class RolloutConfig(Section):
    """[routes.NAME.rollout]: defaults of the route's rollouts (RolloutSpec's fields)."""

    steps: Annotated[list[Percent], Field(min_length=1)] | None = None
    step_time: Seconds | None = None
    max_step_time: Seconds | None = None
    on_inconclusive: Literal["pause", "abort"] | None = None
    """model.OnInconclusive."""
    no_eligible_timeout: Seconds | None = None
    watch: Seconds | None = None
    prechecks: list[PrecheckConfig] | None = None
    webhook: str | None = None
    judge: JudgeConfig | None = None

    @field_validator("steps")
    @classmethod
    def _increasing(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(b <= a for a, b in pairwise(value)):
            raise ValueError("must be strictly increasing")
        return value

    @field_validator("webhook")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return value if value is None else http_url(value)

    @model_validator(mode="after")
    def _step_time_within_max(self) -> RolloutConfig:
        step_time = self.step_time or STEP_TIME
        max_step_time = self.max_step_time or MAX_STEP_TIME
        if max_step_time < step_time:
            raise ValueError(
                f"max_step_time ({max_step_time:g} s) must be at least"
                f" step_time ({step_time:g} s)"
                + ("" if self.max_step_time and self.step_time else "; one of them is the default")
            )
        return self


class PoolRolloutConfig(Section):
    """[pools.NAME.rollout]: defaults of the pool's rolling replacements (RollSpec's fields;
    `hook` is its hook_command)."""

    batch: Annotated[int, Field(ge=1)] | None = None
    drain_timeout: Seconds | None = None
    healthy_deadline: Seconds | None = None
    min_healthy_time: Seconds | None = None
    keep_old: Annotated[float, Field(ge=0, le=MAX_SECONDS)] | None = None
    """Surge; 0 removes the old backends as soon as the last batch has been held."""
    auto_revert: bool | None = None
    hook: Annotated[list[str], Field(min_length=1)] | None = None
    """In place: the replace hook's argv, run without a shell."""
    hook_url: str | None = None
    """In place: or a webhook receiving the same as JSON."""
    hook_timeout: Seconds | None = None
    judge: JudgeConfig | None = None
    webhook: str | None = None

    @field_validator("hook")
    @classmethod
    def _argv(cls, value: list[str] | None) -> list[str] | None:
        # The rules of proxy.control.rolling.hooks.hook_problems, which a start applies too.
        if value is not None and not value[0]:
            raise ValueError("the program (the first item) must not be empty")
        if value is not None and any("\0" in argument for argument in value):
            raise ValueError("an argument must not contain a NUL character")
        return value

    @field_validator("hook_url", "webhook")
    @classmethod
    def _http_urls(cls, value: str | None) -> str | None:
        return value if value is None else http_url(value)

    @model_validator(mode="after")
    def _one_hook(self) -> PoolRolloutConfig:
        if self.hook is not None and self.hook_url is not None:
            raise ValueError("give hook or hook_url, not both")
        return self


def http_url(value: str) -> str:
    """`value` if it is an http:// or https:// URL with a host, else ValueError."""
    # The messages never repeat the URL: its userinfo or query may be a secret.
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    return value
