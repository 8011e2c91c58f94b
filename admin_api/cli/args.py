"""Argument types of the admin commands: argparse turns their errors into usage errors (exit 2)."""

from __future__ import annotations

import argparse
import math
import re


class UsageError(Exception):
    """A command line that parsed but makes no sense (exit 2, like argparse's own errors)."""


def weight(text: str) -> tuple[str, int]:
    pool, sep, number = text.partition("=")
    if not sep or not pool or not _digits(number):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected POOL=WEIGHT with a whole number >= 0, e.g. blue=90"
        )
    return pool, int(number)


def backend_ref(text: str) -> tuple[str, str]:
    pool, sep, backend = text.partition("/")
    if not sep or not pool or not backend or "/" in backend:
        raise argparse.ArgumentTypeError(f"{text!r}: expected POOL/BACKEND, e.g. blue/blue-1")
    return pool, backend


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m)?", re.ASCII)


def duration(text: str) -> float:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: expected e.g. 60s, 500ms, 2m")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return {"ms": number / 1000, "s": number, "m": number * 60}[unit]


def revision(text: str) -> int:
    # Accept the ETag form too ("7" with quotes, W/"7"): that is what the API sends.
    match = re.fullmatch(r'(?:W/)?"?(\d+)"?', text.strip(), re.ASCII)
    if match is None or int(match.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a revision number, e.g. 7")
    return int(match.group(1))


def _digits(text: str) -> bool:
    # ASCII only: str.isdigit() also accepts "²", which int() then refuses.
    return text.isascii() and text.isdigit()


def positive_int(text: str) -> int:
    if not _digits(text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 1")
    return int(text)


def non_negative_int(text: str) -> int:
    if not _digits(text):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 0")
    return int(text)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of seconds > 0")
    return value
