"""Writers across the fleet: If-Match holds fleet-wide, /v1/fleet, and a dead instance's 504.

Theory of operation: one fleet of three `turnout run` instances (wait = 1 s, ttl = 2 s) for the
module; the tests run in file order and the last one kills an instance. Two threads released
by one barrier send the same If-Match to two different instances: the etcd txn compares the
state key's revision, so exactly one of them wins each round. `GET /v1/fleet` on every instance
lists the three with the revision each applied and agrees on one leader. An instance killed
with SIGKILL keeps its membership until its lease's TTL runs out, so a write meanwhile answers
504 `fleet-lagging` naming it after `wait`, committed all the same; after the TTL the fleet is
the two live instances and writes answer 2xx again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from etcd_support import Etcd
from fleet_support import Answer, Fleet, poll, running_fleet

PREFIX = "/turnout-e2e/writers/"
LAGGING = "urn:turnout:problem:fleet-lagging"
WAIT, TTL = 1.0, 2


@pytest.fixture(scope="module")
def fleet(etcd: Etcd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    directory = tmp_path_factory.mktemp("fleet")
    with running_fleet([etcd.url], directory, PREFIX, wait=WAIT, ttl=TTL) as running:
        yield running


def race(fleet: Fleet, expected: int, round_: int) -> list[Answer]:
    """a and b write different weights with the same If-Match at the same moment."""
    barrier = threading.Barrier(2)
    answers: dict[str, Answer] = {}

    def write(name: str, blue: int) -> None:
        barrier.wait(5)
        weights = {"blue": blue, "green": round_ + 1}
        answers[name] = fleet[name].set_weights(weights, if_match=expected)

    threads = [
        threading.Thread(target=write, args=("a", 1000 + round_)),
        threading.Thread(target=write, args=("b", 2000 + round_)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return [answers["a"], answers["b"]]


def test_two_writers_with_the_same_if_match_exactly_one_wins(fleet: Fleet) -> None:
    expected = fleet["a"].revision()
    for round_ in range(20):
        answers = race(fleet, expected, round_)
        statuses = sorted(answer.status for answer in answers)
        assert statuses == [200, 412], (round_, [(a.status, a.body) for a in answers])
        winner = next(answer for answer in answers if answer.status == 200)
        assert winner.body["revision"] == expected + 1, "one write, one revision"
        expected += 1
        # The winner answered after every instance applied it: all agree on the winner's weights.
        views = fleet.views()
        assert {v.body["revision"] for v in views} == {expected}
        assert len({str(v.body["weights"]) for v in views}) == 1


def test_the_fleet_view_lists_every_instance_and_one_leader(fleet: Fleet) -> None:
    revision = fleet["a"].revision()
    names = [instance.name for instance in fleet.instances]

    def views() -> list[Answer] | None:
        answers = [instance.get("/v1/fleet") for instance in fleet.instances]
        settled = all(
            a.status == 200
            and a.body.get("leader") is not None
            and all(i["applied"] == revision for i in a.body.get("instances", []))
            for a in answers
        )
        return answers if settled else None

    answers = poll(views, 10, "every /v1/fleet names a leader and the applied revisions")
    assert len({a.body["leader"] for a in answers}) == 1, "exactly one leader"
    assert answers[0].body["leader"] in names
    for instance, answer in zip(fleet.instances, answers, strict=True):
        body = answer.body
        assert body["backend"] == "etcd"
        assert body["prefix"] == PREFIX
        assert body["instance"] == instance.name
        assert body["revision"] == revision
        assert body["etcd"] == "reachable"
        listed = sorted(body["instances"], key=lambda item: item["instance"])
        assert [item["instance"] for item in listed] == names
        assert [item["self"] for item in listed] == [n == instance.name for n in names]
        for item in listed:
            assert item["applied"] == revision
            assert item["address"].startswith("http://127.0.0.1:")
            assert item["seen"] >= item["started"] > 0


def test_a_killed_instance_makes_writes_504_until_its_lease_ends(fleet: Fleet) -> None:
    fleet["c"].kill()
    started = time.monotonic()
    answer = fleet["a"].set_weights({"blue": 31, "green": 7})
    took = time.monotonic() - started
    assert answer.status == 504, answer
    assert answer.problem == LAGGING, answer.body
    assert answer.body["instances"] == ["c"]
    assert "c" in answer.body["detail"]
    assert WAIT * 0.9 <= took < WAIT + 1.5, f"answered after {took:.2f} s, wait is {WAIT} s"
    revision = answer.body["revision"]
    # Committed all the same, and applied by the live instances.
    for name in ("a", "b"):
        view = fleet[name].route()
        assert (view.body["revision"], view.body["weights"]) == (revision, {"blue": 31, "green": 7})

    def healthy_write() -> Answer | None:
        answer = fleet["b"].set_weights({"blue": 32 + int(time.monotonic() * 10) % 50, "green": 7})
        return answer if answer.status == 200 else None

    # After the TTL (2 s, plus etcd's lease expiry check) writes answer without waiting for c.
    poll(healthy_write, TTL + 6, "a 2xx write once c's lease expired", 0.2)
    fast = time.monotonic()
    answer = fleet["a"].set_weights({"blue": 99, "green": 7})
    assert answer.status == 200, answer
    assert time.monotonic() - fast < WAIT, "no longer waits for c"
    listed = fleet["a"].get("/v1/fleet").body["instances"]
    assert sorted(item["instance"] for item in listed) == ["a", "b"]
