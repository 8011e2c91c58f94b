"""What the pool rollout end-to-end tests share: backend *programs* that a hook really stops and
starts (benchmarks.versioned_backend, one process per backend), the hook's argv, a pool with
fast active checks, and a look at the rollout through the admin API.

Nothing is a mock: each backend is a process answering its version, the hook is
benchmarks.replace_hook run by turnout's control plane, the proxy is a real `turnout run` with
2 workers, the load is keep-alive HTTP from threads (benchmarks.roll_load).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from admin.admin_support import Api

from benchmarks.replace_hook import alive
from benchmarks.roll_fleet import OLD, Fleet
from helpers import config, free_port

POOL = "blue"
CHECKS = {
    "enabled": True,
    "interval": 0.2,
    "jitter": 0.1,
    "timeout": 1.0,
    "healthy_threshold": 2,
    "unhealthy_threshold": 2,
    "path": "/healthz",
}
"""Active checks every 0.2 s, 2 in a row: a replaced backend is seen healthy within ~0.5 s."""


@contextlib.contextmanager
def fleet(directory: Path, slow_seconds: float = 2.0) -> Iterator[Fleet]:
    """Backend programs in `directory`, started on free ports by `start(name)`."""
    with Fleet(directory, slow_seconds) as backends:
        yield backends


def start(backends: Fleet, name: str, version: str = OLD, error_rate: float = 0.0) -> str:
    return backends.start(name, free_port(), version, error_rate)


def pool_config(urls: list[str], slow_start: float = 0.5) -> dict[str, Any]:
    """Pool `blue` (backends blue-1, blue-2, ...) behind route `web`, probed every 0.2 s."""
    data = config({POOL: urls}, {"web": {"weights": {POOL: 100}}}, health=CHECKS)
    data["pools"][POOL]["slow_start"] = slow_start
    return data


def roll(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    """Start the pool's rollout; its view."""
    view: dict[str, Any] = api.call("POST", f"/v1/pools/{POOL}/rollout", body).ok(201)
    return view


def wait_for_roll(
    api: Api, condition: Callable[[dict[str, Any]], bool], timeout: float = 30.0
) -> dict[str, Any]:
    """Poll the pool's rollout until `condition(view)`; the view."""
    deadline = time.monotonic() + timeout
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = dict(api.get(f"/v1/pools/{POOL}/rollout"))
        if condition(view):
            return view
        time.sleep(0.05)
    raise AssertionError(f"the rollout of {POOL} never got there: {view}")


def final(view: dict[str, Any]) -> bool:
    return view["phase"] not in ("progressing", "paused")


def at(batch: int, stage: str) -> Callable[[dict[str, Any]], bool]:
    def there(view: dict[str, Any]) -> bool:
        return bool(view["batch"] == batch and view["stage"] == stage) or final(view)

    return there


def admin_states(api: Api) -> dict[str, str]:
    pool = api.get(f"/v1/pools/{POOL}")
    return {backend["name"]: backend["adminState"] for backend in pool["backends"]}


def figures(title: str, **values: object) -> None:
    """Print what the issue asks to measure (shown by pytest -s)."""
    shown = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in values.items())
    print(f"\n[{title}] {shown}")


def gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
