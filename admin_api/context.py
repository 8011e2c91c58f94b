"""What the admin application carries: the control service, the metrics registry made over it,
and the rendered OpenAPI document."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from proxy.control import ControlService

SERVICE = web.AppKey("service", ControlService)
OPENAPI = web.AppKey("openapi", dict[str, Any])
"""The document without `servers`: that is the address each reader reached it by."""
METRICS = web.AppKey("metrics", CollectorRegistry)
