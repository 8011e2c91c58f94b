"""A hook's output as lines: split, decoded and bounded, whatever the program writes."""

from __future__ import annotations

import pytest

from proxy.control.rolling.output import LineSplitter, Tail, shorten


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        ([b"one\ntwo\n"], ["one", "two"]),
        ([b"on", b"e\ntw", b"o"], ["one", "two"]),  # a line across chunks; the last without \n
        ([b"crlf\r\n"], ["crlf"]),
        ([b"\n\n"], ["", ""]),
        ([b"caf\xc3", b"\xa9\n"], ["café"]),  # a character split between chunks
        ([b"bad \xff byte\n"], ["bad \ufffd byte"]),
        ([b"x" * 25 + b"\nshort\n"], ["x" * 9 + "…", "short"]),
        ([b"x" * 30, b"y" * 30, b"\nnext\n"], ["x" * 9 + "…", "next"]),  # the rest is dropped
        ([], []),
    ],
)
def test_line_splitter(chunks: list[bytes], lines: list[str]) -> None:
    splitter = LineSplitter(width=10)
    seen = [line for chunk in chunks for line in splitter.feed(chunk)] + splitter.end()
    assert seen == lines


def test_an_endless_line_holds_bounded_memory() -> None:
    splitter = LineSplitter(width=10)
    for _ in range(1000):
        assert splitter.feed(b"x" * 4096) == []
    assert len(splitter._partial) <= 41
    assert splitter.end() == ["x" * 9 + "…"]


@pytest.mark.parametrize(
    ("text", "width", "shown"),
    [("abc", 3, "abc"), ("abcd", 3, "ab…"), ("", 3, "")],
)
def test_shorten(text: str, width: int, shown: str) -> None:
    assert shorten(text, width) == shown


def test_the_tail_keeps_the_last_non_blank_lines_shortened() -> None:
    tail = Tail(lines=3, width=5)
    for line in ["one", "two", "", "   ", "three", "four-and-more"]:
        tail.add(line)
    assert tail.lines() == ("two", "three", "four…")
