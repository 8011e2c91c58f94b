"""Blue-green pre-checks: before any user traffic, every check goes to every new-colour backend.

The requests go straight to each backend (not through the proxy: the colour takes no traffic
yet), concurrently but at most `CONCURRENCY` at once, each within its check's timeout, without
following redirects (the expected status is the one the backend gives). All of them are
awaited, so that the failure reported is the first in a fixed order (checks as listed, then
backends as listed) rather than whichever happened to finish first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp

from proxy.control.rollout.model import Precheck

CONCURRENCY = 16
"""Pre-check requests in flight at once, whatever the number of checks and backends."""
BODY_LIMIT = 64 * 1024
"""The part of a response body searched for `body_contains`: a check reads no more than this."""

Backend = tuple[str, str, int]
"""(name, host, port)."""


async def run_prechecks(
    checks: Sequence[Precheck],
    pool: str,
    backends: Sequence[Backend],
    session: aiohttp.ClientSession | None = None,
) -> str | None:
    """Send every check to every backend of `pool`: None when all pass, else the first failure
    in words ("pre-check GET /healthz on green/g1: status 500, expected 200").

    No checks, or no backends, pass at once: whether the colour has an eligible backend at all
    is the switch's question. `session`, when given, is used and left open; otherwise one is
    made for the call, so no pre-check connection is ever reused for anything else.
    """
    if not checks or not backends:
        return None
    semaphore = asyncio.Semaphore(CONCURRENCY)
    own = session is None
    if session is None:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY))
    try:
        # Order of creation is the order of report: checks, then backends.
        failures = await asyncio.gather(
            *(
                _guarded(semaphore, session, check, backend)
                for check in checks
                for backend in backends
            )
        )
    finally:
        if own:
            await session.close()
    pairs = [(check, backend) for check in checks for backend in backends]
    for (check, (name, _, _)), failure in zip(pairs, failures, strict=True):
        if failure is not None:
            return f"pre-check {check.method} {check.path} on {pool}/{name}: {failure}"
    return None


async def _guarded(
    semaphore: asyncio.Semaphore,
    session: aiohttp.ClientSession,
    check: Precheck,
    backend: Backend,
) -> str | None:
    async with semaphore:
        return await _check(session, check, backend)


async def _check(session: aiohttp.ClientSession, check: Precheck, backend: Backend) -> str | None:
    """What is wrong with one backend's answer to one check, or None."""
    _, host, port = backend
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        async with session.request(
            check.method,
            f"http://{authority}{check.path}",
            headers=list(check.headers),
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=check.timeout),
        ) as response:
            status = response.status
            # Read only when there is something to look for, and never more than the limit.
            body = await _prefix(response.content) if check.body_contains else b""
    except TimeoutError:
        return f"timed out after {check.timeout:g} s"
    except aiohttp.ClientConnectorError as error:
        if isinstance(error.os_error, ConnectionRefusedError):
            return "connection refused"
        return f"connect failed: {error.os_error.strerror or error.os_error}"
    except aiohttp.ClientError as error:
        return f"{type(error).__name__}: {error}"
    if status != check.status:
        return f"status {status}, expected {check.status}"
    if check.body_contains and check.body_contains.encode() not in body:
        return f"body does not contain {check.body_contains!r}"
    return None


async def _prefix(stream: aiohttp.StreamReader) -> bytes:
    """The body up to BODY_LIMIT bytes (one `read` returns what has arrived, maybe less)."""
    body = b""
    while len(body) < BODY_LIMIT:
        chunk = await stream.read(BODY_LIMIT - len(body))
        if not chunk:
            break
        body += chunk
    return body
