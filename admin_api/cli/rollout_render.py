"""What the `turnout rollout` commands show, as text: pure functions of the API's RolloutView
and RolloutList documents (admin_api.rollout_models). As admin_api.cli.render: a field that is
missing or of another shape shows less, never fails."""

from __future__ import annotations

from typing import Any

from admin_api.cli.render import table, weights_text
from admin_api.client import JSON

FINAL = ("promoted", "aborted")


def is_final(view: JSON) -> bool:
    return view.get("phase") in FINAL


def step_text(view: JSON) -> str:
    """Canary `2/4 (25 %)`; blue-green `pre-checks` or `watching green`."""
    step = view.get("step")
    if view.get("strategy") == "blue-green":
        return "pre-checks" if step == 0 else f"watching {view.get('candidate')}"
    steps = view.get("steps") or []
    if not isinstance(step, int) or not steps:
        return "-"
    shown = min(step + 1, len(steps))
    return f"{shown}/{len(steps)} ({view.get('weight')} %)"


def render_rollout(view: JSON) -> str:
    """One block: what, where, why, the verdict and the evidence."""
    strategy = view.get("strategy", "?")
    lines = [f"rollout {view.get('route')}: {strategy}, {view.get('phase')}"]
    baseline, candidate = view.get("baseline"), view.get("candidate")
    if strategy == "blue-green":
        lines.append(f"  colours   {baseline} -> {candidate} (active now {view.get('active')})")
    else:
        weights = view.get("weights")
        now = f"; now {weights_text(weights)}" if isinstance(weights, dict) else ""
        lines.append(f"  pools     {candidate} against {baseline}{now}")
    lines.append(f"  step      {step_text(view)}")
    lines.append(f"  reason    {view.get('reason') or '-'}")
    cause = view.get("cause")
    if cause:
        lines.append(f"  cause     {cause}")
    lines.extend(verdict_lines(view))
    lines.extend(evidence_lines(mapping(view.get("evidence"))))
    lines.append(
        f"  revision  {view.get('revision')} (last transition {view.get('transitionRevision')},"
        f" {view.get('updated')})"
    )
    return "\n".join(lines)


def verdict_lines(view: JSON) -> list[str]:
    verdict = mapping(view.get("verdict"))
    if not verdict:
        return []
    outcome, reason = str(verdict.get("outcome")), str(verdict.get("reason") or "-")
    # The judge's reasons begin with their outcome in words ("not worse: ..."): once is enough.
    said = reason.startswith(outcome.replace("-", " "))
    return [f"  verdict   {reason if said else f'{outcome}: {reason}'}"]


def evidence_lines(evidence: dict[str, Any]) -> list[str]:
    if not evidence:
        return []
    lines = []
    errors = mapping(evidence.get("errors"))
    if errors:
        lines.append(
            "  errors    "
            + _compare(errors, "canaryErrors", "baselineErrors")
            + f"; evidence {evidence_text(errors)}"
        )
    latency = mapping(evidence.get("latency"))
    if latency:
        above = latency.get("slowAbove")
        slow = f"slow above {above:g} s" if isinstance(above, int | float) else "not calibrated"
        lines.append(
            f"  latency   {slow}: "
            + _compare(latency, "canarySlow", "baselineSlow")
            + f"; evidence {evidence_text(latency)}"
        )
    lines.append(
        f"  requests  {evidence.get('stepRequests')} in this step "
        f"(at least {evidence.get('minRequests')} to call it not worse)"
    )
    return lines


def _compare(test: dict[str, Any], canary: str, baseline: str) -> str:
    return (
        f"new {count_text(test.get(canary), test.get('canaryRequests'))} vs "
        f"old {count_text(test.get(baseline), test.get('baselineRequests'))}"
    )


def count_text(events: Any, requests: Any) -> str:
    if not isinstance(events, int) or not isinstance(requests, int):
        return "-"
    if not requests:
        return "0/0"
    return f"{events}/{requests} ({100 * events / requests:.2g} %)"


def evidence_text(test: dict[str, Any]) -> str:
    value, threshold = test.get("evidence"), test.get("threshold")
    if not isinstance(value, int | float) or not isinstance(threshold, int | float):
        return "-"
    return f"{value:.3g} of {threshold:g}"


def render_rollouts(document: JSON) -> str:
    header = ["ROUTE", "STRATEGY", "PHASE", "STEP", "VERDICT", "REASON"]
    rows = [
        [
            view.get("route"),
            view.get("strategy"),
            view.get("phase"),
            step_text(view),
            mapping(view.get("verdict")).get("outcome"),
            view.get("reason"),
        ]
        for view in document.get("rollouts") or []
    ]
    if not rows:
        return f"revision {document.get('revision')}: no rollouts"
    return f"revision {document.get('revision')}\n" + table(header, rows)


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
