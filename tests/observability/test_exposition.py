"""admin_api.exposition writes exactly what prometheus-client's generate_latest writes."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from admin_api.exposition import render


class _Families(Collector):
    def collect(self) -> Iterator[Metric]:
        counter = CounterMetricFamily(
            "c", "help with \\ and\nnewline", labels=["z", "a"], created=12.5
        )
        counter.add_metric(["plain", 'q"uo\\te\nd'], 3)
        counter.add_metric(["big", "x"], 123456789.0, timestamp=1700000000.25)
        gauge = GaugeMetricFamily("g", "gauge", labels=["pool", "backend"])
        for value in (0, 1, -2.5, float("inf"), float("-inf"), float("nan"), 1e-9, 2**40):
            gauge.add_metric(["p", str(value)], value)
        unlabelled = GaugeMetricFamily("u", "no labels")
        unlabelled.add_metric([], 7)
        histogram = HistogramMetricFamily("h", "histogram", labels=["route"], unit="seconds")
        histogram.add_metric(["r"], [("0.1", 1), ("+Inf", 4)], 2.5)
        info = InfoMetricFamily("i", "info")
        info.add_metric([], {"version": "1.0"})
        yield from (counter, gauge, unlabelled, histogram, info)


def test_render_is_generate_latest_byte_for_byte() -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families())
    assert render(registry) == generate_latest(registry)
