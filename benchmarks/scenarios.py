"""The load scenarios: what each sends, over how many connections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SMALL_PATH = "/"
LARGE_PATH = "/64k"
UPLOAD_PATH = "/upload"
STATUS_PATH = "/__status"
LARGE_BYTES = 65536
UPLOAD_BYTES = 1024 * 1024


def small_body(backend: str) -> str:
    """What `/` answers: 20 bytes naming the backend, so a curl shows where a request went."""
    return f"hello from {backend}"[:19].ljust(19) + "\n"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    path: str
    connections: int
    method: Literal["GET", "POST"] = "GET"
    body_bytes: int = 0
    close: bool = False
    """Send `Connection: close` on every request: a new client connection per request."""
    headers: tuple[tuple[str, str], ...] = ()
    """Extra request headers (every request the same)."""
    shift_every: float | None = None
    """Seconds between weight changes made through turnout's admin API while the load runs:
    the weights swing between 90/10 and 10/90 (proxies without an admin API keep theirs)."""
    issue_cookie: bool = False
    """turnout's sticky route issues its cookie (`issue = true`): every cookieless request gets
    an id made up, routed by its hash and sent back in Set-Cookie. Clients never return it."""


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario("small", "GET / (20-byte response), 50 keep-alive connections", SMALL_PATH, 50),
        Scenario("64k", "GET /64k (65536-byte response), 50 connections", LARGE_PATH, 50),
        Scenario(
            "upload-1m",
            "POST 1 MiB to /upload, 50 connections",
            UPLOAD_PATH,
            50,
            method="POST",
            body_bytes=UPLOAD_BYTES,
        ),
        Scenario(
            "sticky",
            "GET / with one sticky cookie (the hash path; one user, so one pool), 50 connections",
            SMALL_PATH,
            50,
            headers=(("Cookie", "turnout-id=user-4711"),),
        ),
        Scenario(
            "sticky-first",
            "GET / without the cookie on a sticky route that issues it: turnout makes up an id "
            "for every request, routes by its hash and sends Set-Cookie (wrk never sends it "
            "back); nginx and HAProxy hash the missing cookie as an empty key and fall back to "
            "weighted round robin, as in small; 50 connections",
            SMALL_PATH,
            50,
            issue_cookie=True,
        ),
        Scenario(
            "shifting",
            "GET / while turnout's weights swing between 90/10 and 10/90 every 100 ms through "
            "its admin API, 50 connections",
            SMALL_PATH,
            50,
            shift_every=0.1,
        ),
        Scenario("c1", "GET /, 1 connection (latency without queueing)", SMALL_PATH, 1),
        Scenario("c1000", "GET /, 1000 connections", SMALL_PATH, 1000),
        Scenario(
            "close",
            "GET / with Connection: close (a new connection per request), 50 connections",
            SMALL_PATH,
            50,
            close=True,
        ),
    )
}

DEFAULT_SCENARIOS = ("small", "64k")
