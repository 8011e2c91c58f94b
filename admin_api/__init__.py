"""turnout admin HTTP API (see issue 4)."""
