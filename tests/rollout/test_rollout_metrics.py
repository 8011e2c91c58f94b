"""A rollout's figures in /metrics after the judge aborted it: a real turnout, a canary that
answers 500, real client traffic, the metrics scraped as Prometheus would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from admin.admin_support import api, backend_loop
from prometheus_client.parser import text_string_to_metric_families
from traffic_support import Traffic, start, wait_for_rollout

from helpers import ProxyProcess, config, proxy_process


@pytest.fixture
def proxy() -> Iterator[ProxyProcess]:
    with backend_loop() as loop:
        _, stable_url = start(loop, "stable")
        canary, canary_url = start(loop, "canary")
        canary.failing = True
        data = config(
            {"stable": [stable_url], "canary": [canary_url]},
            {"web": {"weights": {"stable": 100, "canary": 0}}},
        )
        with proxy_process(data, workers=2) as proxy:
            yield proxy


def samples(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every sample of `name` (a sample name: counters end in _total), by its labels."""
    return {
        frozenset(sample.labels.items()): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def labels(**values: str) -> frozenset[tuple[str, str]]:
    return frozenset(values.items())


def test_an_abort_shows_in_the_metrics(proxy: ProxyProcess) -> None:
    admin = api(proxy)
    body = {"canary": "canary", "steps": [5, 25, 50, 100], "stepTime": 60}
    with Traffic(proxy.port).running():
        admin.call("POST", "/v1/routes/web/rollout", body).ok(201)
        done = wait_for_rollout(admin, "web", lambda s: s["phase"] != "progressing", 20)
    assert (done["phase"], done["cause"]) == ("aborted", "errors"), done
    threshold = done["evidence"]["errors"]["threshold"]
    assert threshold == 2 / 0.01  # each of the two tests aborts at 2/alpha (alpha 0.01)
    text = admin.call("GET", "/metrics").raw.decode()

    assert 'turnout_rollout_phase{phase="aborted",route="web"} 1.0' in text
    phases = samples(text, "turnout_rollout_phase")
    assert phases[labels(route="web", phase="progressing")] == 0
    evidence = samples(text, "turnout_rollout_evidence")
    assert evidence[labels(route="web", test="errors")] >= threshold, evidence
    shown = done["evidence"]["errors"]["evidence"]  # the API's, to 6 significant digits
    assert evidence[labels(route="web", test="errors")] == pytest.approx(shown, rel=1e-5)
    aborts = samples(text, "turnout_rollout_aborts_total")
    assert aborts[labels(route="web", reason="errors")] >= 1, aborts
    assert aborts[labels(route="web", reason="manual")] == 0, aborts
