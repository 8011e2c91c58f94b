"""Progress on stderr while a run goes: which scenario and target, a dot per second."""

from __future__ import annotations

import sys
from typing import TextIO

from benchmarks.load import LoadResult
from benchmarks.scenarios import Scenario


class Progress:
    """What is running now, on stderr: one line per (scenario, target), a dot per second."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def begin(
        self, index: int, total: int, scenario: Scenario, target: str, run: int | None = None
    ) -> None:
        which = "" if run is None else f" (run {run})"
        print(f"[{index}/{total}] {scenario.name} -> {target}{which}:", end="", file=self.stream)
        self.stream.flush()

    def phase(self, text: str) -> None:
        print(f" {text} ", end="", file=self.stream, flush=True)

    def tick(self) -> None:
        print(".", end="", file=self.stream, flush=True)

    def end(self, load: LoadResult) -> None:
        errors = f", {load.errors} errors" if load.errors else ""
        print(
            f" {load.requests_per_s:,.0f} req/s, p99 {load.latency_ms['p99']:.2f} ms{errors}",
            file=self.stream,
            flush=True,
        )
