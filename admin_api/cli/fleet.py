"""`turnout fleet`: the instances sharing this instance's state, as GET /v1/fleet shows them."""

from __future__ import annotations

import argparse
import time

from admin_api.cli.output import show
from admin_api.cli.render import table
from admin_api.client import JSON, AdminClient


def fleet(client: AdminClient, args: argparse.Namespace) -> int:
    view = client.fleet()
    return show(args, view, lambda: render_fleet(view, time.time()))


def render_fleet(document: JSON, now: float) -> str:
    if document["backend"] != "etcd":
        return (
            f"file mode: this instance alone, revision {document['revision']} "
            '([state] backend = "etcd" shares the state with a fleet)'
        )
    leader = document.get("leader") or "none"
    summary = (
        f"fleet {document['prefix']} on etcd ({document['etcd']}): this is "
        f"{document['instance']}, revision {document['revision']}, rollout leader {leader}"
    )
    header = ["INSTANCE", "APPLIED", "ADMIN", "UP", "SEEN"]
    rows = [
        [
            instance["instance"] + (" *" if instance["self"] else ""),
            instance["applied"],
            instance["address"],
            _ago(now - instance["started"]),
            _ago(now - instance["seen"]) + " ago",
        ]
        for instance in document["instances"]
    ]
    if not rows:
        return summary + "\n(no live instance listed: etcd cannot be reached)"
    return summary + "\n" + table(header, rows)


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min {seconds % 60:.0f} s"
    return f"{seconds / 3600:.1f} h"
