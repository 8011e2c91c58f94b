"""Path normalisation: the table a proxy and a backend must agree on (RFC 3986 §6.2.2, §5.2.4)."""

from __future__ import annotations

import pytest

from router.paths import InvalidPath, needs_normalising, normalise_path, normalise_target

CASES = [
    # (raw, normalised, normalised with merge_slashes)
    (b"/", b"/", b"/"),
    (b"/api/v1/items", b"/api/v1/items", b"/api/v1/items"),
    (b"/public/../admin", b"/admin", b"/admin"),
    (b"/public/./admin", b"/public/admin", b"/public/admin"),
    (b"/a/b/../../../../c", b"/c", b"/c"),  # never above the root
    (b"/..", b"/", b"/"),
    (b"/a/.", b"/a/", b"/a/"),
    (b"/a/b/..", b"/a/", b"/a/"),
    (b"/a/..", b"/", b"/"),
    (b"/public/%2e%2e/admin", b"/admin", b"/admin"),  # escaped dots are dots
    (b"/public/%2E%2e/admin", b"/admin", b"/admin"),
    (b"/%61dmin", b"/admin", b"/admin"),  # an escaped letter is the letter
    (b"/a%7Eb%2d_", b"/a~b-_", b"/a~b-_"),
    (b"/a%2fb", b"/a%2Fb", b"/a%2Fb"),  # an escaped slash stays escaped: not a separator
    (b"/a%2F..%2Fadmin", b"/a%2F..%2Fadmin", b"/a%2F..%2Fadmin"),  # ...so no dot segment
    (b"/caf%c3%a9", b"/caf%C3%A9", b"/caf%C3%A9"),
    (b"/100%25", b"/100%25", b"/100%25"),  # an escaped % stays escaped
    (b"/a//b", b"/a//b", b"/a/b"),
    (b"//admin", b"//admin", b"/admin"),
    (b"/a/b//", b"/a/b//", b"/a/b/"),
    (b"/a/.b/..c/...", b"/a/.b/..c/...", b"/a/.b/..c/..."),  # dots inside names are names
    (b"/a/./../b/./c/.", b"/b/c/", b"/b/c/"),
]


@pytest.mark.parametrize(("raw", "plain", "merged"), CASES)
def test_normalise_path(raw: bytes, plain: bytes, merged: bytes) -> None:
    assert normalise_path(raw) == plain
    assert normalise_path(raw, merge_slashes=True) == merged


@pytest.mark.parametrize(("raw", "plain", "merged"), CASES)
def test_the_fast_test_never_skips_a_path_that_would_change(
    raw: bytes, plain: bytes, merged: bytes
) -> None:
    if plain != raw:
        assert needs_normalising(raw, merge_slashes=False)
    if merged != raw:
        assert needs_normalising(raw, merge_slashes=True)


@pytest.mark.parametrize(("raw", "plain", "merged"), CASES)
def test_normalising_twice_changes_nothing(raw: bytes, plain: bytes, merged: bytes) -> None:
    assert normalise_path(plain) == plain
    assert normalise_path(merged, merge_slashes=True) == merged


def test_plain_paths_are_left_alone_without_work() -> None:
    assert not needs_normalising(b"/api/v1/items/42", merge_slashes=True)
    assert not needs_normalising(b"/a//b", merge_slashes=False)


@pytest.mark.parametrize("raw", [b"/a%", b"/a%4", b"/a%zz", b"/a%4g/b", b"/%%41"])
def test_a_malformed_escape_is_invalid(raw: bytes) -> None:
    with pytest.raises(InvalidPath):
        normalise_path(raw)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"/a/../b?next=/../c%zz", b"/b?next=/../c%zz"),  # the query is never read
        (b"/plain?q=%41", b"/plain?q=%41"),
        (b"*", b"*"),  # OPTIONS *: no path
        (b"/a/./b", b"/a/b"),
    ],
)
def test_normalise_target_touches_the_path_only(target: bytes, expected: bytes) -> None:
    assert normalise_target(target) == expected


def test_an_unchanged_target_is_returned_as_is() -> None:
    target = b"/api/v1/items?x=1"
    assert normalise_target(target) is target
