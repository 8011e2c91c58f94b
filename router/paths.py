"""Request paths as routes match them and backends receive them: RFC 3986 normalisation.

Why: a path prefix only keeps traffic apart if the proxy reads a path the way the backend will.
`/public/../admin`, `/public/%2e%2e/admin` and `/%61dmin` are all `/admin` to nginx and to most
web frameworks, so a router comparing the raw bytes would send them by the `/public` route to a
backend that then serves `/admin` (Envoy's `normalize_path`, off by default there, exists for this).
turnout normalises the path once when it admits a request and forwards the normalised form, so
the route, the backend and the access log all see the same path.

What changes (RFC 3986 §6.2.2, §5.2.4), and nothing else:
- percent-encoded unreserved characters (letters, digits, `-._~`) are decoded, and the hex digits
  of every other escape are upper-cased (`%2f` -> `%2F`: an encoded slash stays encoded, so it
  never becomes a path separator here);
- `.` and `..` segments are removed (never above the root);
- with `merge_slashes`, runs of `/` become one (nginx's default; RFC 3986 keeps them).

The query is not touched. A `%` not followed by two hex digits makes the path invalid (400, as
nginx answers): such a path has no single reading a proxy and a backend would agree on.
"""

from __future__ import annotations

from typing import Final

UNRESERVED: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
HEX: Final = frozenset(b"0123456789abcdefABCDEF")


class InvalidPath(ValueError):
    """A path with a malformed percent-escape."""


PERCENT, DOT = ord("%"), ord(".")


def needs_normalising(path: bytes, merge_slashes: bool) -> bool:
    """Whether `normalise_path` could change `path` (a fast test: most paths need nothing)."""
    # Every request pays for this. A byte given as an int is a memchr (~20 ns); a bytes needle
    # goes through the buffer protocol and a general search (~170 ns) on CPython 3.11, where
    # `find` with the same needle costs half that.
    return (
        PERCENT in path
        or (DOT in path and path.find(b"/.") >= 0)
        or (merge_slashes and path.find(b"//") >= 0)
    )


def normalise_target(target: bytes, merge_slashes: bool = False) -> bytes:
    """A request target with its path normalised and its query as it was; anything but origin
    form (`*` of OPTIONS *) unchanged. Returns `target` itself when nothing changes."""
    # Most targets need no work: one scan of the whole target decides (a query holding a "%"
    # or "/." only costs the split).
    if not needs_normalising(target, merge_slashes):
        return target
    query = target.find(b"?")
    path = target if query == -1 else target[:query]
    if not path.startswith(b"/"):
        return target
    path = normalise_path(path, merge_slashes)
    return path if query == -1 else path + target[query:]


def normalise_path(path: bytes, merge_slashes: bool = False) -> bytes:
    """`path` (origin form, starting with "/", without the query) normalised; see the module."""
    if PERCENT in path:
        path = _percent(path)
    segments = path.split(b"/")[1:]
    kept: list[bytes] = []
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        if segment == b"..":
            if kept:
                kept.pop()
        elif segment == b".":
            pass
        elif segment or index == last or not merge_slashes:
            kept.append(segment)
            continue
        else:
            continue
        if index == last:
            kept.append(b"")  # "/a/." and "/a/b/.." end in a slash (RFC 3986 §5.2.4)
    return b"/" + b"/".join(kept)


def _percent(path: bytes) -> bytes:
    pieces = path.split(b"%")
    out = [pieces[0]]
    for piece in pieces[1:]:
        digits = piece[:2]
        if len(digits) < 2 or digits[0] not in HEX or digits[1] not in HEX:
            raise InvalidPath("a '%' in the path is not followed by two hex digits")
        byte = int(digits, 16)
        if byte in UNRESERVED:
            out.append(bytes((byte,)))
        else:
            out.append(b"%" + digits.upper())
        out.append(piece[2:])
    return b"".join(out)
