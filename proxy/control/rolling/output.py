"""A hook's output as text lines: bounded in memory whatever the program writes.

A hook may print anything: no newline for megabytes, invalid UTF-8, CRLF line ends, colour
codes. `LineSplitter` turns the byte stream into lines without ever holding more than one
line's worth of bytes (the rest of an overlong line is dropped up to its newline), and `Tail`
keeps the last few lines, shortened, for the rollout's status. Both are pure.
"""

from __future__ import annotations

from collections import deque

LINE_CHARS = 2000
"""Characters of one output line logged at most; the rest is replaced by an ellipsis."""
TAIL_LINES = 20
"""Lines of output a result keeps (the last ones)."""
TAIL_CHARS = 300
"""Characters of one kept line at most."""
ELLIPSIS = "…"


def shorten(line: str, width: int) -> str:
    """`line` cut to `width` characters, the cut marked with an ellipsis."""
    if len(line) <= width:
        return line
    return line[: width - 1] + ELLIPSIS


class LineSplitter:
    """Splits a byte stream into lines, each decoded and cut to `width` characters."""

    def __init__(self, width: int = LINE_CHARS) -> None:
        self._width = width
        # UTF-8 takes at most 4 bytes a character: enough bytes for `width` of them, plus one
        # to know that the line was longer.
        self._limit = 4 * width + 1
        self._partial = bytearray()

    def feed(self, data: bytes) -> list[str]:
        """The lines that `data` completes (without their line ends)."""
        lines: list[str] = []
        start = 0
        while (end := data.find(b"\n", start)) != -1:
            self._keep(data[start:end])
            lines.append(self._take())
            start = end + 1
        self._keep(data[start:])
        return lines

    def end(self) -> list[str]:
        """At the end of the stream: the last line if it had no newline."""
        return [self._take()] if self._partial else []

    def _keep(self, chunk: bytes) -> None:
        room = self._limit - len(self._partial)
        if room > 0:
            self._partial += chunk[:room]

    def _take(self) -> str:
        text = self._partial.decode("utf-8", errors="replace")
        self._partial.clear()
        if text.endswith("\r"):
            text = text[:-1]
        return shorten(text, self._width)


class Tail:
    """The last `lines` non-blank lines seen, each cut to `width` characters."""

    def __init__(self, lines: int = TAIL_LINES, width: int = TAIL_CHARS) -> None:
        self._lines: deque[str] = deque(maxlen=lines)
        self._width = width

    def add(self, line: str) -> None:
        if line.strip():
            self._lines.append(shorten(line, self._width))

    def lines(self) -> tuple[str, ...]:
        return tuple(self._lines)
