"""One swap: routing and limits arrive in one published object (`DataPlane.install`).

A request holds the `Installed` it routed by: whatever is installed after, it sees that object's
snapshot and limits together, never the routing of one install with the limits of another.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from helpers import config
from proxy.config import Settings
from proxy.dataplane import DataPlane
from router import build_snapshot

POOLS = {"stable": ["http://127.0.0.1:1"], "canary": ["http://127.0.0.1:2"]}


def settings(weights: dict[str, int], **sections: Any) -> Settings:
    return Settings(**config(POOLS, {"web": {"weights": weights}}, **sections))


async def test_a_reload_is_seen_as_routing_and_limits_together_or_not_at_all() -> None:
    first = settings({"stable": 1, "canary": 0}, upstream={"read_timeout": 5.0, "retries": 1})
    second = settings({"stable": 0, "canary": 1}, upstream={"read_timeout": 0.5, "retries": 0})
    before, after = build_snapshot(first.spec()), build_snapshot(second.spec())
    dp = DataPlane(first, before, asyncio.get_running_loop())
    held = dp.installed  # what a request that began before the reload keeps

    dp.install(after, second)

    now = dp.installed
    assert now.snapshot is after
    assert (now.limits.read_timeout, now.limits.retries) == (0.5, 0)
    assert held.snapshot is before
    assert (held.limits.read_timeout, held.limits.retries) == (5.0, 1)
    # Nothing a request reads is left on the data plane for a reload to change under it.
    for limit in ("read_timeout", "retries", "header_timeout", "decision_header"):
        assert not hasattr(dp, limit)


async def test_an_install_without_settings_keeps_the_limits() -> None:
    first = settings({"stable": 1, "canary": 0})
    dp = DataPlane(first, build_snapshot(first.spec()), asyncio.get_running_loop())
    limits = dp.installed.limits
    after = build_snapshot(settings({"stable": 0, "canary": 1}).spec())
    dp.install(after)
    assert dp.installed.limits is limits
    assert dp.installed.snapshot is after


async def test_a_request_holding_the_access_log_never_writes_to_a_closed_file(
    tmp_path: Path,
) -> None:
    old, new = tmp_path / "old.log", tmp_path / "new.log"
    weights = {"stable": 1, "canary": 0}
    first = settings(weights, access_log={"enabled": True, "file": str(old)})
    dp = DataPlane(first, build_snapshot(first.spec()), asyncio.get_running_loop())
    log = dp.installed.limits.access_log
    assert log is not None
    log.write({"line": 1})

    # Moved to another file, then turned off, while a request holding the log is in flight.
    dp.install(dp.snapshot, settings(weights, access_log={"enabled": True, "file": str(new)}))
    dp.install(dp.snapshot, settings(weights, access_log={"enabled": False}))
    assert dp.installed.limits.access_log is None
    log.write({"line": 2})  # the in-flight request's line
    await dp.stop()

    assert [json.loads(line) for line in old.read_text().splitlines()] == [{"line": 1}]
    assert [json.loads(line) for line in new.read_text().splitlines()] == [{"line": 2}]
