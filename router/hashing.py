"""The sticky hash: a user's cookie value to a bucket in 0..9999.

It must give the same bucket in every process, on every machine, in every release, or users
would flip between pools when turnout restarts. Python's built-in `hash()` of a str is
randomised per process, so the hash is BLAKE2b (hashlib), pinned by golden-vector tests:

    bucket = int.from_bytes(blake2b(salt + value, digest_size=8).digest(), "big") % 10000

The modulo bias of a 64-bit value over 10,000 buckets is below 1e-15: invisible.
"""

from __future__ import annotations

from hashlib import blake2b

from router.spec import BUCKETS


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
    hashed = state.copy()
    hashed.update(value.encode("utf-8", "surrogateescape"))
    return int.from_bytes(hashed.digest(), "big") % BUCKETS
