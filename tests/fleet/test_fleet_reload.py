"""The configuration file in a fleet: the fleet's state wins over an instance's file at start,
and `POST /v1/reload` on one instance pushes that file's routes to every instance.

Theory of operation: two `turnout run` instances on one real etcd. The first write makes the
fleet's weights differ from both files; instance b is then restarted with a file that declares
other weights (it must adopt the fleet's, not its file's); finally a's file is edited and
reloaded, and b must route by a's new weights: the reload was one fleet-wide write.
"""

from __future__ import annotations

from pathlib import Path

from etcd_support import Etcd
from fleet_support import ROUTE, poll, running_fleet


def test_the_fleet_state_wins_at_start_and_a_reload_pushes_a_file(
    etcd: Etcd, tmp_path: Path
) -> None:
    with running_fleet([etcd.url], tmp_path, "/turnout-e2e/reload/", names=("a", "b")) as fleet:
        a, b = fleet["a"], fleet["b"]
        written = a.set_weights({"blue": 7, "green": 3})
        assert written.status == 200, written
        revision = written.body["revision"]

        # b restarts with a file of its own weights: the fleet's are kept, at its revision.
        b.stop()
        b.data["routes"][ROUTE]["weights"] = {"blue": 0, "green": 1}
        b.start()
        b.ready()
        view = b.route().body
        assert view["weights"] == {"blue": 7, "green": 3}
        assert view["revision"] == revision
        assert "POST /v1/reload pushes this file's routes" in b.log()

        # a's file changes and a reloads: every instance routes by it, at one new revision.
        a.data["routes"][ROUTE]["weights"] = {"blue": 1, "green": 4}
        a.write_config()
        reloaded = a.write("POST", "/v1/reload", None)
        assert reloaded.status == 200, reloaded
        assert reloaded.body["revision"] == revision + 1
        for instance in (a, b):
            view = instance.route().body
            assert view["weights"] == {"blue": 1, "green": 4}, instance.name
            assert view["revision"] == revision + 1
        history = poll(
            lambda: (
                [c for c in b.get("/v1/history?limit=5").body["changes"] if c["action"] == "reload"]
                or None
            ),
            5,
            "the reload in b's history",
        )
        assert history[0]["revision"] == revision + 1
