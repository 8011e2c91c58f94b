"""The fleet panel in a real browser: one line in file mode; in fleet mode (a real etcd, two real
`turnout run` instances sharing a prefix) both instances, this one marked, etcd reachable and
the rollout leader; a write made on the other instance shows as both rows' applied revision;
an instance that has not applied the frame's revision is shown behind until it catches up; and
an etcd that stops answering is shown unreachable while the frames keep their pace.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator

import pytest
from dashboard_support import Turnout, frames_after, live
from fleet.etcd_support import ETCD, NO_ETCD, Etcd, running_etcd
from fleet.fleet_support import Fleet, poll, running_fleet
from playwright.sync_api import Page, expect

PREFIX = "/turnout-dashboard/"
BEHIND = re.compile(r"\bbehind\b")
SELF = re.compile(r"\bself\b")


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    if ETCD is None:
        pytest.skip(NO_ETCD)
    with running_etcd(tmp_path_factory.mktemp("etcd")) as member:
        yield member


@pytest.fixture(scope="module")
def fleet(etcd: Etcd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Instances `a` and `b` on one etcd. A lease of 10 s: an instance stopped for a few
    seconds is still a member (and shown behind) rather than gone."""
    directory = tmp_path_factory.mktemp("fleet")
    with running_fleet([etcd.url], directory, PREFIX, names=("a", "b"), ttl=10) as running:
        yield running


def leader_of(fleet: Fleet) -> str:
    def elected() -> str | None:
        leader = fleet["a"].get("/v1/fleet").body["leader"]
        return str(leader) if leader else None

    return poll(elected, 15, "a rollout leader")


def test_file_mode_is_one_line(page: Page, shop: Turnout) -> None:
    page.goto(shop.url)
    live(page)
    revision = shop.api.get("/v1/routes")["revision"]
    panel = page.locator("#fleet")
    expect(panel).to_contain_text("This instance alone")
    expect(panel).to_contain_text(f"revision {revision}")
    expect(panel.locator("table")).to_have_count(0)


def test_both_instances_this_one_marked_etcd_and_the_leader(fresh_page: Page, fleet: Fleet) -> None:
    page = fresh_page
    leader = leader_of(fleet)
    page.goto(fleet["a"].admin_url + "/")
    live(page)
    panel = page.locator("#fleet")
    expect(panel.locator(".prefix")).to_have_text(PREFIX)
    expect(panel.locator(".etcd")).to_contain_text("etcd reachable")
    expect(panel.locator(".leader")).to_have_text(leader)
    a, b = panel.locator("tr[data-instance=a]"), panel.locator("tr[data-instance=b]")
    expect(a).to_contain_text("this instance")
    expect(a).to_have_class(SELF)
    expect(b).not_to_contain_text("this instance")
    expect(b.locator(".address")).to_have_text(fleet["b"].admin_url)
    expect(b.locator(".seen")).to_contain_text(" s ago")
    # Every instance applied the frame's revision: nothing is shown behind.
    expect(panel.locator("tr.behind")).to_have_count(0)


def test_a_write_on_the_other_instance_shows_in_both_rows(fresh_page: Page, fleet: Fleet) -> None:
    page = fresh_page
    page.goto(fleet["a"].admin_url + "/")
    live(page)
    before = fleet["a"].revision()
    answer = fleet["b"].set_weights({"blue": 3, "green": 1})
    assert answer.status == 200, answer
    revision = answer.body["revision"]
    assert revision > before
    panel = page.locator("#fleet")
    for name in ("a", "b"):
        row = panel.locator(f"tr[data-instance={name}] .applied")
        expect(row).to_have_text(str(revision))
    expect(page.locator("#connection")).to_contain_text(f"revision {revision}")


def test_an_instance_that_has_not_applied_the_revision_is_shown_behind(
    fresh_page: Page, fleet: Fleet
) -> None:
    page = fresh_page
    page.goto(fleet["a"].admin_url + "/")
    live(page)
    b = fleet["b"].proxy
    assert b is not None
    panel = page.locator("#fleet")
    row = panel.locator("tr[data-instance=b]")
    # b's control plane stops (its lease lives on for 10 s): a write that waits for this
    # instance only is applied here and not there.
    os.kill(b.process.pid, signal.SIGSTOP)
    try:
        answer = fleet["a"].set_weights({"blue": 1, "green": 3}, wait_local=True)
        assert answer.status == 200, answer
        revision = answer.body["revision"]
        expect(page.locator("#connection")).to_contain_text(f"revision {revision}")
        expect(row).to_have_class(BEHIND)
        expect(row.locator(".applied")).to_contain_text(f"{revision - 1}")
        expect(row.locator(".applied")).to_contain_text("1 behind")
        expect(panel.locator("tr[data-instance=a]")).not_to_have_class(BEHIND)
    finally:
        os.kill(b.process.pid, signal.SIGCONT)
    expect(row.locator(".applied")).to_have_text(str(revision))
    expect(row).not_to_have_class(BEHIND)


def test_an_etcd_that_does_not_answer_is_unreachable_and_slows_no_frame(
    fresh_page: Page, fleet: Fleet, etcd: Etcd
) -> None:
    # Last in the module: etcd stops answering (stopped, not gone: connections hang until the
    # client's 2 s timeout), then answers again.
    page = fresh_page
    page.goto(fleet["a"].admin_url + "/")
    live(page)
    panel = page.locator("#fleet")
    expect(panel.locator(".etcd")).to_contain_text("etcd reachable")
    assert etcd.process is not None
    os.kill(etcd.process.pid, signal.SIGSTOP)
    try:
        expect(panel.locator(".etcd")).to_contain_text("etcd unreachable")
        # As GET /v1/fleet says then: who is live is not known.
        expect(panel).to_contain_text("Who is live is unknown")
        expect(panel.locator(".prefix")).to_have_text(PREFIX)
        # A frame a second: waiting 2 s (twice) for etcd per frame would give 2 in 5 s.
        frames_after(page, 4, timeout=5.5)
    finally:
        os.kill(etcd.process.pid, signal.SIGCONT)
    expect(panel.locator(".etcd")).to_contain_text("etcd reachable", timeout=15_000)
