"""If-Match: a write names the revisions it was based on, and is refused unless one is current.

Theory of operation. A writer reads the state (its revision is the ETag), decides, and writes
back with the revisions it read. The control plane checks them first, before the edit is even
computed, so a stale write is refused even when it would change nothing (RFC 9110 §13.1.1: the
precondition is evaluated before the method's semantics). `None` means no precondition.
"""

from __future__ import annotations

from collections.abc import Collection


class PreconditionFailed(Exception):
    """If-Match named no revision that is current: nothing was changed."""

    def __init__(self, expected: tuple[int, ...], current: int) -> None:
        if not expected:
            named = "If-Match names no revision (a weak tag never matches)"
        elif len(expected) == 1:
            named = f"revision {expected[0]} is stale"
        else:
            named = f"revisions {', '.join(map(str, expected))} are stale"
        super().__init__(f"{named}; the current revision is {current}")
        self.expected = expected
        self.current = current


def require_revision(if_match: Collection[int] | None, current: int) -> None:
    """Raise PreconditionFailed unless `current` is among `if_match` (None: any revision)."""
    if if_match is not None and current not in if_match:
        raise PreconditionFailed(tuple(sorted(if_match)), current)
