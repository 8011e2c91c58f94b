"""What `turnout roll` and `turnout rollout status|list` show of a pool's rollout, as text: pure
functions of the API's PoolRolloutView documents (admin_api.pool_rollout_models). As
admin_api.cli.render: a field that is missing or of another shape shows less, never fails."""

from __future__ import annotations

from typing import Any

from admin_api.cli.render import table
from admin_api.cli.rollout_render import (
    count_text,
    evidence_text,
    mapping,
    render_rollouts,
    verdict_lines,
)
from admin_api.client import JSON

HOOKS_SHOWN = 3
"""The newest hook results shown, each with its output's last lines."""


def batch_text(view: JSON) -> str:
    """`2/4 holding`, `gating`, `keeping old`: where the rollout is, in a few words."""
    stage = str(view.get("stage") or "-")
    if stage in ("gating", "keeping-old") or view.get("reverting"):
        return stage.replace("-", " ")
    batches = _list(view.get("batches"))
    return f"{view.get('batch')}/{len(batches)} {stage}"


def batch_lines(view: JSON) -> list[str]:
    """One line per batch: its backends (surge: old -> new) and what became of them."""
    new = _list(view.get("newBatches"))
    lines = []
    for number, group in enumerate(_list(view.get("batches")), start=1):
        names = [str(name) for name in _list(group)]
        shown = ", ".join(names) or "-"
        if view.get("mode") == "surge" and number <= len(new):
            shown += " -> " + (", ".join(str(name) for name in _list(new[number - 1])) or "-")
        lines.append(f"  {f'batch {number}':<9} {shown}: {batch_state(view, number, names)}")
    return lines


def batch_state(view: JSON, number: int, names: list[str]) -> str:
    """What became of one batch, in words."""
    reverting = [str(name) for name in _list(view.get("reverting"))]
    surge = view.get("mode") == "surge"
    current = view.get("batch")
    at = isinstance(current, int) and number <= current
    if set(names) & set(reverting):
        return "reverting now" if reverting[0] in names else "to revert"
    if surge and view.get("phase") == "aborted" and at:
        return "rolled back"
    replaced = {str(name) for name in _list(view.get("replaced"))}
    done = bool(names) and all(name in replaced for name in names)
    word = "moved" if surge else "replaced"
    stage = view.get("stage")
    final = view.get("phase") in ("promoted", "aborted")
    if number == current and not final and not reverting and stage != "gating":
        return f"{word}, {stage} now" if done else f"{stage} now"
    if done:
        return word
    if view.get("cause") and at:
        return "old version"  # reverted, or stopped before its hook ran
    return "not yet"


def hook_lines(view: JSON, shown: int = HOOKS_SHOWN) -> list[str]:
    hooks = [hook for hook in _list(view.get("hooks")) if isinstance(hook, dict)]
    if not hooks:
        return []
    lines = [
        f"  hooks     {len(hooks)} run" + (f", the last {shown}:" if len(hooks) > shown else ":")
    ]
    for hook in hooks[-shown:]:
        outcome = "ok" if hook.get("ok") else "failed"
        lines.append(
            f"    {hook.get('action')} {hook.get('backend')}: {outcome}, {hook.get('reason') or '-'}"
        )
        lines.extend(f"      | {line}" for line in _list(hook.get("tail")))
    return lines


def render_pool_rollout(view: JSON) -> str:
    """One block: what, where, why, each batch, the verdict, the evidence and the hooks."""
    lines = [f"rollout of pool {view.get('pool')}: {view.get('mode', '?')}, {view.get('phase')}"]
    lines.append(f"  stage     {batch_text(view)}")
    lines.append(f"  reason    {view.get('reason') or '-'}")
    cause = view.get("cause")
    if cause:
        lines.append(f"  cause     {cause}")
    lines.extend(batch_lines(view))
    lines.extend(verdict_lines(view))
    evidence = mapping(view.get("evidence"))
    if evidence:
        lines.append(
            f"  errors    new {count_text(evidence.get('newErrors'), evidence.get('newRequests'))}"
            f" vs old {count_text(evidence.get('oldErrors'), evidence.get('oldRequests'))};"
            f" evidence {evidence_text(evidence)}"
        )
    lines.extend(hook_lines(view))
    lines.append(
        f"  revision  {view.get('revision')} (last transition {view.get('transitionRevision')},"
        f" {view.get('updated')})"
    )
    return "\n".join(lines)


def render_every_rollout(document: JSON) -> str:
    """GET /v1/rollouts: the route rollouts' table, then the pool rollouts'."""
    pools = pool_table(_list(document.get("poolRollouts")))
    if not pools:
        return render_rollouts(document)
    if not document.get("rollouts"):
        return f"revision {document.get('revision')}\n{pools}"
    return f"{render_rollouts(document)}\n\n{pools}"


def pool_table(views: list[Any]) -> str:
    """Pool rollouts as a table (empty text when there are none)."""
    rows = [
        [
            view.get("pool"),
            view.get("mode"),
            view.get("phase"),
            batch_text(view),
            mapping(view.get("verdict")).get("outcome"),
            view.get("reason"),
        ]
        for view in views
        if isinstance(view, dict)
    ]
    if not rows:
        return ""
    return table(["POOL", "MODE", "PHASE", "BATCH", "VERDICT", "REASON"], rows)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
