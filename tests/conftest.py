"""Shared fixtures: every async test runs on uvloop, as the proxy does in production.

Loaded before any test module, so it chooses the build the suite tests (proxy/native.py) before
anything imports the router or the data plane: TURNOUT_NATIVE=require (scripts/test) fails
here unless the fresh compiled build is in use.
"""

# ruff: noqa: E402  (the build is chosen before any module it governs is imported)
from __future__ import annotations

from proxy import native

native.activate()

from collections.abc import Mapping
from typing import Any

import pytest
import uvloop


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Any]:
    return {"uvloop": uvloop.new_event_loop}
