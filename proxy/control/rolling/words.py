"""How a pool rollout's position is said in its reasons ("batch 2/4 (blue-2)"), and why a held
batch fails, in the same words for both modes."""

from __future__ import annotations

from collections.abc import Iterable

from proxy.control.rolling.model import Cause, PoolRollout, Seen


def names(backends: Iterable[str]) -> str:
    return ", ".join(backends) or "none"


def where(rollout: PoolRollout) -> str:
    """ "batch 2/4 (blue-2)", "batch 2/4 (blue-2 → blue-new-2)", "reverting blue-1",
    "gating blue-new-1, blue-new-2" or "keeping blue-1, blue-2"."""
    if rollout.reverting:
        return f"reverting {rollout.reverting[0]}"
    if rollout.stage == "gating":
        return f"gating {names(rollout.new)}"
    if rollout.stage == "keeping-old":
        return f"keeping {names(rollout.old)}"
    at = f"batch {rollout.batch + 1}/{len(rollout.batches)}"
    if rollout.spec.mode == "surge":
        return f"{at} ({names(rollout.current)} → {names(rollout.new_batches[rollout.batch])})"
    return f"{at} ({names(rollout.current)})"


def duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def tail(lines: tuple[str, ...]) -> str:
    """A hook's last output lines, on the reason's one line."""
    if not lines:
        return ""
    return " (last output: " + " | ".join(line.rstrip() for line in lines) + ")"


def hold_failure(
    rollout: PoolRollout, serving: Iterable[str], seen: Seen
) -> tuple[Cause, str] | None:
    """Why a held batch fails, or None: one of the backends `serving` the new version failed
    its checks, or the judge found the new version worse."""
    sick = [name for name in serving if name not in seen.healthy]
    if sick:
        return "unhealthy", f"{where(rollout)}: {names(sick)} failed its checks while held"
    verdict = seen.verdict
    if verdict is not None and verdict.outcome == "worse":
        cause: Cause = "latency" if verdict.test == "latency" else "errors"
        return cause, f"{where(rollout)}: {verdict.reason}"
    return None
