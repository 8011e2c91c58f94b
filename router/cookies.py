"""Reading one cookie out of a Cookie header (RFC 6265 §4.2), without parsing the rest."""

from __future__ import annotations


def cookie_value(header: str | None, name: str) -> str | None:
    """The value of cookie `name` in a Cookie header, or None when absent or empty.

    The first occurrence wins, as browsers send the most specific (longest path) first
    (RFC 6265 §5.4). Surrounding double quotes are part of the value and kept, so the hash of a
    quoted value is stable whatever the client does with quotes.
    """
    if not header or name not in header:
        return None
    for pair in header.split(";"):
        key, sep, value = pair.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            return value or None
    return None
