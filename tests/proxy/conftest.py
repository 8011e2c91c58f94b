"""Fixtures shared by the proxy's end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from helpers import Backend, start_backend


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    """A real loopback backend named "app" that echoes what it received."""
    started = await start_backend("app")
    try:
        yield started
    finally:
        await started.stop()
