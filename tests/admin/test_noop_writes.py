"""A write that changes nothing answers 200 with the current state and revision, and records
nothing; If-Match takes a list of revisions (RFC 9110 §13.1.1).

One `turnout run` serves the module. No traffic flows, so `Api.state()` (every route, pool and
the newest history entry, with their ETags) moves only when a write changes something.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from admin_support import Api, api, backend_loop, shop_and_web

from admin_api.http import parse_if_match
from admin_api.problems import Problem
from helpers import ProxyProcess, proxy_process


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyProcess]:
    with backend_loop() as loop:
        data = shop_and_web(loop)
        with proxy_process(data) as running:
            yield running


@pytest.fixture
def admin(proxy: ProxyProcess) -> Api:
    return api(proxy)


def revision(admin: Api) -> int:
    number: int = admin.get("/v1/routes")["revision"]
    return number


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    body: Any = None
    setup: tuple[tuple[str, str, Any], ...] = ()
    """Calls that bring the state to where the write changes nothing."""


WEB = "/v1/routes/web"
SHOP = "/v1/routes/shop"
STABLE_1 = "/v1/pools/stable/backends/stable-1"

CASES = [
    Case("same-weights", "PUT", f"{WEB}/weights", {"weights": {"stable": 90, "canary": 10}},
         setup=(("PUT", f"{WEB}/weights", {"weights": {"stable": 90, "canary": 10}}),)),
    Case("switch-to-active", "POST", f"{SHOP}/switch", {"to": "blue"},
         setup=(("POST", f"{SHOP}/switch", {"to": "blue"}),)),
    Case("switch-twice", "POST", f"{SHOP}/switch", {"to": "green"},
         setup=(("POST", f"{SHOP}/switch", {"to": "green"}),)),
    Case("abort-twice", "POST", f"{WEB}/abort", setup=(("POST", f"{WEB}/abort", None),)),
    Case("promote-twice", "POST", f"{WEB}/promote", setup=(("POST", f"{WEB}/promote", None),)),
    Case("undo-to-now", "POST", f"{WEB}/undo", "current"),
    Case("backend-same-state", "PATCH", STABLE_1, {"adminState": "ready"}),
    Case("backend-same-weight", "PATCH", STABLE_1, {"weight": 1}),
    Case("backend-same-both", "PATCH", STABLE_1, {"adminState": "ready", "weight": 1, "force": True}),
    Case("reload-unchanged-file", "POST", "/v1/reload"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_write_that_changes_nothing_is_200_at_the_same_revision(admin: Api, case: Case) -> None:
    for method, path, body in case.setup:
        admin.call(method, path, body).ok()
    before = admin.state()
    body = {"toRevision": revision(admin)} if case.body == "current" else case.body
    reply = admin.call(case.method, case.path, body)
    answer = reply.ok()
    current = before["routes"]["revision"]
    # A backend's view has no revision of its own, and reload's answer no ETag.
    assert answer.get("revision", current) == current
    assert reply.etag in (f'"{current}"', None if case.path == "/v1/reload" else "")
    # Nothing recorded: every route, pool, the newest history entry and the ETags as before.
    assert admin.state() == before


def test_repeated_aborts_keep_the_revision_and_what_rollback_returns_to(admin: Api) -> None:
    admin.call("PUT", f"{WEB}/weights", {"weights": {"stable": 70, "canary": 30}}).ok()
    first = admin.call("POST", f"{WEB}/abort").ok()
    for _ in range(5):
        assert admin.call("POST", f"{WEB}/abort").ok()["revision"] == first["revision"]
    assert first["previousWeights"] == {"stable": 70, "canary": 30}
    rolled = admin.call("POST", f"{WEB}/rollback").ok()
    assert rolled["weights"] == {"stable": 70, "canary": 30}


def test_a_stale_if_match_on_a_no_op_is_still_412(admin: Api) -> None:
    admin.call("POST", f"{SHOP}/switch", {"to": "blue"}).ok()
    before = admin.state()
    stale = revision(admin) - 1
    reply = admin.call("POST", f"{SHOP}/switch", {"to": "blue"}, headers={"If-Match": f'"{stale}"'})
    reply.problem(412, "stale-revision")
    assert admin.state() == before


# If-Match lists


def test_if_match_with_a_list_goes_ahead_when_one_entry_is_current(admin: Api) -> None:
    current = revision(admin)
    reply = admin.call(
        "PUT",
        f"{WEB}/weights",
        {"weights": {"stable": 60, "canary": 40}},
        headers={"If-Match": f'"1", "{current}", "999999"'},
    )
    assert reply.ok()["revision"] == current + 1
    # The same list is stale now: 412, nothing changed.
    before = admin.state()
    again = admin.call(
        "PUT",
        f"{WEB}/weights",
        {"weights": {"stable": 50, "canary": 50}},
        headers={"If-Match": f'"1", "{current}", "999999"'},
    )
    problem = again.problem(412, "stale-revision")
    assert "revisions 1, " in problem["detail"]
    assert again.etag == f'"{current + 1}"'
    assert admin.state() == before


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ('W/"{current}"', 412),  # weak tags never match (strong comparison)
        ('"abc"', 412),  # well-formed, just not a revision
        ('"{current}" "{current}"', 400),  # no comma
        ('*, "{current}"', 400),
        ("{current}", 400),  # not quoted
    ],
)
def test_if_match_that_cannot_match_is_412_and_malformed_is_400(
    admin: Api, header: str, status: int
) -> None:
    before = admin.state()
    current = revision(admin)
    reply = admin.call(
        "PUT",
        f"{WEB}/weights",
        {"weights": {"stable": 1, "canary": 3}},
        headers={"If-Match": header.format(current=current)},
    )
    reply.problem(status, "stale-revision" if status == 412 else "bad-precondition")
    assert admin.state() == before


def test_if_match_star_matches_any_revision(admin: Api) -> None:
    current = revision(admin)
    reply = admin.call(
        "PUT", f"{WEB}/weights", {"weights": {"stable": 3, "canary": 1}}, headers={"If-Match": "*"}
    )
    assert reply.ok()["revision"] == current + 1


PARSED = [
    ('"3"', frozenset({3})),
    ('"1", "310"', frozenset({1, 310})),
    ('"1","310"', frozenset({1, 310})),
    (' , "1" ,, "2" ', frozenset({1, 2})),  # empty list elements are allowed (RFC 9110 §5.6.1)
    ('W/"3"', frozenset()),
    ('W/"3", "4"', frozenset({4})),
    ('"abc", "007", ""', frozenset()),  # well-formed tags that are no ETag we send
    ('"a,b", "5"', frozenset({5})),  # a comma inside a tag does not split it
    ('"99999999999999999999999"', frozenset()),  # no revision that large: never matches
    ("*", None),
    (" * ", None),
]
MALFORMED = ["", ",", "3", '"3', "W/", 'W/ "3"', '"1" "2"', '*, "1"', "**", '"1";"2"']


@pytest.mark.parametrize(("value", "revisions"), PARSED)
def test_parse_if_match(value: str, revisions: frozenset[int] | None) -> None:
    assert parse_if_match(value) == revisions


@pytest.mark.parametrize("value", MALFORMED)
def test_parse_if_match_refuses_malformed_values(value: str) -> None:
    with pytest.raises(Problem) as caught:
        parse_if_match(value)
    assert (caught.value.status, caught.value.slug) == (400, "bad-precondition")
