"""The replace hook failing, end to end: a real turnout with 2 workers runs
benchmarks.replace_hook, told to hang or to fail, on a pool of two backend programs.

d. A hook that hangs is killed at its timeout, its whole process group with it, and the
   rollout stops with that reason; a hook that fails with output shows the output's last lines
   in the rollout's status (`hooks[].tail`, and the reason) and in turnout's log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from admin.admin_support import api
from roll_support import (
    POOL,
    admin_states,
    figures,
    final,
    fleet,
    gone,
    pool_config,
    roll,
    start,
    wait_for_roll,
)

from benchmarks.roll_bench import epoch
from benchmarks.roll_fleet import OLD, Fleet
from helpers import ProxyProcess, proxy_process

NAMES = [f"{POOL}-1", f"{POOL}-2"]


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[Fleet, ProxyProcess]]:
    with fleet(tmp_path) as backends:
        urls = [start(backends, name) for name in NAMES]
        with proxy_process(pool_config(urls), workers=2) as proxy:
            yield backends, proxy


def test_a_hook_that_hangs_is_killed_at_its_timeout_with_its_process_group(
    two: tuple[Fleet, ProxyProcess],
) -> None:
    backends, proxy = two
    admin = api(proxy)
    pid = backends.pid("blue-1")
    spec = {
        "hook": {"command": backends.hook("--hang"), "timeout": 1},
        "drainTimeout": 5,
        "autoRevert": False,
    }
    roll(admin, spec)
    done = wait_for_roll(admin, final, 15)

    assert (done["phase"], done["cause"]) == ("aborted", "hook"), done
    assert "hook failed: timed out after 1 s (killed)" in done["reason"], done["reason"]
    assert done["reason"].endswith("blue-1 left drained, not reverted (auto_revert off)")
    [hook] = done["hooks"]
    assert (hook["backend"], hook["action"], hook["ok"]) == ("blue-1", "replace", False)
    assert hook["reason"] == "timed out after 1 s (killed)"
    sleeper = int((backends.directory / "blue-1.hang.pid").read_text())
    assert hook["tail"][-1] == f"hanging on sleep (pid {sleeper})"
    # The hook's child went with it: the whole group was signalled, not the hook alone.
    assert gone(sleeper)
    # The hook hung before touching anything: the old program still serves, left drained.
    assert (backends.pid("blue-1"), backends.version("blue-1")) == (pid, OLD)
    assert admin_states(admin) == {"blue-1": "drain", "blue-2": "ready"}
    # Killed at its timeout: the stage ended a second after it began, a tick or two later
    # (the group obeyed SIGTERM; SIGKILL, 2 s later, would make it 3 s or more).
    took = epoch(done["updated"]) - epoch(done["stageStarted"])
    assert 1 <= took < 3, took
    figures("d. hanging hook", hook_timeout_s=1, replacing_stage_ended_after_s=f"{took:.2f}")


def test_a_hook_that_fails_shows_its_last_lines_and_the_backend_is_reverted(
    two: tuple[Fleet, ProxyProcess],
) -> None:
    backends, proxy = two
    admin = api(proxy)
    spec = {
        "hook": {"command": backends.hook("--fail", "3", "--only", "replace"), "timeout": 10},
        "drainTimeout": 5,
        "healthyDeadline": 10,
        "autoRevert": True,
    }
    roll(admin, spec)
    done = wait_for_roll(admin, final, 20)

    assert (done["phase"], done["cause"]) == ("aborted", "hook"), done
    last_lines = [
        "error: image v2 not found in the registry",
        "giving up on blue-1: nothing was changed",
    ]
    failed, reverted = done["hooks"]
    assert (failed["backend"], failed["action"], failed["ok"]) == ("blue-1", "replace", False)
    assert failed["reason"] == "exit status 3"
    assert failed["tail"][-2:] == last_lines
    assert (reverted["backend"], reverted["action"], reverted["ok"]) == ("blue-1", "revert", True)
    # The reason carries the tail too, on one line, and says the revert finished.
    assert "hook failed: exit status 3 (last output: " in done["reason"], done["reason"]
    assert " | ".join(last_lines) + "); every" in done["reason"]
    assert done["reason"].endswith("every replaced backend reverted"), done["reason"]
    # The revert hook restarted the old version; it is back in service.
    assert backends.version("blue-1") == OLD
    assert admin_states(admin) == dict.fromkeys(NAMES, "ready")
    # turnout logged the hook's output line by line.
    log = proxy.log()
    assert all(line in log for line in last_lines), log[-2000:]
    figures("d. failing hook", reason=done["reason"])
