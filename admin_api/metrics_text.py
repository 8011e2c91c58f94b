"""Metric families written straight in Prometheus' text format, for the big families.

On 2,000 backends /metrics has about 35,000 sample lines, almost all of them per backend.
Building a prometheus-client `Sample` (a label dict each) for every one of them and writing it
back out was most of the scrape, so those families write their lines here, from label strings
escaped once per snapshot (admin_api.metrics_backends) and values formatted through a cache.
A `TextFamily` is still a prometheus-client `Metric`: `admin_api.exposition.render` copies its
lines as they are, and anything else that reads `samples` (prometheus-client's own
`generate_latest`, a test) gets them parsed back from those lines, when it asks.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

_CACHE_LIMIT = 4096
_NUMBERS: dict[float, str] = {}


class TextFamily(Metric):
    """A family whose sample lines (`name{labels} value\\n`, in generate_latest's form: labels
    sorted by name, values escaped) are already written."""

    _parsed: list[Sample] | None

    def __init__(self, name: str, documentation: str, typ: str, lines: Sequence[str]) -> None:
        super().__init__(name, documentation, typ)
        self.lines = lines

    @property
    def samples(self) -> list[Sample]:
        # Parsed only for a reader other than render (tests, generate_latest): never per scrape.
        if self._parsed is None:
            exposed = self.name + "_total" if self.type == "counter" else self.name
            text = f"# TYPE {exposed} {self.type}\n" + "".join(self.lines)
            self._parsed = [
                sample
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            ]
        return self._parsed

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        # Metric.__init__ sets an empty list; the lines are the samples.
        self._parsed = None


def number(value: float) -> str:
    """floatToGoString(value), from a cache: a scrape formats the same few counts and 0/1 flags
    thousands of times."""
    text = _NUMBERS.get(value)
    if text is None:
        text = floatToGoString(value)  # type: ignore[no-untyped-call]
        if value == value and len(_NUMBERS) < _CACHE_LIMIT:  # NaN is never found again
            _NUMBERS[value] = text
    return text


def label_value(value: str) -> str:
    """A label value as generate_latest writes it between its quotes."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value
