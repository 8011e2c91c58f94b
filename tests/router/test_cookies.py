"""cookie_value: one cookie out of a Cookie header (RFC 6265 §4.2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.cookies import cookie_value


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(None, None, id="header-absent"),
        pytest.param("", None, id="header-empty"),
        pytest.param("other=1", None, id="cookie-absent"),
        pytest.param("turnout-id=abc", "abc", id="only-cookie"),
        pytest.param("a=1; turnout-id=abc; b=2", "abc", id="among-others"),
        pytest.param("a=1;turnout-id=abc", "abc", id="no-space-after-semicolon"),
        pytest.param("turnout-id=first; turnout-id=second", "first", id="first-occurrence-wins"),
        pytest.param("  turnout-id  =  abc  ; b=2", "abc", id="spaces-stripped"),
        pytest.param("turnout-id", None, id="name-without-equals"),
        pytest.param("turnout-id; turnout-id=x", "x", id="pair-without-equals-skipped"),
        pytest.param("xturnout-id=1; turnout-id=2", "2", id="name-is-suffix-of-other"),
        pytest.param("turnout-idx=1; turnout-id=2", "2", id="name-is-prefix-of-other"),
        pytest.param("xturnout-id=1", None, id="only-longer-name"),
        pytest.param("other=turnout-id", None, id="name-inside-a-value"),
        pytest.param("turnout-id=", None, id="empty-value"),
        pytest.param("turnout-id=   ; b=2", None, id="blank-value"),
        pytest.param("turnout-id=; turnout-id=2", None, id="empty-first-occurrence"),
        pytest.param('turnout-id="abc"', '"abc"', id="quotes-kept"),
        pytest.param("turnout-id=a=b==", "a=b==", id="equals-inside-value"),
        pytest.param("Turnout-Id=abc", None, id="names-are-case-sensitive"),
    ],
)
def test_cookie_value(header: str | None, expected: str | None) -> None:
    assert cookie_value(header, "turnout-id") == expected


@pytest.mark.parametrize(
    ("header", "name", "expected"),
    [
        ("tid=1; turnout-id=2", "tid", "1"),
        ("tid=1; turnout-id=2", "turnout-id", "2"),
        ("a.b=1", "a.b", "1"),
        ("a.b=1", "a", None),
    ],
)
def test_cookie_value_other_names(header: str, name: str, expected: str | None) -> None:
    assert cookie_value(header, name) == expected


def _by_splitting(header: str | None, name: str) -> str | None:
    """The definition cookie_value implements without splitting (its docstring)."""
    if not header or name not in header:
        return None
    for pair in header.split(";"):
        key, sep, value = pair.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            return value or None
    return None


_PIECES = st.sampled_from(
    [
        "turnout-id",
        "turnout-idx",
        "xturnout-id",
        "id",
        "=",
        ";",
        " ",
        "\t",
        "\xa0",
        "\x85",
        "a",
        '"',
    ]
)


@settings(max_examples=1000)
@given(
    header=st.one_of(st.none(), st.lists(_PIECES, max_size=14).map("".join), st.text(max_size=30)),
    name=st.sampled_from(["turnout-id", "id", "a"]),
)
def test_cookie_value_is_the_split_definition(header: str | None, name: str) -> None:
    assert cookie_value(header, name) == _by_splitting(header, name)
