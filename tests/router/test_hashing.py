"""The sticky hash must give the same bucket in every process, machine and release.

The golden vectors were computed once with the shipped implementation and are pinned here: if
one changes, every sticky user of every deployment would move pools on upgrade.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from router import BUCKETS, bucket_of

ROOT = Path(__file__).resolve().parents[2]

GOLDEN: list[tuple[str, str, int]] = [
    ("", "", 9876),
    ("user-1", "", 3768),
    ("user-1", "turnout", 3797),
    ("0123456789abcdef", "", 9399),
    ("0123456789abcdef", "canary-2024", 6110),
    ("café-ünïcødé", "", 1462),
    ("日本語のユーザー", "salt", 2760),
    ("🦀", "", 3932),
    ("x" * 4096, "", 5126),
    ("a" * 1000 + "b", "s", 9726),
]


def _id(vector: tuple[str, str, int]) -> str:
    value, salt, _ = vector
    return f"{value[:12]!r}/{len(value)}-salt={salt!r}"


@pytest.mark.parametrize(("value", "salt", "expected"), GOLDEN, ids=[_id(v) for v in GOLDEN])
def test_bucket_of_golden_vectors(value: str, salt: str, expected: int) -> None:
    assert bucket_of(value, salt) == expected


def test_salt_defaults_to_empty() -> None:
    assert bucket_of("user-1") == bucket_of("user-1", "") == 3768


def _formula(value: str, salt: str) -> int:
    # hashing.py's docstring:
    #   int.from_bytes(blake2b(salt + value, digest_size=8).digest(), "big") % 10000
    digest = hashlib.blake2b((salt + value).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 10_000


@pytest.mark.parametrize(("value", "salt", "expected"), GOLDEN, ids=[_id(v) for v in GOLDEN])
def test_golden_vectors_follow_documented_formula(value: str, salt: str, expected: int) -> None:
    assert _formula(value, salt) == expected


def test_bucket_of_matches_documented_formula() -> None:
    rng = random.Random(7)
    alphabet = "abcdefXYZ0189-_=.é日🦀"
    values = [f"user-{i}" for i in range(500)] + [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))) for _ in range(500)
    ]
    for value in values:
        for salt in ("", "pepper", "ü"):
            bucket = bucket_of(value, salt)
            assert bucket == _formula(value, salt), (value, salt)
            assert 0 <= bucket < BUCKETS == 10_000


_CHILD = """
import json, sys
from router import bucket_of
vectors = json.load(sys.stdin)
print(json.dumps({
    "buckets": [bucket_of(value, salt) for value, salt in vectors],
    "builtin_hash": hash("user-1"),
}))
"""


def _buckets_in_child(hash_seed: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=json.dumps([[value, salt] for value, salt, _ in GOLDEN]),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=30,
        check=True,
    )
    output: dict[str, object] = json.loads(result.stdout)
    return output


def test_bucket_of_does_not_depend_on_pythonhashseed() -> None:
    first = _buckets_in_child("1")
    second = _buckets_in_child("4242")
    # The seeds really differ in effect: the built-in hash() of the same str changed...
    assert first["builtin_hash"] != second["builtin_hash"]
    # ...and the sticky buckets did not, and match the pinned vectors.
    expected = [bucket for _, _, bucket in GOLDEN]
    assert first["buckets"] == second["buckets"] == expected


def test_bucket_constant_is_the_specs() -> None:
    from router import hashing

    decide_module = sys.modules["router.decide"]  # `router.decide` is the function
    assert hashing._BUCKETS == decide_module._BUCKETS == BUCKETS


def test_bucket_of_digest_is_from_bytes_modulo() -> None:
    from router.hashing import _bucket_of_digest

    rng = random.Random(11)
    digests = [bytes(8), b"\xff" * 8, b"\x80" + bytes(7), bytes(7) + b"\x01"]
    digests += [rng.getrandbits(64).to_bytes(8, "big") for _ in range(5000)]
    for digest in digests:
        assert _bucket_of_digest(digest) == int.from_bytes(digest, "big") % BUCKETS, digest


def test_bucket_from_is_bucket_of() -> None:
    from router.hashing import bucket_from, bucket_from_bytes, salted

    rng = random.Random(13)
    alphabet = "abcdefXYZ0189-_=.é日🦀\udcff"  # a lone surrogate: the surrogateescape path
    values = ["", "\udc80x"] + [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(500)
    ]
    for salt in ("", "pepper", "ü"):
        state = salted(salt)
        assert state is not None
        for value in values:
            assert bucket_from(state, value) == bucket_of(value, salt), (value, salt)
            encoded = value.encode("utf-8", "surrogateescape")
            assert bucket_from_bytes(state, encoded) == bucket_of(value, salt)
