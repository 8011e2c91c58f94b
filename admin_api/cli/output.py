"""What the admin commands print: JSON or text on stdout, problems on stderr, exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from admin_api.client import JSON, AdminError

EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130

URL_ENV = "TURNOUT_ADMIN_URL"
TOKEN_ENV = "TURNOUT_ADMIN_TOKEN"


def show(args: argparse.Namespace, document: JSON, text: Callable[[], str]) -> int:
    """The API's JSON with --json, else the text; the text is only made when it is shown, so
    --json works whatever the text rendering thinks of the document."""
    if args.json:
        emit_json(document)
    else:
        print(text())
    return 0


def emit_json(document: JSON, compact: bool = False) -> None:
    print(json.dumps(document) if compact else json.dumps(document, indent=2), flush=True)


def emit_frame(text: str, watching: bool) -> None:
    if watching:
        if sys.stdout.isatty():
            print("\x1b[H\x1b[2J", end="")  # Clear the screen, as watch(1) does.
        print(f"{datetime.now():%H:%M:%S}")
    print(text, flush=True)
    if watching and not sys.stdout.isatty():
        print(flush=True)


PROBLEM = "urn:turnout:problem:"
HINTS = {
    "no-eligible-backend": "add --force to do it anyway",
    "backend-in-service": "drain it first (turnout drain POOL/BACKEND --wait) or add --force",
    "stale-revision": "see the current state (turnout status ROUTE) and decide again",
    "unauthorized": f"give a token with ${TOKEN_ENV} or --token",
}
"""What to do next, in the CLI's terms (the API's detail speaks HTTP)."""


def describe_problem(error: AdminError) -> str:
    """A problem document for people: title and status, detail, each field error; once each."""
    lines = [f"turnout: {error.title} (HTTP {error.status})"]
    entries = [_error_entry(entry) for entry in error.errors]
    # The API's detail often just lists the field errors again ("a; b" for errors a and b):
    # say them once, as the list.
    if error.detail and not set(error.detail.split("; ")) <= set(entries):
        lines.append(f"  {error.detail}")
    lines.extend(f"  - {entry}" for entry in entries)
    hint = HINTS.get(error.type.removeprefix(PROBLEM))
    if error.type.startswith(PROBLEM) and hint:
        lines.append(f"  hint: {hint}")
    return "\n".join(lines)


def _error_entry(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    field, message = entry.get("field"), entry.get("message", "")
    return f"{field}: {message}" if field else str(message)
