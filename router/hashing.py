"""The sticky hash: a user's cookie value to a bucket in 0..9999.

It must give the same bucket in every process, on every machine, in every release, or users
would flip between pools when turnout restarts. Python's built-in `hash()` of a str is
randomised per process, so the hash is BLAKE2b (hashlib), pinned by golden-vector tests:

    bucket = int.from_bytes(blake2b(salt + value, digest_size=8).digest(), "big") % 10000

The modulo bias of a 64-bit value over 10,000 buckets is below 1e-15: invisible.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Final

from router.spec import BUCKETS

_BUCKETS: Final = 10_000
"""router.spec.BUCKETS as a literal: compiled, a Final int of this module is a constant, where
the imported name is a module-dictionary lookup per use (router.spec is not compiled);
tests/router/test_hashing.py holds the two equal."""

# The methods a hash of an id calls, taken from the class once: compiled, `state.copy()` on an
# object of a non-compiled class looks the method up in its type on every call (~90
# instructions each, callgrind), while a Final module attribute is a C static called directly.
_COPY: Final = blake2b.copy
_UPDATE: Final = blake2b.update
_DIGEST: Final = blake2b.digest

_HIGH: Final = 2**32 % 10_000
"""What a unit of a digest's high 32 bits is worth modulo 10,000 (see `_bucket_of_digest`)."""


def bucket_of(value: str, salt: str = "") -> int:
    """The bucket (0..9999) that a sticky cookie value falls into."""
    digest = blake2b((salt + value).encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def salted(salt: str) -> blake2b | None:
    """BLAKE2b having read `salt`: `bucket_from(salted(salt), value) == bucket_of(value, salt)`
    (hashing salt + value is hashing salt, then value), and a copy of it costs less than a
    new hash. None when the salt cannot be encoded (then `bucket_of` says so per request, as
    it always did)."""
    try:
        return blake2b(salt.encode("utf-8", "surrogateescape"), digest_size=8)
    except UnicodeEncodeError:
        return None


def bucket_from(state: blake2b, value: str) -> int:
    """The bucket of `value` hashed after what `state` has read (see `salted`)."""
    try:
        # Strict UTF-8 is the same bytes as surrogateescape whenever it succeeds, and compiled
        # it is a direct call where naming an error handler goes through the codec registry.
        # Only a value with lone surrogates (never one decoded from a header) takes the except.
        data = value.encode()
    except UnicodeEncodeError:
        data = value.encode("utf-8", "surrogateescape")
    return bucket_from_bytes(state, data)


def bucket_from_bytes(state: blake2b, data: bytes) -> int:
    """The bucket of `data` (a value already UTF-8 encoded) hashed after what `state` has read."""
    hashed = _COPY(state)
    _UPDATE(hashed, data)
    return _bucket_of_digest(_DIGEST(hashed))


def _bucket_of_digest(digest: bytes) -> int:
    """`int.from_bytes(digest, "big") % 10000` for an 8-byte digest, in machine-sized ints.

    The 64-bit value does not fit a compiled int (63 bits), so `from_bytes` and `%` would make
    and divide a Python long (two calls, ~700 instructions); split into 32-bit halves it is
    (high * 2**32 + low) % 10000 == ((high % 10000) * (2**32 % 10000) + low) % 10000. `high` is
    reduced before the product because a compiled multiply takes its fast path only when both
    factors are below 2**30. tests/router/test_hashing.py holds it to `from_bytes` on random
    digests."""
    high = (digest[0] << 24) | (digest[1] << 16) | (digest[2] << 8) | digest[3]
    low = (digest[4] << 24) | (digest[5] << 16) | (digest[6] << 8) | digest[7]
    return (high % _BUCKETS * _HIGH + low) % _BUCKETS
