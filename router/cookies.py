"""Reading one cookie out of a Cookie header (RFC 6265 §4.2), without parsing the rest."""

from __future__ import annotations


def cookie_value(header: str | None, name: str) -> str | None:
    """The value of cookie `name` in a Cookie header, or None when absent or empty.

    The first occurrence wins, as browsers send the most specific (longest path) first
    (RFC 6265 §5.4). Surrounding double quotes are part of the value and kept, so the hash of a
    quoted value is stable whatever the client does with quotes.

    The header is split at ";" into pairs and each at its first "=" into a key and a value,
    both stripped; this finds the first pair whose key is `name` by searching for `name` and
    checking that only whitespace surrounds it within its key, so the other cookies of a long
    header are never split into strings (tests/router/test_cookies.py holds it to the split).
    `name` is a cookie-name token: not empty, no ";", "=" or whitespace.
    """
    if not header:
        return None
    size = len(name)
    length = len(header)
    at = header.find(name)
    while at != -1:
        end = header.find(";", at + size)
        if end == -1:
            end = length
        equals = header.find("=", at + size, end)
        if (
            equals != -1
            and not header[header.rfind(";", 0, at) + 1 : at].strip()
            and not header[at + size : equals].strip()
        ):
            value = header[equals + 1 : end].strip()
            return value or None
        at = header.find(name, end + 1)
    return None
